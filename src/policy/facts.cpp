/*
 * facts.cpp — facts for the rules, read off the parse tree PostgreSQL hands
 * the event trigger (never re-parsed) and off the catalogs, without taking
 * any lock: the statement itself has not locked anything yet, and taking a
 * weaker lock first would turn two concurrent ALTERs into a deadlock.
 */
#include "policy.hpp"
#include "pg/compat.hpp"
#include "pg/subxact.hpp"

extern "C" {
#include "access/genam.h"
#include "access/heapam.h"
#include "access/tableam.h"
#include "catalog/pg_tablespace.h"
#include "catalog/index.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "parser/parse_type.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "pgstat.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/dependency.h"
#include "catalog/heap.h"
#include "commands/dbcommands.h"
#include "storage/fd.h"
#include "storage/proc.h"
#include "utils/memutils.h"
#include "commands/tablespace.h"
#include "common/relpath.h"
#include "nodes/nodeFuncs.h"
#include "storage/bufmgr.h"
#include "storage/lock.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/array.h"
#include "utils/fmgrprotos.h"
#include "utils/varlena.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "access/table.h"
#include "catalog/catalog.h"
#include "catalog/partition.h"
#include "nodes/makefuncs.h"
#include "commands/dbcommands.h"
#include "catalog/pg_depend.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_shdepend.h"
#include "catalog/pg_authid.h"
#include "utils/hsearch.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_language.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "catalog/pg_ts_config.h"
#include "commands/extension.h"
#include "commands/proclang.h"
#include "parser/parse_func.h"
#include "parser/parse_oper.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_type.h"
#include "commands/tablecmds.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_node.h"
#include "parser/parse_utilcmd.h"
#include "partitioning/partbounds.h"
#include "utils/acl.h"
#include "utils/partcache.h"
#include "utils/ruleutils.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
}

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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
    kValidateConstraint,
    kDomainConstraint,
    kAttachPartition,
    kDetachPartition,
    kIndexRebuild,
    kDropDatabase,
    kRefreshMatview,
    kRenameEnumValue
};

bool keeps_heap(const pg::PolicyFacts *f)
{
    return f->action == kIndexRebuild;
}

/* The directory of this database's relations in its default tablespace,
 * opened once per backend: a file there is then stat()ed by its name alone,
 * without the kernel walking the whole path every time (the policy measures
 * tables for most DDL statements).  One descriptor, kept for the life of
 * the backend; -1 when it cannot be opened (then whole paths are used). */
static int database_directory_fd(void)
{
    static Oid opened_for = InvalidOid;
    static int fd = -1;
    if (opened_for != MyDatabaseId) {
        if (fd >= 0)
            close(fd);
        char *dir = GetDatabasePath(MyDatabaseId, MyDatabaseTableSpace);
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        pfree(dir);
        opened_for = MyDatabaseId;
    }
    return fd;
}

/* Bytes on disk of a relation's main fork, summing its 1 GB segments,
 * read with stat(): no lock, no error if a file is gone. */
static int64 main_fork_bytes(Form_pg_class cls, Oid relid)
{
    if (cls->relfilenode == InvalidOid)
        return 0; /* partitioned table, view, ... */
    Oid spc = OidIsValid(cls->reltablespace) ? cls->reltablespace : MyDatabaseTableSpace;
    Oid db = cls->relisshared ? InvalidOid : MyDatabaseId;
    bool temporary = cls->relpersistence == RELPERSISTENCE_TEMP;
    /* a permanent relation of this database's default tablespace: by its
     * name in the database's directory */
    int dirfd = !temporary && db == MyDatabaseId && spc == MyDatabaseTableSpace
                    ? database_directory_fd()
                    : -1;
    char *path;
    if (dirfd >= 0)
        path = psprintf("%u", cls->relfilenode);
    else
        path = pg::compat::relation_main_path(
            spc, db, cls->relfilenode,
            temporary ? pg::compat::my_backend() : pg::compat::kInvalidBackend);
    int64 total = 0;
    for (int segment = 0;; segment++) {
        char *file = segment == 0 ? pstrdup(path) : psprintf("%s.%d", path, segment);
        struct stat st;
        bool found = (dirfd >= 0 ? fstatat(dirfd, file, &st, 0) : stat(file, &st)) == 0;
        pfree(file);
        if (!found)
            break;
        total += st.st_size;
        /* a segment short of full size is the last one: no stat() for the
         * next (most relations have one segment) */
        if (st.st_size < (off_t) RELSEG_SIZE * BLCKSZ)
            break;
    }
    pfree(path);
    return total;
}

/* Bytes of the main fork of the relation relid (0 if it is gone). */
static int64 relid_main_fork_bytes(Oid relid)
{
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tup))
        return 0;
    int64 b = main_fork_bytes((Form_pg_class) GETSTRUCT(tup), relid);
    ReleaseSysCache(tup);
    return b;
}

/* Bytes of a table's indexes (main forks).  The index list comes from the
 * relation cache (built once, kept until an invalidation), not from a scan of
 * pg_index: this runs for most DDL statements of every session.  No lock is
 * taken; a list one invalidation old only changes an estimate. */
static int64 index_bytes(Oid relid)
{
    Relation rel = RelationIdGetRelation(relid);
    if (!RelationIsValid(rel))
        return 0;
    List *indexes = RelationGetIndexList(rel);
    RelationClose(rel);
    int64 total = 0;
    ListCell *lc;
    foreach (lc, indexes)
        total += relid_main_fork_bytes(lfirst_oid(lc));
    list_free(indexes);
    return total;
}

/* Bytes of a TOAST table's index.  PostgreSQL names it after the table
 * the TOAST table belongs to (pg_toast_<table>_index, kept so by the
 * rewrites that swap in a new TOAST table): a cached name lookup instead of
 * the TOAST table's relation cache entry and index list.  A name that does
 * not lead to the TOAST table's index falls back to the list. */
static int64 toast_index_bytes(Oid relid, Oid toastrelid)
{
    char name[NAMEDATALEN];
    snprintf(name, sizeof name, "pg_toast_%u_index", relid);
    Oid index = get_relname_relid(name, PG_TOAST_NAMESPACE);
    if (OidIsValid(index) && IndexGetRelation(index, true) == toastrelid)
        return relid_main_fork_bytes(index);
    return index_bytes(toastrelid);
}

/* Rows and bytes of one relation: statistics scaled to its size on disk.
 * Bytes count the heap, its TOAST table (with its index) and its indexes. */
static void relation_size(Form_pg_class cls, Oid relid, double *rows, int64 *bytes)
{
    int64 b = main_fork_bytes(cls, relid);
    int64 extra = 0;
    if (OidIsValid(cls->reltoastrelid))
        extra += relid_main_fork_bytes(cls->reltoastrelid) +
                 toast_index_bytes(relid, cls->reltoastrelid);
    if (cls->relhasindex)
        extra += index_bytes(relid);
    double pages_now = (double) b / BLCKSZ;
    /* Statistics when they exist; the real size when they are missing or
     * stale: rows per page from the statistics, else 256 rows per page (the
     * densest a heap page gets), so a never-analyzed table is never taken
     * for a small one. */
    double density = cls->relpages > 0 && cls->reltuples > 0 ? cls->reltuples / cls->relpages
                                                               : BLCKSZ / 32.0;
    double r = density * pages_now;
    /* A relation without storage holds no rows of its own: ANALYZE of a
     * partitioned table records its partitions' rows as its reltuples, and
     * those partitions are counted themselves where the statement reaches
     * them (counting both took a parent of 60,000 rows for one of 120,000). */
    if (cls->reltuples > r && RELKIND_HAS_STORAGE(cls->relkind))
        r = cls->reltuples;
    *rows = r;
    *bytes = b + extra;
}

/* relation_size() of a relation by OID; false (and 0, 0) when it is gone. */
static bool relid_size(Oid relid, double *rows, int64 *bytes)
{
    *rows = 0;
    *bytes = 0;
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tup))
        return false;
    relation_size((Form_pg_class) GETSTRUCT(tup), relid, rows, bytes);
    ReleaseSysCache(tup);
    return true;
}

/* Was relid created by this transaction (from new_objects_from on)?
 * A relation this transaction created has a pg_class row this transaction
 * wrote: a row written by another transaction answers no without the
 * relation cache entry (rebuilt after every invalidation of the table,
 * which most DDL on it sends). */
static bool created_in_this_transaction(Oid relid)
{
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tup))
        return false;
    bool ours = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tup->t_data));
    ReleaseSysCache(tup);
    if (!ours)
        return false;
    bool created = false;
    Relation rel = RelationIdGetRelation(relid);
    if (RelationIsValid(rel)) {
        created = rel->rd_createSubid != InvalidSubTransactionId &&
                  rel->rd_createSubid >= new_objects_from;
        RelationClose(rel);
    }
    return created;
}

void table_facts(Oid relid, const char *written_name, pg::PolicyFacts *f, Reach reach)
{
    f->table = written_name;

    /* created in this transaction: only this transaction can see it, every
     * rule exempts it, and nothing else needs looking up */
    f->created_in_transaction = created_in_this_transaction(relid);
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
    f->matview = cls->relkind == RELKIND_MATVIEW;
    /* created by an earlier step of the running migration (committed since):
     * no application uses it yet */
    if (!f->created_in_transaction && is_created_table(cls->relnamespace, NameStr(cls->relname)))
        f->created_in_transaction = true;
    ReleaseSysCache(tup);
    /* the size is measured when a rule could use it (resolve_size): most
     * statements no rule refuses at any size, and measuring reads the
     * relation cache of every index and TOAST table and stat()s their files */
    f->rows = 0;
    f->bytes = 0;
    f->size_of = relid;
    f->size_reach = (int) reach;
}

void resolve_size(pg::PolicyFacts *f)
{
    Oid relid = f->size_of;
    if (!OidIsValid(relid))
        return;
    f->size_of = InvalidOid;
    Reach reach = (Reach) f->size_reach;
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tup))
        return;
    Form_pg_class cls = (Form_pg_class) GETSTRUCT(tup);
    /* the partitions or children the statement reaches count with it */
    bool has_children = cls->relhassubclass &&
                        (reach == Reach::All ||
                         (reach == Reach::Partitions && cls->relkind == RELKIND_PARTITIONED_TABLE));
    relation_size(cls, relid, &f->rows, &f->bytes);
    ReleaseSysCache(tup);

    /* A statement on a parent works on its partitions or children too:
     * count those it reaches (found without locking them). */
    if (has_children) {
        List *all = find_all_inheritors(relid, NoLock, nullptr);
        ListCell *lc;
        foreach (lc, all) {
            Oid child = lfirst_oid(lc);
            if (child == relid)
                continue;
            double rows;
            int64 bytes;
            if (!relid_size(child, &rows, &bytes))
                continue;
            f->rows += rows;
            f->bytes += bytes;
        }
    }
}

/* A table this transaction created is exempt, but not what a statement on
 * it does to the existing partitions or inheritance children it reaches
 * (attached or inherited a moment ago): then the facts are theirs, as if
 * the statement named them (CREATE INDEX, SET NOT NULL, ADD CHECK on a new
 * parent build or scan on existing tables). */
static void reach_existing_children(Oid relid, Reach reach, pg::PolicyFacts *f)
{
    if (!f->created_in_transaction || f->temporary || reach == Reach::Self)
        return;
    if (reach == Reach::Partitions && get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
        return;
    if (!has_subclass(relid))
        return;
    List *all = find_all_inheritors(relid, NoLock, nullptr);
    double rows = 0;
    int64 bytes = 0;
    bool any = false;
    ListCell *lc;
    foreach (lc, all) {
        Oid child = lfirst_oid(lc);
        if (child == relid)
            continue;
        Relation rel = RelationIdGetRelation(child);
        if (!RelationIsValid(rel))
            continue;
        bool created = rel->rd_createSubid != InvalidSubTransactionId &&
                       rel->rd_createSubid >= new_objects_from;
        bool temp = rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP;
        RelationClose(rel);
        if (created || temp)
            continue;
        double r;
        int64 b;
        if (!relid_size(child, &r, &b))
            continue;
        rows += r;
        bytes += b;
        any = true;
    }
    if (!any)
        return;
    f->created_in_transaction = false;
    f->rows = rows;
    f->bytes = bytes;
    f->size_of = InvalidOid;
}

/* The leaf partitions of a partitioned table that PostgreSQL still has to
 * build an index on (or validate a foreign key on): it attaches a
 * partition's own equivalent index instead of building one (same key
 * columns in order, uniqueness and access method, valid, no WHERE, no
 * expressions), and a partition's own validated foreign key with the same
 * columns and referenced table instead of checking its rows.  Their rows
 * and bytes replace *rows / *bytes.  colnames: plain column names (String);
 * confrelid valid: a foreign key, else an index. */
static void partitions_to_build(Oid parent, List *colnames, bool unique, Oid am, Oid confrelid,
                                char constraint_type, List *pk_attrs, double *rows, int64 *bytes)
{
    int n = list_length(colnames);
    if (n == 0 || n > INDEX_MAX_KEYS)
        return;
    /* a foreign key: the referenced columns too (named, or the primary key) */
    AttrNumber pk[INDEX_MAX_KEYS];
    if (OidIsValid(confrelid)) {
        if (pk_attrs != NIL) {
            if (list_length(pk_attrs) != n)
                return;
            int k = 0;
            ListCell *pc;
            foreach (pc, pk_attrs)
                pk[k++] = get_attnum(confrelid, strVal(lfirst(pc)));
        } else {
            Relation ref = RelationIdGetRelation(confrelid);
            Oid pkindex = RelationIsValid(ref) ? pg::compat::primary_key_index(ref) : InvalidOid;
            if (RelationIsValid(ref))
                RelationClose(ref);
            HeapTuple it = OidIsValid(pkindex) ? SearchSysCache1(INDEXRELID, ObjectIdGetDatum(pkindex))
                                               : nullptr;
            if (it == nullptr || !HeapTupleIsValid(it))
                return;
            Form_pg_index idx = (Form_pg_index) GETSTRUCT(it);
            bool fits = idx->indnkeyatts == n;
            for (int k = 0; fits && k < n; k++)
                pk[k] = idx->indkey.values[k];
            ReleaseSysCache(it);
            if (!fits)
                return;
        }
    }
    double total_rows = 0;
    int64 total_bytes = 0;
    List *all = find_all_inheritors(parent, NoLock, nullptr);
    ListCell *lc;
    foreach (lc, all) {
        Oid part = lfirst_oid(lc);
        if (get_rel_relkind(part) != RELKIND_RELATION)
            continue;
        AttrNumber atts[INDEX_MAX_KEYS];
        int i = 0;
        bool columns_found = true;
        ListCell *cc;
        foreach (cc, colnames) {
            atts[i] = get_attnum(part, strVal(lfirst(cc)));
            columns_found &= atts[i] != InvalidAttrNumber;
            i++;
        }
        bool covered = false;
        if (columns_found && OidIsValid(confrelid)) {
            Relation conrel = table_open(ConstraintRelationId, AccessShareLock);
            ScanKeyData key;
            ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber, F_OIDEQ,
                        ObjectIdGetDatum(part));
            SysScanDesc scan = systable_beginscan(conrel, ConstraintRelidTypidNameIndexId, true,
                                                  nullptr, 1, &key);
            HeapTuple tup;
            while (!covered && HeapTupleIsValid(tup = systable_getnext(scan))) {
                Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
                if (con->contype != CONSTRAINT_FOREIGN || con->confrelid != confrelid ||
                    !con->convalidated)
                    continue;
                bool isnull;
                Datum d = heap_getattr(tup, Anum_pg_constraint_conkey, RelationGetDescr(conrel), &isnull);
                if (isnull)
                    continue;
                ArrayType *arr = DatumGetArrayTypeP(d);
                int16 *keys = (int16 *) ARR_DATA_PTR(arr);
                bool same = ARR_DIMS(arr)[0] == n;
                for (int k = 0; same && k < n; k++)
                    same = keys[k] == atts[k];
                Datum fd = heap_getattr(tup, Anum_pg_constraint_confkey, RelationGetDescr(conrel), &isnull);
                if (same && !isnull) {
                    ArrayType *farr = DatumGetArrayTypeP(fd);
                    int16 *fkeys = (int16 *) ARR_DATA_PTR(farr);
                    same = ARR_DIMS(farr)[0] == n;
                    for (int k = 0; same && k < n; k++)
                        same = fkeys[k] == pk[k];
                } else
                    same = false;
                covered = same;
            }
            systable_endscan(scan);
            table_close(conrel, AccessShareLock);
        } else if (columns_found) {
            Relation rel = RelationIdGetRelation(part);
            List *indexes = RelationIsValid(rel) ? RelationGetIndexList(rel) : NIL;
            if (RelationIsValid(rel))
                RelationClose(rel);
            ListCell *ic;
            foreach (ic, indexes) {
                Oid index = lfirst_oid(ic);
                HeapTuple it = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(index));
                if (!HeapTupleIsValid(it))
                    continue;
                Form_pg_index idx = (Form_pg_index) GETSTRUCT(it);
                bool same = idx->indisvalid && idx->indisunique == unique && idx->indnkeyatts == n &&
                            heap_attisnull(it, Anum_pg_index_indpred, nullptr) &&
                            heap_attisnull(it, Anum_pg_index_indexprs, nullptr);
                for (int k = 0; same && k < n; k++)
                    same = idx->indkey.values[k] == atts[k];
                ReleaseSysCache(it);
                if (same) {
                    HeapTuple rt = SearchSysCache1(RELOID, ObjectIdGetDatum(index));
                    if (HeapTupleIsValid(rt)) {
                        same = ((Form_pg_class) GETSTRUCT(rt))->relam == am;
                        ReleaseSysCache(rt);
                    }
                }
                /* a constraint attaches only an index that backs the same
                 * kind of constraint of the partition's own */
                if (same && constraint_type != 0) {
                    Oid conoid = get_index_constraint(index);
                    same = false;
                    HeapTuple ct = OidIsValid(conoid) ? SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid))
                                                      : nullptr;
                    if (ct != nullptr && HeapTupleIsValid(ct)) {
                        same = ((Form_pg_constraint) GETSTRUCT(ct))->contype == constraint_type;
                        ReleaseSysCache(ct);
                    }
                }
                if (same) {
                    covered = true;
                    break;
                }
            }
        }
        if (covered)
            continue;
        double r;
        int64 b;
        if (!relid_size(part, &r, &b))
            continue;
        total_rows += r;
        total_bytes += b;
    }
    *rows = total_rows;
    *bytes = total_bytes;
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

