/*
 * facts.cpp — facts for the rules, read off the parse tree PostgreSQL hands
 * the event trigger (never re-parsed) and off the catalogs, without taking
 * any lock: the statement itself has not locked anything yet, and taking a
 * weaker lock first would turn two concurrent ALTERs into a deadlock.
 */
#include "policy.hpp"

extern "C" {
#include "access/genam.h"
#include "catalog/index.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "parser/parse_type.h"
#include "tcop/tcopprot.h"
#include "pgstat.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "commands/tablespace.h"
#include "common/relpath.h"
#include "nodes/nodeFuncs.h"
#include "storage/bufmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
}

#include <sys/stat.h>

namespace safe_migrate::policy {

using core_action = int;
/* core::Action values (see core/policy.hpp) */
enum : core_action {
    kOther = 0,
    kAddColumn,
    kAddCheck,
    kAddForeignKey,
    kAddUniqueOrPrimary,
    kSetNotNull,
    kDropColumn,
    kDropTable,
    kRenameColumn,
    kRenameTable,
    kCreateIndex,
    kDropIndex,
    kReindex,
    kSetTablespace,
    kVacuumFull,
    kCluster,
    kTruncate,
    kTableRewrite,
    kLargeDml,
    kValidateConstraint
};

/* Bytes on disk of a relation's main fork, summing its 1 GB segments,
 * read with stat(): no lock, no error if a file is gone. */
static int64 main_fork_bytes(Form_pg_class cls, Oid relid)
{
    if (cls->relfilenode == InvalidOid)
        return 0; /* partitioned table, view, ... */
    RelFileNode node;
    node.spcNode = OidIsValid(cls->reltablespace) ? cls->reltablespace : MyDatabaseTableSpace;
    node.dbNode = cls->relisshared ? InvalidOid : MyDatabaseId;
    node.relNode = cls->relfilenode;
    BackendId backend = cls->relpersistence == RELPERSISTENCE_TEMP ? MyBackendId : InvalidBackendId;
    char *path = relpathbackend(node, backend, MAIN_FORKNUM);
    int64 total = 0;
    for (int segment = 0;; segment++) {
        char *file = segment == 0 ? pstrdup(path) : psprintf("%s.%d", path, segment);
        struct stat st;
        bool found = stat(file, &st) == 0;
        pfree(file);
        if (!found)
            break;
        total += st.st_size;
    }
    pfree(path);
    return total;
}

/* Rows and bytes of one relation: statistics scaled to its size on disk. */
static void relation_size(Form_pg_class cls, Oid relid, double *rows, int64 *bytes)
{
    int64 b = main_fork_bytes(cls, relid);
    double pages_now = (double) b / BLCKSZ;
    /* Statistics when they exist; the real size when they are missing or
     * stale: rows per page from the statistics, else 256 rows per page (the
     * densest a heap page gets), so a never-analyzed table is never taken
     * for a small one. */
    double density = cls->relpages > 0 && cls->reltuples > 0 ? cls->reltuples / cls->relpages
                                                               : BLCKSZ / 32.0;
    double r = density * pages_now;
    if (cls->reltuples > r)
        r = cls->reltuples;
    *rows = r;
    *bytes = b;
}

void table_facts(Oid relid, const char *written_name, pg::PolicyFacts *f)
{
    f->table = written_name;

    /* created in this transaction: only this transaction can see it, every
     * rule exempts it, and nothing else needs looking up */
    Relation rel = RelationIdGetRelation(relid);
    if (RelationIsValid(rel)) {
        f->created_in_transaction = rel->rd_createSubid != InvalidSubTransactionId &&
                                    rel->rd_createSubid >= new_objects_from;
        RelationClose(rel);
    }
    if (f->created_in_transaction && f->table != nullptr)
        return;

    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tup))
        return;
    Form_pg_class cls = (Form_pg_class) GETSTRUCT(tup);
    if (f->table == nullptr)
        f->table = quote_qualified_identifier(get_namespace_name(cls->relnamespace),
                                              NameStr(cls->relname));
    f->temporary = cls->relpersistence == RELPERSISTENCE_TEMP;
    f->partitioned = cls->relkind == RELKIND_PARTITIONED_TABLE;
    bool has_children = cls->relhassubclass;
    relation_size(cls, relid, &f->rows, &f->bytes);
    ReleaseSysCache(tup);

    /* A statement on a parent works on its partitions or children too:
     * count them all (found without locking them). */
    if (has_children) {
        List *all = find_all_inheritors(relid, NoLock, nullptr);
        ListCell *lc;
        foreach (lc, all) {
            Oid child = lfirst_oid(lc);
            if (child == relid)
                continue;
            HeapTuple ct = SearchSysCache1(RELOID, ObjectIdGetDatum(child));
            if (!HeapTupleIsValid(ct))
                continue;
            double rows;
            int64 bytes;
            relation_size((Form_pg_class) GETSTRUCT(ct), child, &rows, &bytes);
            f->rows += rows;
            f->bytes += bytes;
            ReleaseSysCache(ct);
        }
    }

}

