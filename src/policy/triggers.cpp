/*
 * triggers.cpp — where the policy meets PostgreSQL: the event trigger
 * function (ddl_command_start), the ProcessUtility hook for the statements
 * event triggers do not see, and the object access hook (drops, rewrites);
 * the DDL log rides on the same hooks (ddllog.cpp).
 */
#include "policy.hpp"
#include "pg/compat.hpp"
#include "pg/guard.hpp"
#include "pg/privileged.hpp"

extern "C" {
#include "access/genam.h"
#include "access/heapam.h"
#include "access/stratnum.h"
#include "catalog/pg_class.h"
#include "catalog/indexing.h"
#include "parser/parse_type.h"
#include "utils/typcache.h"
#include "utils/syscache.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/objectaddress.h"
#include "catalog/objectaccess.h"
#include "catalog/dependency.h"
#include "catalog/pg_class.h"
#include "catalog/pg_attrdef.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_rewrite.h"
#include "catalog/pg_trigger.h"
#include "mb/pg_wchar.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/rel.h"
#include "utils/xid8.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_db_role_setting.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "utils/tuplestore.h"
#include "utils/timestamp.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
}

namespace safe_migrate::policy {

/* settings of the log (defined with the others in safe_migrate.cpp) */
extern int ddl_log_max_statement_bytes;
extern int ddl_log_retention_min;

/* Is safe_migrate created in this database?  (The hook is per process; the
 * policy is per database.) */
bool active_here(void)
{
    return IsTransactionState() && OidIsValid(get_extension_oid("safe_migrate", true));
}

namespace {

constexpr const char *kGuardedSetting = "safe_migrate.guarded_database";

/* Is database db marked by CREATE EXTENSION safe_migrate (its setting
 * safe_migrate.guarded_database = on for every role, in the shared catalog
 * pg_db_role_setting, which a database owner cannot reset: the parameter is
 * a superuser's)? */
bool database_guarded(Oid db)
{
    if (!OidIsValid(db) || !IsTransactionState())
        return false;
    bool guarded = false;
    Relation rel = table_open(DbRoleSettingRelationId, AccessShareLock);
    ScanKeyData key[2];
    ScanKeyInit(&key[0], Anum_pg_db_role_setting_setdatabase, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(db));
    ScanKeyInit(&key[1], Anum_pg_db_role_setting_setrole, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(InvalidOid));
    SysScanDesc scan = systable_beginscan(rel, DbRoleSettingDatidRolidIndexId, true, nullptr, 2, key);
    HeapTuple tup = systable_getnext(scan);
    if (HeapTupleIsValid(tup)) {
        bool isnull;
        Datum d = heap_getattr(tup, Anum_pg_db_role_setting_setconfig, RelationGetDescr(rel), &isnull);
        if (!isnull) {
            ArrayType *a = DatumGetArrayTypeP(d);
            Datum *items;
            bool *nulls;
            int n;
            deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &items, &nulls, &n);
            size_t len = strlen(kGuardedSetting);
            for (int i = 0; i < n && !guarded; i++) {
                if (nulls[i])
                    continue;
                char *item = TextDatumGetCString(items[i]);
                bool value = false;
                guarded = strncmp(item, kGuardedSetting, len) == 0 && item[len] == '=' &&
                          parse_bool(item + len + 1, &value) && value;
            }
        }
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return guarded;
}

/* Is this DROP statement one that drops the extension safe_migrate? */
bool drops_this_extension(Node *parsetree)
{
    if (!IsA(parsetree, DropStmt) || ((DropStmt *) parsetree)->removeType != OBJECT_EXTENSION)
        return false;
    ListCell *lc;
    foreach (lc, ((DropStmt *) parsetree)->objects)
        if (strcmp(strVal(lfirst(lc)), "safe_migrate") == 0)
            return true;
    return false;
}

/* ALTER DATABASE dbname SET safe_migrate.guarded_database = on (or RESET
 * it), as the current user. */
void set_mark(const char *dbname, bool on)
{
    VariableSetStmt *set = makeNode(VariableSetStmt);
    set->name = pstrdup(kGuardedSetting);
    if (on) {
        A_Const *value = makeNode(A_Const);
        value->val.sval = *makeString(pstrdup("on"));
        value->location = -1;
        set->kind = VAR_SET_VALUE;
        set->args = list_make1(value);
    } else
        set->kind = VAR_RESET;
    AlterDatabaseSetStmt *alter = makeNode(AlterDatabaseSetStmt);
    alter->dbname = pstrdup(dbname);
    alter->setstmt = set;
    (void) AlterDatabaseSet(alter);
}

/* The extension is gone from this database: so is its mark (as a superuser
 * only: otherwise the mark stays, and DROP DATABASE of it stays judged from
 * other databases until an administrator resets it). */
void unmark_database(void)
{
    if (!superuser() || !database_guarded(MyDatabaseId))
        return;
    set_mark(get_database_name(MyDatabaseId), false);
}

/* CREATE DATABASE copies its template's objects, the extension included,
 * but not the template's database settings: the copy of a guarded database
 * is marked as its template is.  The parameter is a superuser's: set with
 * the bootstrap superuser's rights for this one catalog update (a fixed
 * name and value, no user code: the parameter has no check hook). */
void mark_copy(const CreatedbStmt *stmt)
{
    const char *source = "template1";
    ListCell *lc;
    foreach (lc, stmt->options) {
        DefElem *opt = (DefElem *) lfirst(lc);
        if (strcmp(opt->defname, "template") == 0 && opt->arg != nullptr)
            source = defGetString(opt);
    }
    if (!database_guarded(get_database_oid(source, true)))
        return;
    CommandCounterIncrement(); /* the new database's row */
    pg::Elevation e;
    pg::elevate(&e);
    set_mark(stmt->dbname, true);
    pg::unelevate(&e);
}

}  // namespace

namespace {

ProcessUtility_hook_type prev_process_utility = nullptr;
object_access_hook_type prev_object_access = nullptr;

EventTriggerData *trigger_data(FunctionCallInfo fcinfo)
{
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("function can only be called as an event trigger")));
    return (EventTriggerData *) fcinfo->context;
}

