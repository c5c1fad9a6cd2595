/*
 * triggers.cpp — where the policy meets PostgreSQL: the event trigger
 * functions (ddl_command_start, table_rewrite, sql_drop, ddl_command_end),
 * the ProcessUtility hook for the statements event triggers do not see,
 * and safe_migrate.ddl_log.
 */
#include "policy.hpp"
#include "pg/compat.hpp"
#include "pg/guard.hpp"
#include "pg/privileged.hpp"

extern "C" {
#include "access/heapam.h"
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

/* Is safe_migrate created in this database?  (The hook is per process; the
 * policy is per database.) */
bool active_here(void)
{
    return IsTransactionState() && OidIsValid(get_extension_oid("safe_migrate", true));
}

/* Every table and column PostgreSQL deletes, whatever statement deletes it
 * (see check_dropped_relation).  PostgreSQL's own housekeeping (transient
 * heaps of a rewrite, a session's temporary schema) is internal. */
void sm_object_access(ObjectAccessType access, Oid classId, Oid objectId, int subId, void *arg)
{
    if (prev_object_access)
        prev_object_access(access, classId, objectId, subId, arg);
    if (access != OAT_DROP || classId != RelationRelationId || policy_mode == 0 ||
        creating_extension)
        return;
    int flags = arg ? ((ObjectAccessDrop *) arg)->dropflags : 0;
    if ((flags & PERFORM_DELETION_INTERNAL) != 0)
        return;
    char kind = get_rel_relkind(objectId); /* before the extension lookup: cheap */
    if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
        return;
    if (active_here())
        check_dropped_relation(objectId, subId);
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
            if (policy_mode != 0 && active_here())
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
    if (prev_process_utility)
        prev_process_utility(pstmt, query_string, read_only_tree, context, params, query_env,
                             dest, qc);
    else
        standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env,
                                dest, qc);
    /* columns a drop took along without their table (normally judged at
     * sql_drop already) */
    flush_dropped_columns();
}

void forget_dropped_columns_on_abort(SubXactEvent event, SubTransactionId mySubid,
                                     SubTransactionId parentSubid, void *arg)
{
    if (event == SUBXACT_EVENT_ABORT_SUB)
        forget_dropped_columns();
}

/*
 * The DDL log (safe_migrate.ddl_statements, safe_migrate.ddl_objects; the
 * view safe_migrate.ddl_log joins them) is written directly, heap tuples
 * without SPI or the executor: this runs for every DDL statement of every
 * session, and the per-statement executor setup of an INSERT ... SELECT was
 * most of safe_migrate's cost on DDL-heavy workloads.  The tables have no
 * index, trigger or policy to honour; the session's role is recorded, not
 * used.
 *
 * What is kept: one ddl_statements row per top-level statement (its text,
 * cut to safe_migrate.ddl_log_max_statement_bytes, written when its first
 * permanent object is logged) and one ddl_objects row per permanent object.
 * Temporary objects are not logged at all.  A statement is identified by
 * its top-level transaction (xid8) and its number in that transaction.
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

struct LogRelations {
    Oid statements;
    Oid objects;
    Oid trimmed;
};

bool log_relations(LogRelations *r)
{
    Oid nsp = get_namespace_oid("safe_migrate", true);
    if (!OidIsValid(nsp))
        return false;
    r->statements = get_relname_relid("ddl_statements", nsp);
    r->objects = get_relname_relid("ddl_objects", nsp);
    r->trimmed = get_relname_relid("ddl_log_trimmed", nsp);
    return OidIsValid(r->statements) && OidIsValid(r->objects) && OidIsValid(r->trimmed);
}

/* The columns, in order. */
enum { kStXid, kStSeq, kStLoggedAt, kStText, kStBytes, kStManaged, kStVersion, kStCols };
enum { kObLoggedAt, kObXid, kObSeq, kObRole, kObTag, kObType, kObIdentity, kObInExtension, kObCols };

/*
 * The statement this transaction logged last, so that the objects of one
 * statement share its row.  Valid only in the transaction `xid` (its
 * strings live in that transaction's memory) and only while the
 * subtransaction that wrote the row has not been rolled back.
 */
struct LoggedStatement {
    bool valid;
    FullTransactionId xid;
    SubTransactionId subxid; /* that wrote the row */
    int32 seq;
    size_t bytes;            /* length of the whole text */
    char *kept;              /* the text kept (nullptr: none) */
    size_t kept_len;
    bool managed;
    char *version;
};
LoggedStatement last_statement = {false, {0}, InvalidSubTransactionId, 0, 0, nullptr, 0, false, nullptr};
/* statement numbers: the last one used in transaction seq_xid */
FullTransactionId seq_xid = {0};
int32 seq_counter = 0;