/* A type as the user would write it: "integer", "character varying(100)". */
static const char *type_text(TypeName *tn)
{
    int32 typmod;
    Type tup = LookupTypeName(nullptr, tn, &typmod, true);
    if (tup == nullptr)
        return TypeNameToString(tn);
    Oid typid = typeTypeId(tup);
    ReleaseSysCache(tup);
    return format_type_with_typemod(typid, typmod);
}

static const char *written(const RangeVar *rv)
{
    return rv->schemaname ? quote_qualified_identifier(rv->schemaname, rv->relname)
                          : quote_identifier(rv->relname);
}

static void init_facts(pg::PolicyFacts *f, core_action action)
{
    memset(f, 0, sizeof(*f));
    f->action = action;
    f->fk_columns_indexed = true;
}

static void string_list(List *names, pg::PolicyFacts *f)
{
    f->n_columns = list_length(names);
    f->columns = (const char **) palloc0(sizeof(char *) * (f->n_columns + 1));
    for (int i = 0; i < f->n_columns; i++) {
        Node *n = (Node *) list_nth(names, i);
        f->columns[i] = IsA(n, String) ? quote_identifier(strVal(n)) : "?";
    }
}

/* Does a validated CHECK (col IS NOT NULL) prove the column has no NULLs? */
static bool not_null_proven(Oid relid, AttrNumber attnum)
{
    bool proven = false;
    Relation conrel = table_open(ConstraintRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(relid));
    SysScanDesc scan = systable_beginscan(conrel, ConstraintRelidTypidNameIndexId, true, nullptr, 1, &key);
    HeapTuple tup;
    while (!proven && HeapTupleIsValid(tup = systable_getnext(scan))) {
        Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
        if (con->contype != CONSTRAINT_CHECK || !con->convalidated)
            continue;
        bool isnull;
        Datum bin = heap_getattr(tup, Anum_pg_constraint_conbin, RelationGetDescr(conrel), &isnull);
        if (isnull)
            continue;
        Node *expr = (Node *) stringToNode(TextDatumGetCString(bin));
        if (IsA(expr, NullTest)) {
            NullTest *nt = (NullTest *) expr;
            if (nt->nulltesttype == IS_NOT_NULL && !nt->argisrow && IsA(nt->arg, Var) &&
                ((Var *) nt->arg)->varattno == attnum)
                proven = true;
        }
    }
    systable_endscan(scan);
    table_close(conrel, AccessShareLock);
    return proven;
}

