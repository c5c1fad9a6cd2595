/*
 * worker.cpp — the worker of one backfill job.
 *
 * Started by the launcher for one job, connected to the job's database as
 * the job's owner (BackgroundWorkerInitializeConnectionByOid): the process
 * holds that role's rights and no more.  The job's statements, and whatever
 * code they set off (functions, triggers, casts), run as a
 * security-restricted operation, as PostgreSQL runs the code of a table's
 * owner during maintenance commands: no temporary object can be created,
 * SET ROLE is refused, and the settings the code changes are dropped when
 * its statements end.  The job row is the extension's: the worker reads and
 * writes it as the bootstrap superuser, only with its own statements
 * (pg::elevate: fully qualified, search_path pinned to pg_catalog, pg_temp,
 * on a table nobody else may put a trigger, rule or policy on).
 *
 * Each batch is one transaction that
 *   1. locks the job row and reads its status and last key (so pause/cancel
 *      and a second worker of the same job are seen),
 *   2. as the owner, reads the next batch_size keys after the last one
 *      (by key alone, the where clause is not in that query) and updates the
 *      rows of exactly that key range that match the where clause,
 *   3. counts the sessions waiting on this transaction's locks,
 *   4. records the new last key and the counters, and commits.
 * Progress and batch commit together: after a crash the job resumes after
 * the last committed key, no row skipped, none updated twice.
 *
 * The set and where clauses were parsed, checked and stored at submit time
 * in the form PostgreSQL deparses them to, every name the submitter's
 * search_path resolved qualified (api.cpp); the key comparisons use the
 * operators of the key's index, resolved at submit time too.  Here they are
 * only put in their places in the batch statement.
 *
 * Why the where clause stays out of the key query: "WHERE key > $1 AND
 * <filter> ORDER BY key LIMIT n" is planned from the table's statistics, and
 * once autovacuum analyzes the table in the middle of the backfill it learns
 * that (say) "full_name IS NULL" is now rare.  The planner then expects to
 * read the whole rest of the index to find n such rows and switches to a
 * sequential scan and a sort: each batch reads the rest of the table (seen:
 * 1,000 keys in 5 ms, 2,000 in 65 ms on 500,000 rows).  "key > $1 ORDER BY
 * key LIMIT n" is always an index range scan, and the update is then bounded
 * to that range whatever the filter's statistics say.  The batch size
 * therefore counts keys examined, not rows updated.
 */
#include <algorithm>

#include "backfill.hpp"
#include "backfill/pacing.hpp"
#include "pg/core_bridge.hpp"
#include "core/replicas.hpp"
#include "pg/privileged.hpp"

