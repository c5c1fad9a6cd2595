/*
 * launcher.cpp — the backfill launcher and its shared memory.
 *
 * The launcher connects to no database: it dispatches.
 *  - A database may have jobs to run (server start, a submission or resume
 *    committed there, a job worker's end, a periodic recheck): it starts
 *    that database's scout (scout.cpp), which reads the job table and
 *    reports the jobs that should run.
 *  - For each reported job that has no worker yet it starts one, a dynamic
 *    background worker connected to the job's database as the job's owner
 *    (worker.cpp); the job's id, database and owner travel in bgw_extra.
 *  - A slot in shared memory per running job lets a control
 *    (pause/resume/cancel) wake the job's worker at once.
 * A worker that ends normally makes the launcher look at its database again
 * (the next job on the same table may be waiting).  One that ended
 * otherwise (terminated, an error it could not record) is looked at again
 * after 10 s, one that could not even connect (the owner's connection
 * limit, say) after a minute: no loop of restarts.
 */
#include "backfill.hpp"
#include "backfill/pacing.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace safe_migrate::backfill {

namespace {

constexpr int kMaxWakeups = 64;
constexpr int kMaxDatabases = 256;
constexpr int kMaxJobs = 64;      /* jobs running at once, in the whole cluster */
constexpr int kMaxReports = 256;
constexpr long kRecheckMs = 60 * 1000;
constexpr long kRetryMs = 10 * 1000; /* no slot for a worker: look again after */

struct JobSlot {
    Oid database; /* InvalidOid: free (set and cleared by the launcher) */
    int64 job;
    Oid owner;
    Latch *latch;   /* the worker's, once it has connected */
    bool connected; /* the worker got as far as its database */
    bool clean;     /* ... and ended normally (job done, stopped, or failed and recorded) */
    bool exited;    /* the worker is gone (set at its exit) */
    bool poked;     /* a control changed the job's status */
};

struct Report {
    Oid database;
    int64 job;
    Oid owner;
};

struct Shared {
    slock_t mutex;
    Latch *launcher_latch;
    bool overflow; /* too many wakeups or reports: recheck every database */
    int n_wakeups;
    Oid wakeups[kMaxWakeups];
    int n_reports;
    Report reports[kMaxReports];
    JobSlot slots[kMaxJobs];
};

Shared *shared = nullptr;
shmem_request_hook_type prev_shmem_request = nullptr;
shmem_startup_hook_type prev_shmem_startup = nullptr;

void request_shmem(void)
{
    if (prev_shmem_request)
        prev_shmem_request();
    RequestAddinShmemSpace(MAXALIGN(sizeof(Shared)));
}

void startup_shmem(void)
{
    if (prev_shmem_startup)
        prev_shmem_startup();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found;
    shared = (Shared *) ShmemInitStruct("safe_migrate backfill", sizeof(Shared), &found);
    if (!found) {
        memset(shared, 0, sizeof(Shared));
        SpinLockInit(&shared->mutex);
    }
    LWLockRelease(AddinShmemInitLock);
}

/* ---- the launcher's own state ---- */

struct Scout {
    Oid database;
    BackgroundWorkerHandle *handle;
    bool woken;          /* woken while its scout ran: start another when it ends */
    TimestampTz retry_at; /* 0, or when to look at the database again */
};

Scout scouts[kMaxDatabases];
int n_scouts = 0;
BackgroundWorkerHandle *job_handles[kMaxJobs];

Scout *scout_for(Oid db)
{
    for (int i = 0; i < n_scouts; i++)
        if (scouts[i].database == db)
            return &scouts[i];
    if (n_scouts == kMaxDatabases)
        return nullptr;
    Scout *s = &scouts[n_scouts++];
    s->database = db;
    s->handle = nullptr;
    s->woken = false;
    s->retry_at = 0;
    return s;
}

bool running(BackgroundWorkerHandle *handle)
{
    pid_t pid;
    return handle != nullptr && GetBackgroundWorkerPid(handle, &pid) != BGWH_STOPPED;
}

void fill_worker(BackgroundWorker *worker, const char *function)
{
    memset(worker, 0, sizeof(*worker));
    worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker->bgw_restart_time = BGW_NEVER_RESTART;
    snprintf(worker->bgw_library_name, BGW_MAXLEN, "safe_migrate");
    snprintf(worker->bgw_function_name, BGW_MAXLEN, "%s", function);
    worker->bgw_notify_pid = MyProcPid;
}

void retry_later(Oid db)
{
    Scout *s = scout_for(db);
    if (s && s->retry_at == 0)
        s->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), kRetryMs);
}