/* Does an index of the table start with exactly these columns (any order)? */
static bool columns_indexed(Oid relid, List *names)
{
    int n = list_length(names);
    if (n == 0)
        return true;
    AttrNumber *atts = (AttrNumber *) palloc(sizeof(AttrNumber) * n);
    for (int i = 0; i < n; i++) {
        atts[i] = get_attnum(relid, strVal(list_nth(names, i)));
        if (atts[i] == InvalidAttrNumber)
            return false; /* a column added by this very statement */
    }
    bool found = false;
    Relation indrel = table_open(IndexRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_index_indrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
    SysScanDesc scan = systable_beginscan(indrel, IndexIndrelidIndexId, true, nullptr, 1, &key);
    HeapTuple tup;
    while (!found && HeapTupleIsValid(tup = systable_getnext(scan))) {
        Form_pg_index idx = (Form_pg_index) GETSTRUCT(tup);
        if (!idx->indisvalid || idx->indnkeyatts < n)
            continue;
        bool all = true;
        for (int k = 0; k < n && all; k++) {
            bool in_fk = false;
            for (int i = 0; i < n; i++)
                in_fk |= idx->indkey.values[k] == atts[i];
            all = in_fk;
        }
        found = all;
    }
    systable_endscan(scan);
    table_close(indrel, AccessShareLock);
    return found;
}

bool foreign_key_columns_indexed(Oid relid, List *names)
{
    return columns_indexed(relid, names);
}

/* foreign-key-missing-index, judged at the end (timing.cpp): the key exists
 * and no index serves it.  Only that rule: the scan was judged when the
 * key was added. */
void check_foreign_key_index(Oid relid, const char *table, const char *referenced_table,
                             List *names)
{
    pg::PolicyFacts f;
    init_facts(&f, kAddForeignKey);
    f.not_valid = true;
    f.fk_columns_indexed = false;
    f.referenced_table = referenced_table && *referenced_table ? referenced_table : nullptr;
    string_list(names, &f);
    table_facts(relid, table && *table ? table : nullptr, &f);
    enforce(&f);
}

/* Rows and bytes of a table created in this transaction (table_facts does
 * not look: every rule exempts it). */
static void new_table_size(Oid relid, double *rows, int64 *bytes)
{
    *rows = 0;
    *bytes = 0;
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tup))
        return;
    relation_size((Form_pg_class) GETSTRUCT(tup), relid, rows, bytes);
    ReleaseSysCache(tup);
}

/* Does the column being added get a value in existing rows?  PostgreSQL
 * skips the validation of a foreign key on a column it adds without a
 * default (every value is NULL: transformAlterTableStmt). */
static bool added_column_filled(const ColumnDef *def)
{
    if (def->raw_default != nullptr || def->generated)
        return true;
    ListCell *lc;
    foreach (lc, def->constraints) {
        ConstrType t = ((Constraint *) lfirst(lc))->contype;
        if (t == CONSTR_DEFAULT || t == CONSTR_GENERATED)
            return true;
    }
    return false;
}

/* The CHECK expression as the user wrote it, from the statement's text. */
static const char *check_text(const Constraint *con)
{
    const char *src = migration.statement ? migration.statement : debug_query_string;
    if (src == nullptr || con->raw_expr == nullptr)
        return nullptr;
    int loc = exprLocation(con->raw_expr);
    int len = (int) strlen(src);
    if (loc < 0 || loc >= len)
        return nullptr;
    /* the expression ends where its enclosing parenthesis closes */
    int depth = 0;
    bool quoted = false;
    int i = loc;
    for (; i < len; i++) {
        char c = src[i];
        if (quoted) {
            if (c == '\'')
                quoted = false;
            continue;
        }
        if (c == '\'')
            quoted = true;
        else if (c == '(')
            depth++;
        else if (c == ')') {
            if (depth == 0)
                break;
            depth--;
        }
    }
    if (i >= len)
        return nullptr;
    return pnstrdup(src + loc, i - loc);
}