void forget_statement_on_abort(SubXactEvent event, SubTransactionId mySubid,
                               SubTransactionId parentSubid, void *arg)
{
    /* the row was written in mySubid or in one of its children (which have
     * larger ids): it is gone */
    if (event == SUBXACT_EVENT_ABORT_SUB && last_statement.valid &&
        last_statement.subxid >= mySubid)
        last_statement.valid = false;
}

bool same_text(const char *a, const char *b)
{
    return (a == nullptr && b == nullptr) || (a != nullptr && b != nullptr && strcmp(a, b) == 0);
}

/*
 * The (xid, seq) of the statement `text` in ddl_statements, writing its row
 * unless this transaction already did.  What is compared is what is kept:
 * two statements that agree on it share one row (same text, same length,
 * same migration).
 */
void statement_key(Oid statements_rel, const char *text, FullTransactionId *xid, int32 *seq)
{
    size_t bytes = text ? strlen(text) : 0;
    size_t kept_len = 0;
    if (text != nullptr && ddl_log_max_statement_bytes > 0) {
        kept_len = Min(bytes, (size_t) ddl_log_max_statement_bytes);
        if (kept_len < bytes) /* cut at a character boundary */
            kept_len = pg_mbcliplen(text, (int) bytes, (int) kept_len);
    }
    bool keep = text != nullptr && ddl_log_max_statement_bytes > 0;

    FullTransactionId current = GetTopFullTransactionIdIfAny();
    LoggedStatement *l = &last_statement;
    if (l->valid && FullTransactionIdIsValid(current) && FullTransactionIdEquals(l->xid, current) &&
        l->bytes == bytes && l->managed == migration.active &&
        same_text(l->version, migration.version) && (l->kept != nullptr) == keep &&
        l->kept_len == kept_len && (kept_len == 0 || memcmp(l->kept, text, kept_len) == 0)) {
        *xid = l->xid;
        *seq = l->seq;
        return;
    }

    current = GetTopFullTransactionId(); /* we are about to write anyway */
    if (!FullTransactionIdEquals(seq_xid, current)) {
        seq_xid = current;
        seq_counter = 0;
    }
    seq_counter++;

    Datum values[kStCols];
    bool nulls[kStCols] = {false};
    values[kStXid] = FullTransactionIdGetDatum(current);
    values[kStSeq] = Int32GetDatum(seq_counter);
    values[kStLoggedAt] = TimestampTzGetDatum(GetCurrentTimestamp());
    if (keep)
        values[kStText] = PointerGetDatum(cstring_to_text_with_len(text, (int) kept_len));
    else
        nulls[kStText] = true;
    values[kStBytes] = Int32GetDatum((int32) Min(bytes, (size_t) PG_INT32_MAX));
    values[kStManaged] = BoolGetDatum(migration.active);
    if (migration.version)
        values[kStVersion] = CStringGetTextDatum(migration.version);
    else
        nulls[kStVersion] = true;
    Relation rel = table_open(statements_rel, RowExclusiveLock);
    HeapTuple tuple = heap_form_tuple(RelationGetDescr(rel), values, nulls);
    simple_heap_insert(rel, tuple);
    heap_freetuple(tuple);
    table_close(rel, NoLock);

    /* the previous statement's copies, if this transaction made them */
    if (FullTransactionIdEquals(l->xid, current)) {
        if (l->kept)
            pfree(l->kept);
        if (l->version)
            pfree(l->version);
    }
    l->kept = l->version = nullptr;
    MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
    l->valid = true;
    l->xid = current;
    l->subxid = GetCurrentSubTransactionId();
    l->seq = seq_counter;
    l->bytes = bytes;
    l->kept = keep ? pnstrdup(text, kept_len) : nullptr;
    l->kept_len = kept_len;
    l->managed = migration.active;
    l->version = migration.version ? pstrdup(migration.version) : nullptr;
    MemoryContextSwitchTo(old);
    *xid = current;
    *seq = seq_counter;
}

