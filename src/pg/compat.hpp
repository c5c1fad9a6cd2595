#pragma once
// Every difference between the PostgreSQL server APIs safe_migrate builds
// against (15, 17, 18) lives here: the rest of the code calls these and
// never tests PG_VERSION_NUM itself.  All are thin inline wrappers; on 15
// each is exactly the call the code made before.
//
//   16: RelFileNode -> RelFileLocator, pg_*_ownercheck/aclcheck ->
//       object_ownercheck/object_aclcheck, get_guc_variables(int *),
//       simple_heap_update(..., TU_UpdateIndexes *), tree walkers take a
//       typed callback, rd_newRelfilenodeSubid -> rd_newRelfilelocatorSubid.
//   17: BackendId -> ProcNumber (VirtualTransactionId.procNumber),
//       PGPROC.lxid -> PGPROC.vxid.lxid, LockHeldByMe(..., orstronger),
//       pgstat_fetch_stat_local_beentry -> pgstat_get_local_beentry_by_index.
//   18: PortalRun without run_once, RelationGetPrimaryKeyIndex(rel,
//       deferrable_ok), UpdateStmt.returningClause, GetRelationPath returns
//       a struct, pg_attribute_noreturn() -> pg_noreturn.

extern "C" {
#include "postgres.h"
#include "access/heapam.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_database.h"
#include "catalog/pg_namespace.h"
#include "commands/event_trigger.h"
#include "common/relpath.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#if PG_VERSION_NUM < 170000
#include "storage/sinvaladt.h"
#endif
#include "tcop/pquery.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/guc_tables.h"
#include "utils/rel.h"
#include "utils/relcache.h"
}

// A noreturn function definition: `SM_NORETURN void f(...)`.
#if PG_VERSION_NUM >= 180000
#define SM_NORETURN pg_noreturn
#else
#define SM_NORETURN pg_attribute_noreturn()
#endif

// A tree walker `bool fn(Node *, void *)` as the walker APIs take it.
#if PG_VERSION_NUM >= 160000
#define SM_WALKER(fn) (fn)
#else
#define SM_WALKER(fn) ((bool (*)()) (void (*)(void)) (fn))
#endif

// A PG_TRY block nested in another in the same function (e.g. inside
// PG_ENSURE_ERROR_CLEANUP): 16+ name its variables apart (-Wshadow).
#if PG_VERSION_NUM >= 160000
#define SM_PG_TRY_NESTED() PG_TRY(_nested)
#define SM_PG_CATCH_NESTED() PG_CATCH(_nested)
#define SM_PG_END_TRY_NESTED() PG_END_TRY(_nested)
#else
#define SM_PG_TRY_NESTED() PG_TRY()
#define SM_PG_CATCH_NESTED() PG_CATCH()
#define SM_PG_END_TRY_NESTED() PG_END_TRY()
#endif

// pg_collation's column of an ICU (or builtin) locale, for our SQL.
// The wait event class of a buffer pin wait (renamed in 17).
#if PG_VERSION_NUM >= 170000
#define SM_PG_WAIT_BUFFERPIN PG_WAIT_BUFFERPIN
#else
#define SM_PG_WAIT_BUFFERPIN PG_WAIT_BUFFER_PIN
#endif

#if PG_VERSION_NUM >= 170000
#define SM_COLLATION_LOCALE "colllocale"
#else
#define SM_COLLATION_LOCALE "colliculocale"
#endif