/* list_sort of C strings */
static int compare_names(const ListCell *a, const ListCell *b)
{
    return strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

/* While ALTER TYPE ... CASCADE is judged as the ALTER TABLE of each typed
 * table: the type, as written (check_alter_type_cascade, check_rename) */
static const char *typed_of = nullptr;

static void init_facts(pg::PolicyFacts *f, core_action action)
{
    memset(f, 0, sizeof(*f));
    f->action = action;
    f->fk_columns_indexed = true;
    f->typed_of = typed_of;
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
    if (proven)
        return true;
    /* any other set of validated CHECKs PostgreSQL's own test finds to imply
     * it (CHECK (col IS NOT NULL AND col < 100)): NotNullImpliedByRelConstraints */
    Relation rel = RelationIdGetRelation(relid);
    if (!RelationIsValid(rel))
        return false;
    if (attnum > 0 && attnum <= RelationGetDescr(rel)->natts && rel->rd_att->constr &&
        rel->rd_att->constr->num_check > 0) {
        Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
        NullTest *nt = makeNode(NullTest);
        nt->arg = (Expr *) makeVar(1, attnum, att->atttypid, att->atttypmod, att->attcollation, 0);
        nt->nulltesttype = IS_NOT_NULL;
        nt->argisrow = false;
        nt->location = -1;
        proven = PartConstraintImpliedByRelConstraint(rel, list_make1(nt));
    }
    RelationClose(rel);
    return proven;
}

/* ---- a script judged before it runs (migrate_plan, the pre-check of a
 * multi-step migration): what its earlier statements establish ---- */

/* A CHECK constraint the script adds or validates: on relid, "col IS NOT
 * NULL" for column notnull_att (0: another check), valid once a statement
 * before the judged one validated it. */
struct ScriptCheck {
    Oid relid;
    char *name;
    AttrNumber notnull_att;
    bool valid;
};
static List *script_checks = NIL; /* of ScriptCheck *, in the plan's context */
/* Columns an earlier statement of the script put under a sync_column
 * trigger (an online type change): relid and the source column's name. */
struct ScriptReplaced {
    Oid relid;
    char *column;
};
static List *script_replaced = NIL; /* of ScriptReplaced *, in the plan's context */


void plan_script_begin(void)
{
    script_checks = NIL;
    script_replaced = NIL;
}

/* The column a raw CHECK expression "col IS NOT NULL" tests, or 0. */
static AttrNumber raw_not_null_column(Oid relid, Node *expr)
{
    if (expr == nullptr || !IsA(expr, NullTest))
        return 0;
    NullTest *nt = (NullTest *) expr;
    if (nt->nulltesttype != IS_NOT_NULL || nt->arg == nullptr || !IsA(nt->arg, ColumnRef))
        return 0;
    ColumnRef *cr = (ColumnRef *) nt->arg;
    Node *last = (Node *) llast(cr->fields);
    if (!IsA(last, String))
        return 0;
    AttrNumber att = get_attnum(relid, strVal(last));
    return att == InvalidAttrNumber ? 0 : att;
}

static ScriptCheck *script_check(Oid relid, const char *name)
{
    ListCell *lc;
    foreach (lc, script_checks) {
        ScriptCheck *c = (ScriptCheck *) lfirst(lc);
        if (c->relid == relid && c->name && name && strcmp(c->name, name) == 0)
            return c;
    }
    return nullptr;
}

/* Is stmt CREATE TRIGGER ... BEFORE INSERT OR UPDATE ... FOR EACH ROW
 * EXECUTE FUNCTION safe_migrate.sync_column(source, target[, expression])?  Sets
 * *relid and *source. */
static bool creates_sync_trigger(Node *stmt, Oid *relid, char **source)
{
    if (!IsA(stmt, CreateTrigStmt))
        return false;
    CreateTrigStmt *t = (CreateTrigStmt *) stmt;
    if (!t->row || t->timing != TRIGGER_TYPE_BEFORE || t->events != (TRIGGER_TYPE_INSERT | TRIGGER_TYPE_UPDATE) ||
        t->columns != NIL || t->whenClause != nullptr || t->isconstraint ||
        list_length(t->funcname) != 2 || strcmp(strVal(linitial(t->funcname)), "safe_migrate") != 0 ||
        strcmp(strVal(lsecond(t->funcname)), "sync_column") != 0 ||
        (list_length(t->args) != 2 && list_length(t->args) != 3))
        return false;
    *relid = RangeVarGetRelid(t->relation, NoLock, true);
    *source = strVal(linitial(t->args));
    return OidIsValid(*relid) && strcmp(*source, strVal(lsecond(t->args))) != 0;
}

/* Note what a statement of the script establishes for the ones after it. */
void plan_script_after(Node *stmt)
{
    Oid trigrel;
    char *source;
    if (creates_sync_trigger(stmt, &trigrel, &source)) {
        ScriptReplaced *r = (ScriptReplaced *) palloc0(sizeof(ScriptReplaced));
        r->relid = trigrel;
        r->column = pstrdup(source);
        script_replaced = lappend(script_replaced, r);
        return;
    }
    if (!IsA(stmt, AlterTableStmt) || ((AlterTableStmt *) stmt)->objtype != OBJECT_TABLE)
        return;
    AlterTableStmt *at = (AlterTableStmt *) stmt;
    Oid relid = RangeVarGetRelid(at->relation, NoLock, true);
    if (!OidIsValid(relid))
        return;
    ListCell *lc;
    foreach (lc, at->cmds) {
        AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
        if (cmd->subtype == AT_AddConstraint && cmd->def && IsA(cmd->def, Constraint) &&
            ((Constraint *) cmd->def)->contype == CONSTR_CHECK) {
            Constraint *con = (Constraint *) cmd->def;
            ScriptCheck *c = (ScriptCheck *) palloc0(sizeof(ScriptCheck));
            c->relid = relid;
            c->name = con->conname ? pstrdup(con->conname) : nullptr;
            c->notnull_att = raw_not_null_column(relid, con->raw_expr);
            c->valid = !con->skip_validation;
            script_checks = lappend(script_checks, c);
        } else if (cmd->subtype == AT_AddConstraint && cmd->def && IsA(cmd->def, Constraint) &&
                   ((Constraint *) cmd->def)->contype == CONSTR_NOTNULL &&
                   ((Constraint *) cmd->def)->keys != NIL) {
            /* 18: ADD CONSTRAINT c NOT NULL col [NOT VALID] */
            Constraint *con = (Constraint *) cmd->def;
            ScriptCheck *c = (ScriptCheck *) palloc0(sizeof(ScriptCheck));
            c->relid = relid;
            c->name = con->conname ? pstrdup(con->conname) : nullptr;
            c->notnull_att = get_attnum(relid, strVal(linitial(con->keys)));
            c->valid = !con->skip_validation;
            script_checks = lappend(script_checks, c);
        } else if (cmd->subtype == AT_ValidateConstraint && cmd->name) {
            ScriptCheck *c = script_check(relid, cmd->name);
            if (c == nullptr) {
                /* one an earlier migration added NOT VALID: its expression
                 * from the catalog */
                Oid conoid = get_relation_constraint_oid(relid, cmd->name, true);
                if (!OidIsValid(conoid))
                    continue;
                HeapTuple tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
                if (!HeapTupleIsValid(tup))
                    continue;
                AttrNumber att = 0;
                bool isnull;
                Datum bin = SysCacheGetAttr(CONSTROID, tup, Anum_pg_constraint_conbin, &isnull);
                if (!isnull && ((Form_pg_constraint) GETSTRUCT(tup))->contype == CONSTRAINT_CHECK) {
                    Node *expr = (Node *) stringToNode(TextDatumGetCString(bin));
                    if (IsA(expr, NullTest) && ((NullTest *) expr)->nulltesttype == IS_NOT_NULL &&
                        !((NullTest *) expr)->argisrow && IsA(((NullTest *) expr)->arg, Var))
                        att = ((Var *) ((NullTest *) expr)->arg)->varattno;
                }
                if (att == 0)
                    att = pg::compat::not_null_constraint_column(tup);
                ReleaseSysCache(tup);
                c = (ScriptCheck *) palloc0(sizeof(ScriptCheck));
                c->relid = relid;
                c->name = pstrdup(cmd->name);
                c->notnull_att = att;
                script_checks = lappend(script_checks, c);
            }
            c->valid = true;
        } else if (cmd->subtype == AT_DropConstraint && cmd->name) {
            ScriptCheck *c = script_check(relid, cmd->name);
            if (c)
                script_checks = list_delete_ptr(script_checks, c);
        }
    }
}

/* Did an earlier statement of the script judged now validate a CHECK (col
 * IS NOT NULL) on relid? */
static bool script_proves_not_null(Oid relid, AttrNumber att)
{
    if (plan_capture == nullptr)
        return false;
    ListCell *lc;
    foreach (lc, script_checks) {
        ScriptCheck *c = (ScriptCheck *) lfirst(lc);
        if (c->relid == relid && c->notnull_att == att && c->valid)
            return true;
    }
    return false;
}

/* Did an earlier statement of the script judged now validate a CHECK on
 * relid (whose implication the catalog cannot show yet)? */
static bool script_validated_check(Oid relid)
{
    if (plan_capture == nullptr)
        return false;
    ListCell *lc;
    foreach (lc, script_checks) {
        ScriptCheck *c = (ScriptCheck *) lfirst(lc);
        if (c->relid == relid && c->valid)
            return true;
    }
    return false;
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
/* Does the column being added get a value in existing rows?  PostgreSQL
 * skips the validation of a foreign key on a column it adds without a
 * default (every value is NULL: transformAlterTableStmt); a default, a
 * generated or identity column, or a serial type fill them. */
bool added_column_filled(const ColumnDef *def)
{
    if (def->raw_default != nullptr || def->generated || def->identity)
        return true;
    if (def->typeName != nullptr && list_length(def->typeName->names) == 1 &&
        def->typeName->pct_type == false) {
        static const char *const serials[] = {"smallserial", "serial", "bigserial", "serial2",
                                              "serial4", "serial8", nullptr};
        const char *name = strVal(linitial(def->typeName->names));
        for (int i = 0; serials[i]; i++)
            if (strcmp(name, serials[i]) == 0)
                return true;
    }
    ListCell *lc;
    foreach (lc, def->constraints) {
        ConstrType t = ((Constraint *) lfirst(lc))->contype;
        if (t == CONSTR_DEFAULT || t == CONSTR_GENERATED || t == CONSTR_IDENTITY)
            return true;
    }
    return false;
}


/* The CHECK expression as the user wrote it, from the statement's text:
 * inside the parentheses that follow the last CHECK before the expression
 * (its own location may lie inside a parenthesis of its own, as in
 * "(t).a > 0"). */
static const char *check_text(const Constraint *con)
{
    const char *src = migration.statement ? migration.statement : debug_query_string;
    if (src == nullptr || con->raw_expr == nullptr)
        return nullptr;
    int loc = exprLocation(con->raw_expr);
    int len = (int) strlen(src);
    if (loc < 0 || loc >= len)
        return nullptr;
    int open = -1;
    for (int k = loc - 5; k >= 0; k--)
        if (pg_strncasecmp(src + k, "check", 5) == 0 &&
            (k == 0 || !(isalnum((unsigned char) src[k - 1]) || src[k - 1] == '_'))) {
            for (int j = k + 5; j < loc; j++)
                if (src[j] == '(') {
                    open = j;
                    break;
                }
            break;
        }
    if (open < 0)
        return nullptr;
    int depth = 0;
    char quote = 0;
    int i = open + 1;
    for (; i < len; i++) {
        char c = src[i];
        if (quote) {
            if (c == quote)
                quote = 0;
            continue;
        }
        if (c == '\'' || c == '"')
            quote = c;
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
    const char *b = src + open + 1;
    const char *e = src + i;
    while (b < e && isspace((unsigned char) *b))
        b++;
    while (e > b && isspace((unsigned char) e[-1]))
        e--;
    return pnstrdup(b, e - b);
}

static void check_constraint(Oid relid, const char *table, const char *column,
                             const Constraint *con, const ColumnDef *newcol = nullptr,
                             bool only = false)
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
            f.exclusion = con->contype == CONSTR_EXCLUSION;
            f.primary_key = con->contype == CONSTR_PRIMARY;
            if (con->contype == CONSTR_EXCLUSION) {
                /* (element, operator) pairs: the elements' columns */
                List *cols = NIL;
                ListCell *ec;
                foreach (ec, con->exclusions) {
                    IndexElem *e = (IndexElem *) linitial((List *) lfirst(ec));
                    cols = lappend(cols, makeString(e->name ? e->name : pstrdup("(expression)")));
                }
                string_list(cols, &f);
            } else if (con->keys != NIL)
                string_list(con->keys, &f);
            else if (column) {
                f.n_columns = 1;
                f.columns = (const char **) palloc(sizeof(char *));
                f.columns[0] = column;
            }
            if (f.primary_key) {
                /* are its columns NOT NULL already (else PRIMARY KEY USING
                 * INDEX would scan for NULLs)? */
                f.not_null = newcol == nullptr || newcol->is_not_null;
                ListCell *kc;
                foreach (kc, con->keys)
                    f.not_null &= column_not_null(relid, strVal(lfirst(kc)), false);
            }
            break;
        case CONSTR_NOTNULL: {
            /* ADD CONSTRAINT c NOT NULL col [NOT VALID] (PostgreSQL 18; the
             * column form of NOT NULL has no keys).  NOT VALID checks new
             * rows only; otherwise every row is scanned under ACCESS
             * EXCLUSIVE, exactly as SET NOT NULL does. */
            if (con->keys == NIL || con->skip_validation)
                return;
            const char *col = strVal(linitial(con->keys));
            AttrNumber att = get_attnum(relid, col);
            if (att == InvalidAttrNumber)
                return; /* PostgreSQL reports it */
            if (column_not_null(relid, col, !only && !con->is_no_inherit))
                return;
            init_facts(&f, kSetNotNull);
            f.column = quote_identifier(col);
            f.not_null_proven = not_null_proven(relid, att) || script_proves_not_null(relid, att);
            break;
        }
        default:
            return;
    }
    f.constraint = con->conname ? quote_identifier(con->conname) : nullptr;
    /* a CHECK is checked on the inheritance children too (unless ONLY or NO
     * INHERIT); keys and unique indexes only on the table and its partitions */
    Reach reach = con->contype != CONSTR_CHECK && con->contype != CONSTR_NOTNULL ? Reach::Partitions
                  : only || con->is_no_inherit ? Reach::Self
                                               : Reach::All;
    table_facts(relid, table, &f, reach);
    reach_existing_children(relid, reach, &f);
    /* on a partitioned table: the partitions with an equivalent unique index
     * or validated foreign key of their own get it attached, not built or
     * checked */
    if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE && !f.using_index) {
        resolve_size(&f); /* replaced below only for the partitions it finds */
        if (con->contype == CONSTR_FOREIGN && con->fk_attrs != NIL)
            partitions_to_build(relid, con->fk_attrs, false, InvalidOid, confrelid, 0, con->pk_attrs,
                                &f.rows, &f.bytes);
        else if ((con->contype == CONSTR_UNIQUE || (con->contype == CONSTR_PRIMARY && f.not_null)) &&
                 con->keys != NIL &&
                 con->including == NIL && (con->access_method == nullptr || strcmp(con->access_method, "btree") == 0))
            partitions_to_build(relid, con->keys, true, BTREE_AM_OID, InvalidOid,
                                con->contype == CONSTR_PRIMARY ? CONSTRAINT_PRIMARY : CONSTRAINT_UNIQUE,
                                NIL, &f.rows, &f.bytes);
    }
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
            relid_size(relid, &f.rows, &f.bytes);
            f.size_of = InvalidOid;
        }
    }
    enforce(&f);
    if (con->contype == CONSTR_FOREIGN && plan_capture == nullptr && !new_table && !fk_indexed &&
        fk_names != NIL)
        defer_foreign_key_index(relid, confrelid, fk_names, table, f.referenced_table);
}

/* ---------- scans and rebuilds the statement does not spell out ---------- */

/* The strongest lock this transaction holds on relid that blocks writes
 * (SHARE or stronger), or NoLock. */
static LOCKMODE held_blocking_lock(Oid relid)
{
    LOCKTAG tag;
    SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
    for (LOCKMODE m = AccessExclusiveLock; m >= ShareLock; m--)
        if (pg::compat::lock_held_by_me(&tag, m))
            return m;
    return NoLock;
}

/* The table a foreign key named conname of relid references, if it is one. */
static Oid fk_referenced_table(Oid relid, const char *conname)
{
    Oid confrelid = InvalidOid;
    Relation conrel = table_open(ConstraintRelationId, AccessShareLock);
    ScanKeyData key[3];
    ScanKeyInit(&key[0], Anum_pg_constraint_conrelid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(relid));
    ScanKeyInit(&key[1], Anum_pg_constraint_contypid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(InvalidOid));
    ScanKeyInit(&key[2], Anum_pg_constraint_conname, BTEqualStrategyNumber, F_NAMEEQ,
                CStringGetDatum(conname));
    SysScanDesc scan = systable_beginscan(conrel, ConstraintRelidTypidNameIndexId, true, nullptr, 3, key);
    HeapTuple tup = systable_getnext(scan);
    if (HeapTupleIsValid(tup)) {
        Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
        if (con->contype == CONSTRAINT_FOREIGN)
            confrelid = con->confrelid;
    }
    systable_endscan(scan);
    table_close(conrel, AccessShareLock);
    return confrelid;
}

/* VALIDATE CONSTRAINT: scanning is harmless only if no lock this transaction
 * already holds on the table (or, for a foreign key, on the referenced
 * table) blocks reads or writes. */
static void check_validate(Oid relid, const char *table, const char *conname, bool only)
{
    pg::PolicyFacts f;
    init_facts(&f, kValidateConstraint);
    f.constraint = quote_identifier(conname);
    LOCKMODE held = held_blocking_lock(relid);
    f.holds_exclusive_lock = held == AccessExclusiveLock;
    f.held_lock = held;
    if (held == NoLock) {
        Oid referenced = fk_referenced_table(relid, conname);
        if (OidIsValid(referenced) && referenced != relid) {
            LOCKMODE r = held_blocking_lock(referenced);
            if (r != NoLock) {
                f.held_lock = r;
                f.held_on = quote_qualified_identifier(get_namespace_name(get_rel_namespace(referenced)),
                                                       get_rel_name(referenced));
            }
        }
    }
    /* a CHECK is validated on the inheritance children too (unless ONLY), a
     * foreign key on the table and its partitions */
    Reach reach = only ? Reach::Self
                  : OidIsValid(fk_referenced_table(relid, conname)) ? Reach::Partitions
                                                                     : Reach::All;
    table_facts(relid, table, &f, reach);
    reach_existing_children(relid, reach, &f);
    enforce(&f);
}

/* ADD PRIMARY KEY USING INDEX sets NOT NULL on every key column that lacks
 * it: a scan of the table unless a validated CHECK proves it. */
static void check_primary_key_using_index(Oid relid, const char *table, const Constraint *con)
{
    if (con->contype != CONSTR_PRIMARY || con->indexname == nullptr)
        return;
    Oid nsp = get_rel_namespace(relid);
    Oid index = get_relname_relid(con->indexname, nsp);
    if (!OidIsValid(index))
        return; /* the statement reports it */
    HeapTuple it = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(index));
    if (!HeapTupleIsValid(it))
        return;
    Form_pg_index idx = (Form_pg_index) GETSTRUCT(it);
    int n = idx->indnkeyatts;
    AttrNumber *atts = (AttrNumber *) palloc(sizeof(AttrNumber) * (n + 1));
    for (int i = 0; i < n; i++)
        atts[i] = idx->indkey.values[i];
    bool ours = idx->indrelid == relid;
    ReleaseSysCache(it);
    if (!ours)
        return;
    for (int i = 0; i < n; i++) {
        if (atts[i] <= 0)
            continue;
        HeapTuple at = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(atts[i]));
        if (!HeapTupleIsValid(at))
            continue;
        Form_pg_attribute a = (Form_pg_attribute) GETSTRUCT(at);
        bool nullable = !pg::compat::not_null_validated(relid, atts[i], a->attnotnull);
        char *name = pstrdup(NameStr(a->attname));
        ReleaseSysCache(at);
        if (!nullable)
            continue;
        pg::PolicyFacts f;
        init_facts(&f, kSetNotNull);
        f.column = quote_identifier(name);
        f.using_index = true;
        f.not_null_proven = not_null_proven(relid, atts[i]) || script_proves_not_null(relid, atts[i]);
        table_facts(relid, table, &f);
        enforce(&f);
    }
}

static char *qualified_name(Oid relid)
{
    return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
}

/* Is every expression of a raw partition bound a literal (or MINVALUE /
 * MAXVALUE)?  Only then is the bound transformed here: nothing of the user's
 * runs twice. */
static bool bound_is_literal(List *exprs)
{
    ListCell *lc;
    foreach (lc, exprs) {
        Node *n = (Node *) lfirst(lc);
        while (n && IsA(n, TypeCast))
            n = ((TypeCast *) n)->arg;
        if (n == nullptr || !(IsA(n, A_Const) || IsA(n, ColumnRef)))
            return false;
    }
    return true;
}

/* The bound of a new partition of parent as a qual in the parent's attnos
 * (NIL: it cannot be told here; the statement reports what is wrong). */
static List *new_partition_qual(Relation prel, PartitionBoundSpec *spec, bool *known)
{
    volatile bool ok = false;
    List *volatile qual = NIL;
    /* in a subtransaction: what the code opened or locked before an
     * error (relcache references, locks) is released with it */
    ErrorData *failed = pg::in_subtransaction([&]() {
        ParseState *pstate = make_parsestate(nullptr);
        PartitionBoundSpec *bound = transformPartitionBound(pstate, prel, spec);
        qual = get_qual_from_partbound(prel, bound);
        free_parsestate(pstate);
        ok = true;
    });
    if (failed != nullptr) {
        pg::keep_cancel(failed);
        FreeErrorData(failed);
        ok = false;
    }
    *known = ok;
    return qual;
}

/* A new partition of parent (ATTACH PARTITION, CREATE TABLE ... PARTITION
 * OF): PostgreSQL takes ACCESS EXCLUSIVE on the parent's default partition
 * and scans it for rows of the new bound, unless the default's constraints
 * exclude the bound; a partitioned default has each of its leaf partitions
 * scanned unless that leaf's constraints exclude it
 * (check_default_partition_contents).  The default partition exists
 * already whether or not the new partition is new: judge its scan, with the
 * rows and bytes of the leaves scanned.  via: how the statement is named in
 * the verdict (NULL: ATTACH PARTITION). */
static void check_default_partition_scan(Oid parent, const char *parent_name,
                                         PartitionBoundSpec *spec, const char *part_name,
                                         const char *via)
{
    if (spec == nullptr || spec->is_default)
        return;
    Oid default_part = get_default_partition_oid(parent);
    if (!OidIsValid(default_part))
        return;
    /* judged before the script runs, after an earlier step validated a
     * CHECK on the default partition: only the catalog then can tell
     * whether it excludes the bound, so the statement is judged when it runs */
    if (script_validated_check(default_part))
        return;
    bool literal = bound_is_literal(spec->listdatums) && bound_is_literal(spec->lowerdatums) &&
                   bound_is_literal(spec->upperdatums);
    /* the leaves scanned (all of them when the bound is not known here:
     * nothing of the user's is evaluated) */
    List *scanned = NIL;
    char *condition = nullptr;
    bool excluded = false;
    Relation prel = RelationIdGetRelation(parent);
    Relation drel = RelationIdGetRelation(default_part);
    if (!RelationIsValid(prel) || !RelationIsValid(drel)) {
        if (RelationIsValid(drel))
            RelationClose(drel);
        if (RelationIsValid(prel))
            RelationClose(prel);
        return;
    }
    bool known = false;
    List *bound_qual = literal ? new_partition_qual(prel, spec, &known) : NIL;
    if (literal && !known) {
        RelationClose(drel);
        RelationClose(prel);
        return; /* the statement reports what is wrong */
    }
    List *dq = NIL;
    if (known && bound_qual != NIL) {
        dq = get_proposed_default_constraint(bound_qual);
        dq = map_partition_varattnos(dq, 1, drel, prel);
        excluded = PartConstraintImpliedByRelConstraint(drel, dq);
        List *ctx = deparse_context_for(RelationGetRelationName(drel), default_part);
        List *bq = map_partition_varattnos(list_make1(make_ands_explicit(list_copy(bound_qual))),
                                           1, drel, prel);
        condition = deparse_expression((Node *) linitial(bq), ctx, false, false);
    }
    if (!excluded) {
        List *all = drel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE
                        ? find_all_inheritors(default_part, NoLock, nullptr)
                        : list_make1_oid(default_part);
        ListCell *lc;
        foreach (lc, all) {
            Oid leaf = lfirst_oid(lc);
            if (get_rel_relkind(leaf) != RELKIND_RELATION)
                continue; /* only leaves hold rows */
            if (leaf != default_part && dq != NIL) {
                Relation lrel = RelationIdGetRelation(leaf);
                if (!RelationIsValid(lrel))
                    continue;
                /* (as PostgreSQL does: the default's constraint, tested on
                 * the leaf's constraints) */
                bool leaf_excluded = PartConstraintImpliedByRelConstraint(lrel, dq);
                RelationClose(lrel);
                if (leaf_excluded)
                    continue;
            }
            scanned = lappend_oid(scanned, leaf);
        }
    }
    RelationClose(drel);
    RelationClose(prel);

    pg::PolicyFacts d;
    init_facts(&d, kAttachPartition);
    d.default_partition = true;
    d.bound_proven = scanned == NIL;
    d.expression = condition;
    d.partition = part_name;
    d.parent = parent_name;
    d.via = via;
    table_facts(default_part, nullptr, &d);
    if (!d.created_in_transaction && scanned != NIL &&
        !(list_length(scanned) == 1 && linitial_oid(scanned) == default_part)) {
        /* a partitioned default: the leaves scanned, not those excluded */
        double rows = 0;
        int64 bytes = 0;
        ListCell *lc;
        foreach (lc, scanned) {
            double r;
            int64 b;
            if (!relid_size(lfirst_oid(lc), &r, &b))
                continue;
            rows += r;
            bytes += b;
        }
        d.rows = rows;
        d.bytes = bytes;
        d.size_of = InvalidOid;
    }
    enforce(&d);
}

/* Has part every column of the parent, by name, of the same type (as
 * ATTACH PARTITION requires; a partitioned part's partitions have its
 * columns)?  Otherwise PostgreSQL refuses the table, and the column maps
 * below could not be made. */
static bool columns_match(Relation prel, Oid part)
{
    TupleDesc desc = RelationGetDescr(prel);
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute a = TupleDescAttr(desc, i);
        if (a->attisdropped)
            continue;
        HeapTuple at = SearchSysCacheAttName(part, NameStr(a->attname));
        if (!HeapTupleIsValid(at))
            return false;
        Form_pg_attribute pa = (Form_pg_attribute) GETSTRUCT(at);
        bool same = pa->atttypid == a->atttypid && pa->atttypmod == a->atttypmod;
        ReleaseSysCache(at);
        if (!same)
            return false;
    }
    return true;
}

/* Does rel have an index of its own that PostgreSQL would attach to the
 * parent's partitioned index pidx (AttachPartitionEnsureIndexes, and
 * DefineIndex for each partition below): valid, not a partition of another
 * index, equivalent by CompareIndexInfo with the columns mapped by name,
 * and backing a constraint when pidx does. */
static bool has_equivalent_index(Relation rel, Relation prel, Relation pidx, IndexInfo *pinfo,
                                 bool constraint)
{
    /* (the columns match: columns_match) */
#if PG_VERSION_NUM >= 160000
    AttrMap *map = build_attrmap_by_name(RelationGetDescr(rel), RelationGetDescr(prel), false);
#else
    AttrMap *map = build_attrmap_by_name(RelationGetDescr(rel), RelationGetDescr(prel));
#endif
    List *indexes = RelationGetIndexList(rel);
    bool found = false;
    ListCell *lc;
    foreach (lc, indexes) {
        Relation ir = RelationIdGetRelation(lfirst_oid(lc));
        if (!RelationIsValid(ir))
            continue;
        bool same = !ir->rd_rel->relispartition && ir->rd_index->indisvalid &&
                    CompareIndexInfo(BuildIndexInfo(ir), pinfo, ir->rd_indcollation,
                                     pidx->rd_indcollation, ir->rd_opfamily, pidx->rd_opfamily, map);
        Oid index = RelationGetRelid(ir);
        RelationClose(ir);
        if (same && constraint)
            same = OidIsValid(get_index_constraint(index));
        if (same) {
            found = true;
            break;
        }
    }
    list_free(indexes);
    return found;
}

/* Does rel have a foreign key of its own that PostgreSQL would attach to
 * the parent's key (tryAttachPartitionForeignKey): same referenced table and
 * columns (mapped by name), operators, actions and deferrability, validated,
 * not a clone of another key. */
