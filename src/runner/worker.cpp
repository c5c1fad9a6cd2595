/*
 * worker.cpp — the background session that runs a migration.
 *
 * Started by migrate_apply/migrate_rollback (apply.cpp) as a dynamic
 * background worker, connected as the caller's login user with the caller's
 * current role, security context and search_path.  It:
 *   1. waits for the per-database migration lock (a session lock that no
 *      SQL function can take: it dies with this process, so it can never
 *      go stale, and no role can hold it to stop migrations) without holding
 *      a snapshot, so a CREATE INDEX CONCURRENTLY elsewhere never waits on it;
 *   2. records the attempt in safe_migrate.migrations (own transaction);
 *   3. runs the statements top level, in steps: consecutive transactional
 *      statements in one implicit transaction block (as a multi-statement
 *      query string runs), the others alone (core::plan_segments), with
 *      statement_timeout armed per statement; records each committed step
 *      in the step's own transaction (the step journal, journal.cpp), and
 *      skips the steps an interrupted or failed attempt of the same script
 *      committed; a lock timeout rolls the step back and retries it with
 *      backoff; a failed concurrent index build has its INVALID index
 *      dropped, and one left by an interrupted build is dropped before the
 *      build runs again;
 *   4. records the outcome and sends a result row back.
 * Notices and errors reach the caller through the shm_mq (pqmq).
 *
 * This file is PostgreSQL-style C++: no object with a destructor lives in a
 * frame that can ereport; the pure core is reached through core_bridge.
 */
#include "runner.hpp"
#include "pg/cancel.hpp"
#include "pg/compat.hpp"
#include "lockwait.hpp"
#include "classify.hpp"
#include "derive.hpp"
#include "pg/core_bridge.hpp"
#include "pg/errcodes.hpp"
#include "pg/privileged.hpp"
#include "pg/subxact.hpp"
#include "pg/warnings.hpp"
#include "policy/policy.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/partition.h"
#include "catalog/pg_inherits.h"
#include "storage/lmgr.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "parser/analyze.h"
#include "catalog/pg_authid.h"
#include "executor/spi.h"
#include "libpq/pqformat.h"
#include "libpq/pqmq.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "parser/parser.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/ps_status.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
}

namespace safe_migrate::runner {

namespace {

char *shared_base;
SharedRequest *request;
MemoryContext migration_cxt;
/* Security-context flags (SECURITY_LOCAL_USERID_CHANGE, ...) the script's
 * statements run under: the caller's, and a down script's restrictions.
 * PostgreSQL allows no such flag outside a transaction (StartTransaction
 * asserts it), so the session keeps only the user id; the flags are added
 * inside each step's transaction (step_restrict) and leave with it: right
 * after its commit (step_unrestrict; no transaction starts in between) or at
 * abort (which restores the user and flags
 * the transaction started with).  A statement that runs outside a
 * transaction block (CREATE INDEX CONCURRENTLY, VACUUM, ...) commits
 * inside: it runs without them, and it runs no SET ROLE of its own; user
 * code it evaluates (index expressions) PostgreSQL restricts itself. */
int script_sec_flags = 0;

/* The script runs as a role other than the runner's session user (a down
 * script rolled back by another role than the one that applied it): a CALL
 * then runs inside its step's transaction, restricted like every other
 * statement, instead of alone.  Alone it would run outside any
 * security-restricted operation (PostgreSQL allows none outside a
 * transaction), and a procedure could RESET ROLE (or SET ROLE to any role
 * of the session user) and go on with the rights of the role that rolls
 * back.  Inside the block a procedure cannot COMMIT: PostgreSQL refuses it
 * ("invalid transaction termination"). */
bool call_in_block = false;

void step_restrict(bool in_block)
{
    if (!in_block || script_sec_flags == 0)
        return;
    Oid user;
    int sec;
    GetUserIdAndSecContext(&user, &sec);
    SetUserIdAndSecContext(user, sec | script_sec_flags);
}

void step_unrestrict(bool in_block)
{
    if (!in_block || script_sec_flags == 0)
        return;
    Oid user;
    int sec;
    GetUserIdAndSecContext(&user, &sec);
    SetUserIdAndSecContext(user, sec & ~script_sec_flags);
}

const char *shared_string(Size off) { return shared_base + off; }

void regain_migration_lock(void);

/* ---------- history, written with the extension owner's rights ---------- */

void begin_history_xact(pg::Elevation *e)
{
    /* the history is written under the migration lock, also after a
     * script released it (see check_migration_lock) */
    regain_migration_lock();
    StartTransactionCommand();
    /* our bookkeeping writes whatever the script did to this session: a
     * `SET default_transaction_read_only = on` must not leave its effects
     * committed and their record unwritten (before any snapshot, as SET
     * TRANSACTION READ WRITE would) */
    XactReadOnly = false;
    PushActiveSnapshot(GetTransactionSnapshot());
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    pg::elevate(e);
}

void end_history_xact(pg::Elevation *e)
{
    pg::unelevate(e);
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
}

Datum text_or_null(const char *s, char *nulls, int i)
{
    if (s == nullptr) {
        nulls[i] = 'n';
        return (Datum) 0;
    }
    nulls[i] = ' ';
    return CStringGetTextDatum(s);
}

Datum warnings_array(void)
{
    int n = list_length(pg::collected_warnings());
    Datum *elems = (Datum *) palloc(sizeof(Datum) * (n + 1));
    int i = 0;
    ListCell *lc;
    foreach (lc, pg::collected_warnings())
        elems[i++] = CStringGetTextDatum((char *) lfirst(lc));
    return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Record the outcome; derived_down, when not NULL, becomes the down script
 * (derived once the up statements ran, see derive_after_apply). */
void history_finish(int64 id, const char *status, int statements, int retries, ErrorData *err,
                    const char *failed_statement, const char *derived_down = nullptr)
{
    pg::Elevation e;
    Oid types[12] = {INT8OID, TEXTOID, INT4OID, INT4OID, TEXTOID,     TEXTOID,
                     TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTOID, TEXTOID};
    Datum values[12];
    char nulls[13] = "            ";
    char *overrides = policy::overrides_json();

    /* the outcome is written whatever the caller does meanwhile: a cancel
     * (its caller giving up now) waits until it is, else the attempt would
     * stay "running" with its effects committed */
    HOLD_CANCEL_INTERRUPTS();
    begin_history_xact(&e);
    values[0] = Int64GetDatum(id);
    values[1] = CStringGetTextDatum(status);
    values[2] = Int32GetDatum(statements);
    values[3] = Int32GetDatum(retries);
    values[4] = text_or_null(err ? unpack_sql_state(err->sqlerrcode) : nullptr, nulls, 4);
    values[5] = text_or_null(err ? err->message : nullptr, nulls, 5);
    values[6] = text_or_null(err ? err->detail : nullptr, nulls, 6);
    values[7] = text_or_null(err ? err->hint : nullptr, nulls, 7);
    values[8] = text_or_null(failed_statement, nulls, 8);
    values[9] = warnings_array();
    values[10] = CStringGetTextDatum(overrides);
    values[11] = text_or_null(derived_down, nulls, 11);
    if (SPI_execute_with_args(
            "UPDATE safe_migrate.migrations SET status = $2, finished_at = pg_catalog.clock_timestamp(), "
            "statements = $3, lock_retries = $4, sqlstate = $5, error_message = $6, "
            "error_detail = $7, error_hint = $8, failed_statement = $9, warnings = $10, "
            "overrides = $11::pg_catalog.jsonb, "
            "down_script = COALESCE($12, down_script) WHERE id OPERATOR(pg_catalog.=) $1",
            12, types, values, nulls, false, 0) != SPI_OK_UPDATE)
        elog(ERROR, "could not record the outcome of migration %lld", (long long) id);
    end_history_xact(&e);
    RESUME_CANCEL_INTERRUPTS();
}

/* ---------------- serialisation of migrations ---------------- */

LOCKTAG migration_lock;
bool migration_lock_held = false;

/* Commits of this runner's transactions: a step whose statement committed
 * part of its work (a procedure that COMMITs) before it failed is not run
 * again, that part would be done twice. */
uint64 runner_commits = 0;

void count_commit(XactEvent event, void *)
{
    if (event == XACT_EVENT_COMMIT)
        runner_commits++;
}

/* While a step runs, PostgreSQL's deadlock check is requested again every
 * deadlock_recheck_ms (runner.hpp): a lock wait of the step (a concurrent
 * index build waiting for an older transaction) may become a cycle only
 * when that transaction's caller starts waiting for the migration lock,
 * after the one check PostgreSQL makes.  CheckDeadLockAlert is
 * PostgreSQL's own handler of deadlock_timeout (signal-safe: it sets a flag
 * and the latch, and the lock wait loop runs the check). */
TimeoutId deadlock_recheck_timeout = MAX_TIMEOUTS;

void recheck_deadlocks_during_step(bool on)
{
    if (deadlock_recheck_timeout == MAX_TIMEOUTS)
        deadlock_recheck_timeout = RegisterTimeout(USER_TIMEOUT, CheckDeadLockAlert);
    if (on) {
        const int ms = deadlock_recheck_ms();
        enable_timeout_every(deadlock_recheck_timeout,
                             TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms), ms);
    } else {
        disable_timeout(deadlock_recheck_timeout, false);
    }
}

void release_migration_lock(void)
{
    if (migration_lock_held)
        (void) LockRelease(&migration_lock, ExclusiveLock, true);
    migration_lock_held = false;
}

void acquire_migration_lock(void)
{
    /* A transaction without a snapshot: while we wait, MyProc->xmin stays
     * invalid, so concurrent index builds do not wait for us. */
    StartTransactionCommand();
    migration_lock_tag(&migration_lock);
    if (LockAcquire(&migration_lock, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL) {
        notice_waiting_for_migration_lock(&migration_lock);
        pgstat_report_activity(STATE_RUNNING, "waiting for the migration lock");
        (void) LockAcquire(&migration_lock, ExclusiveLock, true, false);
    }
    migration_lock_held = true;
    /* from now on every lock this runner waits for is bounded, and index
     * builds use safe_migrate.parallel_maintenance_workers */
    set_step_settings(request->lock_timeout_ms, request->parallel_maintenance_workers,
                      GUC_ACTION_SET);
    CommitTransactionCommand();
}

/* pg_advisory_unlock_all() releases every session-level advisory lock of
 * the session, the migration lock too (DISCARD ALL would as well: it is
 * refused in migrations).  A statement of the script that does so ends the
 * migration: checked after every statement, before its step commits (a
 * statement that commits by itself, like a procedure, has committed). */
void check_migration_lock(int statement)
{
    if (!migration_lock_held || pg::compat::lock_held_by_me(&migration_lock, ExclusiveLock))
        return;
    ereport(ERROR,
            (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
             errmsg("statement %d of the migration released the migration lock", statement),
             errdetail("pg_advisory_unlock_all() releases every session-level advisory lock of "
                       "the session, also the lock that keeps the migrations of database \"%s\" "
                       "one at a time. The migration was stopped.",
                       get_database_name(MyDatabaseId)),
             errhint("Release only the advisory locks the migration took, with "
                     "pg_advisory_unlock(key).")));
}

/* Take the migration lock again if a statement released it (waiting for a
 * migration that took it meanwhile), before the history is written. */
void regain_migration_lock(void)
{
    if (!migration_lock_held || pg::compat::lock_held_by_me(&migration_lock, ExclusiveLock))
        return;
    StartTransactionCommand();
    (void) LockAcquire(&migration_lock, ExclusiveLock, true, false);
    CommitTransactionCommand();
}

/* ---------------- running statements ---------------- */

/* Our messages reach the caller through a queue and are converted by the
 * caller's backend for its client: they must leave here in the database's
 * encoding, whatever a script's SET client_encoding (or set_config) did to
 * this session.  Identity needs no conversion lookup, so this is safe
 * anywhere, also outside a transaction. */
void keep_database_encoding(void)
{
    if (pg_get_client_encoding() != GetDatabaseEncoding())
        (void) SetClientEncoding(GetDatabaseEncoding());
}

/* SET / RESET client_encoding (SET NAMES) in a script: meaningless in a
 * runner, whose only client is the caller's backend. */
bool sets_client_encoding(const Node *stmt)
{
    if (!IsA(stmt, VariableSetStmt))
        return false;
    const char *name = ((const VariableSetStmt *) stmt)->name;
    return name != nullptr && pg_strcasecmp(name, "client_encoding") == 0;
}

/* One statement, top level, in the current transaction (like a statement of
 * exec_simple_query). */
void run_statement(RawStmt *parsetree, const char *query_string, const char *stmt_text)
{
    if (sets_client_encoding(parsetree->stmt)) {
        ereport(NOTICE,
                (errmsg("client_encoding is not changed in the safe_migrate runner"),
                 errdetail("The runner's messages reach your session through its own backend, "
                           "which converts them to your client_encoding.")));
        return;
    }
    MemoryContext stmt_cxt = AllocSetContextCreate(migration_cxt, "safe_migrate statement",
                                                   ALLOCSET_DEFAULT_SIZES);
    MemoryContext old = MemoryContextSwitchTo(stmt_cxt);
    CommandTag tag = CreateCommandTag(parsetree->stmt);
    bool snapshot_set = false;

    debug_query_string = stmt_text;
    policy::migration.statement = query_string;
    policy::migration.display = stmt_text;
    pgstat_report_activity(STATE_RUNNING, stmt_text);
    set_ps_display(GetCommandTagName(tag));

    if (analyze_requires_snapshot(parsetree)) {
        PushActiveSnapshot(GetTransactionSnapshot());
        snapshot_set = true;
    }
    List *querytrees = pg_analyze_and_rewrite_fixedparams(parsetree, query_string, nullptr, 0, nullptr);
    List *plans = pg_plan_queries(querytrees, query_string, CURSOR_OPT_PARALLEL_OK, nullptr);
    if (snapshot_set)
        PopActiveSnapshot();
    CHECK_FOR_INTERRUPTS();

    Portal portal = CreatePortal("", true, true);
    portal->visible = false;
    PortalDefineQuery(portal, nullptr, query_string, tag, plans, nullptr);
    PortalStart(portal, nullptr, 0, InvalidSnapshot);
    int16 format = 0;
    PortalSetResultFormat(portal, 1, &format);
    DestReceiver *receiver = CreateDestReceiver(DestNone);
    QueryCompletion qc;
    InitializeQueryCompletion(&qc);
    pg::compat::portal_run_all(portal, receiver, &qc);
    receiver->rDestroy(receiver);
    PortalDrop(portal, false);
    /* any statement may change rows (MERGE, a CTE, EXECUTE, DO, CALL, ...) */
    if (policy::migration.active)
        policy::check_large_dml(parsetree, (double) qc.nprocessed);

    /* plans and parse analysis must outlive commits done inside the
     * statement (CREATE INDEX CONCURRENTLY commits), hence our own context */
    MemoryContextSwitchTo(old);
    MemoryContextDelete(stmt_cxt);
    debug_query_string = nullptr;
    /* a set_config('client_encoding', ...) inside the statement */
    keep_database_encoding();
}

struct InvalidIndex {
    Oid oid;
    char *name; /* schema-qualified, quoted */
    Oid table;
    char *relname; /* unquoted */
};

List *list_invalid_indexes(void)
{
    List *result = NIL;
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    SPI_connect();
    int nest = pg::pin_search_path();
    SPI_execute("SELECT i.indexrelid, pg_catalog.format('%I.%I', n.nspname, c.relname), "
                "i.indrelid, c.relname::pg_catalog.text "
                "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE NOT i.indisvalid",
                true, 0);
    pg::unpin_search_path(nest);
    MemoryContext old = MemoryContextSwitchTo(migration_cxt);
    for (uint64 i = 0; i < SPI_processed; i++) {
        bool isnull;
        InvalidIndex *idx = (InvalidIndex *) palloc(sizeof(InvalidIndex));
        idx->oid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
        idx->name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
        idx->table = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull));
        idx->relname = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 4);
        result = lappend(result, idx);
    }
    MemoryContextSwitchTo(old);
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    return result;
}