void start_scout(Scout *s)
{
    BackgroundWorker worker;
    fill_worker(&worker, "safe_migrate_backfill_scout_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "safe_migrate backfill scout for database %u",
             s->database);
    snprintf(worker.bgw_type, BGW_MAXLEN, "safe_migrate backfill scout");
    worker.bgw_main_arg = ObjectIdGetDatum(s->database);
    if (s->handle)
        pfree(s->handle);
    s->handle = nullptr;
    if (!RegisterDynamicBackgroundWorker(&worker, &s->handle)) {
        ereport(WARNING, (errmsg("safe_migrate: no background worker slot to look for the "
                                 "backfills of database %u; retrying later",
                                 s->database),
                          errhint("Raise max_worker_processes.")));
        s->handle = nullptr;
        s->woken = false;
        retry_later(s->database);
    } else
        s->woken = false;
}

void serve(Oid db)
{
    Scout *s = scout_for(db);
    if (s == nullptr)
        return;
    if (running(s->handle))
        s->woken = true;
    else
        start_scout(s);
}

void serve_all_databases(void)
{
    /* the list outlives the transaction: it is built in the caller's
     * context (the transaction's dies at commit) */
    MemoryContext outer = CurrentMemoryContext;
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
    HeapTuple tup;
    List *dbs = NIL;
    while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection))) {
        Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
        if (db->datallowconn && !db->datistemplate) {
            MemoryContext old = MemoryContextSwitchTo(outer);
            dbs = lappend_oid(dbs, db->oid);
            MemoryContextSwitchTo(old);
        }
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    PopActiveSnapshot();
    CommitTransactionCommand();
    ListCell *lc;
    foreach (lc, dbs)
        serve(lfirst_oid(lc));
    list_free(dbs);
}

