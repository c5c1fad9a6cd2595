/*
 * ddllog.cpp — safe_migrate.ddl_log: every DDL statement of every session,
 * written without event triggers.
 *
 * Event triggers were the first way (ddl_command_end with
 * pg_event_trigger_ddl_commands(), sql_drop with
 * pg_event_trigger_dropped_objects()); measured on a DDL-heavy workload they
 * were most of the extension's cost: each invocation makes PostgreSQL bump
 * the command counter, build the SRF's result descriptor from pg_proc and a
 * tuplestore, and, while such a trigger exists, collect an identity for every
 * object any DROP deletes.  Here the facts come from the hooks the extension
 * installs anyway:
 *
 *  - the ProcessUtility hook opens a frame for each utility statement (its
 *    command tag) and closes it when the statement is done; sub-statements
 *    PostgreSQL runs for a statement (the index of a PRIMARY KEY in CREATE
 *    TABLE, the sequence of a serial column) are frames of their own whose
 *    objects join their parent's with their own tag;
 *  - the object access hook adds to the innermost frame every object that
 *    is created (OAT_POST_CREATE), altered (OAT_POST_ALTER) or dropped
 *    (OAT_DROP) other than PostgreSQL's internal housekeeping; a dropped
 *    object's type and identity are read right then, while it still exists;
 *  - when a statement completes, its objects are folded (a column is its
 *    table; a constraint, default, trigger, rule, policy, index, TOAST table,
 *    row type or array type that belongs to another object of the statement
 *    is that object), named, and kept in the transaction's memory;
 *  - at PRE_COMMIT (or PRE_PREPARE) the kept statements are written, one
 *    ddl_entries row per object, the statement's text on its first row
 *    only, heap tuples directly (the table has no index, trigger or policy
 *    to honour).  One table, and no row of its own for a statement: most
 *    statements touch one object, and a row written costs about as much as
 *    the rest of the logging.  A rolled-back subtransaction takes its
 *    statements with it; an aborted transaction writes nothing.  So the log
 *    shows a transaction's DDL once it commits.
 *
 * Temporary objects, shared objects (databases, roles, tablespaces, which
 * the log of one database does not describe), event triggers, and what an
 * extension script creates are not logged, as before.
 */
#include "policy.hpp"
#include "pg/compat.hpp"
#include "pg/guard.hpp"
#include "pg/privileged.hpp"

extern "C" {
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "nodes/makefuncs.h"
#include "catalog/objectaccess.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_am.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_amproc.h"
#include "catalog/pg_attrdef.h"
#include "catalog/pg_cast.h"
#include "catalog/pg_transform.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_conversion.h"
#include "catalog/pg_default_acl.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_language.h"
#include "catalog/pg_largeobject.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_publication.h"
#include "catalog/pg_publication_namespace.h"
#include "catalog/pg_publication_rel.h"
#include "catalog/pg_statistic_ext.h"
#include "catalog/pg_transform.h"
#include "catalog/pg_ts_config.h"
#include "catalog/pg_ts_dict.h"
#include "catalog/pg_ts_parser.h"
#include "catalog/pg_ts_template.h"
#include "catalog/pg_user_mapping.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_rewrite.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/cmdtag.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "access/stratnum.h"
#include "utils/lsyscache.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_type_d.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"
}

namespace safe_migrate::policy {

/* settings of the log (defined with the others in safe_migrate.cpp) */
extern int ddl_log_max_statement_bytes;
extern int ddl_log_retention_min;

namespace {

/* ---------- the log's tables ---------- */

struct LogRelations {
    Oid entries;
    Oid trimmed;
};

/* The columns of ddl_entries, in order, and their types. */
enum {
    kLoggedAt, kXid, kSeq, kRole, kTag, kType, kIdentity, kInExtension, kManaged, kVersion,
    kBytes, kText, kCols
};
const Oid kTypes[kCols] = {TIMESTAMPTZOID, XID8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID,
                           TEXTOID, BOOLOID, BOOLOID, TEXTOID, INT4OID, TEXTOID};
const Oid kTrTypes[1] = {TIMESTAMPTZOID};

/* ---------- names this backend looks up for every statement ----------
 * Kept until a catalog change could make them wrong: a syscache callback
 * (also run when the invalidation queue overflowed) drops them. */

/* Is there a schema safe_migrate in this database (the sign that the
 * extension is; its OID)?  Known: looked up since the last change to
 * pg_namespace. */
bool schema_known = false;
Oid schema_oid = InvalidOid;

/* The last schema a name was made in, its name quoted (nullptr: none). */
Oid quoted_nsp = InvalidOid;
char *quoted_nsp_name = nullptr;

void forget_namespaces(Datum arg, int cacheid, uint32 hashvalue)
{
    schema_known = false;
    quoted_nsp = InvalidOid; /* its string stays allocated, to be reused */
}

Oid log_schema(void)
{
    if (!schema_known) {
        schema_oid = get_namespace_oid("safe_migrate", true);
        schema_known = true;
    }
    return schema_oid;
}

/* quote_identifier() of a schema's name, from the cache above; nullptr
 * when the schema is gone.  Valid until the next call. */
const char *quoted_namespace(Oid nsp)
{
    if (nsp != quoted_nsp || quoted_nsp_name == nullptr) {
        char *name = get_namespace_name(nsp);
        if (name == nullptr)
            return nullptr;
        const char *q = quote_identifier(name);
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        char *copy = pstrdup(q);
        MemoryContextSwitchTo(old);
        if (quoted_nsp_name != nullptr)
            pfree(quoted_nsp_name);
        quoted_nsp_name = copy;
        quoted_nsp = nsp;
        if (q != name)
            pfree((void *) q);
        pfree(name);
    }
    return quoted_nsp_name;
}

/* The current user's name (GetUserNameFromId), until pg_authid changes. */
Oid named_role = InvalidOid;
NameData named_role_name;

void forget_roles(Datum arg, int cacheid, uint32 hashvalue)
{
    named_role = InvalidOid;
}

const NameData *current_role_name(void)
{
    Oid role = GetUserId();
    if (role != named_role) {
        namestrcpy(&named_role_name, GetUserNameFromId(role, false));
        named_role = role;
    }
    return &named_role_name;
}

/* Relations found to have the log's exact shape, in this backend (a
 * backend serves one database).  Re-checked when the name leads elsewhere
 * (the extension dropped and created again). */
Oid shaped[2] = {InvalidOid, InvalidOid};

/*
 * Is relid one of the log's tables, as the extension made it?  The hooks
 * write wherever the schema safe_migrate is, and anyone allowed to create
 * schemas can make one (in a database without the extension): a table of
 * another shape would have our values read as its columns' types.  So:
 * owned by a superuser (no other role can make such a table), a plain
 * table, and exactly these columns (checked once per backend).
 */
bool log_table(Oid relid, int which, const Oid *types, int n)
{
    if (!OidIsValid(relid))
        return false;
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tup))
        return false;
    Form_pg_class c = (Form_pg_class) GETSTRUCT(tup);
    bool ok = c->relkind == RELKIND_RELATION && c->relnatts == n && superuser_arg(c->relowner);
    ReleaseSysCache(tup);
    if (!ok)
        return false;
    if (shaped[which] == relid)
        return true;
    for (int i = 0; ok && i < n; i++) {
        HeapTuple att = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(i + 1));
        if (!HeapTupleIsValid(att))
            return false;
        Form_pg_attribute a = (Form_pg_attribute) GETSTRUCT(att);
        ok = !a->attisdropped && a->atttypid == types[i];
        ReleaseSysCache(att);
    }
    if (ok)
        shaped[which] = relid;
    return ok;
}