bool in_list(List *indexes, Oid oid)
{
    ListCell *lc;
    foreach (lc, indexes)
        if (((InvalidIndex *) lfirst(lc))->oid == oid)
            return true;
    return false;
}

/* Which invalid indexes a failed concurrent build of raw may have left:
 * those on its table (any table for REINDEX SCHEMA / DATABASE / SYSTEM),
 * named as it names its index (CREATE INDEX with a name: that name;
 * REINDEX: PostgreSQL's <index>_ccnew / _ccold).  An index another
 * session builds meanwhile, elsewhere or by another name, is not ours. */
bool left_by(const RawStmt *raw, const InvalidIndex *idx, bool *busy)
{
    bool ours = false;
    *busy = false;
    StartTransactionCommand();
    if (IsA(raw->stmt, IndexStmt)) {
        const IndexStmt *stmt = (const IndexStmt *) raw->stmt;
        Oid rel = RangeVarGetRelid(stmt->relation, NoLock, true);
        ours = OidIsValid(rel) && rel == idx->table &&
               (stmt->idxname == nullptr || strcmp(stmt->idxname, idx->relname) == 0);
    } else if (IsA(raw->stmt, ReindexStmt)) {
        const ReindexStmt *stmt = (const ReindexStmt *) raw->stmt;
        Oid rel = InvalidOid;
        bool any = true;
        if (stmt->kind == REINDEX_OBJECT_INDEX || stmt->kind == REINDEX_OBJECT_TABLE) {
            any = false;
            rel = RangeVarGetRelid(stmt->relation, NoLock, true);
            if (OidIsValid(rel) && stmt->kind == REINDEX_OBJECT_INDEX)
                rel = get_rel_relkind(rel) == RELKIND_INDEX ? IndexGetRelation(rel, true)
                                                            : InvalidOid;
        }
        ours = (any || (OidIsValid(rel) && rel == idx->table)) &&
               (strstr(idx->relname, "_ccnew") != nullptr || strstr(idx->relname, "_ccold") != nullptr);
    }
    /* a build another session is running on that table holds SHARE UPDATE
     * EXCLUSIVE on it (so does a vacuum): leave its indexes alone */
    if (ours) {
        if (ConditionalLockRelationOid(idx->table, ShareUpdateExclusiveLock))
            UnlockRelationOid(idx->table, ShareUpdateExclusiveLock);
        else
            *busy = true;
    }
    CommitTransactionCommand();
    return ours;
}

/* After a failed concurrent build: drop the INVALID indexes it left.
 * Returns a description of what could not be dropped, or NULL. */
char *drop_new_invalid_indexes(List *before, const RawStmt *raw)
{
    StringInfoData problems;
    initStringInfo(&problems);
    List *after = list_invalid_indexes();
    ListCell *lc;
    foreach (lc, after) {
        InvalidIndex *idx = (InvalidIndex *) lfirst(lc);
        if (in_list(before, idx->oid))
            continue;
        bool busy;
        if (!left_by(raw, idx, &busy))
            continue;
        if (busy) {
            appendStringInfo(&problems,
                             "%sThe invalid index %s was not dropped: another session holds a lock "
                             "on its table that dropping it would wait for (an index build or "
                             "vacuum of its own, LOCK TABLE, DDL); drop it with DROP INDEX "
                             "CONCURRENTLY %s once that session is done.",
                             problems.len ? " " : "", idx->name, idx->name);
            continue;
        }
        char *sql = psprintf("DROP INDEX CONCURRENTLY IF EXISTS %s", idx->name);
        MemoryContext cxt = CurrentMemoryContext;
        PG_TRY();
        {
            List *trees = raw_parser(sql, RAW_PARSE_DEFAULT);
            StartTransactionCommand();
            run_statement(linitial_node(RawStmt, trees), sql, sql);
            CommitTransactionCommand();
            ereport(NOTICE, (errmsg("dropped invalid index %s left by the failed statement", idx->name)));
        }
        PG_CATCH();
        {
            MemoryContextSwitchTo(cxt);
            ErrorData *edata = CopyErrorData();
            FlushErrorState();
            AbortCurrentTransaction();
            appendStringInfo(&problems,
                             "%sThe invalid index %s could not be dropped (%s); drop it with "
                             "DROP INDEX CONCURRENTLY %s once the sessions holding locks on its "
                             "table are done.",
                             problems.len ? " " : "", idx->name, edata->message, idx->name);
        }
        PG_END_TRY();
    }
    return problems.len ? problems.data : nullptr;
}

/* ---------------- steps and their journal ---------------- */

/* A script parsed and split into steps (core::plan_segments). */
struct ScriptPlan {
    int n;            /* statements */
    RawStmt **stmts;
    char **texts;
    pg::SegmentPlan plan;
    ErrorData *error; /* the script cannot run: parse or plan error */
};

