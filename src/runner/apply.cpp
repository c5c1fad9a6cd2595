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
#include "pg/core_bridge.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
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
}

namespace safe_migrate::runner {

namespace {

constexpr Size kQueueSize = 64 * 1024;

struct Request {
    Mode mode;
    const char *script;
    const char *version;
    const char *description;
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

/*
 * Can the caller withdraw its xmin while it waits?  Only when nothing will
 * read data with the caller's snapshot after we return: the active portal is
 * a top-level SELECT without table scans or subplans that is calling us
 * directly (its snapshot is the active one), outside any subtransaction.
 */
bool caller_snapshot_is_disposable(void)
{
    if (ActivePortal == nullptr || ActivePortal->strategy != PORTAL_ONE_SELECT ||
        ActivePortal->queryDesc == nullptr || !ActiveSnapshotSet() ||
        GetActiveSnapshot() != ActivePortal->queryDesc->snapshot ||
        GetCurrentTransactionNestLevel() != 1 || list_length(ActivePortal->stmts) != 1)
        return false;
    PlannedStmt *stmt = linitial_node(PlannedStmt, ActivePortal->stmts);
    if (stmt->commandType != CMD_SELECT || stmt->subplans != NIL)
        return false;
    ListCell *lc;
    foreach (lc, stmt->rtable) {
        RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);
        if (rte->rtekind != RTE_RESULT && rte->rtekind != RTE_FUNCTION)
            return false;
    }
    return true;
}

/* Parse a script part in the caller to fail fast with positions that point
 * into the script.  Returns whether it needs a top-level runner step. */
bool check_statements(const char *sql, const char *what)
{
    List *volatile trees = NIL;
    MemoryContext cxt = CurrentMemoryContext;
    PG_TRY();
    {
        trees = raw_parser(sql, RAW_PARSE_DEFAULT);
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(cxt);
        ErrorData *edata = CopyErrorData();
        FlushErrorState();
        if (edata->cursorpos > 0) {
            edata->internalpos = edata->cursorpos;
            edata->internalquery = pstrdup(sql);
            edata->cursorpos = 0;
        }
        edata->context = psprintf("%s of the migration script", what);
        ReThrowError(edata);
    }
    PG_END_TRY();

    int n = list_length(trees);
    if (n == 0)
        return false;
    int *classes = (int *) palloc(sizeof(int) * n);
    bool needs_top_level = false;
    for (int i = 0; i < n; i++) {
        RawStmt *stmt = list_nth_node(RawStmt, trees, i);
        core::TxClass cls = classify_statement(stmt);
        classes[i] = static_cast<int>(cls);
        if (cls == core::TxClass::Forbidden)
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("statement %d of the %s: %s", i + 1, what, forbidden_reason(stmt)),
                            errdetail("Statement: %s", statement_text(sql, stmt)),
                            errhint("safe_migrate runs each migration in its own transactions; "
                                    "remove BEGIN/COMMIT and load data with INSERT or COPY FROM a "
                                    "server file.")));
        if (cls == core::TxClass::NonTransactional)
            needs_top_level = true;
    }
    pg::SegmentPlan plan;
    const char *problem = pg::plan_segments(classes, n, &plan);
    if (problem)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("%s", problem)));
    return needs_top_level;
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

/* Run the request in a background runner; returns the result rows. */
List *run_in_background(const Request *req, bool withdraw_xmin)
{
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
    hdr.caller_pid = MyProcPid;
    Size base = MAXALIGN(sizeof(SharedRequest));
    hdr.script_off = base + add_string(&strings, req->script);
    hdr.has_version = req->version != nullptr;
    hdr.version_off = base + add_string(&strings, req->version);
    hdr.has_description = req->description != nullptr;
    hdr.description_off = base + add_string(&strings, req->description);
    hdr.search_path_off = base + add_string(&strings, GetConfigOption("search_path", false, false));
    hdr.applied_by_off = base + add_string(&strings, GetUserNameFromId(hdr.current_user_id, false));
    hdr.mq_off = MAXALIGN(base + strings.len);
    hdr.mq_size = kQueueSize;

    dsm_segment *seg = dsm_create(hdr.mq_off + hdr.mq_size, 0);
    char *addr = (char *) dsm_segment_address(seg);
    memcpy(addr, &hdr, sizeof(hdr));
    memcpy(addr + base, strings.data, strings.len);
    shm_mq *mq = shm_mq_create(addr + hdr.mq_off, hdr.mq_size);
    shm_mq_set_receiver(mq, MyProc);

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
    if (!RegisterDynamicBackgroundWorker(&worker, &handle))
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

    PG_TRY();
    {
        if (withdraw_xmin) {
            /* see the file header: nothing reads with our snapshot again */
            InvalidateCatalogSnapshot();
            MyProc->xmin = InvalidTransactionId;
        }
        for (;;) {
            Size nbytes;
            void *data;
            shm_mq_result res = shm_mq_receive(mqh, &nbytes, &data, false);
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
    PG_CATCH();
    {
        /* cancelled or failed while the runner works: stop it too */
        TerminateBackgroundWorker(handle);
        PG_RE_THROW();
    }
    PG_END_TRY();

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

char *text_arg(FunctionCallInfo fcinfo, int n)
{
    return PG_ARGISNULL(n) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

}  // namespace

Datum apply_impl(FunctionCallInfo fcinfo)
{
    refuse_context("migrate_apply");
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("migration script must not be null")));
    Request req;
    req.mode = Mode::Apply;
    req.script = text_arg(fcinfo, 0);
    req.version = text_arg(fcinfo, 1);
    req.description = text_arg(fcinfo, 2);

    pg::PreparedScript prepared;
    const char *problem = pg::prepare_script(req.script, req.version, &prepared);
    if (problem)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid migration script: %s", problem)));
    bool needs_top_level = check_statements(prepared.up, "up section");
    if (prepared.down)
        (void) check_statements(prepared.down, "down section");
    List *probe = raw_parser(prepared.up, RAW_PARSE_DEFAULT);
    if (probe == NIL)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("migration script contains no statements"),
                        errhint("A script needs at least one SQL statement%s.",
                                prepared.dbmate_format ? " in its \"-- migrate:up\" section" : "")));

    bool disposable = caller_snapshot_is_disposable();
    if (needs_top_level && !disposable)
        ereport(ERROR,
                (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                 errmsg("a migration with statements that cannot run inside a transaction block "
                        "must be applied by a top-level SELECT migrate_apply(...)"),
                 errdetail("Concurrent index builds wait for every older snapshot, including the "
                           "one of the query calling migrate_apply, which here stays in use."),
                 errhint("Run \"SELECT migrate_apply(...)\" as a statement of its own.")));

    List *rows = run_in_background(&req, disposable);

    TupleDesc tupdesc;
    if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "return type must be a row type");
    tupdesc = BlessTupleDesc(tupdesc);
    Datum values[7];
    bool nulls[7] = {false, false, false, false, false, false, false};
    row_values((ResultRow *) linitial(rows), values, nulls);
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

Datum rollback_impl(FunctionCallInfo fcinfo)
{
    refuse_context("migrate_rollback");
    Request req;
    req.mode = Mode::Rollback;
    req.script = nullptr;
    req.version = text_arg(fcinfo, 0);
    req.description = nullptr;

    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
    List *rows = run_in_background(&req, caller_snapshot_is_disposable());
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
