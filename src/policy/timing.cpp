/*
 * timing.cpp — verdicts that belong to the end of a migration, not to the
 * statement that happens to come first.
 *
 * foreign-key-missing-index: whether an index serves a foreign key is a
 * fact about the schema the migration leaves behind.  The index, or a
 * UNIQUE constraint, often comes later in the same migration (a CREATE
 * INDEX CONCURRENTLY step after the constraint), or in the same statement
 * (ADD COLUMN x int UNIQUE REFERENCES ...).  So a foreign key without an
 * index is noted when it is added and judged at the end of the migration
 * (finish_migration_checks, called by both paths after the last statement),
 * or at the commit of its transaction outside a migration -- if the
 * constraint still exists then, and still has no index.
 *
 * Columns added by the migration: nobody uses them yet, so renaming or
 * dropping one breaks nothing.  They are noted per migration (per
 * transaction outside one), under their current name, with the
 * subtransaction that added them: migrate_test's down and up-again steps
 * (new_objects_from) see the up's columns as committed, as they would be.
 */
#include "policy.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_constraint.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
}

namespace safe_migrate::policy {

namespace {

struct PendingForeignKey {
    bool in_migration;      /* judged at the end of the migration, else at commit */
    Oid relid;
    Oid confrelid;
    List *columns;          /* of char * (names as in the catalog) */
    List *earlier;          /* oids of such keys that existed before it */
    char *table;            /* as written */
    char *referenced_table; /* as written */
};

struct AddedColumn {
    bool in_migration;
    SubTransactionId subid; /* that added it */
    Oid relid;
    char *name;
};

/* A table a migration created (by name: it is created after its
 * ddl_command_start), exempt like a new table in its later steps too */
struct CreatedTable {
    SubTransactionId subid; /* that created it (migrate_test: the up's are not new to the down) */
    Oid nsp;
    char *name;
};

List *created_tables = NIL; /* of CreatedTable *, TopMemoryContext, in a migration */
List *pending_fks = NIL;   /* of PendingForeignKey *, TopMemoryContext */
List *added_columns = NIL; /* of AddedColumn *, TopMemoryContext */
bool callback_registered = false;

void free_fk(PendingForeignKey *p)
{
    list_free_deep(p->columns);
    list_free(p->earlier);
    pfree(p->table);
    pfree(p->referenced_table);
    pfree(p);
}

/* Keep the entries of the other kind (in a migration or not). */
void forget(bool in_migration)
{
    if (in_migration) {
        ListCell *cc;
        foreach (cc, created_tables) {
            CreatedTable *t = (CreatedTable *) lfirst(cc);
            pfree(t->name);
            pfree(t);
        }
        list_free(created_tables);
        created_tables = NIL;
    }
    if (pending_fks == NIL && added_columns == NIL)
        return;
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    List *keep = NIL;
    ListCell *lc;
    foreach (lc, pending_fks) {
        PendingForeignKey *p = (PendingForeignKey *) lfirst(lc);
        if (p->in_migration == in_migration)
            free_fk(p);
        else
            keep = lappend(keep, p);
    }
    list_free(pending_fks);
    pending_fks = keep;
    keep = NIL;
    foreach (lc, added_columns) {
        AddedColumn *a = (AddedColumn *) lfirst(lc);
        if (a->in_migration == in_migration) {
            pfree(a->name);
            pfree(a);
        } else
            keep = lappend(keep, a);
    }
    list_free(added_columns);
    added_columns = keep;
    MemoryContextSwitchTo(old);
}

/* The foreign keys of relid to confrelid on exactly these columns (oids). */
List *foreign_keys(Oid relid, Oid confrelid, const AttrNumber *atts, int n)
{
    List *found = NIL;
    Relation conrel = table_open(ConstraintRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(relid));
    SysScanDesc scan =
        systable_beginscan(conrel, ConstraintRelidTypidNameIndexId, true, nullptr, 1, &key);
    HeapTuple tup;
    while (HeapTupleIsValid(tup = systable_getnext(scan))) {
        Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
        if (con->contype != CONSTRAINT_FOREIGN || con->confrelid != confrelid)
            continue;
        bool isnull;
        Datum d = heap_getattr(tup, Anum_pg_constraint_conkey, RelationGetDescr(conrel), &isnull);
        if (isnull)
            continue;
        ArrayType *arr = DatumGetArrayTypeP(d);
        int nkeys = ARR_DIMS(arr)[0];
        const int16 *keys = (const int16 *) ARR_DATA_PTR(arr);
        if (nkeys != n)
            continue;
        bool all = true;
        for (int i = 0; i < n && all; i++) {
            bool in = false;
            for (int k = 0; k < nkeys; k++)
                in |= keys[k] == atts[i];
            all = in;
        }
        if (all)
            found = lappend_oid(found, con->oid);
    }
    systable_endscan(scan);
    table_close(conrel, AccessShareLock);
    return found;
}

void judge(List *entries)
{
    ListCell *lc;
    foreach (lc, entries) {
        PendingForeignKey *p = (PendingForeignKey *) lfirst(lc);
        if (!OidIsValid(get_rel_namespace(p->relid)))
            continue; /* dropped since */
        int n = list_length(p->columns);
        AttrNumber *atts = (AttrNumber *) palloc(sizeof(AttrNumber) * (n + 1));
        bool all = true;
        for (int i = 0; i < n && all; i++) {
            atts[i] = get_attnum(p->relid, (char *) list_nth(p->columns, i));
            all = atts[i] != InvalidAttrNumber;
        }
        /* the key this migration added: rolled back, dropped or replaced
         * since, nothing to judge */
        if (!all)
            continue;
        List *now = foreign_keys(p->relid, p->confrelid, atts, n);
        bool added = false;
        ListCell *oc;
        foreach (oc, now)
            added |= !list_member_oid(p->earlier, lfirst_oid(oc));
        if (!added)
            continue;
        List *names = NIL;
        ListCell *cc;
        foreach (cc, p->columns)
            names = lappend(names, makeString((char *) lfirst(cc)));
        if (foreign_key_columns_indexed(p->relid, names))
            continue;
        check_foreign_key_index(p->relid, p->table, p->referenced_table, names);
    }
}

void at_commit(XactEvent event, void *)
{
    switch (event) {
        case XACT_EVENT_PRE_COMMIT:
        case XACT_EVENT_PARALLEL_PRE_COMMIT: {
            if (pending_fks == NIL)
                break;
            /* judge the transaction's own entries; the migration's wait
             * for its end */
            List *mine = NIL;
            ListCell *lc;
            foreach (lc, pending_fks)
                if (!((PendingForeignKey *) lfirst(lc))->in_migration)
                    mine = lappend(mine, lfirst(lc));
            if (mine == NIL)
                break;
            /* forget them first: an ERROR (the rule set to error) must not
             * leave them for the next transaction */
            List *copy = NIL;
            MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
            foreach (lc, mine) {
                PendingForeignKey *p = (PendingForeignKey *) lfirst(lc);
                PendingForeignKey *c = (PendingForeignKey *) palloc(sizeof(*c));
                *c = *p;
                c->columns = NIL;
                c->earlier = list_copy(p->earlier);
                ListCell *cc;
                foreach (cc, p->columns)
                    c->columns = lappend(c->columns, pstrdup((char *) lfirst(cc)));
                c->table = pstrdup(p->table);
                c->referenced_table = pstrdup(p->referenced_table);
                copy = lappend(copy, c);
            }
            MemoryContextSwitchTo(old);
            list_free(mine);
            forget(false);
            judge(copy);
            break;
        }
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_COMMIT:
        case XACT_EVENT_PARALLEL_ABORT:
        case XACT_EVENT_PREPARE:
            forget(false);
            break;
        default:
            break;
    }
}

void ensure_callback(void)
{
    if (!callback_registered) {
        RegisterXactCallback(at_commit, nullptr);
        callback_registered = true;
    }
}

}  // namespace

void defer_foreign_key_index(Oid relid, Oid confrelid, List *column_names, const char *table,
                             const char *referenced_table)
{
    ensure_callback();
    bool in_migration = migration.active;
    /* the same key noted again (a retried attempt): once */
    ListCell *lc;
    foreach (lc, pending_fks) {
        PendingForeignKey *p = (PendingForeignKey *) lfirst(lc);
        if (p->in_migration != in_migration || p->relid != relid || p->confrelid != confrelid ||
            list_length(p->columns) != list_length(column_names))
            continue;
        bool same = true;
        for (int i = 0; i < list_length(column_names) && same; i++)
            same = strcmp((char *) list_nth(p->columns, i),
                          strVal(list_nth(column_names, i))) == 0;
        if (same)
            return;
    }
    /* the keys on these columns that exist already (the statement has not
     * run yet): at the end, only a new one is this statement's */
    List *earlier = NIL;
    int n = list_length(column_names);
    AttrNumber *atts = (AttrNumber *) palloc(sizeof(AttrNumber) * (n + 1));
    bool all = true;
    for (int i = 0; i < n && all; i++) {
        atts[i] = get_attnum(relid, strVal(list_nth(column_names, i)));
        all = atts[i] != InvalidAttrNumber;
    }
    if (all)
        earlier = foreign_keys(relid, confrelid, atts, n);
    pfree(atts);
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    PendingForeignKey *p = (PendingForeignKey *) palloc0(sizeof(PendingForeignKey));
    p->in_migration = in_migration;
    p->relid = relid;
    p->confrelid = confrelid;
    foreach (lc, column_names)
        p->columns = lappend(p->columns, pstrdup(strVal(lfirst(lc))));
    p->earlier = list_copy(earlier);
    p->table = pstrdup(table ? table : "");
    p->referenced_table = pstrdup(referenced_table ? referenced_table : "");
    pending_fks = lappend(pending_fks, p);
    MemoryContextSwitchTo(old);
}

void finish_migration_checks(void)
{
    if (!migration.active || pending_fks == NIL)
        return;
    List *mine = NIL;
    ListCell *lc;
    foreach (lc, pending_fks)
        if (((PendingForeignKey *) lfirst(lc))->in_migration)
            mine = lappend(mine, lfirst(lc));
    judge(mine);
    list_free(mine);
    forget(true);
}

void forget_migration_checks(void)
{
    forget(true);
}

void note_added_column(Oid relid, const char *name)
{
    ensure_callback();
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    AddedColumn *a = (AddedColumn *) palloc(sizeof(AddedColumn));
    a->in_migration = migration.active;
    a->subid = GetCurrentSubTransactionId();
    a->relid = relid;
    a->name = pstrdup(name);
    added_columns = lappend(added_columns, a);
    MemoryContextSwitchTo(old);
}

bool renames_added_column(Oid relid, const char *name, const char *new_name)
{
    ListCell *lc;
    foreach (lc, added_columns) {
        AddedColumn *a = (AddedColumn *) lfirst(lc);
        if (a->relid == relid && a->in_migration == migration.active &&
            a->subid >= new_objects_from && strcmp(a->name, name) == 0) {
            /* known by its new name from now on */
            char *renamed = MemoryContextStrdup(TopMemoryContext, new_name);
            pfree(a->name);
            a->name = renamed;
            return true;
        }
    }
    return false;
}

void note_created_table(Oid nsp, const char *name)
{
    if (!migration.active)
        return;
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    CreatedTable *t = (CreatedTable *) palloc(sizeof(CreatedTable));
    t->subid = GetCurrentSubTransactionId();
    t->nsp = nsp;
    t->name = pstrdup(name);
    created_tables = lappend(created_tables, t);
    MemoryContextSwitchTo(old);
}

bool is_created_table(Oid nsp, const char *name)
{
    if (!migration.active)
        return false;
    ListCell *lc;
    foreach (lc, created_tables) {
        CreatedTable *t = (CreatedTable *) lfirst(lc);
        if (t->nsp == nsp && t->subid >= new_objects_from && strcmp(t->name, name) == 0)
            return true;
    }
    return false;
}

bool is_added_column(Oid relid, const char *name)
{
    ListCell *lc;
    foreach (lc, added_columns) {
        AddedColumn *a = (AddedColumn *) lfirst(lc);
        if (a->relid == relid && a->in_migration == migration.active &&
            a->subid >= new_objects_from && strcmp(a->name, name) == 0)
            return true;
    }
    return false;
}

}  // namespace safe_migrate::policy