extern "C" {
#include "access/xact.h"
#include "commands/vacuum.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "storage/proc.h"
#include "utils/timeout.h"
#include "storage/procarray.h"
#include "access/transam.h"
#include "catalog/pg_class.h"
#include "postmaster/autovacuum.h"
#include "pg/compat.hpp"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "catalog/namespace.h"
#include "commands/extension.h"
#include "utils/lsyscache.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "parser/parser.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/smgr.h"
#include "access/relation.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace safe_migrate::backfill {

namespace {

MemoryContext job_cxt;
WorkerArgs worker_args;

struct Job {
    int64 id;
    Oid owner;
    char *relation;
    char *set_clause; /* NULL: a batched delete (migrate_delete) */
    char *where_clause;
    int n_keys;
    char **key_columns;
    char **key_types;
    char *op_after; /* OPERATOR(schema.>) of the key's index */
    char *op_upto;  /* ... <= */
    char *op_sort;  /* ... < */
    Oid relid;
    PacingSettings pacing;
    int64 max_replica_lag;
    bool vacuum; /* vacuum the table after the last batch (see vacuum_after) */
    bool vacuum_only; /* operation 'vacuum' (migrate_vacuum): no batches */
    TransactionId vacuum_horizon; /* a vacuum job's: the next XID when queued */
};

constexpr const char *kJobCommand = "safe_migrate backfill job";

char **text_array(Datum d, int *n)
{
    ArrayType *arr = DatumGetArrayTypeP(d);
    Datum *elems;
    bool *nulls;
    deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, n);
    char **out = (char **) palloc(sizeof(char *) * (*n + 1));
    for (int i = 0; i < *n; i++)
        out[i] = TextDatumGetCString(elems[i]);
    return out;
}

Datum to_text_array(char **items, int n)
{
    Datum *elems = (Datum *) palloc(sizeof(Datum) * (n + 1));
    for (int i = 0; i < n; i++)
        elems[i] = CStringGetTextDatum(items[i]);
    return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* "ROW(k1, k2)" */
char *key_row(const Job *job)
{
    StringInfoData s;
    initStringInfo(&s);
    appendStringInfoString(&s, "ROW(");
    for (int i = 0; i < job->n_keys; i++)
        appendStringInfo(&s, "%s%s", i ? ", " : "", job->key_columns[i]);
    appendStringInfoChar(&s, ')');
    return s.data;
}

/* "ROW($1::t1, $2::t2)", params from `first` */
char *param_row(const Job *job, int first)
{
    StringInfoData s;
    initStringInfo(&s);
    appendStringInfoString(&s, "ROW(");
    for (int i = 0; i < job->n_keys; i++)
        appendStringInfo(&s, "%s$%d::%s", i ? ", " : "", first + i, job->key_types[i]);
    appendStringInfoChar(&s, ')');
    return s.data;
}

/* Run the owner's code (the job's statements) from here to owner_end():
 * as the owner, as a security-restricted operation, in a GUC nest level
 * whose changes are all undone. */
struct OwnerCode {
    Oid saved_user;
    int saved_sec;
    int nest;
};

void owner_begin(const Job *job, OwnerCode *oc)
{
    GetUserIdAndSecContext(&oc->saved_user, &oc->saved_sec);
    oc->nest = NewGUCNestLevel();
    SetUserIdAndSecContext(job->owner, oc->saved_sec | SECURITY_LOCAL_USERID_CHANGE |
                                           SECURITY_RESTRICTED_OPERATION);
}

void owner_end(OwnerCode *oc)
{
    AtEOXact_GUC(false, oc->nest);
    SetUserIdAndSecContext(oc->saved_user, oc->saved_sec);
}

void mark(int64 id, const char *assignments, int nargs, Oid *types, Datum *values,
          const char *nulls);

void pin_session_search_path(void)
{
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);
}

/* The job, if it is still there, ours and runnable; marked running. */
Job *load_job(void)
{
    Job *job = nullptr;
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    SPI_connect();
    pg::Elevation e;
    pg::elevate(&e);
    Oid t[2] = {INT8OID, OIDOID};
    Datum v[2] = {Int64GetDatum(worker_args.job), ObjectIdGetDatum(worker_args.owner)};
    SPI_execute_with_args(
        "SELECT id, owner, relation, set_clause, where_clause, key_columns, key_types, "
        "key_operators, batch_size, target_batch_ms, max_rows_per_second, pause_ms, "
        "max_replica_lag, relid, latency_budget_ms, vacuum, operation, vacuum_horizon, eager "
        "FROM safe_migrate.backfill_jobs "
        "WHERE id OPERATOR(pg_catalog.=) $1 AND owner OPERATOR(pg_catalog.=) $2 "
        "AND status OPERATOR(pg_catalog.=) ANY ('{queued,running}'::pg_catalog.text[]) FOR UPDATE",
        2, t, v, nullptr, false, 1);
    if (SPI_processed == 1) {
        MemoryContext old = MemoryContextSwitchTo(job_cxt);
        HeapTuple tup = SPI_tuptable->vals[0];
        TupleDesc d = SPI_tuptable->tupdesc;
        bool isnull;
        job = (Job *) palloc0(sizeof(Job));
        job->id = DatumGetInt64(SPI_getbinval(tup, d, 1, &isnull));
        job->owner = DatumGetObjectId(SPI_getbinval(tup, d, 2, &isnull));
        job->relation = SPI_getvalue(tup, d, 3);
        job->set_clause = SPI_getvalue(tup, d, 4);
        job->where_clause = SPI_getvalue(tup, d, 5);
        job->key_columns = text_array(SPI_getbinval(tup, d, 6, &isnull), &job->n_keys);
        int n;
        job->key_types = text_array(SPI_getbinval(tup, d, 7, &isnull), &n);
        char **ops = text_array(SPI_getbinval(tup, d, 8, &isnull), &n);
        /* a vacuum job has no key, nor its operators */
        job->op_after = n == 3 ? ops[0] : nullptr;
        job->op_upto = n == 3 ? ops[1] : nullptr;
        job->op_sort = n == 3 ? ops[2] : nullptr;
        job->pacing.initial_batch = DatumGetInt32(SPI_getbinval(tup, d, 9, &isnull));
        job->pacing.target_batch_ms = DatumGetInt32(SPI_getbinval(tup, d, 10, &isnull));
        job->pacing.max_rows_per_second = DatumGetInt32(SPI_getbinval(tup, d, 11, &isnull));
        job->pacing.pause_ms = DatumGetInt32(SPI_getbinval(tup, d, 12, &isnull));
        job->pacing.latency_budget_ms = DatumGetFloat8(SPI_getbinval(tup, d, 15, &isnull));
        job->max_replica_lag = DatumGetInt64(SPI_getbinval(tup, d, 13, &isnull));
        job->vacuum = DatumGetBool(SPI_getbinval(tup, d, 16, &isnull));
        char *operation = SPI_getvalue(tup, d, 17);
        job->vacuum_only = operation != nullptr && strcmp(operation, "vacuum") == 0;
        Datum horizon = SPI_getbinval(tup, d, 18, &isnull);
        job->vacuum_horizon = isnull ? InvalidTransactionId : (TransactionId) DatumGetInt64(horizon);
        job->pacing.eager = DatumGetBool(SPI_getbinval(tup, d, 19, &isnull));
        /* the table is the one submitted (by OID), under its name of now:
         * a rename does not send the job to another table of the old name */
        Oid relid = DatumGetObjectId(SPI_getbinval(tup, d, 14, &isnull));
        job->relid = relid;
        char *relname = get_rel_name(relid);
        Oid nsp = get_rel_namespace(relid);
        char *nspname = OidIsValid(nsp) ? get_namespace_name(nsp) : nullptr;
        if (relname && nspname)
            job->relation = quote_qualified_identifier(nspname, relname);
        else
            job->relation = nullptr;
        MemoryContextSwitchTo(old);
        SPI_execute_with_args("UPDATE safe_migrate.backfill_jobs SET status = 'running', "
                              "started_at = coalesce(started_at, pg_catalog.clock_timestamp()), "
                              "updated_at = pg_catalog.clock_timestamp() "
                              "WHERE id OPERATOR(pg_catalog.=) $1",
                              1, t, v, nullptr, false, 0);
    }
    pg::unelevate(&e);
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    if (job && job->relation == nullptr) {
        Oid t2[1] = {TEXTOID};
        Datum v2[1] = {CStringGetTextDatum("the table of the job no longer exists")};
        mark(job->id,
             "status = 'failed', last_error = $2, last_sqlstate = '42P01', "
             "finished_at = pg_catalog.clock_timestamp()",
             1, t2, v2, nullptr);
        return nullptr;
    }
    return job;
}

/* Is the job still 'running'?  (After a control poked it.) */
bool still_running(const Job *job)
{
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    SPI_connect();
    pg::Elevation e;
    pg::elevate(&e);
    Oid t[1] = {INT8OID};
    Datum v[1] = {Int64GetDatum(job->id)};
    SPI_execute_with_args("SELECT 1 FROM safe_migrate.backfill_jobs WHERE id OPERATOR(pg_catalog.=) $1 "
                          "AND status OPERATOR(pg_catalog.=) 'running'::pg_catalog.text",
                          1, t, v, nullptr, true, 1);
    bool running = SPI_processed == 1;
    pg::unelevate(&e);
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    return running;
}

/* Sleep; false if a control stopped the job meanwhile. */
bool pause_for(const Job *job, long ms)
{
    if (ms <= 0)
        return true;
    if (!worker_sleep(&worker_args, ms))
        return true;
    return still_running(job);
}

/* Bytes the most lagging replica has still to replay (0: none), from the
 * walsenders' positions in shared memory against pg_current_wal_lsn(): no
 * SQL, and no need for the rights to see other roles' walsenders.  WAL
 * positions keep moving while a standby's replay is paused, unlike the lag
 * intervals of pg_stat_replication.  Which senders count and by what
 * position: core::replica_lag_bytes (a replica that catches up after a
 * reconnect counts, not only one that streams). */
int64 replica_lag(void)
{
    if (WalSndCtl == nullptr)
        return 0;
    XLogRecPtr current = GetXLogWriteRecPtr();
    int64 worst = 0;
    for (int i = 0; i < max_wal_senders; i++) {
        WalSnd *w = &WalSndCtl->walsnds[i];
        SpinLockAcquire(&w->mutex);
        pid_t pid = w->pid;
        WalSndState state = w->state;
        XLogRecPtr sent = w->sentPtr;
        XLogRecPtr replayed = w->apply;
        SpinLockRelease(&w->mutex);
        core::SenderState s = pid == 0                         ? core::SenderState::Other
                              : state == WALSNDSTATE_CATCHUP   ? core::SenderState::Catchup
                              : state == WALSNDSTATE_STREAMING ? core::SenderState::Streaming
                                                               : core::SenderState::Other;
        worst = Max(worst, core::replica_lag_bytes({s, (uint64_t) sent, (uint64_t) replayed},
                                                   (uint64_t) current));
    }
    return worst;
}

/* Our own statement on the job row, elevated (see the file header). */
void set_job(int64 id, const char *assignments, int nargs, Oid *types, Datum *values,
             const char *nulls)
{
    StringInfoData sql;
    initStringInfo(&sql);
    appendStringInfo(&sql,
                     "UPDATE safe_migrate.backfill_jobs SET %s, updated_at = pg_catalog.clock_timestamp() "
                     "WHERE id OPERATOR(pg_catalog.=) $1",
                     assignments);
    Oid t[12] = {INT8OID};
    Datum v[12] = {Int64GetDatum(id)};
    char n[13] = " ";
    if (nargs > 11)
        elog(ERROR, "set_job: too many parameters (%d)", nargs);
    for (int i = 0; i < nargs; i++) {
        t[i + 1] = types[i];
        v[i + 1] = values[i];
        n[i + 1] = nulls ? nulls[i] : ' ';
    }
    n[nargs + 1] = '\0';
    pg::Elevation e;
    pg::elevate(&e);
    if (SPI_execute_with_args(sql.data, nargs + 1, t, v, n, false, 0) != SPI_OK_UPDATE)
        elog(ERROR, "could not update backfill job %lld", (long long) id);
    pg::unelevate(&e);
}

/* In its own transaction. */
void mark(int64 id, const char *assignments, int nargs, Oid *types, Datum *values,
          const char *nulls)
{
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    SPI_connect();
    set_job(id, assignments, nargs, types, values, nulls);
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
}

enum class BatchResult { Done, Continue, Stopped };

struct BatchOutcome {
    BatchResult result;
    long rows;  /* rows updated */
    long keys;  /* keys examined (the batch's work, what the throttle sees) */
    int waiters;
};

/* NULL or the text, as a datum of a nullable parameter */
Datum nullable_text(const char *s, char *null)
{
    *null = s ? ' ' : 'n';
    return s ? CStringGetTextDatum(s) : (Datum) 0;
}

Datum nullable_ms(double v, char *null)
{
    *null = v >= 0 ? ' ' : 'n';
    return Float8GetDatum(v >= 0 ? v : 0);
}

/* One batch, one transaction (see the file header).  `shown` is the pacing
 * decision the batch runs under, recorded with its progress. */
BatchOutcome run_batch(Job *job, int batch_size, Pacing *pacing, const PacingDecision *shown)
{
    BatchOutcome out = {BatchResult::Continue, 0, 0, 0};
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    SPI_connect();

    /* 1. the job row: is it still ours to run, and where did it stop? */
    Oid t1[1] = {INT8OID};
    Datum v1[1] = {Int64GetDatum(job->id)};
    pg::Elevation e;
    pg::elevate(&e);
    SPI_execute_with_args("SELECT status, last_key FROM safe_migrate.backfill_jobs "
                          "WHERE id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
                          1, t1, v1, nullptr, false, 1);
    pg::unelevate(&e);
    if (SPI_processed != 1 ||
        strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "running") != 0) {
        out.result = BatchResult::Stopped;
        SPI_finish();
        PopActiveSnapshot();
        CommitTransactionCommand();
        return out;
    }
    int nk = job->n_keys;
    bool isnull;
    Datum last_datum = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
    int n_last = 0;
    char **last_key = isnull ? nullptr : text_array(last_datum, &n_last);
    if (last_key && n_last != nk)
        elog(ERROR, "backfill job %lld: last_key has %d values for a key of %d columns",
             (long long) job->id, n_last, nk);

    /* 2. as the owner, restricted: the next keys, then that key range */
    OwnerCode oc;
    owner_begin(job, &oc);
    /* Deferred triggers fire at the end of the batch's statement, inside
     * the restricted operation, rather than at commit: PostgreSQL refuses
     * to queue a deferred trigger event past a security-restricted
     * operation (it would fire outside it).  The batch is one statement in
     * a transaction of its own, so the checks still see the whole batch. */
    if (SPI_execute("SET CONSTRAINTS ALL IMMEDIATE", false, 0) != SPI_OK_UTILITY)
        elog(ERROR, "could not make the constraints of the batch immediate");
    char *keys = key_row(job);
    StringInfoData sel;
    initStringInfo(&sel);
    /* output names of their own: ORDER BY must name the columns, not the
     * text copies (else it sorts as text, scanning the whole table) */
    appendStringInfoString(&sel, "SELECT ");
    for (int i = 0; i < nk; i++)
        appendStringInfo(&sel, "%s%s::pg_catalog.text AS safe_migrate_key_%d", i ? ", " : "",
                         job->key_columns[i], i);
    appendStringInfo(&sel, " FROM %s", job->relation);
    if (last_key)
        appendStringInfo(&sel, " WHERE %s %s %s", keys, job->op_after, param_row(job, 1));
    appendStringInfoString(&sel, " ORDER BY ");
    for (int i = 0; i < nk; i++)
        appendStringInfo(&sel, "%s%s USING %s", i ? ", " : "", job->key_columns[i], job->op_sort);
    appendStringInfo(&sel, " LIMIT %d", batch_size);
    Oid *types = (Oid *) palloc(sizeof(Oid) * (2 * nk + 1));
    Datum *values = (Datum *) palloc(sizeof(Datum) * (2 * nk + 1));
    for (int i = 0; i < 2 * nk; i++)
        types[i] = TEXTOID;
    if (last_key)
        for (int i = 0; i < nk; i++)
            values[i] = CStringGetTextDatum(last_key[i]);
    /* The keys travel as text (and are kept as text with the job): their
     * output must read back as the same values, in this session and in the
     * next worker's, whatever its settings (the owner's role or database
     * may set them, and change them while a job is paused or after a
     * crash).  Floats print exactly only with extra_float_digits > 0 (else
     * a float key rounds: batches overlap or skip rows, or the walk never
     * ends); dates and times print in ISO, which every DateStyle reads back
     * alike (in "SQL, DMY", 10/01/2020 would be read as October 1 by a
     * session in MDY: rows skipped, or walked twice); intervals with the
     * sign of every field written out. */
    int key_nest = NewGUCNestLevel();
    (void) set_config_option("extra_float_digits", "3", PGC_USERSET, PGC_S_SESSION,
                             GUC_ACTION_SAVE, true, 0, false);
    (void) set_config_option("datestyle", "ISO", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
                             false);
    (void) set_config_option("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION,
                             GUC_ACTION_SAVE, true, 0, false);
    int key_rc = SPI_execute_with_args(sel.data, last_key ? nk : 0, types, values, nullptr, false, 0);
    AtEOXact_GUC(true, key_nest);
    if (key_rc != SPI_OK_SELECT)
        elog(ERROR, "could not read the next keys of %s", job->relation);
    uint64 found = SPI_processed;
    out.keys = (long) found;
    if (found == 0) {
        owner_end(&oc);
        /* every row is done: the job completes after its aftermath (see
         * aftermath()) */
        out.result = BatchResult::Done;
        SPI_finish();
        PopActiveSnapshot();
        CommitTransactionCommand();
        return out;
    }
    char **new_last = (char **) palloc(sizeof(char *) * (nk + 1));
    for (int i = 0; i < nk; i++)
        new_last[i] = SPI_getvalue(SPI_tuptable->vals[found - 1], SPI_tuptable->tupdesc, i + 1);

    StringInfoData upd;
    initStringInfo(&upd);
    if (job->set_clause)
        appendStringInfo(&upd, "UPDATE %s SET %s WHERE ", job->relation, job->set_clause);
    else
        appendStringInfo(&upd, "DELETE FROM %s WHERE ", job->relation);
    int next_param = 1;
    if (last_key) {
        appendStringInfo(&upd, "%s %s %s AND ", keys, job->op_after, param_row(job, 1));
        next_param = nk + 1;
    }
    appendStringInfo(&upd, "%s %s %s", keys, job->op_upto, param_row(job, next_param));
    if (job->where_clause)
        appendStringInfo(&upd, " AND (%s)", job->where_clause);
    for (int i = 0; i < nk; i++)
        values[next_param - 1 + i] = CStringGetTextDatum(new_last[i]);
    /* the stored clauses are PostgreSQL's rendering of one assignment list
     * and one expression (api.cpp); still, never run more than one
     * statement */
    if (list_length(raw_parser(upd.data, RAW_PARSE_DEFAULT)) != 1)
        elog(ERROR, "the batch statement of backfill job %lld is not one statement",
             (long long) job->id);
    if (SPI_execute_with_args(upd.data, next_param - 1 + nk, types, values, nullptr, false, 0) !=
        (job->set_clause ? SPI_OK_UPDATE : SPI_OK_DELETE))
        elog(ERROR, "could not %s %s", job->set_clause ? "update" : "delete from", job->relation);
    out.rows = (long) SPI_processed;
    owner_end(&oc);

    /* 3. did anybody wait on us?  And the application's sessions, as this
     * batch ends. */
    out.waiters = pacing_lock_waiters_on_me();
    pacing_sample_foreground(pacing);

    /* 4. progress, in the batch's transaction */
    Oid t4[10] = {TEXTARRAYOID, INT8OID, INT4OID, FLOAT8OID, INT8OID, TEXTOID, FLOAT8OID, FLOAT8OID, FLOAT8OID};
    char n4[10] = "         ";
    Datum v4[10] = {to_text_array(new_last, nk), Int64GetDatum(out.rows), Int32GetDatum(batch_size),
                    Float8GetDatum(shown->rate), Int64GetDatum(out.keys)};
    v4[5] = nullable_text(shown->throttled_by, &n4[5]);
    v4[6] = nullable_ms(shown->foreground_ms, &n4[6]);
    v4[7] = nullable_ms(shown->baseline_ms, &n4[7]);
    v4[8] = Float8GetDatum(shown->duty);
    set_job(job->id,
            "last_key = $2, rows_done = rows_done OPERATOR(pg_catalog.+) $3, "
            "rows_examined = rows_examined OPERATOR(pg_catalog.+) $6, "
            "batches = batches OPERATOR(pg_catalog.+) 1, batch_size = $4, "
            "rate = $5, last_error = NULL, last_sqlstate = NULL, waiting_for = NULL, "
            "throttled_by = $7, foreground_latency_ms = $8, foreground_baseline_ms = $9, duty = $10",
            9, t4, v4, n4);
    SPI_finish();
    PopActiveSnapshot();
    /* commit as the owner, restricted: whatever would still run at commit
     * is the owner's code (an error here aborts the transaction, which
     * restores the user and the settings) */
    Oid saved_user;
    int saved_sec;
    GetUserIdAndSecContext(&saved_user, &saved_sec);
    SetUserIdAndSecContext(job->owner, saved_sec | SECURITY_LOCAL_USERID_CHANGE |
                                           SECURITY_RESTRICTED_OPERATION);
    CommitTransactionCommand();
    SetUserIdAndSecContext(saved_user, saved_sec);
    /* a SET (not LOCAL) in a deferred trigger outlives the commit */
    pin_session_search_path();
    return out;
}