/* An error of our own to report as if raised (fail(), the outcome of a
 * script): reported to the server log and the caller like any other. */
ErrorData *made_error(int sqlstate, char *message, char *detail, char *hint)
{
    ErrorData *e = (ErrorData *) palloc0(sizeof(ErrorData));
    e->elevel = ERROR;
    e->output_to_server = true;
    e->output_to_client = true;
    e->sqlerrcode = sqlstate;
    e->message = message;
    e->detail = detail;
    e->hint = hint;
    e->filename = "worker.cpp";
    e->funcname = "safe_migrate runner";
    e->assoc_context = CurrentMemoryContext;
    return e;
}

/* Parse and plan sql, in migration_cxt.  Never throws.  one_transaction:
 * the section was wrapped in its own BEGIN; ... COMMIT; (prepare_script
 * blanked the pair out, migrate_apply refused what cannot run in a block):
 * every statement shares one transaction, as under psql. */
ScriptPlan make_plan(const char *sql, bool one_transaction = false)
{
    ScriptPlan p;
    memset(&p, 0, sizeof(p));
    MemoryContext old = MemoryContextSwitchTo(migration_cxt);
    List *volatile trees = NIL;
    ErrorData *volatile parse_error = nullptr;
    PG_TRY();
    {
        trees = raw_parser(sql, RAW_PARSE_DEFAULT);
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(migration_cxt);
        parse_error = CopyErrorData();
        FlushErrorState();
    }
    PG_END_TRY();
    if (parse_error) {
        p.error = parse_error;
        MemoryContextSwitchTo(old);
        return p;
    }
    int n = list_length(trees);
    p.n = n;
    p.stmts = (RawStmt **) palloc(sizeof(RawStmt *) * (n + 1));
    p.texts = (char **) palloc(sizeof(char *) * (n + 1));
    int *classes = (int *) palloc(sizeof(int) * (n + 1));
    /* the classes of some statements depend on the catalog (REINDEX of a
     * partitioned table): looked up in a transaction, as the caller does */
    bool own_xact = !IsTransactionState();
    if (own_xact) {
        StartTransactionCommand();
        MemoryContextSwitchTo(migration_cxt); /* the plan outlives it */
    }
    for (int i = 0; i < n; i++) {
        p.stmts[i] = list_nth_node(RawStmt, trees, i);
        p.texts[i] = statement_text(sql, p.stmts[i]);
        classes[i] = one_transaction || (call_in_block && IsA(p.stmts[i]->stmt, CallStmt))
                         ? static_cast<int>(core::TxClass::Transactional)
                         : static_cast<int>(classify_statement(p.stmts[i]));
    }
    if (own_xact) {
        CommitTransactionCommand();
        MemoryContextSwitchTo(migration_cxt);
    }
    const char *plan_error = pg::plan_segments(classes, n, &p.plan);
    if (plan_error)
        p.error = made_error(ERRCODE_FEATURE_NOT_SUPPORTED, pstrdup(plan_error), nullptr,
                             pstrdup("safe_migrate runs each migration's transactions itself."));
    MemoryContextSwitchTo(old);
    return p;
}

/* Why a script runs in several steps, for messages: the kinds of its
 * single-statement steps. */
const char *why_steps(const ScriptPlan *p)
{
    bool outside_block = false, enum_value = false, wait = false;
    for (int s = 0; s < p->plan.n_segments; s++) {
        if (p->plan.count[s] != 1)
            continue;
        RawStmt *stmt = p->stmts[p->plan.first[s]];
        core::TxClass cls = classify_statement(stmt);
        if (cls == core::TxClass::NonTransactional)
            outside_block = true;
        else if (cls == core::TxClass::OwnTransaction && IsA(stmt->stmt, AlterEnumStmt))
            enum_value = true;
        else if (cls == core::TxClass::OwnTransaction)
            wait = true;
    }
    StringInfoData buf;
    initStringInfo(&buf);
    if (outside_block)
        appendStringInfoString(&buf, "a statement that cannot run inside a transaction block "
                                     "runs alone");
    if (enum_value)
        appendStringInfo(&buf, "%san ALTER TYPE ... ADD VALUE commits in a transaction of its "
                               "own, so that later statements can use the new value",
                         buf.len ? "; " : "");
    if (wait)
        appendStringInfo(&buf, "%sa wait for a backfill runs in a transaction of its own, so "
                               "that it holds no snapshot",
                         buf.len ? "; " : "");
    return buf.data;
}

/* Statements in steps 1..k of the plan. */
int statements_in_steps(const ScriptPlan *p, int k)
{
    return k >= p->plan.n_segments ? p->n : p->plan.first[k];
}

/* Where the committed steps of an apply are recorded; none for down
 * scripts. */
struct StepJournal {
    int64 migration_id;
    const char *version;
    int skip_steps; /* committed by the attempts this one resumes */
    bool down;      /* the down script of a rollback: the statements of its
                     * committed steps are counted in down_statements_committed,
                     * and the next rollback continues after them (counted in
                     * statements: who rolls back decides how a CALL is
                     * grouped into steps, see call_in_block) */
    int skip_statements; /* down: statements committed by an earlier rollback */
};

/*
 * Record step `step` (1-based: statements first..last, 0-based) as
 * committed, in the current transaction: the step's own, just before it
 * commits, so that the record and the step's effects commit together (for
 * a statement that commits by itself, its last transaction, which for a
 * concurrent index build is the one that marks the index valid).  Whatever
 * the script did to this session (role, search_path, read-only, a local
 * statement_timeout) does not apply to the record: it is written with the
 * extension owner's rights and a pinned search_path.
 */
void record_step(const StepJournal *j, int step, int first, int last, RawStmt **stmts,
                 int statements_done)
{
    pg::Elevation e;
    PushActiveSnapshot(GetTransactionSnapshot());
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    pg::elevate(&e);
    bool read_only = XactReadOnly;
    XactReadOnly = false;
    if (j->down) {
        Oid dtypes[2] = {INT8OID, INT4OID};
        Datum dvalues[2] = {Int64GetDatum(j->migration_id), Int32GetDatum(statements_done)};
        if (SPI_execute_with_args("UPDATE safe_migrate.migrations SET down_statements_committed = $2 "
                                  "WHERE id OPERATOR(pg_catalog.=) $1",
                                  2, dtypes, dvalues, nullptr, false, 0) != SPI_OK_UPDATE)
            elog(ERROR, "could not record step %d of the rollback of migration \"%s\"", step,
                 j->version);
        XactReadOnly = read_only;
        pg::unelevate(&e);
        SPI_finish();
        PopActiveSnapshot();
        return;
    }
    int count = last - first + 1;
    Datum *tags = (Datum *) palloc(sizeof(Datum) * count);
    for (int k = 0; k < count; k++)
        tags[k] = CStringGetTextDatum(GetCommandTagName(CreateCommandTag(stmts[first + k]->stmt)));
    Oid types[6] = {INT8OID, INT4OID, INT4OID, INT4OID, TEXTARRAYOID, INT4OID};
    Datum values[6] = {Int64GetDatum(j->migration_id),
                       Int32GetDatum(step),
                       Int32GetDatum(first + 1),
                       Int32GetDatum(last + 1),
                       PointerGetDatum(construct_array(tags, count, TEXTOID, -1, false, TYPALIGN_INT)),
                       Int32GetDatum(statements_done)};
    if (SPI_execute_with_args("INSERT INTO safe_migrate.migration_steps (migration_id, step, "
                              "first_statement, last_statement, commands) "
                              "VALUES ($1, $2, $3, $4, $5)",
                              5, types, values, nullptr, false, 0) != SPI_OK_INSERT ||
        SPI_execute_with_args("UPDATE safe_migrate.migrations SET steps_committed = $2, "
                              "statements = $6 WHERE id OPERATOR(pg_catalog.=) $1",
                              6, types, values, nullptr, false, 0) != SPI_OK_UPDATE)
        elog(ERROR, "could not record step %d of migration \"%s\"", step, j->version);
    XactReadOnly = read_only;
    pg::unelevate(&e);
    SPI_finish();
    PopActiveSnapshot();
}

/* ---------------- what an interrupted index build left ---------------- */

/*
 * A concurrent index build that stops before its end (the runner
 * terminated or crashed, the caller cancelled, a failure whose cleanup
 * could not get its lock) leaves its INVALID index behind, and a rerun of
 * the same CREATE INDEX CONCURRENTLY name would fail with "relation already
 * exists" (or, with IF NOT EXISTS, succeed on an unusable index).  Before a
 * concurrent build step, the invalid leftovers it would trip over are
 * found:
 *   CREATE INDEX CONCURRENTLY name ON t: an invalid index "name" on t;
 *   REINDEX {INDEX|TABLE} CONCURRENTLY: invalid "<index>_ccnew"/"_ccold"
 *     indexes on the table (a rerun would succeed, but leave them);
 * and only if no other session is building an index of that table
 * (pg_stat_progress_create_index, read as the extension owner: a role sees
 * only its own sessions' progress).  An unnamed CREATE INDEX CONCURRENTLY
 * picks a free name, so an older invalid index on the table is only
 * reported (WARNING): nothing says it is this statement's.
 * Returns schema-qualified names (in migration_cxt); needs no transaction.
 */
