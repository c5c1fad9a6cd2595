/*
 * worker.cpp — the per-database backfill worker.
 *
 * One job at a time, oldest first.  Each batch is one transaction that
 *   1. locks the job row and reads its last key (so pause/cancel and a
 *      concurrent worker are seen),
 *   2. as the job's owner, reads the next batch_size keys after the last one
 *      (by key alone, the where clause is not in that query) and updates the
 *      rows of exactly that key range that match the where clause,
 *   3. counts the sessions waiting on this transaction's locks,
 *   4. records the new last key and the counters, and commits.
 * Progress and batch commit together: after a crash the job resumes after
 * the last committed key, no row skipped, none updated twice.
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
#include "backfill.hpp"
#include "pg/core_bridge.hpp"
#include "pg/privileged.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "catalog/namespace.h"
#include "commands/extension.h"
#include "utils/lsyscache.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
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

struct Job {
    int64 id;
    Oid owner;
    char *relation;
    char *set_clause;
    char *where_clause;
    int n_keys;
    char **key_columns;
    char **key_types;
    char **last_key; /* NULL before the first batch */
    pg::ThrottleSettings throttle;
    int64 max_replica_lag;
};

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

/* "(k1, k2)" and "($1::t1, $2::t2)" for a key, params from `first` */
char *key_tuple(const Job *job)
{
    StringInfoData s;
    initStringInfo(&s);
    appendStringInfoChar(&s, '(');
    for (int i = 0; i < job->n_keys; i++)
        appendStringInfo(&s, "%s%s", i ? ", " : "", job->key_columns[i]);
    appendStringInfoChar(&s, ')');
    return s.data;
}

char *param_tuple(const Job *job, int first)
{
    StringInfoData s;
    initStringInfo(&s);
    appendStringInfoChar(&s, '(');
    for (int i = 0; i < job->n_keys; i++)
        appendStringInfo(&s, "%s$%d::%s", i ? ", " : "", first + i, job->key_types[i]);
    appendStringInfoChar(&s, ')');
    return s.data;
}

/* Read the job (status must be runnable); NULL if there is none. */
Job *next_job(void)
{
    Job *job = nullptr;
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    SPI_connect();
    SPI_execute("SELECT id, owner, relation, set_clause, where_clause, key_columns, key_types, "
                "last_key, batch_size, target_batch_ms, max_rows_per_second, pause_ms, "
                "max_replica_lag FROM safe_migrate.backfill_jobs "
                "WHERE status IN ('queued', 'running') ORDER BY id LIMIT 1",
                false, 1);
    if (SPI_processed == 1) {
        MemoryContext old = MemoryContextSwitchTo(job_cxt);
        HeapTuple t = SPI_tuptable->vals[0];
        TupleDesc d = SPI_tuptable->tupdesc;
        bool isnull;
        job = (Job *) palloc0(sizeof(Job));
        job->id = DatumGetInt64(SPI_getbinval(t, d, 1, &isnull));
        job->owner = DatumGetObjectId(SPI_getbinval(t, d, 2, &isnull));
        job->relation = SPI_getvalue(t, d, 3);
        job->set_clause = SPI_getvalue(t, d, 4);
        job->where_clause = SPI_getvalue(t, d, 5);
        job->key_columns = text_array(SPI_getbinval(t, d, 6, &isnull), &job->n_keys);
        int n;
        job->key_types = text_array(SPI_getbinval(t, d, 7, &isnull), &n);
        Datum last = SPI_getbinval(t, d, 8, &isnull);
        job->last_key = isnull ? nullptr : text_array(last, &n);
        job->throttle.initial_batch = DatumGetInt32(SPI_getbinval(t, d, 9, &isnull));
        job->throttle.target_batch_ms = DatumGetInt32(SPI_getbinval(t, d, 10, &isnull));
        job->throttle.max_rows_per_second = DatumGetInt32(SPI_getbinval(t, d, 11, &isnull));
        job->throttle.pause_ms = DatumGetInt32(SPI_getbinval(t, d, 12, &isnull));
        job->max_replica_lag = DatumGetInt64(SPI_getbinval(t, d, 13, &isnull));
        MemoryContextSwitchTo(old);
        Oid types[1] = {INT8OID};
        Datum values[1] = {Int64GetDatum(job->id)};
        SPI_execute_with_args("UPDATE safe_migrate.backfill_jobs SET status = 'running', "
                              "started_at = coalesce(started_at, clock_timestamp()), updated_at = clock_timestamp() "
                              "WHERE id = $1",
                              1, types, values, nullptr, false, 0);
    }
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    return job;
}