static bool has_equivalent_key(Relation rel, Relation prel, Form_pg_constraint pcon, int n,
                               const AttrNumber *conkey, const AttrNumber *confkey)
{
    AttrNumber mapped[INDEX_MAX_KEYS];
    for (int i = 0; i < n; i++) {
        const char *name = get_attname(RelationGetRelid(prel), conkey[i], true);
        mapped[i] = name ? get_attnum(RelationGetRelid(rel), name) : InvalidAttrNumber;
        if (mapped[i] == InvalidAttrNumber)
            return false;
    }
    ListCell *lc;
    foreach (lc, RelationGetFKeyList(rel)) {
        ForeignKeyCacheInfo *fk = (ForeignKeyCacheInfo *) lfirst(lc);
        if (fk->confrelid != pcon->confrelid || fk->nkeys != n)
            continue;
        bool same = true;
        for (int i = 0; same && i < n; i++)
            same = fk->conkey[i] == mapped[i] && fk->confkey[i] == confkey[i];
        if (!same)
            continue;
        HeapTuple ct = SearchSysCache1(CONSTROID, ObjectIdGetDatum(fk->conoid));
        if (!HeapTupleIsValid(ct))
            continue;
        Form_pg_constraint c = (Form_pg_constraint) GETSTRUCT(ct);
        same = !OidIsValid(c->conparentid) && c->convalidated && c->condeferrable == pcon->condeferrable &&
               c->condeferred == pcon->condeferred && c->confupdtype == pcon->confupdtype &&
               c->confdeltype == pcon->confdeltype && c->confmatchtype == pcon->confmatchtype;
        ReleaseSysCache(ct);
        if (same)
            return true;
    }
    return false;
}

/* The rows and bytes of the leaves of part (part itself when it is one)
 * that still need the parent's index pidx (or foreign key pcon): those
 * without an equivalent of their own.  A partitioned part with an
 * equivalent partitioned index (key) of its own needs nothing. */
static bool leaves_needing(Relation prel, Oid part, Relation pidx, IndexInfo *pinfo, bool constraint,
                           Form_pg_constraint pcon, int n, const AttrNumber *conkey,
                           const AttrNumber *confkey, double *rows, int64 *bytes)
{
    *rows = 0;
    *bytes = 0;
    bool any = false;
    List *all = get_rel_relkind(part) == RELKIND_PARTITIONED_TABLE ? find_all_inheritors(part, NoLock, nullptr)
                                                                  : list_make1_oid(part);
    ListCell *lc;
    foreach (lc, all) {
        Oid leaf = lfirst_oid(lc);
        char kind = get_rel_relkind(leaf);
        if (kind != RELKIND_RELATION && !(leaf == part && kind == RELKIND_PARTITIONED_TABLE))
            continue;
        Relation rel = RelationIdGetRelation(leaf);
        if (!RelationIsValid(rel))
            continue;
        bool covered = pidx != nullptr ? has_equivalent_index(rel, prel, pidx, pinfo, constraint)
                                       : has_equivalent_key(rel, prel, pcon, n, conkey, confkey);
        RelationClose(rel);
        if (covered && leaf == part)
            return false; /* the whole table is covered */
        if (covered || kind != RELKIND_RELATION)
            continue;
        double r;
        int64 b;
        if (!relid_size(leaf, &r, &b))
            continue;
        *rows += r;
        *bytes += b;
        any = true;
    }
    return any;
}

/* The CREATE INDEX CONCURRENTLY (and ADD CONSTRAINT ... USING INDEX) that
 * gives part the parent's index pidx before it is attached: the parent's
 * definition with its table and name replaced. */
static const char *index_for_partition(Relation pidx, Relation prel, const char *part_name, bool partitioned,
                                       Oid conoid)
{
    const char *def = pg_get_indexdef_string(RelationGetRelid(pidx));
    const char *unique = pidx->rd_index->indisunique ? "UNIQUE " : "";
    const char *table = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(prel)),
                                                   RelationGetRelationName(prel));
    const char *rest = nullptr;
    static const char *const onlies[] = {"ONLY ", ""};
    for (const char *only : onlies) {
        const char *prefix = psprintf("CREATE %sINDEX %s ON %s%s ", unique,
                                      quote_identifier(RelationGetRelationName(pidx)), only, table);
        if (strncmp(def, prefix, strlen(prefix)) == 0) {
            rest = def + strlen(prefix);
            break;
        }
    }
    /* a partitioned table: built on each partition that has none (CREATE
     * INDEX CONCURRENTLY cannot build on a partitioned table) */
    const char *lead = "";
    if (partitioned) {
        lead = psprintf("for each partition of %s that has none: ", part_name);
        part_name = "<partition>";
    }
    const char *bare_part = strrchr(part_name, '.') ? strrchr(part_name, '.') + 1 : part_name;
    char *name = partitioned ? psprintf("<partition>_%s", RelationGetRelationName(pidx))
                             : psprintf("%s_%s", bare_part, RelationGetRelationName(pidx));
    for (char *p = name; *p; p++)
        if (*p == '"')
            *p = '_';
    if (!partitioned)
        name = pstrdup(quote_identifier(name));
    const char *out = psprintf("%sCREATE %sINDEX CONCURRENTLY %s ON %s %s", lead, unique, name, part_name,
                               rest ? rest : "(...)");
    HeapTuple ct = OidIsValid(conoid) ? SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid)) : nullptr;
    if (ct != nullptr && HeapTupleIsValid(ct)) {
        char type = ((Form_pg_constraint) GETSTRUCT(ct))->contype;
        ReleaseSysCache(ct);
        if (type == CONSTRAINT_PRIMARY || type == CONSTRAINT_UNIQUE)
            out = psprintf("%s; ALTER TABLE %s ADD CONSTRAINT %s %s USING INDEX %s", out, part_name, name,
                           type == CONSTRAINT_PRIMARY ? "PRIMARY KEY" : "UNIQUE", name);
    }
    return out;
}

/* ATTACH PARTITION of an existing table gives it every index and foreign
 * key of the parent.  PostgreSQL attaches an equivalent index or validated
 * key the table has of its own; each other index it builds, and each other
 * key it checks on every row, while it holds ACCESS EXCLUSIVE on the table
 * (AttachPartitionEnsureIndexes, CloneFkReferencing).  Judged like the
 * CREATE INDEX and ADD FOREIGN KEY they are (all gathered first, then
 * judged). */
static void check_attach_builds(Oid parent, const char *parent_name, Oid part, const char *part_name)
{
    if (created_in_this_transaction(part) || get_rel_persistence(part) == RELPERSISTENCE_TEMP)
        return;
    const char *via = psprintf("ALTER TABLE %s ATTACH PARTITION %s", parent_name, part_name);
    List *judged = NIL;
    Relation prel = RelationIdGetRelation(parent);
    if (!RelationIsValid(prel))
        return;
    if (!columns_match(prel, part)) {
        RelationClose(prel);
        return; /* PostgreSQL refuses the table */
    }
    {
        List *indexes = RelationGetIndexList(prel);
        ListCell *lc;
        foreach (lc, indexes) {
            Relation pidx = RelationIdGetRelation(lfirst_oid(lc));
            if (!RelationIsValid(pidx))
                continue;
            if (pidx->rd_rel->relkind != RELKIND_PARTITIONED_INDEX) {
                RelationClose(pidx);
                continue;
            }
            Oid conoid = get_index_constraint(RelationGetRelid(pidx));
            double rows;
            int64 bytes;
            bool needed = leaves_needing(prel, part, pidx, BuildIndexInfo(pidx), OidIsValid(conoid), nullptr,
                                         0, nullptr, nullptr, &rows, &bytes);
            if (needed) {
                pg::PolicyFacts *f = (pg::PolicyFacts *) palloc(sizeof(pg::PolicyFacts));
                init_facts(f, kCreateIndex);
                f->index = quote_identifier(RelationGetRelationName(pidx));
                f->expression = index_for_partition(pidx, prel, part_name,
                                                    get_rel_relkind(part) == RELKIND_PARTITIONED_TABLE, conoid);
                f->via = via;
                f->parent = parent_name;
                f->partition = part_name;
                table_facts(part, part_name, f);
                f->rows = rows;
                f->bytes = bytes;
                f->size_of = InvalidOid;
                judged = lappend(judged, f);
            }
            RelationClose(pidx);
        }
        foreach (lc, RelationGetFKeyList(prel)) {
            ForeignKeyCacheInfo *fk = (ForeignKeyCacheInfo *) lfirst(lc);
            HeapTuple ct = SearchSysCache1(CONSTROID, ObjectIdGetDatum(fk->conoid));
            if (!HeapTupleIsValid(ct))
                continue;
            Form_pg_constraint pcon = (Form_pg_constraint) GETSTRUCT(ct);
            bool cloned = true;
#if PG_VERSION_NUM >= 180000
            cloned = pcon->conenforced; /* an unenforced key checks nothing */
#endif
            if (fk->confrelid == part)
                cloned = false; /* PostgreSQL refuses it */
            double rows;
            int64 bytes;
            if (cloned && leaves_needing(prel, part, nullptr, nullptr, false, pcon, fk->nkeys, fk->conkey,
                                         fk->confkey, &rows, &bytes)) {
                pg::PolicyFacts *f = (pg::PolicyFacts *) palloc(sizeof(pg::PolicyFacts));
                init_facts(f, kAddForeignKey);
                f->constraint = quote_identifier(NameStr(pcon->conname));
                f->referenced_table = qualified_name(pcon->confrelid);
                char *def = TextDatumGetCString(
                    DirectFunctionCall1(pg_get_constraintdef, ObjectIdGetDatum(fk->conoid)));
                size_t len = strlen(def);
                if (len > 10 && strcmp(def + len - 10, " NOT VALID") == 0)
                    def[len - 10] = '\0';
                f->expression = def;
                f->via = via;
                f->parent = parent_name;
                f->partition = part_name;
                table_facts(part, part_name, f);
                f->rows = rows;
                f->bytes = bytes;
                f->size_of = InvalidOid;
                judged = lappend(judged, f);
            }
            ReleaseSysCache(ct);
        }
    }
    RelationClose(prel);
    ListCell *lc;
    foreach (lc, judged)
        enforce((pg::PolicyFacts *) lfirst(lc));
}

/* ATTACH PARTITION: PostgreSQL scans the table being attached (ACCESS
 * EXCLUSIVE) unless its validated constraints imply the partition bound,
 * and the parent's default partition unless its constraints exclude the
 * new bound (check_default_partition_scan).  Judge each scan, and the
 * indexes and foreign keys it gives the table (check_attach_builds).  The
 * table attached may be new (or, for migrate_plan, made by an earlier
 * statement of the script): the default partition is judged all the same. */
static void check_attach_partition(Oid parent, const char *parent_name, PartitionCmd *cmd)
{
    if (get_rel_relkind(parent) != RELKIND_PARTITIONED_TABLE)
        return;
    Oid part = RangeVarGetRelid(cmd->name, NoLock, true);
    if (OidIsValid(part) && get_rel_relispartition(part))
        return; /* already a partition: PostgreSQL says so */
    const char *part_name = written(cmd->name);
    PartitionBoundSpec *spec = cmd->bound;
    if (!OidIsValid(part)) {
        check_default_partition_scan(parent, parent_name, spec, part_name, nullptr);
        return;
    }
    bool literal = spec != nullptr &&
                   (spec->is_default ||
                    (bound_is_literal(spec->listdatums) && bound_is_literal(spec->lowerdatums) &&
                     bound_is_literal(spec->upperdatums)));

    volatile bool proven = false, known = false;
    char *volatile condition = nullptr;
    if (literal) {
        Relation prel = RelationIdGetRelation(parent);
        Relation arel = RelationIdGetRelation(part);
        /* in a subtransaction: what the code opened or locked before an
         * error (relcache references, locks) is released with it */
        ErrorData *failed = pg::in_subtransaction([&]() {
            if (RelationIsValid(prel) && RelationIsValid(arel)) {
                ParseState *pstate = make_parsestate(nullptr);
                PartitionBoundSpec *bound = transformPartitionBound(pstate, prel, spec);
                List *bound_qual = get_qual_from_partbound(prel, bound);
                List *qual = list_concat(list_copy(bound_qual), RelationGetPartitionQual(prel));
                if (qual == NIL)
                    proven = true;
                else {
                    /* as ATExecAttachPartition builds it (canonicalize_qual
                     * takes no implicit-AND list: an assert-enabled server
                     * traps) */
                    qual = (List *) eval_const_expressions(nullptr, (Node *) qual);
                    qual = list_make1(make_ands_explicit(qual));
                    List *mapped = map_partition_varattnos(qual, 1, arel, prel);
                    proven = PartConstraintImpliedByRelConstraint(arel, mapped);
                    List *ctx = deparse_context_for(RelationGetRelationName(arel), part);
                    condition = deparse_expression((Node *) linitial(mapped), ctx, false, false);
                }
                known = true;
                free_parsestate(pstate);
            }
        });
        if (failed != nullptr) {
            pg::keep_cancel(failed);
            FreeErrorData(failed);
            known = false; /* the statement reports what is wrong */
        }
        if (RelationIsValid(arel))
            RelationClose(arel);
        if (RelationIsValid(prel))
            RelationClose(prel);
        if (!known)
            return;
    }
    /* (a bound that is not all literals is taken as unproven: nothing of
     * the user's is evaluated here) */
    /* judged before the script runs, after an earlier step validated a
     * CHECK on the table: only the catalog then can tell whether it proves
     * the bound, so the statement is judged when it runs */
    if (!proven && script_validated_check(part))
        proven = true;
    pg::PolicyFacts f;
    init_facts(&f, kAttachPartition);
    f.bound_proven = proven;
    f.expression = condition;
    f.partition = part_name;
    f.parent = parent_name;
    table_facts(part, part_name, &f);
    enforce(&f);
    check_default_partition_scan(parent, parent_name, spec, part_name, nullptr);
    check_attach_builds(parent, parent_name, part, part_name);
}

/* CREATE TABLE ... PARTITION OF parent FOR VALUES ...: the new table is
 * nobody's yet, but the parent's default partition is scanned as for ATTACH
 * PARTITION. */
static void check_create_partition(CreateStmt *stmt)
{
    if (stmt->partbound == nullptr || list_length(stmt->inhRelations) != 1)
        return;
    RangeVar *parent_rv = (RangeVar *) linitial(stmt->inhRelations);
    Oid parent = RangeVarGetRelid(parent_rv, NoLock, true);
    if (!OidIsValid(parent) || get_rel_relkind(parent) != RELKIND_PARTITIONED_TABLE)
        return; /* the statement reports it */
    /* IF NOT EXISTS of a table that exists creates nothing */
    if (stmt->if_not_exists && OidIsValid(RangeVarGetRelid(stmt->relation, NoLock, true)))
        return;
    const char *part = written(stmt->relation);
    const char *parent_name = written(parent_rv);
    check_default_partition_scan(parent, parent_name, stmt->partbound, part,
                                 psprintf("CREATE TABLE %s PARTITION OF %s", part, parent_name));
}

static void check_detach_partition(Oid parent, const char *parent_name, PartitionCmd *cmd)
{
    /* not a partition of this table: PostgreSQL says so */
    Oid part = RangeVarGetRelid(cmd->name, NoLock, true);
    if (!OidIsValid(part) || !get_rel_relispartition(part) || get_partition_parent(part, true) != parent)
        return;
    pg::PolicyFacts f;
    init_facts(&f, kDetachPartition);
    f.concurrently = cmd->concurrent;
    f.partition = written(cmd->name);
    table_facts(parent, parent_name, &f);
    enforce(&f);
}

/* Has relid a BEFORE INSERT OR UPDATE row trigger of
 * safe_migrate.sync_column, ENABLE ALWAYS, copying column source (NULL: any) into column
 * target (NULL: any existing other column)?  With exact_expression, only
 * one that computes the target from exactly that USING expression (NULL:
 * one without an expression); else with or without one.  Sets the
 * trigger's Oid, its pg_trigger row's xmin and the target's name when the
 * pointers are given. */
static bool sync_trigger_copies(Oid relid, const char *source, const char *target, Oid *tgoid = nullptr,
                                TransactionId *xmin = nullptr, char **target_out = nullptr,
                                bool exact_expression = false, const char *expression = nullptr);

/* Did safe_migrate.sync_column_check find every row copied by that very
 * trigger (its Oid and the xmin of its pg_trigger row: disabling and
 * enabling it again makes a new row version) into target?  Read from
 * safe_migrate.online_copies. */
static bool copy_verified(Oid relid, Oid tgoid, TransactionId xmin, const char *source, const char *target)
{
    Oid nsp = get_namespace_oid("safe_migrate", true);
    Oid marks = OidIsValid(nsp) ? get_relname_relid("online_copies", nsp) : InvalidOid;
    if (!OidIsValid(marks))
        return false;
    bool found = false;
    Relation rel = table_open(marks, AccessShareLock);
    TupleDesc desc = RelationGetDescr(rel);
    SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, nullptr, 0, nullptr);
    HeapTuple tup;
    while (!found && HeapTupleIsValid(tup = systable_getnext(scan))) {
        bool n1, n2, n3, n4, n5;
        Datum r = heap_getattr(tup, 1, desc, &n1);
        Datum t = heap_getattr(tup, 2, desc, &n2);
        Datum x = heap_getattr(tup, 3, desc, &n3);
        Datum s = heap_getattr(tup, 4, desc, &n4);
        Datum g = heap_getattr(tup, 5, desc, &n5);
        if (n1 || n2 || n3 || n4 || n5)
            continue;
        found = DatumGetObjectId(r) == relid && DatumGetObjectId(t) == tgoid &&
                DatumGetTransactionId(x) == xmin && strcmp(NameStr(*DatumGetName(s)), source) == 0 &&
                strcmp(NameStr(*DatumGetName(g)), target) == 0;
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return found;
}

bool sync_trigger(Oid relid, const char *source, const char *target, Oid *tgoid, TransactionId *xmin,
                  const char *expression)
{
    return sync_trigger_copies(relid, source, target, tgoid, xmin, nullptr, true, expression);
}

/* Columns dropped because an online type change replaces them: the
 * transaction must give the name back (the new column renamed to it) by
 * its commit, or the drop is judged as any DROP COLUMN then. */
struct ReplacedColumn {
    Oid relid;
    char *name;
    char *table;
};
static List *replaced_columns = NIL; /* in TopTransactionContext */
static bool replaced_callback = false;

static void check_replaced_at_commit(XactEvent event, void *)
{
    if (event != XACT_EVENT_PRE_COMMIT && event != XACT_EVENT_PARALLEL_PRE_COMMIT) {
        if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
            event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
            replaced_columns = NIL;
        return;
    }
    List *pending = replaced_columns;
    replaced_columns = NIL; /* an ERROR below must not leave them for the next transaction */
    ListCell *lc;
    foreach (lc, pending) {
        ReplacedColumn *r = (ReplacedColumn *) lfirst(lc);
        if (get_rel_relkind(r->relid) == '\0' || get_attnum(r->relid, r->name) != InvalidAttrNumber)
            continue; /* the table went (judged itself), or the name is back */
        pg::PolicyFacts f;
        init_facts(&f, kDropColumn);
        f.column = quote_identifier(r->name);
        table_facts(r->relid, r->table, &f);
        enforce(&f);
    }
}

static void note_replaced_column(Oid relid, const char *name, const char *table)
{
    if (!replaced_callback) {
        RegisterXactCallback(check_replaced_at_commit, nullptr);
        replaced_callback = true;
    }
    MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
    ReplacedColumn *r = (ReplacedColumn *) palloc(sizeof(ReplacedColumn));
    r->relid = relid;
    r->name = pstrdup(name);
    r->table = pstrdup(table);
    replaced_columns = lappend(replaced_columns, r);
    MemoryContextSwitchTo(old);
}

/* Was column name of relid dropped in this transaction as one an online
 * type change replaces (note_replaced_column)? */
static bool replaced_in_transaction(Oid relid, const char *name)
{
    ListCell *lc;
    foreach (lc, replaced_columns) {
        const ReplacedColumn *r = (const ReplacedColumn *) lfirst(lc);
        if (r->relid == relid && strcmp(r->name, name) == 0)
            return true;
    }
    return false;
}

bool column_replaced_online(Oid relid, const char *name)
{
    /* judged before it runs: an earlier statement of the script creates
     * the trigger */
    if (plan_capture != nullptr) {
        ListCell *lc;
        foreach (lc, script_replaced) {
            ScriptReplaced *r = (ScriptReplaced *) lfirst(lc);
            if (r->relid == relid && strcmp(r->column, name) == 0)
                return true;
        }
    }
    Oid tgoid;
    TransactionId xmin;
    char *target = nullptr;
    return sync_trigger_copies(relid, name, nullptr, &tgoid, &xmin, &target) &&
           copy_verified(relid, tgoid, xmin, name, target);
}