bool transient(int sqlstate)
{
    return sqlstate == ERRCODE_T_R_DEADLOCK_DETECTED ||
           sqlstate == ERRCODE_T_R_SERIALIZATION_FAILURE ||
           sqlstate == ERRCODE_LOCK_NOT_AVAILABLE || sqlstate == ERRCODE_QUERY_CANCELED;
}

/* Sleeps at least this long are shown in the progress view before they
 * begin (shorter ones with the next batch's progress). */
constexpr double kShowDecisionAfterMs = 200;

/* The pacing decision, in the progress view, in its own transaction. */
void show_decision(const Job *job, const PacingDecision *d)
{
    Oid t[5] = {TEXTOID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID};
    char n[6] = "     ";
    Datum v[5];
    v[0] = nullable_text(d->throttled_by, &n[0]);
    v[1] = nullable_ms(d->foreground_ms, &n[1]);
    v[2] = nullable_ms(d->baseline_ms, &n[2]);
    v[3] = Float8GetDatum(d->duty);
    v[4] = Float8GetDatum(d->rate);
    mark(job->id,
         "throttled_by = $2, foreground_latency_ms = $3, foreground_baseline_ms = $4, duty = $5, rate = $6",
         5, t, v, n);
}

/*
 * Write out the pages of the job's table (heap, TOAST, indexes) that are
 * dirty in shared buffers, and ask the kernel to start writing them to disk.
 * Otherwise most of what a batch dirties is written by the application's
 * sessions, which evict those buffers while they read and leave the data in
 * the kernel's page cache (backend_flush_after is 0 by default): measured,
 * ~60 MB went to disk in one burst 30 s later (vm.dirty_expire_centisecs)
 * and every session's commit stalled behind it for up to 130 ms (issue 16).
 * Written here, after each batch's commit, the job's writes go to disk as
 * the job goes, paced with it.  Finding the buffers is a pass over shared
 * buffers (a few ns each, and a header lock for each buffer of the table),
 * so it is done at most every 100 ms, and with a large shared_buffers less
 * often: every NBuffers/5000 ms (32 GB: every 0.8 s).  (After every batch,
 * it took a fifth of the worker's time while the application was there and
 * the batches were short, measured with perf.)  Locks are only
 * taken when free at once: this never waits, and a missed pass costs
 * nothing but the next one's work.  An error (the disk's) is logged and
 * ends the write-outs of this job, not the job: the checkpoint will meet it.
 */
