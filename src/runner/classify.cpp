/*
 * classify.cpp — statement facts from raw parse trees.
 *
 * The list of statements that refuse a transaction block mirrors the
 * PreventInTransactionBlock() calls of PostgreSQL 15's utility code.
 */
#include "classify.hpp"
#include "pg/core_bridge.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "utils/lsyscache.h"
#include "parser/parser.h"
#include "tcop/cmdtag.h"
#include "tcop/utility.h"
#include "nodes/nodes.h"
#include "utils/builtins.h"
}

namespace safe_migrate::runner {

using core::TxClass;

static bool reindex_is_concurrent(const ReindexStmt *stmt)
{
    ListCell *lc;
    foreach (lc, stmt->params) {
        DefElem *opt = (DefElem *) lfirst(lc);
        if (strcmp(opt->defname, "concurrently") == 0)
            return opt->arg == nullptr || defGetBoolean(opt);
    }
    return false;
}

/* REINDEX TABLE / INDEX and CLUSTER of a partitioned table (or index)
 * refuse a transaction block: PostgreSQL works on each partition in a
 * transaction of its own.  The relation's kind is looked up when a
 * transaction is open (the caller's; the runner plans in one): the same
 * answer for both, before any statement of the script has run. */
static bool names_partitioned(const RangeVar *rv)
{
    if (rv == nullptr || rv->catalogname != nullptr || !IsTransactionState())
        return false;
    Oid relid = RangeVarGetRelid(rv, NoLock, true);
    char kind = OidIsValid(relid) ? get_rel_relkind(relid) : '\0';
    return kind == RELKIND_PARTITIONED_TABLE || kind == RELKIND_PARTITIONED_INDEX;
}

static bool alter_table_detaches_concurrently(const AlterTableStmt *stmt)
{
    ListCell *lc;
    foreach (lc, stmt->cmds) {
        AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
        if (cmd->subtype == AT_DetachPartition && cmd->def && IsA(cmd->def, PartitionCmd) &&
            ((PartitionCmd *) cmd->def)->concurrent)
            return true;
    }
    return false;
}

static bool only_validates(const AlterTableStmt *stmt)
{
    ListCell *lc;
    foreach (lc, stmt->cmds)
        if (((AlterTableCmd *) lfirst(lc))->subtype != AT_ValidateConstraint)
            return false;
    return stmt->cmds != NIL;
}

static bool calls_backfill_wait(const Node *node)
{
    if (node == nullptr || !IsA(node, FuncCall))
        return false;
    const char *name = strVal(llast(((const FuncCall *) node)->funcname));
    /* and the scan an online type change makes before its swap: alone,
     * not repeated with each lock-timeout retry of the swap */
    return strcmp(name, "migrate_backfill_wait") == 0 || strcmp(name, "sync_column_check") == 0;
}

bool waits_for_backfill(const RawStmt *raw)
{
    if (!IsA(raw->stmt, SelectStmt))
        return false;
    const SelectStmt *select = (const SelectStmt *) raw->stmt;
    ListCell *lc;
    foreach (lc, select->targetList) {
        const ResTarget *target = (const ResTarget *) lfirst(lc);
        if (IsA(target, ResTarget) && calls_backfill_wait(target->val))
            return true;
    }
    foreach (lc, select->fromClause) {
        const Node *item = (const Node *) lfirst(lc);
        if (!IsA(item, RangeFunction))
            continue;
        ListCell *fc;
        foreach (fc, ((const RangeFunction *) item)->functions) {
            const List *pair = (const List *) lfirst(fc); /* (FuncCall, column definitions) */
            if (calls_backfill_wait((const Node *) linitial(pair)))
                return true;
        }
    }
    return false;
}

namespace {

bool temp_relation(const RangeVar *rel)
{
    /* CREATE TEMP TABLE x, or CREATE TABLE pg_temp.x */
    return rel != nullptr &&
           (rel->relpersistence == RELPERSISTENCE_TEMP ||
            (rel->schemaname != nullptr && strncmp(rel->schemaname, "pg_temp", 7) == 0));
}

/* pg_temp.f(...): a function in the session's temporary schema */
bool in_temp_schema(const List *qualified_name)
{
    return list_length(qualified_name) > 1 &&
           strcmp(strVal(linitial(qualified_name)), "pg_temp") == 0;
}

}  // namespace

bool keeps_session_state(const RawStmt *raw)
{
    const Node *stmt = raw->stmt;
    switch (nodeTag(stmt)) {
        case T_CreateStmt:
            return temp_relation(((const CreateStmt *) stmt)->relation);
        case T_CreateTableAsStmt:
            return temp_relation(((const CreateTableAsStmt *) stmt)->into->rel);
        case T_ViewStmt:
            return temp_relation(((const ViewStmt *) stmt)->view);
        case T_CreateSeqStmt:
            return temp_relation(((const CreateSeqStmt *) stmt)->sequence);
        case T_SelectStmt: {
            const IntoClause *into = ((const SelectStmt *) stmt)->intoClause;
            return into != nullptr && temp_relation(into->rel);
        }
        case T_CreateFunctionStmt:
            return in_temp_schema(((const CreateFunctionStmt *) stmt)->funcname);
        case T_PrepareStmt:
        case T_LoadStmt:
            return true;
        case T_DoStmt:
            /* what a DO block does to the session (a temporary table, a
             * PREPARE or SET through EXECUTE) cannot be seen from outside:
             * a runner's session ends with the migration */
            return true;
        case T_DeclareCursorStmt:
            return (((const DeclareCursorStmt *) stmt)->options & CURSOR_OPT_HOLD) != 0;
        default:
            return false;
    }
}

TxClass classify_statement(const RawStmt *raw)
{
    Node *stmt = raw->stmt;

    switch (nodeTag(stmt)) {
        case T_TransactionStmt:
            return TxClass::Forbidden;
        case T_VariableSetStmt: {
            /* the script is split once, before it runs: a statement that
             * changes how the ones after it are read would have them run
             * otherwise than split */
            const char *name = ((const VariableSetStmt *) stmt)->name;
            return name != nullptr && pg_strcasecmp(name, "standard_conforming_strings") == 0
                       ? TxClass::Forbidden
                       : TxClass::Transactional;
        }
        case T_ListenStmt:
            /* it would listen in a session that outlives the migration (the
             * caller's) or ends with it (a runner, where PostgreSQL refuses
             * it): either way for nobody */
            return TxClass::Forbidden;
        case T_CopyStmt: {
            const CopyStmt *copy = (const CopyStmt *) stmt;
            /* COPY FROM STDIN / TO STDOUT need a client on the other end */
            return copy->filename == nullptr && !copy->is_program ? TxClass::Forbidden
                                                                  : TxClass::Transactional;
        }
        case T_IndexStmt:
            return ((const IndexStmt *) stmt)->concurrent ? TxClass::NonTransactional
                                                          : TxClass::Transactional;
        case T_DropStmt:
            return ((const DropStmt *) stmt)->concurrent ? TxClass::NonTransactional
                                                         : TxClass::Transactional;
        case T_ReindexStmt: {
            const ReindexStmt *r = (const ReindexStmt *) stmt;
            if (reindex_is_concurrent(r) || r->kind == REINDEX_OBJECT_SCHEMA ||
                r->kind == REINDEX_OBJECT_SYSTEM || r->kind == REINDEX_OBJECT_DATABASE)
                return TxClass::NonTransactional;
            if ((r->kind == REINDEX_OBJECT_TABLE || r->kind == REINDEX_OBJECT_INDEX) &&
                names_partitioned(r->relation))
                return TxClass::NonTransactional;
            return TxClass::Transactional;
        }
        case T_VacuumStmt:
            return ((const VacuumStmt *) stmt)->is_vacuumcmd ? TxClass::NonTransactional
                                                             : TxClass::Transactional;
        case T_ClusterStmt:
            return ((const ClusterStmt *) stmt)->relation == nullptr ||
                           names_partitioned(((const ClusterStmt *) stmt)->relation)
                       ? TxClass::NonTransactional
                       : TxClass::Transactional;
        case T_AlterTableStmt:
            if (alter_table_detaches_concurrently((const AlterTableStmt *) stmt))
                return TxClass::NonTransactional;
            /* online execution: a validation scan holds only SHARE UPDATE
             * EXCLUSIVE, unless its transaction holds more (the ADD before
             * it): alone, after the ADD committed */
            return pg::classify_online && only_validates((const AlterTableStmt *) stmt)
                       ? TxClass::OwnTransaction
                       : TxClass::Transactional;
        case T_AlterEnumStmt:
            /* ADD VALUE is allowed in a block, but the value is unusable
             * until committed: give it a transaction of its own. */
            return ((const AlterEnumStmt *) stmt)->newVal != nullptr &&
                           ((const AlterEnumStmt *) stmt)->oldVal == nullptr
                       ? TxClass::OwnTransaction
                       : TxClass::Transactional;
        case T_CreatedbStmt:
        case T_DropdbStmt:
        case T_CreateTableSpaceStmt:
        case T_DropTableSpaceStmt:
        case T_AlterSystemStmt:
        case T_CreateSubscriptionStmt:
        case T_AlterSubscriptionStmt:
        case T_DropSubscriptionStmt:
            return TxClass::NonTransactional;
        case T_DiscardStmt:
            /* DISCARD ALL resets the session the migration runs in: its
             * role (back to the runner's login, which in a rollback is not
             * the role the down script runs as), its settings and its
             * session locks (the migration lock among them) */
            return ((const DiscardStmt *) stmt)->target == DISCARD_ALL ? TxClass::Forbidden
                                                                       : TxClass::NonTransactional;
        case T_CallStmt:
            /* top level, alone: a procedure may COMMIT (non-atomic context) */
            return TxClass::NonTransactional;
        case T_SelectStmt:
            /* waiting for a backfill may take minutes: alone, so the wait can
             * give up its snapshot (one held that long keeps every row version
             * the backfill replaces from being vacuumed, and makes concurrent
             * index builds wait) */
            return waits_for_backfill(raw) ? TxClass::OwnTransaction : TxClass::Transactional;
        default:
            return TxClass::Transactional;
    }
}

List *parse_script(const char *sql, const char *what)
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
    return trees;
}

