/*
 * apply.cpp — migrate_apply() and migrate_rollback(): the caller's side.
 *
 * Validate and plan in the caller (fast, clear errors), then hand the work to
 * a background runner (worker.cpp) and relay what it says: notices and
 * warnings as they come, its error as the caller's error, result rows.
 *
 * While waiting, a caller that runs a plain top-level
 * `SELECT migrate_apply(...)` withdraws its xmin: CREATE INDEX CONCURRENTLY
 * in the runner waits for every transaction whose snapshot is older than its
 * own, and the deadlock detector cannot see a wait on our own caller.
 */
#include "runner.hpp"
#include "classify.hpp"
#include "derive.hpp"
#include "lockwait.hpp"
#include "pg/cancel.hpp"
#include "pg/compat.hpp"
#include "pg/core_bridge.hpp"
#include "pg/errcodes.hpp"
#include "pg/guard.hpp"
#include "pg/privileged.hpp"
#include "pg/snapshot.hpp"
#include "pg/subxact.hpp"
#include "pg/warnings.hpp"
#include "policy/policy.hpp"

#include <csignal>

extern "C" {
#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/wait_event.h"
#include "storage/lock.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "libpq/pqmq.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "parser/parser.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/proc.h"
#include "tcop/pquery.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/timeout.h"
}

namespace safe_migrate::runner {

namespace {

constexpr Size kQueueSize = 64 * 1024;

struct Request {
    Mode mode;
    const char *script;
    const char *version;
    const char *description;
    /* RecordFailure only */
    TimestampTz started_at;
    ErrorData *failure;
    const char *failed_statement;
    int statements;
    int lock_retries;
};

/* A result row as the runner sent it. */
struct ResultRow {
    char *version;
    char *status;
    int statements;
    int lock_retries;
    int64 duration_us;
    char *checksum;
    int n_warnings;
    char **warnings;
};

void refuse_context(const char *fname)
{
    refuse_inside_migration(fname);
    if (RecoveryInProgress())
        ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
                        errmsg("%s cannot run on a standby server", fname),
                        errhint("Run migrations on the primary; they reach standbys through "
                                "replication.")));
    if (IsTransactionBlock())
        ereport(ERROR,
                (errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
                 errmsg("%s cannot run inside a transaction block", fname),
                 errdetail("A migration commits its own transactions in a background session; "
                           "the caller's transaction block could neither include nor undo them."),
                 errhint("Call %s in its own statement, outside BEGIN ... COMMIT.", fname)));
}

/* A script part, parsed once in the caller. */
struct ParsedPart {
    List *trees;          /* RawStmt list */
    bool needs_top_level; /* some statement cannot run in a transaction block */
    bool all_transactional;
    bool session_state;   /* some statement leaves session state (keeps_session_state) */
    int n_steps;          /* transactions it runs in (core::plan_segments) */
    int first_step_statements;
};

/* Parse a script part in the caller to fail fast with positions that point
 * into the script, and classify its statements.  A wrapped part (its own
 * BEGIN; ... COMMIT; was blanked out by prepare_script) runs as one
 * transaction: a statement that cannot run inside a transaction block is an
 * error there, as it would be in psql, and the rest share the transaction. */
ParsedPart check_statements(const char *sql, const char *what, bool wrapped)
{
    List *trees = parse_script(sql, what);
    ParsedPart part = {trees, false, true, false, 0, 0};
    int n = list_length(trees);
    if (n == 0)
        return part;
    /* the statement to blame for misplaced transaction control: a plain
     * BEGIN that opens an unwrapped section is misplaced only because of
     * what follows (a final ROLLBACK, COMMIT AND CHAIN, a second BEGIN):
     * name the first of those if there is one (in a wrapped section a
     * BEGIN is a nested one: blame it) */
    int blame = -1;
    for (int i = 0; i < n; i++) {
        RawStmt *stmt = list_nth_node(RawStmt, trees, i);
        if (classify_statement(stmt) != core::TxClass::Forbidden)
            continue;
        if (blame < 0)
            blame = i;
        if (blame == 0 && i > 0 && !wrapped &&
            opens_transaction_plainly(linitial_node(RawStmt, trees))) {
            blame = i;
            break;
        }
    }
    if (blame >= 0) {
        RawStmt *stmt = list_nth_node(RawStmt, trees, blame);
        /* the hint is about transaction control and COPY; the other
         * refusals say all in their message */
        bool hinted = IsA(stmt->stmt, TransactionStmt) || IsA(stmt->stmt, CopyStmt);
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("statement %d of the %s: %s", blame + 1, what, forbidden_reason(stmt)),
                        errdetail("Statement: %s", statement_text(sql, stmt)),
                        hinted ? errhint("A section wrapped in its own BEGIN; ... COMMIT; runs as one "
                                         "transaction; otherwise safe_migrate runs the migration in "
                                         "transactions of its own. Load data with INSERT or COPY FROM "
                                         "a server file.")
                               : 0));
    }
    int *classes = (int *) palloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) {
        RawStmt *stmt = list_nth_node(RawStmt, trees, i);
        core::TxClass cls = classify_statement(stmt);
        if (wrapped) {
            refuse_outside_block_only(sql, stmt, i + 1, what);
            cls = core::TxClass::Transactional;
        }
        classes[i] = static_cast<int>(cls);
        if (keeps_session_state(stmt))
            part.session_state = true;
        if (cls == core::TxClass::NonTransactional)
            part.needs_top_level = true;
        if (cls != core::TxClass::Transactional)
            part.all_transactional = false;
    }
    pg::SegmentPlan plan;
    const char *problem = pg::plan_segments(classes, n, &plan);
    if (problem)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("%s", problem)));
    part.n_steps = plan.n_segments;
    part.first_step_statements = plan.n_segments > 0 ? plan.count[0] : 0;
    return part;
}