/* A reported job: start its worker unless it has one. */
void start_job(const Report *r)
{
    int free_slot = -1;
    int of_owner = 0;
    SpinLockAcquire(&shared->mutex);
    for (int i = 0; i < kMaxJobs; i++) {
        JobSlot *s = &shared->slots[i];
        if (s->database == r->database && s->job == r->job) {
            SpinLockRelease(&shared->mutex);
            return; /* it has one */
        }
        if (s->database == InvalidOid && free_slot < 0)
            free_slot = i;
        if (s->database != InvalidOid && s->owner == r->owner)
            of_owner++;
    }
    if (workers_per_role > 0 && of_owner >= workers_per_role) {
        SpinLockRelease(&shared->mutex);
        ereport(LOG, (errmsg("safe_migrate: %d backfill jobs of role %u run already "
                             "(safe_migrate.backfill_workers_per_role); job %lld of database %u "
                             "waits for one of them to end",
                             of_owner, r->owner, (long long) r->job, r->database)));
        retry_later(r->database);
        return;
    }
    if (free_slot >= 0) {
        JobSlot *s = &shared->slots[free_slot];
        memset(s, 0, sizeof(*s));
        s->database = r->database;
        s->job = r->job;
        s->owner = r->owner;
    }
    SpinLockRelease(&shared->mutex);
    if (free_slot < 0) {
        ereport(LOG, (errmsg("safe_migrate: %d backfill jobs run already; job %lld of database "
                             "%u waits for one of them to end",
                             kMaxJobs, (long long) r->job, r->database)));
        retry_later(r->database);
        return;
    }

    BackgroundWorker worker;
    fill_worker(&worker, "safe_migrate_backfill_worker_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "safe_migrate backfill job %lld", (long long) r->job);
    snprintf(worker.bgw_type, BGW_MAXLEN, "safe_migrate backfill");
    WorkerArgs args = {r->database, r->owner, r->job, free_slot};
    StaticAssertStmt(sizeof(WorkerArgs) <= BGW_EXTRALEN, "bgw_extra too small");
    memcpy(worker.bgw_extra, &args, sizeof(args));
    if (job_handles[free_slot])
        pfree(job_handles[free_slot]);
    job_handles[free_slot] = nullptr;
    if (!RegisterDynamicBackgroundWorker(&worker, &job_handles[free_slot])) {
        ereport(WARNING, (errmsg("safe_migrate: no background worker slot for backfill job %lld "
                                 "of database %u; retrying later",
                                 (long long) r->job, r->database),
                          errhint("Each running backfill job takes one of max_worker_processes.")));
        job_handles[free_slot] = nullptr;
        SpinLockAcquire(&shared->mutex);
        shared->slots[free_slot].database = InvalidOid;
        SpinLockRelease(&shared->mutex);
        retry_later(r->database);
    }
}

/* Free the slots of workers that ended; their databases are looked at
 * again (at once if the worker ran, later if it could not connect). */
void reap_workers(void)
{
    for (int i = 0; i < kMaxJobs; i++) {
        SpinLockAcquire(&shared->mutex);
        JobSlot s = shared->slots[i];
        SpinLockRelease(&shared->mutex);
        if (s.database == InvalidOid)
            continue;
        /* without a handle (the launcher restarted) the worker's own exit
         * flag says it is gone */
        bool gone = job_handles[i] ? !running(job_handles[i]) : s.exited;
        if (!gone)
            continue;
        SpinLockAcquire(&shared->mutex);
        shared->slots[i].database = InvalidOid;
        SpinLockRelease(&shared->mutex);
        if (job_handles[i])
            pfree(job_handles[i]);
        job_handles[i] = nullptr;
        if (s.connected && s.clean)
            serve(s.database); /* the next job on its table may be waiting */
        else if (s.connected)
            retry_later(s.database); /* terminated, or an error it could not record */
        else {
            ereport(WARNING,
                    (errmsg("safe_migrate: the worker of backfill job %lld (database %u) could "
                            "not connect as the job's owner (role %u); retrying in %ld s",
                            (long long) s.job, s.database, s.owner, kRecheckMs / 1000),
                     errhint("The server log has the reason, such as the role's connection "
                             "limit.")));
            Scout *sc = scout_for(s.database);
            if (sc)
                sc->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), kRecheckMs);
        }
    }
}

JobSlot *slot_of(const WorkerArgs *args)
{
    if (shared == nullptr || args->slot < 0 || args->slot >= kMaxJobs)
        return nullptr;
    return &shared->slots[args->slot];
}

void on_worker_exit(int, Datum arg)
{
    const WorkerArgs *args = (const WorkerArgs *) DatumGetPointer(arg);
    JobSlot *s = slot_of(args);
    if (s == nullptr)
        return;
    SpinLockAcquire(&shared->mutex);
    if (s->database == args->database && s->job == args->job) {
        s->latch = nullptr;
        s->exited = true;
    }
    Latch *launcher = shared->launcher_latch;
    SpinLockRelease(&shared->mutex);
    if (launcher)
        SetLatch(launcher);
}

}  // namespace

void register_launcher(void)
{
    prev_shmem_request = shmem_request_hook;
    shmem_request_hook = request_shmem;
    prev_shmem_startup = shmem_startup_hook;
    shmem_startup_hook = startup_shmem;

    BackgroundWorker worker;
    memset(&worker, 0, sizeof(worker));
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = 5;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "safe_migrate");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "safe_migrate_backfill_launcher_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "safe_migrate backfill launcher");
    snprintf(worker.bgw_type, BGW_MAXLEN, "safe_migrate backfill launcher");
    RegisterBackgroundWorker(&worker);
}

bool available(void) { return shared != nullptr; }

void wake_launcher(Oid database)
{
    if (shared == nullptr)
        return;
    SpinLockAcquire(&shared->mutex);
    bool known = false;
    for (int i = 0; i < shared->n_wakeups; i++)
        known |= shared->wakeups[i] == database;
    if (!known) {
        if (shared->n_wakeups < kMaxWakeups)
            shared->wakeups[shared->n_wakeups++] = database;
        else
            shared->overflow = true;
    }
    Latch *latch = shared->launcher_latch;
    SpinLockRelease(&shared->mutex);
    if (latch)
        SetLatch(latch);
}