/* The log's tables as last found (and checked) in this backend, until a
 * relation cache invalidation touches one of them (dropped, renamed,
 * altered: then they are looked up and checked again). */
bool log_cached = false;
LogRelations cached_log;

void forget_log_relations(Datum arg, Oid relid)
{
    if (!OidIsValid(relid) || relid == cached_log.entries || relid == cached_log.trimmed)
        log_cached = false;
}

bool log_relations(LogRelations *r)
{
    if (log_cached) {
        *r = cached_log;
        return true;
    }
    Oid nsp = log_schema();
    if (!OidIsValid(nsp))
        return false;
    r->entries = get_relname_relid("ddl_entries", nsp);
    r->trimmed = get_relname_relid("ddl_log_trimmed", nsp);
    bool ok = log_table(r->entries, 0, kTypes, kCols) && log_table(r->trimmed, 1, kTrTypes, 1);
    if (ok) {
        cached_log = *r;
        log_cached = true;
    }
    return ok;
}


/* ---------- what a statement touched ---------- */

enum class Touch : char { Created, Altered, Dropped };

struct LogObject {
    ObjectAddress address;   /* a column folded into its table when named */
    Touch touch;
    const char *tag;         /* static: the (sub-)statement's command tag */
    ObjectAddress owner;     /* what it is part of (InvalidOid: nothing) */
    char *type;              /* of a dropped object: read when it went */
    char *identity;
    bool skip;               /* temporary, or not to be logged */
    bool named;              /* a line as it is (GRANT: no object) */
    /* a relation it created, as the relation cache had it right then (no
     * catalog lookup needed to name it) */
    char relkind;            /* '\0': not captured */
    char relpersistence;
    Oid relnamespace;
    Oid indrelid;            /* an index's table */
    char *relname;
    /* a table or view a statement changed (ALTER, COMMENT ...), captured
     * from the catalog row the command has in its cache: its line names it */
    bool from_row;
};

/* A utility statement in progress.  Frames and their objects live in
 * frame_context, which survives the transactions CREATE INDEX CONCURRENTLY
 * and procedures commit in the middle of a statement. */
struct Frame {
    Frame *parent;
    const char *tag;
    bool complete;           /* a statement of its own, not a sub-statement */
    bool renames;            /* may change identities (rename, SET SCHEMA) */
    Node *parsetree;         /* valid while the statement runs */
    bool drops_resolved;     /* DROP TABLE/INDEX/VIEW ...: named looked up */
    List *named_drops;       /* of Oid: the relations it names */
    List *objects;           /* of LogObject * */
};

MemoryContext frame_context = nullptr;
Frame *top_frame = nullptr;
int frame_depth = 0;

/* A completed statement, kept until its transaction commits. */
struct LogEntry {
    TimestampTz at;
    SubTransactionId subxid;
    char *kept;              /* the text kept (nullptr: none) */
    size_t kept_len;
    size_t bytes;            /* length of the whole text */
    bool managed;
    char *version;
    NameData role;
    List *objects;           /* of LogObject * (named, none skipped) */
};

List *pending = NIL;         /* of LogEntry *, in TopTransactionContext */
LocalTransactionId pending_lxid = InvalidLocalTransactionId;
bool log_gone = false;       /* this transaction dropped the log itself */
LocalTransactionId log_gone_lxid = InvalidLocalTransactionId;

List *current_pending(void)
{
    return pending_lxid == pg::compat::my_lxid() ? pending : NIL;
}

/* The kinds of objects the log names: the database's own objects that
 * PostgreSQL can describe.  Not shared objects (databases, roles,
 * tablespaces, settings of roles and databases: the log of one database
 * does not describe them), nor event triggers (as before: event triggers
 * never fired for them). */
bool logged_class(Oid classid)
{
    switch (classid) {
        case RelationRelationId:
        case ProcedureRelationId:
        case TypeRelationId:
        case CastRelationId:
        case CollationRelationId:
        case ConstraintRelationId:
        case ConversionRelationId:
        case AttrDefaultRelationId:
        case LanguageRelationId:
        case LargeObjectRelationId:
        case OperatorRelationId:
        case OperatorClassRelationId:
        case OperatorFamilyRelationId:
        case AccessMethodRelationId:
        case AccessMethodOperatorRelationId:
        case AccessMethodProcedureRelationId:
        case RewriteRelationId:
        case TriggerRelationId:
        case NamespaceRelationId:
        case StatisticExtRelationId:
        case TSParserRelationId:
        case TSDictionaryRelationId:
        case TSTemplateRelationId:
        case TSConfigRelationId:
        case ForeignDataWrapperRelationId:
        case ForeignServerRelationId:
        case UserMappingRelationId:
        case DefaultAclRelationId:
        case ExtensionRelationId:
        case PolicyRelationId:
        case PublicationRelationId:
        case PublicationNamespaceRelationId:
        case PublicationRelRelationId:
        case TransformRelationId:
            return true;
        default:
            return false;
    }
}

/* Statements that never create, alter or drop an object themselves (what
 * they run, a DO block's or a procedure's DDL, opens frames of its own). */
bool frameless(Node *parsetree)
{
    switch (nodeTag(parsetree)) {
        case T_TransactionStmt:
        case T_VariableSetStmt:
        case T_VariableShowStmt:
        case T_ExplainStmt:
        case T_CopyStmt:
        case T_PrepareStmt:
        case T_ExecuteStmt:
        case T_DeallocateStmt:
        case T_NotifyStmt:
        case T_ListenStmt:
        case T_UnlistenStmt:
        case T_LoadStmt:
        case T_CheckPointStmt:
        case T_DiscardStmt:
        case T_LockStmt:
        case T_FetchStmt:
        case T_ClosePortalStmt:
        case T_DeclareCursorStmt:
        case T_CallStmt:
        case T_DoStmt:
        case T_VacuumStmt:
        case T_ClusterStmt:
        case T_ConstraintsSetStmt:
        case T_TruncateStmt:
            return true;
        default:
            return false;
    }
}

/* The relation a trigger, rule, policy, column default or constraint
 * belongs to (InvalidOid: none, or not one of those).  Read by an index scan
 * on the catalog's oid index (not every one of these catalogs has an oid
 * syscache, nor an entry in PostgreSQL's object property table). */
Oid owning_relation(Oid classid, Oid objid)
{
    AttrNumber relcol, oidcol;
    Oid index;
    switch (classid) {
        case TriggerRelationId:
            relcol = Anum_pg_trigger_tgrelid; oidcol = Anum_pg_trigger_oid;
            index = TriggerOidIndexId; break;
        case RewriteRelationId:
            relcol = Anum_pg_rewrite_ev_class; oidcol = Anum_pg_rewrite_oid;
            index = RewriteOidIndexId; break;
        case PolicyRelationId:
            relcol = Anum_pg_policy_polrelid; oidcol = Anum_pg_policy_oid;
            index = PolicyOidIndexId; break;
        case AttrDefaultRelationId:
            relcol = Anum_pg_attrdef_adrelid; oidcol = Anum_pg_attrdef_oid;
            index = AttrDefaultOidIndexId; break;
        default: return InvalidOid;
    }
    Relation catalog = table_open(classid, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, oidcol, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(objid));
    SysScanDesc scan = systable_beginscan(catalog, index, true, nullptr, 1, &key);
    HeapTuple tuple = systable_getnext(scan);
    Oid relid = InvalidOid;
    if (HeapTupleIsValid(tuple)) {
        bool isnull;
        Datum d = heap_getattr(tuple, relcol, RelationGetDescr(catalog), &isnull);
        if (!isnull)
            relid = DatumGetObjectId(d);
    }
    systable_endscan(scan);
    table_close(catalog, AccessShareLock);
    return relid;
}