Size add_string(StringInfo buf, const char *s)
{
    Size off = buf->len;
    appendBinaryStringInfo(buf, s ? s : "", s ? strlen(s) : 0);
    appendStringInfoChar(buf, '\0');
    return off;
}

void parse_result(StringInfo msg, ResultRow *row)
{
    row->version = pstrdup(pq_getmsgstring(msg));
    row->status = pstrdup(pq_getmsgstring(msg));
    row->statements = pq_getmsgint(msg, 4);
    row->lock_retries = pq_getmsgint(msg, 4);
    row->duration_us = pq_getmsgint64(msg);
    row->checksum = pstrdup(pq_getmsgstring(msg));
    row->n_warnings = pq_getmsgint(msg, 4);
    row->warnings = (char **) palloc(sizeof(char *) * (row->n_warnings + 1));
    for (int i = 0; i < row->n_warnings; i++)
        row->warnings[i] = pstrdup(pq_getmsgstring(msg));
}

/* If this backend exits while its runner works (pg_terminate_backend, a
 * FATAL error), the runner must stop too: nobody would get its outcome, and
 * a terminated caller means "stop".  An ERROR is handled by PG_CATCH below;
 * this covers proc_exit, which does not unwind. */
void stop_runner_at_exit(int, Datum arg)
{
    /* PG_ENSURE_ERROR_CLEANUP calls this on an ERROR too: then the
     * PG_CATCH in run_in_background has cancelled the runner already, which
     * lets it clean up; a termination would not */
    if (!proc_exit_inprogress)
        return;
    TerminateBackgroundWorker((BackgroundWorkerHandle *) DatumGetPointer(arg));
}

/* Run the request in a background runner; returns the result rows.  When no
 * background worker slot is free, try again for up to wait_for_slot_ms. */