/* Every table and column PostgreSQL deletes, whatever statement deletes it
 * (see check_dropped_relation).  PostgreSQL's own housekeeping (transient
 * heaps of a rewrite, a session's temporary schema) is internal. */
/*
 * A table about to be rewritten by ALTER TABLE.  PostgreSQL copies a table
 * into a new heap it creates for the purpose (make_new_heap: an internal
 * relation whose pg_class.relrewrite names the table), after locking and
 * before copying a row: the moment the table_rewrite event trigger fires.
 * Seen here without that trigger, whose mere existence makes PostgreSQL
 * collect a description of every object every DROP deletes.  Only a
 * rewrite by ALTER TABLE (or ALTER TYPE of a composite type with typed
 * tables) is judged here; VACUUM FULL, CLUSTER and REFRESH MATERIALIZED
 * VIEW make such heaps too and are judged before they start.
 */
Oid rewritten_table(Oid newrel)
{
    Relation pg_class_rel = table_open(RelationRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_class_oid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(newrel));
    /* the new row is not visible to MVCC snapshots until the command
     * counter moves: read it as the command itself sees it */
    SysScanDesc scan = systable_beginscan(pg_class_rel, ClassOidIndexId, true, SnapshotSelf, 1,
                                          &key);
    HeapTuple tuple = systable_getnext(scan);
    Oid table = HeapTupleIsValid(tuple) ? ((Form_pg_class) GETSTRUCT(tuple))->relrewrite
                                        : InvalidOid;
    systable_endscan(scan);
    table_close(pg_class_rel, AccessShareLock);
    return table;
}

/* A domain with constraints: a column of it added gets every row checked
 * (by a rewrite), NULLs included. */
bool constrained_domain(TypeName *name)
{
    if (name == nullptr)
        return false;
    Type t = LookupTypeName(nullptr, name, nullptr, true);
    if (t == nullptr)
        return false;
    Oid typid = typeTypeId(t);
    ReleaseSysCache(t);
    return get_typtype(typid) == TYPTYPE_DOMAIN && DomainHasConstraints(typid);
}

/* Why ALTER TABLE rewrites (the table_rewrite event's reason bits), from its
 * subcommands: called only when it does rewrite. */
int rewrite_reasons(AlterTableStmt *stmt)
{
    int reasons = 0;
    ListCell *lc;
    foreach (lc, stmt->cmds) {
        AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
        switch (cmd->subtype) {
            case AT_SetLogged:
            case AT_SetUnLogged: reasons |= 0x01; break;
            case AT_AddColumn:
                if (cmd->def && IsA(cmd->def, ColumnDef) &&
                    (added_column_filled((ColumnDef *) cmd->def) ||
                     constrained_domain(((ColumnDef *) cmd->def)->typeName)))
                    reasons |= 0x02;
                break;
            case AT_AlterColumnType: reasons |= 0x04; break;
            case AT_SetAccessMethod: reasons |= 0x08; break;
            default: break;
        }
    }
    return reasons != 0 ? reasons : 0x04;
}

void sm_object_access(ObjectAccessType access, Oid classId, Oid objectId, int subId, void *arg)
{
    if (prev_object_access)
        prev_object_access(access, classId, objectId, subId, arg);
    ddl_log_object(access, classId, objectId, subId, arg);
    if (access == OAT_POST_CREATE && classId == RelationRelationId && subId == 0 &&
        arg != nullptr && ((ObjectAccessPostCreate *) arg)->is_internal && policy_mode != 0 &&
        !creating_extension) {
        Node *stmt = ddl_log_current_statement();
        if (stmt != nullptr && IsA(stmt, AlterTableStmt)) {
            Oid table = rewritten_table(objectId);
            if (OidIsValid(table) && active_here())
                check_table_rewrite(table, rewrite_reasons((AlterTableStmt *) stmt), stmt);
        }
        return;
    }
    if (access != OAT_DROP || classId != RelationRelationId || policy_mode == 0 ||
        creating_extension)
        return;
    int flags = arg ? ((ObjectAccessDrop *) arg)->dropflags : 0;
    if ((flags & PERFORM_DELETION_INTERNAL) != 0) {
        /* an index ALTER TABLE drops to build again after its rewrite */
        if (subId == 0) {
            Node *stmt = ddl_log_current_statement();
            if (stmt != nullptr && IsA(stmt, AlterTableStmt))
                note_rebuilt_index(objectId, stmt);
        }
        return;
    }
    char kind = get_rel_relkind(objectId); /* before the extension lookup: cheap */
    if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
        return;
    check_dropped_relation(objectId, subId); /* looks whether it is active here */
}