/* The relation a trigger, rule, policy or column default belongs to. */
Oid owning_relation(Oid classid, Oid objid)
{
    AttrNumber relcol;
    switch (classid) {
        case TriggerRelationId: relcol = Anum_pg_trigger_tgrelid; break;
        case RewriteRelationId: relcol = Anum_pg_rewrite_ev_class; break;
        case PolicyRelationId: relcol = Anum_pg_policy_polrelid; break;
        case AttrDefaultRelationId: relcol = Anum_pg_attrdef_adrelid; break;
        case ConstraintRelationId: relcol = Anum_pg_constraint_conrelid; break;
        default: return InvalidOid;
    }
    Relation catalog = table_open(classid, AccessShareLock);
    HeapTuple tuple = get_catalog_object_by_oid(catalog, get_object_attnum_oid(classid), objid);
    Oid relid = InvalidOid;
    if (HeapTupleIsValid(tuple)) {
        bool isnull;
        Datum d = heap_getattr(tuple, relcol, RelationGetDescr(catalog), &isnull);
        if (!isnull)
            relid = DatumGetObjectId(d);
    }
    table_close(catalog, AccessShareLock);
    return relid;
}

/* Is this existing object temporary (in a temporary schema, or part of a
 * temporary table)? */
bool object_is_temporary(Oid classid, Oid objid)
{
    if (classid == RelationRelationId)
        return get_rel_persistence(objid) == RELPERSISTENCE_TEMP;
    Oid relid = owning_relation(classid, objid);
    if (OidIsValid(relid))
        return get_rel_persistence(relid) == RELPERSISTENCE_TEMP;
    if (!is_objectclass_supported(classid))
        return false;
    ObjectAddress address = {classid, objid, 0};
    Oid nsp = get_object_namespace(&address);
    return OidIsValid(nsp) && isAnyTempNamespace(nsp);
}

/* Is a dropped object temporary?  is_temporary says so for what is in a
 * temporary schema and for most parts of a temporary table (triggers,
 * policies, defaults, constraints), not for a rule (PostgreSQL 15).  What
 * belongs to a table names the table's schema first in address_names:
 * pg_temp, or pg_temp_N for another session's. */
bool dropped_is_temporary(TupleTableSlot *slot)
{
    bool isnull;
    Datum is_temporary = slot_getattr(slot, 6, &isnull);
    if (!isnull && DatumGetBool(is_temporary))
        return true;
    Datum names = slot_getattr(slot, 11, &isnull);
    if (isnull)
        return false;
    Datum *elems;
    bool *elem_nulls;
    int n;
    deconstruct_array(DatumGetArrayTypeP(names), TEXTOID, -1, false, TYPALIGN_INT, &elems,
                      &elem_nulls, &n);
    if (n < 2 || elem_nulls[0])
        return false;
    char *first = TextDatumGetCString(elems[0]);
    if (strcmp(first, "pg_temp") == 0)
        return true;
    return strncmp(first, "pg_temp_", 8) == 0 && first[8] != '\0' &&
           strspn(first + 8, "0123456789") == strlen(first + 8);
}

/* ---------- retention ---------- */

constexpr int64 kTrimEveryUs = 10 * 60 * USECS_PER_SEC;   /* the log is trimmed this often */
constexpr int64 kTrimCheckEveryUs = 60 * USECS_PER_SEC;   /* a session looks this often */
constexpr int64 kTrimMaxRows = 10000;                     /* per table and trim */
TimestampTz next_trim_check = 0;

/* Delete up to `limit` rows older than `cutoff` (column `col`), skipping
 * rows someone else is deleting; returns the number deleted. */
