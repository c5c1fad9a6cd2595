/*
 * api.cpp — migrate_backfill(), migrate_delete() and their controls.
 *
 * migrate_delete queues the same kind of job with no set clause: the worker
 * deletes the matching rows batch by batch instead of updating them; every
 * check below applies to it too (DELETE instead of UPDATE privilege).
 *
 * migrate_backfill checks everything it can while the submitter is there to
 * see the error: the table (a real, permanent table with a key to walk),
 * the options (within bounds), that a worker can run as the submitter (a
 * role with LOGIN that may connect), and the clauses.  The set clause and the
 * where clause are each parsed by PostgreSQL's parser as exactly one thing
 * (an assignment list; one expression), analyzed as the submitter with the
 * submitter's search_path, checked (no key column assigned, no temporary
 * object referenced), and stored as PostgreSQL deparses them with only
 * pg_catalog on the search_path: every other name comes out qualified, so
 * the worker, whose search_path is pinned to pg_catalog, pg_temp, runs
 * exactly what the submitter meant, and the text it puts into the batch
 * statement is PostgreSQL's own rendering of one expression, which cannot
 * change the statement's structure.
 */
#include "backfill.hpp"
#include "backfill/pacing.hpp"
#include "pg/compat.hpp"
#include "pg/guard.hpp"
#include "pg/privileged.hpp"
#include "pg/snapshot.hpp"
#include "policy/policy.hpp"

extern "C" {
#include "access/genam.h"
#include "access/nbtree.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_index.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "access/transam.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

namespace safe_migrate::backfill {

namespace {

/* ---- bounds of the options ---- */

struct Bound {
    const char *name;
    int64 low;
    int64 high;
    const char *meaning;
};

const Bound kBatchSize = {"batch_size", 1, 100000,
                          "the number of keys of the first batch (the throttle sizes the "
                          "next ones)"};
const Bound kTargetMs = {"target_batch_ms", 1, 60000,
                         "how long a batch should take, in milliseconds (at most a minute: a "
                         "batch holds its row locks that long)"};
const Bound kMaxRate = {"max_rows_per_second", 0, 10000000, "a cap on the rate (0: no cap)"};
const Bound kPauseMs = {"pause_ms", 0, 3600000,
                        "the pause between batches, in milliseconds (at most an hour)"};
const Bound kMaxLag = {"max_replica_lag", 0, INT64CONST(1) << 40,
                       "bytes of WAL a streaming replica may be behind (0: do not wait for "
                       "replicas; at most 1 TB)"};

void check_bound(const Bound &b, int64 v)
{
    if (v < b.low || v > b.high)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("%s %lld is out of range", b.name, (long long) v),
                        errdetail("%s must be between %lld and %lld.", b.name, (long long) b.low,
                                  (long long) b.high),
                        errhint("%s is %s.", b.name, b.meaning)));
}

void refuse_on_standby(const char *what)
{
    if (RecoveryInProgress())
        ereport(ERROR,
                (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
                 errmsg("%s cannot run on a standby", what),
                 errdetail("This server is in recovery: backfills change tables, and their "
                           "workers run on the primary."),
                 errhint("Connect to the primary server and call %s there.", what)));
}

/* ---- the key a job walks ---- */

struct WalkKey {
    List *columns;      /* quoted names */
    List *types;        /* qualified type names */
    Bitmapset *attnums; /* of the key columns */
    char *ops[3];       /* OPERATOR(schema.op) for >, <=, < of the index's opclasses */
    bool mixed_ops;     /* the key columns' operators are not the same qualified names */
};

char *qualified_operator(Oid opno)
{
    HeapTuple tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
    if (!HeapTupleIsValid(tup))
        elog(ERROR, "cache lookup failed for operator %u", opno);
    Form_pg_operator op = (Form_pg_operator) GETSTRUCT(tup);
    char *name = psprintf("OPERATOR(%s.%s)", quote_identifier(get_namespace_name(op->oprnamespace)),
                          NameStr(op->oprname));
    ReleaseSysCache(tup);
    return name;
}

/* The columns of the primary key, or of a unique index on NOT NULL columns
 * without expressions or predicate: what a batch can be walked by. */
bool walk_key(Relation rel, WalkKey *key)
{
    memset(key, 0, sizeof(*key));
    List *indexes = RelationGetIndexList(rel);
    Oid chosen = pg::compat::primary_key_index(rel);
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
    bool isnull;
    oidvector *classes =
        (oidvector *) DatumGetPointer(SysCacheGetAttr(INDEXRELID, tup, Anum_pg_index_indclass, &isnull));
    const int strategies[3] = {BTGreaterStrategyNumber, BTLessEqualStrategyNumber,
                               BTLessStrategyNumber};
    for (int i = 0; i < form->indnkeyatts; i++) {
        AttrNumber attno = form->indkey.values[i];
        Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), attno - 1);
        key->columns = lappend(key->columns, (void *) quote_identifier(NameStr(att->attname)));
        key->types = lappend(key->types, format_type_be_qualified(att->atttypid));
        key->attnums = bms_add_member(key->attnums, attno);
        Oid family = get_opclass_family(classes->values[i]);
        Oid intype = get_opclass_input_type(classes->values[i]);
        for (int s = 0; s < 3; s++) {
            Oid opno = get_opfamily_member(family, intype, intype, strategies[s]);
            if (!OidIsValid(opno))
                elog(ERROR, "operator family %u has no operator of strategy %d for type %u",
                     family, strategies[s], intype);
            char *name = qualified_operator(opno);
            if (i == 0)
                key->ops[s] = name;
            else if (strcmp(key->ops[s], name) != 0)
                key->mixed_ops = true;
        }
    }
    ReleaseSysCache(tup);
    return true;
}