/* Does the object exist, as this command sees the catalogs? */
bool object_visible(const ObjectAddress *a)
{
    if (a->classId == RelationRelationId)
        return SearchSysCacheExists1(RELOID, ObjectIdGetDatum(a->objectId));
    if (a->classId == TypeRelationId)
        return SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(a->objectId));
    if (a->classId == ProcedureRelationId)
        return SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(a->objectId));
    if (a->classId == ConstraintRelationId)
        return SearchSysCacheExists1(CONSTROID, ObjectIdGetDatum(a->objectId));
    if (a->classId == NamespaceRelationId)
        return SearchSysCacheExists1(NAMESPACEOID, ObjectIdGetDatum(a->objectId));
    if (a->classId == TriggerRelationId || a->classId == RewriteRelationId ||
        a->classId == PolicyRelationId || a->classId == AttrDefaultRelationId)
        return OidIsValid(owning_relation(a->classId, a->objectId));
    if (is_objectclass_supported(a->classId)) {
        int cache = get_object_catcache_oid(a->classId);
        if (cache >= 0)
            return SearchSysCacheExists1(cache, ObjectIdGetDatum(a->objectId));
        Relation catalog = table_open(a->classId, AccessShareLock);
        HeapTuple t = get_catalog_object_by_oid(catalog, get_object_attnum_oid(a->classId),
                                                a->objectId);
        table_close(catalog, AccessShareLock);
        return HeapTupleIsValid(t);
    }
    return true; /* no way to tell: let the naming functions try */
}

/* Is this existing object temporary (in a temporary schema, or part of a
 * temporary table)? */
bool object_is_temporary(Oid classid, Oid objid, Oid owner_rel)
{
    if (classid == RelationRelationId)
        return get_rel_persistence(objid) == RELPERSISTENCE_TEMP;
    if (classid == NamespaceRelationId)
        return isAnyTempNamespace(objid); /* a session's pg_temp_N and its TOAST twin */
    if (OidIsValid(owner_rel))
        return get_rel_persistence(owner_rel) == RELPERSISTENCE_TEMP;
    if (!is_objectclass_supported(classid))
        return false;
    ObjectAddress address = {classid, objid, 0};
    Oid nsp = get_object_namespace(&address);
    return OidIsValid(nsp) && isAnyTempNamespace(nsp);
}

/*
 * What an object is part of, when that makes it not worth a line of its own
 * next to its owner: a column, index, TOAST table, constraint, default,
 * trigger, rule or policy is its table's; a row type is its relation's; an
 * array type its element type's; a domain constraint its domain's.  Also
 * says when the object is never logged (TOAST, a row type, an implicit array
 * type: PostgreSQL's own companions).  The object must still exist.
 */
ObjectAddress owner_of(const ObjectAddress *a, bool *never)
{
    ObjectAddress none = {InvalidOid, InvalidOid, 0};
    *never = false;
    if (a->classId == RelationRelationId) {
        if (a->objectSubId != 0)
            return ObjectAddress{RelationRelationId, a->objectId, 0};
        char kind = get_rel_relkind(a->objectId);
        if (kind == RELKIND_TOASTVALUE || kind == RELKIND_COMPOSITE_TYPE) {
            /* TOAST: PostgreSQL's own; a composite type's relation: the
             * type's line says it */
            *never = true;
            return none;
        }
        if (kind == RELKIND_INDEX || kind == RELKIND_PARTITIONED_INDEX) {
            Oid table = IndexGetRelation(a->objectId, true);
            if (OidIsValid(table))
                return ObjectAddress{RelationRelationId, table, 0};
        }
        if (kind == RELKIND_SEQUENCE) {
            /* a serial or identity column's sequence belongs to its table */
            Oid table;
            int32 column;
            if (sequenceIsOwned(a->objectId, DEPENDENCY_AUTO, &table, &column) ||
                sequenceIsOwned(a->objectId, DEPENDENCY_INTERNAL, &table, &column))
                return ObjectAddress{RelationRelationId, table, 0};
        }
        return none;
    }
    if (a->classId == TypeRelationId) {
        HeapTuple tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(a->objectId));
        if (!HeapTupleIsValid(tup))
            return none;
        Form_pg_type t = (Form_pg_type) GETSTRUCT(tup);
        bool rowtype = OidIsValid(t->typrelid) &&
                       get_rel_relkind(t->typrelid) != RELKIND_COMPOSITE_TYPE;
        Oid elem = t->typelem;
        bool array = OidIsValid(elem) && IsTrueArrayType(t);
        ReleaseSysCache(tup);
        if (rowtype || (array && get_array_type(elem) == a->objectId)) {
            *never = true; /* created, altered and dropped with its owner */
            return none;
        }
        return none;
    }
    if (a->classId == ConstraintRelationId) {
        HeapTuple tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(a->objectId));
        if (!HeapTupleIsValid(tup))
            return none;
        Form_pg_constraint c = (Form_pg_constraint) GETSTRUCT(tup);
        ObjectAddress o = none;
        if (OidIsValid(c->conrelid))
            o = ObjectAddress{RelationRelationId, c->conrelid, 0};
        else if (OidIsValid(c->contypid))
            o = ObjectAddress{TypeRelationId, c->contypid, 0};
        ReleaseSysCache(tup);
        return o;
    }
    Oid rel = owning_relation(a->classId, a->objectId);
    if (OidIsValid(rel))
        return ObjectAddress{RelationRelationId, rel, 0};
    return none;
}

bool type_exists(Oid type)
{
    return !OidIsValid(type) || SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(type));
}

/*
 * Can a dropped object be named right now?  PostgreSQL drops the objects of
 * one DROP one by one, calling the hook before each: by then a function's,
 * operator's or cast's types may be gone already (a base type and its
 * input/output functions depend on each other, so either may go first), and
 * naming it would fail.  Members of an extension are not logged (the
 * extension's line says it); the others are named only when their types
 * are all still there (else they are left out: the object they went with,
 * dropped by the same statement, has its own line).
 */