static void check_constraint(Oid relid, const char *table, const char *column,
                             const Constraint *con, const ColumnDef *newcol = nullptr)
{
    pg::PolicyFacts f;
    Oid confrelid = InvalidOid;
    List *fk_names = NIL;
    bool fk_indexed = true;
    switch (con->contype) {
        case CONSTR_CHECK:
            init_facts(&f, kAddCheck);
            f.not_valid = con->skip_validation;
            f.expression = check_text(con);
            break;
        case CONSTR_FOREIGN:
            /* a referenced table that does not exist: PostgreSQL says so */
            confrelid = RangeVarGetRelid(con->pktable, NoLock, true);
            if (!OidIsValid(confrelid))
                return;
            init_facts(&f, kAddForeignKey);
            f.not_valid = con->skip_validation;
            /* a column added without a default holds only NULLs: no scan */
            if (newcol != nullptr && !added_column_filled(newcol))
                f.not_valid = true;
            f.referenced_table = written(con->pktable);
            if (con->fk_attrs != NIL) {
                string_list(con->fk_attrs, &f);
                fk_names = con->fk_attrs;
                fk_indexed = columns_indexed(relid, con->fk_attrs);
            } else if (column) { /* inline REFERENCES on ADD COLUMN */
                f.n_columns = 1;
                f.columns = (const char **) palloc(sizeof(char *));
                f.columns[0] = column;
                fk_names = list_make1(makeString(pstrdup(newcol ? newcol->colname : column)));
                fk_indexed = false;
            }
            /* whether an index serves the key is judged at the end of the
             * migration (timing.cpp); migrate_plan judges it here */
            f.fk_columns_indexed = plan_capture == nullptr || fk_indexed;
            break;
        case CONSTR_PRIMARY:
        case CONSTR_UNIQUE:
        case CONSTR_EXCLUSION:
            init_facts(&f, kAddUniqueOrPrimary);
            f.using_index = con->indexname != nullptr;
            if (con->keys != NIL)
                string_list(con->keys, &f);
            else if (column) {
                f.n_columns = 1;
                f.columns = (const char **) palloc(sizeof(char *));
                f.columns[0] = column;
            }
            break;
        default:
            return;
    }
    f.constraint = con->conname ? quote_identifier(con->conname) : nullptr;
    table_facts(relid, table, &f);
    bool new_table = f.created_in_transaction || f.temporary;
    if (con->contype == CONSTR_FOREIGN && f.created_in_transaction && !f.temporary &&
        !f.not_valid) {
        /* A table this transaction created and filled (CREATE TABLE AS):
         * validating the key scans its rows while the existing referenced
         * table is held in SHARE ROW EXCLUSIVE.  The exemption of new
         * tables must not hide that lock. */
        Relation ref = RelationIdGetRelation(confrelid);
        bool ref_new = false;
        if (RelationIsValid(ref)) {
            ref_new = ref->rd_createSubid != InvalidSubTransactionId &&
                      ref->rd_createSubid >= new_objects_from;
            RelationClose(ref);
        }
        if (!ref_new && confrelid != relid) {
            f.created_in_transaction = false;
            new_table_size(relid, &f.rows, &f.bytes);
        }
    }
    enforce(&f);
    if (con->contype == CONSTR_FOREIGN && plan_capture == nullptr && !new_table && !fk_indexed &&
        fk_names != NIL)
        defer_foreign_key_index(relid, confrelid, fk_names, table, f.referenced_table);
}

