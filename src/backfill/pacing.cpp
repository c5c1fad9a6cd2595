/*
 * pacing.cpp — the signals of pacing.hpp and the wrappers around
 * core::Pacer.
 */
#include "backfill/pacing.hpp"
#include "pg/compat.hpp"
#include "pg/guard.hpp"

#include "core/pacer.hpp"

#include <algorithm>
#include <cstdio>
#include <new>
#include <type_traits>

extern "C" {
#include "access/xact.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "catalog/pg_type.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/procarray.h"
#include "utils/array.h"
#include "utils/backend_status.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace safe_migrate::backfill {

double latency_budget_ms = 1.0;
int workers_per_role = 4;
bool backfill_vacuum = true;

namespace {

static_assert(std::is_trivially_destructible_v<core::Pacer>,
              "core::Pacer is kept in PostgreSQL memory without its destructor running");
static_assert(std::is_trivially_destructible_v<core::ForegroundSample>,
              "a ForegroundSample lives in frames that call PostgreSQL");

static_assert(std::is_trivially_destructible_v<core::LatencyCounts>,
              "LatencyCounts live in frames that call PostgreSQL");

/* ---- the application's latencies, recorded by every session ----
 *
 * One slot per PGPROC of a regular backend (the first MaxBackends of
 * ProcGlobal->allProcs), written only by its own session: at the end of
 * each transaction the latency of its last statement (from the statement's
 * start, commit included) adds one to a bucket.  The counters only grow
 * (wrapping at 2^32): a reader sums the slots and takes differences.  No
 * lock: one slot has one writer, and a reader that sees a count a moment
 * late only moves it to its next window. */
struct LatencySlot {
    pg_atomic_uint32 n[core::kLatencyBuckets];
};

LatencySlot *latency_slots = nullptr;
int n_latency_slots = 0;
bool not_application = false; /* this transaction ran safe_migrate's own functions */
shmem_request_hook_type prev_shmem_request = nullptr;
shmem_startup_hook_type prev_shmem_startup = nullptr;

Size latency_shmem_size(void) { return mul_size(MaxBackends, sizeof(LatencySlot)); }

void request_latency_shmem(void)
{
    if (prev_shmem_request)
        prev_shmem_request();
    RequestAddinShmemSpace(MAXALIGN(latency_shmem_size()));
}

void startup_latency_shmem(void)
{
    if (prev_shmem_startup)
        prev_shmem_startup();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found;
    latency_slots = (LatencySlot *) ShmemInitStruct("safe_migrate application latency",
                                                    latency_shmem_size(), &found);
    if (!found)
        for (int i = 0; i < MaxBackends; i++)
            for (int b = 0; b < core::kLatencyBuckets; b++)
                pg_atomic_init_u32(&latency_slots[i].n[b], 0);
    n_latency_slots = MaxBackends;
    LWLockRelease(AddinShmemInitLock);
}

void record_latency(XactEvent event, void *)
{
    if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT)
        return;
    bool skip = not_application;
    not_application = false;
    if (skip || latency_slots == nullptr || MyProc == nullptr || MyBackendType != B_BACKEND)
        return;
    ptrdiff_t slot = MyProc - ProcGlobal->allProcs;
    if (slot < 0 || slot >= n_latency_slots)
        return;
    TimestampTz start = GetCurrentStatementStartTimestamp();
    TimestampTz now = GetCurrentTimestamp();
    uint64 us = now > start ? (uint64) (now - start) : 0;
    pg_atomic_uint32 *counter = &latency_slots[slot].n[core::latency_bucket(us)];
    /* one writer: no atomic read-modify-write needed */
    pg_atomic_write_u32(counter, pg_atomic_read_u32(counter) + 1);
}

}  // namespace

/* The counters summed over every session; false without them. */
bool read_latencies(core::LatencyCounts *out)
{
    *out = core::LatencyCounts{};
    if (latency_slots == nullptr)
        return false;
    for (int i = 0; i < n_latency_slots; i++)
        for (int b = 0; b < core::kLatencyBuckets; b++)
            out->n[b] += pg_atomic_read_u32(&latency_slots[i].n[b]);
    return true;
}

void latency_not_application(void) noexcept { not_application = true; }