/* The relation, locked in ACCESS SHARE mode if that lock is free at once;
 * NULL otherwise (or when it is gone). */
Relation open_if_free(Oid relid)
{
    if (!ConditionalLockRelationOid(relid, AccessShareLock))
        return nullptr;
    Relation rel = try_relation_open(relid, NoLock);
    if (rel == nullptr)
        UnlockRelationOid(relid, AccessShareLock);
    return rel;
}

/* rels + rel + those of rel's indexes open_if_free opens. */
List *with_indexes(List *rels, Relation rel)
{
    rels = lappend(rels, rel);
    List *indexes = RelationGetIndexList(rel);
    ListCell *lc;
    foreach (lc, indexes) {
        Relation index = open_if_free(lfirst_oid(lc));
        if (index != nullptr)
            rels = lappend(rels, index);
    }
    return rels;
}

void write_out_pages_now(const Job *job)
{
    StartTransactionCommand();
    Relation rel = open_if_free(job->relid);
    if (rel != nullptr) {
        List *rels = with_indexes(NIL, rel);
        if (OidIsValid(rel->rd_rel->reltoastrelid)) {
            Relation toast = open_if_free(rel->rd_rel->reltoastrelid);
            if (toast != nullptr)
                rels = with_indexes(rels, toast);
        }
        int n = list_length(rels);
        SMgrRelation *smgrs = (SMgrRelation *) palloc(sizeof(SMgrRelation) * n);
        int i = 0;
        ListCell *lc;
        foreach (lc, rels)
            smgrs[i++] = RelationGetSmgr((Relation) lfirst(lc));
        FlushRelationsAllBuffers(smgrs, n);
        for (i = 0; i < n; i++) {
            BlockNumber blocks = smgrnblocks(smgrs[i], MAIN_FORKNUM);
            if (blocks > 0)
                smgrwriteback(smgrs[i], MAIN_FORKNUM, 0, blocks);
        }
        /* the locks go at commit */
        foreach (lc, rels)
            relation_close((Relation) lfirst(lc), NoLock);
    }
    CommitTransactionCommand();
}