const char *forbidden_reason(const RawStmt *raw)
{
    if (IsA(raw->stmt, ListenStmt))
        return "LISTEN is not allowed in a migration (nobody would receive the notifications: the "
               "migration's session is not the application's)";
    if (IsA(raw->stmt, TransactionStmt)) {
        const TransactionStmt *t = (const TransactionStmt *) raw->stmt;
        switch (t->kind) {
            case TRANS_STMT_BEGIN:
            case TRANS_STMT_START:
                if (t->options != NIL)
                    return "BEGIN with transaction modes (ISOLATION LEVEL, READ ONLY, DEFERRABLE) "
                           "is not supported in a migration";
                return "BEGIN is accepted only once per section, paired with a COMMIT around all "
                       "of it (not a nested, second or unclosed transaction block)";
            case TRANS_STMT_COMMIT:
                if (t->chain)
                    return "COMMIT AND CHAIN is not supported in a migration";
                return "COMMIT is accepted only once per section, paired with a BEGIN around all "
                       "of it (not in the middle of a section, nor without a BEGIN)";
            case TRANS_STMT_ROLLBACK:
                return "ROLLBACK is not allowed in a migration (a section that undoes itself "
                       "would be recorded as applied)";
            case TRANS_STMT_SAVEPOINT:
            case TRANS_STMT_RELEASE:
            case TRANS_STMT_ROLLBACK_TO:
                return "savepoints are not supported in a migration";
            case TRANS_STMT_PREPARE:
            case TRANS_STMT_COMMIT_PREPARED:
            case TRANS_STMT_ROLLBACK_PREPARED:
                return "two-phase commit statements are not allowed in a migration";
        }
        return "transaction control statements are not allowed in a migration";
    }
    if (IsA(raw->stmt, CopyStmt))
        return "COPY FROM STDIN and COPY TO STDOUT need a client and are not allowed in a migration";
    if (IsA(raw->stmt, VariableSetStmt))
        return "SET standard_conforming_strings is not allowed in a migration (the script is split "
               "into statements before it runs; write backslash escapes as E'...' strings)";
    if (IsA(raw->stmt, DiscardStmt))
        return "DISCARD ALL is not allowed in a migration (it would reset the migration's session: "
               "its role, its settings and the lock that keeps migrations one at a time)";
    return "statement not allowed in a migration";
}