bool nameable_while_dropping(const ObjectAddress *a)
{
    Oid classid = a->classId;
    if (classid != ProcedureRelationId && classid != OperatorRelationId &&
        classid != CastRelationId && classid != TransformRelationId &&
        classid != TypeRelationId && classid != AccessMethodOperatorRelationId &&
        classid != AccessMethodProcedureRelationId && classid != OperatorClassRelationId &&
        classid != OperatorFamilyRelationId && classid != ConversionRelationId &&
        classid != CollationRelationId && classid != LanguageRelationId &&
        classid != TSParserRelationId && classid != TSDictionaryRelationId &&
        classid != TSTemplateRelationId && classid != TSConfigRelationId)
        return true;
    if (OidIsValid(getExtensionOfObject(classid, a->objectId)))
        return false;
    bool ok = true;
    if (classid == ProcedureRelationId) {
        HeapTuple tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(a->objectId));
        if (!HeapTupleIsValid(tup))
            return false;
        Form_pg_proc p = (Form_pg_proc) GETSTRUCT(tup);
        ok = type_exists(p->prorettype);
        for (int i = 0; ok && i < p->pronargs; i++)
            ok = type_exists(p->proargtypes.values[i]);
        ReleaseSysCache(tup);
    } else if (classid == OperatorRelationId) {
        HeapTuple tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(a->objectId));
        if (!HeapTupleIsValid(tup))
            return false;
        Form_pg_operator o = (Form_pg_operator) GETSTRUCT(tup);
        ok = type_exists(o->oprleft) && type_exists(o->oprright);
        ReleaseSysCache(tup);
    } else if (classid == TypeRelationId) {
        HeapTuple tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(a->objectId));
        if (!HeapTupleIsValid(tup))
            return false;
        Form_pg_type t = (Form_pg_type) GETSTRUCT(tup);
        ok = type_exists(t->typelem);
        ReleaseSysCache(tup);
    } else if (classid == CastRelationId) {
        Relation catalog = table_open(CastRelationId, AccessShareLock);
        HeapTuple tup = get_catalog_object_by_oid(catalog, Anum_pg_cast_oid, a->objectId);
        if (HeapTupleIsValid(tup)) {
            Form_pg_cast c = (Form_pg_cast) GETSTRUCT(tup);
            ok = type_exists(c->castsource) && type_exists(c->casttarget);
        } else
            ok = false;
        table_close(catalog, AccessShareLock);
    } else if (classid == TransformRelationId) {
        HeapTuple tup = SearchSysCache1(TRFOID, ObjectIdGetDatum(a->objectId));
        if (!HeapTupleIsValid(tup))
            return false;
        ok = type_exists(((Form_pg_transform) GETSTRUCT(tup))->trftype);
        ReleaseSysCache(tup);
    } else if (classid != ConversionRelationId && classid != CollationRelationId &&
               classid != LanguageRelationId && classid != OperatorClassRelationId &&
               classid != OperatorFamilyRelationId && classid != TSParserRelationId &&
               classid != TSDictionaryRelationId && classid != TSTemplateRelationId &&
               classid != TSConfigRelationId) {
        /* operator family members: named after types that may be gone;
         * their family has a line of its own */
        ok = false;
    }
    return ok;
}

bool same_object(const ObjectAddress *a, const ObjectAddress *b);

/* getObjectTypeDescription() of a relation, from its kind. */
const char *relkind_type(char relkind)
{
    switch (relkind) {
        case RELKIND_INDEX:
        case RELKIND_PARTITIONED_INDEX: return "index";
        case RELKIND_SEQUENCE: return "sequence";
        case RELKIND_VIEW: return "view";
        case RELKIND_MATVIEW: return "materialized view";
        case RELKIND_FOREIGN_TABLE: return "foreign table";
        default: return "table";
    }
}

/* Is `a` among the frame's created or altered objects, by a (sub-)statement
 * with this tag? */
bool in_frame_as(List *objects, ObjectAddress a, const char *tag)
{
    ListCell *lc;
    foreach (lc, objects) {
        LogObject *x = (LogObject *) lfirst(lc);
        ObjectAddress xa = x->address;
        if (xa.classId == RelationRelationId)
            xa.objectSubId = 0;
        if (x->touch != Touch::Dropped && same_object(&xa, &a) && x->tag == tag)
            return true;
    }
    return false;
}

/* Statements that make a relation (and with it its row type). */
bool makes_relation(const char *tag)
{
    return strcmp(tag, "CREATE TABLE") == 0 || strcmp(tag, "CREATE VIEW") == 0 ||
           strcmp(tag, "CREATE MATERIALIZED VIEW") == 0 || strcmp(tag, "CREATE TABLE AS") == 0 ||
           strcmp(tag, "SELECT INTO") == 0 || strcmp(tag, "CREATE FOREIGN TABLE") == 0;
}

bool same_object(const ObjectAddress *a, const ObjectAddress *b)
{
    return a->classId == b->classId && a->objectId == b->objectId &&
           a->objectSubId == b->objectSubId;
}

/* ---------- frames ---------- */

/*
 * Is `owner` a relation the running DROP TABLE / INDEX / VIEW / ... names?
 * Then what belongs to it (indexes, constraints, defaults, triggers, rules)
 * goes with it and is not named at all: naming a dropped object costs
 * catalog lookups, and these would not get a line.  The names are looked
 * up once, without a lock (the DROP holds them already).
 */
bool part_of_named_drop(Frame *f, const ObjectAddress *owner)
{
    if (owner->classId != RelationRelationId || owner->objectSubId != 0 ||
        !IsA(f->parsetree, DropStmt))
        return false;
    DropStmt *stmt = (DropStmt *) f->parsetree;
    if (!drop_of_relations(stmt->removeType))
        return false;
    if (!f->drops_resolved) {
        f->drops_resolved = true;
        MemoryContext old = MemoryContextSwitchTo(frame_context);
        f->named_drops = relations_a_drop_names(stmt);
        MemoryContextSwitchTo(old);
    }
    return list_member_oid(f->named_drops, owner->objectId);
}

/*
 * Is an object of this class that a DROP TABLE / VIEW / INDEX / SEQUENCE
 * ... without CASCADE deletes always a part of a relation the statement
 * drops (so never a line of its own, and its owner need not be looked up)?
 * Without CASCADE, PostgreSQL deletes besides the named relations only what
 * depends on them automatically or internally: their triggers, rules,
 * policies, defaults, constraints and row types belong to them, or to a
 * relation deleted with them (a partition); a trigger, rule, policy,
 * default or constraint of another table that merely refers to them is a
 * normal dependency, which makes the DROP fail instead.
 */
bool part_of_restrict_drop(Frame *f, Oid classid)
{
    if (classid != TriggerRelationId && classid != RewriteRelationId &&
        classid != PolicyRelationId && classid != AttrDefaultRelationId &&
        classid != ConstraintRelationId && classid != TypeRelationId)
        return false;
    if (!IsA(f->parsetree, DropStmt))
        return false;
    DropStmt *stmt = (DropStmt *) f->parsetree;
    return stmt->behavior == DROP_RESTRICT && drop_of_relations(stmt->removeType);
}

/*
 * Name a table, view, materialized view or foreign table a statement
 * changes from its catalog row as the command has it in its cache right
 * now (the row of the moment: a command's change to it becomes visible at
 * the next command counter increment).  Other kinds keep the catalog
 * lookup after the statement.
 */
void name_from_row(LogObject *o, Oid relid)
{
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tup))
        return;
    Form_pg_class c = (Form_pg_class) GETSTRUCT(tup);
    if (c->relkind == RELKIND_RELATION || c->relkind == RELKIND_PARTITIONED_TABLE ||
        c->relkind == RELKIND_VIEW || c->relkind == RELKIND_MATVIEW ||
        c->relkind == RELKIND_FOREIGN_TABLE) {
        o->relkind = c->relkind;
        o->relpersistence = c->relpersistence;
        o->relnamespace = c->relnamespace;
        o->relname = pstrdup(NameStr(c->relname));
        o->from_row = true;
    }
    ReleaseSysCache(tup);
}