/* the least time between two write-outs, in ms */
constexpr int kWriteOutEveryMs = 100;

/* rows the job changes between two write-outs at least: a job held to a
 * few rows a second by the application's latency has next to nothing of
 * its own to write, and a pass would mostly write (and flush the WAL for)
 * the pages the application dirtied */
constexpr int64 kWriteOutMinRows = 2000;

/* A write-out pass if one is due; whether it ran. */
bool write_out_pages(const Job *job, TimestampTz *last)
{
    if (*last < 0)
        return false; /* failed once */
    TimestampTz now = GetCurrentTimestamp();
    if (*last != 0 && !TimestampDifferenceExceeds(*last, now, std::max(kWriteOutEveryMs, NBuffers / 5000)))
        return false;
    *last = now;
    MemoryContext cxt = CurrentMemoryContext;
    PG_TRY();
    {
        write_out_pages_now(job);
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(cxt);
        ErrorData *e = CopyErrorData();
        FlushErrorState();
        AbortCurrentTransaction();
        ereport(WARNING, (errmsg("safe_migrate backfill job %lld stops writing out its pages: %s",
                                 (long long) job->id, e->message)));
        *last = -1;
    }
    PG_END_TRY();
    return true;
}

/*
 * The aftermath.  A backfill leaves a dead version of every row it changed;
 * autovacuum comes for them soon after (a job changes more rows than its
 * threshold, autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor *
 * rows), prunes and freezes every page the job touched and writes them all
 * again: measured on the 2,000,000-row benchmark table, 65,000 pages (500
 * MB) dirtied in 17 s and left in the kernel's page cache (autovacuum
 * writes through its ring of buffers, backend_flush_after = 0), written
 * back in bursts of 100-250 MB 10-30 s later, the application's commits
 * waiting behind them (issue 16: stalls of 44, 54 and 85 ms after jobs
 * whose batches the application never felt).
 *
 * So when the last batch is done while the application is there, the
 * worker does that vacuum itself before the job completes (whoever waits
 * for the job, a migration's next step, comes after it and does not meet
 * it): VACUUM (ANALYZE, SKIP_LOCKED) of the table as the job's owner, at
 * the pace the DBA set for autovacuum (autovacuum_vacuum_cost_delay /
 * _limit), its pages written out as it goes (this session's
 * backend_flush_after, 256 kB).  A snapshot older than the job's last batch
 * would keep every dead version (migrate_backfill_wait gives its up while
 * it sleeps; a long report may not): the worker waits up to kHorizonWaitMs
 * for none to be left, or leaves the vacuum to autovacuum.  While it
 * vacuums it is flagged as autovacuum is (PROC_IS_AUTOVACUUM), so a session
 * that waits for a lock the vacuum holds (DDL on the table, a DROP)
 * cancels it after deadlock_timeout, as it would cancel autovacuum; the
 * flag has no other effect on a process that only vacuums and analyzes
 * meanwhile (CREATE INDEX CONCURRENTLY does not wait for it either, as for
 * autovacuum).  Not done with nobody there (nobody feels autovacuum's
 * writes), for fewer rows changed than would make autovacuum come, for a
 * table the job's owner does not own or with autovacuum_enabled = off, nor
 * for a job submitted with safe_migrate.backfill_vacuum off.  A vacuum that
 * fails or is canceled is logged; the job's rows were done before.
 */
constexpr long kHorizonWaitMs = 5000;

bool vacuum_wanted(const Job *job, const PacingDecision *d)
{
    if (!job->vacuum || !d->foreground_present || !autovacuum_start_daemon)
        return false;
    bool wanted = false;
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    SPI_connect();
    Oid t[1] = {INT8OID};
    Datum v[1] = {Int64GetDatum(job->id)};
    pg::Elevation e;
    pg::elevate(&e);
    SPI_execute_with_args("SELECT rows_done FROM safe_migrate.backfill_jobs "
                          "WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'running'",
                          1, t, v, nullptr, true, 1);
    pg::unelevate(&e);
    int64 changed = -1;
    if (SPI_processed == 1) {
        bool isnull;
        changed = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    }
    SPI_finish();
    if (changed > 0 && pg::compat::class_owner(job->relid, GetUserId())) {
        Relation rel = try_relation_open(job->relid, AccessShareLock);
        if (rel != nullptr) {
            /* autovacuum_enabled = false on the table: its owner vacuums it */
            StdRdOptions *opts = (StdRdOptions *) rel->rd_options;
            bool enabled = rel->rd_rel->relkind == RELKIND_RELATION &&
                           (opts == nullptr || opts->autovacuum.enabled);
            double tuples = rel->rd_rel->reltuples > 0 ? rel->rd_rel->reltuples : 0;
            relation_close(rel, AccessShareLock);
            wanted = enabled && (double) changed >= autovacuum_vac_thresh + autovacuum_vac_scale * tuples;
        }
    }
    PopActiveSnapshot();
    CommitTransactionCommand();
    return wanted;
}