List *find_interrupted_builds(const RawStmt *raw)
{
    List *result = NIL;
    Oid table = InvalidOid;
    const char *index_name = nullptr;
    bool named_build = false;
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    /* the names as the statement will resolve them: this session's
     * search_path and role */
    if (IsA(raw->stmt, IndexStmt)) {
        const IndexStmt *stmt = (const IndexStmt *) raw->stmt;
        table = RangeVarGetRelid(stmt->relation, NoLock, true);
        index_name = stmt->idxname;
        named_build = index_name != nullptr;
    } else if (IsA(raw->stmt, ReindexStmt)) {
        const ReindexStmt *stmt = (const ReindexStmt *) raw->stmt;
        if (stmt->relation != nullptr && stmt->kind == REINDEX_OBJECT_INDEX) {
            Oid index = RangeVarGetRelid(stmt->relation, NoLock, true);
            if (OidIsValid(index))
                table = IndexGetRelation(index, true);
        } else if (stmt->relation != nullptr && stmt->kind == REINDEX_OBJECT_TABLE) {
            table = RangeVarGetRelid(stmt->relation, NoLock, true);
        }
    }
    if (OidIsValid(table)) {
        pg::Elevation e;
        if (SPI_connect() != SPI_OK_CONNECT)
            elog(ERROR, "SPI_connect failed");
        pg::elevate(&e);
        Oid types[2] = {OIDOID, TEXTOID};
        Datum values[2] = {ObjectIdGetDatum(table),
                           CStringGetTextDatum(index_name ? index_name : "")};
        /* $2: the name built, or, for REINDEX, none: its _ccnew/_ccold */
        SPI_execute_with_args(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), c.relname, "
            "  (SELECT pg_catalog.min(p.pid) FROM pg_catalog.pg_stat_progress_create_index p "
            "    WHERE p.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid() "
            "      AND (p.index_relid OPERATOR(pg_catalog.=) i.indexrelid "
            "           OR ($2 OPERATOR(pg_catalog.=) '' "
            "               AND p.relid OPERATOR(pg_catalog.=) i.indrelid))) "
            "FROM pg_catalog.pg_index i "
            "JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
            "WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND NOT i.indisvalid "
            "ORDER BY c.relname",
            2, types, values, nullptr, true, 0);
        pg::unelevate(&e);
        MemoryContext old = MemoryContextSwitchTo(migration_cxt);
        for (uint64 r = 0; r < SPI_processed; r++) {
            HeapTuple tup = SPI_tuptable->vals[r];
            char *qualified = SPI_getvalue(tup, SPI_tuptable->tupdesc, 1);
            const char *name = SPI_getvalue(tup, SPI_tuptable->tupdesc, 2);
            char *builder = SPI_getvalue(tup, SPI_tuptable->tupdesc, 3);
            if (named_build) {
                if (strcmp(name, index_name) != 0)
                    continue;
                if (builder != nullptr)
                    ereport(ERROR,
                            (errcode(ERRCODE_OBJECT_IN_USE),
                             errmsg("index %s is being built by another session (PID %s)",
                                    qualified, builder),
                             errhint("Wait for that build to end, then apply the migration "
                                     "again.")));
                result = lappend(result, qualified);
            } else if (IsA(raw->stmt, IndexStmt)) {
                ereport(WARNING,
                        (errmsg("table \"%s\" has an invalid index %s", get_rel_name(table),
                                qualified),
                         errdetail("An interrupted index build may have left it; the unnamed "
                                   "index of this statement gets another name."),
                         errhint("Drop it with DROP INDEX CONCURRENTLY %s.", qualified)));
            } else {
                /* REINDEX CONCURRENTLY's copies: <index>_ccnew[N], _ccold[N] */
                size_t len = strlen(name);
                while (len > 0 && isdigit((unsigned char) name[len - 1]))
                    len--;
                bool copy = len >= 6 && (strncmp(name + len - 6, "_ccnew", 6) == 0 ||
                                         strncmp(name + len - 6, "_ccold", 6) == 0);
                if (copy && builder == nullptr)
                    result = lappend(result, qualified);
            }
        }
        MemoryContextSwitchTo(old);
        SPI_finish();
    }
    PopActiveSnapshot();
    CommitTransactionCommand();
    return result;
}

/* ALTER TABLE parent DETACH PARTITION part CONCURRENTLY runs in two
 * transactions: the first marks the partition "pending detach" and
 * commits, the second waits for every transaction that uses the parent and
 * finishes.  A lock timeout, a lost deadlock or a crash in the second leaves
 * the partition pending, and the statement run again fails ("already
 * pending detach").  So when the partition is pending detach from that
 * parent, the step runs PostgreSQL's own way to finish it, DETACH
 * PARTITION ... FINALIZE (a copy of the statement, in migration_cxt), and
 * *text its text; otherwise NULL.  In a transaction (catalog lookups). */
RawStmt *finalize_of_pending_detach(const RawStmt *raw, const char **text)
{
    const AlterTableStmt *at = (const AlterTableStmt *) raw->stmt;
    if (!IsA(at, AlterTableStmt) || list_length(at->cmds) != 1)
        return nullptr;
    const AlterTableCmd *cmd = linitial_node(AlterTableCmd, at->cmds);
    if (cmd->subtype != AT_DetachPartition || cmd->def == nullptr || !IsA(cmd->def, PartitionCmd) ||
        !((const PartitionCmd *) cmd->def)->concurrent)
        return nullptr;
    Oid parent = RangeVarGetRelid(at->relation, NoLock, true);
    Oid part = RangeVarGetRelid(((const PartitionCmd *) cmd->def)->name, NoLock, true);
    if (!OidIsValid(parent) || !OidIsValid(part) || !get_rel_relispartition(part) ||
        get_partition_parent(part, true) != parent || !PartitionHasPendingDetach(part))
        return nullptr;
    MemoryContext old = MemoryContextSwitchTo(migration_cxt);
    RawStmt *copy = (RawStmt *) copyObjectImpl(raw);
    AlterTableCmd *c = linitial_node(AlterTableCmd, ((AlterTableStmt *) copy->stmt)->cmds);
    c->subtype = AT_DetachPartitionFinalize;
    ((PartitionCmd *) c->def)->concurrent = false;
    const char *parent_name = quote_qualified_identifier(
        get_namespace_name(get_rel_namespace(parent)), get_rel_name(parent));
    const char *part_name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(part)),
                                                       get_rel_name(part));
    *text = psprintf("ALTER TABLE %s DETACH PARTITION %s FINALIZE", parent_name, part_name);
    MemoryContextSwitchTo(old);
    ereport(NOTICE,
            (errmsg("partition %s is pending detach from %s: finishing it with DETACH PARTITION "
                    "... FINALIZE",
                    part_name, parent_name),
             errdetail("An earlier attempt of this step committed the first of the two "
                       "transactions of DETACH PARTITION ... CONCURRENTLY.")));
    return copy;
}

/* Drop what an interrupted build left before the step runs again (as the
 * migration's role: its own index).  Returns the error, or NULL. */
ErrorData *clean_interrupted_builds(const RawStmt *raw)
{
    ErrorData *volatile failure = nullptr;
    PG_TRY();
    {
        List *leftovers = find_interrupted_builds(raw);
        ListCell *lc;
        foreach (lc, leftovers) {
            const char *name = (const char *) lfirst(lc);
            ereport(NOTICE, (errmsg("dropping invalid index %s left by an interrupted build", name),
                             errdetail("It is built again by the statement that follows.")));
            char *sql = MemoryContextStrdup(
                migration_cxt, psprintf("DROP INDEX CONCURRENTLY IF EXISTS %s", name));
            List *trees = raw_parser(sql, RAW_PARSE_DEFAULT);
            StartTransactionCommand();
            run_statement(linitial_node(RawStmt, trees), sql, sql);
            CommitTransactionCommand();
        }
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(migration_cxt);
        failure = CopyErrorData();
        FlushErrorState();
        AbortCurrentTransaction();
        debug_query_string = nullptr;
        failure->cursorpos = 0;
    }
    PG_END_TRY();
    MemoryContextSwitchTo(migration_cxt);
    return failure;
}

/* ---------------- statement_timeout ---------------- */

}  // namespace

TimestampTz outer_statement_deadline(void)
{
    return get_timeout_active(STATEMENT_TIMEOUT) ? get_timeout_finish_time(STATEMENT_TIMEOUT) : 0;
}

void arm_statement_timeout(TimestampTz outer)
{
    if (StatementTimeout > 0) {
        TimestampTz finish = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), StatementTimeout);
        enable_timeout_at(STATEMENT_TIMEOUT, outer != 0 && outer < finish ? outer : finish);
    } else if (outer != 0) {
        enable_timeout_at(STATEMENT_TIMEOUT, outer);
    } else if (get_timeout_active(STATEMENT_TIMEOUT)) {
        disable_timeout(STATEMENT_TIMEOUT, false);
    }
}

void restore_statement_timeout(TimestampTz outer)
{
    /* a deadline that has passed has fired (or the statement's own timer,
     * never later, has): like postgres.c's, the timer fires once */
    if (outer != 0 && outer > GetCurrentTimestamp())
        enable_timeout_at(STATEMENT_TIMEOUT, outer);
    else if (get_timeout_active(STATEMENT_TIMEOUT))
        disable_timeout(STATEMENT_TIMEOUT, false);
}

