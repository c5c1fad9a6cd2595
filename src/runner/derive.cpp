/*
 * derive.cpp — down scripts derived from the up script's parse trees, for
 * the DDL whose reverse is certain: CREATE TABLE / INDEX / VIEW / SEQUENCE /
 * FUNCTION / PROCEDURE, ALTER TABLE ADD COLUMN / ADD CONSTRAINT (named),
 * renames of tables, views, sequences, indexes and columns.  Anything else
 * (data changes, IF NOT EXISTS, OR REPLACE, unnamed indexes and constraints,
 * SET) makes the migration underivable: better no down script than a wrong
 * one.
 *
 * Every name in a derived script is schema-qualified, as the statement
 * resolved it when it ran: a down script stored as `DROP TABLE accounts` and
 * run from a session whose search_path finds public.accounts first would
 * drop the wrong table.
 *
 * How names are resolved.  Derivation runs after the up script (see
 * derive.hpp), with the applier's role and search_path, which must be the
 * ones the statements ran with (checked against what
 * capture_name_resolution() recorded before them).  The catalogs then show
 * the state after the LAST statement; the reverse of statement i must name
 * the objects of the state right after statement i, which is the state the
 * down script reaches when it comes to that reverse (it runs newest first).
 * So the statements are reversed from the last to the first while a small
 * overlay undoes, on top of the catalogs, the relation names each later
 * statement changed: a CREATE makes its name absent again, a rename moves
 * the name back.  An unqualified name is then resolved along the search
 * path exactly as the server did, through the overlay.
 *
 * Some relations appear without their names being written: the indexes of
 * PRIMARY KEY / UNIQUE / EXCLUDE constraints, serial and identity
 * sequences, the indexes a partitioned table's index or constraint makes on
 * its partitions.  They are found by their table (its indexes, the
 * sequences it owns): a CREATE TABLE made all of them, so the overlay makes
 * their names absent before it too; after an ALTER TABLE or a CREATE INDEX
 * on a partitioned table any of them may be new, so a name of an earlier
 * statement that resolves to one of them refuses the derivation.  Likewise
 * a type name of a function argument that a later statement may have made
 * appear (a table's or view's row type) or renamed refuses it (sequences
 * and indexes have no row type).
 *
 * The created objects are looked up too: a CREATE whose object is not there
 * (a view that became temporary) or is not what was created refuses.
 * Temporary objects refuse: they do not outlive the session.
 *
 * No C++ object with a destructor lives in this file's frames: PostgreSQL
 * data only, so an ereport can unwind through them.
 */
#include "derive.hpp"
#include "pg/subxact.hpp"

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "catalog/indexing.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
}