void request_latency_recording(void)
{
    prev_shmem_request = shmem_request_hook;
    shmem_request_hook = request_latency_shmem;
    prev_shmem_startup = shmem_startup_hook;
    shmem_startup_hook = startup_latency_shmem;
    RegisterXactCallback(record_latency, nullptr);
}

struct Pacing {
    alignas(core::Pacer) unsigned char storage[sizeof(core::Pacer)];
    core::ForegroundSample sample; /* the last look at the application */
    TimestampTz last_sample;       /* when (0: never) */
    bool have_latencies;           /* the readings below are real */
    core::LatencyCounts at_step;   /* the counters when the previous step ended */
    core::LatencyCounts at_quiet;  /* ... when the measured part of a quiet sleep began */
    core::LatencyCounts at_batch;  /* ... when this batch began (after the sleep) */
    core::Pacer *get() { return std::launder(reinterpret_cast<core::Pacer *>(storage)); }
    const core::Pacer *get() const { return std::launder(reinterpret_cast<const core::Pacer *>(storage)); }
};

namespace {

void fill(const Pacing *p, PacingDecision *out)
{
    const core::Pacer *c = p->get();
    const char *why = core::held_by_name(c->held_by());
    out->throttled_by = why[0] ? why : nullptr;
    out->rate = c->rate_rows_per_second();
    out->foreground_ms = c->foreground_ms();
    out->baseline_ms = c->baseline_ms();
    out->duty = c->duty();
    out->foreground_present = c->foreground_present();
    out->fg_active = p->sample.active;
    out->fg_waiting_wal = p->sample.waiting_wal;
    out->fg_waiting_io = p->sample.waiting_io;
    out->fg_waiting_lock = p->sample.waiting_lock;
}

/* No C++ object is alive in this frame when PostgreSQL code runs. */
bool construct(Pacing *p, const PacingSettings *s, char *problem, size_t len) noexcept
{
    try {
        core::ThrottleConfig t;
        t.initial_batch = s->initial_batch;
        t.max_batch = std::max(s->initial_batch * 100, 100000);
        /* with a rate cap, no batch holds more than a second's worth of rows */
        if (s->max_rows_per_second > 0)
            t.max_batch = std::max(1, std::min(t.max_batch, s->max_rows_per_second));
        t.target_batch_ms = s->target_batch_ms;
        t.max_rows_per_second = s->max_rows_per_second;
        t.pause_ms = s->pause_ms;
        core::PacerConfig c;
        c.latency_budget_ms = s->latency_budget_ms;
        if (s->eager)
            core::make_eager(c);
        new (p->storage) core::Pacer(t, c);
        return true;
    } catch (const std::exception &e) {
        snprintf(problem, len, "%s", e.what());
    } catch (...) {
        snprintf(problem, len, "invalid pacing settings");
    }
    return false;
}

/* one step's outcome, as the core wants it */
struct PacingStep {
    long keys;
    int batch_size;
    double duration_ms;
    int lock_waiters;
    bool have_latencies;
    core::LatencyCounts at_end; /* the counters when the batch ended */
};

void step(Pacing *p, const PacingStep *s, PacingDecision *out) noexcept
{
    try {
        core::PaceObservation o;
        o.rows = s->keys;
        o.batch_size = s->batch_size;
        o.duration_ms = s->duration_ms;
        o.lock_waiters = s->lock_waiters;
        o.foreground = p->sample;
        if (p->have_latencies && s->have_latencies) {
            o.have_latency = true;
            o.latency = core::LatencyCounts::between(p->at_step, s->at_end);
            o.quiet_latency = core::LatencyCounts::between(p->at_quiet, p->at_batch);
        }
        core::PaceDecision d = p->get()->after_batch(o);
        out->next_batch = d.next_batch;
        out->sleep_ms = d.sleep_ms;
        out->quiet_probe = d.quiet_probe;
        out->quiet_from_ms = d.quiet_from_ms;
    } catch (...) {
        /* cannot happen (after_batch does not throw on observations); be
         * careful anyway */
        out->next_batch = s->batch_size > 0 ? s->batch_size : 1;
        out->sleep_ms = 1000;
        out->quiet_probe = false;
        out->quiet_from_ms = 0;
    }
}

}  // namespace