namespace {

struct RunOutcome {
    int statements_done; /* statements whose effects are committed */
    int steps_done;      /* steps committed (with those skipped) */
    int lock_retries;
    ErrorData *error;    /* NULL on success */
    char *failed_statement;
    bool partially_committed;
};

/* Errors carry a cursor position into the whole script; report it against
 * the statement's own text instead (the client shows it as QUERY). */
void relocate_error_position(ErrorData *edata, const RawStmt *stmt, const char *stmt_text,
                             const char *script)
{
    if (edata->cursorpos <= 0)
        return;
    int start = stmt->stmt_location < 0 ? 0 : stmt->stmt_location;
    const char *p = script + start;
    int skipped = 0;
    while (*p && isspace((unsigned char) *p)) {
        p++;
        skipped++;
    }
    /* cursorpos counts characters, 1-based, from the start of the script */
    int stmt_chars = pg_mbstrlen_with_len(script, start + skipped);
    int pos = edata->cursorpos - stmt_chars;
    edata->cursorpos = 0;
    if (pos > 0) {
        edata->internalpos = pos;
        edata->internalquery = pstrdup(stmt_text);
    }
}

/*
 * Run a script (up or down part) as the migration, step by step, keeping
 * the outcome in *progress.  Each step's errors become the outcome; one that
 * escapes between steps is made so by execute_script, which never throws.
 *
 * A step of transactional statements runs as the statements of a
 * multi-statement query string do in any backend (exec_simple_query): in
 * one implicit transaction block, so LOCK TABLE, SET LOCAL and the like
 * work, with statement_timeout armed for each statement.  A statement that
 * cannot run in a transaction block runs alone, top level.
 *
 * With a journal, each committed step is recorded in its own transaction
 * (record_step), and the steps committed by the attempts this one resumes
 * are skipped.
 */
RunOutcome execute_steps(RunOutcome *progress, const char *sql, const StepJournal *journal,
                         bool one_transaction)
{
    /* kept where execute_script finds it if an error escapes */
    RunOutcome &out = *progress;
    out = {0, 0, 0, nullptr, nullptr, false};
    MemoryContext old = MemoryContextSwitchTo(migration_cxt);
    ScriptPlan p = make_plan(sql, one_transaction);
    if (p.error) {
        out.error = p.error;
        MemoryContextSwitchTo(old);
        return out;
    }
    RawStmt **stmts = p.stmts;
    char **texts = p.texts;
    const pg::SegmentPlan &plan = p.plan;
    /* the steps to skip: those committed by the attempts this one resumes;
     * for a down script, the steps that hold exactly the statements an
     * earlier rollback committed */
    int skip_steps = journal ? journal->skip_steps : 0;
    if (journal && journal->down) {
        int done = 0;
        skip_steps = 0;
        while (skip_steps < plan.n_segments && done + plan.count[skip_steps] <= journal->skip_statements)
            done += plan.count[skip_steps++];
        if (done != journal->skip_statements) {
            out.error = made_error(
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                psprintf("the down script of migration \"%s\" cannot be continued after "
                         "statement %d: it now splits into other steps there",
                         journal->version, journal->skip_statements),
                pstrdup("An earlier rollback by another role grouped its CALL statements "
                        "otherwise. Nothing was run."),
                pstrdup("Roll it back as the role that started the rollback, or finish the "
                        "down script by hand."));
            MemoryContextSwitchTo(old);
            return out;
        }
    }

    for (int s = 0; s < plan.n_segments; s++) {
        int first = plan.first[s];
        int count = plan.count[s];
        if (journal && s < skip_steps) {
            /* a committed step is not run again, but the session settings
             * it made (SET search_path, SET ROLE, ...) are the ones the
             * steps after it ran with: made again, in order */
            for (int i = first; i < first + count; i++) {
                if (!IsA(stmts[i]->stmt, VariableSetStmt) ||
                    ((VariableSetStmt *) stmts[i]->stmt)->is_local)
                    continue;
                ErrorData *volatile replay_error = nullptr;
                PG_TRY();
                {
                    StartTransactionCommand();
                    step_restrict(true);
                    run_statement(stmts[i], sql, texts[i]);
                    CommitTransactionCommand();
                    step_unrestrict(true);
                    ereport(NOTICE, (errmsg("statement %d of committed step %d made again: %s",
                                            i + 1, s + 1, texts[i])));
                }
                PG_CATCH();
                {
                    MemoryContextSwitchTo(migration_cxt);
                    replay_error = CopyErrorData();
                    FlushErrorState();
                    AbortCurrentTransaction();
                    debug_query_string = nullptr;
                }
                PG_END_TRY();
                MemoryContextSwitchTo(migration_cxt);
                if (replay_error) {
                    out.error = replay_error;
                    out.failed_statement = texts[i];
                    out.partially_committed = true;
                    MemoryContextSwitchTo(old);
                    return out;
                }
            }
            out.statements_done += count;
            out.steps_done++;
            continue;
        }
        bool in_block = plan.kind[s] != static_cast<int>(core::TxClass::NonTransactional);
        bool leaves_invalid = count == 1 && may_leave_invalid_index(stmts[first]);
        /* A concurrent index build waits, after its first lock, for the
         * table's writers and then for every older snapshot: waits that
         * stall none of the application's queries (its SHARE UPDATE
         * EXCLUSIVE lock conflicts with no DML, whether held or queued
         * for), and a lock timeout in the last of them throws the whole
         * build away.  With the wait strategy it waits up to the deadline
         * (safe_migrate.lock_wait_deadline) instead of lock_timeout, and
         * is not rebuilt for a lock timeout. */
        const bool patient = count == 1 && IsA(stmts[first]->stmt, IndexStmt) &&
                             ((const IndexStmt *) stmts[first]->stmt)->concurrent &&
                             lock_strategy == kLockStrategyWait && lock_wait_deadline_ms > 0;
        int attempt = 0;
        int deadlocks = 0;
        /* the step's locks that conflict with the application (lockwait.hpp) */
        LockWait lw;
        memset(&lw, 0, sizeof(lw));
        volatile bool lw_prepared = false;
        /* what the step's single statement runs as (a pending concurrent
         * detach is finished instead: finalize_of_pending_detach) */
        RawStmt *volatile run_first = stmts[first];
        const char *volatile run_first_text = texts[first];

        for (;;) {
            volatile int current = first;
            ErrorData *volatile failure = nullptr;
            List *invalid_before = NIL;
            bool ran = false;
            bool gave_up_waiting = false;

            /* the locks to wait for (once), then the wait outside the lock
             * queue, in no transaction, while a long-lived session holds a
             * conflicting lock; an error of either, a cancel while it waits
             * included (the caller's, on its timeout or its cancel), fails
             * the migration as any error does: recorded below */
            volatile bool waited = false;
            PG_TRY();
            {
                /* a cancel that a lock timeout hid (cancel.hpp): the
                 * caller stopped waiting for us, so no further step */
                pg::check_hidden_cancel();
                if (count == 1 && run_first == stmts[first]) {
                    const char *text = nullptr;
                    StartTransactionCommand();
                    RawStmt *finalize = finalize_of_pending_detach(stmts[first], &text);
                    CommitTransactionCommand();
                    if (finalize != nullptr) {
                        run_first = finalize;
                        run_first_text = text;
                        /* its locks are not the concurrent detach's */
                        lock_wait_done(&lw);
                        memset(&lw, 0, sizeof(lw));
                        lw_prepared = false;
                    }
                }
                if (!lw_prepared) {
                    lw_prepared = true;
                    RawStmt *first_stmt = run_first;
                    StartTransactionCommand();
                    if (count == 1)
                        lock_wait_prepare(&lw, &first_stmt, 1, migration_cxt, false);
                    else
                        lock_wait_prepare(&lw, &stmts[first], count, migration_cxt, false);
                    CommitTransactionCommand();
                }
                if (lw.active) {
                    waited = true;
                    failure = lock_wait_outside_queue(&lw);
                }
            }
            PG_CATCH();
            {
                MemoryContextSwitchTo(migration_cxt);
                failure = CopyErrorData();
                FlushErrorState();
                AbortCurrentTransaction();
            }
            PG_END_TRY();
            gave_up_waiting = waited && failure != nullptr;
            MemoryContextSwitchTo(migration_cxt);
            /* what an earlier, interrupted run of this build left */
            if (failure == nullptr && leaves_invalid)
                failure = clean_interrupted_builds(stmts[first]);
            /* a statement that leaves the step (VACUUM, ...) runs with the
             * step's lock_timeout too: restored after it */
            char *saved_lock_timeout =
                (lw.active || patient) && !in_block
                    ? pstrdup(GetConfigOption("lock_timeout", false, false))
                    : nullptr;
            const uint64 commits_before = runner_commits;
            if (failure == nullptr) {
                invalid_before = leaves_invalid ? list_invalid_indexes() : NIL;
                ran = true;
                recheck_deadlocks_during_step(true);
                PG_TRY();
                {
                    StartTransactionCommand();
                    if (in_block)
                        BeginImplicitTransactionBlock();
                    step_restrict(in_block);
                    if (lw.active || patient)
                        (void) set_config_option(
                            "lock_timeout",
                            psprintf("%d", patient ? lock_wait_deadline_ms : lock_wait_timeout(&lw, 0)),
                            PGC_USERSET, PGC_S_SESSION, in_block ? GUC_ACTION_LOCAL : GUC_ACTION_SET,
                            true, 0, false);
                    for (int i = first; i < first + count; i++) {
                        current = i;
                        arm_statement_timeout(0);
                        if (i == first)
                            run_statement(run_first, sql, run_first_text);
                        else
                            run_statement(stmts[i], sql, texts[i]);
                        restore_statement_timeout(0);
                        check_migration_lock(i + 1);
                        CommandCounterIncrement();
                    }
                    current = first + count - 1;
                    if (journal)
                        record_step(journal, s + 1, first, first + count - 1, stmts,
                                    out.statements_done + count);
                    if (in_block)
                        EndImplicitTransactionBlock();
                    /* restricted still while the commit runs deferred
                     * triggers (the script's code) */
                    CommitTransactionCommand();
                    step_unrestrict(in_block);
                }
                PG_CATCH();
                {
                    /* as postgres.c after an error: no timer left to cancel
                     * what runs next */
                    restore_statement_timeout(0);
                    MemoryContextSwitchTo(migration_cxt);
                    failure = CopyErrorData();
                    FlushErrorState();
                    AbortCurrentTransaction();
                    debug_query_string = nullptr;
                }
                PG_END_TRY();
                recheck_deadlocks_during_step(false);
            }
            MemoryContextSwitchTo(migration_cxt);
            if (saved_lock_timeout)
                (void) set_config_option("lock_timeout", saved_lock_timeout, PGC_USERSET,
                                         PGC_S_SESSION, GUC_ACTION_SET, true, 0, false);

            if (failure == nullptr) {
                lock_wait_done(&lw);
                out.statements_done += count;
                out.steps_done++;
                break;
            }
            if (ran) {
                relocate_error_position(failure, stmts[current], texts[current], sql);
                if (leaves_invalid) {
                    char *problem = drop_new_invalid_indexes(invalid_before, stmts[first]);
                    if (problem)
                        failure->detail = failure->detail
                                              ? psprintf("%s\n%s", failure->detail, problem)
                                              : problem;
                }
            }
            /* a procedure that committed and then failed: what it committed
             * stays, so it is not retried (the other statements that commit
             * by themselves, concurrent index builds, VACUUM, ..., can run
             * again: an invalid index left is dropped above) */
            const bool committed_part = ran && IsA(stmts[current]->stmt, CallStmt) &&
                                        runner_commits != commits_before;
            if (committed_part)
                failure->detail = psprintf(
                    "%s%sStatement %d committed part of its work before it failed: it is not "
                    "retried, and applying the script again runs it again from its start.",
                    failure->detail ? failure->detail : "", failure->detail ? "\n" : "",
                    current + 1);
            if (lw.active && !patient && !gave_up_waiting && !committed_part &&
                failure->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE) {
                /* the short lock_timeout: look at the holders again */
                ErrorData *given_up = lock_wait_after_timeout(&lw, failure);
                MemoryContextSwitchTo(migration_cxt);
                if (given_up == nullptr) {
                    out.lock_retries++;
                    continue;
                }
                failure = given_up;
                gave_up_waiting = true;
            }
            lock_wait_done(&lw);
            /* a deadlock the step lost: the other transaction went ahead;
             * the step, rolled back whole (an invalid index of a concurrent
             * build dropped above), is run again, as after a lock timeout */
            if (failure->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED && !committed_part &&
                deadlocks < request->lock_retries) {
                deadlocks++;
                out.lock_retries++;
                pgstat_report_activity(STATE_IDLE, nullptr);
                ErrorData *stopped = pause_before_retry(failure, current + 1, deadlocks,
                                                        request->lock_retries,
                                                        request->lock_retry_delay_ms);
                MemoryContextSwitchTo(migration_cxt);
                if (stopped == nullptr)
                    continue;
                failure = stopped;
            }
            if (patient && ran && failure->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE) {
                /* it waited the whole deadline: not built again */
                gave_up_waiting = true;
                failure->hint = psprintf(
                    "The concurrent index build waited %d ms (safe_migrate.lock_wait_deadline) "
                    "for a lock on the table or for older transactions to end. Find them with "
                    "pg_blocking_pids() of the runner's process while it waits, or with "
                    "pg_stat_activity.xact_start, or raise safe_migrate.lock_wait_deadline.",
                    lock_wait_deadline_ms);
            }
            if (!lw.active && !patient && !committed_part &&
                failure->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE && attempt < request->lock_retries) {
                attempt++;
                out.lock_retries++;
                pgstat_report_activity(STATE_IDLE, nullptr);
                ErrorData *stopped = pause_before_retry(failure, current + 1, attempt,
                                                        request->lock_retries,
                                                        request->lock_retry_delay_ms);
                MemoryContextSwitchTo(migration_cxt);
                if (stopped == nullptr)
                    continue;
                failure = stopped;
            }
            if (failure->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE && !gave_up_waiting)
                failure->hint = psprintf(
                    "The statement waited %d ms for its lock %d times. Find the blocking session "
                    "with pg_blocking_pids(), or raise safe_migrate.lock_retries or "
                    "safe_migrate.lock_timeout.",
                    request->lock_timeout_ms, attempt + 1);
            out.error = failure;
            out.failed_statement = texts[current];
            out.partially_committed = out.statements_done > 0;
            if (out.partially_committed) {
                const char *note = psprintf(
                    "Statements 1 to %d of the migration were committed before the failure: "
                    "the migration runs in %d separate steps (%s).",
                    out.statements_done, plan.n_segments, why_steps(&p));
                if (journal && journal->down)
                    note = psprintf("%s Statements 1 to %d of the down script are committed: the "
                                    "migration stays recorded as applied, partly rolled back; "
                                    "migrate_rollback again continues after statement %d.",
                                    note, out.statements_done, out.statements_done);
                else if (journal)
                    note = psprintf("%s Steps 1 to %d are committed: applying the same script "
                                    "again continues after step %d; to apply another script "
                                    "instead, undo what they did and call "
                                    "safe_migrate.migrate_abandon('%s') first.",
                                    note, out.steps_done, out.steps_done, journal->version);
                failure->detail = failure->detail ? psprintf("%s\n%s", failure->detail, note)
                                                  : (char *) note;
            }
            MemoryContextSwitchTo(old);
            return out;
        }
    }
    MemoryContextSwitchTo(old);
    return out;
}

/* execute_steps, held to "never throws": an error that escapes it (a
 * cancel seen between two steps, outside their own error handling) is the
 * migration's error like any other, with what was committed before it, so
 * that the attempt is recorded as failed, never left "running". */
RunOutcome execute_script(const char *sql, const StepJournal *journal = nullptr,
                          bool one_transaction = false)
{
    MemoryContext old = CurrentMemoryContext;
    RunOutcome *progress = (RunOutcome *) MemoryContextAllocZero(migration_cxt, sizeof(RunOutcome));
    PG_TRY();
    {
        (void) execute_steps(progress, sql, journal, one_transaction);
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(migration_cxt);
        ErrorData *escaped = CopyErrorData();
        FlushErrorState();
        AbortOutOfAnyTransaction();
        debug_query_string = nullptr;
        restore_statement_timeout(0);
        /* the step's lock wait slot (lockwait.hpp), if it was published */
        LockWait none;
        memset(&none, 0, sizeof(none));
        lock_wait_done(&none);
        if (progress->error == nullptr)
            progress->error = escaped;
        progress->partially_committed = progress->statements_done > 0;
    }
    PG_END_TRY();
    MemoryContextSwitchTo(old);
    return *progress;
}

/* ---------------- talking to the caller ---------------- */


void send_result(const char *version, const char *status, int statements, int retries,
                 TimestampTz started, const char *checksum)
{
    StringInfoData buf;
    keep_database_encoding();
    pq_beginmessage(&buf, kResultMessage);
    pq_sendstring(&buf, version);
    pq_sendstring(&buf, status);
    pq_sendint32(&buf, statements);
    pq_sendint32(&buf, retries);
    pq_sendint64(&buf, GetCurrentTimestamp() - started);
    pq_sendstring(&buf, checksum ? checksum : "");
    pq_sendint32(&buf, list_length(pg::collected_warnings()));
    ListCell *lc;
    foreach (lc, pg::collected_warnings())
        pq_sendstring(&buf, (char *) lfirst(lc));
    pq_endmessage(&buf);
}

/* Send an error to the caller as the error it is, then end this worker.
 * The migration lock goes first, so that the caller's next migration does
 * not find it still held. */
SM_NORETURN void fail(ErrorData *edata)
{
    AbortOutOfAnyTransaction();
    release_migration_lock();
    PG_TRY();
    {
        ReThrowError(edata);
    }
    PG_CATCH();
    {
        EmitErrorReport();
        FlushErrorState();
    }
    PG_END_TRY();
    proc_exit(0);
}

/* ---------------- the two jobs ---------------- */

/* The down script derived from the up part, now that it ran: names resolve
 * as the migration's statements resolved them (the runner's search_path is
 * the caller's).  Runs as the migration's role, in a transaction of its own;
 * NULL when none can be derived for sure. */
char *derive_after_apply(const char *up, const NameResolution *at_apply)
{
    char *volatile down = nullptr;
    MemoryContext old = CurrentMemoryContext;
    PG_TRY();
    {
        StartTransactionCommand();
        PushActiveSnapshot(GetTransactionSnapshot());
        const char *why = nullptr;
        char *derived = derive_down_script(up, at_apply, &why);
        if (derived)
            down = MemoryContextStrdup(migration_cxt, derived);
        PopActiveSnapshot();
        CommitTransactionCommand();
    }
    PG_CATCH();
    {
        /* no derived down script is better than a failed migration record */
        MemoryContextSwitchTo(old);
        FlushErrorState();
        AbortCurrentTransaction();
        down = nullptr;
    }
    PG_END_TRY();
    MemoryContextSwitchTo(old);
    return down;
}

void do_apply(void)
{
    const char *script = shared_string(request->script_off);
    const char *given_version = request->has_version ? shared_string(request->version_off) : nullptr;
    const char *description = request->has_description ? shared_string(request->description_off) : nullptr;
    pg::PreparedScript prepared;
    TimestampTz started = GetCurrentTimestamp();

    MemoryContext old = MemoryContextSwitchTo(migration_cxt);
    const char *problem = pg::prepare_script(script, given_version, &prepared);
    MemoryContextSwitchTo(old);
    if (problem)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s", problem)));

    /* the steps the up section splits into (an error is reported when it
     * runs, below) */
    ScriptPlan plan = make_plan(prepared.up, prepared.up_wrapped);
    int steps = plan.error ? 0 : plan.plan.n_segments;

    acquire_migration_lock();

    /* check and record the attempt */
    pg::Elevation e;
    begin_history_xact(&e);
    reconcile_interrupted();
    {
        Oid types[1] = {TEXTOID};
        Datum values[1] = {CStringGetTextDatum(prepared.version)};
        SPI_execute_with_args("SELECT checksum, down_statements_committed, applied_by::pg_catalog.text "
                              "FROM safe_migrate.migrations "
                              "WHERE version OPERATOR(pg_catalog.=) $1 AND status = 'applied'",
                              1, types, values, nullptr, true, 1);
        if (SPI_processed > 0) {
            char *applied = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
            bool down_null;
            refuse_partly_rolled_back(
                prepared.version,
                DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &down_null)));
            if (strcmp(applied, prepared.checksum) != 0)
                ereport(ERROR,
                        (errcode(ERRCODE_SM_CHECKSUM_MISMATCH),
                         errmsg("migration \"%s\" was applied with a different checksum",
                                prepared.version),
                         errdetail("Applied by role %s, checksum: %s. This script's checksum: %s.",
                                   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3), applied,
                                   prepared.checksum),
                         errhint("Never edit an applied migration: write the change as a new "
                                 "version, or roll this one back first.")));
            end_history_xact(&e);
            ereport(NOTICE, (errmsg("migration \"%s\" is already applied with the same checksum, "
                                    "nothing to do",
                                    prepared.version)));
            send_result(prepared.version, "already_applied", 0, 0, started, prepared.checksum);
            return;
        }
    }
    /* a partly applied version: continue after its last committed step
     * (another script is refused) */
    StepJournal journal = {0, prepared.version, 0, false, 0};
    int64 resumed_from = 0;
    int skip_statements = 0;
    {
        VersionAttempt partial;
        if (check_partly_applied(prepared.version, prepared.checksum,
                                 request->current_user_id, &partial)) {
            /* an online script continues the statements its first attempt
             * expanded to: expanded now, after steps that changed the
             * catalog (a column type swapped), it may read otherwise */
            if (prepared.online && partial.executed_script != nullptr) {
                MemoryContext before = MemoryContextSwitchTo(migration_cxt);
                prepared.up = pstrdup(partial.executed_script);
                plan = make_plan(prepared.up, prepared.up_wrapped);
                MemoryContextSwitchTo(before);
                steps = plan.error ? 0 : plan.plan.n_segments;
            }
            /* the same script splits into the same steps, unless the
             * extension's rules for splitting changed since */
            if (plan.error == nullptr &&
                (partial.steps != steps || partial.steps_committed > steps ||
                 partial.statements != statements_in_steps(&plan, partial.steps_committed)))
                ereport(ERROR,
                        (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                         errmsg("migration \"%s\" cannot be continued: its script now splits "
                                "into other steps",
                                prepared.version),
                         errdetail("Attempt %lld committed %s; the script now runs in %d steps.",
                                   (long long) partial.id,
                                   describe_committed_steps(partial.steps_committed, partial.steps,
                                                            partial.statements),
                                   steps),
                         errhint("Finish the migration by hand, then call "
                                 "safe_migrate.migrate_abandon('%s').",
                                 prepared.version)));
            resumed_from = partial.id;
            journal.skip_steps = partial.steps_committed;
            skip_statements = partial.statements;
            ereport(NOTICE,
                    (errmsg("migration \"%s\" is partly applied: continuing after step %d",
                            prepared.version, partial.steps_committed),
                     errdetail("Attempt %lld %s after committing %s; they are not run again.",
                               (long long) partial.id,
                               strcmp(partial.status, "failed") == 0 ? "failed" : "was interrupted",
                               describe_committed_steps(partial.steps_committed, partial.steps,
                                                        partial.statements))));
        }
    }
    int64 id;
    {
        Oid types[12] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
                         TEXTOID, INT4OID, INT4OID, INT4OID, INT8OID, TEXTOID};
        Datum values[12];
        char nulls[13] = "            ";
        values[0] = CStringGetTextDatum(prepared.version);
        values[1] = text_or_null(description, nulls, 1);
        values[2] = CStringGetTextDatum(prepared.checksum);
        values[3] = CStringGetTextDatum(script);
        /* a derived down script is made once the up statements ran */
        values[4] = text_or_null(prepared.down, nulls, 4);
        values[5] = CStringGetTextDatum(shared_string(request->applied_by_off));
        values[6] = CStringGetTextDatum(shared_string(request->search_path_off));
        values[7] = Int32GetDatum(steps);
        nulls[7] = steps > 0 ? ' ' : 'n';
        values[8] = Int32GetDatum(journal.skip_steps);
        values[9] = Int32GetDatum(skip_statements);
        values[10] = Int64GetDatum(resumed_from);
        nulls[10] = resumed_from ? ' ' : 'n';
        values[11] = text_or_null(prepared.online ? prepared.up : nullptr, nulls, 11);
        if (SPI_execute_with_args(
                "INSERT INTO safe_migrate.migrations "
                "(version, description, checksum, script, down_script, applied_by, search_path, "
                "steps, steps_committed, statements, resumed_from, executed_script, status) "
                "VALUES ($1, $2, $3, $4, $5, $6::pg_catalog.name, $7, $8, $9, $10, $11, $12, "
                "'running') RETURNING id",
                12, types, values, nulls, false, 1) != SPI_OK_INSERT_RETURNING)
            elog(ERROR, "could not record migration \"%s\"", prepared.version);
        bool isnull;
        id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    }
    end_history_xact(&e);
    journal.migration_id = id;

    /* how the statements' names resolve (derive.hpp): as the caller, with
     * this session's search_path, outside the elevation */
    NameResolution *at_apply = nullptr;
    if (prepared.down == nullptr) {
        StartTransactionCommand();
        old = MemoryContextSwitchTo(migration_cxt);
        at_apply = capture_name_resolution();
        MemoryContextSwitchTo(old);
        CommitTransactionCommand();
    }

    policy::begin_migration(prepared.version, prepared.n_allows, prepared.allow_rules,
                            prepared.allow_reasons);
    RunOutcome outcome = execute_script(prepared.up, &journal, prepared.up_wrapped);
    if (outcome.error == nullptr) {
        /* verdicts on what the whole migration leaves behind, in a
         * transaction of their own after its last step */
        StartTransactionCommand();
        MemoryContext before = MemoryContextSwitchTo(migration_cxt);
        outcome.error = pg::in_subtransaction([]() { policy::finish_migration_checks(); });
        MemoryContextSwitchTo(before);
        CommitTransactionCommand();
    }
    if (outcome.error) {
        history_finish(id, "failed", outcome.statements_done, outcome.lock_retries, outcome.error,
                       outcome.failed_statement);
        fail(outcome.error);
    }
    history_finish(id, "applied", outcome.statements_done, outcome.lock_retries, nullptr, nullptr,
                   prepared.down ? nullptr : derive_after_apply(prepared.up, at_apply));
    send_result(prepared.version, "applied", outcome.statements_done, outcome.lock_retries, started,
                prepared.checksum);
}