/*
 * Name a relation (not a column) that is being dropped, as
 * getObjectTypeDescription() and getObjectIdentity() would (a temporary one
 * is not logged, so its schema has its own name), from one catalog lookup
 * and the schema's cached quoted name.
 */
void name_dropped_relation(LogObject *o)
{
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(o->address.objectId));
    if (!HeapTupleIsValid(tup)) {
        o->skip = true;
        return;
    }
    Form_pg_class c = (Form_pg_class) GETSTRUCT(tup);
    const char *nsp = quoted_namespace(c->relnamespace);
    if (nsp == nullptr || c->relkind == RELKIND_TOASTVALUE ||
        c->relkind == RELKIND_COMPOSITE_TYPE)
        o->skip = true; /* (never logged: see owner_of) */
    else {
        o->type = pstrdup(relkind_type(c->relkind));
        o->identity = psprintf("%s.%s", nsp, quote_identifier(NameStr(c->relname)));
    }
    ReleaseSysCache(tup);
}

/* The same relation named from its row earlier in this statement (an ALTER
 * TABLE calls the hook for the table and for each column it adds): its
 * name copied, no second lookup.  (A statement that renames is not named
 * this way.) */
bool named_before(Frame *f, LogObject *o)
{
    ListCell *lc;
    foreach (lc, f->objects) {
        LogObject *x = (LogObject *) lfirst(lc);
        if (x->from_row && x->address.classId == RelationRelationId &&
            x->address.objectId == o->address.objectId) {
            o->relkind = x->relkind;
            o->relpersistence = x->relpersistence;
            o->relnamespace = x->relnamespace;
            o->relname = x->relname;
            o->from_row = true;
            return true;
        }
    }
    return false;
}

void collect(ObjectAccessType access, Oid classId, Oid objectId, int subId, void *arg)
{
    Touch touch;
    switch (access) {
        case OAT_POST_CREATE:
            if (arg && ((ObjectAccessPostCreate *) arg)->is_internal)
                return;
            touch = Touch::Created;
            break;
        case OAT_POST_ALTER:
            if (arg && ((ObjectAccessPostAlter *) arg)->is_internal)
                return;
            touch = Touch::Altered;
            break;
        case OAT_DROP:
            if (arg && (((ObjectAccessDrop *) arg)->dropflags & PERFORM_DELETION_INTERNAL) != 0)
                return;
            touch = Touch::Dropped;
            break;
        default:
            return;
    }
    if (creating_extension || !logged_class(classId))
        return;
    /* a column default's hooks name (its table, the column) */
    if (classId == AttrDefaultRelationId && subId != 0)
        classId = RelationRelationId;
    else if (classId != RelationRelationId)
        subId = 0;

    MemoryContext old = MemoryContextSwitchTo(frame_context);
    LogObject *o = (LogObject *) palloc0(sizeof(LogObject));
    o->address = ObjectAddress{classId, objectId, subId};
    o->touch = touch;
    o->tag = top_frame->tag;
    if (touch == Touch::Created && classId == RelationRelationId && subId == 0) {
        /* just built in the relation cache: its name without a catalog
         * lookup (which would miss the cold cache: most of the cost) */
        Relation rel = RelationIdGetRelation(objectId);
        if (RelationIsValid(rel)) {
            o->relkind = rel->rd_rel->relkind;
            o->relpersistence = rel->rd_rel->relpersistence;
            o->relnamespace = rel->rd_rel->relnamespace;
            o->relname = pstrdup(NameStr(rel->rd_rel->relname));
            o->indrelid = rel->rd_index ? rel->rd_index->indrelid : InvalidOid;
            RelationClose(rel);
            /* an index is not complete yet (its pg_index row comes after
             * this hook): its table is looked up later where it is needed,
             * which is not for CREATE INDEX's own (see finish_statement) */
            if (o->relkind == RELKIND_INDEX || o->relkind == RELKIND_PARTITIONED_INDEX)
                if (!OidIsValid(o->indrelid) && strcmp(o->tag, "CREATE INDEX") != 0)
                    o->relkind = '\0';
        }
    }
    /* a table or view an ALTER (or COMMENT, GRANT ...) changes, or a column
     * it adds: named now (after the command, the row's new version is a
     * cold lookup); a rename or a move changes the name, and is looked up
     * after */
    if (classId == RelationRelationId && !top_frame->renames &&
        (touch == Touch::Altered ||
         (touch == Touch::Created && subId != 0 && strncmp(o->tag, "ALTER ", 6) == 0)) &&
        !named_before(top_frame, o))
        name_from_row(o, objectId);
    if (touch == Touch::Dropped && part_of_restrict_drop(top_frame, classId)) {
        o->skip = true;
    } else if (touch == Touch::Dropped) {
        /* the last moment it can be named */
        bool never = false;
        o->owner = owner_of(&o->address, &never);
        if (never || part_of_named_drop(top_frame, &o->owner) ||
            object_is_temporary(classId, objectId,
                                o->owner.classId == RelationRelationId ? o->owner.objectId
                                                                       : InvalidOid))
            o->skip = true;
        else if (!nameable_while_dropping(&o->address))
            o->skip = true;
        else if (classId == RelationRelationId && subId == 0)
            name_dropped_relation(o);
        else {
            o->type = getObjectTypeDescription(&o->address, true);
            o->identity = getObjectIdentity(&o->address, true);
            if (o->type == nullptr)
                o->skip = true;
        }
        /* DROP EXTENSION safe_migrate, or someone dropping the log itself:
         * nothing of this transaction can be written any more */
        if (classId == RelationRelationId && subId == 0 && !o->skip && o->identity &&
            (strcmp(o->identity, "safe_migrate.ddl_entries") == 0 ||
             strcmp(o->identity, "safe_migrate.ddl_log_trimmed") == 0)) {
            log_gone = true;
            log_gone_lxid = pg::compat::my_lxid();
        }
    }
    top_frame->objects = lappend(top_frame->objects, o);
    MemoryContextSwitchTo(old);
}

/* Did this statement drop exactly `a` (a table, not one of its columns)? */
bool dropped_here(List *objects, const ObjectAddress *a)
{
    ListCell *lc;
    foreach (lc, objects) {
        LogObject *o = (LogObject *) lfirst(lc);
        if (o->touch == Touch::Dropped && same_object(&o->address, a))
            return true;
    }
    return false;
}

/* Is `a` (or what it folds into) among the frame's objects with this touch? */
bool in_frame(List *objects, const ObjectAddress *a, bool dropped_only)
{
    ListCell *lc;
    foreach (lc, objects) {
        LogObject *o = (LogObject *) lfirst(lc);
        if (dropped_only && o->touch != Touch::Dropped)
            continue;
        ObjectAddress x = o->address;
        if (x.classId == RelationRelationId)
            x.objectSubId = 0;
        if (same_object(&x, a))
            return true;
    }
    return false;
}

const char *grant_object_type(ObjectType t)
{
    switch (t) {
        case OBJECT_TABLE: return "TABLE";
        case OBJECT_SEQUENCE: return "SEQUENCE";
        case OBJECT_FUNCTION: return "FUNCTION";
        case OBJECT_PROCEDURE: return "PROCEDURE";
        case OBJECT_ROUTINE: return "ROUTINE";
        case OBJECT_SCHEMA: return "SCHEMA";
        case OBJECT_TYPE: return "TYPE";
        case OBJECT_DOMAIN: return "DOMAIN";
        case OBJECT_LANGUAGE: return "LANGUAGE";
        case OBJECT_LARGEOBJECT: return "LARGE OBJECT";
        case OBJECT_FDW: return "FOREIGN DATA WRAPPER";
        case OBJECT_FOREIGN_SERVER: return "FOREIGN SERVER";
        case OBJECT_FOREIGN_TABLE: return "FOREIGN TABLE";
        default: return nullptr; /* databases, tablespaces, settings: shared */
    }
}

