/*
 * pacer.hpp — a closed loop that keeps a bulk job (a backfill's batches, or
 * any batched step run on the user's behalf) from being felt by the
 * application.
 *
 * What the application feels while a bulk job runs on a small server is,
 * measured (see the README, "Backfills the application cannot feel"), best
 * predicted by the latency of a tiny commit: one small WAL record and its
 * flush, the "probe".  It rises with the WAL the job writes, with the
 * write-back of the pages it dirtied, with the checkpoint after it: the
 * aftermath shows in it too.  The Pacer steers on that probe:
 *
 *  - the probe's baseline (the server's normal) is measured, not guessed:
 *    while the application is there the pacer now and then stays quiet
 *    for quiet_ms (when the application arrives, then every
 *    baseline_interval_ms, and whenever its own sleep is that long anyway)
 *    and has a probe taken at the end of the quiet time, before the next
 *    batch; only such quiet probes move the baseline, so the job's own
 *    effect is never learned as normal, while a server that became slower
 *    for other reasons (another load, a slower disk) is;
 *  - excess = smoothed probe after batches - baseline; over
 *    latency_budget_ms (or one probe over baseline + spike_factor * budget:
 *    a checkpoint's spike) the duty cycle (the share of the time spent in
 *    batches) is halved, at most once per cut_interval_ms (one event is not
 *    punished twice); within the budget it grows back by
 *    duty_increase_per_s per second;
 *  - sessions waiting on the job's locks cut the duty cycle too;
 *  - while application statements are seen (foreground present), batches
 *    are kept short (busy_batch_ms: a session that collides with a batch,
 *    on a row lock or behind its WAL, waits at most about that long);
 *  - the application is "present" once its statements are seen at
 *    min_foreground_rate per second or more (sessions seen starting a
 *    statement, or running one, per second of samples, smoothed over about
 *    a second: a monitoring query once a second is not an application); it
 *    is gone when no statement has been seen for idle_after_ms, and then
 *    the job runs at full speed: duty 1, batches of target_batch_ms.
 *
 * Batch sizing (to the batch duration aimed at), rate caps and fixed
 * pauses are the Throttle's (throttle.hpp); the Pacer adds the sleep that
 * keeps the duty cycle, and says what holds the job back.
 *
 * Pure and deterministic: it never reads a clock; time advances by the
 * durations it is told and the sleeps it decided.  No PostgreSQL.
 */
#pragma once

#include "throttle.hpp"

namespace safe_migrate::core {

struct PacerConfig {
    double latency_budget_ms = 2.0;   // allowed foreground (probe) latency increase; 0 = no latency control
    double busy_batch_ms = 10;        // batch duration aimed at while the foreground is present
    double idle_after_ms = 500;       // no foreground statement for this long: idle, full speed
    double min_foreground_rate = 3;   // application statements per second that make it present
                                      // (a monitoring query once a second does not)
    double min_duty = 0.02;           // the job never runs less than this share of the time
    double initial_duty = 0.25;       // duty when the foreground is present from the start
    double duty_increase_per_s = 0.1; // additive increase per second within the budget
    double duty_cut = 0.5;            // multiplicative decrease
    double cut_interval_ms = 250;     // at most one cut per this long
    double spike_factor = 4;          // one probe over baseline + this * budget cuts at once
    double probe_alpha = 0.3;         // EWMA of the probes after batches
    double baseline_alpha = 0.3;      // EWMA of the quiet probes (the baseline)
    double quiet_ms = 1000;           // quiet time before a baseline probe
    double baseline_interval_ms = 10000; // while the foreground is present, a quiet probe this often
    double probe_interval_ms = 1000;  // with the foreground absent, probe at most this often
    double busy_probe_interval_ms = 100; // with it present, at most this often (a probe is an fsync)
};

// Throws ScriptError ("pacer: ...") for settings that make no sense.
void validate(const PacerConfig&);

// What holds the job back right now.
enum class HeldBy {
    Nothing,            // full speed
    ForegroundLatency,  // the probe's excess over its baseline (or a spike) cut the duty cycle
    LockWaiters,        // sessions waited on the job's locks
    ForegroundActive,   // the application is active: short batches, duty still growing back
    RateCap,            // max_rows_per_second
    Pause,              // pause_ms
};
const char* held_by_name(HeldBy);  // "foreground latency", ..., "" for Nothing

// The application's sessions as seen at the end of a batch.
struct ForegroundSample {
    int started = 0;      // application sessions that started a statement since the previous sample
    int active = 0;       // application sessions running a statement now
    int waiting_wal = 0;  // ... of which waiting on WAL (insert, write, flush)
    int waiting_io = 0;   // ... on buffers or data file I/O
    int waiting_lock = 0; // ... on heavyweight locks
    double oldest_ms = 0; // the oldest running application statement's age
};

struct PaceObservation {
    long rows = 0;            // keys the batch examined (its work)
    int batch_size = 0;       // the size asked for
    double duration_ms = 0;   // the batch, commit included
    int lock_waiters = 0;     // sessions found waiting on the batch's locks
    double probe_ms = -1;     // the tiny commit after the batch; < 0 or NaN: not measured
    double quiet_probe_ms = -1; // the tiny commit before the batch, after the quiet
                              // sleep the previous decision asked for (quiet_probe); else < 0
    ForegroundSample foreground;
};

struct PaceDecision {
    int next_batch = 0;
    double sleep_ms = 0;
    HeldBy held_by = HeldBy::Nothing;
    bool probe_next = true;   // measure the probe after the next batch
    bool quiet_probe = false; // measure one after this sleep, before the next batch
};

class Pacer {
public:
    Pacer(ThrottleConfig throttle, PacerConfig pacer);  // validates both
    int first_batch() const;
    PaceDecision after_batch(const PaceObservation& obs);

    // rows (keys) per second, every sleep included (the pacer's own too),
    // smoothed over about a second of time
    double rate_rows_per_second() const;
    double duty() const;                  // share of the time spent in batches, (0, 1]
    bool foreground_present() const;
    double foreground_rate() const;       // smoothed application statements seen per second
    double probe_ms() const;              // smoothed probe; < 0 before the first
    double baseline_ms() const;           // measured baseline; < 0 before the first quiet probe
    double excess_ms() const;             // probe_ms - baseline_ms (0 before a probe)
    HeldBy held_by() const;
    double elapsed_ms() const;            // time as the pacer knows it
    const PacerConfig& config() const;

private:
    Throttle throttle_;
    PacerConfig cfg_;
    double full_target_ms_;
    double now_ = 0;
    double prev_sleep_ = 0;
    double last_foreground_ = 0;
    double fg_rate_ = 0;
    double rate_ = 0;
    bool have_rate_ = false;
    bool present_ = false;
    double duty_ = 1;
    double last_cut_ = -1e18;
    double last_probe_at_ = -1e18;
    double last_quiet_at_ = -1e18;
    bool quiet_asked_ = false;
    double probe_ = -1;
    double baseline_ = -1;
    HeldBy held_ = HeldBy::Nothing;
    HeldBy reason_ = HeldBy::Nothing;  // why the duty cycle was last cut
};

}  // namespace safe_migrate::core