List *run_in_background(const Request *req, bool give_up_xmin, int wait_for_slot_ms = 0)
{
    /* an earlier migration of this transaction (or hold_migrations) holds
     * the migration lock until the transaction ends: a runner would wait
     * for it, and we for the runner, forever (no deadlock the server sees) */
    if (req->mode != Mode::RecordFailure) {
        /* (recording a failure takes no migration lock) */
        LOCKTAG tag;
        migration_lock_tag(&tag);
        if (pg::compat::lock_held_by_me(&tag, ExclusiveLock))
            ereport(ERROR,
                    (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                     errmsg("this transaction holds the migration lock of database \"%s\"",
                            get_database_name(MyDatabaseId)),
                     errdetail("An earlier migration in this transaction (or "
                               "safe_migrate.hold_migrations()) took it, and keeps it until the "
                               "transaction ends; this one must run in a background runner, "
                               "which would wait for it forever."),
                     errhint("Commit first, then apply, roll back or test the next migration.")));
    }
    /* the request: header, strings, then the queue */
    StringInfoData strings;
    initStringInfo(&strings);
    SharedRequest hdr;
    memset(&hdr, 0, sizeof(hdr));
    hdr.mode = req->mode;
    hdr.database_id = MyDatabaseId;
    hdr.authenticated_user_id = GetAuthenticatedUserId();
    GetUserIdAndSecContext(&hdr.current_user_id, &hdr.sec_context);
    hdr.lock_timeout_ms = lock_timeout_ms;
    hdr.lock_retries = lock_retries;
    hdr.lock_retry_delay_ms = lock_retry_delay_ms;
    hdr.parallel_maintenance_workers = parallel_maintenance_workers;
    hdr.caller_pid = MyProcPid;
    Size base = MAXALIGN(sizeof(SharedRequest));
    hdr.script_off = base + add_string(&strings, req->script);
    hdr.has_version = req->version != nullptr;
    hdr.version_off = base + add_string(&strings, req->version);
    hdr.has_description = req->description != nullptr;
    hdr.description_off = base + add_string(&strings, req->description);
    hdr.search_path_off = base + add_string(&strings, GetConfigOption("search_path", false, false));
    hdr.applied_by_off = base + add_string(&strings, GetUserNameFromId(hdr.current_user_id, false));
    hdr.settings_off = base + strings.len;
    hdr.n_settings = capture_session_settings(&strings);
    if (req->mode == Mode::RecordFailure) {
        hdr.started_at = req->started_at;
        hdr.fail_sqlstate = req->failure->sqlerrcode;
        hdr.fail_statements = req->statements;
        hdr.fail_lock_retries = req->lock_retries;
        auto opt = [&](const char *v) -> Size { return v ? base + add_string(&strings, v) : 0; };
        hdr.fail_message_off = opt(req->failure->message);
        hdr.fail_detail_off = opt(req->failure->detail);
        hdr.fail_hint_off = opt(req->failure->hint);
        hdr.fail_statement_off = opt(req->failed_statement);
    }
    hdr.mq_off = MAXALIGN(base + strings.len);
    hdr.mq_size = kQueueSize;

    dsm_segment *seg = dsm_create(hdr.mq_off + hdr.mq_size, 0);
    char *addr = (char *) dsm_segment_address(seg);
    memcpy(addr, &hdr, sizeof(hdr));
    memcpy(addr + base, strings.data, strings.len);
    shm_mq *mq = shm_mq_create(addr + hdr.mq_off, hdr.mq_size);
    shm_mq_set_receiver(mq, MyProc);

    /* While another migration runs, wait for it here, not only in the
     * runner: a caller waiting on its own runner is a wait the deadlock
     * detector cannot see, so if the running migration's concurrent index
     * build waits for this transaction (it collected the older snapshots
     * while ours was still in use), neither would ever end.  Waited for as
     * a lock (wait_for_migration_lock), that cycle is found and the build
     * retried; afterwards no build waits for us (no xmin, no snapshot).
     * After the catalog lookups above: they take a catalog snapshot, and
     * with it an xmin again. */
    if (req->mode != Mode::RecordFailure) {
        LOCKTAG tag;
        migration_lock_tag(&tag);
        if (LockAcquire(&tag, ShareLock, false, true) == LOCKACQUIRE_NOT_AVAIL) {
            notice_waiting_for_migration_lock(&tag);
            if (give_up_xmin)
                pg::withdraw_xmin();
            wait_for_migration_lock(&tag, ShareLock, true, !give_up_xmin);
        }
        (void) LockRelease(&tag, ShareLock, false);
    }

    BackgroundWorker worker;
    memset(&worker, 0, sizeof(worker));
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_ConsistentState;
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "safe_migrate");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "safe_migrate_runner_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "safe_migrate runner for PID %d", MyProcPid);
    snprintf(worker.bgw_type, BGW_MAXLEN, "safe_migrate runner");
    worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
    worker.bgw_notify_pid = MyProcPid;

    BackgroundWorkerHandle *handle = nullptr;
    bool registered = RegisterDynamicBackgroundWorker(&worker, &handle);
    for (int waited = 0; !registered && waited < wait_for_slot_ms; waited += 100) {
        pg::sleep_ms(100);
        registered = RegisterDynamicBackgroundWorker(&worker, &handle);
    }
    if (!registered)
        ereport(ERROR,
                (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                 errmsg("could not start a safe_migrate runner: no background worker slot is free"),
                 errdetail("Each running migration uses one background worker; parallel queries "
                           "and other extensions use the same slots."),
                 errhint("Raise max_worker_processes (currently %d), or retry when fewer "
                         "migrations and parallel queries run.",
                         max_worker_processes)));

    shm_mq_handle *mqh = shm_mq_attach(mq, seg, handle);
    List *rows = NIL;

    PG_ENSURE_ERROR_CLEANUP(stop_runner_at_exit, PointerGetDatum(handle));
    SM_PG_TRY_NESTED();
    {
        if (give_up_xmin) {
            /* see the file header: nothing reads with our snapshot again */
            pg::withdraw_xmin();
        }
        for (;;) {
            Size nbytes;
            void *data;
            /* waited for as an extension's wait, not MessageQueueReceive:
             * a session waiting on its own runner is not the application
             * (the backfill's pacer counts sessions in IPC waits as working
             * ones, and took a caller waiting on a runner that waits on the
             * backfill for application load: the job crawled in short
             * batches with nobody else on the server) */
            shm_mq_result res = shm_mq_receive(mqh, &nbytes, &data, true);
            if (res == SHM_MQ_WOULD_BLOCK) {
                (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L, PG_WAIT_EXTENSION);
                ResetLatch(MyLatch);
                CHECK_FOR_INTERRUPTS();
                continue;
            }
            if (res != SHM_MQ_SUCCESS)
                break;
            StringInfoData msg;
            /* a read-only view of the message (initReadOnlyStringInfo is PG17+) */
            msg.data = (char *) data;
            msg.len = (int) nbytes;
            msg.maxlen = 0;
            msg.cursor = 0;
            char type = pq_getmsgbyte(&msg);
            if (type == 'E' || type == 'N') {
                ErrorData edata;
                pq_parse_errornotice(&msg, &edata);
                /* a runner's FATAL ends the runner, not the caller */
                if (edata.elevel > ERROR)
                    edata.elevel = ERROR;
                ThrowErrorData(&edata);
            } else if (type == kResultMessage) {
                ResultRow *row = (ResultRow *) palloc(sizeof(ResultRow));
                parse_result(&msg, row);
                rows = lappend(rows, row);
            }
            /* other protocol messages (parameter status, ...) do not matter */
        }
    }
    SM_PG_CATCH_NESTED();
    {
        /* cancelled or failed while the runner works: stop it too.  A
         * cancel, not a termination, so that it rolls back its step, drops
         * the invalid index of an interrupted concurrent build and records
         * the outcome (worker.cpp) before it exits; one not started yet
         * never starts. */
        pid_t runner_pid;
        if (GetBackgroundWorkerPid(handle, &runner_pid) == BGWH_STARTED)
            (void) kill(runner_pid, SIGINT);
        else
            TerminateBackgroundWorker(handle);
        PG_RE_THROW();
    }
    SM_PG_END_TRY_NESTED();
    PG_END_ENSURE_ERROR_CLEANUP(stop_runner_at_exit, PointerGetDatum(handle));

    pid_t pid;
    if (rows == NIL)
        ereport(ERROR,
                (errcode(ERRCODE_CONNECTION_FAILURE),
                 errmsg("the safe_migrate runner ended without a result"),
                 errdetail("%s",
                           GetBackgroundWorkerPid(handle, &pid) == BGWH_NOT_YET_STARTED
                               ? "The runner could not be started."
                               : "The runner exited; see the server log."),
                 errhint("The outcome of the migration is recorded in safe_migrate.history.")));
    dsm_detach(seg);
    return rows;
}

Datum warnings_datum(const ResultRow *row);

/* ---------------- the in-caller path ---------------- */

/*
 * A migration whose statements are all transactional runs in the caller's
 * own backend, in a subtransaction, and commits with the caller's statement:
 * no background worker to start, one commit.  Its history row is written in
 * the same transaction, so migration and record commit together.  Only a
 * failure needs a background runner, to record the failed row in a
 * transaction that outlives the caller's rollback.
 *
 * Returns NULL when the migration should go to a background runner instead:
 * another migration holds the lock and the caller cannot wait for it without
 * holding a snapshot (see pg::caller_snapshot_is_disposable), or the caller's
 * isolation level would hide a version applied while we waited.
 */
ResultRow *make_row(const char *version, const char *status, int statements, int retries,
                    TimestampTz started, const char *checksum, List *warnings)
{
    ResultRow *row = (ResultRow *) palloc0(sizeof(ResultRow));
    row->version = pstrdup(version);
    row->status = pstrdup(status);
    row->statements = statements;
    row->lock_retries = retries;
    row->duration_us = GetCurrentTimestamp() - started;
    row->checksum = pstrdup(checksum);
    row->n_warnings = list_length(warnings);
    row->warnings = (char **) palloc(sizeof(char *) * (row->n_warnings + 1));
    for (int i = 0; i < row->n_warnings; i++)
        row->warnings[i] = (char *) list_nth(warnings, i);
    return row;
}