/*
 * Statements that change an object without PostgreSQL calling the object
 * access hook for it: COMMENT, SECURITY LABEL and REFRESH MATERIALIZED VIEW
 * name their object; GRANT and REVOKE get one line without an identity
 * (as pg_event_trigger_ddl_commands() reports them).  The object is looked
 * up again the way the command did, under the lock the command holds.
 */
void statement_target(Frame *f)
{
    Node *stmt = f->parsetree;
    ObjectAddress address = {InvalidOid, InvalidOid, 0};
    if (IsA(stmt, CommentStmt) || IsA(stmt, SecLabelStmt)) {
        ObjectType type = IsA(stmt, CommentStmt) ? ((CommentStmt *) stmt)->objtype
                                                 : ((SecLabelStmt *) stmt)->objtype;
        Node *object = IsA(stmt, CommentStmt) ? ((CommentStmt *) stmt)->object
                                              : ((SecLabelStmt *) stmt)->object;
        if (type == OBJECT_DATABASE || type == OBJECT_ROLE || type == OBJECT_TABLESPACE ||
            type == OBJECT_SUBSCRIPTION || type == OBJECT_EVENT_TRIGGER)
            return;
        Relation rel = nullptr;
        address = get_object_address(type, object, &rel, ShareUpdateExclusiveLock, true);
        if (rel != nullptr)
            relation_close(rel, NoLock);
    } else if (IsA(stmt, AlterTableStmt)) {
        /* a subcommand PostgreSQL calls no hook for (DETACH PARTITION, ...) */
        Oid relid = RangeVarGetRelid(((AlterTableStmt *) stmt)->relation, NoLock, true);
        address = ObjectAddress{RelationRelationId, relid, 0};
    } else if (IsA(stmt, ReindexStmt)) {
        /* what it names: an index, a table, a schema (a whole database: a
         * line without an identity) */
        ReindexStmt *r = (ReindexStmt *) stmt;
        if (r->relation != nullptr)
            address = ObjectAddress{RelationRelationId,
                                    RangeVarGetRelid(r->relation, NoLock, true), 0};
        else if (r->kind == REINDEX_OBJECT_SCHEMA && r->name != nullptr)
            address = ObjectAddress{NamespaceRelationId, get_namespace_oid(r->name, true), 0};
        else {
            MemoryContext old = MemoryContextSwitchTo(frame_context);
            LogObject *o = (LogObject *) palloc0(sizeof(LogObject));
            o->touch = Touch::Altered;
            o->tag = f->tag;
            o->type = pstrdup("database");
            o->named = true;
            f->objects = lappend(f->objects, o);
            MemoryContextSwitchTo(old);
            return;
        }
    } else if (IsA(stmt, RefreshMatViewStmt)) {
        Oid relid = RangeVarGetRelid(((RefreshMatViewStmt *) stmt)->relation, NoLock, true);
        address = ObjectAddress{RelationRelationId, relid, 0};
    } else if (IsA(stmt, GrantStmt)) {
        GrantStmt *g = (GrantStmt *) stmt;
        const char *type = grant_object_type(g->objtype);
        if (type == nullptr)
            return;
        /* on temporary tables only: nobody else's business */
        if (g->targtype == ACL_TARGET_OBJECT &&
            (g->objtype == OBJECT_TABLE || g->objtype == OBJECT_SEQUENCE) && g->objects != NIL) {
            bool all_temp = true;
            ListCell *lc;
            foreach (lc, g->objects) {
                Oid relid = RangeVarGetRelid((RangeVar *) lfirst(lc), NoLock, true);
                if (!OidIsValid(relid) || get_rel_persistence(relid) != RELPERSISTENCE_TEMP) {
                    all_temp = false;
                    break;
                }
            }
            if (all_temp)
                return;
        }
        MemoryContext old = MemoryContextSwitchTo(frame_context);
        LogObject *o = (LogObject *) palloc0(sizeof(LogObject));
        o->address = ObjectAddress{InvalidOid, InvalidOid, 0};
        o->touch = Touch::Altered;
        o->tag = f->tag;
        o->type = pstrdup(type);
        o->identity = nullptr;
        o->named = true;
        f->objects = lappend(f->objects, o);
        MemoryContextSwitchTo(old);
        return;
    }
    if (!OidIsValid(address.objectId) || !logged_class(address.classId))
        return;
    MemoryContext old = MemoryContextSwitchTo(frame_context);
    LogObject *o = (LogObject *) palloc0(sizeof(LogObject));
    o->address = address;
    o->touch = Touch::Altered;
    o->tag = f->tag;
    /* COMMENT ON TABLE / COLUMN ... names no new name: the row it found */
    if (address.classId == RelationRelationId && !f->renames)
        name_from_row(o, address.objectId);
    f->objects = lappend(f->objects, o);
    MemoryContextSwitchTo(old);
}

/*
 * A statement is done: name what it created or altered (a dropped object
 * was named when it went), drop the parts whose owner is listed too, and
 * keep the rest for the commit.
 */