/* Can a vacuum of the table now remove what transactions before `limit`
 * left?  (No snapshot older than that is left.)  *gone (when given): the
 * table is no more, nothing to wait for. */
bool removable_up_to(const Job *job, TransactionId limit, bool *gone = nullptr)
{
    bool removable = false;
    StartTransactionCommand();
    Relation rel = try_relation_open(job->relid, AccessShareLock);
    if (rel != nullptr) {
        removable = TransactionIdFollowsOrEquals(GetOldestNonRemovableTransactionId(rel), limit);
        relation_close(rel, AccessShareLock);
    }
    if (gone != nullptr)
        *gone = rel == nullptr;
    CommitTransactionCommand();
    return removable;
}

/* autovacuum's own pace (-1 there: the server's vacuum_cost_* stand) */
void set_vacuum_pace(void)
{
    char buf[64];
    if (autovacuum_vac_cost_delay >= 0) {
        snprintf(buf, sizeof buf, "%g", autovacuum_vac_cost_delay);
        SetConfigOption("vacuum_cost_delay", buf, PGC_USERSET, PGC_S_SESSION);
    }
    if (autovacuum_vac_cost_limit > 0) {
        snprintf(buf, sizeof buf, "%d", autovacuum_vac_cost_limit);
        SetConfigOption("vacuum_cost_limit", buf, PGC_USERSET, PGC_S_SESSION);
    }
}

/* the autovacuum flag on this process (see above) */
void flag_as_autovacuum(bool on)
{
    LWLockAcquire(ProcArrayLock, LW_EXCLUSIVE);
    if (on)
        MyProc->statusFlags |= PROC_IS_AUTOVACUUM;
    else
        MyProc->statusFlags &= ~PROC_IS_AUTOVACUUM;
    ProcGlobal->statusFlags[MyProc->pgxactoff] = MyProc->statusFlags;
    LWLockRelease(ProcArrayLock);
}

/* While the vacuum runs, every 100 ms: a control (pause, cancel) poked the
 * job?  Then cancel the vacuum, as a query is canceled (a timeout handler:
 * a flag and the latch only). */
TimeoutId poke_timeout = MAX_TIMEOUTS;

void cancel_vacuum_if_poked(void)
{
    if (worker_poked_now(&worker_args)) {
        QueryCancelPending = true;
        InterruptPending = true;
        SetLatch(MyLatch);
    }
}

void vacuum_cancels_on_poke(bool on)
{
    if (poke_timeout == MAX_TIMEOUTS)
        poke_timeout = RegisterTimeout(USER_TIMEOUT, cancel_vacuum_if_poked);
    if (on) {
        enable_timeout_every(poke_timeout, TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 100), 100);
    } else {
        disable_timeout(poke_timeout, false);
        flag_as_autovacuum(false);
        /* a cancel that came too late to stop the vacuum must not stop
         * what follows (autovacuum does the same between two tables) */
        QueryCancelPending = false;
    }
}

/* true when it vacuumed */
bool vacuum_table(const Job *job)
{
    set_vacuum_pace();
    char *activity = psprintf("%s %lld: VACUUM (ANALYZE, SKIP_LOCKED) %s", kJobCommand, (long long) job->id,
                              job->relation);
    pgstat_report_activity(STATE_RUNNING, activity);
    MemoryContext cxt = CurrentMemoryContext;
    /* vacuum keeps what must outlive its transactions under PortalContext,
     * which a background worker does not have */
    MemoryContext portal = AllocSetContextCreate(TopMemoryContext, "safe_migrate backfill vacuum",
                                                 ALLOCSET_DEFAULT_SIZES);
    MemoryContext saved_portal = PortalContext;
    PortalContext = portal;
    volatile bool done = false;
    PG_TRY();
    {
        StartTransactionCommand();
        MemoryContext old = MemoryContextSwitchTo(portal);
        char *relname = get_rel_name(job->relid);
        Oid nsp = get_rel_namespace(job->relid);
        char *nspname = OidIsValid(nsp) ? get_namespace_name(nsp) : nullptr;
        if (relname != nullptr && nspname != nullptr) {
            VacuumStmt *stmt = makeNode(VacuumStmt);
            stmt->options = list_make2(makeDefElem(pstrdup("analyze"), nullptr, -1),
                                       makeDefElem(pstrdup("skip_locked"), nullptr, -1));
            stmt->rels = list_make1(makeVacuumRelation(makeRangeVar(nspname, relname, -1), job->relid, NIL));
            stmt->is_vacuumcmd = true;
            ParseState *pstate = make_parsestate(nullptr);
            pstate->p_sourcetext = activity;
            MemoryContextSwitchTo(old);
            flag_as_autovacuum(true);
            vacuum_cancels_on_poke(true);
            ExecVacuum(pstate, stmt, true);
            vacuum_cancels_on_poke(false);
            done = true;
        } else {
            MemoryContextSwitchTo(old);
        }
        CommitTransactionCommand();
    }
    PG_CATCH();
    {
        if (poke_timeout != MAX_TIMEOUTS)
            disable_timeout(poke_timeout, false);
        MemoryContextSwitchTo(cxt);
        ErrorData *e = CopyErrorData();
        FlushErrorState();
        AbortCurrentTransaction();
        vacuum_cancels_on_poke(false);
        /* canceled: a control stopped the job, or a session waited for a
         * lock the vacuum held (see above) */
        ereport(LOG, (errmsg("safe_migrate backfill job %lld left the vacuum of %s to autovacuum: %s",
                             (long long) job->id, job->relation,
                             e->sqlerrcode != ERRCODE_QUERY_CANCELED ? e->message
                             : worker_poked_now(&worker_args) ? "the job was paused or cancelled"
                                                              : "a session waited for a lock the vacuum held")));
        done = false;
    }
    PG_END_TRY();
    PortalContext = saved_portal;
    MemoryContextDelete(portal);
    MemoryContextSwitchTo(cxt);
    return done;
}

/* The job is completed, unless a pause or cancel came meanwhile: that
 * stands (a paused job resumed finds its work done and comes here again). */
void complete_unless_stopped(const Job *job)
{
    mark(job->id,
         "finished_at = CASE WHEN status OPERATOR(pg_catalog.=) 'running' THEN pg_catalog.clock_timestamp() "
         "ELSE finished_at END, "
         "status = CASE WHEN status OPERATOR(pg_catalog.=) 'running' THEN 'completed' ELSE status END, "
         "waiting_for = NULL",
         0, nullptr, nullptr, nullptr);
}

/* Every row is done: the aftermath (see above), then the job is completed
 * (unless a control stopped it meanwhile). */
