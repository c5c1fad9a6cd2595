/*
 * api.cpp — migrate_backfill() and its controls.
 */
#include "backfill.hpp"
#include "pg/guard.hpp"
#include "pg/privileged.hpp"
#include "pg/snapshot.hpp"
#include "policy/policy.hpp"

extern "C" {
#include "access/genam.h"
#include "access/xact.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

namespace safe_migrate::backfill {

namespace {

/* The columns of the primary key, or of a unique index on NOT NULL columns
 * without expressions or predicate: what a batch can be walked by. */
bool walk_key(Relation rel, List **columns, List **types)
{
    List *indexes = RelationGetIndexList(rel);
    Oid chosen = RelationGetPrimaryKeyIndex(rel);
    ListCell *lc;
    if (!OidIsValid(chosen)) {
        foreach (lc, indexes) {
            Oid idx = lfirst_oid(lc);
            HeapTuple tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(idx));
            if (!HeapTupleIsValid(tup))
                continue;
            Form_pg_index form = (Form_pg_index) GETSTRUCT(tup);
            bool usable = form->indisunique && form->indisvalid && form->indimmediate &&
                          heap_attisnull(tup, Anum_pg_index_indexprs, nullptr) &&
                          heap_attisnull(tup, Anum_pg_index_indpred, nullptr);
            for (int i = 0; usable && i < form->indnkeyatts; i++) {
                Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), form->indkey.values[i] - 1);
                usable = att->attnotnull;
            }
            ReleaseSysCache(tup);
            if (usable) {
                chosen = idx;
                break;
            }
        }
    }
    if (!OidIsValid(chosen))
        return false;
    HeapTuple tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(chosen));
    Form_pg_index form = (Form_pg_index) GETSTRUCT(tup);
    for (int i = 0; i < form->indnkeyatts; i++) {
        Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), form->indkey.values[i] - 1);
        *columns = lappend(*columns, (void *) quote_identifier(NameStr(att->attname)));
        *types = lappend(*types, format_type_be_qualified(att->atttypid));
    }
    ReleaseSysCache(tup);
    return true;
}

/* Wake the launcher when the transaction that queued work commits: before,
 * a worker would not see the job yet. */
bool wake_at_commit = false;
bool callback_registered = false;

void on_xact(XactEvent event, void *)
{
    if (event == XACT_EVENT_COMMIT && wake_at_commit)
        wake_launcher(MyDatabaseId);
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
        event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
        wake_at_commit = false;
}

void wake_after_commit(void)
{
    if (!callback_registered) {
        RegisterXactCallback(on_xact, nullptr);
        callback_registered = true;
    }
    wake_at_commit = true;
}

Datum list_to_text_array(List *items)
{
    int n = list_length(items);
    Datum *elems = (Datum *) palloc(sizeof(Datum) * (n + 1));
    for (int i = 0; i < n; i++)
        elems[i] = CStringGetTextDatum((char *) list_nth(items, i));
    return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* The job's owner, if the caller may see and control it. */
Oid job_owner_checked(int64 id, const char *what)
{
    pg::Elevation e;
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    pg::elevate(&e);
    Oid t[1] = {INT8OID};
    Datum v[1] = {Int64GetDatum(id)};
    SPI_execute_with_args("SELECT owner FROM safe_migrate.backfill_jobs WHERE id = $1", 1, t, v,
                          nullptr, false, 1);
    pg::unelevate(&e);
    bool found = SPI_processed == 1;
    bool isnull;
    Oid owner = found ? DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
                                                       SPI_tuptable->tupdesc, 1, &isnull))
                      : InvalidOid;
    SPI_finish();
    /* a job one may not see is reported like one that does not exist */
    if (!found || !(has_privs_of_role(GetUserId(), owner) || policy::may_override(GetUserId())))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("backfill job %lld does not exist", (long long) id),
                        errhint("See SELECT id, relation, status FROM safe_migrate.backfills; "
                                "%s works on jobs of your own roles only.",
                                what)));
    return owner;
}

char *set_status(int64 id, const char *from, const char *to, const char *rule)
{
    pg::Elevation e;
    SPI_connect();
    pg::elevate(&e);
    Oid t[1] = {INT8OID};
    Datum v[1] = {Int64GetDatum(id)};
    char *sql = psprintf("UPDATE safe_migrate.backfill_jobs SET status = '%s', updated_at = now()%s "
                         "WHERE id = $1 AND status IN (%s) RETURNING status",
                         to, strcmp(to, "cancelled") == 0 ? ", finished_at = now()" : "", from);
    SPI_execute_with_args(sql, 1, t, v, nullptr, false, 0);
    bool changed = SPI_processed == 1;
    SPI_execute_with_args("SELECT status FROM safe_migrate.backfill_jobs WHERE id = $1", 1, t, v,
                          nullptr, false, 1);
    char *status = SPI_processed == 1
                       ? pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1))
                       : pstrdup("unknown");
    pg::unelevate(&e);
    SPI_finish();
    if (!changed)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("backfill job %lld is %s", (long long) id, status),
                        errhint("%s", rule)));
    return status;
}

}  // namespace

}  // namespace safe_migrate::backfill