static bool sync_trigger_copies(Oid relid, const char *source, const char *target, Oid *tgoid,
                                TransactionId *xmin, char **target_out, bool exact_expression,
                                const char *expression)
{
    Oid nsp = get_namespace_oid("safe_migrate", true);
    if (!OidIsValid(nsp))
        return false;
    bool found = false;
    Relation trig = table_open(TriggerRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
    SysScanDesc scan = systable_beginscan(trig, TriggerRelidNameIndexId, true, nullptr, 1, &key);
    HeapTuple tup;
    while (!found && HeapTupleIsValid(tup = systable_getnext(scan))) {
        Form_pg_trigger t = (Form_pg_trigger) GETSTRUCT(tup);
        /* ENABLE ALWAYS: it fires with session_replication_role = replica
         * too, where an ordinary one would leave rows without their copy */
        if (t->tgenabled != TRIGGER_FIRES_ALWAYS || (t->tgnargs != 2 && t->tgnargs != 3) ||
            (exact_expression && t->tgnargs != (expression != nullptr ? 3 : 2)) || !TRIGGER_FOR_ROW(t->tgtype) ||
            !TRIGGER_FOR_BEFORE(t->tgtype) || !TRIGGER_FOR_INSERT(t->tgtype) ||
            !TRIGGER_FOR_UPDATE(t->tgtype))
            continue;
        if (get_func_namespace(t->tgfoid) != nsp)
            continue;
        char *fname = get_func_name(t->tgfoid);
        if (fname == nullptr || strcmp(fname, "sync_column") != 0)
            continue;
        bool isnull;
        Datum d = heap_getattr(tup, Anum_pg_trigger_tgargs, RelationGetDescr(trig), &isnull);
        if (isnull)
            continue;
        bytea *args = DatumGetByteaPP(d);
        const char *p = VARDATA_ANY(args);
        size_t len = VARSIZE_ANY_EXHDR(args);
        /* two (or three) NUL-terminated strings */
        size_t first = strnlen(p, len);
        if (first + 1 >= len)
            continue;
        const char *to = p + first + 1;
        size_t second = strnlen(to, len - first - 1);
        if (second >= len - first - 1)
            continue;
        if (t->tgnargs == 3) {
            const char *e = to + second + 1;
            size_t rest = len - first - 1 - second - 1;
            if (rest == 0 || strnlen(e, rest) >= rest)
                continue;
            if (exact_expression && strcmp(e, expression) != 0)
                continue;
        }
        if ((source == nullptr || strcmp(p, source) == 0) && strcmp(to, p) != 0 &&
            (target != nullptr ? strcmp(to, target) == 0 : get_attnum(relid, to) != InvalidAttrNumber)) {
            found = true;
            if (tgoid != nullptr)
                *tgoid = t->oid;
            if (xmin != nullptr)
                *xmin = HeapTupleHeaderGetXmin(tup->t_data);
            if (target_out != nullptr)
                *target_out = pstrdup(to);
        }
    }
    systable_endscan(scan);
    table_close(trig, AccessShareLock);
    return found;
}

/* Is a relation's index on column att (as key, expression or predicate)? */
static bool index_uses_column(HeapTuple tup, Form_pg_index idx, AttrNumber att)
{
    for (int i = 0; i < idx->indnatts; i++)
        if (idx->indkey.values[i] == att)
            return true;
    bool isnull;
    static const int cols[] = {Anum_pg_index_indexprs, Anum_pg_index_indpred};
    for (int col : cols) {
        Datum d = SysCacheGetAttr(INDEXRELID, tup, col, &isnull);
        if (isnull)
            continue;
        Bitmapset *atts = nullptr;
        pull_varattnos((Node *) stringToNode(TextDatumGetCString(d)), 1, &atts);
        if (bms_is_member(att - FirstLowInvalidHeapAttributeNumber, atts))
            return true;
    }
    return false;
}

/*
 * What ALTER COLUMN TYPE does to relid, by PostgreSQL's own tests
 * (ATPrepAlterColumnType / ATColumnChangeRequiresRewrite, CheckIndexCompatible):
 * returns true when the heap is rewritten; otherwise *rebuilt lists (as
 * Oids) the indexes rebuilt because their operator class or collation
 * changes.  *known is false when the statement cannot be judged here (it
 * fails on its own).
 */
bool column_type_change(Oid relid, AlterTableCmd *cmd, List **rebuilt, bool *known)
{
    *rebuilt = NIL;
    *known = false;
    ColumnDef *def = (ColumnDef *) cmd->def;
    AttrNumber att = get_attnum(relid, cmd->name);
    if (att == InvalidAttrNumber || def == nullptr || def->typeName == nullptr)
        return true;
    Oid old_type, old_coll;
    int32 old_mod;
    get_atttypetypmodcoll(relid, att, &old_type, &old_mod, &old_coll);
    /* USING: only the bare column itself is judged, anything else rewrites */
    if (def->raw_default != nullptr) {
        Node *u = def->raw_default;
        if (!(IsA(u, ColumnRef) && list_length(((ColumnRef *) u)->fields) == 1 &&
              IsA(linitial(((ColumnRef *) u)->fields), String) &&
              strcmp(strVal(linitial(((ColumnRef *) u)->fields)), cmd->name) == 0)) {
            *known = true;
            return true;
        }
    }
    volatile bool rewrite = true;
    volatile Oid new_type = InvalidOid, new_coll = InvalidOid;
    /* in a subtransaction: what the code opened or locked before an
     * error (relcache references, locks) is released with it */
    ErrorData *failed = pg::in_subtransaction([&]() {
        int32 new_mod;
        Type t = LookupTypeName(nullptr, def->typeName, &new_mod, true);
        if (t != nullptr) {
            new_type = typeTypeId(t);
            ReleaseSysCache(t);
            new_coll = GetColumnDefCollation(nullptr, def, new_type);
            Node *expr = (Node *) makeVar(1, att, old_type, old_mod, old_coll, 0);
            expr = coerce_to_target_type(nullptr, expr, old_type, new_type, new_mod,
                                         COERCION_ASSIGNMENT, COERCE_IMPLICIT_CAST, -1);
            if (expr != nullptr) {
                expr = (Node *) expression_planner((Expr *) expr);
                *known = true;
                for (;;) {
                    if (IsA(expr, Var) && ((Var *) expr)->varattno == att) {
                        rewrite = false;
                        break;
                    } else if (IsA(expr, RelabelType))
                        expr = (Node *) ((RelabelType *) expr)->arg;
                    else if (IsA(expr, CoerceToDomain)) {
                        if (DomainHasConstraints(((CoerceToDomain *) expr)->resulttype))
                            break;
                        expr = (Node *) ((CoerceToDomain *) expr)->arg;
                    } else if (IsA(expr, FuncExpr) &&
                               (((FuncExpr *) expr)->funcid == F_TIMESTAMPTZ_TIMESTAMP ||
                                ((FuncExpr *) expr)->funcid == F_TIMESTAMP_TIMESTAMPTZ) &&
                               !TimestampTimestampTzRequiresRewrite())
                        expr = (Node *) linitial(((FuncExpr *) expr)->args);
                    else
                        break;
                }
            }
        }
    });
    if (failed != nullptr) {
        pg::keep_cancel(failed);
        FreeErrorData(failed);
        *known = false;
    }
    if (!*known || rewrite)
        return true;

    /* the heap stays: which indexes on the column does PostgreSQL rebuild? */
    List *rels = list_make1_oid(relid);
    if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE || has_subclass(relid))
        rels = find_all_inheritors(relid, NoLock, nullptr);
    ListCell *rc;
    foreach (rc, rels) {
        Oid rel = lfirst_oid(rc);
        AttrNumber ratt = rel == relid ? att : get_attnum(rel, cmd->name);
        if (ratt == InvalidAttrNumber)
            continue;
        Relation indrel = table_open(IndexRelationId, AccessShareLock);
        ScanKeyData key;
        ScanKeyInit(&key, Anum_pg_index_indrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(rel));
        SysScanDesc scan = systable_beginscan(indrel, IndexIndrelidIndexId, true, nullptr, 1, &key);
        HeapTuple tup;
        while (HeapTupleIsValid(tup = systable_getnext(scan))) {
            Form_pg_index idx = (Form_pg_index) GETSTRUCT(tup);
            HeapTuple itup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(idx->indexrelid));
            if (!HeapTupleIsValid(itup))
                continue;
            bool uses = index_uses_column(itup, idx, ratt);
            bool rebuild = false;
            if (uses) {
                bool isnull;
                (void) SysCacheGetAttr(INDEXRELID, itup, Anum_pg_index_indexprs, &isnull);
                bool plain = isnull;
                (void) SysCacheGetAttr(INDEXRELID, itup, Anum_pg_index_indpred, &isnull);
                plain = plain && isnull;
                if (!plain)
                    rebuild = true;
                else {
                    Datum cd = SysCacheGetAttr(INDEXRELID, itup, Anum_pg_index_indclass, &isnull);
                    oidvector *classes = (oidvector *) DatumGetPointer(cd);
                    Datum ld = SysCacheGetAttr(INDEXRELID, itup, Anum_pg_index_indcollation, &isnull);
                    oidvector *colls = (oidvector *) DatumGetPointer(ld);
                    Oid am = InvalidOid;
                    HeapTuple ct = SearchSysCache1(RELOID, ObjectIdGetDatum(idx->indexrelid));
                    if (HeapTupleIsValid(ct)) {
                        am = ((Form_pg_class) GETSTRUCT(ct))->relam;
                        ReleaseSysCache(ct);
                    }
                    for (int i = 0; i < idx->indnkeyatts && !rebuild; i++) {
                        if (idx->indkey.values[i] != ratt)
                            continue;
                        Oid old_class = classes->values[i];
                        Oid new_class = old_class == GetDefaultOpClass(old_type, am)
                                            ? GetDefaultOpClass(new_type, am)
                                            : old_class;
                        Oid new_icoll = colls->values[i] == old_coll ? new_coll : colls->values[i];
                        if (new_class != old_class || new_icoll != colls->values[i] ||
                            (IsPolymorphicType(get_opclass_input_type(old_class)) &&
                             old_type != new_type))
                            rebuild = true;
                    }
                }
            }
            if (rebuild)
                *rebuilt = lappend_oid(*rebuilt, idx->indexrelid);
            ReleaseSysCache(itup);
        }
        systable_endscan(scan);
        table_close(indrel, AccessShareLock);
    }
    return false;
}

/*
 * Drops judged by what really goes.  A statement can drop a table or a
 * column without naming it: DROP SCHEMA / TYPE / DOMAIN / FUNCTION /
 * EXTENSION ... CASCADE, DROP OWNED BY, DROP TABLE parent CASCADE after
 * INHERIT, ALTER TABLE ... DROP COLUMN CASCADE taking a generated column
 * along.  PostgreSQL calls the object access hook (OAT_DROP) for every
 * object it deletes, the dependents first, each while the catalogs still
 * describe it: check_dropped_relation judges there every table and column
 * that goes.  What the statement named was judged at ddl_command_start
 * (with its partitions and inheritance children, whose rows its facts
 * count): remembered here until the next DDL statement, so that it is not
 * judged twice.
 */
struct JudgedDrop {
    Oid relid;
    char *column; /* nullptr: the whole table */
};
static List *judged_drops = NIL;             /* of JudgedDrop *, TopTransactionContext */
static LocalTransactionId judged_lxid = InvalidLocalTransactionId;
static const char *drop_via = nullptr;       /* command tag of the running DDL (static) */

static List *current_judged_drops(void)
{
    return judged_lxid == pg::compat::my_lxid() ? judged_drops : NIL;
}

void note_ddl_statement(const char *tag)
{
    judged_drops = NIL;
    judged_lxid = pg::compat::my_lxid();
    drop_via = tag;
}

void remember_judged_drop(Oid relid, const char *column)
{
    if (plan_capture != nullptr)
        return; /* migrate_plan runs nothing */
    if (judged_lxid != pg::compat::my_lxid()) {
        judged_drops = NIL;
        judged_lxid = pg::compat::my_lxid();
    }
    MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
    List *all = find_all_inheritors(relid, NoLock, nullptr);
    ListCell *lc;
    foreach (lc, all) {
        JudgedDrop *j = (JudgedDrop *) palloc(sizeof(JudgedDrop));
        j->relid = lfirst_oid(lc);
        j->column = column ? pstrdup(column) : nullptr;
        judged_drops = lappend(judged_drops, j);
    }
    MemoryContextSwitchTo(old);
}

static bool was_judged(Oid relid, const char *column)
{
    ListCell *lc;
    foreach (lc, current_judged_drops()) {
        JudgedDrop *j = (JudgedDrop *) lfirst(lc);
        if (j->relid == relid && ((j->column == nullptr && column == nullptr) ||
                                  (j->column != nullptr && column != nullptr &&
                                   strcmp(j->column, column) == 0)))
            return true;
    }
    return false;
}

/* ALTER COLUMN TYPE without a heap rewrite (the rewrite has its own event):
 * judge the indexes it rebuilds under ACCESS EXCLUSIVE. */
/* The validated CHECK constraints of relid on column att that ALTER COLUMN
 * TYPE re-adds and so re-checks with a full scan, even when it keeps the
 * heap; those the same statement drops are left out.  Names in *names
 * ("a, b"), the first one's definition in *first_def; returns how many. */
static int rechecked_constraints(Oid relid, AttrNumber att, AlterTableStmt *stmt, char **names,
                                 char **first_def)
{
    StringInfoData buf;
    initStringInfo(&buf);
    *first_def = nullptr;
    int n = 0;
    Relation conrel = table_open(ConstraintRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(relid));
    SysScanDesc scan = systable_beginscan(conrel, ConstraintRelidTypidNameIndexId, true, nullptr, 1, &key);
    HeapTuple tup;
    while (HeapTupleIsValid(tup = systable_getnext(scan))) {
        Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
        if (con->contype != CONSTRAINT_CHECK || !con->convalidated)
            continue;
        bool isnull;
        Datum d = heap_getattr(tup, Anum_pg_constraint_conkey, RelationGetDescr(conrel), &isnull);
        if (isnull)
            continue;
        ArrayType *arr = DatumGetArrayTypeP(d);
        int nkeys = ARR_DIMS(arr)[0];
        int16 *keys = (int16 *) ARR_DATA_PTR(arr);
        bool uses = false;
        for (int i = 0; i < nkeys; i++)
            uses |= keys[i] == att;
        if (!uses)
            continue;
        bool dropped = false;
        ListCell *lc;
        foreach (lc, stmt->cmds) {
            AlterTableCmd *other = (AlterTableCmd *) lfirst(lc);
            dropped |= other->subtype == AT_DropConstraint && other->name &&
                       strcmp(other->name, NameStr(con->conname)) == 0;
        }
        if (dropped)
            continue;
        appendStringInfo(&buf, "%s%s", n ? ", " : "", quote_identifier(NameStr(con->conname)));
        if (n == 0)
            *first_def = TextDatumGetCString(
                DirectFunctionCall1(pg_get_constraintdef, ObjectIdGetDatum(con->oid)));
        n++;
    }
    systable_endscan(scan);
    table_close(conrel, AccessShareLock);
    *names = buf.data;
    return n;
}

/* ALTER COLUMN ... TYPE of a column other tables' foreign keys reference:
 * PostgreSQL adds those keys again, and unless the new type keeps the
 * key's comparison (a binary-coercible change) it checks every row of the
 * referencing table, under ACCESS EXCLUSIVE on it.  Judged as the foreign
 * key added to that table without NOT VALID.  Found at ddl_command_start
 * (the catalog still has the old type); judged then when the table is not
 * rewritten, else right after the rewrite's own verdict (table_rewrite),
 * which comes first in what PostgreSQL does. */
struct RecheckedKey {
    Oid referenced;  /* the table whose column changes type */
    Oid referencing; /* the table whose rows are checked */
    char *conname;
    char *definition; /* taken at ddl_command_start: by the rewrite PostgreSQL has
                       * dropped the key, to add it again */
    char *via;
    char *table;
};
static List *rechecked_keys = NIL; /* of RecheckedKey *, in TopTransactionContext */
static LocalTransactionId rechecked_lxid = InvalidLocalTransactionId;

static void judge_rechecked_key(const RecheckedKey *k)
{
    if (!OidIsValid(get_rel_namespace(k->referencing)))
        return;
    pg::PolicyFacts f;
    init_facts(&f, kAddForeignKey);
    f.constraint = quote_identifier(k->conname);
    f.referenced_table = k->table;
    f.via = k->via;
    f.expression = k->definition;
    table_facts(k->referencing, nullptr, &f, Reach::Partitions);
    if (f.created_in_transaction)
        return;
    enforce(&f);
}

static void check_referencing_keys(Oid relid, const char *table, AlterTableCmd *cmd, bool now)
{
    AttrNumber att = get_attnum(relid, cmd->name);
    ColumnDef *def = (ColumnDef *) cmd->def;
    if (att == InvalidAttrNumber || def == nullptr || def->typeName == nullptr)
        return;
    int32 typmod;
    Type typ = LookupTypeName(nullptr, def->typeName, &typmod, true);
    if (typ == nullptr)
        return; /* PostgreSQL reports it */
    Oid new_type = typeTypeId(typ);
    ReleaseSysCache(typ);
    Oid old_type = get_atttype(relid, att);
    if (new_type == old_type || IsBinaryCoercible(old_type, new_type))
        return;
    ScanKeyData key[3];
    ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(RelationRelationId));
    ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
    ScanKeyInit(&key[2], Anum_pg_depend_refobjsubid, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(att));
    Relation deprel = table_open(DependRelationId, AccessShareLock);
    SysScanDesc scan = systable_beginscan(deprel, DependReferenceIndexId, true, nullptr, 3, key);
    List *keys = NIL;
    HeapTuple tup;
    while (HeapTupleIsValid(tup = systable_getnext(scan))) {
        Form_pg_depend d = (Form_pg_depend) GETSTRUCT(tup);
        if (d->classid == ConstraintRelationId && !list_member_oid(keys, d->objid))
            keys = lappend_oid(keys, d->objid);
    }
    systable_endscan(scan);
    table_close(deprel, AccessShareLock);
    if (!now && rechecked_lxid != pg::compat::my_lxid()) {
        rechecked_keys = NIL;
        rechecked_lxid = pg::compat::my_lxid();
    }
    ListCell *lc;
    foreach (lc, keys) {
        HeapTuple ct = SearchSysCache1(CONSTROID, ObjectIdGetDatum(lfirst_oid(lc)));
        if (!HeapTupleIsValid(ct))
            continue;
        Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(ct);
        /* a validated key of another table (a partition's clone goes with
         * its parent's) */
        if (con->contype != CONSTRAINT_FOREIGN || con->confrelid != relid || con->conrelid == relid ||
            !con->convalidated || OidIsValid(con->conparentid)) {
            ReleaseSysCache(ct);
            continue;
        }
        MemoryContext old = MemoryContextSwitchTo(now ? CurrentMemoryContext : TopTransactionContext);
        RecheckedKey *k = (RecheckedKey *) palloc(sizeof(RecheckedKey));
        k->referenced = relid;
        k->referencing = con->conrelid;
        k->conname = pstrdup(NameStr(con->conname));
        k->definition = TextDatumGetCString(DirectFunctionCall1(pg_get_constraintdef, ObjectIdGetDatum(con->oid)));
        k->via = psprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s", table, quote_identifier(cmd->name),
                          type_text(def->typeName));
        k->table = pstrdup(table);
        if (!now)
            rechecked_keys = lappend(rechecked_keys, k);
        MemoryContextSwitchTo(old);
        ReleaseSysCache(ct);
        if (now)
            judge_rechecked_key(k);
    }
    list_free(keys);
}

/* After the rewrite of relid was judged: the keys its type change checks
 * again. */
static void judge_rechecked_keys_of(Oid relid)
{
    if (rechecked_lxid != pg::compat::my_lxid())
        return;
    ListCell *lc;
    foreach (lc, rechecked_keys) {
        RecheckedKey *k = (RecheckedKey *) lfirst(lc);
        if (k->referenced == relid) {
            judge_rechecked_key(k);
            k->referenced = InvalidOid; /* once */
        }
    }
}

static void check_column_type(Oid relid, const char *table, AlterTableCmd *cmd, AlterTableStmt *stmt)
{
    List *rebuilt;
    bool known;
    /* a change that rewrites the table is judged when the rewrite starts
     * (check_table_rewrite), the referencing keys after it */
    bool rewrites = column_type_change(relid, cmd, &rebuilt, &known);
    check_referencing_keys(relid, table, cmd, known && !rewrites);
    if (rewrites || !known)
        return;
    /* the heap is kept: indexes rebuilt, CHECK constraints re-checked */
    AttrNumber att = get_attnum(relid, cmd->name);
    char *checks = nullptr;
    char *first_def = nullptr;
    int n_checks = att != InvalidAttrNumber ? rechecked_constraints(relid, att, stmt, &checks, &first_def)
                                            : 0;
    if (rebuilt == NIL && n_checks == 0)
        return;
    pg::PolicyFacts f;
    init_facts(&f, kIndexRebuild);
    f.column = quote_identifier(cmd->name);
    ColumnDef *def = (ColumnDef *) cmd->def;
    f.column_type = type_text(def->typeName);
    Reach reach = stmt->relation->inh ? Reach::All : Reach::Self;
    table_facts(relid, table, &f, reach);
    reach_existing_children(relid, reach, &f);
    if (f.created_in_transaction)
        return;
    if (n_checks > 0) {
        /* every row is read: the table's own size counts */
        f.constraint = checks;
        f.expression = first_def;
    }
    if (rebuilt == NIL) {
        enforce(&f);
        return;
    }
    StringInfoData names;
    initStringInfo(&names);
    int64 bytes = 0;
    ListCell *lc;
    foreach (lc, rebuilt) {
        Oid idx = lfirst_oid(lc);
        if (names.len > 0)
            appendStringInfoString(&names, ", ");
        appendStringInfoString(&names, qualified_name(idx));
        bytes += relid_main_fork_bytes(idx);
    }
    f.index = names.data;
    resolve_size(&f); /* rows stay the table's */
    if (n_checks == 0)
        f.bytes = bytes;
    enforce(&f);
}

/* The columns of tables (with storage) of type typid or of a domain over
 * it, at any depth; with inside, also those whose values hold it inside:
 * of an array of it, or of a composite type (or a row type) that has an
 * attribute holding it.  Pairs of (relid, attnum) appended to *rels, *atts,
 * each once. */
static void columns_of_type(Oid typid, bool inside, List **rels, List **atts, int depth)
{
    if (depth > 32)
        return;
    Relation deprel = table_open(DependRelationId, AccessShareLock);
    ScanKeyData key[2];
    ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(TypeRelationId));
    ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(typid));
    SysScanDesc scan = systable_beginscan(deprel, DependReferenceIndexId, true, nullptr, 2, key);
    HeapTuple tup;
    List *containers = NIL;
    while (HeapTupleIsValid(tup = systable_getnext(scan))) {
        Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);
        if (dep->classid == TypeRelationId) {
            /* a domain over it, or its array type */
            char t = get_typtype(dep->objid);
            if ((t == TYPTYPE_DOMAIN || (inside && get_element_type(dep->objid) == typid)) &&
                !list_member_oid(containers, dep->objid))
                containers = lappend_oid(containers, dep->objid);
        } else if (dep->classid == RelationRelationId && dep->objsubid > 0) {
            char kind = get_rel_relkind(dep->objid);
            if (kind == RELKIND_RELATION || kind == RELKIND_MATVIEW) {
                bool seen = false;
                ListCell *rc, *ac;
                forboth (rc, *rels, ac, *atts)
                    seen = seen || (lfirst_oid(rc) == dep->objid && lfirst_int(ac) == dep->objsubid);
                if (!seen) {
                    *rels = lappend_oid(*rels, dep->objid);
                    *atts = lappend_int(*atts, dep->objsubid);
                }
            } else if (inside && kind == RELKIND_COMPOSITE_TYPE) {
                /* an attribute of another composite type: its users hold it */
                Oid outer = get_rel_type_id(dep->objid);
                if (OidIsValid(outer) && !list_member_oid(containers, outer))
                    containers = lappend_oid(containers, outer);
            }
        }
    }
    systable_endscan(scan);
    table_close(deprel, AccessShareLock);
    ListCell *lc;
    foreach (lc, containers)
        columns_of_type(lfirst_oid(lc), inside, rels, atts, depth + 1);
}

/* ALTER DOMAIN ADD CONSTRAINT (without NOT VALID), VALIDATE CONSTRAINT and
 * SET NOT NULL check every value of every column using the domain, each
 * table under a SHARE lock: judge every such table. */
static void check_alter_domain(AlterDomainStmt *stmt)
{
    pg::PolicyFacts proto;
    init_facts(&proto, kDomainConstraint);
    switch (stmt->subtype) {
        case 'C': {
            Constraint *con = (Constraint *) stmt->def;
            if (con == nullptr || !IsA(con, Constraint))
                return;
            if (con->contype != CONSTR_CHECK && con->contype != CONSTR_NOTNULL)
                return;
            proto.not_valid = con->contype == CONSTR_CHECK && con->skip_validation;
            proto.domain_command = con->conname ? psprintf("ADD CONSTRAINT %s", quote_identifier(con->conname))
                                                : "ADD CONSTRAINT";
            break;
        }
        case 'V':
            proto.domain_command = psprintf("VALIDATE CONSTRAINT %s", quote_identifier(stmt->name));
            break;
        case 'O':
            proto.domain_command = "SET NOT NULL";
            break;
        default:
            return;
    }
    TypeName *tn = makeTypeNameFromNameList(stmt->typeName);
    Type t = LookupTypeName(nullptr, tn, nullptr, true);
    if (t == nullptr)
        return; /* the statement reports it */
    Oid typid = typeTypeId(t);
    bool is_domain = ((Form_pg_type) GETSTRUCT(t))->typtype == TYPTYPE_DOMAIN;
    bool already_not_null = ((Form_pg_type) GETSTRUCT(t))->typnotnull;
    ReleaseSysCache(t);
    if (!is_domain || (stmt->subtype == 'O' && already_not_null))
        return;
    proto.domain = format_type_be_qualified(typid);
    List *rels = NIL, *atts = NIL;
    columns_of_type(typid, false, &rels, &atts, 0);
    ListCell *rc, *ac;
    forboth (rc, rels, ac, atts) {
        Oid relid = lfirst_oid(rc);
        pg::PolicyFacts f = proto;
        char *att = get_attname(relid, (AttrNumber) lfirst_int(ac), true);
        f.column = att ? quote_identifier(att) : nullptr;
        table_facts(relid, nullptr, &f);
        enforce(&f);
    }
}

/* The tables a table-less VACUUM FULL, CLUSTER or REINDEX SCHEMA /
 * DATABASE / SYSTEM reaches, as PostgreSQL picks them: action on each. */
enum class Sweep { VacuumFull, Cluster, ReindexSchema, ReindexDatabase, ReindexSystem };

