/*
 * pacing.cpp — the signals of pacing.hpp and the wrappers around
 * core::Pacer.
 */
#include "backfill/pacing.hpp"
#include "pg/compat.hpp"

#include "core/pacer.hpp"

#include <algorithm>
#include <cstdio>
#include <new>
#include <type_traits>

extern "C" {
#include "access/rmgr.h"
#include "access/xlog.h"
#include "access/xloginsert.h"
#include "catalog/pg_control.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/backend_status.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace safe_migrate::backfill {

double latency_budget_ms = 2.0;

namespace {

static_assert(std::is_trivially_destructible_v<core::Pacer>,
              "core::Pacer is kept in PostgreSQL memory without its destructor running");
static_assert(std::is_trivially_destructible_v<core::ForegroundSample>,
              "a ForegroundSample lives in frames that call PostgreSQL");

}  // namespace

struct Pacing {
    alignas(core::Pacer) unsigned char storage[sizeof(core::Pacer)];
    core::ForegroundSample sample; /* the last look at the application */
    TimestampTz last_sample;       /* when (0: never) */
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
    out->foreground_ms = c->probe_ms();
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
        new (p->storage) core::Pacer(t, c);
        return true;
    } catch (const std::exception &e) {
        snprintf(problem, len, "%s", e.what());
    } catch (...) {
        snprintf(problem, len, "invalid pacing settings");
    }
    return false;
}

void step(Pacing *p, const PacingStep *s, PacingDecision *out) noexcept
{
    try {
        core::PaceObservation o;
        o.rows = s->keys;
        o.batch_size = s->batch_size;
        o.duration_ms = s->duration_ms;
        o.lock_waiters = s->lock_waiters;
        o.probe_ms = s->probe_ms;
        o.quiet_probe_ms = s->quiet_probe_ms;
        o.foreground = p->sample;
        core::PaceDecision d = p->get()->after_batch(o);
        out->next_batch = d.next_batch;
        out->sleep_ms = d.sleep_ms;
        out->probe_after = d.probe_next;
        out->quiet_probe = d.quiet_probe;
    } catch (...) {
        /* cannot happen (after_batch does not throw on observations); be
         * careful anyway */
        out->next_batch = s->batch_size > 0 ? s->batch_size : 1;
        out->sleep_ms = 1000;
        out->probe_after = true;
        out->quiet_probe = false;
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

void pacing_initial(const Pacing *p, PacingDecision *out)
{
    out->next_batch = p->get()->first_batch();
    out->sleep_ms = 0;
    out->probe_after = true;
    out->quiet_probe = false;
    fill(p, out);
}

void pacing_after(Pacing *p, const PacingStep *s, PacingDecision *out)
{
    step(p, s, out);
    fill(p, out);
}

double pacing_probe_ms(void)
{
    if (RecoveryInProgress())
        return -1;
    instr_time start, end;
    char payload = 0;
    INSTR_TIME_SET_CURRENT(start);
    XLogBeginInsert();
    XLogRegisterData(&payload, sizeof payload);
    XLogRecPtr lsn = XLogInsert(RM_XLOG_ID, XLOG_NOOP);
    XLogFlush(lsn);
    INSTR_TIME_SET_CURRENT(end);
    INSTR_TIME_SUBTRACT(end, start);
    return INSTR_TIME_GET_MILLISEC(end);
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

void define_settings(void)
{
    DefineCustomRealVariable(
        "safe_migrate.backfill_latency_budget",
        "How much a backfill may add to the latency of the application's commits, in milliseconds.",
        "The backfill's worker times a tiny commit of its own after its batches and, while the "
        "application is active, slows down when that takes more than this over the server's "
        "normal (measured while the worker keeps quiet); with nobody there it runs at full "
        "speed.  Recorded with the job when it is submitted.  0 turns the latency control off.",
        &latency_budget_ms, 2.0, 0.0, 10000.0, PGC_USERSET, 0, nullptr, nullptr, nullptr);
}

}  // namespace safe_migrate::backfill
