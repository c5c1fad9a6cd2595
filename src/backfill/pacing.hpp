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
 *     loop:
 *       q = d.quiet_probe ? pacing_probe_ms() : -1;  (before the batch)
 *       ... the batch, in its transaction, and at its end, still inside:
 *       pacing_sample_foreground(p);
 *       ... commit ...
 *       pr = d.probe_after ? pacing_probe_ms() : -1;
 *       pacing_after(p, &step, &d);                   (next size, sleep, why)
 *       sleep d.sleep_ms
 *
 * The signals, each cheap and read in C (no SQL):
 *  - the probe: one tiny WAL record (XLOG_NOOP, replayed as nothing) and
 *    its flush, timed: what an application's commit costs right now.  It
 *    rises with the WAL the job writes, the write-back of the pages it
 *    dirtied, the checkpoint after it: the aftermath counts.  Measured
 *    (README, issue 16) it predicts the application's p99 best of the
 *    in-server signals;
 *  - the application's sessions, from the backend status array and each
 *    PGPROC's wait_event_info (as pg_stat_activity reads them): client
 *    backends that started or are running a statement, and what those wait
 *    on (WAL, buffers or I/O, locks).  Sessions asleep (pg_sleep, an
 *    extension's wait such as migrate_backfill_wait) or idle do not count.
 * Only our own measurement (the probe) and the decision are shown to the
 * job's owner; the other sessions' details stay inside.
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

namespace safe_migrate::backfill {

/* safe_migrate.backfill_latency_budget, in ms (0: no latency control) */
extern double latency_budget_ms;

struct PacingSettings {
    int initial_batch;
    int target_batch_ms;      /* batch duration at full speed */
    int max_rows_per_second;  /* 0: no cap */
    int pause_ms;
    double latency_budget_ms; /* 0: no latency control */
};

struct Pacing; /* opaque, palloc'd in the caller's context */

struct PacingStep {
    long keys;             /* the batch's work (keys examined) */
    int batch_size;        /* the size asked for */
    double duration_ms;    /* the batch, commit included */
    int lock_waiters;      /* sessions waiting on the batch's locks at its end */
    double probe_ms;       /* pacing_probe_ms() after the batch, or -1 */
    double quiet_probe_ms; /* pacing_probe_ms() before it (asked by quiet_probe), or -1 */
};

struct PacingDecision {
    int next_batch;
    double sleep_ms;
    bool probe_after;          /* time a probe after the next batch */
    bool quiet_probe;          /* time one after the sleep, before the next batch */
    const char *throttled_by;  /* static text, NULL at full speed */
    double rate;               /* rows (keys) per second, smoothed, sleeps included */
    double foreground_ms;      /* smoothed probe, < 0 before the first */
    double baseline_ms;        /* the probe's quiet baseline, < 0 before the first */
    double duty;               /* share of the time spent in batches */
    bool foreground_present;
    /* the last sample of the application's sessions */
    int fg_active, fg_waiting_wal, fg_waiting_io, fg_waiting_lock;
};

/* NULL and *out set, or what is wrong with the settings (*out untouched). */
const char *pacing_create(const PacingSettings *settings, Pacing **out);
int pacing_first_batch(const Pacing *p);

/* One tiny WAL record flushed, timed in ms; -1 during recovery.  Needs no
 * transaction. */
double pacing_probe_ms(void);

/* Look at the application's sessions now (at the end of a batch, inside
 * its transaction: the backend status snapshot is per transaction). */
void pacing_sample_foreground(Pacing *p);

/* The step's outcome in, the next step out (the decision before the first
 * step: pacing_initial()). */
void pacing_after(Pacing *p, const PacingStep *step, PacingDecision *out);
void pacing_initial(const Pacing *p, PacingDecision *out);

/* GUCs (_PG_init) */
void define_settings(void);

}  // namespace safe_migrate::backfill