/* Record a migration that failed in the caller's backend, in a transaction
 * that outlives the caller's rollback (a background runner's).  Never throws:
 * the caller must get the migration's own error whatever happens here. */
void record_failure(const Request *req, TimestampTz started, ErrorData *failure,
                    const char *failed_statement, int lock_retries)
{
    Request record = *req;
    record.mode = Mode::RecordFailure;
    record.started_at = started;
    record.failure = failure;
    record.failed_statement = failed_statement;
    record.statements = 0;
    record.lock_retries = lock_retries;
    MemoryContext cxt = CurrentMemoryContext;
    ErrorData *volatile problem = nullptr;
    PG_TRY();
    {
        (void) run_in_background(&record, false, 10 * 1000);
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(cxt);
        problem = CopyErrorData();
        FlushErrorState();
    }
    PG_END_TRY();
    if (problem)
        ereport(WARNING,
                (errmsg("the failure of migration \"%s\" could not be recorded in "
                        "safe_migrate.history: %s",
                        req->version ? req->version : "(derived from its checksum)",
                        problem->message),
                 errdetail("The migration's own error follows; its effects were rolled back.")));
}

/*
 * Session-level advisory locks a script takes (pg_advisory_lock and the
 * like) are held until its session ends: in a runner, when the migration
 * ends; in the caller's session, for good -- and behind a pooler by the
 * server connection the next client gets, for whom a migration that takes
 * the same lock then waits forever.  A failed migration's subtransaction
 * does not release them either.  So when the caller held no advisory lock
 * as its migration started, the session-level ones held when it ends are
 * the script's, and are released as the runner's exit would release them
 * (pg_advisory_unlock_all; transaction-level ones, the migration lock among
 * them, end with the transaction as before).  A caller that holds advisory
 * locks of its own keeps them, and so keeps what the script took.
 */
bool release_session_locks_at_end = false;

void release_script_session_locks(void)
{
    if (release_session_locks_at_end)
        LockReleaseSession(USER_LOCKMETHOD);
    release_session_locks_at_end = false;
}

