/*
 * shadow.cpp — safe_migrate.sync_column(), the row trigger that keeps a
 * shadow column in step with the column whose type an online migration
 * changes (online.cpp, ALTER COLUMN ... TYPE): every row an INSERT or an
 * UPDATE writes gets target := source, converted as ALTER COLUMN ... TYPE
 * without USING converts it (PostgreSQL's assignment coercion, the cast
 * functions running as the role that writes the row, as in any trigger).
 *
 *     CREATE TRIGGER ... BEFORE INSERT OR UPDATE ON t FOR EACH ROW
 *         EXECUTE FUNCTION safe_migrate.sync_column('source', 'target');
 *
 * It runs in the application's backends, once per row written: the
 * conversion is planned once per trigger and column types and kept in
 * fn_extra; a row costs one expression evaluation and one heap_modify_tuple.
 * Plain PostgreSQL-style code: no C++ object lives in it.
 *
 * safe_migrate.sync_column_check() is the check before the swap (below).
 */
extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "access/htup_details.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "utils/builtins.h"
#include "utils/errcodes.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/memutils.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"

PG_FUNCTION_INFO_V1(sync_column);
Datum sync_column(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(sync_column_check);
Datum sync_column_check(PG_FUNCTION_ARGS);
}

#include "pg/privileged.hpp"
#include "policy/policy.hpp"

namespace {

/* The conversion of one trigger's source column into its target, planned
 * for the columns' types at the time (replanned if they change). */
struct SyncPlan {
    Oid tgoid;
    AttrNumber source;
    AttrNumber target;
    Oid source_type;
    int32 source_mod;
    Oid target_type;
    int32 target_mod;
    ExprState *convert; /* reads the source value as a CaseTestExpr */
    ExprContext *econtext;
};

AttrNumber column_of(Relation rel, const char *name, const char *role)
{
    TupleDesc desc = RelationGetDescr(rel);
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0) {
            if (att->attgenerated)
                ereport(ERROR,
                        (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                         errmsg("safe_migrate.sync_column: %s column \"%s\" of table \"%s\" is a "
                                "generated column",
                                role, name, RelationGetRelationName(rel))));
            return att->attnum;
        }
    }
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                    errmsg("safe_migrate.sync_column: %s column \"%s\" of table \"%s\" does not exist",
                           role, name, RelationGetRelationName(rel))));
    return InvalidAttrNumber; /* not reached */
}

SyncPlan *plan_for(FunctionCallInfo fcinfo, TriggerData *td)
{
    Relation rel = td->tg_relation;
    Trigger *tg = td->tg_trigger;
    TupleDesc desc = RelationGetDescr(rel);
    SyncPlan *p = (SyncPlan *) fcinfo->flinfo->fn_extra;
    if (p != nullptr && p->tgoid == tg->tgoid && p->source <= desc->natts && p->target <= desc->natts) {
        Form_pg_attribute s = TupleDescAttr(desc, p->source - 1);
        Form_pg_attribute t = TupleDescAttr(desc, p->target - 1);
        if (!s->attisdropped && !t->attisdropped && s->atttypid == p->source_type &&
            s->atttypmod == p->source_mod && t->atttypid == p->target_type &&
            t->atttypmod == p->target_mod && strcmp(NameStr(s->attname), tg->tgargs[0]) == 0 &&
            strcmp(NameStr(t->attname), tg->tgargs[1]) == 0)
            return p;
    }
    AttrNumber source = column_of(rel, tg->tgargs[0], "source");
    AttrNumber target = column_of(rel, tg->tgargs[1], "target");
    if (source == target)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("safe_migrate.sync_column: the source and the target are the same column")));
    Form_pg_attribute s = TupleDescAttr(desc, source - 1);
    Form_pg_attribute t = TupleDescAttr(desc, target - 1);

    MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
    if (p == nullptr)
        p = (SyncPlan *) palloc0(sizeof(SyncPlan));
    else if (p->econtext != nullptr) {
        FreeExprContext(p->econtext, true);
        p->econtext = nullptr;
    }
    CaseTestExpr *value = makeNode(CaseTestExpr);
    value->typeId = s->atttypid;
    value->typeMod = s->atttypmod;
    value->collation = s->attcollation;
    Node *expr = coerce_to_target_type(nullptr, (Node *) value, s->atttypid, t->atttypid, t->atttypmod,
                                       COERCION_ASSIGNMENT, COERCE_IMPLICIT_CAST, -1);
    if (expr == nullptr) {
        MemoryContextSwitchTo(old);
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                        errmsg("safe_migrate.sync_column: column \"%s\" cannot be cast automatically "
                               "to type %s",
                               NameStr(s->attname), format_type_be(t->atttypid))));
    }
    expr = (Node *) expression_planner((Expr *) expr);
    p->convert = ExecInitExpr((Expr *) expr, nullptr);
    p->econtext = CreateStandaloneExprContext();
    p->tgoid = tg->tgoid;
    p->source = source;
    p->target = target;
    p->source_type = s->atttypid;
    p->source_mod = s->atttypmod;
    p->target_type = t->atttypid;
    p->target_mod = t->atttypmod;
    fcinfo->flinfo->fn_extra = p;
    MemoryContextSwitchTo(old);
    return p;
}

}  // namespace

