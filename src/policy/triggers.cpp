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
#include "access/heapam.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
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

namespace {

ProcessUtility_hook_type prev_process_utility = nullptr;

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

/*
 * safe_migrate.ddl_log is written directly, one heap tuple per object,
 * without SPI or the executor: this runs for every DDL statement of every
 * session, and the per-statement executor setup of an INSERT ... SELECT was
 * most of safe_migrate's cost on DDL-heavy workloads.  The log has no index,
 * trigger or policy to honour; the session's role is recorded, not used.
 */

/* Run one of PostgreSQL's event-trigger SRFs in materialize mode. */
Tuplestorestate *call_srf(Oid fn, TupleDesc *desc, ExprContext *econtext)
{
    FmgrInfo flinfo;
    fmgr_info(fn, &flinfo);
    ReturnSetInfo rsinfo;
    memset(&rsinfo, 0, sizeof(rsinfo));
    rsinfo.type = T_ReturnSetInfo;
    rsinfo.econtext = econtext;
    rsinfo.allowedModes = (int) (SFRM_ValuePerCall | SFRM_Materialize);
    rsinfo.returnMode = SFRM_ValuePerCall;
    LOCAL_FCINFO(fcinfo, 0);
    InitFunctionCallInfoData(*fcinfo, &flinfo, 0, InvalidOid, nullptr, (Node *) &rsinfo);
    (void) FunctionCallInvoke(fcinfo);
    if (rsinfo.returnMode != SFRM_Materialize)
        elog(ERROR, "event trigger function did not materialize its result");
    *desc = rsinfo.setDesc;
    return rsinfo.setResult;
}

Oid ddl_log_relid(void)
{
    Oid nsp = get_namespace_oid("safe_migrate", true);
    return OidIsValid(nsp) ? get_relname_relid("ddl_log", nsp) : InvalidOid;
}

/* The columns of safe_migrate.ddl_log, in order. */
enum { kLoggedAt, kRole, kTag, kType, kIdentity, kStatement, kManaged, kVersion, kInExtension, kCols };

/* Log the objects the SRF returns; columns of interest by position. */
void log_objects(Oid srf, int tag_col, int type_col, int identity_col, int in_extension_col,
                 int original_col, const char *fixed_tag)
{
    /* extension scripts are not the database's own DDL; and DROP EXTENSION
     * safe_migrate drops the log before its own triggers */
    if (creating_extension)
        return;
    Oid log = ddl_log_relid();
    if (!OidIsValid(log))
        return;

    const char *text = migration.statement ? migration.statement : debug_query_string;
    NameData role;
    namestrcpy(&role, GetUserNameFromId(GetUserId(), false));

    ExprContext *econtext = CreateStandaloneExprContext();
    TupleDesc desc;
    Tuplestorestate *store = call_srf(srf, &desc, econtext);
    Relation rel = table_open(log, RowExclusiveLock);
    if (store != nullptr) {
        TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
        while (tuplestore_gettupleslot(store, true, false, slot)) {
            bool isnull;
            if (original_col > 0) {
                Datum original = slot_getattr(slot, original_col, &isnull);
                if (isnull || !DatumGetBool(original))
                    continue;
            }
            Datum values[kCols];
            bool nulls[kCols] = {false};
            values[kLoggedAt] = TimestampTzGetDatum(GetCurrentTimestamp());
            values[kRole] = NameGetDatum(&role);
            if (fixed_tag)
                values[kTag] = CStringGetTextDatum(fixed_tag);
            else {
                values[kTag] = slot_getattr(slot, tag_col, &isnull);
                if (isnull)
                    values[kTag] = CStringGetTextDatum("");
            }
            values[kType] = slot_getattr(slot, type_col, &nulls[kType]);
            values[kIdentity] = slot_getattr(slot, identity_col, &nulls[kIdentity]);
            if (text)
                values[kStatement] = CStringGetTextDatum(text);
            else
                nulls[kStatement] = true;
            values[kManaged] = BoolGetDatum(migration.active);
            if (migration.version)
                values[kVersion] = CStringGetTextDatum(migration.version);
            else
                nulls[kVersion] = true;
            if (in_extension_col > 0) {
                values[kInExtension] = slot_getattr(slot, in_extension_col, &isnull);
                if (isnull)
                    values[kInExtension] = BoolGetDatum(false);
            } else
                values[kInExtension] = BoolGetDatum(false);
            HeapTuple tuple = heap_form_tuple(RelationGetDescr(rel), values, nulls);
            simple_heap_insert(rel, tuple);
            heap_freetuple(tuple);
        }
        ExecDropSingleTupleTableSlot(slot);
        tuplestore_end(store);
    }
    table_close(rel, NoLock);
    FreeExprContext(econtext, true);
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
    /* pg_event_trigger_ddl_commands(): command_tag 4, object_type 5,
     * object_identity 7, in_extension 8 */
    log_objects(F_PG_EVENT_TRIGGER_DDL_COMMANDS, 4, 5, 7, 8, 0, nullptr);
    PG_RETURN_VOID();
}

SM_ENTRY(safe_migrate_sql_drop)
{
    EventTriggerData *trig = trigger_data(fcinfo);
    /* pg_event_trigger_dropped_objects(): original 4, object_type 7,
     * object_identity 10 */
    log_objects(F_PG_EVENT_TRIGGER_DROPPED_OBJECTS, 0, 7, 10, 0, 4, GetCommandTagName(trig->tag));
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