ResultRow *run_in_caller(const Request *req, const pg::PreparedScript *prepared, List *trees,
                         bool disposable)
{
    if (XactIsoLevel != XACT_READ_COMMITTED)
        return nullptr;
    /* the setting the script was split under (trees), in this session */
    const bool split_scs = standard_conforming_strings;
    /* before the migration lock (a transaction-level advisory lock) */
    release_session_locks_at_end = !session_holds_advisory_locks();

    LOCKTAG tag;
    migration_lock_tag(&tag);
    if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL) {
        if (!disposable)
            return nullptr;
        notice_waiting_for_migration_lock(&tag);
        /* wait without a snapshot: a concurrent index build in the running
         * migration must not wait for us (nothing reads with our snapshot
         * again, see pg::caller_snapshot_is_disposable) */
        pg::withdraw_xmin();
        wait_for_migration_lock(&tag, ExclusiveLock, false, false);
    }
    /* held until the caller's transaction ends: when the migration commits */

    TimestampTz started = GetCurrentTimestamp();
    /* Everything this function keeps (statement texts, the error of a failed
     * statement, the result row) lives in the caller's memory context:
     * SPI_connect, and every SPI_execute* after it, make SPI's procedure
     * context current, and SPI_finish frees it with whatever was allocated
     * there.  Hence a switch back after each of our SPI calls. */
    MemoryContext caller_cxt = CurrentMemoryContext;
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    MemoryContextSwitchTo(caller_cxt);

    /* exactly once: look at the history under the lock */
    pg::Elevation e;
    pg::elevate(&e);
    /* an attempt of this version that committed steps (failed, interrupted,
     * or still "running" after a crash): its runner continues it, and
     * reconciles it itself.  Decided before reconcile_interrupted here: the
     * caller's transaction stays open until the runner is done, and the
     * row it updated would lock the runner out of the history. */
    {
        Oid types[1] = {TEXTOID};
        Datum values[1] = {CStringGetTextDatum(prepared->version)};
        if (SPI_execute_with_args("SELECT status IN ('running', 'failed', 'interrupted') "
                                  "AND steps_committed OPERATOR(pg_catalog.>) 0 AND abandoned_at IS NULL "
                                  "FROM safe_migrate.migrations WHERE version OPERATOR(pg_catalog.=) $1 "
                                  "ORDER BY id DESC LIMIT 1",
                                  1, types, values, nullptr, false, 1) != SPI_OK_SELECT)
            elog(ERROR, "could not read the history of migration \"%s\"", prepared->version);
        bool isnull = true;
        bool continued = SPI_processed == 1 &&
                         DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) &&
                         !isnull;
        if (continued) {
            pg::unelevate(&e);
            SPI_finish();
            MemoryContextSwitchTo(caller_cxt);
            (void) LockRelease(&tag, ExclusiveLock, false);
            return nullptr;
        }
    }
    MemoryContextSwitchTo(caller_cxt);
    reconcile_interrupted();
    {
        Oid types[1] = {TEXTOID};
        Datum values[1] = {CStringGetTextDatum(prepared->version)};
        /* not read-only: take a snapshot now, after the lock, so a version
         * applied while we waited is seen */
        SPI_execute_with_args("SELECT checksum, down_statements_committed, applied_by::pg_catalog.text "
                              "FROM safe_migrate.migrations "
                              "WHERE version OPERATOR(pg_catalog.=) $1 AND status = 'applied'",
                              1, types, values, nullptr, false, 1);
    }
    pg::unelevate(&e);
    MemoryContextSwitchTo(caller_cxt);
    if (SPI_processed > 0) {
        char *applied = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
        bool down_null;
        refuse_partly_rolled_back(
            prepared->version,
            DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &down_null)));
        if (strcmp(applied, prepared->checksum) != 0)
            ereport(ERROR,
                    (errcode(ERRCODE_SM_CHECKSUM_MISMATCH),
                     errmsg("migration \"%s\" was applied with a different checksum",
                            prepared->version),
                     errdetail("Applied by role %s, checksum: %s. This script's checksum: %s.",
                                   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3), applied,
                               prepared->checksum),
                     errhint("Never edit an applied migration: write the change as a new "
                             "version, or roll this one back first.")));
        SPI_finish();
        ereport(NOTICE, (errmsg("migration \"%s\" is already applied with the same checksum, "
                                "nothing to do",
                                prepared->version)));
        return make_row(prepared->version, "already_applied", 0, 0, started, prepared->checksum,
                        NIL);
    }
    /* partly applied by a runner (worker.cpp): another script is refused,
     * the same one continues there */
    {
        VersionAttempt partial;
        pg::elevate(&e);
        bool resume =
            check_partly_applied(prepared->version, prepared->checksum, e.saved_user, &partial);
        pg::unelevate(&e);
        MemoryContextSwitchTo(caller_cxt);
        if (resume) {
            SPI_finish();
            MemoryContextSwitchTo(caller_cxt);
            (void) LockRelease(&tag, ExclusiveLock, false);
            return nullptr;
        }
    }

    /* the statements, each by its own text as PostgreSQL's parser split it */
    int n = list_length(trees);
    char **texts = (char **) palloc(sizeof(char *) * (n + 1));
    for (int i = 0; i < n; i++)
        texts[i] = statement_text(prepared->up, list_nth_node(RawStmt, trees, i));
    /* the session's search_path as the migration starts: a down script runs
     * with it */
    char *search_path = pstrdup(GetConfigOption("search_path", false, false));

    int retries = 0;
    int attempt = 0;
    int deadlocks = 0;
    int current = 0;
    ErrorData *failure;
    /* how the statements' names resolve (derive.hpp): as the caller, outside
     * any elevation */
    NameResolution *at_apply = prepared->down ? nullptr : capture_name_resolution();
    policy::begin_migration(prepared->version, prepared->n_allows, prepared->allow_rules,
                            prepared->allow_reasons);
    /* the deadline of the statement calling migrate_apply, if any */
    TimestampTz outer_deadline = outer_statement_deadline();
    /* a cancel or that deadline, hidden by a lock timeout we absorb while
     * waiting or retrying, still ends the migration (cancel.hpp) */
    pg::watch_cancels(outer_deadline);
    /* the locks that conflict with the application (lockwait.hpp): all the
     * statements run in one subtransaction, the unit that a lock timeout
     * rolls back; waits happen outside it, holding none of its locks and,
     * when the caller's snapshot is disposable, no xmin */
    LockWait lw;
    RawStmt **raw = (RawStmt **) palloc(sizeof(RawStmt *) * (n + 1));
    for (int i = 0; i < n; i++)
        raw[i] = list_nth_node(RawStmt, trees, i);
    lock_wait_prepare(&lw, raw, n, caller_cxt, disposable);
    MemoryContextSwitchTo(caller_cxt);
    int step_lock_timeout = lock_wait_timeout(&lw, lock_timeout_ms);
    bool gave_up_waiting = false;
    for (;;) {
        int *current_ptr = &current;
        /* a cancel (or statement_timeout) while it waits is a failure of
         * the migration like any other: recorded, then raised */
        ErrorData *wait_result = nullptr;
        ErrorData **wait_result_ptr = &wait_result;
        LockWait *lw_ptr = &lw;
        failure = pg::in_subtransaction([wait_result_ptr, lw_ptr]() {
            *wait_result_ptr = lock_wait_outside_queue(lw_ptr);
        });
        MemoryContextSwitchTo(caller_cxt);
        if (failure == nullptr)
            failure = wait_result;
        if (failure != nullptr) {
            gave_up_waiting = true;
            break;
        }
        pg::collect_warnings(TopTransactionContext);
        failure = pg::in_subtransaction([&]() {
            int nest = NewGUCNestLevel();
            set_step_settings(step_lock_timeout, parallel_maintenance_workers, GUC_ACTION_SAVE);
            for (int i = 0; i < n; i++) {
                *current_ptr = i;
                policy::migration.statement = texts[i];
                /* statement_timeout per statement, as in the runner */
                /* each piece is read again by SPI, under the settings of
                 * now: once standard_conforming_strings differs from when
                 * the script was split (set_config in the script), it must
                 * still read as the one statement it was split into */
                if (standard_conforming_strings != split_scs &&
                    list_length(raw_parser(texts[i], RAW_PARSE_DEFAULT)) != 1)
                    ereport(ERROR,
                            (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                             errmsg("statement %d of the migration no longer reads as one statement",
                                    i + 1),
                             errdetail("A setting an earlier statement changed (such as "
                                       "standard_conforming_strings) makes PostgreSQL read it "
                                       "otherwise than when the script was split."),
                             errhint("Leave standard_conforming_strings as it is in migrations; "
                                     "write backslash escapes as E'...' strings.")));
                arm_statement_timeout(outer_deadline);
                if (SPI_execute(texts[i], false, 0) < 0)
                    elog(ERROR, "SPI_execute failed on statement %d", i + 1);
                restore_statement_timeout(outer_deadline);
                policy::check_large_dml(list_nth_node(RawStmt, trees, i), (double) SPI_processed);
            }
            policy::migration.statement = nullptr;
            /* verdicts on what the whole migration leaves behind */
            policy::finish_migration_checks();
            /* the script's SETs end with the migration, as they end with
             * the runner on the other path: the caller's session (its
             * search_path, role, timeouts) is as it was, and so the next
             * migration runs the same whichever path this one took */
            AtEOXact_GUC(false, nest);
        });
        MemoryContextSwitchTo(caller_cxt);
        restore_statement_timeout(outer_deadline);
        pg::stop_collecting_warnings();
        if (failure == nullptr)
            break;
        if (lw.active && failure->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE) {
            /* the short lock_timeout: look at the holders again */
            ErrorData *given_up = lock_wait_after_timeout(&lw, failure);
            MemoryContextSwitchTo(caller_cxt);
            if (given_up == nullptr) {
                retries++;
                continue;
            }
            failure = given_up;
            gave_up_waiting = true;
            break;
        }
        /* a deadlock the migration lost: the application's transaction
         * went ahead, and the migration (its subtransaction rolled back
         * whole) runs again, as after a lock timeout */
        if (failure->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED && deadlocks < lock_retries) {
            deadlocks++;
            retries++;
            ErrorData *stopped = pause_before_retry(failure, current + 1, deadlocks, lock_retries,
                                                    lock_retry_delay_ms);
            MemoryContextSwitchTo(caller_cxt);
            if (stopped == nullptr)
                continue;
            failure = stopped;
            break;
        }
        if (failure->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE && attempt < lock_retries) {
            attempt++;
            retries++;
            ErrorData *stopped = pause_before_retry(failure, current + 1, attempt, lock_retries,
                                                    lock_retry_delay_ms);
            MemoryContextSwitchTo(caller_cxt);
            if (stopped == nullptr)
                continue;
            failure = stopped;
        }
        break;
    }

    lock_wait_done(&lw);
    release_script_session_locks();
    char *overrides = policy::overrides_json();
    policy::end_migration();
    if (failure) {
        SPI_finish();
        MemoryContextSwitchTo(caller_cxt);
        if (failure->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE && !gave_up_waiting)
            failure->hint = psprintf(
                "The statement waited %d ms for its lock %d times. Find the blocking session "
                "with pg_blocking_pids(), or raise safe_migrate.lock_retries or "
                "safe_migrate.lock_timeout.",
                lock_timeout_ms, attempt + 1);
        /* record the failure in a transaction of its own, then fail */
        record_failure(req, started, failure, texts[current], retries);
        ReThrowError(failure);
    }

    /* no down section: derive one where the reverse is certain, now that
     * the statements ran, with the migration's role and search_path */
    const char *why = nullptr;
    const char *down =
        prepared->down ? prepared->down : derive_down_script(prepared->up, at_apply, &why);
    MemoryContextSwitchTo(caller_cxt);
    /* the blockers cancelled while waiting (outside the subtransaction
     * whose warnings are collected) come first */
    ResultRow *row = make_row(prepared->version, "applied", n, retries, started,
                              prepared->checksum,
                              list_concat(list_copy(lw.cancellations), pg::collected_warnings()));

    /* record it, in the migration's own transaction */
    pg::elevate(&e);
    {
        Oid types[12] = {TEXTOID,        TEXTOID, TEXTOID, TEXTOID,      TEXTOID, TEXTOID,
                         TIMESTAMPTZOID, INT4OID, INT4OID, TEXTARRAYOID, TEXTOID, TEXTOID};
        Datum values[12];
        char nulls[13] = "            ";
        auto text_or_null = [&](const char *v, int i) -> Datum {
            if (v == nullptr) {
                nulls[i] = 'n';
                return (Datum) 0;
            }
            return CStringGetTextDatum(v);
        };
        values[0] = CStringGetTextDatum(prepared->version);
        values[1] = text_or_null(req->description, 1);
        values[2] = CStringGetTextDatum(prepared->checksum);
        values[3] = CStringGetTextDatum(req->script);
        values[4] = text_or_null(down, 4);
        values[5] = CStringGetTextDatum(GetUserNameFromId(e.saved_user, false));
        values[6] = TimestampTzGetDatum(started);
        values[7] = Int32GetDatum(n);
        values[8] = Int32GetDatum(retries);
        values[9] = warnings_datum(row);
        values[10] = CStringGetTextDatum(overrides);
        values[11] = CStringGetTextDatum(search_path);
        if (SPI_execute_with_args(
                "INSERT INTO safe_migrate.migrations (version, description, checksum, script, "
                "down_script, applied_by, started_at, statements, lock_retries, warnings, "
                "overrides, search_path, status, finished_at) VALUES ($1, $2, $3, $4, $5, "
                "$6::pg_catalog.name, $7, $8, $9, $10, $11::pg_catalog.jsonb, $12, 'applied', "
                "pg_catalog.clock_timestamp())",
                12, types, values, nulls, false, 0) != SPI_OK_INSERT)
            elog(ERROR, "could not record migration \"%s\"", prepared->version);
    }
    pg::unelevate(&e);
    SPI_finish();
    MemoryContextSwitchTo(caller_cxt);
    return row;
}