void run_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
                 ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *query_env,
                 DestReceiver *dest, QueryCompletion *qc)
{
    if (prev_process_utility)
        prev_process_utility(pstmt, query_string, read_only_tree, context, params, query_env,
                             dest, qc);
    else
        standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env,
                                dest, qc);
}

/* DROP DATABASE of a database the extension guards, by a role that may not
 * override rules (only a DropdbStmt names a database here) */
bool drops_guarded_database(const DropdbStmt *stmt)
{
    return database_guarded(get_database_oid(stmt->dbname, true)) && !may_override(GetUserId());
}

void sm_process_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
                        ProcessUtilityContext context, ParamListInfo params,
                        QueryEnvironment *query_env, DestReceiver *dest, QueryCompletion *qc)
{
    Node *parsetree = pstmt->utilityStmt;
    switch (nodeTag(parsetree)) {
        case T_TruncateStmt:
        case T_VacuumStmt:
        case T_ClusterStmt:
        case T_ReindexStmt:
        case T_DropdbStmt:
            /* A database the extension guards is judged from one where it
             * is not installed too, for a role that may not override rules
             * (its owner, say): no migration there can carry an allow line,
             * and an administrator's DROP DATABASE from such a database (a
             * test harness's, a restore's) is deliberate. */
            if (policy_mode == 0)
                break;
            if (active_here() ||
                (IsA(parsetree, DropdbStmt) && drops_guarded_database((DropdbStmt *) parsetree)))
                check_utility(parsetree);
            break;
        default:
            /* event_triggers = off (17+): no ddl_command_start trigger
             * fires; the statement is judged here the same way */
            if (pg::compat::event_triggers_disabled() && context != PROCESS_UTILITY_SUBCOMMAND &&
                policy_mode != 0 && !creating_extension && active_here()) {
                note_ddl_statement(GetCommandTagName(CreateCommandTag(parsetree)));
                check_parsetree(parsetree);
            }
            break;
    }
    const bool dropping_extension = drops_this_extension(parsetree);
    /* the DDL log's frame for this statement (ddllog.cpp) */
    if (!ddl_log_begin(parsetree, context)) {
        run_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
        flush_dropped_columns();
        if (dropping_extension && !active_here())
            unmark_database();
        if (IsA(parsetree, CreatedbStmt))
            mark_copy((CreatedbStmt *) parsetree);
        return;
    }
    PG_TRY();
    {
        run_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
        /* columns a drop took along without their table */
        flush_dropped_columns();
    }
    PG_CATCH();
    {
        ddl_log_abandon();
        PG_RE_THROW();
    }
    PG_END_TRY();
    ddl_log_end();
    if (dropping_extension && !active_here())
        unmark_database();
    if (IsA(parsetree, CreatedbStmt))
        mark_copy((CreatedbStmt *) parsetree);
}

void forget_dropped_columns_on_abort(SubXactEvent event, SubTransactionId mySubid,
                                     SubTransactionId parentSubid, void *arg)
{
    if (event == SUBXACT_EVENT_ABORT_SUB)
        forget_dropped_columns();
}

}  // namespace

void install_hooks(void)
{
    prev_process_utility = ProcessUtility_hook;
    ProcessUtility_hook = sm_process_utility;
    prev_object_access = object_access_hook;
    object_access_hook = sm_object_access;
    install_scope_hooks();
    install_ddl_log_hooks();
    RegisterSubXactCallback(forget_dropped_columns_on_abort, nullptr);
    install_dml_hooks();
}

}  // namespace safe_migrate::policy

using namespace safe_migrate::policy;

SM_ENTRY(safe_migrate_ddl_command_start)
{
    EventTriggerData *trig = trigger_data(fcinfo);
    note_ddl_statement(GetCommandTagName(trig->tag));
    if (policy_mode != 0 && !creating_extension)
        check_parsetree(trig->parsetree);
    PG_RETURN_VOID();
}

/* safe_migrate.rules(): the rule registry, as the core has it. */
SM_ENTRY(safe_migrate_rules)
{
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
    int n = 0;
    const safe_migrate::pg::RuleRow *rows = safe_migrate::pg::rule_rows(&n);
    for (int i = 0; i < n; i++) {
        Datum values[4];
        bool nulls[4] = {false, false, false, false};
        values[0] = CStringGetTextDatum(rows[i].name);
        values[1] = CStringGetTextDatum(rows[i].default_level);
        values[2] = BoolGetDatum(rows[i].size_dependent);
        values[3] = CStringGetTextDatum(rows[i].summary);
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum) 0;
}