using namespace safe_migrate;
using namespace safe_migrate::backfill;

/* migrate_backfill(relation, set_clause, where_clause, batch_size,
 *                  target_batch_ms, max_rows_per_second, pause_ms,
 *                  max_replica_lag) returns bigint */
SM_ENTRY(migrate_backfill)
{
    if (!available())
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("backfills need safe_migrate in shared_preload_libraries"),
                 errdetail("The backfill runs in background workers that a launcher started with "
                           "the server manages."),
                 errhint("Add safe_migrate to shared_preload_libraries in postgresql.conf and "
                         "restart the server.")));
    for (int i = 0; i < 2; i++)
        if (PG_ARGISNULL(i))
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                            errmsg("%s must not be null", i == 0 ? "relation" : "set_clause")));
    Oid relid = PG_GETARG_OID(0);
    char *set_clause = text_to_cstring(PG_GETARG_TEXT_PP(1));
    char *where_clause = PG_ARGISNULL(2) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(2));
    int batch_size = PG_ARGISNULL(3) ? 1000 : PG_GETARG_INT32(3);
    int target_ms = PG_ARGISNULL(4) ? 25 : PG_GETARG_INT32(4);
    int max_rate = PG_ARGISNULL(5) ? 0 : PG_GETARG_INT32(5);
    int pause_ms = PG_ARGISNULL(6) ? 0 : PG_GETARG_INT32(6);
    int64 max_lag = PG_ARGISNULL(7) ? 16 * 1024 * 1024 : PG_GETARG_INT64(7);
    if (batch_size < 1 || target_ms < 1 || max_rate < 0 || pause_ms < 0 || max_lag < 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid backfill options"),
                        errdetail("batch_size and target_batch_ms must be positive; "
                                  "max_rows_per_second, pause_ms and max_replica_lag must not be "
                                  "negative.")));

    /* the submitter must be able to do it: UPDATE on the table */
    if (pg_class_aclcheck(relid, GetUserId(), ACL_UPDATE) != ACLCHECK_OK)
        aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(relid));

    Relation rel = table_open(relid, AccessShareLock);
    char *name = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
                                            RelationGetRelationName(rel));
    if (rel->rd_rel->relkind != RELKIND_RELATION && rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("\"%s\" is not a table", name)));
    List *columns = NIL, *types = NIL;
    bool has_key = walk_key(rel, &columns, &types);
    table_close(rel, AccessShareLock);
    /* the same size estimate the policy uses: statistics scaled to the
     * table's size on disk, so a never-analyzed table gets one too */
    safe_migrate::pg::PolicyFacts size;
    memset(&size, 0, sizeof(size));
    policy::table_facts(relid, name, &size);
    double reltuples = size.rows;
    if (!has_key)
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("table %s has no key to walk in batches", name),
                 errdetail("A backfill walks the table by its primary key, or by a unique index "
                           "on NOT NULL columns without expressions or predicate."),
                 errhint("Add one first: CREATE UNIQUE INDEX CONCURRENTLY ... then ALTER TABLE %s "
                         "ADD PRIMARY KEY USING INDEX ...",
                         name)));

    /* the statement must make sense now, as the submitter: prepare it */
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    char *probe = psprintf("UPDATE %s SET %s WHERE false AND (%s)", name, set_clause,
                           where_clause ? where_clause : "true");
    if (SPI_prepare(probe, 0, nullptr) == nullptr)
        elog(ERROR, "could not prepare the backfill statement");
    SPI_finish();

    pg::Elevation e;
    SPI_connect();
    pg::elevate(&e);
    Oid t[13] = {OIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID, OIDOID,
                 INT4OID, INT4OID, INT4OID, INT4OID, INT8OID, INT8OID};
    Datum v[13];
    char nulls[14] = "             ";
    v[0] = ObjectIdGetDatum(relid);
    v[1] = CStringGetTextDatum(name);
    v[2] = CStringGetTextDatum(set_clause);
    if (where_clause)
        v[3] = CStringGetTextDatum(where_clause);
    else
        nulls[3] = 'n';
    v[4] = list_to_text_array(columns);
    v[5] = list_to_text_array(types);
    v[6] = ObjectIdGetDatum(e.saved_user);
    v[7] = Int32GetDatum(batch_size);
    v[8] = Int32GetDatum(target_ms);
    v[9] = Int32GetDatum(max_rate);
    v[10] = Int32GetDatum(pause_ms);
    v[11] = Int64GetDatum(max_lag);
    if (reltuples >= 0)
        v[12] = Int64GetDatum((int64) reltuples);
    else
        nulls[12] = 'n';
    if (SPI_execute_with_args(
            "INSERT INTO safe_migrate.backfill_jobs (relid, relation, set_clause, where_clause, "
            "key_columns, key_types, owner, batch_size, target_batch_ms, max_rows_per_second, "
            "pause_ms, max_replica_lag, estimated_total) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
            "$9, $10, $11, $12, $13) RETURNING id",
            13, t, v, nulls, false, 1) != SPI_OK_INSERT_RETURNING)
        elog(ERROR, "could not record the backfill job");
    bool isnull;
    int64 id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    pg::unelevate(&e);
    SPI_finish();
    wake_after_commit();
    PG_RETURN_INT64(id);
}