Datum warnings_datum(const ResultRow *row)
{
    Datum *elems = (Datum *) palloc(sizeof(Datum) * (row->n_warnings + 1));
    for (int i = 0; i < row->n_warnings; i++)
        elems[i] = CStringGetTextDatum(row->warnings[i]);
    return PointerGetDatum(construct_array(elems, row->n_warnings, TEXTOID, -1, false, TYPALIGN_INT));
}

void row_values(const ResultRow *row, Datum *values, bool *nulls)
{
    Interval *duration = (Interval *) palloc0(sizeof(Interval));
    duration->time = row->duration_us;
    values[0] = CStringGetTextDatum(row->version);
    values[1] = CStringGetTextDatum(row->status);
    values[2] = Int32GetDatum(row->statements);
    values[3] = IntervalPGetDatum(duration);
    values[4] = Int32GetDatum(row->lock_retries);
    values[5] = warnings_datum(row);
    values[6] = CStringGetTextDatum(row->checksum);
    nulls[6] = row->checksum[0] == '\0';
}

Datum result_datum(FunctionCallInfo fcinfo, const ResultRow *row)
{
    TupleDesc tupdesc;
    if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "return type must be a row type");
    tupdesc = BlessTupleDesc(tupdesc);
    Datum values[7];
    bool nulls[7] = {false, false, false, false, false, false, false};
    row_values(row, values, nulls);
    return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