static void check_sweep(Sweep sweep, Oid nsp, bool concurrently, const char *what)
{
    Oid user = GetUserId();
    bool db_owner = pg::compat::database_owner(MyDatabaseId, user);
    if ((sweep == Sweep::ReindexDatabase || sweep == Sweep::ReindexSystem) && !db_owner)
        return; /* refused by PostgreSQL */
    if (sweep == Sweep::ReindexSchema && !pg::compat::namespace_owner(nsp, user))
        return;
    List *targets = NIL;
    if (sweep == Sweep::Cluster) {
        /* the tables with an index marked by ALTER TABLE ... CLUSTER ON */
        Relation indrel = table_open(IndexRelationId, AccessShareLock);
        SysScanDesc scan = systable_beginscan(indrel, InvalidOid, false, nullptr, 0, nullptr);
        HeapTuple tup;
        while (HeapTupleIsValid(tup = systable_getnext(scan))) {
            Form_pg_index idx = (Form_pg_index) GETSTRUCT(tup);
            if (idx->indisclustered && pg::compat::class_owner(idx->indrelid, user))
                targets = list_append_unique_oid(targets, idx->indrelid);
        }
        systable_endscan(scan);
        table_close(indrel, AccessShareLock);
    } else {
        Relation classrel = table_open(RelationRelationId, AccessShareLock);
        SysScanDesc scan = systable_beginscan(classrel, InvalidOid, false, nullptr, 0, nullptr);
        HeapTuple tup;
        while (HeapTupleIsValid(tup = systable_getnext(scan))) {
            Form_pg_class cls = (Form_pg_class) GETSTRUCT(tup);
            Oid relid = cls->oid;
            if (cls->relkind != RELKIND_RELATION && cls->relkind != RELKIND_MATVIEW)
                continue;
            if (cls->relpersistence == RELPERSISTENCE_TEMP && isOtherTempNamespace(cls->relnamespace))
                continue;
            switch (sweep) {
                case Sweep::VacuumFull:
                    if (!(pg::compat::class_owner(relid, user) || (db_owner && !cls->relisshared)))
                        continue;
                    break;
                case Sweep::ReindexSchema:
                    if (cls->relnamespace != nsp)
                        continue;
                    if (cls->relisshared && !pg::compat::class_owner(relid, user))
                        continue;
                    break;
                case Sweep::ReindexDatabase:
                case Sweep::ReindexSystem:
                    if (sweep == Sweep::ReindexSystem && !IsCatalogRelationOid(relid))
                        continue;
                    if (concurrently && IsCatalogRelationOid(relid))
                        continue; /* skipped by REINDEX DATABASE CONCURRENTLY */
                    if (cls->relisshared && !pg::compat::class_owner(relid, user))
                        continue;
                    break;
                default:
                    break;
            }
            targets = lappend_oid(targets, relid);
        }
        systable_endscan(scan);
        table_close(classrel, AccessShareLock);
    }
    core_action action = sweep == Sweep::VacuumFull ? kVacuumFull
                         : sweep == Sweep::Cluster  ? kCluster
                                                    : kReindex;
    /* judged oldest first (by OID), not in pg_class's physical order: the
     * same database gives the same refusal whatever space earlier drops
     * left in pg_class */
    list_sort(targets, list_oid_cmp);
    ListCell *lc;
    foreach (lc, targets) {
        pg::PolicyFacts f;
        init_facts(&f, action);
        f.concurrently = concurrently;
        f.sweep = what;
        /* every table it processes is a target of its own (partitions and
         * inheritance children included): count each once */
        table_facts(lfirst_oid(lc), nullptr, &f, Reach::Self);
        enforce(&f);
    }
}

/* Columns that go, judged once the deletions are done (flush_dropped_columns):
 * a column reached before its own table, which goes too (DROP SCHEMA takes
 * a generated column along with the function it uses, then the table), is
 * the table's drop, not a column's. */
struct PendingColumn {
    Oid relid;
    pg::PolicyFacts facts;
};
static List *pending_columns = NIL;            /* of PendingColumn *, TopTransactionContext */
static LocalTransactionId pending_lxid = InvalidLocalTransactionId;

static List *current_pending_columns(void)
{
    return pending_lxid == pg::compat::my_lxid() ? pending_columns : NIL;
}

void forget_dropped_columns(void)
{
    pending_columns = NIL;
    pending_lxid = InvalidLocalTransactionId;
}

void flush_dropped_columns(void)
{
    List *pending = current_pending_columns();
    forget_dropped_columns();
    ListCell *lc;
    foreach (lc, pending) {
        PendingColumn *p = (PendingColumn *) lfirst(lc);
        enforce(&p->facts);
    }
}

void check_dropped_relation(Oid relid, int attnum)
{
    if (plan_capture != nullptr)
        return;
    char kind = get_rel_relkind(relid);
    if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
        return;
    const char *column = nullptr;
    if (attnum != 0) {
        if (attnum < 0)
            return;
        column = get_attname(relid, (AttrNumber) attnum, true);
        if (column == nullptr)
            return;
        /* a column this migration added holds no one's data yet */
        if (is_added_column(relid, column))
            return;
    }
    if (column == nullptr && current_pending_columns() != NIL) {
        /* the whole table goes: its columns are judged with it */
        List *kept = NIL;
        ListCell *lc;
        foreach (lc, pending_columns) {
            PendingColumn *p = (PendingColumn *) lfirst(lc);
            if (p->relid != relid)
                kept = lappend(kept, p);
        }
        MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
        pending_columns = list_copy(kept);
        MemoryContextSwitchTo(old);
    }
    /* judged when the statement named it (a column of a table judged as a
     * whole goes with the table) */
    if (was_judged(relid, column) || (column != nullptr && was_judged(relid, nullptr)))
        return;
    /* every rule exempts a table this transaction created; the policy is
     * this database's; an extension's own tables go with it */
    if (created_in_this_transaction(relid) || !active_here() ||
        OidIsValid(getExtensionOfObject(RelationRelationId, relid)))
        return;
    const char *via = drop_via && judged_lxid == pg::compat::my_lxid() ? drop_via : "the statement";
    if (column == nullptr) {
        pg::PolicyFacts f;
        init_facts(&f, kDropTable);
        f.via = via;
        table_facts(relid, nullptr, &f);
        enforce(&f);
        return;
    }
    MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
    PendingColumn *p = (PendingColumn *) palloc(sizeof(PendingColumn));
    p->relid = relid;
    init_facts(&p->facts, kDropColumn);
    p->facts.column = quote_identifier(column);
    p->facts.via = via;
    table_facts(relid, nullptr, &p->facts);
    if (p->facts.created_in_transaction || p->facts.temporary) {
        MemoryContextSwitchTo(old);
        return; /* exempt */
    }
    resolve_size(&p->facts); /* now: judged after the deletions */
    if (pending_lxid != pg::compat::my_lxid()) {
        pending_columns = NIL;
        pending_lxid = pg::compat::my_lxid();
    }
    pending_columns = lappend(pending_columns, p);
    MemoryContextSwitchTo(old);
}

static void predict_reached_drops(List *originals, bool cascade, List *judged, const char *via);

/* Is the column a column of relid, or one the same ALTER TABLE adds? */
static bool column_known(Oid relid, const char *name, AlterTableStmt *stmt)
{
    if (get_attnum(relid, name) != InvalidAttrNumber)
        return true;
    ListCell *lc;
    foreach (lc, stmt->cmds) {
        AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
        if (cmd->subtype == AT_AddColumn && cmd->def && IsA(cmd->def, ColumnDef) &&
            strcmp(((ColumnDef *) cmd->def)->colname, name) == 0)
            return true;
    }
    return false;
}

struct ColumnRefCheck {
    Oid relid;
    AlterTableStmt *stmt;
    bool unknown;
};

/* Does a raw CHECK expression name a column that is not there? */
static bool unknown_column_walker(Node *node, void *context)
{
    if (node == nullptr)
        return false;
    ColumnRefCheck *c = (ColumnRefCheck *) context;
    if (IsA(node, ColumnRef)) {
        ColumnRef *cr = (ColumnRef *) node;
        Node *last = (Node *) llast(cr->fields);
        /* a single name that is no column may still be the table itself:
         * a whole-row reference, (big).a (PostgreSQL tries a column first) */
        if (list_length(cr->fields) == 1 && IsA(last, String) &&
            !column_known(c->relid, strVal(last), c->stmt)) {
            char *relname = get_rel_name(c->relid);
            if (relname == nullptr || strcmp(relname, strVal(last)) != 0)
                c->unknown = true;
        }
        return false;
    }
    return raw_expression_tree_walker(node, SM_WALKER(unknown_column_walker), context);
}

/* Would PostgreSQL refuse ADD CONSTRAINT by its names alone (a constraint
 * or, for one with an index, a relation of that name exists; a key column
 * that does not)?  Then its own error says so, not a rule. */
static bool constraint_fails_by_name(Oid relid, Constraint *con, AlterTableStmt *stmt)
{
    if (con->conname &&
        (OidIsValid(get_relation_constraint_oid(relid, con->conname, true)) ||
         ((con->contype == CONSTR_PRIMARY || con->contype == CONSTR_UNIQUE ||
           con->contype == CONSTR_EXCLUSION) && con->indexname == nullptr &&
          OidIsValid(get_relname_relid(con->conname, get_rel_namespace(relid))))))
        return true;
    List *keys = con->contype == CONSTR_FOREIGN ? con->fk_attrs : con->keys;
    ListCell *lc;
    foreach (lc, keys)
        if (!column_known(relid, strVal(lfirst(lc)), stmt))
            return true;
    if (con->contype == CONSTR_CHECK && con->raw_expr) {
        ColumnRefCheck c = {relid, stmt, false};
        unknown_column_walker(con->raw_expr, &c);
        if (c.unknown)
            return true;
    }
    return false;
}

/* Is the column already NOT NULL on relid and (recurse) on every partition
 * or inheritance child?  SET NOT NULL then checks nothing. */
bool column_not_null(Oid relid, const char *column, bool recurse)
{
    List *rels = recurse ? find_all_inheritors(relid, NoLock, nullptr) : list_make1_oid(relid);
    ListCell *lc;
    foreach (lc, rels) {
        HeapTuple at = SearchSysCacheAttName(lfirst_oid(lc), column);
        if (!HeapTupleIsValid(at))
            return false;
        Form_pg_attribute a = (Form_pg_attribute) GETSTRUCT(at);
        bool notnull = pg::compat::not_null_validated(lfirst_oid(lc), a->attnum, a->attnotnull);
        ReleaseSysCache(at);
        if (!notnull)
            return false;
    }
    return true;
}

/* The USING expressions of the ALTER TABLE statement last judged, as
 * PostgreSQL prints them (for the rewrite's hint, judged later in the same
 * statement, whose tree may be a copy by then): by table and column (a
 * statement changes a column's type once), in TopTransactionContext, of
 * the transaction using_lxid. */
struct UsingText {
    Oid relid;
    char *column;
    char *text;
};
static List *using_texts = NIL;
static LocalTransactionId using_lxid = InvalidLocalTransactionId;

static void note_using_text(Oid relid, const AlterTableCmd *cmd)
{
    ColumnDef *def = (ColumnDef *) cmd->def;
    if (def == nullptr || !IsA(def, ColumnDef) || def->raw_default == nullptr)
        return;
    char *text = pg::using_expression_text(relid, def);
    if (text == nullptr)
        return;
    MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
    UsingText *u = (UsingText *) palloc(sizeof(UsingText));
    u->relid = relid;
    u->column = pstrdup(cmd->name);
    u->text = pstrdup(text);
    using_texts = lappend(using_texts, u);
    MemoryContextSwitchTo(old);
}

static const char *using_text_of(Oid relid, const char *column)
{
    if (using_lxid != pg::compat::my_lxid() || column == nullptr)
        return nullptr;
    ListCell *lc;
    foreach (lc, using_texts) {
        const UsingText *u = (const UsingText *) lfirst(lc);
        if (u->relid == relid && strcmp(u->column, column) == 0)
            return u->text;
    }
    return nullptr;
}

/* The typed tables of a composite type (CREATE TABLE t OF type), by the
 * type's relation: each depends on the type (pg_depend, as PostgreSQL
 * records it), and its pg_class.reloftype says so. */
List *typed_tables_of(Oid composite)
{
    Oid type = get_rel_type_id(composite);
    if (!OidIsValid(type))
        return NIL;
    ScanKeyData key[2];
    ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(TypeRelationId));
    ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(type));
    Relation deprel = table_open(DependRelationId, AccessShareLock);
    SysScanDesc scan = systable_beginscan(deprel, DependReferenceIndexId, true, nullptr, 2, key);
    List *tables = NIL;
    HeapTuple tup;
    while (HeapTupleIsValid(tup = systable_getnext(scan))) {
        Form_pg_depend d = (Form_pg_depend) GETSTRUCT(tup);
        if (d->classid != RelationRelationId || d->objsubid != 0 || list_member_oid(tables, d->objid))
            continue;
        HeapTuple ct = SearchSysCache1(RELOID, ObjectIdGetDatum(d->objid));
        if (!HeapTupleIsValid(ct))
            continue;
        Form_pg_class cls = (Form_pg_class) GETSTRUCT(ct);
        if (cls->reloftype == type &&
            (cls->relkind == RELKIND_RELATION || cls->relkind == RELKIND_PARTITIONED_TABLE))
            tables = lappend_oid(tables, d->objid);
        ReleaseSysCache(ct);
    }
    systable_endscan(scan);
    table_close(deprel, AccessShareLock);
    return tables;
}

/* SET TABLESPACE copies the relation's files under ACCESS EXCLUSIVE, by its
 * real kind whatever the statement's spelling (ALTER TABLE / INDEX /
 * MATERIALIZED VIEW, or ALL IN TABLESPACE): a table or materialized view
 * is judged on itself; an index on its table, whose every query waits (the
 * planner opens each index of the table), with the index's own size.  A
 * partitioned table or index has no storage (only the default of future
 * partitions changes); moving to where it already is copies nothing. */
static void check_moved_relation(Oid relid, const char *written_name, const char *tablespace)
{
    Oid target = get_tablespace_oid(tablespace, true);
    if (!OidIsValid(target))
        return; /* PostgreSQL reports that it does not exist */
    Oid current = get_rel_tablespace(relid);
    if (!OidIsValid(current))
        current = MyDatabaseTableSpace;
    if (target == current)
        return;
    pg::PolicyFacts f;
    init_facts(&f, kSetTablespace);
    f.new_name = quote_identifier(tablespace);
    switch (get_rel_relkind(relid)) {
        case RELKIND_RELATION:
        case RELKIND_MATVIEW:
            table_facts(relid, written_name, &f, Reach::Self);
            break;
        case RELKIND_INDEX: {
            Oid heap = IndexGetRelation(relid, true);
            if (!OidIsValid(heap))
                return;
            f.index = written_name ? written_name
                                   : quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
                                                                get_rel_name(relid));
            table_facts(heap, nullptr, &f, Reach::Self);
            if (f.created_in_transaction || f.temporary)
                break;
            /* the table's rows, the index's bytes (what is copied) */
            double rows;
            int64 bytes;
            relid_size(heap, &rows, &bytes);
            f.rows = rows;
            f.bytes = relid_main_fork_bytes(relid);
            f.size_of = InvalidOid;
            break;
        }
        default:
            return;
    }
    enforce(&f);
}

/* ALTER TABLE / INDEX / MATERIALIZED VIEW ALL IN TABLESPACE a [OWNED BY
 * ...] SET TABLESPACE b moves every such relation of the database in a
 * (PostgreSQL's own choice: no system catalog, shared or temporary
 * relation, TOAST moves with its table): each is judged as its own SET
 * TABLESPACE.  When one of them is not the user's, PostgreSQL refuses the
 * whole statement: its error comes first. */
struct MovedRelation {
    Oid relid;
    const char *name;
};

static void check_move_all(AlterTableMoveAllStmt *stmt)
{
    char kind;
    switch (stmt->objtype) {
        case OBJECT_TABLE: kind = RELKIND_RELATION; break;
        case OBJECT_INDEX: kind = RELKIND_INDEX; break;
        case OBJECT_MATVIEW: kind = RELKIND_MATVIEW; break;
        default: return;
    }
    Oid from = get_tablespace_oid(stmt->orig_tablespacename, true);
    Oid to = get_tablespace_oid(stmt->new_tablespacename, true);
    if (!OidIsValid(from) || !OidIsValid(to) || from == to)
        return;
    if (from == GLOBALTABLESPACE_OID || to == GLOBALTABLESPACE_OID)
        return; /* PostgreSQL refuses it */
    /* pg_class names the database's default tablespace 0 */
    Oid stored = from == MyDatabaseTableSpace ? InvalidOid : from;
    List *owners = NIL;
    ListCell *lc;
    foreach (lc, stmt->roles) {
        Oid role = get_rolespec_oid((RoleSpec *) lfirst(lc), true);
        if (!OidIsValid(role))
            return; /* PostgreSQL reports it */
        owners = lappend_oid(owners, role);
    }
    List *moved = NIL;
    Relation classrel = table_open(RelationRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_class_reltablespace, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(stored));
    TableScanDesc scan = table_beginscan_catalog(classrel, 1, &key);
    HeapTuple tup;
    bool foreign = false;
    while ((tup = heap_getnext(scan, ForwardScanDirection)) != nullptr) {
        Form_pg_class cls = (Form_pg_class) GETSTRUCT(tup);
        if (cls->relkind != kind || cls->relisshared || IsCatalogNamespace(cls->relnamespace) ||
            IsToastNamespace(cls->relnamespace) || isAnyTempNamespace(cls->relnamespace))
            continue;
        if (owners != NIL && !list_member_oid(owners, cls->relowner))
            continue;
        if (!pg::compat::class_owner(cls->oid, GetUserId()))
            foreign = true;
        MovedRelation *m = (MovedRelation *) palloc(sizeof(MovedRelation));
        m->relid = cls->oid;
        m->name = quote_qualified_identifier(get_namespace_name(cls->relnamespace), NameStr(cls->relname));
        moved = lappend(moved, m);
    }
    table_endscan(scan);
    table_close(classrel, AccessShareLock);
    if (foreign)
        return;
    /* judged by name: the first refusal does not depend on where pg_class
     * keeps its rows */
    list_sort(moved, [](const ListCell *a, const ListCell *b) {
        return strcmp(((const MovedRelation *) lfirst(a))->name, ((const MovedRelation *) lfirst(b))->name);
    });
    foreach (lc, moved)
        check_moved_relation(((MovedRelation *) lfirst(lc))->relid, nullptr, stmt->new_tablespacename);
}

static void check_alter_table(AlterTableStmt *stmt);

/* ALTER TYPE composite DROP ATTRIBUTE / RENAME ATTRIBUTE: every stored
 * value of every column holding the type loses that attribute's data (the
 * drop) or the name applications read it by (the rename) at commit, with
 * or without CASCADE (which only concerns typed tables).  Judged on each
 * such column of an existing table, as a DROP COLUMN / RENAME COLUMN of
 * "(column).attribute". */
static void check_composite_attribute(Oid composite, const char *written_type, const char *attribute,
                                      const char *new_name)
{
    Oid type = get_rel_type_id(composite);
    if (!OidIsValid(type) || get_attnum(composite, attribute) == InvalidAttrNumber ||
        (new_name != nullptr && get_attnum(composite, new_name) != InvalidAttrNumber))
        return; /* PostgreSQL reports it */
    List *rels = NIL, *atts = NIL;
    columns_of_type(type, true, &rels, &atts, 0);
    ListCell *rc, *ac;
    forboth (rc, rels, ac, atts) {
        Oid relid = lfirst_oid(rc);
        const char *column = get_attname(relid, (AttrNumber) lfirst_int(ac), true);
        if (column == nullptr)
            continue;
        pg::PolicyFacts f;
        init_facts(&f, new_name ? kRenameColumn : kDropColumn);
        f.column = psprintf("(%s).%s", quote_identifier(column), quote_identifier(attribute));
        if (new_name)
            f.new_name = quote_identifier(new_name);
        else
            f.via = psprintf("ALTER TYPE %s DROP ATTRIBUTE %s", written_type, quote_identifier(attribute));
        table_facts(relid, nullptr, &f);
        if (f.created_in_transaction || f.temporary)
            continue;
        enforce(&f);
    }
}

/* ALTER TYPE ... ADD / DROP / ALTER ATTRIBUTE ... CASCADE changes the same
 * column of every typed table of the type: judged as the ALTER TABLE of
 * each that it is (without CASCADE PostgreSQL refuses while typed tables
 * exist). */
static void check_alter_type_cascade(AlterTableStmt *stmt)
{
    Oid composite = RangeVarGetRelid(stmt->relation, NoLock, true);
    if (!OidIsValid(composite) || get_rel_relkind(composite) != RELKIND_COMPOSITE_TYPE)
        return;
    List *cmds = NIL;
    ListCell *lc;
    foreach (lc, stmt->cmds) {
        AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
        if (cmd->subtype == AT_DropColumn && cmd->name != nullptr)
            check_composite_attribute(composite, written(stmt->relation), cmd->name, nullptr);
        if (cmd->behavior == DROP_CASCADE)
            cmds = lappend(cmds, cmd);
    }
    if (cmds == NIL)
        return;
    List *tables = typed_tables_of(composite);
    typed_of = written(stmt->relation);
    PG_TRY();
    {
        foreach (lc, tables) {
            Oid relid = lfirst_oid(lc);
            AlterTableStmt *each = makeNode(AlterTableStmt);
            each->objtype = OBJECT_TABLE;
            each->relation =
                makeRangeVar(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid), -1);
            each->cmds = cmds;
            check_alter_table(each);
        }
    }
    PG_FINALLY();
    {
        typed_of = nullptr;
    }
    PG_END_TRY();
}