const char *pacing_create(const PacingSettings *settings, Pacing **out)
{
    Pacing *p = (Pacing *) palloc0(sizeof(Pacing));
    char problem[256];
    if (!construct(p, settings, problem, sizeof problem)) {
        pfree(p);
        return pstrdup(problem);
    }
    *out = p;
    return nullptr;
}

int pacing_first_batch(const Pacing *p) { return p->get()->first_batch(); }

void pacing_initial(Pacing *p, PacingDecision *out)
{
    p->have_latencies = read_latencies(&p->at_step);
    p->at_quiet = p->at_batch = p->at_step;
    out->next_batch = p->get()->first_batch();
    out->sleep_ms = 0;
    out->quiet_probe = false;
    out->quiet_from_ms = 0;
    fill(p, out);
}

void pacing_quiet_begins(Pacing *p)
{
    if (p->have_latencies)
        (void) read_latencies(&p->at_quiet);
}

void pacing_before_batch(Pacing *p)
{
    if (p->have_latencies)
        (void) read_latencies(&p->at_batch);
}

void pacing_after(Pacing *p, PacingDecision *out, long keys, int batch_size, double duration_ms,
                  int lock_waiters)
{
    PacingStep s = {keys, batch_size, duration_ms, lock_waiters, false, {}};
    if (p->have_latencies)
        s.have_latencies = read_latencies(&s.at_end);
    step(p, &s, out);
    if (s.have_latencies) {
        p->at_step = p->at_quiet = p->at_batch = s.at_end;
    }
    fill(p, out);
}

void pacing_sample_foreground(Pacing *p)
{
    TimestampTz now = GetCurrentTimestamp();
    core::ForegroundSample s;
    /* a fresh copy of the status array (it is cached per transaction) */
    pgstat_clear_backend_activity_snapshot();
    int n = pgstat_fetch_stat_numbackends();
    for (int i = 1; i <= n; i++) {
        LocalPgBackendStatus *local = pg::compat::local_beentry(i);
        if (local == nullptr)
            continue;
        PgBackendStatus *be = &local->backendStatus;
        if (be->st_procpid == MyProcPid || be->st_procpid <= 0 || be->st_backendType != B_BACKEND)
            continue;
        bool started = p->last_sample != 0 && be->st_activity_start_timestamp > p->last_sample;
        if (be->st_state != STATE_RUNNING) {
            /* ran a statement since the last look, and is done with it */
            if (started && be->st_state != STATE_DISABLED)
                s.started++;
            continue;
        }
        PGPROC *proc = BackendPidGetProc(be->st_procpid);
        uint32 w = proc ? *(volatile uint32 *) &proc->wait_event_info : 0;
        uint32 cls = w & 0xFF000000U;
        /* asleep, not working for an application: pg_sleep, an extension's
         * own wait (migrate_backfill_wait, a lock wait of ours) */
        if (cls == PG_WAIT_EXTENSION || cls == PG_WAIT_TIMEOUT || cls == PG_WAIT_ACTIVITY ||
            cls == PG_WAIT_CLIENT)
            continue;
        if (started)
            s.started++;
        s.active++;
        double age = (double) (now - be->st_activity_start_timestamp) / 1000.0;
        if (age > s.oldest_ms)
            s.oldest_ms = age;
        if (cls == PG_WAIT_LOCK)
            s.waiting_lock++;
        else if (cls == SM_PG_WAIT_BUFFERPIN)
            s.waiting_io++;
        else if (cls == PG_WAIT_IO || cls == PG_WAIT_LWLOCK) {
            const char *event = pgstat_get_wait_event(w);
            if (event && strncmp(event, "WAL", 3) == 0)
                s.waiting_wal++;
            else if (cls == PG_WAIT_IO || (event && strncmp(event, "Buffer", 6) == 0))
                s.waiting_io++;
        }
    }
    p->sample = s;
    p->last_sample = now;
}

/* Sessions (of any kind) waiting on a heavyweight lock that this backend
 * holds or waits ahead of them for.  The status array is scanned for
 * sessions in a lock wait, and pg_blocking_pids() is asked only about those:
 * most of the time nobody waits, and the whole cost is the scan (it was a
 * query of pg_stat_activity joined with pg_blocking_pids() of every
 * session, parsed, planned and run after each batch: a quarter of the
 * worker's time while the application was there, measured with perf). */