namespace safe_migrate::runner {

namespace {

/* A relation name as it stood right after the statement being reversed,
 * where that differs from the catalogs (a later statement changed it). */
struct NameState {
    Oid nsp;
    const char *name;
    Oid relid; /* InvalidOid: the name did not exist then */
};

/* A type name a later statement may have made appear or changed. */
struct LaterName {
    const char *name;
    int stmt;
};

/* A relation a later statement may have made without naming it. */
struct LaterRelation {
    Oid relid;
    int stmt;
};

struct State {
    const NameResolution *res;
    List *overlay;  /* of NameState *, newest first */
    List *implicit; /* of LaterRelation *: made by later statements without a name */
    List *types;    /* of LaterName *: type names later statements made or renamed */
    int stmt;       /* 1-based number of the statement being reversed */
    const char *reason;
    bool drops_table;
    bool drops_column;
};

bool refuse(State *st, const char *reason)
{
    st->reason = reason;
    return false;
}

const char *qualified(Oid nsp, const char *name)
{
    const char *nspname = get_namespace_name(nsp);
    if (nspname == nullptr) /* dropped under us: derive_down_script refuses */
        elog(ERROR, "schema with OID %u does not exist", nsp);
    return quote_qualified_identifier(nspname, name);
}

void later_type(State *st, const char *name)
{
    LaterName *l = (LaterName *) palloc(sizeof(LaterName));
    l->name = pstrdup(name);
    l->stmt = st->stmt;
    st->types = lappend(st->types, l);
}

void set_name(State *st, Oid nsp, const char *name, Oid relid)
{
    NameState *n = (NameState *) palloc(sizeof(NameState));
    n->nsp = nsp;
    n->name = pstrdup(name);
    n->relid = relid;
    st->overlay = lcons(n, st->overlay);
}

/* The relation `name` in schema nsp right after the statement being
 * reversed (InvalidOid: none).  With check_implicit, a relation that a later
 * statement may have created without naming it makes the answer uncertain:
 * false.  (The object a statement itself created or changed needs no such
 * check: it was there right after the statement, and a later implicit
 * relation cannot have taken its name.) */
bool rel_at(State *st, Oid nsp, const char *name, bool check_implicit, Oid *relid)
{
    ListCell *lc;
    bool found = false;
    foreach (lc, st->overlay) {
        NameState *n = (NameState *) lfirst(lc);
        if (n->nsp == nsp && strcmp(n->name, name) == 0) {
            *relid = n->relid;
            found = true;
            break;
        }
    }
    if (!found)
        *relid = get_relname_relid(name, nsp);
    if (OidIsValid(*relid) && check_implicit) {
        foreach (lc, st->implicit) {
            LaterRelation *l = (LaterRelation *) lfirst(lc);
            if (l->relid == *relid)
                return refuse(st, psprintf("statement %d names relation \"%s\", and relation %s "
                                           "may have been created by statement %d after it",
                                           st->stmt, name, qualified(nsp, name), l->stmt));
        }
    }
    return true;
}

/* The name of relation relid right after the statement being reversed. */
const char *name_at(State *st, Oid relid)
{
    ListCell *lc;
    foreach (lc, st->overlay) {
        NameState *n = (NameState *) lfirst(lc);
        if (n->relid == relid)
            return n->name;
    }
    return get_rel_name(relid);
}

/* The relations a table has without naming them: its indexes and the
 * sequences it owns (serial, identity). */
List *unnamed_relations_of(Oid table)
{
    List *out = getOwnedSequences(table);
    Relation rel = table_open(IndexRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_index_indrelid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(table));
    SysScanDesc scan = systable_beginscan(rel, IndexIndrelidIndexId, true, nullptr, 1, &key);
    HeapTuple tup;
    while (HeapTupleIsValid(tup = systable_getnext(scan)))
        out = lappend_oid(out, ((Form_pg_index) GETSTRUCT(tup))->indexrelid);
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return out;
}

/* A CREATE TABLE made all the relations of its table: none was there
 * before it. */
void note_created_with(State *st, Oid table)
{
    ListCell *lc;
    foreach (lc, unnamed_relations_of(table)) {
        Oid relid = lfirst_oid(lc);
        const char *name = name_at(st, relid);
        if (name != nullptr)
            set_name(st, get_rel_namespace(relid), name, InvalidOid);
    }
}

/* An ALTER TABLE, or an index on a partitioned table, may have made any of
 * the relations of the table and of its partitions and children. */
void note_maybe_created(State *st, Oid table)
{
    ListCell *tc;
    foreach (tc, find_all_inheritors(table, NoLock, nullptr)) {
        ListCell *lc;
        foreach (lc, unnamed_relations_of(lfirst_oid(tc))) {
            LaterRelation *l = (LaterRelation *) palloc(sizeof(LaterRelation));
            l->relid = lfirst_oid(lc);
            l->stmt = st->stmt;
            st->implicit = lappend(st->implicit, l);
        }
    }
}

/* "pg_temp" written as a schema: the session's temporary schema. */
bool temp_schema_name(const char *schemaname)
{
    return schemaname != nullptr && strcmp(schemaname, "pg_temp") == 0;
}

/* An existing relation a statement named, as it resolved then, of one of
 * `kinds` (relkinds the statement accepts). */
bool resolve_existing(State *st, const RangeVar *rv, const char *kinds, Oid *nsp, Oid *relid)
{
    if (rv->relpersistence == RELPERSISTENCE_TEMP || temp_schema_name(rv->schemaname))
        return refuse(st, psprintf("statement %d names a temporary relation", st->stmt));
    *relid = InvalidOid;
    if (rv->schemaname) {
        *nsp = get_namespace_oid(rv->schemaname, true);
        if (!OidIsValid(*nsp))
            return refuse(st, psprintf("schema \"%s\" of statement %d does not exist after the "
                                       "up script ran",
                                       rv->schemaname, st->stmt));
        if (!rel_at(st, *nsp, rv->relname, false, relid))
            return false;
    } else {
        /* along the search path, as RelnameGetRelid does */
        for (int k = 0; k < st->res->n_path && !OidIsValid(*relid); k++) {
            *nsp = st->res->path[k];
            if (!rel_at(st, *nsp, rv->relname, true, relid))
                return false;
        }
    }
    if (!OidIsValid(*relid))
        return refuse(st, psprintf("relation \"%s\" of statement %d is not found after the up "
                                   "script ran",
                                   rv->relname, st->stmt));
    if (isAnyTempNamespace(*nsp))
        return refuse(st, psprintf("statement %d names a temporary relation", st->stmt));
    if (strchr(kinds, get_rel_relkind(*relid)) == nullptr)
        return refuse(st, psprintf("relation %s, which statement %d names, is not of a kind "
                                   "that statement changes",
                                   qualified(*nsp, rv->relname), st->stmt));
    return true;
}

/* The schema a statement created an object in. */
bool creation_schema(State *st, const char *schemaname, char relpersistence, Oid *nsp)
{
    if (relpersistence == RELPERSISTENCE_TEMP || temp_schema_name(schemaname))
        return refuse(st, psprintf("statement %d creates a temporary object, which does not "
                                   "outlive its session",
                                   st->stmt));
    if (schemaname) {
        *nsp = get_namespace_oid(schemaname, true);
        if (!OidIsValid(*nsp))
            return refuse(st, psprintf("schema \"%s\" of statement %d does not exist after the "
                                       "up script ran",
                                       schemaname, st->stmt));
    } else {
        *nsp = st->res->creation_namespace;
        if (!OidIsValid(*nsp))
            return refuse(st, psprintf("statement %d creates an object, and the search path "
                                       "names no schema to create in",
                                       st->stmt));
    }
    if (isAnyTempNamespace(*nsp))
        return refuse(st, psprintf("statement %d creates a temporary object, which does not "
                                   "outlive its session",
                                   st->stmt));
    return true;
}

/* The relation a CREATE made: there, right after it, of one of `kinds`. */
bool created_relation(State *st, Oid nsp, const char *name, const char *kinds, Oid *relid)
{
    if (!rel_at(st, nsp, name, false, relid))
        return false;
    if (!OidIsValid(*relid)) {
        /* a view over a temporary table is made temporary */
        for (int k = 0; k < st->res->n_path; k++)
            if (isAnyTempNamespace(st->res->path[k]) &&
                OidIsValid(get_relname_relid(name, st->res->path[k])))
                return refuse(st, psprintf("statement %d created a temporary object, which does "
                                           "not outlive its session",
                                           st->stmt));
    }
    if (!OidIsValid(*relid) || strchr(kinds, get_rel_relkind(*relid)) == nullptr)
        return refuse(st, psprintf("the object statement %d created is not found as %s after "
                                   "the up script ran",
                                   st->stmt, qualified(nsp, name)));
    return true;
}

/* A column or table definition whose identity sequence is named explicitly
 * (SEQUENCE NAME): that name may land anywhere; not followed. */
bool names_a_sequence(List *constraints)
{
    ListCell *lc;
    foreach (lc, constraints) {
        Constraint *c = (Constraint *) lfirst(lc);
        if (c->contype != CONSTR_IDENTITY)
            continue;
        ListCell *oc;
        foreach (oc, c->options) {
            DefElem *d = (DefElem *) lfirst(oc);
            if (strcmp(d->defname, "sequence_name") == 0)
                return true;
        }
    }
    return false;
}

/* Some column of a table definition names its identity sequence. */
bool names_a_sequence_in(List *elts)
{
    ListCell *lc;
    foreach (lc, elts) {
        Node *e = (Node *) lfirst(lc);
        if (IsA(e, ColumnDef) && names_a_sequence(((ColumnDef *) e)->constraints))
            return true;
    }
    return false;
}

const char *relation_keyword(ObjectType t)
{
    switch (t) {
        case OBJECT_TABLE:
            return "TABLE";
        case OBJECT_FOREIGN_TABLE:
            return "FOREIGN TABLE";
        case OBJECT_VIEW:
            return "VIEW";
        case OBJECT_MATVIEW:
            return "MATERIALIZED VIEW";
        case OBJECT_SEQUENCE:
            return "SEQUENCE";
        case OBJECT_INDEX:
            return "INDEX";
        default:
            return nullptr;
    }
}

/* The type of a function argument, as it resolved when the function was
 * created. */
bool argument_type(State *st, TypeName *t, Oid *type)
{
    if (t->pct_type)
        return refuse(st, psprintf("statement %d declares an argument type with %%TYPE",
                                   st->stmt));
    if (list_length(t->names) == 1) {
        const char *written = strVal(linitial(t->names));
        const char *name = written;
        while (*name == '_') /* array types: _name, __name, ... */
            name++;
        /* an array type name of a long name is cut at NAMEDATALEN - 1 */
        bool cut = name != written && strlen(written) >= NAMEDATALEN - 2;
        ListCell *lc;
        foreach (lc, st->types) {
            LaterName *l = (LaterName *) lfirst(lc);
            if (strcmp(l->name, name) == 0 || (cut && strncmp(l->name, name, strlen(name)) == 0))
                return refuse(st, psprintf("statement %d names type \"%s\", which statement %d "
                                           "may have created or renamed after it",
                                           st->stmt, strVal(linitial(t->names)), l->stmt));
        }
    }
    *type = LookupTypeNameOid(nullptr, t, true);
    if (!OidIsValid(*type))
        return refuse(st, psprintf("an argument type of statement %d is not found after the up "
                                   "script ran",
                                   st->stmt));
    HeapTuple tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(*type));
    if (!HeapTupleIsValid(tup))
        return refuse(st, psprintf("an argument type of statement %d is not found after the up "
                                   "script ran",
                                   st->stmt));
    Oid nsp = ((Form_pg_type) GETSTRUCT(tup))->typnamespace;
    ReleaseSysCache(tup);
    if (isAnyTempNamespace(nsp))
        return refuse(st, psprintf("statement %d names a temporary type, which does not outlive "
                                   "its session",
                                   st->stmt));
    return true;
}

/* The reverse of one statement, or NULL (why in st->reason).  Records in st
 * what the statement changed, for the statements before it. */
char *reverse_of(Node *stmt, State *st)
{
    StringInfoData out;
    initStringInfo(&out);
    switch (nodeTag(stmt)) {
        case T_CreateStmt: {
            CreateStmt *s = (CreateStmt *) stmt;
            if (s->if_not_exists) {
                refuse(st, "CREATE TABLE IF NOT EXISTS may not have created the table");
                return nullptr;
            }
            if (names_a_sequence_in(s->tableElts)) {
                refuse(st, psprintf("statement %d names an identity sequence", st->stmt));
                return nullptr;
            }
            Oid nsp, relid;
            if (!creation_schema(st, s->relation->schemaname, s->relation->relpersistence, &nsp) ||
                !created_relation(st, nsp, s->relation->relname, "rp", &relid))
                return nullptr;
            appendStringInfo(&out, "DROP TABLE %s;", qualified(nsp, s->relation->relname));
            st->drops_table = true;
            set_name(st, nsp, s->relation->relname, InvalidOid);
            later_type(st, s->relation->relname);
            note_created_with(st, relid);
            return out.data;
        }
        case T_IndexStmt: {
            IndexStmt *s = (IndexStmt *) stmt;
            if (s->idxname == nullptr || s->if_not_exists) {
                refuse(st, "an index without a name, or IF NOT EXISTS, cannot be dropped for sure");
                return nullptr;
            }
            Oid nsp, table, index;
            if (!resolve_existing(st, s->relation, "rpm", &nsp, &table) ||
                !created_relation(st, nsp, s->idxname, "iI", &index))
                return nullptr;
            if (IndexGetRelation(index, true) != table) {
                refuse(st, psprintf("index %s of statement %d is not on the table it was built "
                                    "on after the up script ran",
                                    qualified(nsp, s->idxname), st->stmt));
                return nullptr;
            }
            appendStringInfo(&out, "DROP INDEX %s%s;", s->concurrent ? "CONCURRENTLY " : "",
                             qualified(nsp, s->idxname));
            set_name(st, nsp, s->idxname, InvalidOid);
            /* on a partitioned table: an index on each partition, made or
             * attached */
            if (get_rel_relkind(table) == RELKIND_PARTITIONED_TABLE)
                note_maybe_created(st, table);
            return out.data;
        }
        case T_ViewStmt: {
            ViewStmt *s = (ViewStmt *) stmt;
            if (s->replace) {
                refuse(st, "CREATE OR REPLACE VIEW may have replaced an older view");
                return nullptr;
            }
            Oid nsp, relid;
            if (!creation_schema(st, s->view->schemaname, s->view->relpersistence, &nsp) ||
                !created_relation(st, nsp, s->view->relname, "v", &relid))
                return nullptr;
            appendStringInfo(&out, "DROP VIEW %s;", qualified(nsp, s->view->relname));
            set_name(st, nsp, s->view->relname, InvalidOid);
            later_type(st, s->view->relname);
            return out.data;
        }
        case T_CreateSeqStmt: {
            CreateSeqStmt *s = (CreateSeqStmt *) stmt;
            if (s->if_not_exists) {
                refuse(st, "CREATE SEQUENCE IF NOT EXISTS may not have created the sequence");
                return nullptr;
            }
            Oid nsp, relid;
            if (!creation_schema(st, s->sequence->schemaname, s->sequence->relpersistence, &nsp) ||
                !created_relation(st, nsp, s->sequence->relname, "S", &relid))
                return nullptr;
            appendStringInfo(&out, "DROP SEQUENCE %s;", qualified(nsp, s->sequence->relname));
            set_name(st, nsp, s->sequence->relname, InvalidOid);
            return out.data;
        }
        case T_CreateFunctionStmt: {
            CreateFunctionStmt *s = (CreateFunctionStmt *) stmt;
            if (s->replace) {
                refuse(st, "CREATE OR REPLACE FUNCTION may have replaced an older function");
                return nullptr;
            }
            const char *schemaname = nullptr;
            const char *name = strVal(llast(s->funcname));
            if (list_length(s->funcname) >= 2)
                schemaname = strVal(list_nth(s->funcname, list_length(s->funcname) - 2));
            Oid nsp;
            if (!creation_schema(st, schemaname, RELPERSISTENCE_PERMANENT, &nsp))
                return nullptr;
            /* the call signature: input arguments (proargtypes) */
            int n = 0;
            Oid *types = (Oid *) palloc(sizeof(Oid) * (list_length(s->parameters) + 1));
            ListCell *lc;
            foreach (lc, s->parameters) {
                FunctionParameter *p = (FunctionParameter *) lfirst(lc);
                if (p->mode == FUNC_PARAM_OUT || p->mode == FUNC_PARAM_TABLE)
                    continue;
                if (!argument_type(st, p->argType, &types[n++]))
                    return nullptr;
            }
            const char *nspname = get_namespace_name(nsp);
            Oid fn = InvalidOid;
            if (nspname) {
                ObjectWithArgs *owa = makeNode(ObjectWithArgs);
                owa->objname = list_make2(makeString(pstrdup(nspname)), makeString(pstrdup(name)));
                for (int k = 0; k < n; k++)
                    owa->objargs = lappend(owa->objargs, makeTypeNameFromOid(types[k], -1));
                fn = LookupFuncWithArgs(s->is_procedure ? OBJECT_PROCEDURE : OBJECT_FUNCTION, owa,
                                        true);
            }
            char kind = s->is_procedure ? PROKIND_PROCEDURE : PROKIND_FUNCTION;
            if (!OidIsValid(fn) || get_func_prokind(fn) != kind) {
                refuse(st, psprintf("the %s statement %d created is not found after the up "
                                    "script ran",
                                    s->is_procedure ? "procedure" : "function", st->stmt));
                return nullptr;
            }
            appendStringInfo(&out, "DROP %s %s;", s->is_procedure ? "PROCEDURE" : "FUNCTION",
                             format_procedure_qualified(fn));
            return out.data;
        }
        case T_RenameStmt: {
            RenameStmt *s = (RenameStmt *) stmt;
            if (s->missing_ok) {
                refuse(st, "ALTER ... IF EXISTS may not have renamed anything");
                return nullptr;
            }
            if (s->relation && s->renameType == OBJECT_COLUMN &&
                relation_keyword(s->relationType) && s->relationType != OBJECT_SEQUENCE &&
                s->relationType != OBJECT_INDEX) {
                Oid nsp, relid;
                if (!resolve_existing(st, s->relation, "rpvmfc", &nsp, &relid))
                    return nullptr;
                appendStringInfo(&out, "ALTER %s %s%s RENAME COLUMN %s TO %s;",
                                 relation_keyword(s->relationType), s->relation->inh ? "" : "ONLY ",
                                 qualified(nsp, s->relation->relname), quote_identifier(s->newname),
                                 quote_identifier(s->subname));
                return out.data;
            }
            if (s->relation && (s->renameType == OBJECT_TABLE || s->renameType == OBJECT_VIEW ||
                                s->renameType == OBJECT_SEQUENCE || s->renameType == OBJECT_INDEX)) {
                const char *from = s->relation->relname;
                const char *to = s->newname;
                if (s->relation->relpersistence == RELPERSISTENCE_TEMP ||
                    temp_schema_name(s->relation->schemaname)) {
                    refuse(st, psprintf("statement %d names a temporary relation", st->stmt));
                    return nullptr;
                }
                /* the schema the old name resolved to, where the new name is now */
                Oid nsp = InvalidOid, relid = InvalidOid;
                if (s->relation->schemaname) {
                    nsp = get_namespace_oid(s->relation->schemaname, true);
                    if (OidIsValid(nsp) && !rel_at(st, nsp, to, false, &relid))
                        return nullptr;
                } else {
                    /* The old name resolved to the first schema of the path
                     * that had it; that schema has the new name now and no
                     * longer the old one, and no schema before it has the old
                     * one.  The renamed relation is among the relations of
                     * the new name in the schemas before the first that has
                     * the old one; more than one: not certain which. */
                    int found = 0;
                    for (int k = 0; k < st->res->n_path; k++) {
                        Oid cand = st->res->path[k];
                        Oid old_rel, new_rel;
                        if (!rel_at(st, cand, from, true, &old_rel))
                            return nullptr;
                        if (OidIsValid(old_rel))
                            break;
                        if (!rel_at(st, cand, to, false, &new_rel))
                            return nullptr;
                        if (OidIsValid(new_rel)) {
                            found++;
                            nsp = cand;
                            relid = new_rel;
                        }
                    }
                    if (found > 1) {
                        refuse(st, psprintf("the relation statement %d renamed to \"%s\" cannot be "
                                            "told apart from another of that name on the search "
                                            "path",
                                            st->stmt, to));
                        return nullptr;
                    }
                }
                if (!OidIsValid(relid)) {
                    refuse(st, psprintf("the relation statement %d renamed is not found as \"%s\" "
                                        "after the up script ran",
                                        st->stmt, to));
                    return nullptr;
                }
                if (isAnyTempNamespace(nsp)) {
                    refuse(st, psprintf("statement %d names a temporary relation", st->stmt));
                    return nullptr;
                }
                appendStringInfo(&out, "ALTER %s %s RENAME TO %s;",
                                 relation_keyword(s->renameType), qualified(nsp, to),
                                 quote_identifier(from));
                set_name(st, nsp, to, InvalidOid);
                set_name(st, nsp, from, relid);
                later_type(st, from);
                later_type(st, to);
                return out.data;
            }
            refuse(st, "only renames of tables, views, sequences, indexes and columns are reversed");
            return nullptr;
        }
        case T_AlterTableStmt: {
            AlterTableStmt *s = (AlterTableStmt *) stmt;
            if (s->missing_ok) {
                refuse(st, "ALTER TABLE IF EXISTS may not have changed anything");
                return nullptr;
            }
            if (s->objtype != OBJECT_TABLE && s->objtype != OBJECT_FOREIGN_TABLE) {
                refuse(st, "only ALTER TABLE and ALTER FOREIGN TABLE are reversed");
                return nullptr;
            }
            Oid nsp, relid;
            if (!resolve_existing(st, s->relation, "rpf", &nsp, &relid))
                return nullptr;
            List *parts = NIL;
            ListCell *lc;
            foreach (lc, s->cmds) {
                AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
                if (cmd->subtype == AT_AddColumn && !cmd->missing_ok) {
                    ColumnDef *cd = (ColumnDef *) cmd->def;
                    if (names_a_sequence(cd->constraints)) {
                        refuse(st, psprintf("statement %d names an identity sequence", st->stmt));
                        return nullptr;
                    }
                    parts = lcons(psprintf("DROP COLUMN %s", quote_identifier(cd->colname)), parts);
                    st->drops_column = true;
                } else if (cmd->subtype == AT_AddConstraint && cmd->def &&
                           IsA(cmd->def, Constraint) && ((Constraint *) cmd->def)->conname &&
                           ((Constraint *) cmd->def)->indexname == nullptr) {
                    Constraint *c = (Constraint *) cmd->def;
                    parts = lcons(psprintf("DROP CONSTRAINT %s", quote_identifier(c->conname)),
                                  parts);
                } else {
                    refuse(st, "only ADD COLUMN and named ADD CONSTRAINT (not USING INDEX) are "
                               "reversed in ALTER TABLE");
                    return nullptr;
                }
            }
            appendStringInfo(&out, "ALTER %s %s%s ", relation_keyword(s->objtype),
                             s->relation->inh ? "" : "ONLY ", qualified(nsp, s->relation->relname));
            bool first = true;
            foreach (lc, parts) {
                appendStringInfo(&out, "%s%s", first ? "" : ", ", (char *) lfirst(lc));
                first = false;
            }
            appendStringInfoChar(&out, ';');
            note_maybe_created(st, relid);
            return out.data;
        }
        default:
            refuse(st, "the statement has no certain reverse");
            return nullptr;
    }
}

NameResolution *capture_now(void)
{
    NameResolution *r = (NameResolution *) palloc0(sizeof(NameResolution));
    r->role = GetUserId();
    List *path = fetch_search_path(true);
    List *explicit_path = fetch_search_path(false);
    r->creation_namespace = explicit_path != NIL ? linitial_oid(explicit_path) : InvalidOid;
    r->n_path = list_length(path);
    r->path = (Oid *) palloc(sizeof(Oid) * (r->n_path + 1));
    for (int i = 0; i < r->n_path; i++)
        r->path[i] = list_nth_oid(path, i);
    return r;
}

/* Same role, creation schema and path.  A temporary schema is left out of
 * the comparison: the script may have made the session's (CREATE TEMP
 * TABLE), and a name that resolves to a temporary schema refuses the
 * derivation anyway. */
bool same_resolution(const NameResolution *a, const NameResolution *b)
{
    if (a->role != b->role || a->creation_namespace != b->creation_namespace)
        return false;
    int i = 0, j = 0;
    for (;;) {
        while (i < a->n_path && isAnyTempNamespace(a->path[i]))
            i++;
        while (j < b->n_path && isAnyTempNamespace(b->path[j]))
            j++;
        if (i == a->n_path || j == b->n_path)
            return i == a->n_path && j == b->n_path;
        if (a->path[i++] != b->path[j++])
            return false;
    }
}

char *derive(const char *up, const NameResolution *at_apply, const char **reason)
{
    if (at_apply == nullptr || at_apply->n_path < 0) {
        *reason = "how names resolved when the up script ran is not known";
        return nullptr;
    }
    List *trees = raw_parser(up, RAW_PARSE_DEFAULT);
    /* a SET changes resolution for the statements after it: say so rather
     * than that the path changed */
    ListCell *lc;
    foreach (lc, trees) {
        if (IsA(lfirst_node(RawStmt, lc)->stmt, VariableSetStmt)) {
            *reason = psprintf("statement %d is a SET, which may change how the names of the "
                               "statements after it resolve",
                               foreach_current_index(lc) + 1);
            return nullptr;
        }
    }
    NameResolution *now = capture_now();
    if (!same_resolution(at_apply, now)) {
        *reason = "the role or the effective search_path changed while the up script ran, so "
                  "its names cannot be resolved for certain";
        return nullptr;
    }
    State st;
    memset(&st, 0, sizeof(st));
    st.res = now;
    List *reversed = NIL;
    for (int i = list_length(trees) - 1; i >= 0; i--) {
        st.stmt = i + 1;
        char *rev = reverse_of(list_nth_node(RawStmt, trees, i)->stmt, &st);
        if (rev == nullptr) {
            *reason = st.reason;
            return nullptr;
        }
        reversed = lappend(reversed, rev);
    }
    if (reversed == NIL) {
        *reason = "the script has no statements";
        return nullptr;
    }
    StringInfoData out;
    initStringInfo(&out);
    appendStringInfoString(&out, "-- derived by safe_migrate from the up script\n");
    /* the down script drops what its up script created: say so for the
     * policy (honoured only for roles that may override, as ever) */
    if (st.drops_table)
        appendStringInfoString(&out, "-- safe_migrate:allow ban-drop-table the derived down script drops the tables its migration created\n");
    if (st.drops_column)
        appendStringInfoString(&out, "-- safe_migrate:allow ban-drop-column the derived down script drops the columns its migration added\n");
    foreach (lc, reversed)
        appendStringInfo(&out, "%s\n", (char *) lfirst(lc));
    return out.data;
}

/* Interrupts and shutdown are not "no down script": they go on. */
void rethrow_if_interrupt(ErrorData *e)
{
    if (e->elevel > ERROR || e->sqlerrcode == ERRCODE_QUERY_CANCELED ||
        e->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN || e->sqlerrcode == ERRCODE_OUT_OF_MEMORY)
        ReThrowError(e);
}

}  // namespace

NameResolution *capture_name_resolution(void)
{
    NameResolution *volatile r = nullptr;
    ErrorData *e = pg::in_subtransaction([&r]() { r = capture_now(); });
    if (e != nullptr) {
        rethrow_if_interrupt(e);
        /* e.g. "pg_temp" first in search_path without the right to create
         * temporary tables: derivation will say it does not know */
        r = (NameResolution *) palloc0(sizeof(NameResolution));
        r->n_path = -1;
    }
    return r;
}

char *derive_down_script(const char *up, const NameResolution *at_apply, const char **reason)
{
    char *volatile result = nullptr;
    const char *volatile why = nullptr;
    ErrorData *e = pg::in_subtransaction([&result, &why, up, at_apply]() {
        const char *w = nullptr;
        result = derive(up, at_apply, &w);
        why = w;
    });
    if (e != nullptr) {
        rethrow_if_interrupt(e);
        *reason = psprintf("deriving it failed: %s", e->message);
        return nullptr;
    }
    if (result == nullptr)
        *reason = why;
    return result;
}

}  // namespace safe_migrate::runner