/* A transactional migration that failed in the caller's backend: its
 * transaction is rolled back with the caller's, so the failed row is written
 * here, in a transaction of its own. */
void do_record_failure(void)
{
    pg::PreparedScript prepared;
    const char *script = shared_string(request->script_off);
    MemoryContext old = MemoryContextSwitchTo(migration_cxt);
    const char *problem = pg::prepare_script(
        script, request->has_version ? shared_string(request->version_off) : nullptr, &prepared);
    MemoryContextSwitchTo(old);
    if (problem)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s", problem)));

    auto opt = [](Size off) -> const char * { return off ? shared_string(off) : nullptr; };
    pg::Elevation e;
    /* written even if the caller is cancelled again while it waits for us */
    HOLD_CANCEL_INTERRUPTS();
    begin_history_xact(&e);
    Oid types[15] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID,
                     INT4OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
    Datum values[15];
    char nulls[16] = "               ";
    values[0] = CStringGetTextDatum(prepared.version);
    values[1] = text_or_null(request->has_description ? shared_string(request->description_off)
                                                      : nullptr,
                             nulls, 1);
    values[2] = CStringGetTextDatum(prepared.checksum);
    values[3] = CStringGetTextDatum(script);
    values[4] = text_or_null(prepared.down, nulls, 4);
    values[5] = CStringGetTextDatum(shared_string(request->applied_by_off));
    values[6] = TimestampTzGetDatum(request->started_at);
    values[7] = Int32GetDatum(request->fail_statements);
    values[8] = Int32GetDatum(request->fail_lock_retries);
    values[9] = CStringGetTextDatum(unpack_sql_state(request->fail_sqlstate));
    values[10] = text_or_null(opt(request->fail_message_off), nulls, 10);
    values[11] = text_or_null(opt(request->fail_detail_off), nulls, 11);
    values[12] = text_or_null(opt(request->fail_hint_off), nulls, 12);
    values[13] = text_or_null(opt(request->fail_statement_off), nulls, 13);
    values[14] = CStringGetTextDatum(shared_string(request->search_path_off));
    if (SPI_execute_with_args(
            "INSERT INTO safe_migrate.migrations (version, description, checksum, script, "
            "down_script, applied_by, started_at, statements, lock_retries, sqlstate, "
            "error_message, error_detail, error_hint, failed_statement, search_path, status, "
            "finished_at) "
            "VALUES ($1, $2, $3, $4, $5, $6::pg_catalog.name, $7, $8, $9, $10, $11, $12, $13, $14, "
            "$15, 'failed', pg_catalog.clock_timestamp())",
            15, types, values, nulls, false, 0) != SPI_OK_INSERT)
        elog(ERROR, "could not record the failure of migration \"%s\"", prepared.version);
    end_history_xact(&e);
    RESUME_CANCEL_INTERRUPTS();
    send_result(prepared.version, "failed", request->fail_statements, request->fail_lock_retries,
                request->started_at, prepared.checksum);
}

