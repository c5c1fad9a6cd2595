/*
 * triggers.cpp — where the policy meets PostgreSQL: the event trigger
 * functions (ddl_command_start, table_rewrite, sql_drop, ddl_command_end),
 * the ProcessUtility hook for the statements event triggers do not see,
 * and safe_migrate.ddl_log.
 */
#include "policy.hpp"
#include "pg/guard.hpp"
#include "pg/privileged.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "utils/lsyscache.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
}

namespace safe_migrate::policy {

namespace {

ProcessUtility_hook_type prev_process_utility = nullptr;
SPIPlanPtr log_commands_plan = nullptr;
SPIPlanPtr log_drops_plan = nullptr;

EventTriggerData *trigger_data(FunctionCallInfo fcinfo)
{
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("function can only be called as an event trigger")));
    return (EventTriggerData *) fcinfo->context;
}

/* Is safe_migrate created in this database?  (The hook is per process; the
 * policy is per database.) */
bool active_here(void)
{
    return IsTransactionState() && OidIsValid(get_extension_oid("safe_migrate", true));
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
            if (policy_mode != 0 && active_here())
                check_utility(parsetree);
            break;
        default:
            break;
    }
    if (prev_process_utility)
        prev_process_utility(pstmt, query_string, read_only_tree, context, params, query_env,
                             dest, qc);
    else
        standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env,
                                dest, qc);
}

/* Append to safe_migrate.ddl_log with the extension's rights; the session's
 * role is recorded, not used. */
void log_ddl(const char *sql, SPIPlanPtr *cached_plan, const char *command_tag)
{
    Oid user;
    int sec;
    GetUserIdAndSecContext(&user, &sec);
    const char *role = GetUserNameFromId(user, false);
    const char *text = migration.statement ? migration.statement : debug_query_string;

    /* extension scripts are not the database's own DDL; and DROP EXTENSION
     * safe_migrate drops the log before its own triggers */
    if (creating_extension)
        return;
    Oid nsp = get_namespace_oid("safe_migrate", true);
    if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("ddl_log", nsp)))
        return;

    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    pg::Elevation e;
    pg::elevate(&e);
    Oid types[5] = {TEXTOID, TEXTOID, BOOLOID, TEXTOID, TEXTOID};
    Datum values[5];
    char nulls[6] = "     ";
    values[0] = CStringGetTextDatum(role);
    if (text)
        values[1] = CStringGetTextDatum(text);
    else
        nulls[1] = 'n';
    values[2] = BoolGetDatum(migration.active);
    if (migration.version)
        values[3] = CStringGetTextDatum(migration.version);
    else
        nulls[3] = 'n';
    values[4] = CStringGetTextDatum(command_tag);
    /* planned once per backend (plancache replans if the table changes) */
    if (*cached_plan == nullptr) {
        SPIPlanPtr plan = SPI_prepare(sql, 5, types);
        if (plan == nullptr || SPI_keepplan(plan) != 0)
            elog(ERROR, "could not prepare the safe_migrate.ddl_log insert");
        *cached_plan = plan;
    }
    if (SPI_execute_plan(*cached_plan, values, nulls, false, 0) < 0)
        elog(ERROR, "could not write safe_migrate.ddl_log");
    pg::unelevate(&e);
    SPI_finish();
}

}  // namespace

void install_hooks(void)
{
    prev_process_utility = ProcessUtility_hook;
    ProcessUtility_hook = sm_process_utility;
}

}  // namespace safe_migrate::policy

using namespace safe_migrate::policy;

SM_ENTRY(safe_migrate_ddl_command_start)
{
    EventTriggerData *trig = trigger_data(fcinfo);
    if (policy_mode != 0 && !creating_extension)
        check_parsetree(trig->parsetree);
    PG_RETURN_VOID();
}

SM_ENTRY(safe_migrate_table_rewrite)
{
    EventTriggerData *trig = trigger_data(fcinfo);
    if (policy_mode != 0 && !creating_extension) {
        Oid relid = DatumGetObjectId(OidFunctionCall0(F_PG_EVENT_TRIGGER_TABLE_REWRITE_OID));
        int reason = DatumGetInt32(OidFunctionCall0(F_PG_EVENT_TRIGGER_TABLE_REWRITE_REASON));
        check_table_rewrite(relid, reason, trig->parsetree);
    }
    PG_RETURN_VOID();
}

SM_ENTRY(safe_migrate_ddl_command_end)
{
    (void) trigger_data(fcinfo);
    log_ddl("INSERT INTO safe_migrate.ddl_log (role_name, statement, managed, migration_version, "
            "command_tag, object_type, object_identity, in_extension) "
            "SELECT $1, $2, $3, $4, c.command_tag, c.object_type, c.object_identity, "
            "c.in_extension FROM pg_catalog.pg_event_trigger_ddl_commands() c",
            &log_commands_plan, "");
    PG_RETURN_VOID();
}

SM_ENTRY(safe_migrate_sql_drop)
{
    EventTriggerData *trig = trigger_data(fcinfo);
    log_ddl("INSERT INTO safe_migrate.ddl_log (role_name, statement, managed, migration_version, "
            "command_tag, object_type, object_identity, in_extension) "
            "SELECT $1, $2, $3, $4, $5, d.object_type, d.object_identity, false "
            "FROM pg_catalog.pg_event_trigger_dropped_objects() d WHERE d.original",
            &log_drops_plan, GetCommandTagName(trig->tag));
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