static void check_alter_table(AlterTableStmt *stmt)
{
    if (stmt->objtype == OBJECT_TYPE) {
        check_alter_type_cascade(stmt);
        return;
    }
    if (stmt->objtype == OBJECT_INDEX || stmt->objtype == OBJECT_MATVIEW) {
        /* of their subcommands only SET TABLESPACE copies anything */
        Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
        if (!OidIsValid(relid))
            return;
        ListCell *lc;
        foreach (lc, stmt->cmds) {
            AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
            if (cmd->subtype == AT_SetTableSpace)
                check_moved_relation(relid, written(stmt->relation), cmd->name);
        }
        return;
    }
    if (stmt->objtype != OBJECT_TABLE)
        return;
    /* a new statement: the texts of the last one are gone with it */
    using_texts = NIL;
    using_lxid = pg::compat::my_lxid();
    Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
    if (!OidIsValid(relid))
        return; /* the statement reports it */
    const char *table = written(stmt->relation);
    /* ALTER TABLE ONLY: the inheritance children are left alone */
    bool only = !stmt->relation->inh;
    Reach reach = only ? Reach::Self : Reach::All;
    ListCell *lc;
    foreach (lc, stmt->cmds) {
        AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
        pg::PolicyFacts f;
        switch (cmd->subtype) {
            case AT_AddColumn: {
                ColumnDef *def = (ColumnDef *) cmd->def;
                /* a column that exists: IF NOT EXISTS adds nothing, without
                 * it PostgreSQL reports it */
                if (get_attnum(relid, def->colname) != InvalidAttrNumber)
                    break;
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
                table_facts(relid, table, &f, reach);
                reach_existing_children(relid, reach, &f);
                enforce(&f);
                /* (ADD COLUMN IF NOT EXISTS of a column that exists adds nothing) */
                if (!f.created_in_transaction && !f.temporary &&
                    get_attnum(relid, def->colname) == InvalidAttrNumber)
                    note_added_column(relid, def->colname);
                foreach (cc, def->constraints)
                    if (!constraint_fails_by_name(relid, (Constraint *) lfirst(cc), stmt))
                        check_constraint(relid, table, f.column, (Constraint *) lfirst(cc), def, only);
                break;
            }
            case AT_AddConstraint:
                if (cmd->def && IsA(cmd->def, Constraint) &&
                    !constraint_fails_by_name(relid, (Constraint *) cmd->def, stmt)) {
                    check_constraint(relid, table, nullptr, (Constraint *) cmd->def, nullptr,
                                     only);
                    check_primary_key_using_index(relid, table, (Constraint *) cmd->def);
                }
                break;
            case AT_AttachPartition:
                if (cmd->def && IsA(cmd->def, PartitionCmd))
                    check_attach_partition(relid, table, (PartitionCmd *) cmd->def);
                break;
            case AT_DetachPartition:
                if (cmd->def && IsA(cmd->def, PartitionCmd))
                    check_detach_partition(relid, table, (PartitionCmd *) cmd->def);
                break;
            case AT_AlterColumnType:
                note_using_text(relid, cmd);
                check_column_type(relid, table, cmd, stmt);
                break;
            case AT_SetNotNull: {
                AttrNumber att = get_attnum(relid, cmd->name);
                if (att == InvalidAttrNumber)
                    break; /* PostgreSQL reports it */
                /* already NOT NULL on every table it reaches: nothing to check */
                if (column_not_null(relid, cmd->name, !only))
                    break;
                init_facts(&f, kSetNotNull);
                f.column = quote_identifier(cmd->name);
                f.not_null_proven = not_null_proven(relid, att) || script_proves_not_null(relid, att);
                table_facts(relid, table, &f, reach);
                reach_existing_children(relid, reach, &f);
                enforce(&f);
                break;
            }
            case AT_ValidateConstraint:
                if (!OidIsValid(get_relation_constraint_oid(relid, cmd->name, true)))
                    break; /* PostgreSQL reports it */
                /* the scan is cheap on locks only if nothing before it in
                 * this transaction took a lock that blocks reads or writes */
                check_validate(relid, table, cmd->name, only);
                break;
            case AT_DropColumn:
                /* IF EXISTS of a column that does not: nothing dropped;
                 * without IF EXISTS PostgreSQL reports it */
                if (get_attnum(relid, cmd->name) == InvalidAttrNumber)
                    break;
                /* a column this migration added holds no one's data yet */
                if (is_added_column(relid, cmd->name))
                    break;
                /* the old column of an online type change: its values are
                 * in the new one, which takes its name */
                if (column_replaced_online(relid, cmd->name)) {
                    remember_judged_drop(relid, cmd->name);
                    /* ... if the name is back by commit */
                    if (plan_capture == nullptr)
                        note_replaced_column(relid, cmd->name, table);
                    break;
                }
                init_facts(&f, kDropColumn);
                f.column = quote_identifier(cmd->name);
                table_facts(relid, table, &f, reach);
                enforce(&f);
                if (!f.created_in_transaction && !f.temporary)
                    remember_judged_drop(relid, cmd->name);
                /* what goes with it (a generated column computed from it,
                 * ...): predicted; judged as it goes when it runs */
                if (plan_capture != nullptr) {
                    ObjectAddress *col = (ObjectAddress *) palloc(sizeof(ObjectAddress));
                    col->classId = RelationRelationId;
                    col->objectId = relid;
                    col->objectSubId = get_attnum(relid, cmd->name);
                    predict_reached_drops(list_make1(col), cmd->behavior == DROP_CASCADE, NIL,
                                          "ALTER TABLE");
                }
                break;
            case AT_SetTableSpace:
                check_moved_relation(relid, table, cmd->name);
                break;
            default:
                break;
        }
    }
}

/* The expressions of an index statement's key, deparsed as PostgreSQL
 * prints them ("(lower(email))"), NULL for plain columns, and its WHERE
 * clause (*where, when it has one); NULL if they cannot be read here
 * (PostgreSQL reports what is wrong).  Transformed on a copy, as CREATE
 * INDEX does: nothing of the user's is evaluated. */
static const char **index_expressions(Oid relid, IndexStmt *stmt, const char **where)
{
    bool any = stmt->whereClause != nullptr;
    ListCell *lc;
    foreach (lc, stmt->indexParams)
        any |= ((IndexElem *) lfirst(lc))->expr != nullptr;
    *where = nullptr;
    if (!any)
        return nullptr;
    const char **out = (const char **) palloc0(sizeof(char *) * (list_length(stmt->indexParams) + 1));
    const char **where_out = where;
    volatile bool ok = true;
    /* in a subtransaction rolled back afterwards: what the code opened or
     * locked (relcache references, the lock below) is released with it,
     * after an error and after success alike: migrate_plan and the
     * policy's first look leave no lock on a user table */
    ErrorData *failed = pg::in_rolled_back_subtransaction([&]() {
        IndexStmt *copy = (IndexStmt *) copyObjectImpl(stmt);
        /* (the caller of transformIndexStmt holds a lock: the weakest, and
         * never waited for: a session holding the table is not queued
         * behind, the expressions are just not shown) */
        if (!ConditionalLockRelationOid(relid, AccessShareLock)) {
            ok = false;
            return;
        }
        copy = transformIndexStmt(relid, copy, debug_query_string);
        List *ctx = deparse_context_for(get_rel_name(relid), relid);
        int i = 0;
        foreach (lc, copy->indexParams) {
            IndexElem *e = (IndexElem *) lfirst(lc);
            if (e->expr != nullptr) {
                /* as pg_get_indexdef prints it: a function call bare, any
                 * other expression in parentheses */
                char *text = deparse_expression(e->expr, ctx, false, false);
                out[i] = IsA(e->expr, FuncExpr) || text[0] == '(' ? text : psprintf("(%s)", text);
            }
            i++;
        }
        if (copy->whereClause != nullptr)
            *where_out = deparse_expression(copy->whereClause, ctx, false, false);
    });
    if (failed != nullptr) {
        pg::keep_cancel(failed);
        FreeErrorData(failed);
        ok = false;
    }
    if (!ok)
        *where = nullptr;
    return ok ? out : nullptr;
}

/* One key element as written for the hint: the column or expression with
 * its collation, operator class, order and NULLS placement. */
static const char *index_elem_text(const IndexElem *e, const char *base)
{
    StringInfoData s;
    initStringInfo(&s);
    appendStringInfoString(&s, base);
    if (e->collation != NIL)
        appendStringInfo(&s, " COLLATE %s", NameListToQuotedString(e->collation));
    if (e->opclass != NIL)
        appendStringInfo(&s, " %s", NameListToQuotedString(e->opclass));
    if (e->ordering == SORTBY_DESC)
        appendStringInfoString(&s, " DESC");
    else if (e->ordering == SORTBY_ASC)
        appendStringInfoString(&s, " ASC");
    if (e->nulls_ordering == SORTBY_NULLS_FIRST)
        appendStringInfoString(&s, " NULLS FIRST");
    else if (e->nulls_ordering == SORTBY_NULLS_LAST)
        appendStringInfoString(&s, " NULLS LAST");
    return s.data;
}

/* The statement's concurrent form for the hint, when it says more than a
 * name, a table and key elements (UNIQUE, USING, INCLUDE, NULLS NOT
 * DISTINCT, WITH, TABLESPACE, WHERE): the index it suggests is the one the
 * statement builds.  NULL when there is nothing more, or when a part cannot
 * be written back (the hint then names the key only). */
static const char *concurrent_index_statement(const IndexStmt *stmt, const char *table,
                                              const char *const *elems, int n, const char *where)
{
    bool nulls_not_distinct = stmt->nulls_not_distinct;
    bool btree = stmt->accessMethod == nullptr || strcmp(stmt->accessMethod, "btree") == 0;
    if (!stmt->unique && btree && stmt->indexIncludingParams == NIL && !nulls_not_distinct &&
        stmt->options == NIL && stmt->tableSpace == nullptr && stmt->whereClause == nullptr)
        return nullptr;
    if (stmt->whereClause != nullptr && where == nullptr)
        return nullptr;
    StringInfoData s;
    initStringInfo(&s);
    appendStringInfo(&s, "CREATE %sINDEX CONCURRENTLY %s%sON %s", stmt->unique ? "UNIQUE " : "",
                     stmt->idxname ? quote_identifier(stmt->idxname) : "", stmt->idxname ? " " : "",
                     table);
    if (!btree)
        appendStringInfo(&s, " USING %s", quote_identifier(stmt->accessMethod));
    appendStringInfoString(&s, " (");
    for (int i = 0; i < n; i++)
        appendStringInfo(&s, "%s%s", i ? ", " : "", elems[i]);
    appendStringInfoChar(&s, ')');
    if (stmt->indexIncludingParams != NIL) {
        appendStringInfoString(&s, " INCLUDE (");
        ListCell *lc;
        foreach (lc, stmt->indexIncludingParams) {
            const IndexElem *e = (const IndexElem *) lfirst(lc);
            if (e->name == nullptr)
                return nullptr;
            appendStringInfo(&s, "%s%s", foreach_current_index(lc) ? ", " : "", quote_identifier(e->name));
        }
        appendStringInfoChar(&s, ')');
    }
    if (nulls_not_distinct)
        appendStringInfoString(&s, " NULLS NOT DISTINCT");
    if (stmt->options != NIL) {
        appendStringInfoString(&s, " WITH (");
        ListCell *lc;
        foreach (lc, stmt->options) {
            DefElem *d = (DefElem *) lfirst(lc);
            if (d->defnamespace != nullptr)
                return nullptr;
            appendStringInfo(&s, "%s%s", foreach_current_index(lc) ? ", " : "", quote_identifier(d->defname));
            if (d->arg != nullptr)
                appendStringInfo(&s, " = %s", quote_literal_cstr(defGetString(d)));
        }
        appendStringInfoChar(&s, ')');
    }
    if (stmt->tableSpace != nullptr)
        appendStringInfo(&s, " TABLESPACE %s", quote_identifier(stmt->tableSpace));
    if (where != nullptr)
        appendStringInfo(&s, " WHERE %s", where);
    appendStringInfoChar(&s, ';');
    return s.data;
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
    /* an index is built on a partitioned table's partitions (not with ON
     * ONLY, which builds nothing), never on an inheritance parent's children */
    Reach reach = stmt->relation->inh ? Reach::Partitions : Reach::Self;
    table_facts(relid, written(stmt->relation), &f, reach);
    reach_existing_children(relid, reach, &f);
    /* ON ONLY a partitioned table: an invalid index on the parent alone,
     * nothing read or built (its statistics count its partitions' rows) */
    if (kind == RELKIND_PARTITIONED_TABLE && !stmt->relation->inh) {
        f.size_of = InvalidOid;
        f.rows = 0;
        f.bytes = 0;
    }
    /* a plain table (most CREATE INDEX statements): the names and the
     * statement the hint writes only when a rule fires at its size */
    if (kind != RELKIND_PARTITIONED_TABLE && !worth_judging(&f))
        return;
    /* a name already taken in the table's schema: IF NOT EXISTS skips it
     * with a notice and builds nothing, without it PostgreSQL reports it;
     * likewise a column that does not exist */
    if (stmt->idxname && OidIsValid(get_relname_relid(stmt->idxname, get_rel_namespace(relid))))
        return;
    {
        ListCell *pc;
        foreach (pc, stmt->indexParams) {
            IndexElem *e = (IndexElem *) lfirst(pc);
            if (e->name && get_attnum(relid, e->name) == InvalidAttrNumber)
                return;
        }
    }
    f.index = stmt->idxname ? quote_identifier(stmt->idxname) : nullptr;
    List *cols = NIL;
    ListCell *lc;
    foreach (lc, stmt->indexParams) {
        IndexElem *e = (IndexElem *) lfirst(lc);
        cols = lappend(cols, makeString(e->name ? e->name : pstrdup("(expression)")));
    }
    string_list(cols, &f);
    /* an expression as the user wrote it, for the hint: (lower(email));
     * each element with its collation, operator class and order; and
     * what else the statement says, so that the index the hint builds is
     * the statement's */
    const char *where = nullptr;
    const char **exprs = index_expressions(relid, stmt, &where);
    for (int i = 0; i < f.n_columns; i++) {
        IndexElem *e = (IndexElem *) list_nth(stmt->indexParams, i);
        if (exprs != nullptr && exprs[i] != nullptr)
            f.columns[i] = exprs[i];
        f.columns[i] = index_elem_text(e, f.columns[i]);
    }
    if (!stmt->concurrent)
        f.expression = concurrent_index_statement(stmt, written(stmt->relation), f.columns,
                                                  f.n_columns, where);
    /* on a partitioned table: only the partitions without an equivalent
     * index of their own are built on (the others' are attached) */
    if (kind == RELKIND_PARTITIONED_TABLE && stmt->relation->inh && stmt->whereClause == nullptr &&
        !stmt->concurrent) {
        bool plain = true;
        foreach (lc, stmt->indexParams) {
            IndexElem *e = (IndexElem *) lfirst(lc);
            plain &= e->name != nullptr && e->expr == nullptr && e->opclass == NIL &&
                     e->collation == NIL && e->ordering == SORTBY_DEFAULT &&
                     e->nulls_ordering == SORTBY_NULLS_DEFAULT;
        }
        Oid am = get_index_am_oid(stmt->accessMethod ? stmt->accessMethod : "btree", true);
        resolve_size(&f); /* replaced only for the partitions it finds */
        if (plain && stmt->indexIncludingParams == NIL && OidIsValid(am))
            partitions_to_build(relid, cols, stmt->unique, am, InvalidOid, 0, NIL, &f.rows, &f.bytes);
    }
    enforce(&f);
}

/* The tables (plain or partitioned, not partitions: a partition is counted
 * in its parent's facts) of schema nsp, by name, sorted: one order for the
 * verdicts. */
static List *schema_tables(Oid nsp)
{
    List *names = NIL;
    Relation classrel = table_open(RelationRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_class_relnamespace, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(nsp));
    SysScanDesc scan = systable_beginscan(classrel, InvalidOid, false, nullptr, 1, &key);
    HeapTuple tup;
    while (HeapTupleIsValid(tup = systable_getnext(scan))) {
        Form_pg_class cls = (Form_pg_class) GETSTRUCT(tup);
        if ((cls->relkind == RELKIND_RELATION || cls->relkind == RELKIND_PARTITIONED_TABLE) &&
            !cls->relispartition)
            names = lappend(names, pstrdup(NameStr(cls->relname)));
    }
    systable_endscan(scan);
    table_close(classrel, AccessShareLock);
    list_sort(names, compare_names);
    return names;
}

/*
 * What a drop reaches through dependencies, predicted without dropping
 * anything: for migrate_plan and for the check of a migration that commits in
 * several steps before its first step (refuse_before_first_step).  When the
 * statement runs, the object access hook judges every table and column as
 * PostgreSQL deletes it (check_dropped_relation); a prediction must find the
 * same ones before anything is committed.
 *
 * PostgreSQL has no public way to compute a deletion without doing it
 * (findDependentObjects is static), and doing it in a subtransaction that is
 * rolled back would take ACCESS EXCLUSIVE on every table reached -- waiting
 * behind the application, and blocking it, to answer a question.  So the
 * walk below follows pg_depend the way findDependentObjects does, reading
 * the catalog only (no lock on any object): from each object that goes,
 *  - to the objects that depend on it: AUTO, INTERNAL, EXTENSION (members),
 *    AUTO_EXTENSION and partition dependencies always, NORMAL ones under
 *    CASCADE (under RESTRICT a NORMAL dependent makes the statement fail:
 *    nothing goes);
 *  - to the object it is INTERNAL or EXTENSION part of, which PostgreSQL
 *    drops instead (a generated column's expression takes its column along,
 *    an extension member takes its extension); an object named by the
 *    statement that is part of another is refused by PostgreSQL.
 * Tables and columns reached are judged as the hook judges them, unless the
 * statement's own checks judged them already (judged: relation oids) or they
 * are counted in a parent reached too (a partition, an inheritance child:
 * the parent's facts count their rows).
 */
struct DropReach {
    HTAB *seen;     /* ObjectAddress -> ObjectAddress */
    List *work;     /* of ObjectAddress * */
    List *tables;   /* oids of tables (plain or partitioned) reached whole */
    List *columns;  /* of ObjectAddress * (a column of a table) */
    List *originals;
    List *normal;   /* RESTRICT: reached through a NORMAL dependency */
    bool cascade;
    bool fails;     /* the statement fails instead: nothing goes */
};

static void reach_push(DropReach *r, Oid classid, Oid objid, int32 subid)
{
    ObjectAddress *a = (ObjectAddress *) palloc(sizeof(ObjectAddress));
    a->classId = classid;
    a->objectId = objid;
    a->objectSubId = subid;
    r->work = lappend(r->work, a);
}

static bool address_in(List *list, const ObjectAddress *a)
{
    ListCell *lc;
    foreach (lc, list) {
        const ObjectAddress *b = (const ObjectAddress *) lfirst(lc);
        if (b->classId == a->classId && b->objectId == a->objectId &&
            (b->objectSubId == 0 || b->objectSubId == a->objectSubId))
            return true;
    }
    return false;
}

/* The pg_depend rows of obj as the dependent (owners: true) or as the
 * referenced object, through the catalog's indexes. */
static SysScanDesc depend_scan(Relation dep, const ObjectAddress *obj, bool owners)
{
    ScanKeyData key[3];
    ScanKeyInit(&key[0], owners ? Anum_pg_depend_classid : Anum_pg_depend_refclassid,
                BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(obj->classId));
    ScanKeyInit(&key[1], owners ? Anum_pg_depend_objid : Anum_pg_depend_refobjid,
                BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(obj->objectId));
    ScanKeyInit(&key[2], owners ? Anum_pg_depend_objsubid : Anum_pg_depend_refobjsubid,
                BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(obj->objectSubId));
    return systable_beginscan(dep, owners ? DependDependerIndexId : DependReferenceIndexId, true,
                              nullptr, obj->objectSubId != 0 ? 3 : 2, key);
}

static void reach_walk(DropReach *r)
{
    Relation dep = table_open(DependRelationId, AccessShareLock);
    ListCell *lc;
    /* a named object that is part of another is refused by PostgreSQL,
     * unless that other object is named too */
    foreach (lc, r->originals) {
        const ObjectAddress *a = (const ObjectAddress *) lfirst(lc);
        bool part_of_other = false;
        SysScanDesc scan = depend_scan(dep, a, true);
        HeapTuple tup;
        while (HeapTupleIsValid(tup = systable_getnext(scan))) {
            Form_pg_depend d = (Form_pg_depend) GETSTRUCT(tup);
            if (d->deptype != DEPENDENCY_INTERNAL && d->deptype != DEPENDENCY_EXTENSION)
                continue;
            ObjectAddress owner = {d->refclassid, d->refobjid, d->refobjsubid};
            part_of_other |= !address_in(r->originals, &owner);
        }
        systable_endscan(scan);
        if (part_of_other) {
            r->fails = true;
            table_close(dep, AccessShareLock);
            return;
        }
        reach_push(r, a->classId, a->objectId, a->objectSubId);
    }
    while (r->work != NIL && !r->fails) {
        ObjectAddress a = *(ObjectAddress *) linitial(r->work);
        r->work = list_delete_first(r->work);
        bool found;
        (void) hash_search(r->seen, &a, HASH_ENTER, &found);
        if (found)
            continue;
        if (a.classId == RelationRelationId) {
            char kind = get_rel_relkind(a.objectId);
            if (kind == RELKIND_RELATION || kind == RELKIND_PARTITIONED_TABLE) {
                if (a.objectSubId == 0)
                    r->tables = lappend_oid(r->tables, a.objectId);
                else if (a.objectSubId > 0) {
                    ObjectAddress *c = (ObjectAddress *) palloc(sizeof(ObjectAddress));
                    *c = a;
                    r->columns = lappend(r->columns, c);
                }
            }
        }
        /* the object it is part of goes instead (with everything else) */
        SysScanDesc scan = depend_scan(dep, &a, true);
        HeapTuple tup;
        while (HeapTupleIsValid(tup = systable_getnext(scan))) {
            Form_pg_depend d = (Form_pg_depend) GETSTRUCT(tup);
            if (d->deptype == DEPENDENCY_INTERNAL || d->deptype == DEPENDENCY_EXTENSION)
                reach_push(r, d->refclassid, d->refobjid, d->refobjsubid);
        }
        systable_endscan(scan);
        /* what depends on it */
        scan = depend_scan(dep, &a, false);
        while (HeapTupleIsValid(tup = systable_getnext(scan))) {
            Form_pg_depend d = (Form_pg_depend) GETSTRUCT(tup);
            switch (d->deptype) {
                case DEPENDENCY_NORMAL:
                    if (!r->cascade) {
                        /* under RESTRICT PostgreSQL refuses the statement
                         * unless the object goes anyway by another path
                         * (reportDependentObjects): settled after the walk */
                        ObjectAddress *o = (ObjectAddress *) palloc(sizeof(ObjectAddress));
                        o->classId = d->classid;
                        o->objectId = d->objid;
                        o->objectSubId = d->objsubid;
                        r->normal = lappend(r->normal, o);
                        break;
                    }
                    reach_push(r, d->classid, d->objid, d->objsubid);
                    break;
                case DEPENDENCY_AUTO:
                case DEPENDENCY_INTERNAL:
                case DEPENDENCY_PARTITION_PRI:
                case DEPENDENCY_PARTITION_SEC:
                case DEPENDENCY_EXTENSION:
                case DEPENDENCY_AUTO_EXTENSION:
                    reach_push(r, d->classid, d->objid, d->objsubid);
                    break;
                default:
                    break;
            }
        }
        systable_endscan(scan);
    }
    table_close(dep, AccessShareLock);
    ListCell *nc;
    foreach (nc, r->normal) {
        ObjectAddress *o = (ObjectAddress *) lfirst(nc);
        ObjectAddress whole = {o->classId, o->objectId, 0};
        bool found_part, found_whole;
        (void) hash_search(r->seen, o, HASH_FIND, &found_part);
        (void) hash_search(r->seen, &whole, HASH_FIND, &found_whole);
        if (!found_part && !found_whole)
            r->fails = true;
    }
}

/* The tables relid inherits from, all levels up (partitions included). */
static List *ancestors_of(Oid relid)
{
    List *result = NIL;
    List *todo = list_make1_oid(relid);
    Relation inh = table_open(InheritsRelationId, AccessShareLock);
    while (todo != NIL) {
        Oid child = linitial_oid(todo);
        todo = list_delete_first(todo);
        ScanKeyData key;
        ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber, F_OIDEQ,
                    ObjectIdGetDatum(child));
        SysScanDesc scan = systable_beginscan(inh, InheritsRelidSeqnoIndexId, true, nullptr, 1, &key);
        HeapTuple tup;
        while (HeapTupleIsValid(tup = systable_getnext(scan))) {
            Oid parent = ((Form_pg_inherits) GETSTRUCT(tup))->inhparent;
            if (!list_member_oid(result, parent)) {
                result = lappend_oid(result, parent);
                todo = lappend_oid(todo, parent);
            }
        }
        systable_endscan(scan);
    }
    table_close(inh, AccessShareLock);
    return result;
}

static bool any_member(List *oids, List *set)
{
    ListCell *lc;
    foreach (lc, oids)
        if (list_member_oid(set, lfirst_oid(lc)))
            return true;
    return false;
}

struct ReachedDrop {
    char *name; /* first: compare_names sorts these (table, then column) */
    Oid relid;
    AttrNumber attnum;
};

/* Judge what dropping originals (ObjectAddress *) reaches, beyond what the
 * statement's own checks judged (judged: relation oids, their inheritors
 * included).  Only when predicting (migrate_plan, the precheck): when the
 * statement runs, the object access hook judges each as it goes. */
