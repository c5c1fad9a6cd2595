/*
 * launcher.cpp — the backfill launcher and its shared memory.
 *
 * The launcher connects to no database.  At start (server start, restart
 * after a crash) it starts a worker for every database that accepts
 * connections: a worker with nothing to do exits at once, one with jobs left
 * 'running' by a crash resumes them.  Afterwards migrate_backfill() wakes it
 * with the database's OID.  Workers notify it when they exit; it restarts a
 * worker whose database was woken meanwhile, and rechecks every database now
 * and then so that no job is forgotten.
 */
#include "backfill.hpp"

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
constexpr long kRecheckMs = 60 * 1000;

struct Shared {
    slock_t mutex;
    Latch *launcher_latch;
    bool overflow; /* too many wakeups: recheck every database */
    int n_wakeups;
    Oid wakeups[kMaxWakeups];
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

struct Served {
    Oid database;
    BackgroundWorkerHandle *handle;
    bool woken; /* woken while its worker ran: start another when it ends */
};

Served served[kMaxDatabases];
int n_served = 0;

Served *served_for(Oid db)
{
    for (int i = 0; i < n_served; i++)
        if (served[i].database == db)
            return &served[i];
    if (n_served == kMaxDatabases)
        return nullptr;
    Served *s = &served[n_served++];
    s->database = db;
    s->handle = nullptr;
    s->woken = false;
    return s;
}

bool running(Served *s)
{
    pid_t pid;
    return s->handle != nullptr &&
           GetBackgroundWorkerPid(s->handle, &pid) != BGWH_STOPPED;
}

void start_worker(Served *s)
{
    BackgroundWorker worker;
    memset(&worker, 0, sizeof(worker));
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "safe_migrate");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "safe_migrate_backfill_worker_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "safe_migrate backfill worker for database %u",
             s->database);
    snprintf(worker.bgw_type, BGW_MAXLEN, "safe_migrate backfill");
    worker.bgw_main_arg = ObjectIdGetDatum(s->database);
    worker.bgw_notify_pid = MyProcPid;
    if (s->handle)
        pfree(s->handle);
    s->handle = nullptr;
    if (!RegisterDynamicBackgroundWorker(&worker, &s->handle)) {
        ereport(WARNING, (errmsg("safe_migrate: no background worker slot for the backfill of "
                                 "database %u; retrying later",
                                 s->database),
                          errhint("Raise max_worker_processes.")));
        s->handle = nullptr;
        s->woken = true;
    } else
        s->woken = false;
}

void serve(Oid db)
{
    Served *s = served_for(db);
    if (s == nullptr)
        return;
    if (running(s))
        s->woken = true;
    else
        start_worker(s);
}

void serve_all_databases(void)
{
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
    HeapTuple tup;
    List *dbs = NIL;
    while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection))) {
        Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
        if (db->datallowconn && !db->datistemplate)
            dbs = lappend_oid(dbs, db->oid);
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    PopActiveSnapshot();
    CommitTransactionCommand();
    ListCell *lc;
    foreach (lc, dbs)
        serve(lfirst_oid(lc));
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
        SpinLockAcquire(&shared->mutex);
        int n = shared->n_wakeups;
        bool overflow = shared->overflow;
        memcpy(woken, shared->wakeups, sizeof(Oid) * n);
        shared->n_wakeups = 0;
        shared->overflow = false;
        SpinLockRelease(&shared->mutex);

        for (int i = 0; i < n; i++)
            serve(woken[i]);
        /* a worker that ended while its database was woken: start another */
        for (int i = 0; i < n_served; i++)
            if (served[i].woken && !running(&served[i]))
                start_worker(&served[i]);
        if (overflow ||
            TimestampDifferenceExceeds(last_recheck, GetCurrentTimestamp(), kRecheckMs)) {
            serve_all_databases();
            last_recheck = GetCurrentTimestamp();
        }
    }
}

}  // namespace safe_migrate::backfill