/* ---- the clauses ---- */

/* Re-raise an error of the parser or of parse analysis without its cursor
 * position (which points into our statement, not into the caller's query),
 * saying which backfill it is about. */
void reraise(MemoryContext cxt, const char *what)
{
    MemoryContextSwitchTo(cxt);
    /* what may live in ErrorContext (built in PG_CATCH): copied before
     * FlushErrorState resets it */
    char *context = pstrdup(what);
    ErrorData *ed = CopyErrorData();
    FlushErrorState();
    ed->cursorpos = 0;
    ed->internalpos = 0;
    ed->internalquery = nullptr;
    ed->context = context;
    ThrowErrorData(ed);
}

List *parse_guarded(const char *sql, const char *what)
{
    MemoryContext cxt = CurrentMemoryContext;
    List *volatile result = NIL;
    PG_TRY();
    {
        result = raw_parser(sql, RAW_PARSE_DEFAULT);
    }
    PG_CATCH();
    {
        reraise(cxt, what);
    }
    PG_END_TRY();
    return result;
}

Query *analyze_guarded(RawStmt *raw, const char *sql, const char *relation)
{
    MemoryContext cxt = CurrentMemoryContext;
    Query *volatile result = nullptr;
    PG_TRY();
    {
        result = parse_analyze_fixedparams(raw, sql, nullptr, 0, nullptr);
    }
    PG_CATCH();
    {
        reraise(cxt, psprintf("the clauses of a backfill of %s", relation));
    }
    PG_END_TRY();
    return result;
}

[[noreturn]] void refuse_set_clause(const char *why)
{
    ereport(ERROR,
            (errcode(ERRCODE_SYNTAX_ERROR),
             errmsg("set_clause of a backfill must be one list of column assignments"),
             errdetail("%s", why),
             errhint("Write it as after UPDATE ... SET: column = expression, column = "
                     "expression; the rows to update go in where_clause.")));
    pg_unreachable();
}

[[noreturn]] void refuse_where_clause(const char *why)
{
    ereport(ERROR,
            (errcode(ERRCODE_SYNTAX_ERROR),
             errmsg("where_clause of a backfill must be one boolean expression"), errdetail("%s", why),
             errhint("Write it as after WHERE, for example: full_name IS NULL AND id > 100.")));
    pg_unreachable();
}

/* The set clause, parsed as exactly "UPDATE rel SET <assignments>". */
UpdateStmt *parse_set_clause(const char *relation, const char *set_clause)
{
    List *stmts = parse_guarded(psprintf("UPDATE %s SET %s", relation, set_clause),
                                psprintf("set_clause of a backfill of %s", relation));
    if (list_length(stmts) != 1)
        refuse_set_clause("It holds more than one statement.");
    Node *stmt = linitial_node(RawStmt, stmts)->stmt;
    if (!IsA(stmt, UpdateStmt))
        refuse_set_clause("It is not an assignment list.");
    UpdateStmt *upd = (UpdateStmt *) stmt;
    if (upd->whereClause)
        refuse_set_clause("It has a WHERE clause.");
    if (upd->fromClause)
        refuse_set_clause("It has a FROM clause.");
    if (pg::compat::update_has_returning(upd))
        refuse_set_clause("It has a RETURNING clause.");
    if (upd->withClause)
        refuse_set_clause("It has a WITH clause.");
    ListCell *lc;
    foreach (lc, upd->targetList) {
        ResTarget *rt = lfirst_node(ResTarget, lc);
        if (rt->indirection)
            refuse_set_clause(psprintf("It assigns part of column \"%s\" (a subscript or a field): "
                                       "a backfill assigns whole columns.",
                                       rt->name));
        if (IsA(rt->val, MultiAssignRef) && IsA(((MultiAssignRef *) rt->val)->source, SubLink))
            refuse_set_clause("It assigns several columns from one subquery: assign each "
                              "column on its own.");
    }
    return upd;
}

/* The where clause, parsed as exactly "SELECT <expression>". */
Node *parse_where_clause(const char *relation, const char *where_clause)
{
    List *stmts = parse_guarded(psprintf("SELECT %s", where_clause),
                                psprintf("where_clause of a backfill of %s", relation));
    if (list_length(stmts) != 1)
        refuse_where_clause("It holds more than one statement.");
    Node *stmt = linitial_node(RawStmt, stmts)->stmt;
    if (!IsA(stmt, SelectStmt))
        refuse_where_clause("It is not an expression.");
    SelectStmt *sel = (SelectStmt *) stmt;
    if (sel->op != SETOP_NONE || sel->valuesLists || sel->withClause)
        refuse_where_clause("It is a query, not an expression.");
    if (list_length(sel->targetList) != 1)
        refuse_where_clause("It holds more than one expression.");
    if (sel->distinctClause || sel->intoClause || sel->fromClause || sel->whereClause ||
        sel->groupClause || sel->havingClause || sel->windowClause || sel->sortClause ||
        sel->limitOffset || sel->limitCount || sel->lockingClause)
        refuse_where_clause("It has clauses of a query after the expression.");
    ResTarget *rt = linitial_node(ResTarget, sel->targetList);
    if (rt->name || rt->indirection)
        refuse_where_clause("It names its result.");
    if (IsA(rt->val, ColumnRef) && IsA(llast(((ColumnRef *) rt->val)->fields), A_Star))
        refuse_where_clause("It is a \"*\", not an expression.");
    return rt->val;
}