void finish_statement(Frame *f)
{
    if (creating_extension)
        return;
    /* REINDEX: the object it names, not the index copies CONCURRENTLY
     * makes and drops on the way */
    if (IsA(f->parsetree, ReindexStmt))
        f->objects = NIL;
    if (f->objects == NIL)
        statement_target(f);
    if (f->objects == NIL)
        return;
    if (log_gone && log_gone_lxid == pg::compat::my_lxid())
        return;

    /* A rename or a move changes identities: make it visible first.  A new
     * object is usually visible already (DDL increments the command
     * counter as it goes); when one is not, increment it once. */
    bool incremented = false;
    if (f->renames) {
        CommandCounterIncrement();
        incremented = true;
    }

    List *kept = NIL;
    ListCell *lc;
    MemoryContext old = MemoryContextSwitchTo(frame_context);
    foreach (lc, f->objects) {
        LogObject *o = (LogObject *) lfirst(lc);
        if (o->skip)
            continue;
        if (o->named) {
            kept = lappend(kept, o);
            continue;
        }
        if (o->touch == Touch::Dropped) {
            /* a part of something this statement dropped goes with it */
            if (OidIsValid(o->owner.classId) && dropped_here(f->objects, &o->owner))
                continue;
            kept = lappend(kept, o);
            continue;
        }
        /* created or altered: fold a column into its table, once */
        ObjectAddress a = o->address;
        if (a.classId == RelationRelationId)
            a.objectSubId = 0;
        bool seen = false;
        ListCell *k;
        foreach (k, kept) {
            LogObject *x = (LogObject *) lfirst(k);
            if (x->touch != Touch::Dropped && same_object(&x->address, &a)) {
                seen = true;
                break;
            }
        }
        if (seen)
            continue;
        /* created and dropped again by the same statement: the drop says it */
        if (in_frame(f->objects, &a, true))
            continue;
        /* what these statements make besides their relation is its row type
         * and its constraints, without a line of their own: known without
         * a catalog lookup (a cold one costs as much as the rest) */
        if (((a.classId == TypeRelationId || a.classId == RewriteRelationId) &&
             makes_relation(o->tag)) ||
            (a.classId == ConstraintRelationId &&
             (makes_relation(o->tag) || strcmp(o->tag, "CREATE INDEX") == 0)))
            continue;
        bool by_alter = strncmp(o->tag, "ALTER ", 6) == 0;
        /* a relation named from what collect found: one this statement
         * created (the relation cache had it), or a table or view it
         * altered (the command's cached row; no owner: not an index,
         * sequence or TOAST table) */
        bool created = o->touch == Touch::Created && o->address.objectSubId == 0 && !by_alter;
        if (o->relkind != '\0' && (created || o->from_row)) {
            if (o->relkind == RELKIND_TOASTVALUE || o->relkind == RELKIND_COMPOSITE_TYPE ||
                o->relpersistence == RELPERSISTENCE_TEMP)
                continue;
            bool index = o->relkind == RELKIND_INDEX || o->relkind == RELKIND_PARTITIONED_INDEX;
            if (index && strcmp(o->tag, "CREATE INDEX") != 0 &&
                in_frame_as(f->objects, ObjectAddress{RelationRelationId, o->indrelid, 0}, o->tag))
                continue; /* the index of a constraint its table's statement made */
            const char *nsp = quoted_namespace(o->relnamespace);
            if (nsp == nullptr)
                continue;
            LogObject *n = (LogObject *) palloc0(sizeof(LogObject));
            *n = *o;
            n->address = a;
            n->type = pstrdup(relkind_type(o->relkind));
            /* (quote_qualified_identifier builds it in a 1 kB StringInfo:
             * a block of its own per name in the frame's small context) */
            n->identity = psprintf("%s.%s", nsp, quote_identifier(o->relname));
            kept = lappend(kept, n);
            continue;
        }
        if (!object_visible(&a)) {
            if (incremented)
                continue; /* gone again */
            CommandCounterIncrement();
            incremented = true;
            if (!object_visible(&a))
                continue;
        }
        bool never = false;
        /* an index CREATE INDEX made has its line, whoever owns it */
        ObjectAddress owner = a.classId == RelationRelationId && strcmp(o->tag, "CREATE INDEX") == 0
                                  ? ObjectAddress{InvalidOid, InvalidOid, 0}
                                  : owner_of(&a, &never);
        if (never)
            continue;
        if (OidIsValid(owner.classId)) {
            /* a part of another object of this statement: the owner's line
             * says it (an index has a line of its own when a statement of
             * its own made it: the PRIMARY KEY of a CREATE TABLE) */
            bool owner_here = false;
            ListCell *m;
            foreach (m, f->objects) {
                LogObject *x = (LogObject *) lfirst(m);
                ObjectAddress xa = x->address;
                if (xa.classId == RelationRelationId)
                    xa.objectSubId = 0;
                if (x->touch != Touch::Dropped && same_object(&xa, &owner) &&
                    (a.classId != RelationRelationId || x->tag == o->tag)) {
                    owner_here = true;
                    break;
                }
            }
            if (owner_here)
                continue;
            /* what an ALTER did to a part (ADD CONSTRAINT, a default, an
             * index of a constraint) is a line for the object it altered */
            if (strncmp(o->tag, "ALTER ", 6) == 0 && object_visible(&owner)) {
                bool folded_seen = false;
                foreach (m, kept) {
                    LogObject *x = (LogObject *) lfirst(m);
                    if (x->touch != Touch::Dropped && same_object(&x->address, &owner)) {
                        folded_seen = true;
                        break;
                    }
                }
                if (folded_seen)
                    continue;
                a = owner;
                owner = owner_of(&a, &never);
                if (never)
                    continue;
            }
        }
        char *type = getObjectTypeDescription(&a, true);
        if (type == nullptr)
            continue;
        if (object_is_temporary(a.classId, a.objectId,
                                owner.classId == RelationRelationId ? owner.objectId
                                                                    : InvalidOid))
            continue;
        LogObject *n = (LogObject *) palloc0(sizeof(LogObject));
        *n = *o;
        n->address = a;
        n->type = type;
        n->identity = getObjectIdentity(&a, true);
        kept = lappend(kept, n);
    }
    MemoryContextSwitchTo(old);
    if (kept == NIL)
        return;

    /* keep it for the commit, in the transaction's memory */
    old = MemoryContextSwitchTo(TopTransactionContext);
    if (pending_lxid != pg::compat::my_lxid()) {
        pending = NIL;
        pending_lxid = pg::compat::my_lxid();
    }
    LogEntry *e = (LogEntry *) palloc0(sizeof(LogEntry));
    e->at = GetCurrentTimestamp();
    e->subxid = GetCurrentSubTransactionId();
    const char *text = migration.statement ? migration.statement : debug_query_string;
    e->bytes = text ? strlen(text) : 0;
    if (text != nullptr && ddl_log_max_statement_bytes > 0) {
        size_t n = Min(e->bytes, (size_t) ddl_log_max_statement_bytes);
        if (n < e->bytes) /* cut at a character boundary */
            n = pg_mbcliplen(text, (int) e->bytes, (int) n);
        e->kept = pnstrdup(text, n);
        e->kept_len = n;
    }
    e->managed = migration.active;
    e->version = migration.version ? pstrdup(migration.version) : nullptr;
    e->role = *current_role_name();
    foreach (lc, kept) {
        LogObject *o = (LogObject *) lfirst(lc);
        LogObject *c = (LogObject *) palloc(sizeof(LogObject));
        *c = *o;
        c->type = pstrdup(o->type);
        c->identity = o->identity ? pstrdup(o->identity) : nullptr;
        e->objects = lappend(e->objects, c);
    }
    pending = lappend(pending, e);
    MemoryContextSwitchTo(old);
}

void pop_frame(bool completed)
{
    Frame *f = top_frame;
    top_frame = f->parent;
    frame_depth--;
    if (completed) {
        if (f->complete || top_frame == nullptr)
            finish_statement(f);
        else if (f->objects != NIL) {
            /* a sub-statement's objects are its parent's, with their tag */
            MemoryContext old = MemoryContextSwitchTo(frame_context);
            top_frame->objects = list_concat(top_frame->objects, f->objects);
            MemoryContextSwitchTo(old);
        }
    }
    if (top_frame == nullptr)
        MemoryContextReset(frame_context);
}

/* ---------- writing at commit ---------- */

bool same_statement(const LogEntry *a, const LogEntry *b)
{
    return a->bytes == b->bytes && a->managed == b->managed && a->kept_len == b->kept_len &&
           (a->kept == nullptr) == (b->kept == nullptr) &&
           (a->kept == nullptr || memcmp(a->kept, b->kept, a->kept_len) == 0) &&
           ((a->version == nullptr && b->version == nullptr) ||
            (a->version && b->version && strcmp(a->version, b->version) == 0));
}

void maybe_trim_log(const LogRelations *r);