int pacing_lock_waiters_on_me()
{
    /* a fresh copy of the status array (it is cached per transaction) */
    pgstat_clear_backend_activity_snapshot();
    int n = pgstat_fetch_stat_numbackends();
    int waiters = 0;
    for (int i = 1; i <= n; i++) {
        LocalPgBackendStatus *local = pg::compat::local_beentry(i);
        if (local == nullptr)
            continue;
        PgBackendStatus *be = &local->backendStatus;
        if (be->st_procpid == MyProcPid || be->st_procpid <= 0)
            continue;
        PGPROC *proc = BackendPidGetProc(be->st_procpid);
        if (proc == nullptr)
            continue;
        uint32 w = *(volatile uint32 *) &proc->wait_event_info;
        if ((w & 0xFF000000U) != PG_WAIT_LOCK)
            continue;
        ArrayType *pids = DatumGetArrayTypeP(DirectFunctionCall1(pg_blocking_pids,
                                                                 Int32GetDatum(be->st_procpid)));
        Datum *elems;
        bool *nulls;
        int nelems;
        deconstruct_array(pids, INT4OID, sizeof(int32), true, TYPALIGN_INT, &elems, &nulls, &nelems);
        for (int j = 0; j < nelems; j++)
            if (!nulls[j] && DatumGetInt32(elems[j]) == MyProcPid) {
                waiters++;
                break;
            }
        pfree(elems);
        pfree(nulls);
        pfree(pids);
    }
    return waiters;
}

}  // namespace safe_migrate::backfill

/* safe_migrate.application_latency(): the counters every client session
 * keeps (summed over all sessions since the server started, wrapping at
 * 2^32 per session), one row per bucket that is not empty: what the
 * backfill's pacing reads.  No rows without shared_preload_libraries. */
SM_ENTRY(safe_migrate_application_latency)
{
    using namespace safe_migrate;
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
    core::LatencyCounts counts;
    if (!backfill::read_latencies(&counts))
        return (Datum) 0;
    for (int b = 0; b < core::kLatencyBuckets; b++) {
        if (counts.n[b] == 0)
            continue;
        Datum values[4];
        bool nulls[4] = {false, false, false, false};
        values[0] = Int32GetDatum(b);
        values[1] = Float8GetDatum(core::latency_bucket_lower_ms(b));
        if (b == core::kLatencyBuckets - 1)
            nulls[2] = true;
        else
            values[2] = Float8GetDatum(core::latency_bucket_upper_ms(b));
        values[3] = Int64GetDatum((int64) counts.n[b]);
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum) 0;
}

namespace safe_migrate::backfill {

void define_settings(void)
{
    DefineCustomIntVariable(
        "safe_migrate.backfill_workers_per_role",
        "How many backfill jobs of one role run at once, in the whole server.",
        "Each running job holds a background worker; a role's further jobs wait, queued, "
        "until one of its running jobs ends, so that no role can take every background "
        "worker slot (the runners of other roles' migrations, parallel queries).  0 means "
        "no limit.",
        &workers_per_role, 4, 0, 1000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomRealVariable(
        "safe_migrate.backfill_latency_budget",
        "How much a backfill may add to the latency of the application's commits, in milliseconds.",
        "Every session records how long its statements take; while the application is active, "
        "the backfill's worker slows down when their 99th percentile is more than this over "
        "the server's normal (measured while the worker keeps quiet); with nobody there it "
        "runs at full speed.  Recorded with the job when it is submitted.  0 turns the latency "
        "control off.",
        &latency_budget_ms, 1.0, 0.0, 10000.0, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "safe_migrate.backfill_vacuum",
        "Whether a backfill vacuums its table after its last batch while the application is active.",
        "A backfill leaves a dead version of every row it changed; autovacuum then rewrites every "
        "page the job touched and leaves it for the kernel to write back at once.  With this on, "
        "the backfill's worker runs that VACUUM (ANALYZE) itself before the job completes, at "
        "autovacuum's cost settings, writing its pages out as it goes.  Recorded with the job "
        "when it is submitted.",
        &backfill_vacuum, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);
}

}  // namespace safe_migrate::backfill