bool in_temp_namespace(Oid nsp) { return OidIsValid(nsp) && isAnyTempNamespace(nsp); }

Oid type_namespace(Oid type)
{
    HeapTuple tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(type));
    if (!HeapTupleIsValid(tup))
        return InvalidOid;
    Oid nsp = ((Form_pg_type) GETSTRUCT(tup))->typnamespace;
    ReleaseSysCache(tup);
    return nsp;
}

Oid operator_namespace(Oid opno)
{
    HeapTuple tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
    if (!HeapTupleIsValid(tup))
        return InvalidOid;
    Oid nsp = ((Form_pg_operator) GETSTRUCT(tup))->oprnamespace;
    ReleaseSysCache(tup);
    return nsp;
}

/* Does the analyzed clause use an object of a temporary schema (this
 * session's or another's)?  The worker runs in another session: it would
 * find another session's object, or none. */
bool uses_temp_walker(Node *node, void *context)
{
    if (node == nullptr)
        return false;
    if (IsA(node, Query))
        return query_tree_walker((Query *) node, SM_WALKER(uses_temp_walker), context,
                                 QTW_EXAMINE_RTES_BEFORE);
    if (IsA(node, RangeTblEntry)) {
        RangeTblEntry *rte = (RangeTblEntry *) node;
        return rte->rtekind == RTE_RELATION && in_temp_namespace(get_rel_namespace(rte->relid));
    }
    bool temp = false;
    switch (nodeTag(node)) {
    case T_FuncExpr:
        temp = in_temp_namespace(get_func_namespace(((FuncExpr *) node)->funcid));
        break;
    case T_OpExpr:
    case T_DistinctExpr:
    case T_NullIfExpr:
        temp = in_temp_namespace(operator_namespace(((OpExpr *) node)->opno));
        break;
    case T_ScalarArrayOpExpr:
        temp = in_temp_namespace(operator_namespace(((ScalarArrayOpExpr *) node)->opno));
        break;
    default:
        break;
    }
    if (!temp && (IsA(node, Const) || IsA(node, FuncExpr) || IsA(node, OpExpr) ||
                  IsA(node, CoerceToDomain) || IsA(node, RelabelType) || IsA(node, CoerceViaIO) ||
                  IsA(node, ArrayCoerceExpr) || IsA(node, RowExpr) || IsA(node, ConvertRowtypeExpr) ||
                  IsA(node, Var) || IsA(node, ArrayExpr) || IsA(node, CaseExpr)))
        temp = in_temp_namespace(type_namespace(exprType(node)));
    if (temp)
        return true;
    return expression_tree_walker(node, SM_WALKER(uses_temp_walker), context);
}

struct Clauses {
    char *set_clause;   /* deparsed, qualified */
    char *where_clause; /* deparsed, qualified; NULL for none */
};

void refuse_temp_objects(Node *q, const char *relation)
{
    if (uses_temp_walker(q, nullptr))
        ereport(ERROR,
                (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                 errmsg("the clauses of a backfill of %s use a temporary object", relation),
                 errdetail("A backfill runs in a background worker, another session, which "
                           "cannot see this session's temporary tables, types or functions."),
                 errhint("Use permanent objects in the clauses.")));
}

/* migrate_delete's where clause: parsed as one expression, analyzed as the
 * condition of "DELETE FROM rel" (as the submitter), deparsed qualified. */
Clauses normalize_delete_clause(Relation rel, const char *relation, const char *where_clause)
{
    Clauses out;
    out.set_clause = nullptr;
    out.where_clause = nullptr;
    if (where_clause == nullptr)
        return out; /* every row */
    List *stmts = parse_guarded(psprintf("DELETE FROM %s", relation),
                                psprintf("the table of a batched delete of %s", relation));
    if (list_length(stmts) != 1 || !IsA(linitial_node(RawStmt, stmts)->stmt, DeleteStmt))
        elog(ERROR, "could not parse a DELETE of %s", relation);
    DeleteStmt *del = (DeleteStmt *) linitial_node(RawStmt, stmts)->stmt;
    del->whereClause = parse_where_clause(relation, where_clause);
    RawStmt *raw = makeNode(RawStmt);
    raw->stmt = (Node *) del;
    raw->stmt_location = -1;
    char *text = psprintf("DELETE FROM %s WHERE %s", relation, where_clause);
    Query *q = analyze_guarded(raw, text, relation);
    if (q->commandType != CMD_DELETE || q->hasAggs || q->hasWindowFuncs || q->hasTargetSRFs ||
        q->hasModifyingCTE || q->cteList || list_length(q->rtable) != 1)
        refuse_where_clause("It is not a plain condition on the table's rows.");
    refuse_temp_objects((Node *) q, relation);
    int nest = pg::pin_search_path();
    List *context = deparse_context_for(RelationGetRelationName(rel), RelationGetRelid(rel));
    out.where_clause = q->jointree->quals
                           ? deparse_expression(q->jointree->quals, context, false, false)
                           : nullptr;
    pg::unpin_search_path(nest);
    return out;
}