Datum sync_column(PG_FUNCTION_ARGS)
{
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("safe_migrate.sync_column: not called by trigger manager")));
    TriggerData *td = (TriggerData *) fcinfo->context;
    if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
        !(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("safe_migrate.sync_column: must be fired BEFORE INSERT OR UPDATE FOR EACH ROW")));
    if (td->tg_trigger->tgnargs != 2)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("safe_migrate.sync_column: two arguments expected (the source column "
                               "and the target column), got %d",
                               td->tg_trigger->tgnargs)));
    HeapTuple row = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
    SyncPlan *p = plan_for(fcinfo, td);
    TupleDesc desc = RelationGetDescr(td->tg_relation);

    bool isnull;
    Datum value = heap_getattr(row, p->source, desc, &isnull);
    Datum converted = (Datum) 0;
    bool converted_null = true;
    ResetExprContext(p->econtext);
    if (!isnull) {
        p->econtext->caseValue_datum = value;
        p->econtext->caseValue_isNull = false;
        MemoryContext old = MemoryContextSwitchTo(p->econtext->ecxt_per_tuple_memory);
        converted = ExecEvalExpr(p->convert, p->econtext, &converted_null);
        MemoryContextSwitchTo(old);
    }
    int col = p->target;
    HeapTuple result = heap_modify_tuple_by_cols(row, desc, 1, &col, &converted, &converted_null);
    return PointerGetDatum(result);
}

/*
 * safe_migrate.sync_column_check(relation, source, target): before the swap
 * of an online type change, every row whose source is set has its copy in
 * target.  The count runs as the caller, with search_path pinned and
 * row_security off (a check that cannot see every row fails rather than
 * passes); a pass is recorded, as the extension's owner, in
 * safe_migrate.online_copies with the trigger it relied on.
 */
Datum sync_column_check(PG_FUNCTION_ARGS)
{
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("safe_migrate.sync_column_check: relation, source and target must not be null")));
    Oid relid = PG_GETARG_OID(0);
    const char *source = NameStr(*PG_GETARG_NAME(1));
    const char *target = NameStr(*PG_GETARG_NAME(2));
    char *relname = get_rel_name(relid);
    char *nspname = get_namespace_name(get_rel_namespace(relid));
    if (relname == nullptr || nspname == nullptr)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("safe_migrate.sync_column_check: relation with OID %u does not exist", relid)));
    const char *rel = quote_qualified_identifier(nspname, relname);
    Oid tgoid;
    TransactionId xmin;
    if (!safe_migrate::policy::sync_trigger(relid, source, target, &tgoid, &xmin))
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("no safe_migrate.sync_column trigger enabled always on table %s copies column \"%s\" "
                        "into column \"%s\"",
                        rel, source, target),
                 errhint("An online type change creates one in its first step; apply its migration "
                         "again to continue.")));

    /* the count, as the caller */
    int nest = safe_migrate::pg::pin_search_path();
    (void) set_config_option("row_security", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    char *query = psprintf("SELECT pg_catalog.count(*) FROM ONLY %s WHERE %s IS NULL AND %s IS NOT NULL", rel,
                           quote_identifier(target), quote_identifier(source));
    if (SPI_execute(query, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "could not count the rows of %s without their copy", rel);
    bool isnull;
    int64 missing = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    SPI_finish();
    safe_migrate::pg::unpin_search_path(nest);
    if (missing > 0)
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("column \"%s\" of table %s has no copy in column \"%s\" for " INT64_FORMAT " rows",
                        source, rel, target, missing),
                 errdetail("The trigger that keeps \"%s\" in step with \"%s\" did not run for them "
                           "(disabled, or dropped and created again, while the migration ran).",
                           target, source),
                 errhint("Fill them (UPDATE ONLY %s SET %s = %s WHERE %s IS NULL AND %s IS NOT NULL, in "
                         "batches), then apply the migration again to continue.",
                         rel, quote_identifier(target), quote_identifier(source), quote_identifier(target),
                         quote_identifier(source))));

    /* the record, as the extension's owner */
    const char *checked_by = GetUserNameFromId(GetUserId(), false);
    safe_migrate::pg::Elevation e;
    safe_migrate::pg::elevate(&e);
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    Oid types[6] = {OIDOID, OIDOID, XIDOID, NAMEOID, NAMEOID, NAMEOID};
    Datum values[6] = {ObjectIdGetDatum(relid), ObjectIdGetDatum(tgoid), TransactionIdGetDatum(xmin),
                       CStringGetDatum(source), CStringGetDatum(target), CStringGetDatum(checked_by)};
    NameData names[3];
    namestrcpy(&names[0], source);
    namestrcpy(&names[1], target);
    namestrcpy(&names[2], checked_by);
    values[3] = NameGetDatum(&names[0]);
    values[4] = NameGetDatum(&names[1]);
    values[5] = NameGetDatum(&names[2]);
    /* a check of another column pair on the table leaves this one's record */
    if (SPI_execute_with_args("DELETE FROM safe_migrate.online_copies WHERE relid OPERATOR(pg_catalog.=) $1 "
                              "AND source OPERATOR(pg_catalog.=) $4 AND target OPERATOR(pg_catalog.=) $5",
                              5, types, values, nullptr, false, 0) != SPI_OK_DELETE ||
        SPI_execute_with_args("INSERT INTO safe_migrate.online_copies "
                              "(relid, trigger_oid, trigger_xmin, source, target, checked_by) "
                              "VALUES ($1, $2, $3, $4, $5, $6)",
                              6, types, values, nullptr, false, 0) != SPI_OK_INSERT)
        elog(ERROR, "could not record the check of %s", rel);
    SPI_finish();
    safe_migrate::pg::unelevate(&e);
    PG_RETURN_VOID();
}