struct RollbackTarget {
    int64 id;
    char *version;
    char *down;
    char *script;
    char *applied_by;  /* role name recorded at apply */
    char *search_path; /* the applying session's, or NULL (recorded before 0.1.0 kept it) */
    Oid applier;       /* resolved at rollback */
    bool honour_allows;
    int down_statements; /* statements of the down script an earlier rollback committed */
};

/* May the runner's role roll back t, and as whom does its down script run?
 * Needs a transaction (role lookups). */
void check_rollback_rights(RollbackTarget *t)
{
    Oid caller = GetUserId();
    t->applier = get_role_oid(t->applied_by, true);
    bool admin = policy::may_override(caller);
    if (!OidIsValid(t->applier))
        ereport(ERROR,
                (errcode(ERRCODE_UNDEFINED_OBJECT),
                 errmsg("migration \"%s\" cannot be rolled back: role \"%s\" that applied it no "
                        "longer exists",
                        t->version, t->applied_by),
                 errdetail("A down script runs with the rights of the role that applied the "
                           "migration. Nothing was rolled back."),
                 errhint("Write the reverse change as a new migration.")));
    if (!admin && !is_member_of_role(caller, t->applier))
        ereport(ERROR,
                (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                 errmsg("permission denied to roll back migration \"%s\"", t->version),
                 errdetail("Migration \"%s\" was applied by role \"%s\"; only that role, its "
                           "members, superusers and members of safe_migrate_admin may roll it "
                           "back. Nothing was rolled back.",
                           t->version, t->applied_by),
                 errhint("Ask role \"%s\" or an administrator to roll it back.", t->applied_by)));
    /* an allow line in a down script is honoured only if the role whose
     * rights the script runs with may override */
    t->honour_allows = policy::may_override(t->applier);
}

/* The runner's session settings as they were when it started: every
 * setting a script changed for the session (SET, set_config(..., false))
 * back to its reset value (RESET ALL), then the runner's own and the
 * caller's carried settings again, as at the start (runner_main) and once
 * the migration lock was taken (acquire_migration_lock). */
void reset_runner_settings(void)
{
    StartTransactionCommand();
    ResetAllOptions();
    SetConfigOption("application_name", "safe_migrate runner", PGC_USERSET, PGC_S_SESSION);
    SetConfigOption("search_path", shared_string(request->search_path_off), PGC_USERSET,
                    PGC_S_SESSION);
    CommitTransactionCommand();
    SetClientEncoding(GetDatabaseEncoding());
    if (request->mode != Mode::RecordFailure)
        apply_session_settings(shared_string(request->settings_off), request->n_settings);
    StartTransactionCommand();
    set_step_settings(request->lock_timeout_ms, request->parallel_maintenance_workers,
                      GUC_ACTION_SET);
    CommitTransactionCommand();
}

/* Set search_path in the runner's session (in a transaction of its own). */
void set_session_search_path(const char *path)
{
    StartTransactionCommand();
    SetConfigOption("search_path", path, PGC_USERSET, PGC_S_SESSION);
    CommitTransactionCommand();
}