static void check_alter_table(AlterTableStmt *stmt)
{
    if (stmt->objtype != OBJECT_TABLE)
        return;
    Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
    if (!OidIsValid(relid))
        return; /* the statement reports it */
    const char *table = written(stmt->relation);
    ListCell *lc;
    foreach (lc, stmt->cmds) {
        AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
        pg::PolicyFacts f;
        switch (cmd->subtype) {
            case AT_AddColumn: {
                ColumnDef *def = (ColumnDef *) cmd->def;
                init_facts(&f, kAddColumn);
                f.column = quote_identifier(def->colname);
                f.column_type = def->typeName ? type_text(def->typeName) : nullptr;
                f.has_default = def->raw_default != nullptr || def->identity || def->generated;
                ListCell *cc;
                foreach (cc, def->constraints) {
                    Constraint *con = (Constraint *) lfirst(cc);
                    if (con->contype == CONSTR_NOTNULL || con->contype == CONSTR_PRIMARY)
                        f.not_null = true;
                    if (con->contype == CONSTR_DEFAULT || con->contype == CONSTR_IDENTITY ||
                        con->contype == CONSTR_GENERATED)
                        f.has_default = true;
                }
                if (def->is_not_null)
                    f.not_null = true;
                table_facts(relid, table, &f);
                enforce(&f);
                /* (ADD COLUMN IF NOT EXISTS of a column that exists adds nothing) */
                if (!f.created_in_transaction && !f.temporary &&
                    get_attnum(relid, def->colname) == InvalidAttrNumber)
                    note_added_column(relid, def->colname);
                foreach (cc, def->constraints)
                    check_constraint(relid, table, f.column, (Constraint *) lfirst(cc), def);
                break;
            }
            case AT_AddConstraint:
                if (cmd->def && IsA(cmd->def, Constraint))
                    check_constraint(relid, table, nullptr, (Constraint *) cmd->def);
                break;
            case AT_SetNotNull: {
                AttrNumber att = get_attnum(relid, cmd->name);
                if (att == InvalidAttrNumber)
                    break; /* PostgreSQL reports it */
                init_facts(&f, kSetNotNull);
                f.column = quote_identifier(cmd->name);
                f.not_null_proven = att != InvalidAttrNumber && not_null_proven(relid, att);
                table_facts(relid, table, &f);
                enforce(&f);
                break;
            }
            case AT_ValidateConstraint: {
                if (!OidIsValid(get_relation_constraint_oid(relid, cmd->name, true)))
                    break; /* PostgreSQL reports it */
                /* the scan is cheap on locks only if nothing before it in
                 * this transaction took ACCESS EXCLUSIVE on the table */
                LOCKTAG tag;
                SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
                init_facts(&f, kValidateConstraint);
                f.constraint = quote_identifier(cmd->name);
                f.holds_exclusive_lock = LockHeldByMe(&tag, AccessExclusiveLock);
                table_facts(relid, table, &f);
                enforce(&f);
                break;
            }
            case AT_DropColumn:
                /* IF EXISTS of a column that does not: nothing dropped;
                 * without IF EXISTS PostgreSQL reports it */
                if (get_attnum(relid, cmd->name) == InvalidAttrNumber)
                    break;
                /* a column this migration added holds no one's data yet */
                if (is_added_column(relid, cmd->name))
                    break;
                init_facts(&f, kDropColumn);
                f.column = quote_identifier(cmd->name);
                table_facts(relid, table, &f);
                enforce(&f);
                break;
            case AT_SetTableSpace: {
                /* moving to where it already is copies nothing */
                Oid target = get_tablespace_oid(cmd->name, true);
                if (!OidIsValid(target))
                    break; /* PostgreSQL reports that it does not exist */
                Oid current = get_rel_tablespace(relid);
                if (!OidIsValid(current))
                    current = MyDatabaseTableSpace;
                if (target == current)
                    break;
                init_facts(&f, kSetTablespace);
                table_facts(relid, table, &f);
                enforce(&f);
                break;
            }
            default:
                break;
        }
    }
}

static void check_index(IndexStmt *stmt)
{
    Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
    char kind = OidIsValid(relid) ? get_rel_relkind(relid) : '\0';
    if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE && kind != RELKIND_MATVIEW)
        return;
    pg::PolicyFacts f;
    init_facts(&f, kCreateIndex);
    f.concurrently = stmt->concurrent;
    f.index = stmt->idxname ? quote_identifier(stmt->idxname) : nullptr;
    List *cols = NIL;
    ListCell *lc;
    foreach (lc, stmt->indexParams) {
        IndexElem *e = (IndexElem *) lfirst(lc);
        cols = lappend(cols, makeString(e->name ? e->name : pstrdup("(expression)")));
    }
    string_list(cols, &f);
    table_facts(relid, written(stmt->relation), &f);
    enforce(&f);
}