/* Parse, analyze (as the submitter, with the submitter's search_path),
 * check and deparse the clauses. */
Clauses normalize_clauses(Relation rel, const char *relation, const char *set_clause,
                          const char *where_clause, const WalkKey *key)
{
    UpdateStmt *upd = parse_set_clause(relation, set_clause);
    if (where_clause)
        upd->whereClause = parse_where_clause(relation, where_clause);
    RawStmt *raw = makeNode(RawStmt);
    raw->stmt = (Node *) upd;
    raw->stmt_location = -1;
    char *text = psprintf("UPDATE %s SET %s%s%s", relation, set_clause,
                          where_clause ? " WHERE " : "", where_clause ? where_clause : "");
    Query *q = analyze_guarded(raw, text, relation);
    if (q->commandType != CMD_UPDATE || q->hasAggs || q->hasWindowFuncs || q->hasTargetSRFs ||
        q->hasModifyingCTE || q->cteList || list_length(q->rtable) != 1)
        refuse_set_clause("It is not a plain assignment list.");
    refuse_temp_objects((Node *) q, relation);

    /* deparse with only pg_catalog on the search_path: every other name
     * comes out qualified */
    int nest = pg::pin_search_path();
    List *context = deparse_context_for(RelationGetRelationName(rel), RelationGetRelid(rel));
    StringInfoData set;
    initStringInfo(&set);
    ListCell *lc;
    foreach (lc, q->targetList) {
        TargetEntry *tle = lfirst_node(TargetEntry, lc);
        if (tle->resjunk)
            continue;
        if (bms_is_member(tle->resno, key->attnums)) {
            pg::unpin_search_path(nest);
            char *column = get_attname(RelationGetRelid(rel), tle->resno, false);
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                     errmsg("set_clause of a backfill of %s must not assign key column \"%s\"",
                            relation, column),
                     errdetail("The backfill walks the table by this key: a row whose key changes "
                               "is met again, batch after batch, or skipped."),
                     errhint("Change the key in a migration of its own; a backfill updates the "
                             "other columns.")));
        }
        appendStringInfo(&set, "%s%s = %s", set.len ? ", " : "",
                         quote_identifier(get_attname(RelationGetRelid(rel), tle->resno, false)),
                         deparse_expression((Node *) tle->expr, context, false, false));
    }
    Clauses out;
    out.set_clause = set.data;
    out.where_clause = q->jointree->quals
                           ? deparse_expression(q->jointree->quals, context, false, false)
                           : nullptr;
    pg::unpin_search_path(nest);
    return out;
}

/* The statements the worker will run, prepared now as the submitter with
 * the worker's search_path: what was deparsed must mean the same there. */
void check_batch_statements(const char *relation, const Clauses *c, const WalkKey *key)
{
    StringInfoData keys, params, order;
    initStringInfo(&keys);
    initStringInfo(&params);
    initStringInfo(&order);
    int n = list_length(key->columns);
    Oid *types = (Oid *) palloc(sizeof(Oid) * (2 * n + 1));
    for (int i = 0; i < n; i++) {
        const char *col = (const char *) list_nth(key->columns, i);
        appendStringInfo(&keys, "%s%s", i ? ", " : "", col);
        appendStringInfo(&params, "%s$%d::%s", i ? ", " : "", i + 1,
                         (const char *) list_nth(key->types, i));
        appendStringInfo(&order, "%s%s USING %s", i ? ", " : "", col, key->ops[2]);
        types[i] = TEXTOID;
    }
    char *select = psprintf("SELECT %s FROM %s WHERE ROW(%s) %s ROW(%s) ORDER BY %s LIMIT 1",
                            keys.data, relation, keys.data, key->ops[0], params.data, order.data);
    /* set_clause null: a batched delete */
    char *update = c->set_clause
                       ? psprintf("UPDATE %s SET %s WHERE ROW(%s) %s ROW(%s)%s%s%s", relation,
                                  c->set_clause, keys.data, key->ops[1], params.data,
                                  c->where_clause ? " AND (" : "",
                                  c->where_clause ? c->where_clause : "", c->where_clause ? ")" : "")
                       : psprintf("DELETE FROM %s WHERE ROW(%s) %s ROW(%s)%s%s%s", relation,
                                  keys.data, key->ops[1], params.data,
                                  c->where_clause ? " AND (" : "",
                                  c->where_clause ? c->where_clause : "", c->where_clause ? ")" : "");
    /* one statement, as built */
    if (list_length(raw_parser(update, RAW_PARSE_DEFAULT)) != 1)
        elog(ERROR, "the backfill statement of %s is not one statement", relation);
    int nest = pg::pin_search_path();
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    if (SPI_prepare(select, n, types) == nullptr || SPI_prepare(update, n, types) == nullptr)
        elog(ERROR, "could not prepare the backfill statements of %s", relation);
    SPI_finish();
    pg::unpin_search_path(nest);
}

/* At commit of the transaction that queued work or changed a job's status:
 * wake the launcher (before, a scout would not see the job) and the
 * workers of the jobs whose status changed (a worker sleeping between
 * batches looks at its job at once). */
bool wake_at_commit = false;
bool callback_registered = false;
constexpr int kMaxPokes = 64;
int64 pokes[kMaxPokes];
int n_pokes = 0;