static void predict_reached_drops(List *originals, bool cascade, List *judged, const char *via)
{
    if (plan_capture == nullptr || originals == NIL)
        return;
    DropReach r;
    memset(&r, 0, sizeof(r));
    HASHCTL ctl;
    memset(&ctl, 0, sizeof(ctl));
    ctl.keysize = sizeof(ObjectAddress);
    ctl.entrysize = sizeof(ObjectAddress);
    ctl.hcxt = CurrentMemoryContext;
    r.seen = hash_create("safe_migrate reached objects", 256, &ctl,
                         HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
    r.originals = originals;
    r.cascade = cascade;
    reach_walk(&r);
    hash_destroy(r.seen);
    if (r.fails)
        return;

    List *covered = list_concat(list_copy(judged), r.tables);
    List *found = NIL; /* of ReachedDrop *, sorted by name */
    ListCell *lc;
    foreach (lc, r.tables) {
        Oid relid = lfirst_oid(lc);
        ObjectAddress whole = {RelationRelationId, relid, 0};
        if (list_member_oid(judged, relid) || address_in(originals, &whole))
            continue;
        /* counted in its parent's facts */
        if (any_member(ancestors_of(relid), covered))
            continue;
        if (OidIsValid(getExtensionOfObject(RelationRelationId, relid)))
            continue; /* an extension's own tables go with it */
        ReachedDrop *d = (ReachedDrop *) palloc(sizeof(ReachedDrop));
        d->name = qualified_name(relid);
        d->relid = relid;
        d->attnum = 0;
        found = lappend(found, d);
    }
    foreach (lc, r.columns) {
        const ObjectAddress *c = (const ObjectAddress *) lfirst(lc);
        if (address_in(originals, c) || list_member_oid(covered, c->objectId))
            continue;
        List *up = ancestors_of(c->objectId);
        if (any_member(up, covered))
            continue;
        char *column = get_attname(c->objectId, (AttrNumber) c->objectSubId, true);
        if (column == nullptr)
            continue;
        /* counted in a parent's column that goes too */
        bool in_parent = false;
        ListCell *ac, *cc;
        foreach (ac, up) {
            AttrNumber patt = get_attnum(lfirst_oid(ac), column);
            foreach (cc, r.columns) {
                const ObjectAddress *o = (const ObjectAddress *) lfirst(cc);
                in_parent |= o->objectId == lfirst_oid(ac) && o->objectSubId == patt;
            }
        }
        if (in_parent || OidIsValid(getExtensionOfObject(RelationRelationId, c->objectId)))
            continue;
        ReachedDrop *d = (ReachedDrop *) palloc(sizeof(ReachedDrop));
        d->name = psprintf("%s.%s", qualified_name(c->objectId), quote_identifier(column));
        d->relid = c->objectId;
        d->attnum = (AttrNumber) c->objectSubId;
        found = lappend(found, d);
    }
    list_sort(found, [](const ListCell *a, const ListCell *b) {
        return strcmp(((ReachedDrop *) lfirst(a))->name, ((ReachedDrop *) lfirst(b))->name);
    });
    foreach (lc, found) {
        ReachedDrop *d = (ReachedDrop *) lfirst(lc);
        pg::PolicyFacts f;
        if (d->attnum == 0) {
            init_facts(&f, kDropTable);
        } else {
            init_facts(&f, kDropColumn);
            f.column = quote_identifier(get_attname(d->relid, d->attnum, false));
        }
        f.via = via;
        table_facts(d->relid, nullptr, &f);
        enforce(&f);
    }
}

void judge_reached_table(Oid relid, bool truncate, const char *via)
{
    char kind = get_rel_relkind(relid);
    if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
        return;
    pg::PolicyFacts f;
    init_facts(&f, truncate ? kTruncate : kDropTable);
    f.via = via;
    table_facts(relid, nullptr, &f);
    enforce(&f);
}

/* The objects a DROP names, found without locking anything: relations by
 * their RangeVar, other objects by the lookups PostgreSQL's own name
 * resolution uses (get_object_address would lock each object, and a lock
 * held by the caller of migrate_apply on what the runner drops would never
 * be granted to the runner).  In a subtransaction: a name that does not
 * resolve, or resolves ambiguously, is the statement's error to report, not
 * ours.  Kinds whose drops reach no table column (operator classes, casts,
 * servers, ...) are left out. */
static Oid lookup_dropped(ObjectType type, Node *object)
{
    switch (type) {
        case OBJECT_SCHEMA:
            return get_namespace_oid(strVal(object), true);
        case OBJECT_EXTENSION:
            return get_extension_oid(strVal(object), true);
        case OBJECT_LANGUAGE:
            return get_language_oid(strVal(object), true);
        case OBJECT_TYPE:
        case OBJECT_DOMAIN: {
            Oid typid = LookupTypeNameOid(nullptr, castNode(TypeName, object), true);
            if (type == OBJECT_DOMAIN && OidIsValid(typid) && get_typtype(typid) != TYPTYPE_DOMAIN)
                return InvalidOid; /* PostgreSQL reports it */
            return typid;
        }
        case OBJECT_FUNCTION:
        case OBJECT_PROCEDURE:
        case OBJECT_ROUTINE:
        case OBJECT_AGGREGATE:
            return LookupFuncWithArgs(type, castNode(ObjectWithArgs, object), true);
        case OBJECT_OPERATOR:
            return LookupOperWithArgs(castNode(ObjectWithArgs, object), true);
        case OBJECT_COLLATION:
            return get_collation_oid(castNode(List, object), true);
        case OBJECT_TSCONFIGURATION:
            return get_ts_config_oid(castNode(List, object), true);
        default:
            return InvalidOid;
    }
}

static Oid catalog_of(ObjectType type)
{
    switch (type) {
        case OBJECT_SCHEMA: return NamespaceRelationId;
        case OBJECT_EXTENSION: return ExtensionRelationId;
        case OBJECT_LANGUAGE: return LanguageRelationId;
        case OBJECT_TYPE:
        case OBJECT_DOMAIN: return TypeRelationId;
        case OBJECT_FUNCTION:
        case OBJECT_PROCEDURE:
        case OBJECT_ROUTINE:
        case OBJECT_AGGREGATE: return ProcedureRelationId;
        case OBJECT_OPERATOR: return OperatorRelationId;
        case OBJECT_COLLATION: return CollationRelationId;
        case OBJECT_TSCONFIGURATION: return TSConfigRelationId;
        default: return InvalidOid;
    }
}

/* DROP TABLE / VIEW / MATERIALIZED VIEW / FOREIGN TABLE / SEQUENCE / INDEX:
 * a DROP whose names are relations. */
bool drop_of_relations(ObjectType type)
{
    switch (type) {
        case OBJECT_TABLE:
        case OBJECT_VIEW:
        case OBJECT_MATVIEW:
        case OBJECT_FOREIGN_TABLE:
        case OBJECT_SEQUENCE:
        case OBJECT_INDEX:
            return true;
        default:
            return false;
    }
}

/* The relations such a DROP names that exist (looked up without a lock:
 * the DROP holds them, or is about to take them); NIL for other DROPs. */
List *relations_a_drop_names(DropStmt *stmt)
{
    if (!drop_of_relations(stmt->removeType))
        return NIL;
    List *result = NIL;
    ListCell *lc;
    foreach (lc, stmt->objects) {
        RangeVar *rv = makeRangeVarFromNameList((List *) lfirst(lc));
        Oid relid = RangeVarGetRelid(rv, NoLock, true);
        if (OidIsValid(relid))
            result = lappend_oid(result, relid);
    }
    return result;
}

static List *drop_originals(DropStmt *stmt)
{
    List *result = NIL;
    ListCell *lc;
    if (drop_of_relations(stmt->removeType)) {
        List *relids = relations_a_drop_names(stmt);
        foreach (lc, relids) {
            ObjectAddress *a = (ObjectAddress *) palloc(sizeof(ObjectAddress));
            a->classId = RelationRelationId;
            a->objectId = lfirst_oid(lc);
            a->objectSubId = 0;
            result = lappend(result, a);
        }
        return result;
    }
    Oid classid = catalog_of(stmt->removeType);
    if (!OidIsValid(classid))
        return NIL;
    foreach (lc, stmt->objects) {
        Node *object = (Node *) lfirst(lc);
        ObjectType type = stmt->removeType;
        Oid found = InvalidOid;
        Oid *out = &found;
        ErrorData *failed = pg::in_subtransaction([out, type, object]() {
            *out = lookup_dropped(type, object);
        });
        pg::keep_cancel(failed);
        if (failed != nullptr || !OidIsValid(found))
            continue;
        ObjectAddress *a = (ObjectAddress *) palloc(sizeof(ObjectAddress));
        a->classId = classid;
        a->objectId = found;
        a->objectSubId = 0;
        result = lappend(result, a);
    }
    return result;
}

/* A table and the tables that inherit from it (its rows are counted in its
 * facts). */
static List *with_inheritors(List *judged, Oid relid)
{
    /* only migrate_plan's prediction of what else goes reads the list:
     * a statement being run is judged as PostgreSQL deletes (no scan of
     * pg_inherits for every DROP TABLE) */
    if (plan_capture == nullptr)
        return judged;
    return list_concat_unique_oid(judged, find_all_inheritors(relid, NoLock, nullptr));
}

/* DROP SCHEMA s CASCADE: every table of s goes.  Judged before anything is
 * locked (and so by migrate_plan too), by name; what else the drop takes
 * along is judged as it goes (check_dropped_relation). */
static List *check_drop_schema_cascade(DropStmt *stmt)
{
    List *judged = NIL; /* tables judged here, with their inheritors */
    ListCell *lc;
    foreach (lc, stmt->objects) {
        const char *schema = strVal(lfirst(lc));
        Oid nsp = get_namespace_oid(schema, true);
        if (!OidIsValid(nsp) || isAnyTempNamespace(nsp))
            continue;
        List *names = schema_tables(nsp);
        const char *via = psprintf("DROP SCHEMA %s CASCADE", quote_identifier(schema));
        ListCell *nc;
        foreach (nc, names) {
            Oid relid = get_relname_relid((const char *) lfirst(nc), nsp);
            if (!OidIsValid(relid) || OidIsValid(getExtensionOfObject(RelationRelationId, relid)))
                continue;
            pg::PolicyFacts f;
            init_facts(&f, kDropTable);
            f.via = via;
            table_facts(relid, quote_qualified_identifier(schema, (const char *) lfirst(nc)), &f);
            enforce(&f);
            if (!f.created_in_transaction && !f.temporary)
                remember_judged_drop(relid, nullptr);
            judged = with_inheritors(judged, relid);
        }
    }
    return judged;
}

/* DROP OWNED BY r: every table r owns in this database goes.  Judged before
 * anything is locked, like DROP SCHEMA ... CASCADE; what else goes with the
 * objects it drops is judged as it goes (check_dropped_relation). */
struct NamedTable {
    char *name; /* first: compare_names sorts these */
    Oid relid;
};

/* The objects role owns in this database (what DROP OWNED drops). */
static List *owned_objects(Oid role)
{
    List *result = NIL;
    Relation sd = table_open(SharedDependRelationId, AccessShareLock);
    ScanKeyData key[2];
    ScanKeyInit(&key[0], Anum_pg_shdepend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(AuthIdRelationId));
    ScanKeyInit(&key[1], Anum_pg_shdepend_refobjid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(role));
    SysScanDesc scan = systable_beginscan(sd, SharedDependReferenceIndexId, true, nullptr, 2, key);
    HeapTuple tup;
    while (HeapTupleIsValid(tup = systable_getnext(scan))) {
        Form_pg_shdepend d = (Form_pg_shdepend) GETSTRUCT(tup);
        if (d->deptype != SHARED_DEPENDENCY_OWNER || d->dbid != MyDatabaseId)
            continue;
        ObjectAddress *a = (ObjectAddress *) palloc(sizeof(ObjectAddress));
        a->classId = d->classid;
        a->objectId = d->objid;
        a->objectSubId = d->objsubid;
        result = lappend(result, a);
    }
    systable_endscan(scan);
    table_close(sd, AccessShareLock);
    return result;
}

static void check_drop_owned(DropOwnedStmt *stmt)
{
    ListCell *rc;
    foreach (rc, stmt->roles) {
        RoleSpec *spec = (RoleSpec *) lfirst(rc);
        if (spec->roletype == ROLESPEC_PUBLIC)
            continue;
        Oid role = get_rolespec_oid(spec, true);
        if (!OidIsValid(role))
            continue; /* PostgreSQL reports it */
        List *tables = NIL; /* of NamedTable *, sorted by name */
        Relation classrel = table_open(RelationRelationId, AccessShareLock);
        SysScanDesc scan = systable_beginscan(classrel, InvalidOid, false, nullptr, 0, nullptr);
        HeapTuple tup;
        while (HeapTupleIsValid(tup = systable_getnext(scan))) {
            Form_pg_class cls = (Form_pg_class) GETSTRUCT(tup);
            if (cls->relowner != role || cls->relispartition ||
                (cls->relkind != RELKIND_RELATION && cls->relkind != RELKIND_PARTITIONED_TABLE) ||
                cls->relpersistence == RELPERSISTENCE_TEMP)
                continue;
            NamedTable *t = (NamedTable *) palloc(sizeof(NamedTable));
            t->name = quote_qualified_identifier(get_namespace_name(cls->relnamespace),
                                                 NameStr(cls->relname));
            t->relid = cls->oid;
            tables = lappend(tables, t);
        }
        systable_endscan(scan);
        table_close(classrel, AccessShareLock);
        list_sort(tables, [](const ListCell *a, const ListCell *b) {
            return strcmp(((NamedTable *) lfirst(a))->name, ((NamedTable *) lfirst(b))->name);
        });
        List *judged = NIL; /* tables judged here, with their inheritors */
        const char *via = psprintf("DROP OWNED BY %s",
                                   quote_identifier(GetUserNameFromId(role, false)));
        ListCell *nc;
        foreach (nc, tables) {
            NamedTable *t = (NamedTable *) lfirst(nc);
            if (OidIsValid(getExtensionOfObject(RelationRelationId, t->relid)))
                continue;
            pg::PolicyFacts f;
            init_facts(&f, kDropTable);
            f.via = via;
            table_facts(t->relid, t->name, &f);
            enforce(&f);
            if (!f.created_in_transaction && !f.temporary)
                remember_judged_drop(t->relid, nullptr);
            judged = with_inheritors(judged, t->relid);
        }
        /* what else goes with the objects it owns here (a column of
         * another role's table of its type, ...) */
        if (plan_capture != nullptr)
            predict_reached_drops(owned_objects(role), stmt->behavior == DROP_CASCADE, judged,
                                  "DROP OWNED");
    }
}

static void check_drop(DropStmt *stmt)
{
    bool cascade = stmt->behavior == DROP_CASCADE;
    const char *via = GetCommandTagName(CreateCommandTag((Node *) stmt));
    if (stmt->removeType == OBJECT_SCHEMA && cascade) {
        List *judged = check_drop_schema_cascade(stmt);
        if (plan_capture != nullptr)
            predict_reached_drops(drop_originals(stmt), cascade, judged, via);
        return;
    }
    if (stmt->removeType != OBJECT_TABLE && stmt->removeType != OBJECT_INDEX) {
        /* DROP DOMAIN / TYPE / FUNCTION / EXTENSION / VIEW ...: the tables
         * and columns it reaches (predicted; judged as they go when it
         * runs) */
        if (plan_capture != nullptr)
            predict_reached_drops(drop_originals(stmt), cascade, NIL, via);
        return;
    }
    List *judged = NIL; /* tables judged here, with their inheritors */
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
            if (!f.created_in_transaction && !f.temporary)
                remember_judged_drop(relid, nullptr);
            judged = with_inheritors(judged, relid);
        } else {
            Oid table = IndexGetRelation(relid, true);
            if (!OidIsValid(table))
                continue;
            init_facts(&f, kDropIndex);
            f.index = written(rv);
            f.concurrently = stmt->concurrent;
            /* a partitioned index goes with its partitions' indexes; an
             * inheritance parent's index is its own */
            table_facts(table, nullptr, &f, Reach::Partitions);
        }
        enforce(&f);
    }
    /* what goes with them: inheritance children, columns of their row
     * type, ... */
    if (plan_capture != nullptr)
        predict_reached_drops(drop_originals(stmt), cascade, judged, via);
}

/* Is it a table (plain or partitioned), whatever the statement called it? */
static bool is_table_kind(Oid relid)
{
    char kind = get_rel_relkind(relid);
    return kind == RELKIND_RELATION || kind == RELKIND_PARTITIONED_TABLE;
}

/* ALTER SCHEMA s RENAME TO s2: every table of s moves away from the names
 * applications use. */
static void check_schema_rename(RenameStmt *stmt)
{
    Oid nsp = get_namespace_oid(stmt->subname, true);
    if (!OidIsValid(nsp))
        return; /* the statement reports it */
    const char *via = psprintf("ALTER SCHEMA %s RENAME TO %s", quote_identifier(stmt->subname),
                               quote_identifier(stmt->newname));
    List *tables = schema_tables(nsp);
    ListCell *lc;
    foreach (lc, tables) {
        const char *name = (const char *) lfirst(lc);
        Oid relid = get_relname_relid(name, nsp);
        if (!OidIsValid(relid))
            continue;
        pg::PolicyFacts f;
        init_facts(&f, kRenameTable);
        f.new_name = quote_qualified_identifier(stmt->newname, name);
        f.via = via;
        table_facts(relid, quote_qualified_identifier(stmt->subname, name), &f);
        enforce(&f);
    }
}

/* ALTER TABLE / VIEW / ... t SET SCHEMA s: the table moves away from its
 * name, whatever the statement called it. */
static void check_set_schema(AlterObjectSchemaStmt *stmt)
{
    /* only ALTER TABLE moves a table (ALTER VIEW / SEQUENCE / ... of a table
     * is PostgreSQL's own error) */
    if (stmt->relation == nullptr || stmt->objectType != OBJECT_TABLE)
        return;
    Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
    if (!OidIsValid(relid) || !is_table_kind(relid))
        return;
    Oid nsp = get_namespace_oid(stmt->newschema, true);
    if (!OidIsValid(nsp) || nsp == get_rel_namespace(relid))
        return; /* an error, or no move at all */
    const char *table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
                                                   get_rel_name(relid));
    pg::PolicyFacts f;
    init_facts(&f, kRenameTable);
    f.new_name = quote_qualified_identifier(stmt->newschema, get_rel_name(relid));
    f.via = psprintf("ALTER TABLE %s SET SCHEMA %s", table, quote_identifier(stmt->newschema));
    table_facts(relid, table, &f);
    enforce(&f);
}

/* A rename is judged by what it renames: ALTER INDEX t RENAME TO on a
 * table renames the table; ALTER VIEW / MATERIALIZED VIEW / FOREIGN TABLE t
 * RENAME COLUMN and ALTER TYPE t RENAME ATTRIBUTE rename a column of table t. */
/* RENAME COLUMN of a column that does not exist (PostgreSQL reports it) or
 * that this migration added (nobody uses it yet). */
static bool renamed_column_is_new(Oid relid, const char *name, const char *new_name)
{
    if (get_attnum(relid, name) == InvalidAttrNumber)
        return true;
    /* the new column of an online type change taking the name of the
     * column it replaced: dropped earlier in this transaction, its drop let
     * through because the trigger copies it into this one and the copy was
     * verified (column_replaced_online).  A trigger alone proves nothing:
     * any owner can create one. */
    if (get_attnum(relid, new_name) == InvalidAttrNumber && replaced_in_transaction(relid, new_name) &&
        sync_trigger_copies(relid, new_name, name))
        return true;
    return renames_added_column(relid, name, new_name);
}

static void check_rename(RenameStmt *stmt)
{
    if (stmt->renameType == OBJECT_SCHEMA) {
        check_schema_rename(stmt);
        return;
    }
    if (stmt->relation == nullptr)
        return;
    bool column = stmt->renameType == OBJECT_COLUMN || stmt->renameType == OBJECT_ATTRIBUTE;
    /* (ALTER VIEW / SEQUENCE / ... t RENAME TO on a table is PostgreSQL's own
     * error: not ours to report first) */
    bool table = !column && (stmt->renameType == OBJECT_TABLE || stmt->renameType == OBJECT_INDEX);
    if (!table && !column)
        return;
    Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
    /* ALTER TYPE ... RENAME ATTRIBUTE ... CASCADE renames the column of
     * every typed table of the type */
    if (stmt->renameType == OBJECT_ATTRIBUTE && OidIsValid(relid) &&
        get_rel_relkind(relid) == RELKIND_COMPOSITE_TYPE) {
        check_composite_attribute(relid, written(stmt->relation), stmt->subname, stmt->newname);
        if (stmt->behavior != DROP_CASCADE)
            return; /* PostgreSQL refuses it while typed tables exist */
        ListCell *lc;
        typed_of = written(stmt->relation);
        PG_TRY();
        {
            foreach (lc, typed_tables_of(relid)) {
                Oid typed = lfirst_oid(lc);
                RenameStmt *each = (RenameStmt *) copyObjectImpl(stmt);
                each->renameType = OBJECT_COLUMN;
                each->relationType = OBJECT_TABLE;
                each->relation =
                    makeRangeVar(get_namespace_name(get_rel_namespace(typed)), get_rel_name(typed), -1);
                check_rename(each);
            }
        }
        PG_FINALLY();
        {
            typed_of = nullptr;
        }
        PG_END_TRY();
        return;
    }
    if (!OidIsValid(relid) || !is_table_kind(relid))
        return;
    if (column && renamed_column_is_new(relid, stmt->subname, stmt->newname))
        return;
    /* to a name already taken: PostgreSQL reports it (a column of the
     * table; a relation of the schema) */
    if (column && get_attnum(relid, stmt->newname) != InvalidAttrNumber)
        return;
    if (!column && OidIsValid(get_relname_relid(stmt->newname, get_rel_namespace(relid))))
        return;
    pg::PolicyFacts f;
    init_facts(&f, table ? kRenameTable : kRenameColumn);
    f.new_name = quote_identifier(stmt->newname);
    if (column)
        f.column = quote_identifier(stmt->subname);
    table_facts(relid, written(stmt->relation), &f);
    /* a column renamed on a new parent is renamed on its existing children */
    if (column)
        reach_existing_children(relid, stmt->relation->inh ? Reach::All : Reach::Self, &f);
    enforce(&f);
}

/* A unique index REFRESH MATERIALIZED VIEW CONCURRENTLY can use (valid,
 * immediate, on plain columns, without WHERE: PostgreSQL's own test), or NULL. */
static const char *refresh_key_index(Oid relid)
{
    Relation rel = RelationIdGetRelation(relid);
    if (!RelationIsValid(rel))
        return nullptr;
    List *indexes = RelationGetIndexList(rel);
    RelationClose(rel);
    const char *found = nullptr;
    ListCell *lc;
    foreach (lc, indexes) {
        Oid index = lfirst_oid(lc);
        HeapTuple it = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(index));
        if (!HeapTupleIsValid(it))
            continue;
        Form_pg_index idx = (Form_pg_index) GETSTRUCT(it);
        bool usable = idx->indisunique && idx->indimmediate && idx->indisvalid &&
                      heap_attisnull(it, Anum_pg_index_indpred, nullptr) && idx->indnkeyatts > 0;
        for (int i = 0; usable && i < idx->indnkeyatts; i++)
            usable = idx->indkey.values[i] > 0;
        ReleaseSysCache(it);
        if (usable) {
            found = quote_identifier(get_rel_name(index));
            break;
        }
    }
    list_free(indexes);
    return found;
}

/* REFRESH MATERIALIZED VIEW without CONCURRENTLY holds ACCESS EXCLUSIVE on
 * the view while its query runs: reads wait.  WITH NO DATA only empties it. */
static void check_refresh(RefreshMatViewStmt *stmt)
{
    if (stmt->concurrent || stmt->skipData)
        return;
    Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
    if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_MATVIEW)
        return; /* PostgreSQL reports it */
    pg::PolicyFacts f;
    init_facts(&f, kRefreshMatview);
    f.concurrently = stmt->concurrent;
    table_facts(relid, written(stmt->relation), &f, Reach::Self);
    if (!f.created_in_transaction && !f.temporary)
        f.index = refresh_key_index(relid);
    enforce(&f);
}

/* A table a migration is about to create: remembered by name (not one that
 * exists already: IF NOT EXISTS skips it; not a temporary one) */