SM_ENTRY(migrate_backfill_pause)
{
    int64 id = PG_GETARG_INT64(0);
    (void) job_owner_checked(id, "migrate_backfill_pause");
    PG_RETURN_TEXT_P(cstring_to_text(set_status(id, "'queued', 'running'", "paused",
                                                 "Only a queued or running job can be paused.")));
}

SM_ENTRY(migrate_backfill_resume)
{
    int64 id = PG_GETARG_INT64(0);
    (void) job_owner_checked(id, "migrate_backfill_resume");
    char *status = set_status(id, "'paused', 'failed'", "running",
                              "Only a paused or failed job can be resumed.");
    wake_after_commit();
    PG_RETURN_TEXT_P(cstring_to_text(status));
}

SM_ENTRY(migrate_backfill_cancel)
{
    int64 id = PG_GETARG_INT64(0);
    (void) job_owner_checked(id, "migrate_backfill_cancel");
    PG_RETURN_TEXT_P(cstring_to_text(set_status(id, "'queued', 'running', 'paused', 'failed'", "cancelled",
                                                 "A completed or cancelled job cannot be cancelled.")));
}

/* migrate_backfill_wait(id, timeout): the job's final status; an error if it
 * failed, was cancelled, or the timeout passed first.  Sleeps on its latch
 * between looks, taking a fresh snapshot for each.  Called by a statement
 * that reads nothing after it ("SELECT migrate_backfill_wait(...)" at top
 * level, as migrate_apply runs it), it gives up its xmin while it sleeps:
 * a snapshot held for the whole backfill keeps every row version the
 * backfill replaces from being vacuumed, and concurrent index builds would
 * wait for it. */
SM_ENTRY(migrate_backfill_wait)
{
    int64 id = PG_GETARG_INT64(0);
    (void) job_owner_checked(id, "migrate_backfill_wait");
    bool disposable = pg::caller_snapshot_is_disposable(fcinfo);
    TimestampTz deadline = 0;
    if (!PG_ARGISNULL(1)) {
        Interval *timeout = PG_GETARG_INTERVAL_P(1);
        deadline = DatumGetTimestampTz(DirectFunctionCall2(
            timestamptz_pl_interval, TimestampTzGetDatum(GetCurrentTimestamp()),
            IntervalPGetDatum(timeout)));
    }
    for (;;) {
        pg::Elevation e;
        SPI_connect();
        pg::elevate(&e);
        Oid t[1] = {INT8OID};
        Datum v[1] = {Int64GetDatum(id)};
        SPI_execute_with_args("SELECT status, last_error FROM safe_migrate.backfill_jobs WHERE id = $1",
                              1, t, v, nullptr, false, 1);
        char *status = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
        char *error = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
        error = error ? pstrdup(error) : nullptr;
        pg::unelevate(&e);
        SPI_finish();
        if (strcmp(status, "completed") == 0)
            PG_RETURN_TEXT_P(cstring_to_text(status));
        if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0)
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("backfill job %lld %s", (long long) id, status),
                            error ? errdetail("%s", error) : 0,
                            strcmp(status, "failed") == 0
                                ? errhint("Fix the cause, then migrate_backfill_resume(%lld) "
                                          "continues where the job stopped.",
                                          (long long) id)
                                : 0));
        if (deadline && GetCurrentTimestamp() >= deadline)
            ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED),
                            errmsg("backfill job %lld is still %s after the timeout", (long long) id,
                                   status)));
        if (disposable)
            pg::withdraw_xmin(); /* each look's snapshot set it again */
        pg::sleep_ms(100);
    }
}