namespace safe_migrate::pg::compat {

// ---- backends and virtual transaction ids
#if PG_VERSION_NUM >= 170000
using BackendNum = ProcNumber;
constexpr BackendNum kInvalidBackend = INVALID_PROC_NUMBER;
inline BackendNum my_backend() { return MyProcNumber; }
inline BackendNum vxid_backend(const VirtualTransactionId &v) { return v.procNumber; }
inline void set_vxid_backend(VirtualTransactionId *v, BackendNum b) { v->procNumber = b; }
inline PGPROC *backend_proc(BackendNum b) { return ProcNumberGetProc(b); }
inline LocalTransactionId proc_lxid(const PGPROC *p) { return p->vxid.lxid; }
#else
using BackendNum = BackendId;
constexpr BackendNum kInvalidBackend = InvalidBackendId;
inline BackendNum my_backend() { return MyBackendId; }
inline BackendNum vxid_backend(const VirtualTransactionId &v) { return v.backendId; }
inline void set_vxid_backend(VirtualTransactionId *v, BackendNum b) { v->backendId = b; }
inline PGPROC *backend_proc(BackendNum b) { return BackendIdGetProc(b); }
inline LocalTransactionId proc_lxid(const PGPROC *p) { return p->lxid; }
#endif
// This backend's current local transaction id.
inline LocalTransactionId my_lxid() { return proc_lxid(MyProc); }

// Entry i (1-based) of the local copy of the backend status table.
inline LocalPgBackendStatus *local_beentry(int i)
{
#if PG_VERSION_NUM >= 170000
    return pgstat_get_local_beentry_by_index(i);
#else
    return pgstat_fetch_stat_local_beentry(i);
#endif
}

// Does this transaction hold exactly `mode` on the locktag?
inline bool lock_held_by_me(const LOCKTAG *tag, LOCKMODE mode)
{
#if PG_VERSION_NUM >= 170000
    return LockHeldByMe(tag, mode, false);
#else
    return LockHeldByMe(tag, mode);
#endif
}

// ---- relations
// The main fork's path (palloc'd) of a relation file.
inline char *relation_main_path(Oid spc, Oid db, Oid relnumber, BackendNum backend)
{
#if PG_VERSION_NUM >= 180000
    return pstrdup(GetRelationPath(db, spc, relnumber, backend, MAIN_FORKNUM).str);
#else
    return GetRelationPath(db, spc, relnumber, backend, MAIN_FORKNUM);
#endif
}

// The subtransaction that gave rel a new file in this transaction, if any.
inline SubTransactionId new_file_subid(Relation rel)
{
#if PG_VERSION_NUM >= 160000
    return rel->rd_newRelfilelocatorSubid;
#else
    return rel->rd_newRelfilenodeSubid;
#endif
}

// The primary key index, not a deferrable one (as 15's relcache keeps it).
inline Oid primary_key_index(Relation rel)
{
#if PG_VERSION_NUM >= 180000
    return RelationGetPrimaryKeyIndex(rel, false);
#else
    return RelationGetPrimaryKeyIndex(rel);
#endif
}

// Replaces a tuple; the caller updates no index (the callers' tables are
// changed in place in non-indexed columns, or have no index).
inline void heap_update_in_place(Relation rel, ItemPointer tid, HeapTuple tuple)
{
#if PG_VERSION_NUM >= 160000
    TU_UpdateIndexes update_indexes;
    simple_heap_update(rel, tid, tuple, &update_indexes);
#else
    simple_heap_update(rel, tid, tuple);
#endif
}

// Is a column's NOT NULL (attnotnull) in force for every row?  Before 18
// attnotnull says so.  On 18 a NOT NULL constraint added NOT VALID sets
// attnotnull at once, before any existing row was checked: only its
// validated constraint proves the column.
inline bool not_null_validated(Oid relid, AttrNumber attnum, bool attnotnull)
{
#if PG_VERSION_NUM >= 180000
    if (!attnotnull)
        return false;
    HeapTuple con = findNotNullConstraintAttnum(relid, attnum);
    if (!HeapTupleIsValid(con))
        return true; /* a system column or a catalog's own NOT NULL */
    bool valid = ((Form_pg_constraint) GETSTRUCT(con))->convalidated;
    heap_freetuple(con);
    return valid;
#else
    (void) relid;
    (void) attnum;
    return attnotnull;
#endif
}

// The column a NOT NULL constraint (pg_constraint contype 'n', 18) is
// about; 0 for any other constraint (and always before 18).
inline AttrNumber not_null_constraint_column(HeapTuple contup)
{
#if PG_VERSION_NUM >= 180000
    if (((Form_pg_constraint) GETSTRUCT(contup))->contype == CONSTRAINT_NOTNULL)
        return extractNotNullColumn(contup);
#else
    (void) contup;
#endif
    return 0;
}

// Event triggers turned off by the event_triggers setting (17+; SUSET).
inline bool event_triggers_disabled()
{
#if PG_VERSION_NUM >= 170000
    return !event_triggers;
#else
    return false;
#endif
}

// This transaction's pending statistics of a table, with the counts of each
// live (sub)transaction level (trans); nullptr when it has none.
PgStat_TableStatus *pending_tabstat(Oid relid);
// What this backend's scans read from a relation since its statistics were
// last sent: tuples returned (by sequential scans of a table, by scans of an
// index) and fetched (table rows, through an index or a bitmap).
void pending_reads(Oid relid, int64 *returned, int64 *fetched);

// ---- ownership and privileges
#if PG_VERSION_NUM >= 160000
inline bool database_owner(Oid db, Oid role) { return object_ownercheck(DatabaseRelationId, db, role); }
inline bool namespace_owner(Oid nsp, Oid role) { return object_ownercheck(NamespaceRelationId, nsp, role); }
inline bool class_owner(Oid relid, Oid role) { return object_ownercheck(RelationRelationId, relid, role); }
inline AclResult database_acl(Oid db, Oid role, AclMode mode)
{
    return object_aclcheck(DatabaseRelationId, db, role, mode);
}
#else
inline bool database_owner(Oid db, Oid role) { return pg_database_ownercheck(db, role); }
inline bool namespace_owner(Oid nsp, Oid role) { return pg_namespace_ownercheck(nsp, role); }
inline bool class_owner(Oid relid, Oid role) { return pg_class_ownercheck(relid, role); }
inline AclResult database_acl(Oid db, Oid role, AclMode mode) { return pg_database_aclcheck(db, role, mode); }
#endif

// ---- settings
// All GUC variables (the array stays valid until the next GUC is defined).
inline struct config_generic **guc_variables(int *count)
{
#if PG_VERSION_NUM >= 160000
    return get_guc_variables(count);
#else
    *count = GetNumConfigOptions();
    return get_guc_variables();
#endif
}

// ---- parse trees and portals
// GENERATED ALWAYS AS (...) VIRTUAL (18; its default kind): no value is
// stored, so adding one rewrites nothing.
inline bool generated_virtual(const Constraint *con)
{
#if PG_VERSION_NUM >= 180000
    return con->contype == CONSTR_GENERATED && con->generated_kind == ATTRIBUTE_GENERATED_VIRTUAL;
#else
    (void) con;
    return false;
#endif
}

// ALTER COLUMN ... SET EXPRESSION AS (...) (17).
inline bool is_set_expression(AlterTableType t)
{
#if PG_VERSION_NUM >= 170000
    return t == AT_SetExpression;
#else
    (void) t;
    return false;
#endif
}

inline bool update_has_returning(const UpdateStmt *upd)
{
#if PG_VERSION_NUM >= 180000
    return upd->returningClause != nullptr;
#else
    return upd->returningList != NIL;
#endif
}

inline bool delete_has_returning(const DeleteStmt *del)
{
#if PG_VERSION_NUM >= 180000
    return del->returningClause != nullptr;
#else
    return del->returningList != NIL;
#endif
}

// Runs a started portal to completion, at top level.
inline void portal_run_all(Portal portal, DestReceiver *dest, QueryCompletion *qc)
{
#if PG_VERSION_NUM >= 180000
    (void) PortalRun(portal, FETCH_ALL, true, dest, dest, qc);
#else
    (void) PortalRun(portal, FETCH_ALL, true, true, dest, dest, qc);
#endif
}

}  // namespace safe_migrate::pg::compat