static void note_created_rv(RangeVar *rv)
{
    if (!migration.active || rv == nullptr || rv->relpersistence == RELPERSISTENCE_TEMP)
        return;
    Oid nsp = rv->schemaname ? get_namespace_oid(rv->schemaname, true) : RangeVarGetCreationNamespace(rv);
    if (!OidIsValid(nsp) || isAnyTempNamespace(nsp) || OidIsValid(get_relname_relid(rv->relname, nsp)))
        return;
    note_created_table(nsp, rv->relname);
}

static void note_created(CreateStmt *stmt)
{
    note_created_rv(stmt->relation);
}

/* ALTER EXTENSION e ADD TABLE t: an extension's tables go with it (the
 * drop rules leave them to DROP EXTENSION), so handing it a table that
 * exists is the drop of that table, one DROP EXTENSION later. */
static void check_extension_add(AlterExtensionContentsStmt *stmt)
{
    if (stmt->action <= 0 || !active_here())
        return;
    if (stmt->objtype != OBJECT_TABLE && stmt->objtype != OBJECT_MATVIEW &&
        stmt->objtype != OBJECT_FOREIGN_TABLE)
        return;
    RangeVar *rv = makeRangeVarFromNameList(castNode(List, stmt->object));
    Oid relid = RangeVarGetRelid(rv, NoLock, true);
    if (!OidIsValid(relid) || created_in_this_transaction(relid))
        return;
    pg::PolicyFacts f;
    init_facts(&f, kDropTable);
    f.via = psprintf("ALTER EXTENSION %s ADD (a later DROP EXTENSION %s)",
                     quote_identifier(stmt->extname), quote_identifier(stmt->extname));
    table_facts(relid, nullptr, &f);
    enforce(&f);
}

/* list_sort of (relid, attnum) pairs by the table's qualified name */
struct EnumColumn {
    char *table;
    Oid relid;
    AttrNumber att;
};

static int compare_enum_columns(const ListCell *a, const ListCell *b)
{
    const EnumColumn *x = (const EnumColumn *) lfirst(a), *y = (const EnumColumn *) lfirst(b);
    int c = strcmp(x->table, y->table);
    return c != 0 ? c : (int) x->att - (int) y->att;
}

/* ALTER TYPE ... RENAME VALUE of an enum: every stored row holding the old
 * label reads back as the new one at commit, and application code writing
 * or comparing the old label fails or finds nothing.  Judged on each
 * column of an existing table that holds the type (directly, as an array,
 * inside a composite type, or through domains over any of these).  ADD
 * VALUE changes nothing stored. */
static void check_enum_rename(AlterEnumStmt *stmt)
{
    if (stmt->oldVal == nullptr || stmt->newVal == nullptr)
        return;
    Type tup = LookupTypeName(nullptr, makeTypeNameFromNameList(stmt->typeName), nullptr, true);
    if (tup == nullptr)
        return; /* PostgreSQL reports it */
    Oid typid = typeTypeId(tup);
    ReleaseSysCache(tup);
    if (get_typtype(typid) != TYPTYPE_ENUM)
        return;
    /* an old label that does not exist, a new one that does: PostgreSQL's
     * to report */
    HeapTuple et = SearchSysCache2(ENUMTYPOIDNAME, ObjectIdGetDatum(typid), CStringGetDatum(stmt->oldVal));
    if (!HeapTupleIsValid(et))
        return;
    ReleaseSysCache(et);
    et = SearchSysCache2(ENUMTYPOIDNAME, ObjectIdGetDatum(typid), CStringGetDatum(stmt->newVal));
    if (HeapTupleIsValid(et)) {
        ReleaseSysCache(et);
        return;
    }
    List *rels = NIL, *atts = NIL;
    /* (as an array, through a domain, inside a composite type too) */
    columns_of_type(typid, true, &rels, &atts, 0);
    List *columns = NIL;
    ListCell *rc, *ac;
    forboth (rc, rels, ac, atts) {
        EnumColumn *c = (EnumColumn *) palloc(sizeof(EnumColumn));
        c->relid = lfirst_oid(rc);
        c->att = (AttrNumber) lfirst_int(ac);
        c->table = qualified_name(c->relid);
        columns = lappend(columns, c);
    }
    list_sort(columns, compare_enum_columns);
    const char *type_name = format_type_be_qualified(typid);
    ListCell *lc;
    foreach (lc, columns) {
        EnumColumn *c = (EnumColumn *) lfirst(lc);
        const char *column = get_attname(c->relid, c->att, true);
        if (column == nullptr)
            continue;
        pg::PolicyFacts f;
        init_facts(&f, kRenameEnumValue);
        f.column = quote_identifier(column);
        f.column_type = type_name;
        f.expression = quote_literal_cstr(stmt->oldVal);
        f.new_name = quote_literal_cstr(stmt->newVal);
        /* a column of an array or composite type holds it inside its values */
        Oid column_type = get_atttype(c->relid, c->att);
        if (getBaseType(column_type) != typid)
            f.via = format_type_be_qualified(column_type);
        table_facts(c->relid, nullptr, &f);
        if (f.created_in_transaction || f.temporary)
            continue;
        enforce(&f);
    }
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
        case T_AlterDomainStmt:
            check_alter_domain((AlterDomainStmt *) parsetree);
            break;
        case T_AlterObjectSchemaStmt:
            check_set_schema((AlterObjectSchemaStmt *) parsetree);
            break;
        case T_CreateStmt:
            check_create_partition((CreateStmt *) parsetree);
            note_created((CreateStmt *) parsetree);
            break;
        case T_DropOwnedStmt:
            check_drop_owned((DropOwnedStmt *) parsetree);
            break;
        case T_RefreshMatViewStmt:
            check_refresh((RefreshMatViewStmt *) parsetree);
            break;
        case T_AlterTableMoveAllStmt:
            check_move_all((AlterTableMoveAllStmt *) parsetree);
            break;
        case T_CreateTableAsStmt:
            if (((CreateTableAsStmt *) parsetree)->into)
                note_created_rv(((CreateTableAsStmt *) parsetree)->into->rel);
            break;
        case T_AlterExtensionContentsStmt:
            check_extension_add((AlterExtensionContentsStmt *) parsetree);
            break;
        case T_AlterEnumStmt:
            check_enum_rename((AlterEnumStmt *) parsetree);
            break;
        default:
            break;
    }
}

/* Why an added column makes PostgreSQL write every row, for the hint: an
 * identity, a serial, a stored generated column, a domain with constraints
 * (expression: its base type), a volatile default.  Leaves f alone for a
 * column that does not (a constant default next to the one that does). */
static void added_column_rewrite(ColumnDef *def, pg::PolicyFacts *f)
{
    if (def == nullptr || !IsA(def, ColumnDef))
        return;
    const char *kind = nullptr;
    const char *type = def->typeName ? type_text(def->typeName) : nullptr;
    const char *base = nullptr;
    if (def->identity)
        kind = "identity";
    else if (def->generated == ATTRIBUTE_GENERATED_STORED)
        kind = "generated";
    ListCell *cc;
    foreach (cc, def->constraints) {
        Constraint *con = (Constraint *) lfirst(cc);
        if (kind)
            break;
        if (con->contype == CONSTR_IDENTITY)
            kind = "identity";
        else if (con->contype == CONSTR_GENERATED)
            kind = "generated";
    }
    if (kind == nullptr && is_serial(def->typeName)) {
        kind = "serial";
        const char *name = strVal(linitial(def->typeName->names));
        type = strncmp(name, "big", 3) == 0 || strcmp(name, "serial8") == 0     ? "bigint"
               : strncmp(name, "small", 5) == 0 || strcmp(name, "serial2") == 0 ? "smallint"
                                                                                 : "integer";
    }
    if (kind == nullptr && def->typeName) {
        Type t = LookupTypeName(nullptr, def->typeName, nullptr, true);
        if (t != nullptr) {
            Oid typid = typeTypeId(t);
            ReleaseSysCache(t);
            if (get_typtype(typid) == TYPTYPE_DOMAIN && DomainHasConstraints(typid)) {
                kind = "domain";
                base = format_type_be(getBaseType(typid));
            }
        }
    }
    if (kind == nullptr) {
        Node *raw = def->raw_default;
        foreach (cc, def->constraints) {
            Constraint *con = (Constraint *) lfirst(cc);
            if (con->contype == CONSTR_DEFAULT && con->raw_expr)
                raw = con->raw_expr;
        }
        if (raw == nullptr || !default_is_volatile(raw))
            return;
        kind = "volatile default";
    }
    f->added_kind = kind;
    f->column = quote_identifier(def->colname);
    f->column_type = type;
    f->expression = base;
}

/* Indexes an ALTER TABLE statement dropped to build again (note_rebuilt_index),
 * by table: a few entries, for the statement that dropped them (its
 * transaction, its start and its parse tree), taken by the rewrite judged
 * after. */
struct RebuiltIndexes {
    LocalTransactionId lxid;
    TimestampTz statement_start;
    const Node *statement;
    Oid table;
    int64 bytes;
};
constexpr int kMaxRebuiltTables = 16;
static RebuiltIndexes rebuilt_indexes[kMaxRebuiltTables];

static bool same_statement_as(const RebuiltIndexes &r, const Node *statement)
{
    return r.lxid == pg::compat::my_lxid() && r.statement == statement &&
           r.statement_start == GetCurrentStatementStartTimestamp();
}

void note_rebuilt_index(Oid indexid, Node *statement)
{
    if (get_rel_relkind(indexid) != RELKIND_INDEX)
        return; /* (a partitioned index has no storage; its partitions' do) */
    Oid table = IndexGetRelation(indexid, true);
    if (!OidIsValid(table))
        return;
    int64 bytes = relid_main_fork_bytes(indexid);
    RebuiltIndexes *free_slot = nullptr;
    for (RebuiltIndexes &r : rebuilt_indexes) {
        if (OidIsValid(r.table) && same_statement_as(r, statement) && r.table == table) {
            r.bytes += bytes;
            return;
        }
        if (free_slot == nullptr && (!OidIsValid(r.table) || !same_statement_as(r, statement)))
            free_slot = &r;
    }
    if (free_slot == nullptr)
        return; /* more than kMaxRebuiltTables tables in one statement: not counted */
    *free_slot = {pg::compat::my_lxid(), GetCurrentStatementStartTimestamp(), statement, table,
                  bytes};
}

/* Bytes of the indexes the statement dropped on table to build again. */
static int64 take_rebuilt_index_bytes(Oid table, const Node *statement)
{
    int64 bytes = 0;
    for (RebuiltIndexes &r : rebuilt_indexes)
        if (OidIsValid(r.table) && r.table == table && same_statement_as(r, statement)) {
            bytes += r.bytes;
            r.table = InvalidOid;
        }
    return bytes;
}

void check_table_rewrite(Oid relid, int reasons, Node *parsetree)
{
    pg::PolicyFacts f;
    init_facts(&f, kTableRewrite);
    f.rewrite_reasons = reasons;
    const char *table = nullptr;
    if (parsetree && IsA(parsetree, AlterTableStmt)) {
        AlterTableStmt *stmt = (AlterTableStmt *) parsetree;
        /* (ALTER TYPE ... CASCADE rewrites the typed tables: named by relid) */
        if (stmt->objtype == OBJECT_TABLE)
            table = written(stmt->relation);
        else if (stmt->objtype == OBJECT_TYPE)
            f.typed_of = written(stmt->relation);
        ListCell *lc;
        foreach (lc, stmt->cmds) {
            AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
            if (cmd->subtype == AT_AddColumn && (reasons & 0x02) && f.added_kind == nullptr)
                added_column_rewrite((ColumnDef *) cmd->def, &f);
            if (cmd->subtype == AT_AlterColumnType && (reasons & 0x04)) {
                f.type_change = true;
                f.column = quote_identifier(cmd->name);
                ColumnDef *def = (ColumnDef *) cmd->def;
                if (def && def->typeName)
                    f.column_type = type_text(def->typeName);
                /* the hint fills the new column by the USING expression */
                if (def && def->raw_default)
                    f.expression = using_text_of(relid, cmd->name);
            }
        }
    }
    table_facts(relid, table, &f);
    /* the indexes it builds again after the rewrite (dropped a moment ago)
     * are part of the table's size, as they were when the statement began */
    int64 rebuilt = parsetree != nullptr ? take_rebuilt_index_bytes(relid, parsetree) : 0;
    if (rebuilt > 0 && !f.created_in_transaction && !f.temporary) {
        resolve_size(&f);
        f.bytes += rebuilt;
    }
    enforce(&f);
    /* then the foreign keys PostgreSQL adds again after the rewrite */
    if (reasons & 0x04)
        judge_rechecked_keys_of(relid);
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
    /* VACUUM, CLUSTER and REINDEX process a partitioned table's partitions,
     * not an inheritance parent's children */
    table_facts(relid, written(rv), &f, Reach::Partitions);
    enforce(&f);
}

/*
 * TRUNCATE judged on every table it empties: the tables it names, their
 * inheritance children and partitions (unless ONLY) and, with CASCADE,
 * every table that refers to one of those through a foreign key, again and
 * again, as ExecuteTruncate finds them.  A table named is judged with its
 * children's rows counted; its children are judged on their own only when
 * it is exempt itself (created in this transaction: TRUNCATE of a parent
 * made a moment ago after ALTER TABLE big INHERIT parent).
 */
static void check_truncate(TruncateStmt *stmt)
{
    List *truncated = NIL;
    StringInfoData names;
    initStringInfo(&names);
    ListCell *lc;
    foreach (lc, stmt->relations) {
        RangeVar *rv = (RangeVar *) lfirst(lc);
        Oid relid = RangeVarGetRelid(rv, NoLock, true);
        if (!OidIsValid(relid) || !is_table_kind(relid) || list_member_oid(truncated, relid))
            continue;
        appendStringInfo(&names, "%s%s%s", names.len ? ", " : "", rv->inh ? "" : "ONLY ",
                         written(rv));
        pg::PolicyFacts f;
        init_facts(&f, kTruncate);
        table_facts(relid, written(rv), &f, rv->inh ? Reach::All : Reach::Self);
        enforce(&f);
        truncated = lappend_oid(truncated, relid);
        if (!rv->inh)
            continue;
        bool exempt = f.created_in_transaction || f.temporary;
        List *all = find_all_inheritors(relid, NoLock, nullptr);
        ListCell *cc;
        foreach (cc, all) {
            Oid child = lfirst_oid(cc);
            if (child == relid || list_member_oid(truncated, child))
                continue;
            truncated = lappend_oid(truncated, child);
            if (!exempt)
                continue; /* counted in its parent's facts */
            pg::PolicyFacts c;
            init_facts(&c, kTruncate);
            c.via = psprintf("TRUNCATE %s", written(rv));
            table_facts(child, nullptr, &c);
            enforce(&c);
        }
    }
    if (stmt->behavior != DROP_CASCADE || truncated == NIL)
        return;
    const char *via = psprintf("TRUNCATE %s CASCADE", names.data);
    for (;;) {
        List *referring = heap_truncate_find_FKs(truncated);
        bool added = false;
        foreach (lc, referring) {
            Oid relid = lfirst_oid(lc);
            if (list_member_oid(truncated, relid))
                continue;
            truncated = lappend_oid(truncated, relid);
            added = true;
            pg::PolicyFacts f;
            init_facts(&f, kTruncate);
            f.cascade = true;
            f.via = via;
            table_facts(relid, nullptr, &f);
            enforce(&f);
        }
        if (!added)
            break;
    }
}

/* Bytes under a directory (one level: a database's directory), by stat(). */
static int64 directory_bytes(const char *path)
{
    int64 total = 0;
    DIR *dir = AllocateDir(path);
    if (dir == nullptr)
        return 0;
    struct dirent *de;
    while ((de = ReadDirExtended(dir, path, LOG)) != nullptr) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *file = psprintf("%s/%s", path, de->d_name);
        struct stat st;
        if (stat(file, &st) == 0 && S_ISREG(st.st_mode))
            total += st.st_size;
        pfree(file);
    }
    FreeDir(dir);
    return total;
}

/* ban-drop-database: DROP DATABASE of an existing database (its size: its
 * directory in the default tablespace and in every other one). */
static void check_drop_database(DropdbStmt *stmt)
{
    Oid db = get_database_oid(stmt->dbname, true);
    if (!OidIsValid(db))
        return; /* PostgreSQL reports it (or IF EXISTS skips it) */
    pg::PolicyFacts f;
    init_facts(&f, kDropDatabase);
    f.table = quote_identifier(stmt->dbname);
    f.bytes = directory_bytes(psprintf("base/%u", db));
    DIR *spaces = AllocateDir("pg_tblspc");
    if (spaces != nullptr) {
        struct dirent *de;
        while ((de = ReadDirExtended(spaces, "pg_tblspc", LOG)) != nullptr) {
            if (de->d_name[0] == '.')
                continue;
            f.bytes += directory_bytes(
                psprintf("pg_tblspc/%s/%s/%u", de->d_name, TABLESPACE_VERSION_DIRECTORY, db));
        }
        FreeDir(spaces);
    }
    enforce(&f);
}

/* Statements event triggers do not see (TRUNCATE, VACUUM, CLUSTER, REINDEX,
 * DROP DATABASE in PostgreSQL 15), checked from the ProcessUtility hook. */
/* Has the table an index marked by ALTER TABLE ... CLUSTER ON? */
static bool has_clustered_index(Oid relid)
{
    Relation rel = RelationIdGetRelation(relid);
    if (!RelationIsValid(rel))
        return false;
    List *indexes = RelationGetIndexList(rel);
    RelationClose(rel);
    bool found = false;
    ListCell *lc;
    foreach (lc, indexes) {
        HeapTuple it = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
        if (!HeapTupleIsValid(it))
            continue;
        found |= ((Form_pg_index) GETSTRUCT(it))->indisclustered;
        ReleaseSysCache(it);
    }
    list_free(indexes);
    return found;
}

void check_utility(Node *parsetree)
{
    switch (nodeTag(parsetree)) {
        case T_TruncateStmt:
            check_truncate((TruncateStmt *) parsetree);
            break;
        case T_DropdbStmt:
            check_drop_database((DropdbStmt *) parsetree);
            break;
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
            if (stmt->rels == NIL) {
                check_sweep(Sweep::VacuumFull, InvalidOid, false, nullptr);
                break;
            }
            foreach (lc, stmt->rels) {
                VacuumRelation *vr = (VacuumRelation *) lfirst(lc);
                if (vr->relation)
                    check_relation_by_rangevar(vr->relation, kVacuumFull, false, nullptr);
            }
            break;
        }
        case T_ClusterStmt: {
            ClusterStmt *stmt = (ClusterStmt *) parsetree;
            if (stmt->relation) {
                /* without an index it can use (USING a missing one, or none
                 * marked CLUSTER ON) PostgreSQL refuses it: its own error */
                Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
                if (!OidIsValid(relid))
                    break;
                if (stmt->indexname) {
                    if (!OidIsValid(get_relname_relid(stmt->indexname, get_rel_namespace(relid))))
                        break;
                } else if (get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE &&
                           !has_clustered_index(relid))
                    break;
                check_relation_by_rangevar(stmt->relation, kCluster, false, nullptr);
            } else
                check_sweep(Sweep::Cluster, InvalidOid, false, nullptr);
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
            if (stmt->relation == nullptr) {
                if (stmt->kind == REINDEX_OBJECT_SCHEMA && stmt->name) {
                    Oid nsp = get_namespace_oid(stmt->name, true);
                    if (OidIsValid(nsp))
                        check_sweep(Sweep::ReindexSchema, nsp, concurrently,
                                    psprintf("SCHEMA %s", quote_identifier(stmt->name)));
                } else if (stmt->kind == REINDEX_OBJECT_DATABASE)
                    check_sweep(Sweep::ReindexDatabase, InvalidOid, concurrently,
                                psprintf("DATABASE %s", quote_identifier(get_database_name(MyDatabaseId))));
                else if (stmt->kind == REINDEX_OBJECT_SYSTEM)
                    check_sweep(Sweep::ReindexSystem, InvalidOid, concurrently,
                                psprintf("SYSTEM %s", quote_identifier(get_database_name(MyDatabaseId))));
                break;
            }
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
                table_facts(table, nullptr, &f, Reach::Partitions);
                enforce(&f);
            }
            break;
        }
        default:
            break;
    }
}

/* The UPDATE / DELETE the runner is judging, while check_large_dml runs,
 * and the table it names; the table being reported now.  For the refusal's
 * HINT: online execution may take the statement over, when the rows are
 * its own table's (not a trigger's work elsewhere). */
static Node *judged_dml = nullptr;
static Oid judged_dml_relid = InvalidOid;
static Oid reporting_relid = InvalidOid;

LOCKMODE strongest_held_table_lock(Oid *relid)
{
    *relid = InvalidOid;
    LockData *data = GetLockStatusData();
    LOCKMODE best = NoLock;
    char *best_name = nullptr;
    for (int i = 0; i < data->nelements; i++) {
        LockInstanceData *l = &data->locks[i];
        if (l->pid != MyProcPid || l->locktag.locktag_type != LOCKTAG_RELATION ||
            l->locktag.locktag_field1 != MyDatabaseId)
            continue;
        Oid rel = l->locktag.locktag_field2;
        LOCKMODE mode = NoLock;
        for (LOCKMODE m = AccessExclusiveLock; m >= ShareLock; m--)
            if (l->holdMask & LOCKBIT_ON(m)) {
                mode = m;
                break;
            }
        if (mode == NoLock || mode < best)
            continue;
        char kind = get_rel_relkind(rel);
        if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE && kind != RELKIND_MATVIEW)
            continue;
        /* what no application uses yet */
        if (get_rel_persistence(rel) == RELPERSISTENCE_TEMP || created_in_this_transaction(rel) ||
            is_created_table(get_rel_namespace(rel), get_rel_name(rel)))
            continue;
        char *name = qualified_name(rel);
        if (mode > best || strcmp(name, best_name) < 0) {
            best = mode;
            best_name = name;
            *relid = rel;
        }
    }
    return best;
}

void check_large_dml_on(Oid relid, double rows, bool is_delete, LOCKMODE held, Oid held_relid,
                        bool is_read)
{
    pg::PolicyFacts f;
    init_facts(&f, kLargeDml);
    f.rows_affected = rows;
    f.is_delete = is_delete;
    f.is_read = is_read;
    if (held != NoLock && OidIsValid(held_relid)) {
        f.held_lock = held;
        f.held_on = qualified_name(held_relid);
    }
    table_facts(relid, nullptr, &f);
    reporting_relid = relid;
    enforce(&f);
    reporting_relid = InvalidOid;
}


Node *current_dml_statement(void)
{
    return judged_dml != nullptr && OidIsValid(judged_dml_relid) &&
                   reporting_relid == judged_dml_relid
               ? judged_dml
               : nullptr;
}

static void check_large_dml_now(RawStmt *raw, double rows);

void check_large_dml(RawStmt *raw, double rows)
{
    /* migrate_plan predicts from the statement and its estimate (plan.cpp) */
    if (!migration.active)
        return;
    RangeVar *rv = IsA(raw->stmt, UpdateStmt)   ? ((UpdateStmt *) raw->stmt)->relation
                   : IsA(raw->stmt, DeleteStmt) ? ((DeleteStmt *) raw->stmt)->relation
                                                : nullptr;
    judged_dml = raw->stmt;
    judged_dml_relid = rv ? RangeVarGetRelid(rv, NoLock, true) : InvalidOid;
    PG_TRY();
    {
        check_large_dml_now(raw, rows);
    }
    PG_FINALLY();
    {
        judged_dml = nullptr;
        judged_dml_relid = InvalidOid;
        reporting_relid = InvalidOid;
    }
    PG_END_TRY();
}

static void check_large_dml_now(RawStmt *raw, double rows)
{
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
    reporting_relid = relid;
    enforce(&f);
    reporting_relid = InvalidOid;
}

}  // namespace safe_migrate::policy
