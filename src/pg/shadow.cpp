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
 * With a third argument, the USING expression of the type change, the
 * target is set from that expression of the row instead:
 *
 *     ... EXECUTE FUNCTION safe_migrate.sync_column('source', 'target', 'expression');
 *
 * The expression is text as online execution writes it (PostgreSQL's own
 * rendering, every name outside pg_catalog qualified), parsed here as
 * exactly one expression and analyzed with search_path pinned to
 * pg_catalog, pg_temp, against the trigger's table (as PostgreSQL analyzes
 * a USING expression: no subquery, aggregate, window or set-returning
 * function), then assignment-coerced to the target's type.  It runs as the
 * role writing the row, like the code of any trigger; whoever may create a
 * trigger on the table may already run code of their choice that way.
 *
 * It runs in the application's backends, once per row written: the
 * conversion is planned once per trigger and column types (per table
 * descriptor with an expression: the relation cache's descriptor is
 * compared by address while no relation cache invalidation came in since,
 * else by content; the table cannot change under the writer's lock) and
 * kept in fn_extra; a row costs one expression evaluation and one
 * heap_modify_tuple.
 * Plain PostgreSQL-style code: no C++ object lives in it.
 *
 * safe_migrate.sync_column_check() is the check before the swap (below).
 */
extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/inval.h"
#include "access/htup_details.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/errcodes.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/memutils.h"
#include "utils/ruleutils.h"
#include "access/table.h"

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

/* Relation cache invalidations this backend has processed.  A descriptor
 * changes only through one, so an unchanged count with the same address is
 * the same descriptor. */
uint64 relcache_epoch = 0;
bool epoch_counted = false;

void count_relcache_invalidation(Datum arg, Oid relid)
{
    relcache_epoch++;
}

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
    ExprState *convert; /* reads the source value as a CaseTestExpr, or the
                         * row (the USING expression) */
    ExprContext *econtext;
    TupleDesc desc;        /* with an expression: a copy of the descriptor it was planned for */
    TupleDesc seen;        /* ... the relation's own descriptor it was last checked against:
                            * trusted by address only while no relation cache invalidation
                            * came in since (seen_epoch), as a freed descriptor's memory can
                            * hold another one later */
    uint64 seen_epoch;
    TupleTableSlot *slot;  /* ... and the row's slot */
};

/* text, parsed as exactly one expression (as "SELECT <text>" with one
 * unnamed result and nothing after it); what names the caller in errors. */