char *text_arg(FunctionCallInfo fcinfo, int n)
{
    return PG_ARGISNULL(n) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

}  // namespace

bool session_holds_advisory_locks(void)
{
    LockData *data = GetLockStatusData();
    for (int i = 0; i < data->nelements; i++) {
        const LockInstanceData *lock = &data->locks[i];
        if (lock->pid == MyProcPid && lock->holdMask != 0 &&
            lock->locktag.locktag_type == LOCKTAG_ADVISORY)
            return true;
    }
    return false;
}

void refuse_inside_migration(const char *fname)
{
    if (policy::migration.active)
        ereport(ERROR,
                (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                 errmsg("%s cannot be called from within a migration", fname),
                 errdetail("The migration \"%s\" running in this session holds the migration "
                           "lock: a migration started from it would wait for it forever.",
                           policy::migration.version ? policy::migration.version : ""),
                 errhint("Apply, roll back or test migrations one after the other, each in a "
                         "statement of its own.")));
}

void migration_lock_tag(LOCKTAG *tag)
{
    SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) (kMigrationLockKey >> 32),
                         (uint32) kMigrationLockKey, 3);
}

/* The NOTICE of a migration that waits for the migration lock, naming the
 * session that holds it (a migration's caller or runner, or an
 * administrator's hold_migrations()): any role's migration holds the others
 * off while it runs, and a DBA needs the pid to see or cancel it. */
void notice_waiting_for_migration_lock(const LOCKTAG *tag)
{
    int holder = 0;
    LockData *data = GetLockStatusData();
    for (int i = 0; i < data->nelements && holder == 0; i++) {
        const LockInstanceData *l = &data->locks[i];
        if (l->pid != MyProcPid && l->holdMask != 0 &&
            memcmp(&l->locktag, tag, sizeof(LOCKTAG)) == 0)
            holder = l->pid;
    }
    if (holder != 0)
        ereport(NOTICE,
                (errmsg("waiting for another migration of database \"%s\" to finish",
                        get_database_name(MyDatabaseId)),
                 errdetail("Session %d holds the migration lock; migrations of a database run one "
                           "at a time.", holder),
                 errhint("pg_stat_activity shows what it runs; an administrator can cancel it "
                         "with pg_cancel_backend(%d).", holder)));
    else
        ereport(NOTICE, (errmsg("waiting for another migration of database \"%s\" to finish",
                                get_database_name(MyDatabaseId))));
}

int deadlock_recheck_ms(void)
{
    return Max(DeadlockTimeout, 5000);
}

void wait_for_migration_lock(const LOCKTAG *tag, LOCKMODE mode, bool unbounded,
                             bool keeps_snapshot)
{
    const int saved_deadlock_timeout = DeadlockTimeout;
    const int saved_lock_timeout = LockTimeout;
    const int recheck = deadlock_recheck_ms();
    DeadlockTimeout = keeps_snapshot ? Min(saved_deadlock_timeout, 100)
                      : recheck > INT_MAX - 10000 ? INT_MAX
                                                  : recheck + 10000;
    if (unbounded)
        LockTimeout = 0;
    MemoryContext cxt = CurrentMemoryContext;
    PG_TRY();
    {
        (void) LockAcquire(tag, mode, false, false);
    }
    PG_CATCH();
    {
        DeadlockTimeout = saved_deadlock_timeout;
        LockTimeout = saved_lock_timeout;
        if (!keeps_snapshot)
            PG_RE_THROW();
        MemoryContextSwitchTo(cxt);
        ErrorData *edata = CopyErrorData();
        if (edata->sqlerrcode != ERRCODE_T_R_DEADLOCK_DETECTED)
            PG_RE_THROW();
        FlushErrorState();
        edata->hint = pstrdup(
            "This call of migrate_apply keeps its snapshot while it waits for the running "
            "migration (it is not a top-level SELECT migrate_apply(...)), and that migration's "
            "concurrent index build waits for every older snapshot. Call it as a statement of "
            "its own.");
        ReThrowError(edata);
    }
    PG_END_TRY();
    DeadlockTimeout = saved_deadlock_timeout;
    LockTimeout = saved_lock_timeout;
}

void set_step_settings(int lock_timeout, int parallel_workers, int action)
{
    (void) set_config_option("lock_timeout", psprintf("%d", lock_timeout), PGC_USERSET,
                             PGC_S_SESSION, (GucAction) action, true, 0, false);
    if (parallel_workers >= 0)
        (void) set_config_option("max_parallel_maintenance_workers",
                                 psprintf("%d", parallel_workers), PGC_USERSET, PGC_S_SESSION,
                                 (GucAction) action, true, 0, false);
    /* The pages a step writes itself (the hint bits a scan sets on freshly
     * filled rows, written as it evicts them from its ring of buffers; an
     * UPDATE's new row versions) go to disk as it goes, 256 kB at a time,
     * as the checkpointer's and the backfill worker's do, instead of
     * piling up in the kernel's page cache: measured after an online fill,
     * the concurrent index build and the validation left 120-175 MB there
     * within 2 s, and the kernel's write-out of it stalled every
     * application session for up to 200 ms.  A non-zero value the server
     * or the session set stands (an explicit 0 cannot be told from the
     * default); where the platform cannot (the setting's maximum is 0
     * there) nothing changes. */
    if (backend_flush_after == 0)
        (void) set_config_option("backend_flush_after", "32", PGC_USERSET, PGC_S_SESSION,
                                 (GucAction) action, true, DEBUG1, false);
}