bool opens_transaction_plainly(const RawStmt *raw)
{
    if (!IsA(raw->stmt, TransactionStmt))
        return false;
    const TransactionStmt *t = (const TransactionStmt *) raw->stmt;
    return (t->kind == TRANS_STMT_BEGIN || t->kind == TRANS_STMT_START) && t->options == NIL;
}

const char *statement_kind(const RawStmt *raw)
{
    Node *stmt = raw->stmt;
    switch (nodeTag(stmt)) {
        case T_IndexStmt:
            return ((const IndexStmt *) stmt)->concurrent ? "CREATE INDEX CONCURRENTLY"
                                                          : "CREATE INDEX";
        case T_DropStmt:
            return ((const DropStmt *) stmt)->concurrent ? "DROP INDEX CONCURRENTLY" : "DROP";
        case T_ReindexStmt:
            return reindex_is_concurrent((const ReindexStmt *) stmt) ? "REINDEX CONCURRENTLY"
                                                                     : "REINDEX";
        case T_AlterTableStmt:
            return alter_table_detaches_concurrently((const AlterTableStmt *) stmt)
                       ? "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY"
                       : "ALTER TABLE";
        default:
            return GetCommandTagName(CreateCommandTag(stmt));
    }
}

char *statement_text(const char *script, const RawStmt *stmt)
{
    int start = stmt->stmt_location < 0 ? 0 : stmt->stmt_location;
    int len = stmt->stmt_len > 0 ? stmt->stmt_len : (int) strlen(script + start);
    const char *s = script + start;
    /* the statement proper: without the blank lines and "--" comment lines
     * the parser counts as its beginning (for display only) */
    for (;;) {
        while (len > 0 && isspace((unsigned char) *s)) {
            s++;
            len--;
        }
        if (len < 2 || s[0] != '-' || s[1] != '-')
            break;
        while (len > 0 && *s != '\n') {
            s++;
            len--;
        }
    }
    while (len > 0 && (isspace((unsigned char) s[len - 1]) || s[len - 1] == ';'))
        len--;
    return pnstrdup(s, len);
}

bool may_leave_invalid_index(const RawStmt *raw)
{
    Node *stmt = raw->stmt;
    if (IsA(stmt, IndexStmt))
        return ((const IndexStmt *) stmt)->concurrent;
    if (IsA(stmt, ReindexStmt))
        return reindex_is_concurrent((const ReindexStmt *) stmt);
    return false;
}

}  // namespace safe_migrate::runner

namespace safe_migrate::runner {

void refuse_outside_block_only(const char *sql, const RawStmt *stmt, int number, const char *what)
{
    /* CALL: a procedure runs inside the block, as under psql */
    if (classify_statement(stmt) != core::TxClass::NonTransactional || IsA(stmt->stmt, CallStmt))
        return;
    ereport(ERROR,
            (errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
             errmsg("statement %d of the %s: %s cannot run inside a transaction block", number,
                    what, statement_kind(stmt)),
             errdetail("The %s is wrapped in BEGIN; ... COMMIT;, so it runs as one transaction. "
                       "Statement: %s",
                       what, statement_text(sql, stmt)),
             errhint("Remove the BEGIN and COMMIT around the section: safe_migrate then runs "
                     "this statement on its own, outside a transaction block.")));
}

}  // namespace safe_migrate::runner