static void check_drop(DropStmt *stmt)
{
    if (stmt->removeType != OBJECT_TABLE && stmt->removeType != OBJECT_INDEX)
        return;
    ListCell *lc;
    foreach (lc, stmt->objects) {
        RangeVar *rv = makeRangeVarFromNameList((List *) lfirst(lc));
        Oid relid = RangeVarGetRelid(rv, NoLock, true);
        if (!OidIsValid(relid))
            continue;
        pg::PolicyFacts f;
        if (stmt->removeType == OBJECT_TABLE) {
            if (get_rel_relkind(relid) != RELKIND_RELATION &&
                get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
                continue;
            init_facts(&f, kDropTable);
            table_facts(relid, written(rv), &f);
        } else {
            Oid table = IndexGetRelation(relid, true);
            if (!OidIsValid(table))
                continue;
            init_facts(&f, kDropIndex);
            f.index = written(rv);
            f.concurrently = stmt->concurrent;
            table_facts(table, nullptr, &f);
        }
        enforce(&f);
    }
}

/* RENAME COLUMN of a column that does not exist (PostgreSQL reports it) or
 * that this migration added (nobody uses it yet). */
static bool renamed_column_is_new(Oid relid, const char *name, const char *new_name)
{
    if (get_attnum(relid, name) == InvalidAttrNumber)
        return true;
    return renames_added_column(relid, name, new_name);
}

static void check_rename(RenameStmt *stmt)
{
    if (stmt->relation == nullptr)
        return;
    bool table = stmt->renameType == OBJECT_TABLE;
    bool column = stmt->renameType == OBJECT_COLUMN && stmt->relationType == OBJECT_TABLE;
    if (!table && !column)
        return;
    Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
    if (!OidIsValid(relid))
        return;
    if (column && renamed_column_is_new(relid, stmt->subname, stmt->newname))
        return;
    pg::PolicyFacts f;
    init_facts(&f, table ? kRenameTable : kRenameColumn);
    f.new_name = quote_identifier(stmt->newname);
    if (column)
        f.column = quote_identifier(stmt->subname);
    table_facts(relid, written(stmt->relation), &f);
    enforce(&f);
}

void check_parsetree(Node *parsetree)
{
    switch (nodeTag(parsetree)) {
        case T_AlterTableStmt:
            check_alter_table((AlterTableStmt *) parsetree);
            break;
        case T_IndexStmt:
            check_index((IndexStmt *) parsetree);
            break;
        case T_DropStmt:
            check_drop((DropStmt *) parsetree);
            break;
        case T_RenameStmt:
            check_rename((RenameStmt *) parsetree);
            break;
        default:
            break;
    }
}

void check_table_rewrite(Oid relid, int reasons, Node *parsetree)
{
    pg::PolicyFacts f;
    init_facts(&f, kTableRewrite);
    f.rewrite_reasons = reasons;
    const char *table = nullptr;
    if (parsetree && IsA(parsetree, AlterTableStmt)) {
        AlterTableStmt *stmt = (AlterTableStmt *) parsetree;
        table = written(stmt->relation);
        ListCell *lc;
        foreach (lc, stmt->cmds) {
            AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
            if (cmd->subtype == AT_AlterColumnType && (reasons & 0x04)) {
                f.type_change = true;
                f.column = quote_identifier(cmd->name);
                ColumnDef *def = (ColumnDef *) cmd->def;
                if (def && def->typeName)
                    f.column_type = type_text(def->typeName);
            }
        }
    }
    table_facts(relid, table, &f);
    enforce(&f);
}

static void check_relation_by_rangevar(RangeVar *rv, core_action action, bool concurrently,
                                       const char *index)
{
    Oid relid = RangeVarGetRelid(rv, NoLock, true);
    if (!OidIsValid(relid))
        return;
    pg::PolicyFacts f;
    init_facts(&f, action);
    f.concurrently = concurrently;
    f.index = index;
    table_facts(relid, written(rv), &f);
    enforce(&f);
}

/* Statements event triggers do not see (TRUNCATE, VACUUM, CLUSTER, REINDEX
 * in PostgreSQL 15), checked from the ProcessUtility hook. */
void check_utility(Node *parsetree)
{
    switch (nodeTag(parsetree)) {
        case T_TruncateStmt: {
            ListCell *lc;
            foreach (lc, ((TruncateStmt *) parsetree)->relations)
                check_relation_by_rangevar((RangeVar *) lfirst(lc), kTruncate, false, nullptr);
            break;
        }
        case T_VacuumStmt: {
            VacuumStmt *stmt = (VacuumStmt *) parsetree;
            bool full = false;
            ListCell *lc;
            foreach (lc, stmt->options) {
                DefElem *opt = (DefElem *) lfirst(lc);
                if (strcmp(opt->defname, "full") == 0)
                    full = opt->arg == nullptr || defGetBoolean(opt);
            }
            if (!stmt->is_vacuumcmd || !full)
                break;
            foreach (lc, stmt->rels) {
                VacuumRelation *vr = (VacuumRelation *) lfirst(lc);
                if (vr->relation)
                    check_relation_by_rangevar(vr->relation, kVacuumFull, false, nullptr);
            }
            break;
        }
        case T_ClusterStmt: {
            ClusterStmt *stmt = (ClusterStmt *) parsetree;
            if (stmt->relation)
                check_relation_by_rangevar(stmt->relation, kCluster, false, nullptr);
            break;
        }
        case T_ReindexStmt: {
            ReindexStmt *stmt = (ReindexStmt *) parsetree;
            bool concurrently = false;
            ListCell *lc;
            foreach (lc, stmt->params) {
                DefElem *opt = (DefElem *) lfirst(lc);
                if (strcmp(opt->defname, "concurrently") == 0)
                    concurrently = opt->arg == nullptr || defGetBoolean(opt);
            }
            if (stmt->relation == nullptr)
                break;
            if (stmt->kind == REINDEX_OBJECT_TABLE) {
                check_relation_by_rangevar(stmt->relation, kReindex, concurrently, nullptr);
            } else if (stmt->kind == REINDEX_OBJECT_INDEX) {
                Oid idx = RangeVarGetRelid(stmt->relation, NoLock, true);
                Oid table = OidIsValid(idx) ? IndexGetRelation(idx, true) : InvalidOid;
                if (!OidIsValid(table))
                    break;
                pg::PolicyFacts f;
                init_facts(&f, kReindex);
                f.concurrently = concurrently;
                f.index = written(stmt->relation);
                table_facts(table, nullptr, &f);
                enforce(&f);
            }
            break;
        }
        default:
            break;
    }
}

void check_large_dml_on(Oid relid, double rows, bool is_delete)
{
    pg::PolicyFacts f;
    init_facts(&f, kLargeDml);
    f.rows_affected = rows;
    f.is_delete = is_delete;
    table_facts(relid, nullptr, &f);
    enforce(&f);
}

void check_large_dml(RawStmt *raw, double rows)
{
    /* migrate_plan predicts from the statement and its estimate (plan.cpp) */
    if (!migration.active)
        return;
    /* what the executor changed, whatever the statement's spelling (dml.cpp);
     * without track_counts only the statement's own count is known */
    if (pgstat_track_counts && plan_capture == nullptr) {
        check_changed_rows();
        return;
    }
    if (!(rows > (double) large_table_rows))
        return;
    RangeVar *rv = IsA(raw->stmt, UpdateStmt)   ? ((UpdateStmt *) raw->stmt)->relation
                   : IsA(raw->stmt, DeleteStmt) ? ((DeleteStmt *) raw->stmt)->relation
                                                : nullptr;
    if (rv == nullptr)
        return;
    Oid relid = RangeVarGetRelid(rv, NoLock, true);
    if (!OidIsValid(relid))
        return;
    pg::PolicyFacts f;
    init_facts(&f, kLargeDml);
    f.rows_affected = rows;
    f.is_delete = IsA(raw->stmt, DeleteStmt);
    table_facts(relid, written(rv), &f);
    enforce(&f);
}

}  // namespace safe_migrate::policy