Datum apply_impl(FunctionCallInfo fcinfo)
{
    refuse_context("migrate_apply");
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("migration script must not be null")));
    Request req;
    memset(&req, 0, sizeof(req));
    req.mode = Mode::Apply;
    req.script = text_arg(fcinfo, 0);
    req.version = text_arg(fcinfo, 1);
    req.description = text_arg(fcinfo, 2);

    pg::PreparedScript prepared;
    const char *problem = pg::prepare_script(req.script, req.version, &prepared);
    if (problem)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid migration script: %s", problem)));
    policy::check_allowances(prepared.n_allows, prepared.allow_rules);
    ParsedPart up = check_statements(prepared.up, "up section", prepared.up_wrapped);
    if (prepared.down)
        (void) check_statements(prepared.down, "down section", prepared.down_wrapped);
    /* an empty up section with a "-- migrate:down" marker records the
     * version (dbmate); with no down marker there is nothing to record */
    if (up.trees == NIL && prepared.down == nullptr)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("migration script contains no statements"),
                        errhint("A script needs at least one SQL statement%s.",
                                prepared.dbmate_format
                                    ? " in its \"-- migrate:up\" section, or a \"-- migrate:down\" "
                                      "section"
                                    : "")));

    bool disposable = pg::caller_snapshot_is_disposable(fcinfo);
    /* A statement that runs outside a transaction block in the runner
     * (a concurrent index build, VACUUM, a CALL that may commit) cannot
     * carry a security restriction: PostgreSQL keeps none across
     * transactions.  From a SECURITY DEFINER function or a
     * security-restricted operation (an index expression, a materialized
     * view's query run by someone else) such a statement would run freer
     * than its caller, in a session whose login may be a superuser's.  A
     * top-level call never has that context (it is refused below as not
     * top-level too); this says so by itself. */
    if (!up.all_transactional && (InSecurityRestrictedOperation() || InLocalUserIdChange()))
        ereport(ERROR,
                (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                 errmsg("a migration with statements that run outside a transaction block cannot "
                        "be applied from a SECURITY DEFINER function or a security-restricted "
                        "operation"),
                 errdetail("Such a statement cannot carry the caller's security restrictions."),
                 errhint("Run \"SELECT migrate_apply(...)\" as a statement of its own.")));
    /* a script that leaves session state (a temporary table, a prepared
     * statement, ...) runs in a runner, whose session ends with the
     * migration: in the caller's session that state would outlive the
     * migration, and behind a pooler reach the next client */
    if (up.all_transactional && !up.session_state) {
        ResultRow *volatile row = nullptr;
        PG_TRY();
        {
            row = run_in_caller(&req, &prepared, up.trees, disposable);
            release_script_session_locks();
        }
        PG_CATCH();
        {
            release_script_session_locks();
            policy::end_migration();
            PG_RE_THROW();
        }
        PG_END_TRY();
        if (row != nullptr)
            return result_datum(fcinfo, row);
    }
    if (up.needs_top_level && !disposable)
        ereport(ERROR,
                (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                 errmsg("a migration with statements that cannot run inside a transaction block "
                        "must be applied by a top-level SELECT migrate_apply(...)"),
                 errdetail("Concurrent index builds wait for every older snapshot, including the "
                           "one of the query calling migrate_apply, which here stays in use."),
                 errhint("Run \"SELECT migrate_apply(...)\" as a statement of its own.")));

    /* a statement the policy will refuse must not find earlier steps
     * committed: a corrected rerun would find them (an enum value already
     * added, a table already created) */
    if (up.n_steps > 1)
        policy::refuse_before_first_step(prepared.up, up.trees, up.first_step_statements + 1,
                                         up.n_steps, prepared.n_allows, prepared.allow_rules);

    List *rows = run_in_background(&req, disposable);
    return result_datum(fcinfo, (ResultRow *) linitial(rows));
}

Datum rollback_impl(FunctionCallInfo fcinfo)
{
    refuse_context("migrate_rollback");
    Request req;
    memset(&req, 0, sizeof(req));
    req.mode = Mode::Rollback;
    req.script = nullptr;
    req.version = text_arg(fcinfo, 0);
    req.description = nullptr;

    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
    List *rows = run_in_background(&req, pg::caller_snapshot_is_disposable(fcinfo));
    ListCell *lc;
    foreach (lc, rows) {
        ResultRow *row = (ResultRow *) lfirst(lc);
        if (strcmp(row->status, "none") == 0)
            continue;
        Datum values[7];
        bool nulls[7] = {false, false, false, false, false, false, false};
        row_values(row, values, nulls);
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum) 0;
}

}  // namespace safe_migrate::runner

/* migrate_apply(script text, version text, description text) */
SM_ENTRY(migrate_apply)
{
    return safe_migrate::runner::apply_impl(fcinfo);
}

/* migrate_rollback(to_version text) returns setof record */
SM_ENTRY(migrate_rollback)
{
    return safe_migrate::runner::rollback_impl(fcinfo);
}

/* safe_migrate.hold_migrations(): wait for the running migration, then hold
 * the migrations of this database off until the end of the transaction */
SM_ENTRY(safe_migrate_hold_migrations)
{
    LOCKTAG tag;
    safe_migrate::runner::migration_lock_tag(&tag);
    (void) LockAcquire(&tag, ExclusiveLock, false, false);
    PG_RETURN_VOID();
}

/* migrate_checksum(script text): what migrate_apply records */
SM_ENTRY(migrate_checksum)
{
    char *script = text_to_cstring(PG_GETARG_TEXT_PP(0));
    safe_migrate::pg::PreparedScript prepared;
    const char *problem = safe_migrate::pg::prepare_script(script, "checksum", &prepared);
    if (problem)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid migration script: %s", problem)));
    PG_RETURN_TEXT_P(cstring_to_text(prepared.checksum));
}