void write_pending(void)
{
    List *entries = current_pending();
    pending = NIL;
    if (entries == NIL || (log_gone && log_gone_lxid == pg::compat::my_lxid()))
        return;
    LogRelations r;
    if (!log_relations(&r))
        return;
    FullTransactionId xid = GetTopFullTransactionId();
    /* PostgreSQL's assertion-enabled builds check that an insert into a
     * table with TOAST has a snapshot (newer releases check every such
     * insert, a short row's too): at commit the statement's own is gone
     * (and CREATE INDEX CONCURRENTLY never had one).  An insert reads no
     * TOAST data (storing a value needs no snapshot), so other builds are
     * spared taking one at every commit. */
    bool pushed = false;
#ifdef USE_ASSERT_CHECKING
    if (!ActiveSnapshotSet()) {
        PushActiveSnapshot(GetTransactionSnapshot());
        pushed = true;
    }
#endif
    Relation log = table_open(r.entries, RowExclusiveLock);
    TupleDesc desc = RelationGetDescr(log);
    const LogEntry *prev = nullptr;
    int32 seq = 0;
    TimestampTz last_at = 0;
    ListCell *lc;
    foreach (lc, entries) {
        const LogEntry *e = (const LogEntry *) lfirst(lc);
        /* one text per statement: the statements of one query string (and
         * the same migration) share it, on the first row */
        bool carries_text = prev == nullptr || !same_statement(prev, e);
        if (carries_text)
            seq++;
        prev = e;
        ListCell *oc;
        foreach (oc, e->objects) {
            const LogObject *o = (const LogObject *) lfirst(oc);
            /* strictly increasing times keep the order of the statements */
            TimestampTz at = e->at > last_at ? e->at : last_at + 1;
            last_at = at;
            Datum values[kCols];
            bool nulls[kCols] = {false};
            values[kLoggedAt] = TimestampTzGetDatum(at);
            values[kXid] = FullTransactionIdGetDatum(xid);
            values[kSeq] = Int32GetDatum(seq);
            /* text, not name: 64 bytes of every row (a quarter of it, and of
             * its WAL) were padding */
            values[kRole] = CStringGetTextDatum(NameStr(e->role));
            values[kTag] = CStringGetTextDatum(o->tag ? o->tag : "");
            values[kType] = CStringGetTextDatum(o->type);
            if (o->identity)
                values[kIdentity] = CStringGetTextDatum(o->identity);
            else
                nulls[kIdentity] = true;
            values[kInExtension] = BoolGetDatum(false);
            values[kManaged] = BoolGetDatum(e->managed);
            if (e->version)
                values[kVersion] = CStringGetTextDatum(e->version);
            else
                nulls[kVersion] = true;
            if (carries_text) {
                values[kBytes] = Int32GetDatum((int32) Min(e->bytes, (size_t) PG_INT32_MAX));
                if (e->kept)
                    values[kText] = PointerGetDatum(
                        cstring_to_text_with_len(e->kept, (int) e->kept_len));
                else
                    nulls[kText] = true;
                carries_text = false;
            } else {
                nulls[kBytes] = true;
                nulls[kText] = true;
            }
            HeapTuple tuple = heap_form_tuple(desc, values, nulls);
            simple_heap_insert(log, tuple);
            heap_freetuple(tuple);
        }
    }
    table_close(log, NoLock);
    /* whoever writes to the log keeps it trimmed */
    maybe_trim_log(&r);
    if (pushed)
        PopActiveSnapshot();
}

void at_xact_event(XactEvent event, void *arg)
{
    switch (event) {
        case XACT_EVENT_PRE_COMMIT:
        case XACT_EVENT_PRE_PREPARE:
            if (pending != NIL)
                write_pending();
            break;
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PREPARE:
        case XACT_EVENT_PARALLEL_COMMIT:
        case XACT_EVENT_PARALLEL_ABORT:
            pending = NIL; /* its memory is gone with the transaction */
            log_gone = false;
            break;
        default:
            break;
    }
}

void at_subxact_event(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid,
                      void *arg)
{
    if (event != SUBXACT_EVENT_ABORT_SUB || current_pending() == NIL)
        return;
    /* statements of mySubid or of its children (larger ids) are undone */
    List *keep = NIL;
    ListCell *lc;
    MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
    foreach (lc, pending) {
        LogEntry *e = (LogEntry *) lfirst(lc);
        if (e->subxid < mySubid)
            keep = lappend(keep, e);
    }
    MemoryContextSwitchTo(old);
    pending = keep;
}

/* ---------- retention ---------- */

constexpr int64 kTrimEveryUs = 10 * 60 * USECS_PER_SEC;   /* the log is trimmed this often */
constexpr int64 kTrimCheckEveryUs = 60 * USECS_PER_SEC;   /* a session looks this often */
constexpr int64 kTrimMaxRows = 10000;                     /* per trim */
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
    int64 deleted = delete_older(r->entries, kLoggedAt + 1, cutoff, kTrimMaxRows);
    /* all done: record it; else the next look (a minute later) goes on */
    if (deleted < kTrimMaxRows && ItemPointerIsValid(&tid)) {
        Datum values[1] = {TimestampTzGetDatum(now)};
        bool nulls[1] = {false};
        HeapTuple tuple = heap_form_tuple(RelationGetDescr(trimmed), values, nulls);
        pg::compat::heap_update_in_place(trimmed, &tid, tuple);
        heap_freetuple(tuple);
    }
    /* the lock stays until the end of the transaction */
    table_close(trimmed, NoLock);
    return deleted;
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

}  // namespace

/* ---------- the hooks' side ---------- */

bool ddl_log_begin(Node *parsetree, int context_arg)
{
    if (frameless(parsetree) || !IsTransactionState())
        return false;
    /* nothing to log in a database without the extension: its schema (a
     * member of the extension) is the cheap sign, one syscache probe */
    if (!OidIsValid(log_schema()))
        return false;
    if (frame_context == nullptr)
        frame_context = AllocSetContextCreate(TopMemoryContext, "safe_migrate ddl_log frames",
                                              ALLOCSET_SMALL_SIZES);
    Frame *f = (Frame *) MemoryContextAllocZero(frame_context, sizeof(Frame));
    f->parent = top_frame;
    f->tag = GetCommandTagName(CreateCommandTag(parsetree));
    f->complete = (ProcessUtilityContext) context_arg != PROCESS_UTILITY_SUBCOMMAND;
    f->renames = IsA(parsetree, RenameStmt) || IsA(parsetree, AlterObjectSchemaStmt);
    f->parsetree = parsetree;
    top_frame = f;
    frame_depth++;
    return true;
}

void ddl_log_end(void)
{
    pop_frame(true);
}

void ddl_log_abandon(void)
{
    pop_frame(false);
}

void ddl_log_object(int access_arg, Oid classId, Oid objectId, int subId, void *arg)
{
    if (top_frame != nullptr)
        collect((ObjectAccessType) access_arg, classId, objectId, subId, arg);
}

Node *ddl_log_current_statement(void)
{
    return top_frame != nullptr ? top_frame->parsetree : nullptr;
}

void install_ddl_log_hooks(void)
{
    CacheRegisterRelcacheCallback(forget_log_relations, (Datum) 0);
    CacheRegisterSyscacheCallback(NAMESPACENAME, forget_namespaces, (Datum) 0);
    CacheRegisterSyscacheCallback(NAMESPACEOID, forget_namespaces, (Datum) 0);
    CacheRegisterSyscacheCallback(AUTHOID, forget_roles, (Datum) 0);
    RegisterXactCallback(at_xact_event, nullptr);
    RegisterSubXactCallback(at_subxact_event, nullptr);
}

}  // namespace safe_migrate::policy

using namespace safe_migrate::policy;

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