Node *parse_one_expression(const char *text, const char *what)
{
    const char *why = nullptr;
    MemoryContext cxt = CurrentMemoryContext;
    List *volatile parsed = NIL;
    PG_TRY();
    {
        parsed = raw_parser(psprintf("SELECT %s", text), RAW_PARSE_DEFAULT);
    }
    PG_CATCH();
    {
        /* the parser's position points into our text, not the caller's
         * query: dropped, the message says whose text it is */
        MemoryContextSwitchTo(cxt);
        ErrorData *ed = CopyErrorData();
        FlushErrorState();
        ed->cursorpos = 0;
        ed->internalpos = 0;
        ed->internalquery = nullptr;
        ed->message = psprintf("%s: the expression does not parse: %s", what, ed->message);
        ThrowErrorData(ed);
    }
    PG_END_TRY();
    List *stmts = parsed;
    Node *stmt = list_length(stmts) == 1 ? linitial_node(RawStmt, stmts)->stmt : nullptr;
    SelectStmt *sel = stmt != nullptr && IsA(stmt, SelectStmt) ? (SelectStmt *) stmt : nullptr;
    ResTarget *rt = nullptr;
    if (sel == nullptr || sel->op != SETOP_NONE || sel->valuesLists || sel->withClause)
        why = "It is not an expression.";
    else if (list_length(sel->targetList) != 1)
        why = "It holds more than one expression.";
    else if (sel->distinctClause || sel->intoClause || sel->fromClause || sel->whereClause ||
             sel->groupClause || sel->havingClause || sel->windowClause || sel->sortClause ||
             sel->limitOffset || sel->limitCount || sel->lockingClause)
        why = "It has clauses of a query after the expression.";
    else {
        rt = linitial_node(ResTarget, sel->targetList);
        if (rt->name || rt->indirection)
            why = "It names its result.";
        else if (IsA(rt->val, ColumnRef) && IsA(llast(((ColumnRef *) rt->val)->fields), A_Star))
            why = "It is a \"*\", not an expression.";
    }
    if (why != nullptr)
        ereport(ERROR, (errcode(ERRCODE_SYNTAX_ERROR),
                        errmsg("%s: the expression must be exactly one expression", what),
                        errdetail("%s", why)));
    return rt->val;
}

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
    bool with_expression = tg->tgnargs == 3;
    if (p != nullptr && p->tgoid == tg->tgoid && with_expression != (p->desc == nullptr) &&
        (!with_expression || (p->seen == desc && p->seen_epoch == relcache_epoch) ||
         equalTupleDescs(p->desc, desc)) && p->source <= desc->natts &&
        p->target <= desc->natts) {
        Form_pg_attribute s = TupleDescAttr(desc, p->source - 1);
        Form_pg_attribute t = TupleDescAttr(desc, p->target - 1);
        if (!s->attisdropped && !t->attisdropped && s->atttypid == p->source_type &&
            s->atttypmod == p->source_mod && t->atttypid == p->target_type &&
            t->atttypmod == p->target_mod && strcmp(NameStr(s->attname), tg->tgargs[0]) == 0 &&
            strcmp(NameStr(t->attname), tg->tgargs[1]) == 0) {
            p->seen = desc;
            p->seen_epoch = relcache_epoch;
            return p;
        }
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
    else {
        if (p->econtext != nullptr)
            FreeExprContext(p->econtext, true);
        if (p->slot != nullptr)
            ExecDropSingleTupleTableSlot(p->slot);
        if (p->desc != nullptr)
            FreeTupleDesc(p->desc);
        p->econtext = nullptr;
        p->slot = nullptr;
        p->desc = nullptr;
        p->seen = nullptr;
        p->tgoid = InvalidOid; /* until planned again */
    }
    Node *expr;
    if (with_expression) {
        Node *raw = parse_one_expression(tg->tgargs[2], "safe_migrate.sync_column");
        /* analyzed as PostgreSQL analyzes ALTER COLUMN ... TYPE ... USING,
         * with only pg_catalog on the search_path (the text names
         * everything else qualified) */
        int nest = safe_migrate::pg::pin_search_path();
        ParseState *pstate = make_parsestate(nullptr);
        pstate->p_sourcetext = nullptr; /* no position: it would point into the writer's query */
        ParseNamespaceItem *nsitem =
            addRangeTableEntryForRelation(pstate, rel, AccessShareLock, nullptr, false, true);
        addNSItemToQuery(pstate, nsitem, false, true, true);
        Node *using_expr = transformExpr(pstate, raw, EXPR_KIND_ALTER_COL_TRANSFORM);
        assign_expr_collations(pstate, using_expr);
        Oid from = exprType(using_expr);
        expr = coerce_to_target_type(pstate, using_expr, from, t->atttypid, t->atttypmod,
                                     COERCION_ASSIGNMENT, COERCE_IMPLICIT_CAST, -1);
        free_parsestate(pstate);
        safe_migrate::pg::unpin_search_path(nest);
        if (expr == nullptr) {
            MemoryContextSwitchTo(old);
            ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                            errmsg("safe_migrate.sync_column: the result of the expression (type %s) "
                                   "cannot be cast automatically to type %s of column \"%s\"",
                                   format_type_be(from), format_type_be(t->atttypid), NameStr(t->attname))));
        }
        if (!epoch_counted) {
            CacheRegisterRelcacheCallback(count_relcache_invalidation, (Datum) 0);
            epoch_counted = true;
        }
        p->desc = CreateTupleDescCopy(desc);
        p->seen = desc;
        p->seen_epoch = relcache_epoch;
        p->slot = MakeSingleTupleTableSlot(p->desc, &TTSOpsHeapTuple);
    } else {
        CaseTestExpr *value = makeNode(CaseTestExpr);
        value->typeId = s->atttypid;
        value->typeMod = s->atttypmod;
        value->collation = s->attcollation;
        expr = coerce_to_target_type(nullptr, (Node *) value, s->atttypid, t->atttypid, t->atttypmod,
                                     COERCION_ASSIGNMENT, COERCE_IMPLICIT_CAST, -1);
        if (expr == nullptr) {
            MemoryContextSwitchTo(old);
            ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                            errmsg("safe_migrate.sync_column: column \"%s\" cannot be cast automatically "
                                   "to type %s",
                                   NameStr(s->attname), format_type_be(t->atttypid))));
        }
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
    if (td->tg_trigger->tgnargs != 2 && td->tg_trigger->tgnargs != 3)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("safe_migrate.sync_column: two or three arguments expected (the source "
                               "column, the target column and optionally an expression), got %d",
                               td->tg_trigger->tgnargs)));
    HeapTuple row = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
    SyncPlan *p = plan_for(fcinfo, td);
    TupleDesc desc = RelationGetDescr(td->tg_relation);

    bool isnull;
    Datum value = heap_getattr(row, p->source, desc, &isnull);
    Datum converted = (Datum) 0;
    bool converted_null = true;
    ResetExprContext(p->econtext);
    if (p->slot != nullptr) {
        /* the expression of the row (NULLs included: it decides) */
        ExecStoreHeapTuple(row, p->slot, false);
        p->econtext->ecxt_scantuple = p->slot;
        MemoryContext old = MemoryContextSwitchTo(p->econtext->ecxt_per_tuple_memory);
        converted = ExecEvalExpr(p->convert, p->econtext, &converted_null);
        MemoryContextSwitchTo(old);
        p->econtext->ecxt_scantuple = nullptr;
        ExecClearTuple(p->slot);
    } else if (!isnull) {
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
    /* the USING expression the trigger computes the target from, if any:
     * exactly one expression, the trigger's own argument */
    const char *expression = PG_NARGS() > 3 && !PG_ARGISNULL(3) ? text_to_cstring(PG_GETARG_TEXT_PP(3)) : nullptr;
    Node *raw = expression != nullptr ? parse_one_expression(expression, "safe_migrate.sync_column_check") : nullptr;
    Oid tgoid;
    TransactionId xmin;
    if (!safe_migrate::policy::sync_trigger(relid, source, target, &tgoid, &xmin, expression))
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("no safe_migrate.sync_column trigger enabled always on table %s copies column \"%s\" "
                        "into column \"%s\"%s",
                        rel, source, target, expression ? " with that expression" : ""),
                 errhint("An online type change creates one in its first step; apply its migration "
                         "again to continue.")));

    /* the count, as the caller */
    int nest = safe_migrate::pg::pin_search_path();
    /* What the trigger writes into target, from the row: the expression
     * (or the source column), converted to target's type as the trigger
     * converts it; it goes into the count as PostgreSQL prints it once
     * analyzed against the table (with only pg_catalog on the search_path:
     * every other name qualified), never as the caller's text: one parsed
     * expression, whatever the text around it. */
    Relation rel_opened = table_open(relid, AccessShareLock);
    AttrNumber src = get_attnum(relid, source);
    AttrNumber tgt = get_attnum(relid, target);
    if (src == InvalidAttrNumber || tgt == InvalidAttrNumber)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                        errmsg("safe_migrate.sync_column_check: column \"%s\" of table %s does not exist",
                               src == InvalidAttrNumber ? source : target, rel)));
    Form_pg_attribute sa = TupleDescAttr(RelationGetDescr(rel_opened), src - 1);
    Form_pg_attribute ta = TupleDescAttr(RelationGetDescr(rel_opened), tgt - 1);
    ParseState *pstate = make_parsestate(nullptr);
    Node *computed;
    if (raw != nullptr) {
        ParseNamespaceItem *nsitem =
            addRangeTableEntryForRelation(pstate, rel_opened, AccessShareLock, nullptr, false, true);
        addNSItemToQuery(pstate, nsitem, false, true, true);
        computed = transformExpr(pstate, raw, EXPR_KIND_ALTER_COL_TRANSFORM);
        /* a copy is computed from its source: an expression that does not
         * use the source column (a constant) makes every row "copied", and
         * the check would clear the way to drop the source's data */
        Bitmapset *used = nullptr;
        pull_varattnos(computed, 1, &used);
        if (!bms_is_member(src - FirstLowInvalidHeapAttributeNumber, used))
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                     errmsg("safe_migrate.sync_column_check: the expression does not use column \"%s\"",
                            source),
                     errdetail("Column \"%s\" is a copy of \"%s\" only if it is computed from it.",
                               target, source)));
    } else {
        computed = (Node *) makeVar(1, src, sa->atttypid, sa->atttypmod, sa->attcollation, 0);
    }
    Node *converted = coerce_to_target_type(pstate, computed, exprType(computed), ta->atttypid,
                                            ta->atttypmod, COERCION_ASSIGNMENT, COERCE_IMPLICIT_CAST, -1);
    if (converted == nullptr)
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                        errmsg("safe_migrate.sync_column_check: %s cannot be converted to the type of "
                               "column \"%s\"",
                               raw != nullptr ? "the expression" : psprintf("column \"%s\"", source),
                               target)));
    assign_expr_collations(pstate, converted);
    /* a value computed again for the count must be the one the trigger
     * and the backfill wrote */
    if (contain_volatile_functions(converted))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("safe_migrate.sync_column_check: the expression calls a volatile function"),
                        errdetail("Its copies cannot be checked against their rows.")));
    const char *value = deparse_expression(converted, deparse_context_for(relname, relid), false, false);
    free_parsestate(pstate);
    table_close(rel_opened, NoLock);
    /* A row the trigger has not seen has in target something else than
     * what it computes from the row: nothing (a row written before the
     * trigger), or a value of its own (a default, an earlier fill).  Only
     * the value counts, compared as text (every type has one; not every
     * type has an equality).  (Made before SPI_connect: the messages below
     * use them after SPI_finish.) */
    const char *differs = psprintf("(%s)::pg_catalog.text IS DISTINCT FROM (%s)::pg_catalog.text",
                                   quote_identifier(target), value);
    char *query = psprintf("SELECT pg_catalog.count(*) FROM ONLY %s WHERE %s", rel, differs);
    (void) set_config_option("row_security", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
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
                 errdetail("In those rows \"%s\" does not hold %s: the trigger that keeps \"%s\" in step "
                           "with \"%s\" did not run for them (disabled, or dropped and created again, "
                           "while the migration ran), or something else wrote them.",
                           target, value, target, source),
                 errhint("Fill them (UPDATE ONLY %s SET %s = %s WHERE %s, in batches), then apply the "
                         "migration again to continue.",
                         rel, quote_identifier(target), value, differs)));

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
