/*
 * throttle.hpp — pacing of batched background backfills.
 *
 * A backfill updates a large table in many short transactions ("batches").
 * The Throttle decides, after each batch, how many rows the next one should
 * touch and how long to wait before it, so that each batch takes about
 * target_batch_ms, the batch size never swings wildly, sessions waiting on the
 * batch's locks make it back off, and an optional rows-per-second cap holds.
 *
 * Pure and deterministic: it never looks at a clock, it only sees the
 * observations it is given.  It knows nothing of PostgreSQL.
 */
#pragma once

#include "error.hpp"

namespace safe_migrate::core {

struct ThrottleConfig {
    int initial_batch = 1000;        // rows in the first batch (clamped to [min_batch, max_batch])
    int min_batch = 1;
    int max_batch = 100000;
    double target_batch_ms = 200;    // aim: each batch (its transaction) takes about this long
    double max_rows_per_second = 0;  // 0 = no cap
    double pause_ms = 0;             // fixed pause between batches
    double max_growth = 2.0;         // a batch may be at most this many times the previous one
    double lock_wait_shrink = 0.5;   // factor applied when other sessions waited on the batch's locks
};

// Throws ScriptError ("throttle: ...") for a configuration that makes no
// sense: min_batch < 1, min_batch > max_batch, initial_batch < 1,
// target_batch_ms not a finite number > 0, max_rows_per_second or pause_ms
// negative or not finite, max_growth not a finite number > 1,
// lock_wait_shrink not in the open interval (0, 1).
// An initial_batch outside [min_batch, max_batch] is accepted and clamped.
void validate(const ThrottleConfig&);

struct BatchObservation {
    long rows;         // rows the batch actually updated (may be < batch size at the end)
    int batch_size;    // the size that was asked for
    double duration_ms;  // how long the batch transaction took
    int lock_waiters;  // sessions found waiting on the batch's locks at its end
};

struct ThrottleDecision {
    int next_batch;   // size of the next batch
    double sleep_ms;  // how long to wait before the next batch (pause + rate cap)
};

// Batch size, step by step (base = obs.batch_size, or the last decided size if
// the observation's batch_size is < 1):
//  * timing factor f: with rows > 0, ms-per-row = duration / rows and
//    f = (target / ms-per-row) / base; with rows == 0 the whole batch is used,
//    f = target / duration; a duration of 0 gives f = max_growth;
//  * a short batch (rows < batch_size, typically the last one) that finished
//    within target is overhead-dominated: it never shrinks the size (f >= 1);
//  * f is clamped to [1 / max_growth, max_growth];
//  * lock waiters > 0: f = min(f, 1) * lock_wait_shrink (never grows);
//  * next = round(base * f), kept within [ceil(base / max_growth),
//    floor(base * max_growth)] when no waiters were seen; it moves by at
//    least one row when the raw timing factor reached a bound or waiters were
//    seen, so tiny batches are not frozen by rounding (the only case where a
//    step may exceed the growth bound: base * max_growth < base + 1);
//    finally clamped to [min_batch, max_batch].
// Sleep = max(pause_ms, rows * 1000 / max_rows_per_second - duration_ms): the
// pause is always included, and when capped the batch plus its following
// sleep never run faster than the cap.
// Bad observations never throw: negative rows count as 0, negative durations
// as 0, a NaN duration as "unknown" (size kept, no rate sample).
class Throttle {
public:
    explicit Throttle(ThrottleConfig config);  // validates
    int first_batch() const;
    ThrottleDecision after_batch(const BatchObservation& obs);  // updates internal state
    // Smoothed (EWMA, alpha 0.3, seeded by the first sample) observed
    // throughput including sleeps: samples are rows * 1000 / (duration + the
    // sleep decided before that batch). 0 before any batch.
    double rate_rows_per_second() const;
    const ThrottleConfig& config() const;
    // Change the batch duration the sizing aims at from the next batch on
    // (the Pacer shortens batches while the application is active).  Throws
    // ScriptError unless target_ms is a finite number > 0.
    void set_target_batch_ms(double target_ms);

private:
    ThrottleConfig config_;
    int current_batch_;        // last decided size (first_batch() before any batch)
    double prev_sleep_ms_ = 0; // sleep decided after the previous batch
    double rate_ = 0;
    bool have_rate_ = false;
};

// Estimated seconds to finish, given rows remaining and the current smoothed
// rate; negative if unknown (rate 0, negative or NaN, or rows NaN). 0 when
// nothing remains.
double eta_seconds(double rows_remaining, double rate_rows_per_second);

}  // namespace safe_migrate::core
