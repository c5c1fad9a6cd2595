/*
 * pacer.hpp — a closed loop that keeps a bulk job (a backfill's batches, or
 * any batched step run on the user's behalf) from being felt by the
 * application.
 *
 * It steers on what the application really feels: every session records
 * the latency of its statements (from the statement's start to the end of
 * its transaction, commit included) as counts in buckets (latency.hpp; the
 * server keeps them in shared memory), and the pacer reads the
 * distribution of the statements that ended in each step (the sleep before
 * a batch and the batch).  Measured (README, "Backfills the application
 * cannot feel"), a probe of the pacer's own (a tiny commit timed after its
 * batch) missed what the application felt: its commit came after the
 * batch's WAL was flushed, while the application's commits wait behind it.
 *
 *  - recent: the distribution of the last ~recent_window_ms of steps; its
 *    quantile q (0.99: what a user of the application notices is its
 *    slowest requests) is "the foreground's latency";
 *  - baseline: the same quantile, of statements that ended in the last
 *    quiet_measure_ms of a time the job kept quiet for quiet_ms (when the
 *    application arrives, every baseline_fill_interval_ms until three were
 *    measured, then every baseline_interval_ms, and whenever its own sleep
 *    is that long anyway): the lowest of the last three such windows (one
 *    stall of the server caught in a quiet window does not raise the
 *    normal, not even the first one), or for a sparse application all of
 *    them together;
 *    only those move the baseline, so the job's own effect is never
 *    learned as normal, while a server that became slower for other
 *    reasons (another load, a slower disk) is;
 *  - excess = recent - baseline; over latency_budget_ms the duty cycle (the
 *    share of the time spent in batches) is halved, at most once per
 *    cut_interval_ms (one event is not punished twice); within the budget
 *    it grows back by duty_increase_per_s per second.  Without enough
 *    statements to judge (min_samples, in either) it neither cuts nor
 *    grows;
 *  - sessions waiting on the job's locks cut the duty cycle too;
 *  - while application statements are seen (foreground present), batches
 *    are kept short (busy_batch_ms: a session that collides with a batch,
 *    on a row lock or behind its WAL, waits at most about that long);
 *    but where a batch's fixed cost alone (its transaction, its progress
 *    row) exceeds that, every batch would overshoot, the Throttle would
 *    shrink them to its least size, and the job would pay the fixed cost
 *    for every row or two (a slow server, a sanitizer build: 30 rows/s).
 *    The least a batch costs is measured there, at the least size (the
 *    lowest of its last kFloorSamples durations: one stall is not taken
 *    for it; any quicker batch later lowers it), and short batches aim at
 *    busy_floor_multiple times that: most of a batch is then work;
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

#include "latency.hpp"
#include "throttle.hpp"

namespace safe_migrate::core {

struct PacerConfig {
    double latency_budget_ms = 1.0;   // allowed increase of the application's latency (at quantile);
                                      // 0 = no latency control
    double quantile = 0.99;           // which latency of the application is steered on
    double min_samples = 50;          // statements needed (recent and baseline) to judge
    double recent_window_ms = 1500;   // the recent distribution fades with this time constant
    double baseline_keep = 0.5;       // share of the baseline kept when a new quiet window comes
    double busy_batch_ms = 1;         // batch duration aimed at while the foreground is present ...
    double busy_floor_multiple = 2;   // ... but at least this many times the least a batch costs
                                      // (its fixed cost, when that alone exceeds busy_batch_ms)
    double idle_after_ms = 500;       // no foreground statement for this long: idle, full speed
    double min_foreground_rate = 3;   // application statements per second that make it present
                                      // (a monitoring query once a second does not)
    double min_duty = 0.02;           // the job never runs less than this share of the time
    double initial_duty = 0.25;       // duty when the foreground is present from the start
    double duty_increase_per_s = 0.1; // additive increase per second within the budget
    double duty_cut = 0.5;            // multiplicative decrease
    double cut_interval_ms = 250;     // at most one cut per this long
    double quiet_ms = 1500;           // quiet time that measures the baseline ...
    double quiet_measure_ms = 500;    // ... from the statements of its last this many ms (the
                                      // job's own aftermath has faded by then)
    double first_quiet_ms = 600;      // the quiet time when the application is found there
                                      // before the job has worked more than first_quiet_ms -
                                      // quiet_measure_ms in all (its first batches): its
                                      // own aftermath is that small
    double baseline_interval_ms = 10000; // while the foreground is present, a quiet time this often
    double baseline_fill_interval_ms = 2500; // ... but this often until three quiet times were
                                             // measured since the application arrived
};

// Throws ScriptError ("pacer: ...") for settings that make no sense.
void validate(const PacerConfig&);

// A job someone waits for (online execution's fills: the migration's next
// step waits for it; measured, the gentle start below cost the seed's online
// change 6-8 s of a fill that takes 7 s at full speed): with the application
// there from the start it starts at full duty (initial_duty 1), settles on
// one quiet window rather than three (baseline_fill_interval_ms =
// baseline_interval_ms) and takes the next one after
// kEagerBaselineIntervalMs rather than 10 s (a 1.5 s quiet window every 10 s
// is 13 % of a job that lasts seconds to a minute; such a job's baseline is
// at most that old).  The latency budget still halves its duty when the
// application feels it, and its batches are as short as any job's while the
// application is there.
inline constexpr double kEagerBaselineIntervalMs = 30000;
void make_eager(PacerConfig&);

// What holds the job back right now.
enum class HeldBy {
    Nothing,            // full speed
    ForegroundLatency,  // the application's latency over its baseline cut the duty cycle
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
    bool have_latency = false; // the two below were measured
    LatencyCounts latency;    // the application's statements that ended in this step
                              // (the sleep before the batch and the batch)
    LatencyCounts quiet_latency; // ... of which in the sleep before the batch from its
                              // quiet_from_ms on, when the previous decision asked for a
                              // quiet one (quiet_probe)
    ForegroundSample foreground;
};

struct PaceDecision {
    int next_batch = 0;
    double sleep_ms = 0;
    HeldBy held_by = HeldBy::Nothing;
    bool quiet_probe = false; // this sleep is a quiet time: report its statements apart ...
    double quiet_from_ms = 0; // ... those that end from this far into the sleep
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
    double foreground_ms() const;         // the application's latency (quantile) last judged by; < 0: none yet
    double baseline_ms() const;           // the same while the job kept quiet; < 0: unknown
    double excess_ms() const;             // recent latency - baseline_ms (0 when either is unknown)
    HeldBy held_by() const;
    double elapsed_ms() const;            // time as the pacer knows it
    double floor_ms() const;              // the least a batch was seen to cost; 0: not measured
    double busy_target_ms() const;        // the batch duration aimed at while the foreground is present
    const PacerConfig& config() const;

private:
    double recent_ms() const;             // the recent window's quantile; < 0: too few statements
    Throttle throttle_;
    PacerConfig cfg_;
    double full_target_ms_;
    double now_ = 0;
    double work_ms_ = 0;  // time spent in batches so far
    double prev_sleep_ = 0;
    double last_foreground_ = 0;
    double fg_rate_ = 0;
    double rate_ = 0;
    bool have_rate_ = false;
    bool present_ = false;
    double duty_ = 1;
    double last_cut_ = -1e18;
    double last_quiet_at_ = -1e18;
    bool quiet_asked_ = false;
    LatencyHistogram recent_;
    double shown_ms_ = -1;
    LatencyHistogram baseline_;
    static constexpr int kQuietWindows = 3;
    double quiet_q_[kQuietWindows] = {-1, -1, -1};  // the quantile of each of the last quiet windows
    int quiet_next_ = 0;
    int quiet_since_arrival_ = 0;  // quiet times measured since the application arrived
    HeldBy held_ = HeldBy::Nothing;
    HeldBy reason_ = HeldBy::Nothing;  // why the duty cycle was last cut
    static constexpr int kFloorSamples = 5;
    double at_min_ms_[kFloorSamples] = {0, 0, 0, 0, 0};  // durations of the last batches of the least size
    int at_min_seen_ = 0;
    double floor_ms_ = 0;
};

}  // namespace safe_migrate::core