void on_xact(XactEvent event, void *)
{
    if (event == XACT_EVENT_COMMIT) {
        if (wake_at_commit)
            wake_launcher(MyDatabaseId);
        for (int i = 0; i < n_pokes; i++)
            poke_job(MyDatabaseId, pokes[i]);
    }
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
        event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT) {
        wake_at_commit = false;
        n_pokes = 0;
    }
}

void register_callback(void)
{
    if (!callback_registered) {
        RegisterXactCallback(on_xact, nullptr);
        callback_registered = true;
    }
}

void wake_after_commit(void)
{
    register_callback();
    wake_at_commit = true;
}

void poke_after_commit(int64 id)
{
    register_callback();
    for (int i = 0; i < n_pokes; i++)
        if (pokes[i] == id)
            return;
    if (n_pokes < kMaxPokes) /* else the worker sees it at its next batch */
        pokes[n_pokes++] = id;
}

Datum list_to_text_array(List *items)
{
    int n = list_length(items);
    Datum *elems = (Datum *) palloc(sizeof(Datum) * (n + 1));
    for (int i = 0; i < n; i++)
        elems[i] = CStringGetTextDatum((char *) list_nth(items, i));
    return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* A job worker connects as the submitter: can it? */
void check_worker_can_connect(Oid role)
{
    HeapTuple tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(role));
    if (!HeapTupleIsValid(tup))
        elog(ERROR, "cache lookup failed for role %u", role);
    Form_pg_authid form = (Form_pg_authid) GETSTRUCT(tup);
    bool can_login = form->rolcanlogin;
    char *name = pstrdup(NameStr(form->rolname));
    ReleaseSysCache(tup);
    if (!can_login)
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("role \"%s\" cannot log in, so no backfill worker can run as it", name),
                 errdetail("A backfill runs in a background worker connected as the role that "
                           "submits it (the current role), with that role's rights and no more."),
                 errhint("Submit the backfill as a role with LOGIN that may update the table.")));
    if (pg::compat::database_acl(MyDatabaseId, role, ACL_CONNECT) != ACLCHECK_OK)
        ereport(ERROR,
                (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                 errmsg("role \"%s\" may not connect to database \"%s\", so no backfill "
                        "worker can run as it",
                        name, get_database_name(MyDatabaseId)),
                 errdetail("A backfill runs in a background worker connected as the role that "
                           "submits it."),
                 errhint("GRANT CONNECT ON DATABASE to the role, or submit as another role.")));
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
    SPI_execute_with_args("SELECT owner FROM safe_migrate.backfill_jobs "
                          "WHERE id OPERATOR(pg_catalog.=) $1",
                          1, t, v, nullptr, false, 1);
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
    /* what is returned must outlive SPI_finish, which frees SPI's context
     * (current after every SPI call) */
    MemoryContext cxt = CurrentMemoryContext;
    SPI_connect();
    pg::elevate(&e);
    Oid t[1] = {INT8OID};
    Datum v[1] = {Int64GetDatum(id)};
    char *sql = psprintf("UPDATE safe_migrate.backfill_jobs SET status = '%s', "
                         "updated_at = pg_catalog.now()%s "
                         "WHERE id OPERATOR(pg_catalog.=) $1 "
                         "AND status OPERATOR(pg_catalog.=) ANY ('{%s}'::pg_catalog.text[]) "
                         "RETURNING status",
                         to, strcmp(to, "cancelled") == 0 ? ", finished_at = pg_catalog.now()" : "",
                         from);
    SPI_execute_with_args(sql, 1, t, v, nullptr, false, 0);
    bool changed = SPI_processed == 1;
    SPI_execute_with_args("SELECT status FROM safe_migrate.backfill_jobs "
                          "WHERE id OPERATOR(pg_catalog.=) $1",
                          1, t, v, nullptr, false, 1);
    char *status = MemoryContextStrdup(
        cxt, SPI_processed == 1 ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)
                                : "unknown");
    pg::unelevate(&e);
    SPI_finish();
    if (changed)
        poke_after_commit(id);
    if (!changed)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("backfill job %lld is %s", (long long) id, status),
                        errhint("%s", rule)));
    return status;
}

}  // namespace

bool uses_temporary_object(Node *expr)
{
    return uses_temp_walker(expr, nullptr);
}

}  // namespace safe_migrate::backfill

using namespace safe_migrate;
using namespace safe_migrate::backfill;

namespace {

/* What migrate_backfill and migrate_delete queue. */
struct JobRequest {
    Oid relid;
    const char *set_clause; /* nullptr: a batched delete */
    const char *where_clause;
    int batch_size, target_ms, max_rate, pause_ms;
    int64 max_lag;
    double latency_budget_ms; /* the job's; the setting's when not given */
    bool vacuum;              /* the same */
    bool eager;               /* a job someone waits for (null: false) */
};

/* The three optional arguments after max_replica_lag: latency_budget (null:
 * safe_migrate.backfill_latency_budget), vacuum (null:
 * safe_migrate.backfill_vacuum) and eager (null: false). */
void per_job_settings(FunctionCallInfo fcinfo, int first, JobRequest *req)
{
    req->latency_budget_ms = latency_budget_ms;
    req->vacuum = backfill_vacuum;
    if (PG_NARGS() > first && !PG_ARGISNULL(first)) {
        double b = PG_GETARG_FLOAT8(first);
        if (!(b >= 0 && b <= 10000))
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                     errmsg("latency_budget must lie between 0 and 10000 milliseconds (got %g)", b),
                     errdetail("It is the increase of the application's p99 statement latency the job "
                               "may cause; 0 turns the control off."),
                     errhint("Leave it null to use safe_migrate.backfill_latency_budget.")));
        req->latency_budget_ms = b;
    }
    if (PG_NARGS() > first + 1 && !PG_ARGISNULL(first + 1))
        req->vacuum = PG_GETARG_BOOL(first + 1);
    req->eager = PG_NARGS() > first + 2 && !PG_ARGISNULL(first + 2) && PG_GETARG_BOOL(first + 2);
}