bool report_job(Oid database, int64 job, Oid owner)
{
    if (shared == nullptr)
        return false;
    SpinLockAcquire(&shared->mutex);
    bool ok = shared->n_reports < kMaxReports;
    if (ok)
        shared->reports[shared->n_reports++] = Report{database, job, owner};
    else
        shared->overflow = true;
    Latch *latch = shared->launcher_latch;
    SpinLockRelease(&shared->mutex);
    if (latch)
        SetLatch(latch);
    return ok;
}

void poke_job(Oid database, int64 job)
{
    if (shared == nullptr)
        return;
    Latch *latch = nullptr;
    SpinLockAcquire(&shared->mutex);
    for (int i = 0; i < kMaxJobs; i++) {
        JobSlot *s = &shared->slots[i];
        if (s->database == database && s->job == job) {
            s->poked = true;
            latch = s->latch;
            break;
        }
    }
    SpinLockRelease(&shared->mutex);
    if (latch)
        SetLatch(latch);
}

bool worker_poked_now(const WorkerArgs *args)
{
    const volatile JobSlot *s = slot_of(args);
    return s != nullptr && s->database == args->database && s->job == args->job && s->poked;
}

void worker_begin(const WorkerArgs *args)
{
    before_shmem_exit(on_worker_exit, PointerGetDatum(args));
}

void worker_attach(const WorkerArgs *args)
{
    JobSlot *s = slot_of(args);
    if (s == nullptr)
        return;
    SpinLockAcquire(&shared->mutex);
    if (s->database == args->database && s->job == args->job) {
        s->latch = MyLatch;
        s->connected = true;
    }
    SpinLockRelease(&shared->mutex);
}

void worker_done(const WorkerArgs *args)
{
    JobSlot *s = slot_of(args);
    if (s == nullptr)
        return;
    SpinLockAcquire(&shared->mutex);
    if (s->database == args->database && s->job == args->job)
        s->clean = true;
    SpinLockRelease(&shared->mutex);
}

bool worker_sleep(const WorkerArgs *args, long ms)
{
    JobSlot *s = slot_of(args);
    TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);
    for (;;) {
        if (s) {
            SpinLockAcquire(&shared->mutex);
            bool poked = s->poked && s->database == args->database && s->job == args->job;
            if (poked)
                s->poked = false;
            SpinLockRelease(&shared->mutex);
            if (poked)
                return true;
        }
        long remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);
        if (remaining <= 0)
            return false;
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, remaining,
                         PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
}

extern "C" void safe_migrate_backfill_launcher_main(Datum)
{
    pqsignal(SIGTERM, die);
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
    pgstat_report_appname("safe_migrate backfill launcher");

    SpinLockAcquire(&shared->mutex);
    shared->launcher_latch = MyLatch;
    SpinLockRelease(&shared->mutex);

    serve_all_databases();
    TimestampTz last_recheck = GetCurrentTimestamp();
    for (;;) {
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000,
                         PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }

        Oid woken[kMaxWakeups];
        Report *reports = (Report *) palloc(sizeof(Report) * kMaxReports);
        SpinLockAcquire(&shared->mutex);
        int n = shared->n_wakeups;
        int n_reports = shared->n_reports;
        bool overflow = shared->overflow;
        memcpy(woken, shared->wakeups, sizeof(Oid) * n);
        memcpy(reports, shared->reports, sizeof(Report) * n_reports);
        shared->n_wakeups = 0;
        shared->n_reports = 0;
        shared->overflow = false;
        SpinLockRelease(&shared->mutex);

        reap_workers();
        for (int i = 0; i < n_reports; i++)
            start_job(&reports[i]);
        pfree(reports);
        for (int i = 0; i < n; i++)
            serve(woken[i]);
        TimestampTz now = GetCurrentTimestamp();
        for (int i = 0; i < n_scouts; i++) {
            Scout *s = &scouts[i];
            /* a scout that ended while its database was woken: start another */
            if (s->woken && !running(s->handle))
                start_scout(s);
            else if (s->retry_at != 0 && now >= s->retry_at) {
                s->retry_at = 0;
                serve(s->database);
            }
        }
        if (overflow || TimestampDifferenceExceeds(last_recheck, now, kRecheckMs)) {
            serve_all_databases();
            last_recheck = GetCurrentTimestamp();
        }
    }
}

}  // namespace safe_migrate::backfill