/* Bytes the most lagging streaming replica has still to replay (0: none).
 * WAL positions keep moving while a standby's replay is paused, unlike the
 * lag intervals of pg_stat_replication. */
int64 replica_lag(void)
{
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    SPI_connect();
    SPI_execute("SELECT coalesce(max(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), "
                "replay_lsn)), 0)::int8 FROM pg_catalog.pg_stat_replication "
                "WHERE state = 'streaming'",
                true, 1);
    bool isnull;
    int64 lag = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    return lag;
}

void set_job(int64 id, const char *assignments, int nargs, Oid *types, Datum *values,
             const char *nulls)
{
    StringInfoData sql;
    initStringInfo(&sql);
    appendStringInfo(&sql, "UPDATE safe_migrate.backfill_jobs SET %s, updated_at = clock_timestamp() WHERE id = $1",
                     assignments);
    Oid t[8] = {INT8OID};
    Datum v[8] = {Int64GetDatum(id)};
    char n[9] = " ";
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

/* One batch, one transaction (see the file header). */
BatchOutcome run_batch(Job *job, int batch_size, double rate)
{
    BatchOutcome out = {BatchResult::Continue, 0, 0, 0};
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    SPI_connect();

    /* 1. the job row: is it still ours to run? */
    Oid t1[1] = {INT8OID};
    Datum v1[1] = {Int64GetDatum(job->id)};
    pg::Elevation e;
    pg::elevate(&e);
    SPI_execute_with_args("SELECT status FROM safe_migrate.backfill_jobs WHERE id = $1 FOR UPDATE",
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

    /* 2. as the owner: the next keys, then that key range */
    /* The owner's code (set and where clauses, triggers) runs as the owner,
     * and whatever settings it changes are dropped before the worker's own
     * statements run again. */
    Oid saved_user;
    int saved_sec;
    GetUserIdAndSecContext(&saved_user, &saved_sec);
    int owner_nest = NewGUCNestLevel();
    SetUserIdAndSecContext(job->owner, saved_sec | SECURITY_LOCAL_USERID_CHANGE);
    int nk = job->n_keys;
    char *keys = key_tuple(job);
    const char *filter = job->where_clause ? job->where_clause : "true";
    /* the next keys, by key alone (see the file header) */
    StringInfoData sel;
    initStringInfo(&sel);
    /* output names of their own: ORDER BY must name the columns, not the
     * text copies (else it sorts as text, scanning the whole table) */
    appendStringInfoString(&sel, "SELECT ");
    for (int i = 0; i < nk; i++)
        appendStringInfo(&sel, "%s%s::text AS safe_migrate_key_%d", i ? ", " : "",
                         job->key_columns[i], i);
    appendStringInfo(&sel, " FROM %s WHERE ", job->relation);
    if (job->last_key)
        appendStringInfo(&sel, "%s > %s", keys, param_tuple(job, 1));
    else
        appendStringInfoString(&sel, "true");
    appendStringInfo(&sel, " ORDER BY %s LIMIT %d",
                     /* ORDER BY k1, k2 */ pnstrdup(keys + 1, strlen(keys) - 2), batch_size);
    Oid *types = (Oid *) palloc(sizeof(Oid) * (2 * nk + 1));
    Datum *values = (Datum *) palloc(sizeof(Datum) * (2 * nk + 1));
    for (int i = 0; i < 2 * nk; i++)
        types[i] = TEXTOID;
    if (job->last_key)
        for (int i = 0; i < nk; i++)
            values[i] = CStringGetTextDatum(job->last_key[i]);
    if (SPI_execute_with_args(sel.data, job->last_key ? nk : 0, types, values, nullptr, false, 0) !=
        SPI_OK_SELECT)
        elog(ERROR, "could not read the next keys of %s", job->relation);
    uint64 found = SPI_processed;
    out.keys = (long) found;
    if (found == 0) {
        AtEOXact_GUC(false, owner_nest);
        SetUserIdAndSecContext(saved_user, saved_sec);
        set_job(job->id, "status = 'completed', finished_at = clock_timestamp(), waiting_for = NULL", 0,
                nullptr, nullptr, nullptr);
        out.result = BatchResult::Done;
        SPI_finish();
        PopActiveSnapshot();
        CommitTransactionCommand();
        return out;
    }
    char **new_last = (char **) MemoryContextAlloc(job_cxt, sizeof(char *) * (nk + 1));
    for (int i = 0; i < nk; i++)
        new_last[i] = MemoryContextStrdup(
            job_cxt, SPI_getvalue(SPI_tuptable->vals[found - 1], SPI_tuptable->tupdesc, i + 1));

    StringInfoData upd;
    initStringInfo(&upd);
    appendStringInfo(&upd, "UPDATE %s SET %s WHERE ", job->relation, job->set_clause);
    int next_param = 1;
    if (job->last_key) {
        appendStringInfo(&upd, "%s > %s AND ", keys, param_tuple(job, 1));
        next_param = nk + 1;
    }
    appendStringInfo(&upd, "%s <= %s AND (%s)", keys, param_tuple(job, next_param), filter);
    for (int i = 0; i < nk; i++)
        values[next_param - 1 + i] = CStringGetTextDatum(new_last[i]);
    if (SPI_execute_with_args(upd.data, next_param - 1 + nk, types, values, nullptr, false, 0) !=
        SPI_OK_UPDATE)
        elog(ERROR, "could not update %s", job->relation);
    out.rows = (long) SPI_processed;
    AtEOXact_GUC(false, owner_nest);
    SetUserIdAndSecContext(saved_user, saved_sec);

    /* 3. did anybody wait on us? */
    pg::elevate(&e);
    SPI_execute("SELECT pg_catalog.count(*)::pg_catalog.int4 FROM pg_catalog.pg_stat_activity "
                "WHERE pg_catalog.pg_backend_pid() OPERATOR(pg_catalog.=) "
                "ANY (pg_catalog.pg_blocking_pids(pid))",
                true, 1);
    bool isnull;
    out.waiters = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    pg::unelevate(&e);

    /* 4. progress, in the batch's transaction */
    Oid t4[5] = {TEXTARRAYOID, INT8OID, INT4OID, FLOAT8OID, INT8OID};
    Datum v4[5] = {to_text_array(new_last, nk), Int64GetDatum(out.rows), Int32GetDatum(batch_size),
                   Float8GetDatum(rate), Int64GetDatum(out.keys)};
    set_job(job->id,
            "last_key = $2, rows_done = rows_done + $3, rows_examined = rows_examined + $6, "
            "batches = batches + 1, batch_size = $4, "
            "rate = $5, last_error = NULL, last_sqlstate = NULL, waiting_for = NULL",
            5, t4, v4, nullptr);
    SPI_finish();
    PopActiveSnapshot();
    /* commit as the owner: deferred triggers fire at commit, and they are the
     * owner's code */
    SetUserIdAndSecContext(job->owner, saved_sec | SECURITY_LOCAL_USERID_CHANGE);
    CommitTransactionCommand();
    SetUserIdAndSecContext(saved_user, saved_sec);
    job->last_key = new_last;
    return out;
}

bool transient(int sqlstate)
{
    return sqlstate == ERRCODE_T_R_DEADLOCK_DETECTED ||
           sqlstate == ERRCODE_T_R_SERIALIZATION_FAILURE ||
           sqlstate == ERRCODE_LOCK_NOT_AVAILABLE || sqlstate == ERRCODE_QUERY_CANCELED;
}

void run_job(Job *job)
{
    pg::ThrottleState *throttle;
    const char *problem = pg::throttle_create(&job->throttle, &throttle);
    if (problem) {
        Oid t[1] = {TEXTOID};
        Datum v[1] = {CStringGetTextDatum(problem)};
        mark(job->id, "status = 'failed', last_error = $2, finished_at = clock_timestamp()", 1, t, v, nullptr);
        return;
    }
    int batch = pg::throttle_first_batch(throttle);
    double rate = 0;
    int transient_failures = 0;
    char *activity = psprintf("backfill job %lld on %s", (long long) job->id, job->relation);

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
                mark(job->id, "waiting_for = $2", 1, t, v, nullptr);
                pg::sleep_ms(500);
                continue;
            }
        }

        TimestampTz start = GetCurrentTimestamp();
        MemoryContext cxt = CurrentMemoryContext;
        ErrorData *volatile failure = nullptr;
        BatchOutcome outcome = {BatchResult::Continue, 0, 0, 0};
        PG_TRY();
        {
            /* a batch waits this long for a lock, then steps back */
            (void) set_config_option("lock_timeout", "1000", PGC_SUSET, PGC_S_SESSION,
                                     GUC_ACTION_SET, true, 0, false);
            outcome = run_batch(job, batch, rate);
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
                mark(job->id, "retries = retries + 1, last_error = $2, last_sqlstate = $3", 2, t,
                     v, nullptr);
                pg::sleep_ms(pg::lock_retry_delay_ms(transient_failures, 100));
                continue;
            }
            Oid t[2] = {TEXTOID, TEXTOID};
            Datum v[2] = {CStringGetTextDatum(failure->message),
                          CStringGetTextDatum(unpack_sql_state(failure->sqlerrcode))};
            mark(job->id,
                 "status = 'failed', last_error = $2, last_sqlstate = $3, finished_at = clock_timestamp()", 2,
                 t, v, nullptr);
            ereport(LOG, (errmsg("safe_migrate backfill job %lld failed: %s", (long long) job->id,
                                 failure->message)));
            return;
        }
        transient_failures = 0;
        if (outcome.result != BatchResult::Continue)
            return;

        double ms = (double) (GetCurrentTimestamp() - start) / 1000.0;
        double sleep = 0;
        int asked = batch;
        pg::throttle_after(throttle, outcome.keys, batch, ms, outcome.waiters, &batch, &sleep, &rate);
        elog(DEBUG1, "safe_migrate backfill job %lld: batch of %d keys: %ld examined, %ld updated "
                     "in %.1f ms, %d waiters; next %d keys after %.0f ms",
             (long long) job->id, asked, outcome.keys, outcome.rows, ms, outcome.waiters, batch,
             sleep);
        /* sessions waited on the batch's locks: besides the smaller next
         * batch, give them a batch's time to get through first */
        if (outcome.waiters > 0)
            sleep += job->throttle.target_batch_ms;
        if (sleep > 0)
            pg::sleep_ms((int) sleep);
    }
}

}  // namespace

extern "C" void safe_migrate_backfill_worker_main(Datum arg)
{
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);
    SetConfigOption("application_name", "safe_migrate backfill", PGC_USERSET, PGC_S_SESSION);
    pgstat_report_appname("safe_migrate backfill");

    /* nothing to do where the extension (at a version with backfills) is not */
    StartTransactionCommand();
    Oid nsp = get_namespace_oid("safe_migrate", true);
    bool installed = OidIsValid(get_extension_oid("safe_migrate", true)) && OidIsValid(nsp) &&
                     OidIsValid(get_relname_relid("backfill_jobs", nsp));
    CommitTransactionCommand();
    if (!installed)
        proc_exit(0);

    job_cxt = AllocSetContextCreate(TopMemoryContext, "safe_migrate backfill job",
                                    ALLOCSET_DEFAULT_SIZES);
    /* One job per process: whatever a job's code left in this session (its
     * settings, its temporary objects) goes with it.  If more jobs wait, the
     * launcher starts a fresh worker for them. */
    Job *job = next_job();
    if (job != nullptr) {
        run_job(job);
        MemoryContextReset(job_cxt);
        wake_launcher(MyDatabaseId);
    }
    proc_exit(0);
}

}  // namespace safe_migrate::backfill