int64 submit_job(const JobRequest *req);

}  // namespace

/* migrate_backfill(relation, set_clause, where_clause, batch_size,
 *                  target_batch_ms, max_rows_per_second, pause_ms,
 *                  max_replica_lag) returns bigint */
SM_ENTRY(migrate_backfill)
{
    for (int i = 0; i < 2; i++)
        if (PG_ARGISNULL(i))
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                            errmsg("%s must not be null", i == 0 ? "relation" : "set_clause")));
    JobRequest req;
    req.relid = PG_GETARG_OID(0);
    req.set_clause = text_to_cstring(PG_GETARG_TEXT_PP(1));
    req.where_clause = PG_ARGISNULL(2) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(2));
    req.batch_size = PG_ARGISNULL(3) ? 1000 : PG_GETARG_INT32(3);
    req.target_ms = PG_ARGISNULL(4) ? 25 : PG_GETARG_INT32(4);
    req.max_rate = PG_ARGISNULL(5) ? 0 : PG_GETARG_INT32(5);
    req.pause_ms = PG_ARGISNULL(6) ? 0 : PG_GETARG_INT32(6);
    req.max_lag = PG_ARGISNULL(7) ? 16 * 1024 * 1024 : PG_GETARG_INT64(7);
    per_job_settings(fcinfo, 8, &req);
    PG_RETURN_INT64(submit_job(&req));
}

/* migrate_delete(relation, where_clause, batch_size, target_batch_ms,
 *                max_rows_per_second, pause_ms, max_replica_lag) returns
 * bigint: the rows matching where_clause (all when it is null) deleted in
 * batches by key, by the backfill machinery. */
SM_ENTRY(migrate_delete)
{
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("relation must not be null")));
    JobRequest req;
    req.relid = PG_GETARG_OID(0);
    req.set_clause = nullptr;
    req.where_clause = PG_ARGISNULL(1) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(1));
    req.batch_size = PG_ARGISNULL(2) ? 1000 : PG_GETARG_INT32(2);
    req.target_ms = PG_ARGISNULL(3) ? 25 : PG_GETARG_INT32(3);
    req.max_rate = PG_ARGISNULL(4) ? 0 : PG_GETARG_INT32(4);
    req.pause_ms = PG_ARGISNULL(5) ? 0 : PG_GETARG_INT32(5);
    req.max_lag = PG_ARGISNULL(6) ? 16 * 1024 * 1024 : PG_GETARG_INT64(6);
    per_job_settings(fcinfo, 7, &req);
    PG_RETURN_INT64(submit_job(&req));
}

/* migrate_vacuum(relation) returns bigint: a job with no batches, only the
 * vacuum a job does after its last one (see worker.cpp, "The aftermath"),
 * of a table the caller owns, run as the caller. */
SM_ENTRY(migrate_vacuum)
{
    if (!available())
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("background vacuums need safe_migrate in shared_preload_libraries"),
                 errdetail("The vacuum runs in a background worker that a launcher started with "
                           "the server manages."),
                 errhint("Add safe_migrate to shared_preload_libraries in postgresql.conf and "
                         "restart the server.")));
    refuse_on_standby("migrate_vacuum");
    Oid relid = PG_GETARG_OID(0);
    Relation rel = table_open(relid, AccessShareLock);
    char *name = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
                                            RelationGetRelationName(rel));
    char kind = rel->rd_rel->relkind;
    char persistence = rel->rd_rel->relpersistence;
    table_close(rel, AccessShareLock);
    if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE), errmsg("\"%s\" is not a table", name)));
    if (kind == RELKIND_PARTITIONED_TABLE)
        ereport(ERROR,
                (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                 errmsg("cannot vacuum partitioned table %s in the background", name),
                 errdetail("A background vacuum takes one plain table; a partitioned table's rows are "
                           "in its partitions."),
                 errhint("Queue one for each partition: SELECT migrate_vacuum(inhrelid::regclass) "
                         "FROM pg_inherits WHERE inhparent = %s::regclass;",
                         quote_literal_cstr(name))));
    if (persistence == RELPERSISTENCE_TEMP)
        ereport(ERROR,
                (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                 errmsg("cannot vacuum temporary table \"%s\" in the background", get_rel_name(relid)),
                 errdetail("The vacuum runs in a background worker, another session, which cannot "
                           "see this session's temporary tables."),
                 errhint("Vacuum it directly with VACUUM.")));
    /* VACUUM's own rule: only the table's owner vacuums it */
    if (!pg::compat::class_owner(relid, GetUserId()))
        aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, get_rel_name(relid));
    check_worker_can_connect(GetUserId());

    pg::Elevation e;
    SPI_connect();
    pg::elevate(&e);
    Oid t[6] = {OIDOID, TEXTOID, OIDOID, FLOAT8OID, TEXTARRAYOID, INT8OID};
    Datum v[6];
    v[0] = ObjectIdGetDatum(relid);
    v[1] = CStringGetTextDatum(name);
    v[2] = ObjectIdGetDatum(e.saved_user);
    v[3] = Float8GetDatum(latency_budget_ms);
    v[4] = list_to_text_array(NIL);
    /* what it is queued for: the dead rows of the transactions before now */
    v[5] = Int64GetDatum((int64) XidFromFullTransactionId(ReadNextFullTransactionId()));
    /* batch_size .. max_replica_lag: unused, the defaults of a backfill */
    if (SPI_execute_with_args(
            "INSERT INTO safe_migrate.backfill_jobs (relid, relation, operation, key_columns, key_types, "
            "key_operators, owner, batch_size, target_batch_ms, max_rows_per_second, pause_ms, "
            "max_replica_lag, latency_budget_ms, vacuum, vacuum_horizon) "
            "VALUES ($1, $2, 'vacuum', $5, $5, $5, $3, 1000, 25, 0, 0, 16777216, $4, true, $6) RETURNING id",
            6, t, v, nullptr, false, 1) != SPI_OK_INSERT_RETURNING)
        elog(ERROR, "could not record the vacuum job");
    bool isnull;
    int64 id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    pg::unelevate(&e);
    SPI_finish();
    wake_after_commit();
    PG_RETURN_INT64(id);
}