void aftermath(const Job *job, const PacingDecision *d)
{
    /* every batch of the job committed before this */
    TransactionId limit = ReadNextTransactionId();
    bool vacuumed = false;
    if (vacuum_wanted(job, d)) {
        Oid t[1] = {TEXTOID};
        Datum v[1] = {CStringGetTextDatum("snapshots older than its last batch (before its vacuum)")};
        mark(job->id, "waiting_for = $2, throttled_by = NULL", 1, t, v, nullptr);
        long waited = 0;
        bool removable;
        while (!(removable = removable_up_to(job, limit)) && waited < kHorizonWaitMs) {
            (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 50, PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
            CHECK_FOR_INTERRUPTS();
            waited += 50;
        }
        if (!removable) {
            ereport(LOG, (errmsg("safe_migrate backfill job %lld left the vacuum of %s to autovacuum: "
                                 "a snapshot older than its last batch is still held",
                                 (long long) job->id, job->relation)));
        } else {
            v[0] = CStringGetTextDatum("the vacuum of the old row versions (VACUUM ANALYZE at autovacuum's pace)");
            mark(job->id, "waiting_for = $2", 1, t, v, nullptr);
            /* the dead rows this process's batches counted, into the
             * table's statistics before the vacuum's count replaces them
             * (else they would arrive after it, at exit, and autovacuum
             * would come for dead rows that are gone) */
            pgstat_report_stat(true);
            vacuumed = vacuum_table(job);
        }
    }
    if (vacuumed)
        mark(job->id, "vacuumed_at = pg_catalog.clock_timestamp()", 0, nullptr, nullptr, nullptr);
    complete_unless_stopped(job);
}

/* A vacuum job (migrate_vacuum): the aftermath alone, asked for, so done
 * whether or not the application is there and however few rows changed,
 * as long as its submitter still owns the table.  It waits longer than a
 * job's own aftermath for older snapshots to go (up to kVacuumJobHorizonMs,
 * a pause or cancel ends the wait): what it was queued for, the dead rows
 * of the transactions before it was queued (vacuum_horizon), can only go
 * after them.  Not after the job starts: a session that waits for the job
 * in a statement that keeps its snapshot (one taken after the queueing)
 * must not hold it back. */
constexpr long kVacuumJobHorizonMs = 60000; /* the "60 s" below */

void vacuum_job(const Job *job)
{
    TransactionId limit =
        TransactionIdIsNormal(job->vacuum_horizon) ? job->vacuum_horizon : ReadNextTransactionId();
    const char *left = nullptr;
    StartTransactionCommand();
    bool owner = pg::compat::class_owner(job->relid, GetUserId());
    bool plain = get_rel_relkind(job->relid) == RELKIND_RELATION;
    CommitTransactionCommand();
    if (!owner) {
        left = "its submitter no longer owns the table (left to autovacuum)";
    } else if (!plain) {
        /* migrate_vacuum queues plain tables only (a partitioned table by
         * OID would only be analyzed, not its partitions vacuumed) */
        left = "not a plain table";
    } else {
        Oid t[1] = {TEXTOID};
        Datum v[1] = {CStringGetTextDatum("snapshots older than the job (before its vacuum)")};
        mark(job->id, "waiting_for = $2, throttled_by = NULL", 1, t, v, nullptr);
        long waited = 0;
        bool removable, gone = false;
        while (!(removable = removable_up_to(job, limit, &gone)) && !gone && waited < kVacuumJobHorizonMs) {
            if (!pause_for(job, 100))
                return; /* paused or cancelled meanwhile: that stands */
            waited += 100;
        }
        if (gone) {
            left = "the table no longer exists";
        } else if (!removable) {
            left = "a snapshot older than the job was still held after 60 s (left to autovacuum)";
        } else {
            v[0] = CStringGetTextDatum("the vacuum (VACUUM ANALYZE at autovacuum's pace)");
            mark(job->id, "waiting_for = $2", 1, t, v, nullptr);
            if (vacuum_table(job))
                mark(job->id, "vacuumed_at = pg_catalog.clock_timestamp()", 0, nullptr, nullptr, nullptr);
            else
                left = "the vacuum was canceled or failed, see the server log (left to autovacuum)";
        }
    }
    if (left != nullptr) {
        ereport(LOG, (errmsg("safe_migrate vacuum job %lld did not vacuum %s: %s", (long long) job->id,
                             job->relation, left)));
        Oid t[1] = {TEXTOID};
        Datum v[1] = {CStringGetTextDatum(left)};
        mark(job->id, "last_error = $2", 1, t, v, nullptr);
    }
    /* vacuumed_at stays null when it did not vacuum */
    complete_unless_stopped(job);
}

void run_job(Job *job)
{
    if (job->vacuum_only) {
        vacuum_job(job);
        return;
    }
    if (job->op_after == nullptr) {
        Oid t[1] = {TEXTOID};
        Datum v[1] = {CStringGetTextDatum("the job's key operators are missing")};
        mark(job->id, "status = 'failed', last_error = $2, finished_at = pg_catalog.clock_timestamp()", 1, t, v,
             nullptr);
        return;
    }
    Pacing *pacing;
    const char *problem = pacing_create(&job->pacing, &pacing);
    if (problem) {
        Oid t[1] = {TEXTOID};
        Datum v[1] = {CStringGetTextDatum(problem)};
        mark(job->id, "status = 'failed', last_error = $2, finished_at = pg_catalog.clock_timestamp()", 1, t, v, nullptr);
        return;
    }
    /* the application's sessions as the job starts, so that statements
     * they start during the first batch count as seen (the first batch saw
     * only those still running at its end, and a job that found the
     * application there noticed it a batch or two later) */
    StartTransactionCommand();
    pacing_sample_foreground(pacing);
    CommitTransactionCommand();
    PacingDecision decision;
    pacing_initial(pacing, &decision);
    int batch = decision.next_batch;
    int transient_failures = 0;
    TimestampTz last_write_out = 0;
    int64 rows_since_write_out = 0;
    char *activity = psprintf("%s %lld on %s", kJobCommand, (long long) job->id, job->relation);

    for (;;) {
        CHECK_FOR_INTERRUPTS();
        pgstat_report_activity(STATE_RUNNING, activity);

        /* replicas first: never let them fall further behind */
        if (job->max_replica_lag > 0) {
            int64 lag = replica_lag();
            if (lag > job->max_replica_lag) {
                Oid t[1] = {TEXTOID};
                Datum v[1] = {CStringGetTextDatum(
                    psprintf("a replica is %lld bytes behind", (long long) lag))};
                mark(job->id, "waiting_for = $2, throttled_by = 'replica lag'", 1, t, v, nullptr);
                if (!pause_for(job, 500))
                    return;
                continue;
            }
        }

        /* the application's statements that ended while we slept */
        pacing_before_batch(pacing);

        TimestampTz start = GetCurrentTimestamp();
        MemoryContext cxt = CurrentMemoryContext;
        ErrorData *volatile failure = nullptr;
        BatchOutcome outcome = {BatchResult::Continue, 0, 0, 0};
        PG_TRY();
        {
            /* a batch waits this long for a lock, then steps back */
            (void) set_config_option("lock_timeout", "1000", PGC_SUSET, PGC_S_SESSION,
                                     GUC_ACTION_SET, true, 0, false);
            outcome = run_batch(job, batch, pacing, &decision);
        }
        PG_CATCH();
        {
            MemoryContextSwitchTo(cxt);
            failure = CopyErrorData();
            FlushErrorState();
            AbortCurrentTransaction();
        }
        PG_END_TRY();

        if (failure) {
            if (transient(failure->sqlerrcode) && transient_failures < 20) {
                transient_failures++;
                Oid t[2] = {TEXTOID, TEXTOID};
                Datum v[2] = {CStringGetTextDatum(failure->message),
                              CStringGetTextDatum(unpack_sql_state(failure->sqlerrcode))};
                mark(job->id, "retries = retries OPERATOR(pg_catalog.+) 1, last_error = $2, last_sqlstate = $3", 2, t,
                     v, nullptr);
                if (!pause_for(job, pg::lock_retry_delay_ms(transient_failures, 100)))
                    return;
                continue;
            }
            Oid t[2] = {TEXTOID, TEXTOID};
            Datum v[2] = {CStringGetTextDatum(failure->message),
                          CStringGetTextDatum(unpack_sql_state(failure->sqlerrcode))};
            mark(job->id,
                 "status = 'failed', last_error = $2, last_sqlstate = $3, finished_at = pg_catalog.clock_timestamp()", 2,
                 t, v, nullptr);
            ereport(LOG, (errmsg("safe_migrate backfill job %lld failed: %s", (long long) job->id,
                                 failure->message)));
            return;
        }
        transient_failures = 0;
        if (outcome.result == BatchResult::Done && last_write_out > 0) {
            last_write_out = 0; /* the last batch's pages too, now */
            write_out_pages(job, &last_write_out);
        }
        if (outcome.result == BatchResult::Done)
            aftermath(job, &decision);
        if (outcome.result != BatchResult::Continue)
            return;
        /* the batch's own time, before the write-out: that pass costs the
         * same whatever the batch's size (it also writes what the
         * application dirtied), so counted in, it made every short batch
         * look long, shrank the batches to one row and stretched the duty
         * cycle's sleep to seconds (measured: 1 row a second under the
         * zero-downtime benchmark's load) */
        double ms = (double) (GetCurrentTimestamp() - start) / 1000.0;
        rows_since_write_out += outcome.rows;
        if (rows_since_write_out >= kWriteOutMinRows && write_out_pages(job, &last_write_out))
            rows_since_write_out = 0;
        int asked = batch;
        pacing_after(pacing, &decision, outcome.keys, batch, ms, outcome.waiters);
        batch = decision.next_batch;
        double sleep = decision.sleep_ms;
        elog(DEBUG1, "safe_migrate backfill job %lld: batch of %d keys: %ld examined, %ld updated "
                     "in %.1f ms, %d waiters, application p95 %.2f ms (quiet baseline %.2f), "
                     "application %s (%d active, %d on WAL); next %d keys after %.0f ms, duty %.3f%s%s",
             (long long) job->id, asked, outcome.keys, outcome.rows, ms, outcome.waiters,
             decision.foreground_ms, decision.baseline_ms, decision.foreground_present ? "present" : "absent",
             decision.fg_active, decision.fg_waiting_wal, batch, sleep, decision.duty,
             decision.throttled_by ? ", held by " : "", decision.throttled_by ? decision.throttled_by : "");
        /* sessions waited on the batch's locks: besides the smaller next
         * batch, give them a batch's time to get through first */
        if (outcome.waiters > 0)
            sleep += job->pacing.target_batch_ms;
        if (sleep > 0) {
            /* a long sleep: show the decision now, not after the next batch */
            if (sleep >= kShowDecisionAfterMs)
                show_decision(job, &decision);
            pgstat_report_activity(STATE_IDLE, activity);
            /* a quiet time: the application's statements of its last part
             * are the baseline */
            if (decision.quiet_probe && decision.quiet_from_ms > 0 && decision.quiet_from_ms < sleep) {
                if (!pause_for(job, (long) decision.quiet_from_ms))
                    return;
                sleep -= decision.quiet_from_ms;
            }
            if (decision.quiet_probe)
                pacing_quiet_begins(pacing);
            if (!pause_for(job, (long) sleep))
                return;
        }
    }
}

}  // namespace