int64 delete_older(Oid relid, AttrNumber col, TimestampTz cutoff, int64 limit)
{
    Relation rel = table_open(relid, RowExclusiveLock);
    Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
    TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
    int64 deleted = 0;
    HeapTuple tuple;
    while (deleted < limit && (tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr) {
        bool isnull;
        Datum at = heap_getattr(tuple, col, RelationGetDescr(rel), &isnull);
        if (isnull || DatumGetTimestampTz(at) >= cutoff)
            continue;
        TM_FailureData tmfd;
        if (heap_delete(rel, &tuple->t_self, GetCurrentCommandId(true), InvalidSnapshot,
                        false /* do not wait */, &tmfd, false) == TM_Ok)
            deleted++;
    }
    table_endscan(scan);
    UnregisterSnapshot(snapshot);
    table_close(rel, NoLock);
    return deleted;
}

TimestampTz read_trimmed_at(Relation rel, Snapshot snapshot, ItemPointerData *tid)
{
    TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
    HeapTuple tuple = heap_getnext(scan, ForwardScanDirection);
    TimestampTz at = DT_NOBEGIN;
    ItemPointerSetInvalid(tid);
    if (tuple != nullptr) {
        bool isnull;
        Datum d = heap_getattr(tuple, 1, RelationGetDescr(rel), &isnull);
        if (!isnull)
            at = DatumGetTimestampTz(d);
        *tid = tuple->t_self;
    }
    table_endscan(scan);
    return at;
}

/*
 * Trim the log to safe_migrate.ddl_log_retention.  Unless `now_please`, only
 * when the last trim is ten minutes old.  One session at a time: the others
 * skip it rather than wait (a conditional lock on ddl_log_trimmed, held to
 * the end of the transaction, which also records the trim).  Returns the
 * rows deleted, or -1 when it did not run.
 */
int64 trim_log(const LogRelations *r, bool now_please)
{
    if (ddl_log_retention_min <= 0)
        return -1;
    TimestampTz now = GetCurrentTimestamp();
    Relation trimmed = table_open(r->trimmed, AccessShareLock);
    ItemPointerData tid;
    if (!now_please) {
        Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
        TimestampTz at = read_trimmed_at(trimmed, snapshot, &tid);
        UnregisterSnapshot(snapshot);
        if (at > now - kTrimEveryUs) {
            table_close(trimmed, AccessShareLock);
            return -1;
        }
    }
    if (!ConditionalLockRelationOid(r->trimmed, ExclusiveLock)) {
        table_close(trimmed, AccessShareLock);
        return -1;
    }
    Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
    TimestampTz at = read_trimmed_at(trimmed, snapshot, &tid);
    UnregisterSnapshot(snapshot);
    if (!now_please && at > now - kTrimEveryUs) {
        UnlockRelationOid(r->trimmed, ExclusiveLock);
        table_close(trimmed, AccessShareLock);
        return -1;
    }
    TimestampTz cutoff = now - (int64) ddl_log_retention_min * 60 * USECS_PER_SEC;
    int64 objects = delete_older(r->objects, kObLoggedAt + 1, cutoff, kTrimMaxRows);
    int64 statements = delete_older(r->statements, kStLoggedAt + 1, cutoff, kTrimMaxRows);
    /* all done: record it; else the next look (a minute later) goes on */
    if (objects < kTrimMaxRows && statements < kTrimMaxRows && ItemPointerIsValid(&tid)) {
        Datum values[1] = {TimestampTzGetDatum(now)};
        bool nulls[1] = {false};
        HeapTuple tuple = heap_form_tuple(RelationGetDescr(trimmed), values, nulls);
        pg::compat::heap_update_in_place(trimmed, &tid, tuple);
        heap_freetuple(tuple);
    }
    /* the lock stays until the end of the transaction */
    table_close(trimmed, NoLock);
    return objects + statements;
}

void maybe_trim_log(const LogRelations *r)
{
    if (ddl_log_retention_min <= 0)
        return;
    TimestampTz now = GetCurrentTimestamp();
    if (now < next_trim_check)
        return;
    next_trim_check = now + kTrimCheckEveryUs;
    (void) trim_log(r, false);
}

/* Log the objects the SRF returns; columns of interest by position. */
void log_objects(Oid srf, int classid_col, int objid_col, int tag_col, int type_col,
                 int identity_col, int in_extension_col, int original_col, bool dropped,
                 const char *fixed_tag)
{
    /* extension scripts are not the database's own DDL; and DROP EXTENSION
     * safe_migrate drops the log before its own triggers */
    if (creating_extension)
        return;
    LogRelations r;
    if (!log_relations(&r))
        return;
    /* the log's tables are toastable: inserting needs a snapshot, which the
     * last transaction of CREATE INDEX CONCURRENTLY (and the like) has not
     * set when ddl_command_end fires */
    bool pushed_snapshot = !ActiveSnapshotSet();
    if (pushed_snapshot)
        PushActiveSnapshot(GetTransactionSnapshot());

    const char *text = migration.statement ? migration.statement : debug_query_string;
    NameData role;
    namestrcpy(&role, GetUserNameFromId(GetUserId(), false));

    ExprContext *econtext = CreateStandaloneExprContext();
    TupleDesc desc;
    Tuplestorestate *store = call_srf(srf, &desc, econtext);
    bool logged = false;
    if (store != nullptr) {
        Relation rel = nullptr;
        FullTransactionId xid = {0};
        int32 seq = 0;
        TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
        while (tuplestore_gettupleslot(store, true, false, slot)) {
            bool isnull;
            if (original_col > 0) {
                Datum original = slot_getattr(slot, original_col, &isnull);
                if (isnull || !DatumGetBool(original))
                    continue;
            }
            if (dropped) {
                if (dropped_is_temporary(slot))
                    continue;
            } else {
                bool n1, n2;
                Datum classid = slot_getattr(slot, classid_col, &n1);
                Datum objid = slot_getattr(slot, objid_col, &n2);
                if (!n1 && !n2 &&
                    object_is_temporary(DatumGetObjectId(classid), DatumGetObjectId(objid)))
                    continue;
            }
            if (rel == nullptr) {
                statement_key(r.statements, text, &xid, &seq);
                rel = table_open(r.objects, RowExclusiveLock);
            }
            Datum values[kObCols];
            bool nulls[kObCols] = {false};
            values[kObLoggedAt] = TimestampTzGetDatum(GetCurrentTimestamp());
            values[kObXid] = FullTransactionIdGetDatum(xid);
            values[kObSeq] = Int32GetDatum(seq);
            values[kObRole] = NameGetDatum(&role);
            if (fixed_tag)
                values[kObTag] = CStringGetTextDatum(fixed_tag);
            else {
                values[kObTag] = slot_getattr(slot, tag_col, &isnull);
                if (isnull)
                    values[kObTag] = CStringGetTextDatum("");
            }
            values[kObType] = slot_getattr(slot, type_col, &nulls[kObType]);
            values[kObIdentity] = slot_getattr(slot, identity_col, &nulls[kObIdentity]);
            if (in_extension_col > 0) {
                values[kObInExtension] = slot_getattr(slot, in_extension_col, &isnull);
                if (isnull)
                    values[kObInExtension] = BoolGetDatum(false);
            } else
                values[kObInExtension] = BoolGetDatum(false);
            HeapTuple tuple = heap_form_tuple(RelationGetDescr(rel), values, nulls);
            simple_heap_insert(rel, tuple);
            heap_freetuple(tuple);
            logged = true;
        }
        ExecDropSingleTupleTableSlot(slot);
        tuplestore_end(store);
        if (rel != nullptr)
            table_close(rel, NoLock);
    }
    FreeExprContext(econtext, true);
    /* whoever writes to the log keeps it trimmed */
    if (logged)
        maybe_trim_log(&r);
    if (pushed_snapshot)
        PopActiveSnapshot();
}

}  // namespace