namespace {

int64 submit_job(const JobRequest *req)
{
    bool deleting = req->set_clause == nullptr;
    if (!available())
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("backfills need safe_migrate in shared_preload_libraries"),
                 errdetail("The backfill runs in background workers that a launcher started with "
                           "the server manages."),
                 errhint("Add safe_migrate to shared_preload_libraries in postgresql.conf and "
                         "restart the server.")));
    refuse_on_standby(deleting ? "migrate_delete" : "migrate_backfill");
    Oid relid = req->relid;
    const char *set_clause = req->set_clause;
    const char *where_clause = req->where_clause;
    int batch_size = req->batch_size;
    int target_ms = req->target_ms;
    int max_rate = req->max_rate;
    int pause_ms = req->pause_ms;
    int64 max_lag = req->max_lag;
    check_bound(kBatchSize, batch_size);
    check_bound(kTargetMs, target_ms);
    check_bound(kMaxRate, max_rate);
    check_bound(kPauseMs, pause_ms);
    check_bound(kMaxLag, max_lag);

    /* the submitter must be able to do it: UPDATE (DELETE) on the table */
    if (pg_class_aclcheck(relid, GetUserId(), deleting ? ACL_DELETE : ACL_UPDATE) != ACLCHECK_OK)
        aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(relid));
    /* and the worker must be able to run as the submitter */
    check_worker_can_connect(GetUserId());

    Relation rel = table_open(relid, AccessShareLock);
    char *name = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
                                            RelationGetRelationName(rel));
    if (rel->rd_rel->relkind != RELKIND_RELATION && rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("\"%s\" is not a table", name)));
    if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
        ereport(ERROR,
                (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                 errmsg("cannot backfill temporary table \"%s\"", RelationGetRelationName(rel)),
                 errdetail("A backfill runs in a background worker, another session, which "
                           "cannot see this session's temporary tables."),
                 errhint(deleting ? "Delete from a temporary table directly with DELETE."
                                  : "Update a temporary table directly with UPDATE.")));
    WalkKey key;
    bool has_key = walk_key(rel, &key);
    if (!has_key) {
        table_close(rel, AccessShareLock);
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("table %s has no key to walk in batches", name),
                 errdetail("A backfill walks the table by its primary key, or by a unique index "
                           "on NOT NULL columns without expressions or predicate."),
                 errhint("Add one first: CREATE UNIQUE INDEX CONCURRENTLY ... then ALTER TABLE %s "
                         "ADD PRIMARY KEY USING INDEX ...",
                         name)));
    }
    /* a batch reads the keys: the submitter must be able to */
    {
        int i = -1;
        while ((i = bms_next_member(key.attnums, i)) >= 0)
            if (pg_attribute_aclcheck(relid, (AttrNumber) i, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
                pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
                ereport(ERROR,
                        (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                         errmsg("permission denied for column \"%s\" of table %s",
                                get_attname(relid, (AttrNumber) i, false), name),
                         errdetail("A backfill reads the key of the table it walks."),
                         errhint("GRANT SELECT (%s) ON %s to the role that submits it.",
                                 get_attname(relid, (AttrNumber) i, false), name)));
    }
    if (key.mixed_ops)
        ereport(ERROR,
                (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                 errmsg("the key columns of %s compare with operators of different schemas", name),
                 errdetail("A backfill compares the whole key at once (a row comparison), which "
                           "needs one operator name for every key column."),
                 errhint("Backfill by a key whose column types compare with the same operators.")));
    /* the clauses: one assignment list, one expression, as the submitter
     * meant them (see the file header) */
    Clauses clauses = deleting ? normalize_delete_clause(rel, name, where_clause)
                               : normalize_clauses(rel, name, set_clause, where_clause, &key);
    table_close(rel, AccessShareLock);
    check_batch_statements(name, &clauses, &key);

    /* the same size estimate the policy uses: statistics scaled to the
     * table's size on disk, so a never-analyzed table gets one too */
    safe_migrate::pg::PolicyFacts size;
    memset(&size, 0, sizeof(size));
    policy::table_facts(relid, name, &size);
    double reltuples = size.rows;

    List *ops = NIL;
    for (int i = 0; i < 3; i++)
        ops = lappend(ops, key.ops[i]);
    pg::Elevation e;
    SPI_connect();
    pg::elevate(&e);
    Oid t[18] = {OIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID, OIDOID,
                 INT4OID, INT4OID, INT4OID, INT4OID, INT8OID, INT8OID, TEXTARRAYOID, FLOAT8OID, TEXTOID,
                 BOOLOID, BOOLOID};
    Datum v[18];
    char nulls[19] = "                  ";
    v[0] = ObjectIdGetDatum(relid);
    v[1] = CStringGetTextDatum(name);
    if (clauses.set_clause)
        v[2] = CStringGetTextDatum(clauses.set_clause);
    else
        nulls[2] = 'n';
    if (clauses.where_clause)
        v[3] = CStringGetTextDatum(clauses.where_clause);
    else
        nulls[3] = 'n';
    v[4] = list_to_text_array(key.columns);
    v[5] = list_to_text_array(key.types);
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
    v[13] = list_to_text_array(ops);
    /* the latency budget: given, or the one in force for the submitter now */
    v[14] = Float8GetDatum(req->latency_budget_ms);
    v[15] = CStringGetTextDatum(deleting ? "delete" : "update");
    /* and whether it vacuums after its last batch */
    v[16] = BoolGetDatum(req->vacuum);
    v[17] = BoolGetDatum(req->eager);
    if (SPI_execute_with_args(
            "INSERT INTO safe_migrate.backfill_jobs (relid, relation, set_clause, where_clause, "
            "key_columns, key_types, owner, batch_size, target_batch_ms, max_rows_per_second, "
            "pause_ms, max_replica_lag, estimated_total, key_operators, latency_budget_ms, operation, vacuum, eager) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) RETURNING id",
            18, t, v, nulls, false, 1) != SPI_OK_INSERT_RETURNING)
        elog(ERROR, "could not record the backfill job");
    bool isnull;
    int64 id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    pg::unelevate(&e);
    SPI_finish();
    wake_after_commit();
    return id;
}

}  // namespace