void do_rollback(void)
{
    const char *to_version = request->has_version ? shared_string(request->version_off) : nullptr;
    List *targets = NIL;
    if (to_version) {
        /* versions are recorded trimmed (pg::normalize_version) */
        MemoryContext vcxt = MemoryContextSwitchTo(migration_cxt);
        char *trimmed;
        const char *bad = pg::normalize_version(to_version, &trimmed);
        MemoryContextSwitchTo(vcxt);
        if (bad)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s", bad)));
        to_version = trimmed;
    }

    acquire_migration_lock();

    pg::Elevation e;
    begin_history_xact(&e);
    reconcile_interrupted();
    /* a down script undoes a whole migration: not while one is half done */
    refuse_rollback_while_partly_applied();
    if (to_version) {
        Oid types[1] = {TEXTOID};
        Datum values[1] = {CStringGetTextDatum(to_version)};
        SPI_execute_with_args("SELECT id FROM safe_migrate.migrations "
                              "WHERE version OPERATOR(pg_catalog.=) $1 AND status = 'applied'",
                              1, types, values, nullptr, true, 1);
        if (SPI_processed == 0)
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                            errmsg("migration \"%s\" is not applied", to_version),
                            errhint("migrate_rollback(to_version) keeps to_version and undoes "
                                    "the migrations applied after it; see safe_migrate.history.")));
        bool isnull;
        Datum after[1] = {SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)};
        Oid t8[1] = {INT8OID};
        SPI_execute_with_args("SELECT id, version, down_script, script, applied_by::pg_catalog.text, "
                              "search_path, down_statements_committed FROM safe_migrate.migrations "
                              "WHERE status = 'applied' AND id OPERATOR(pg_catalog.>) $1 "
                              "ORDER BY id DESC",
                              1, t8, after, nullptr, true, 0);
    } else {
        SPI_execute("SELECT id, version, down_script, script, applied_by::pg_catalog.text, "
                    "search_path, down_statements_committed FROM safe_migrate.migrations "
                    "WHERE status = 'applied' ORDER BY id DESC LIMIT 1",
                    true, 0);
    }
    MemoryContext old = MemoryContextSwitchTo(migration_cxt);
    for (uint64 i = 0; i < SPI_processed; i++) {
        HeapTuple tup = SPI_tuptable->vals[i];
        TupleDesc desc = SPI_tuptable->tupdesc;
        bool isnull;
        RollbackTarget *t = (RollbackTarget *) palloc0(sizeof(RollbackTarget));
        t->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
        t->version = SPI_getvalue(tup, desc, 2);
        t->down = SPI_getvalue(tup, desc, 3);
        t->script = SPI_getvalue(tup, desc, 4);
        t->applied_by = SPI_getvalue(tup, desc, 5);
        t->search_path = SPI_getvalue(tup, desc, 6);
        t->down_statements = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
        targets = lappend(targets, t);
    }
    MemoryContextSwitchTo(old);
    pg::unelevate(&e);
    /* refuse before undoing anything if any step cannot be undone, or may
     * not be undone by this role (role lookups: still in the transaction) */
    ListCell *lc;
    foreach (lc, targets) {
        RollbackTarget *t = (RollbackTarget *) lfirst(lc);
        if (t->down == nullptr)
            ereport(ERROR,
                    (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                     errmsg("migration \"%s\" has no down script", t->version),
                     errdetail("None was given, and none could be derived: some statement has no "
                               "certain reverse (data changes, IF NOT EXISTS, OR REPLACE, unnamed "
                               "indexes or constraints). Nothing was rolled back."),
                     errhint("Give the migration a \"-- migrate:down\" section, or write the "
                             "reverse change as a new migration.")));
        check_rollback_rights(t);
    }
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    if (targets == NIL) {
        ereport(NOTICE, (errmsg("no applied migration to roll back")));
        send_result("", "none", 0, 0, GetCurrentTimestamp(), nullptr);
    }

    Oid runner_user;
    int runner_sec;
    GetUserIdAndSecContext(&runner_user, &runner_sec);
    foreach (lc, targets) {
        RollbackTarget *t = (RollbackTarget *) lfirst(lc);
        TimestampTz started = GetCurrentTimestamp();
        pg::collect_warnings(migration_cxt);
        /* the stored script's "-- safe_migrate:allow" lines cover its down part */
        pg::PreparedScript stored;
        MemoryContext cxt = MemoryContextSwitchTo(migration_cxt);
        const char *problem = pg::prepare_script(t->script, t->version, &stored);
        MemoryContextSwitchTo(cxt);
        /* ... and so do the down script's own (a derived one carries them) */
        pg::PreparedScript down;
        cxt = MemoryContextSwitchTo(migration_cxt);
        const char *down_problem = pg::prepare_script(t->down, t->version, &down);
        MemoryContextSwitchTo(cxt);
        int n = (problem ? 0 : stored.n_allows) + (down_problem ? 0 : down.n_allows);
        char **rules = (char **) MemoryContextAlloc(migration_cxt, sizeof(char *) * (n + 1));
        char **reasons = (char **) MemoryContextAlloc(migration_cxt, sizeof(char *) * (n + 1));
        int k = 0;
        for (int i = 0; !problem && i < stored.n_allows; i++, k++) {
            rules[k] = stored.allow_rules[i];
            reasons[k] = stored.allow_reasons[i];
        }
        for (int i = 0; !down_problem && i < down.n_allows; i++, k++) {
            rules[k] = down.allow_rules[i];
            reasons[k] = down.allow_reasons[i];
        }
        if (!t->honour_allows)
            k = 0;
        policy::begin_migration(t->version, k, rules, reasons);
        /* The down script runs with the rights of the role that applied the
         * migration and the search_path it was applied with.  As a
         * security-restricted operation it cannot change role (SET ROLE
         * would be checked against this session's login, not the applier),
         * nor leave temporary objects or session state behind. */
        if (t->search_path)
            set_session_search_path(t->search_path);
        SetUserIdAndSecContext(t->applier, runner_sec);
        int saved_flags = script_sec_flags;
        script_sec_flags |= SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION;
        call_in_block = t->applier != GetSessionUserId();
        /* a down script is journaled too: after a failure (or a crash)
         * with steps committed, the next rollback continues after them */
        StepJournal down_journal = {t->id, t->version, 0, true, t->down_statements};
        if (t->down_statements > 0)
            ereport(NOTICE, (errmsg("migration \"%s\" is partly rolled back: continuing its down "
                                    "script after statement %d",
                                    t->version, t->down_statements)));
        RunOutcome outcome = execute_script(t->down, &down_journal);
        call_in_block = false;
        script_sec_flags = saved_flags;
        SetUserIdAndSecContext(runner_user, runner_sec);
        /* nothing this down script set (SET, set_config: DateStyle,
         * standard_conforming_strings, statement_timeout, ...) is in force
         * for the next one, another role's, or for the record below */
        reset_runner_settings();
        char *rollback_overrides = policy::overrides_json();
        policy::end_migration();
        if (outcome.error) {
            MemoryContextSwitchTo(migration_cxt);
            outcome.error->context = psprintf("down script of migration \"%s\"%s%s", t->version,
                                              outcome.error->context ? "\n" : "",
                                              outcome.error->context ? outcome.error->context : "");
            fail(outcome.error);
        }
        /* the down script's last step is committed: its record is written
         * whatever the caller does meanwhile (as history_finish) */
        HOLD_CANCEL_INTERRUPTS();
        begin_history_xact(&e);
        Oid types[3] = {INT8OID, TEXTOID, TEXTOID};
        Datum values[3] = {Int64GetDatum(t->id),
                           CStringGetTextDatum(shared_string(request->applied_by_off)),
                           CStringGetTextDatum(rollback_overrides)};
        SPI_execute_with_args("UPDATE safe_migrate.migrations SET status = 'rolled_back', "
                              "rolled_back_at = pg_catalog.clock_timestamp(), "
                              "rolled_back_by = $2::pg_catalog.name, "
                              "overrides = overrides OPERATOR(pg_catalog.||) $3::pg_catalog.jsonb "
                              "WHERE id OPERATOR(pg_catalog.=) $1",
                              3, types, values, nullptr, false, 0);
        end_history_xact(&e);
        RESUME_CANCEL_INTERRUPTS();
        send_result(t->version, "rolled_back", outcome.statements_done, outcome.lock_retries,
                    started, nullptr);
    }
}

}  // namespace

extern "C" void safe_migrate_runner_main(Datum arg)
{
    pqsignal(SIGTERM, die);
    /* the caller's cancel must stop us even when it comes with a lock
     * timeout (cancel.hpp); watched before signals are unblocked */
    pg::watch_cancels(0);
    BackgroundWorkerUnblockSignals();

    CurrentResourceOwner = ResourceOwnerCreate(nullptr, "safe_migrate runner");
    dsm_segment *seg = dsm_attach(DatumGetUInt32(arg));
    if (seg == nullptr)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("could not map the safe_migrate request segment")));
    shared_base = (char *) dsm_segment_address(seg);
    request = (SharedRequest *) shared_base;
    lock_wait_caller_pid = request->caller_pid;
    shm_mq *mq = (shm_mq *) (shared_base + request->mq_off);
    shm_mq_set_sender(mq, MyProc);
    shm_mq_handle *mqh = shm_mq_attach(mq, seg, nullptr);
    pq_redirect_to_shm_mq(seg, mqh);

    BackgroundWorkerInitializeConnectionByOid(request->database_id,
                                              request->authenticated_user_id, 0);
    SetClientEncoding(GetDatabaseEncoding());
    RegisterXactCallback(count_commit, nullptr);

    migration_cxt = AllocSetContextCreate(TopMemoryContext, "safe_migrate migration",
                                          ALLOCSET_DEFAULT_SIZES);
    pg::collect_warnings(migration_cxt);

    /* the caller's session, as far as it matters to DDL */
    StartTransactionCommand();
    SetConfigOption("application_name", "safe_migrate runner", PGC_USERSET, PGC_S_SESSION);
    SetConfigOption("search_path", shared_string(request->search_path_off), PGC_USERSET,
                    PGC_S_SESSION);
    /* waiting for other migrations is not bounded by lock_timeout */
    SetConfigOption("lock_timeout", "0", PGC_USERSET, PGC_S_SESSION);
    CommitTransactionCommand();
    pgstat_report_appname("safe_migrate runner");
    /* the caller's user; its security-context flags go to each step
     * (script_sec_flags: none is allowed outside a transaction) */
    SetUserIdAndSecContext(request->current_user_id, 0);
    script_sec_flags = request->sec_context;
    /* the caller's SET safe_migrate.policy, statement_timeout, ... (not for
     * RecordFailure, which runs nothing of the caller's) */
    if (request->mode != Mode::RecordFailure)
        apply_session_settings(shared_string(request->settings_off), request->n_settings);

    /* an error outside a migration step (a checksum mismatch, a missing down
     * script, ...) goes to the caller as it is; then this runner ends */
    ErrorData *volatile failure = nullptr;
    PG_TRY();
    {
        switch (request->mode) {
            case Mode::Apply:
                do_apply();
                break;
            case Mode::Rollback:
                do_rollback();
                break;
            case Mode::RecordFailure:
                do_record_failure();
                break;
        }
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(migration_cxt);
        failure = CopyErrorData();
        FlushErrorState();
        AbortOutOfAnyTransaction();
    }
    PG_END_TRY();
    if (failure)
        fail(failure);

    pgstat_report_activity(STATE_IDLE, nullptr);
    proc_exit(0);
}

}  // namespace safe_migrate::runner