void install_hooks(void)
{
    prev_process_utility = ProcessUtility_hook;
    ProcessUtility_hook = sm_process_utility;
    prev_object_access = object_access_hook;
    object_access_hook = sm_object_access;
    install_scope_hooks();
    RegisterSubXactCallback(forget_statement_on_abort, nullptr);
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
    /* pg_event_trigger_ddl_commands(): classid 1, objid 2, command_tag 4,
     * object_type 5, object_identity 7, in_extension 8 */
    log_objects(F_PG_EVENT_TRIGGER_DDL_COMMANDS, 1, 2, 4, 5, 7, 8, 0, false, nullptr);
    PG_RETURN_VOID();
}

SM_ENTRY(safe_migrate_sql_drop)
{
    EventTriggerData *trig = trigger_data(fcinfo);
    /* the deletions are done: judge the columns that went without their table */
    flush_dropped_columns();
    /* pg_event_trigger_dropped_objects(): original 4, is_temporary 6,
     * object_type 7, object_identity 10, address_names 11 */
    log_objects(F_PG_EVENT_TRIGGER_DROPPED_OBJECTS, 0, 0, 0, 7, 10, 0, 4, true,
                GetCommandTagName(trig->tag));
    PG_RETURN_VOID();
}

/* safe_migrate.ddl_log_trim(): trim the log to the retention now. */
SM_ENTRY(safe_migrate_ddl_log_trim)
{
    if (!may_override(GetUserId()))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("permission denied to trim safe_migrate.ddl_log"),
                        errdetail("Only superusers and members of safe_migrate_admin may.")));
    if (RecoveryInProgress())
        ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
                        errmsg("cannot trim safe_migrate.ddl_log during recovery"),
                        errhint("Trim it on the primary; the standby follows.")));
    LogRelations r;
    if (!log_relations(&r))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("safe_migrate.ddl_log is missing")));
    if (ddl_log_retention_min <= 0)
        PG_RETURN_INT64(0);
    int64 deleted = 0;
    for (;;) {
        int64 n = trim_log(&r, true);
        if (n < 0)
            ereport(ERROR, (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
                            errmsg("safe_migrate.ddl_log is being trimmed by another session")));
        deleted += n;
        if (n < kTrimMaxRows)
            break;
        CommandCounterIncrement();
    }
    PG_RETURN_INT64(deleted);
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