SM_ENTRY(migrate_backfill_pause)
{
    refuse_on_standby("migrate_backfill_pause");
    int64 id = PG_GETARG_INT64(0);
    (void) job_owner_checked(id, "migrate_backfill_pause");
    PG_RETURN_TEXT_P(cstring_to_text(set_status(id, "queued,running", "paused",
                                                 "Only a queued or running job can be paused.")));
}

SM_ENTRY(migrate_backfill_resume)
{
    refuse_on_standby("migrate_backfill_resume");
    int64 id = PG_GETARG_INT64(0);
    Oid owner = job_owner_checked(id, "migrate_backfill_resume");
    check_worker_can_connect(owner);
    char *status = set_status(id, "paused,failed", "running",
                              "Only a paused or failed job can be resumed.");
    wake_after_commit();
    PG_RETURN_TEXT_P(cstring_to_text(status));
}

SM_ENTRY(migrate_backfill_cancel)
{
    refuse_on_standby("migrate_backfill_cancel");
    int64 id = PG_GETARG_INT64(0);
    (void) job_owner_checked(id, "migrate_backfill_cancel");
    PG_RETURN_TEXT_P(cstring_to_text(set_status(id, "queued,running,paused,failed", "cancelled",
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
    /* (not STRICT, for its optional timeout; a NULL job is an error, not
     * a wait for nothing: a query that found no job gave it) */
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("no backfill job to wait for: the job id is NULL"),
                        errhint("Pass the id migrate_backfill or migrate_delete returned.")));
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
        MemoryContext cxt = CurrentMemoryContext; /* survives SPI_finish */
        SPI_connect();
        pg::elevate(&e);
        Oid t[1] = {INT8OID};
        Datum v[1] = {Int64GetDatum(id)};
        SPI_execute_with_args("SELECT status, last_error, xmin FROM safe_migrate.backfill_jobs "
                              "WHERE id OPERATOR(pg_catalog.=) $1",
                              1, t, v, nullptr, false, 1);
        char *status =
            MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
        char *error = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
        error = error ? MemoryContextStrdup(cxt, error) : nullptr;
        bool isnull;
        TransactionId xmin =
            DatumGetTransactionId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
        pg::unelevate(&e);
        SPI_finish();
        /* submitted (or changed) by this very transaction: no worker can
         * see it before it commits, and waiting here would never end */
        if (!isnull && TransactionIdIsCurrentTransactionId(xmin))
            ereport(ERROR,
                    (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                     errmsg("backfill job %lld was submitted or changed by this transaction", (long long) id),
                     errdetail("The backfill worker starts it when the transaction commits: waiting for it "
                               "in the same transaction would never end."),
                     errhint("Call migrate_backfill_wait(%lld) after the transaction that called "
                             "migrate_backfill has committed (in a migration: in a later statement; "
                             "safe_migrate runs a statement that waits in a transaction of its own).",
                             (long long) id)));
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
