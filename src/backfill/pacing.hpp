/*
 * pacing.hpp — the pacing of every bulk step safe_migrate runs on the
 * user's behalf: one API, the closed loop of core/pacer.hpp fed with what
 * the server measures.
 *
 * A caller that does its work in batches (a backfill's worker today; the
 * batched UPDATE/DELETE of online execution and the index builds it
 * schedules later) does, per batch:
 *
 *     Pacing *p;  pacing_create(&settings, &p);       (once; palloc'd)
 *     pacing_initial(p, &d);
 *     loop:
 *       pacing_before_batch(p);                       (after the sleep)
 *       ... the batch, in its transaction, and at its end, still inside:
 *       pacing_sample_foreground(p);
 *       ... commit ...
 *       pacing_after(p, &d, keys, size, ms, waiters); (next size, sleep, why)
 *       sleep d.sleep_ms (a quiet one: d.quiet_from_ms, pacing_quiet_begins(p),
 *                         the rest)
 *
 * The signals, each cheap and read in C (no SQL):
 *  - the application's latency: every client session (with the library in
 *    shared_preload_libraries) adds, at the end of each transaction, the
 *    latency of its last statement (from its start, commit included) to a
 *    bucket counter of its own in shared memory; the pacer reads the sums
 *    before and after each batch: the distribution of what the
 *    application's statements took while the job slept and while it ran.
 *    Transactions that ran safe_migrate's own functions (migrations, DDL
 *    judged by the policy, waiting for a job) are not the application and
 *    are not counted.  Measured (README, issue 16), this is what the
 *    application feels; a tiny commit of the worker's own, timed after its
 *    batch, was not (it found the WAL already flushed);
 *  - the application's sessions, from the backend status array and each
 *    PGPROC's wait_event_info (as pg_stat_activity reads them): client
 *    backends that started or are running a statement, and what those wait
 *    on (WAL, buffers or I/O, locks).  Sessions asleep (pg_sleep, an
 *    extension's wait such as migrate_backfill_wait) or idle do not count.
 * Only aggregates and the decision are shown to the job's owner; no
 * session's own statements or latencies are.
 *
 * Every function is C-callable and never throws: the core runs inside
 * noexcept wrappers, its objects live in palloc'd memory and need no
 * destructor.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "datatype/timestamp.h"
}

#include "core/latency.hpp"

namespace safe_migrate::backfill {

/* safe_migrate.backfill_latency_budget, in ms (0: no latency control) */
extern double latency_budget_ms;
extern int workers_per_role; /* safe_migrate.backfill_workers_per_role (the launcher reads it) */
extern bool backfill_vacuum;

struct PacingSettings {
    int initial_batch;
    int target_batch_ms;      /* batch duration at full speed */
    int max_rows_per_second;  /* 0: no cap */
    int pause_ms;
    double latency_budget_ms; /* 0: no latency control */
    bool eager;               /* someone waits for the job: start at full duty,
                               * settle on one measure of the baseline */
};

struct Pacing; /* opaque, palloc'd in the caller's context */

struct PacingDecision {
    int next_batch;
    double sleep_ms;
    bool quiet_probe;          /* the sleep is a quiet time (the baseline is measured in it) ... */
    double quiet_from_ms;      /* ... from this far into it on: call pacing_quiet_begins() then */
    const char *throttled_by;  /* static text, NULL at full speed */
    double rate;               /* rows (keys) per second, smoothed, sleeps included */
    double foreground_ms;      /* the application's recent latency (p95); < 0: not known */
    double baseline_ms;        /* the same while the job kept quiet; < 0: not known */
    double duty;               /* share of the time spent in batches */
    bool foreground_present;
    /* the last sample of the application's sessions */
    int fg_active, fg_waiting_wal, fg_waiting_io, fg_waiting_lock;
};

/* NULL and *out set, or what is wrong with the settings (*out untouched). */
const char *pacing_create(const PacingSettings *settings, Pacing **out);
int pacing_first_batch(const Pacing *p);

/* Look at the application's sessions now (at the end of a batch, inside
 * its transaction: the backend status snapshot is per transaction). */
void pacing_sample_foreground(Pacing *p);
/* Sessions waiting on a heavyweight lock this backend holds (or is ahead
 * of them for); in a transaction. */
int pacing_lock_waiters_on_me();

/* Before the first batch; before each batch (after its sleep); after it. */
void pacing_initial(Pacing *p, PacingDecision *out);
void pacing_quiet_begins(Pacing *p);
void pacing_before_batch(Pacing *p);
void pacing_after(Pacing *p, PacingDecision *out, long keys, int batch_size, double duration_ms,
                  int lock_waiters);

/* _PG_init, in shared_preload_libraries: the latency counters in shared
 * memory and the transaction callback that fills them. */
void request_latency_recording(void);

/* The latency counters summed over every session; false without them. */
bool read_latencies(core::LatencyCounts *out);

/* This transaction is safe_migrate's own work, not the application's: its
 * statements' latency is not recorded (every SQL-callable function says
 * so). */
void latency_not_application(void) noexcept;

/* GUCs (_PG_init) */
void define_settings(void);

}  // namespace safe_migrate::backfill