extern "C" void safe_migrate_backfill_worker_main(Datum)
{
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    memcpy(&worker_args, MyBgworkerEntry->bgw_extra, sizeof(worker_args));
    worker_begin(&worker_args);
    /* as the job's owner, and nobody else */
    BackgroundWorkerInitializeConnectionByOid(worker_args.database, worker_args.owner, 0);
    worker_attach(&worker_args);
    SetConfigOption("application_name", "safe_migrate backfill", PGC_USERSET, PGC_S_SESSION);
    pgstat_report_appname("safe_migrate backfill");
    /* our own statements: pinned (the owner's code gets the same, in a nest
     * level whose changes are undone after it) */
    pin_session_search_path();
    /* a role's default_transaction_read_only must not keep the job from
     * recording its own progress */
    SetConfigOption("default_transaction_read_only", "off", PGC_USERSET, PGC_S_SESSION);
    /* the pages the job writes out itself go to disk as it goes, paced
     * with it, instead of waiting in the kernel's page cache to be written
     * back all at once seconds after the job (measured: the application's
     * commits then stalled behind that write-back for up to 65 ms, issue
     * 16); 32 blocks = 256 kB, what checkpoint_flush_after does */
    SetConfigOption("backend_flush_after", "32", PGC_USERSET, PGC_S_SESSION);
    /* a batch does not wait for its commit to reach the disk (the WAL
     * writer flushes it within a few hundred ms): one fsync less per batch
     * for the job and one less for the application's commits to queue
     * behind.  Nothing is lost by it: a batch's rows and the job's progress
     * commit in one transaction, so a crash takes back both and the resumed
     * job does that batch again, once; and any later commit that made it to
     * the disk (the application's, a migration step after
     * migrate_backfill_wait) carries the batch's WAL with it. */
    SetConfigOption("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION);
    if (RecoveryInProgress())
        proc_exit(0);

    /* nothing to do where the extension (at a version with backfills) is not */
    StartTransactionCommand();
    bool installed = jobs_table_exists();
    CommitTransactionCommand();
    if (!installed) {
        worker_done(&worker_args);
        proc_exit(0);
    }

    job_cxt = AllocSetContextCreate(TopMemoryContext, "safe_migrate backfill job",
                                    ALLOCSET_DEFAULT_SIZES);
    /* One job per process: whatever a job's code left in this session goes
     * with it. */
    Job *job = load_job();
    if (job != nullptr)
        run_job(job);
    worker_done(&worker_args);
    proc_exit(0);
}

}  // namespace safe_migrate::backfill
