/*
 * online_type.cpp — online execution of ALTER TABLE t ALTER COLUMN c TYPE
 * new_type when PostgreSQL would rewrite t (issue 13, item 7; the classic
 * case: a primary key integer -> bigint before the ids run out).
 *
 * Instead of one rewrite under ACCESS EXCLUSIVE, the steps:
 *
 *   1. ALTER TABLE t ADD COLUMN c_sm_new new_type (no rewrite) and a row
 *      trigger, safe_migrate.sync_column('c', 'c_sm_new'), ENABLE ALWAYS
 *      (it fires with session_replication_role = replica too): from then
 *      on every row written gets c_sm_new := c, converted as ALTER COLUMN
 *      TYPE without USING converts it
 *   2. the existing rows by the throttled backfill (c_sm_new = c, in
 *      key-ordered batches), waited for in a step of its own
 *   3. when c is NOT NULL: c_sm_new proven NOT NULL without a scan under
 *      ACCESS EXCLUSIVE (CHECK ... NOT VALID, VALIDATE, SET NOT NULL, DROP)
 *   4. every index on c (the primary key's and unique constraints' too)
 *      built again concurrently, on c_sm_new, under a temporary name
 *   5. a check, without blocking locks, that every row has its copy (a
 *      disabled trigger would have left rows behind): the migration stops
 *      before the swap if one has not
 *   6. the swap, one short transaction (the runner's lock-timeout retries):
 *      the foreign keys and CHECK constraints that involve c dropped, the
 *      primary key / unique constraints on c dropped, a sequence owned by
 *      c released, c dropped (its indexes go with it), c_sm_new renamed c,
 *      the new indexes renamed to the old names, the constraints added on
 *      them (USING INDEX), the default, the sequence's owner, CLUSTER ON,
 *      REPLICA IDENTITY and the comments put back, the foreign keys and
 *      checks added again NOT VALID, the trigger dropped
 *   7. each constraint that was valid validated again, each in a
 *      transaction of its own (SHARE UPDATE EXCLUSIVE: reads and writes go
 *      on); then ANALYZE t (c) (the new column has no statistics yet)
 *
 * What it gives up: the column moves to the end of the table's column list
 * (SELECT * lists it last); the migration commits in steps (as every online
 * migration).  What blocks it is refused before any step runs, naming the
 * object: a view, rule, trigger, policy, statistics object or publication
 * that uses c, a generated column computed from it, an exclusion
 * constraint, column privileges granted by a role other
 * than the table's owner (the owner's are granted again in the swap),
 * a partitioned table or one in an inheritance tree, a table without a
 * primary key (the backfill walks one), a foreign key from a partitioned
 * table (before PostgreSQL 18 it cannot be added NOT VALID), an invalid
 * index on c; and an index, CHECK or foreign key that would not hold for
 * the new type (check_rebuilt).
 *
 * Every name it writes is schema-qualified; the catalog is read through
 * SPI with pg_catalog names and operators only.  The expansion is recorded
 * with the migration (migrations.executed_script), so a resumed migration
 * runs the same statements whatever the swap changed.  While steps 1-5
 * are committed, expanding the script again gives the same text (the
 * shadow column and trigger found there are this migration's own).
 */
#include "core_bridge.hpp"
#include "subxact.hpp"
#include "backfill/backfill.hpp"
#include "pg/privileged.hpp"
#include "policy/policy.hpp"

extern "C" {
#include "access/htup_details.h"
#include "utils/array.h"
#include "catalog/pg_index.h"
#include "access/stratnum.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "utils/ruleutils.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
}

#include <cctype>
#include <cstring>

namespace safe_migrate::pg {

namespace {

/* One index to build again on the shadow column. */
struct RebuiltIndex {
    char *name;        /* its name (unqualified, as written) */
    char *temp_name;   /* the new one's name until the swap */
    char *create;      /* CREATE ... INDEX CONCURRENTLY temp ON ... (shadow) */
    char *conname;     /* the PRIMARY KEY / UNIQUE constraint on it, or NULL */
    char contype;
    bool deferrable, deferred;
    bool clustered, replident;
    char *comment;     /* COMMENT ON INDEX, or NULL */
    char *con_comment; /* COMMENT ON CONSTRAINT, or NULL */
};

/* One constraint (a foreign key or a CHECK) dropped and added again. */
struct ReaddedConstraint {
    Oid oid;
    char *table;   /* its table, qualified */
    char *name;
    char *def;     /* pg_get_constraintdef */
    bool validated;
    char *comment;
};

struct Plan {
    char *table;      /* schema-qualified, quoted */
    char *relname;
    char *nspname;
    char *column;
    char *shadow;
    char *trigger;
    char *type_text;  /* new type [COLLATE ...] */
    bool not_null;
    char *not_null_name; /* PostgreSQL 18: the column's NOT NULL constraint */
    char *default_expr;
    char *using_expr; /* the USING expression, as PostgreSQL prints it qualified, or NULL */
    char *comment;
    List *sequences;  /* qualified names of sequences owned by c */
    List *grants;     /* c's privileges: "SELECT TO role [WITH GRANT OPTION]"-style parts */
    Oid new_type;     /* the column's new type */
    char identity;    /* attidentity: 'a' (ALWAYS), 'd' (BY DEFAULT) or '\0' */
    char *identity_seq;      /* the identity's sequence, qualified */
    char *identity_seq_name; /* ... its name alone */
    char *identity_options;  /* START, INCREMENT, bounds, CACHE, CYCLE for the new one */
    int n_indexes;
    RebuiltIndex *indexes;
    int n_constraints;
    ReaddedConstraint *constraints;
};

char *copy_value(MemoryContext cxt, int row, int col)
{
    char *v = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
    return v ? MemoryContextStrdup(cxt, v) : nullptr;
}

bool bool_value(int row, int col)
{
    bool isnull;
    Datum d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);
    return !isnull && DatumGetBool(d);
}

/*
 * pg_get_indexdef's text of an index on column, as a concurrent build of
 * the same index under temp_name on shadow instead of column: the column
 * named in the key list, INCLUDE list, expressions and predicate replaced
 * (not a function's or type's name, not a qualified name's part, not in
 * WITH (...) or after TABLESPACE).  NULL if the text is not as expected.
 */
char *index_on_shadow(const char *def, const char *column, const char *shadow, const char *temp_name)
{
    const int kw_index = ScanKeywordTokens[ScanKeywordLookup("index", &ScanKeywords)];
    const int kw_using = ScanKeywordTokens[ScanKeywordLookup("using", &ScanKeywords)];
    const int kw_with = ScanKeywordTokens[ScanKeywordLookup("with", &ScanKeywords)];
    const int kw_tablespace = ScanKeywordTokens[ScanKeywordLookup("tablespace", &ScanKeywords)];
    const int kw_where = ScanKeywordTokens[ScanKeywordLookup("where", &ScanKeywords)];
    const int kw_collate = ScanKeywordTokens[ScanKeywordLookup("collate", &ScanKeywords)];
    StringInfoData out;
    initStringInfo(&out);
    Token *toks;
    int n = scan_tokens(def, 0, strlen(def), &toks);
    /* a token names the column when it is written as pg_get_indexdef
     * writes a column (quote_identifier); "::" comes before a type name */
    const char *quoted = quote_identifier(column);
    size_t quoted_len = strlen(quoted);
    auto text_is = [&](int k, const char *what, size_t len) {
        return k >= 0 && k < n && toks[k].stop - toks[k].start == len &&
               strncmp(def + toks[k].start, what, len) == 0;
    };
    /* CREATE [UNIQUE] INDEX name ON [ONLY] table USING am ( */
    int i = 0;
    while (i < n && toks[i].code != kw_index)
        i++;
    if (i + 1 >= n)
        return nullptr;
    int name_tok = i + 1;
    while (i < n && toks[i].code != kw_using)
        i++;
    if (i + 2 >= n || toks[i + 2].code != '(')
        return nullptr;
    int body = i + 2;
    /* the original text, piece by piece */
    appendBinaryStringInfo(&out, def, (int) toks[name_tok].start);
    appendStringInfo(&out, "CONCURRENTLY %s ", quote_identifier(temp_name));
    size_t copied = toks[name_tok + 1].start;
    int depth = 0;
    bool skip_group = false, where = false, replaced = false;
    for (int k = body; k < n; k++) {
        int code = toks[k].code;
        if (depth == 0 && !where) {
            if (code == kw_with)
                skip_group = true;
            else if (code == kw_tablespace) {
                k++; /* its name */
                continue;
            } else if (code == kw_where)
                where = true;
        }
        if (code == '(') {
            depth++;
            continue;
        }
        if (code == ')') {
            if (--depth == 0)
                skip_group = false;
            continue;
        }
        if (!text_is(k, quoted, quoted_len) || skip_group || (depth == 0 && !where))
            continue;
        if (k > 0 && (toks[k - 1].code == '.' || text_is(k - 1, "::", 2) || toks[k - 1].code == kw_collate))
            continue;
        if (k + 1 < n && (toks[k + 1].code == '(' || toks[k + 1].code == '.'))
            continue;
        appendBinaryStringInfo(&out, def + copied, (int) (toks[k].start - copied));
        appendStringInfoString(&out, quote_identifier(shadow));
        copied = toks[k].stop;
        replaced = true;
    }
    appendStringInfoString(&out, def + copied);
    return replaced ? out.data : nullptr;
}

/* Fill p from the catalog, or return why online execution cannot take the
 * change (palloc'd in cxt).  SPI connected; runs as the caller. */
const char *read_plan(Oid relid, AttrNumber att, const char *column, Plan *p, MemoryContext cxt)
{
    Oid argtypes[2] = {OIDOID, INT2OID};
    Datum args[2] = {ObjectIdGetDatum(relid), Int16GetDatum(att)};
    /* the column */
    if (SPI_execute_with_args(
            "SELECT a.attidentity::pg_catalog.text, a.attgenerated <> '', a.attacl IS NOT NULL, a.attnotnull, "
            "pg_catalog.pg_get_expr(d.adbin, d.adrelid), pg_catalog.col_description(a.attrelid, a.attnum) "
            "FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_attrdef d "
            "ON d.adrelid OPERATOR(pg_catalog.=) a.attrelid AND d.adnum OPERATOR(pg_catalog.=) a.attnum "
            "WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attnum OPERATOR(pg_catalog.=) $2",
            2, argtypes, args, nullptr, true, 1) != SPI_OK_SELECT ||
        SPI_processed != 1)
        return "its column could not be read from the catalog";
    {
        char *identity = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
        p->identity = identity != nullptr ? identity[0] : '\0';
    }
    if (bool_value(0, 2))
        return psprintf("column \"%s\" is a generated column", column);
    bool has_acl = bool_value(0, 3);
    p->not_null = bool_value(0, 4);
    p->default_expr = copy_value(cxt, 0, 5);
    p->comment = copy_value(cxt, 0, 6);
    if (p->identity != '\0') {
        /* an identity column: the new column gets an identity of its own in
         * the swap, its sequence with the old one's options (and bounds
         * widened as ALTER COLUMN TYPE widens them: a bound at the old
         * type's limit moves to the new type's), its position, and the old
         * sequence's name */
        if (p->new_type != INT2OID && p->new_type != INT4OID && p->new_type != INT8OID)
            return psprintf("column \"%s\" is an identity column and the new type is not smallint, "
                            "integer or bigint", column);
        if (SPI_execute_with_args(
                "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), "
                "c.relname::pg_catalog.text, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, "
                "s.seqcycle, c.relacl IS NOT NULL, s.seqtypid "
                "FROM pg_catalog.pg_depend d "
                "JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.objid "
                "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
                "JOIN pg_catalog.pg_sequence s ON s.seqrelid OPERATOR(pg_catalog.=) c.oid "
                "WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
                "AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
                "AND d.refobjid OPERATOR(pg_catalog.=) $1 AND d.refobjsubid OPERATOR(pg_catalog.=) $2 "
                "AND d.deptype OPERATOR(pg_catalog.=) 'i' AND c.relkind OPERATOR(pg_catalog.=) 'S'",
                2, argtypes, args, nullptr, true, 0) != SPI_OK_SELECT ||
            SPI_processed != 1)
            return "its identity sequence could not be read from the catalog";
        if (bool_value(0, 9))
            return psprintf("the identity sequence of column \"%s\" has privileges of its own, which "
                            "online execution does not carry over", column);
        bool isnull;
        auto int8_at = [&](int col) {
            return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull));
        };
        int64 start = int8_at(3), increment = int8_at(4), min = int8_at(5), max = int8_at(6),
              cache = int8_at(7);
        bool cycle = bool_value(0, 8);
        Oid old_type = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 10, &isnull));
        auto type_max = [](Oid t) -> int64 {
            return t == INT2OID ? PG_INT16_MAX : t == INT4OID ? PG_INT32_MAX : PG_INT64_MAX;
        };
        auto type_min = [](Oid t) -> int64 {
            return t == INT2OID ? PG_INT16_MIN : t == INT4OID ? PG_INT32_MIN : PG_INT64_MIN;
        };
        if (max == type_max(old_type))
            max = type_max(p->new_type);
        if (min == type_min(old_type))
            min = type_min(p->new_type);
        if (max > type_max(p->new_type) || min < type_min(p->new_type))
            return psprintf("the identity sequence of column \"%s\" has bounds the new type cannot hold",
                            column);
        p->identity_seq = copy_value(cxt, 0, 1);
        p->identity_seq_name = copy_value(cxt, 0, 2);
        p->identity_options = MemoryContextStrdup(
            cxt, psprintf("START WITH " INT64_FORMAT " INCREMENT BY " INT64_FORMAT " MINVALUE " INT64_FORMAT
                          " MAXVALUE " INT64_FORMAT " CACHE " INT64_FORMAT "%s",
                          start, increment, min, max, cache, cycle ? " CYCLE" : " NO CYCLE"));
    }
    if (has_acl) {
        /* column privileges (GRANT ... (c) ON t): granted again on the new
         * column in the swap, when the table's owner granted them (the
         * runner runs as the owner, or a member of its role: its GRANT is
         * recorded as the owner's); granted by another role, they could
         * not be given back as that role's */
        if (SPI_execute_with_args(
                "SELECT x.grantor OPERATOR(pg_catalog.=) c.relowner, "
                "CASE WHEN x.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC' "
                "ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(x.grantee)) END, "
                "x.privilege_type, x.is_grantable "
                "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c "
                "ON c.oid OPERATOR(pg_catalog.=) a.attrelid, "
                "LATERAL pg_catalog.aclexplode(a.attacl) x "
                "WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attnum OPERATOR(pg_catalog.=) $2 "
                "ORDER BY 2, 3",
                2, argtypes, args, nullptr, true, 0) != SPI_OK_SELECT)
            return "its column privileges could not be read from the catalog";
        for (uint64 r = 0; r < SPI_processed; r++) {
            if (!bool_value((int) r, 1))
                return psprintf("column \"%s\" has privileges granted by a role other than the "
                                "table's owner, which online execution cannot grant again as that role",
                                column);
            char *grantee = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2);
            char *privilege = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 3);
            bool grantable = bool_value((int) r, 4);
            MemoryContext old = MemoryContextSwitchTo(cxt);
            p->grants = lappend(p->grants, psprintf("%s|%s%s", privilege, grantee,
                                                    grantable ? " WITH GRANT OPTION" : ""));
            MemoryContextSwitchTo(old);
        }
    }
#if PG_VERSION_NUM >= 180000
    /* its NOT NULL constraint's name, given to the new column's */
    if (p->not_null &&
        SPI_execute_with_args("SELECT conname::pg_catalog.text FROM pg_catalog.pg_constraint "
                              "WHERE conrelid OPERATOR(pg_catalog.=) $1 AND contype OPERATOR(pg_catalog.=) 'n' "
                              "AND conkey OPERATOR(pg_catalog.=) ARRAY[$2]",
                              2, argtypes, args, nullptr, true, 1) == SPI_OK_SELECT &&
        SPI_processed == 1)
        p->not_null_name = copy_value(cxt, 0, 1);
#endif

    /* what depends on the column */
    if (SPI_execute_with_args(
            "SELECT d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass, "
            "d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass, "
            "d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass, "
            "d.objid, d.deptype::pg_catalog.text, "
            "pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) "
            "FROM pg_catalog.pg_depend d "
            "WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
            "AND d.refobjid OPERATOR(pg_catalog.=) $1 AND d.refobjsubid OPERATOR(pg_catalog.=) $2 "
            "ORDER BY d.classid, d.objid",
            2, argtypes, args, nullptr, true, 0) != SPI_OK_SELECT)
        return "what depends on its column could not be read from the catalog";
    int ndeps = (int) SPI_processed;
    SPITupleTable *deps = SPI_tuptable;
    List *indexes = NIL, *constraints = NIL, *sequences = NIL;
    for (int r = 0; r < ndeps; r++) {
        SPI_tuptable = deps;
        bool is_class = bool_value(r, 1), is_con = bool_value(r, 2), is_def = bool_value(r, 3);
        bool isnull;
        Oid objid = DatumGetObjectId(SPI_getbinval(deps->vals[r], deps->tupdesc, 4, &isnull));
        char *deptype = SPI_getvalue(deps->vals[r], deps->tupdesc, 5);
        char *what = SPI_getvalue(deps->vals[r], deps->tupdesc, 6);
        if (is_class) {
            char kind = get_rel_relkind(objid);
            if (kind == RELKIND_INDEX)
                indexes = list_append_unique_oid(indexes, objid);
            else if (kind == RELKIND_SEQUENCE && deptype[0] == 'a')
                sequences = lappend_oid(sequences, objid);
            else if (kind == RELKIND_SEQUENCE && deptype[0] == 'i' && p->identity != '\0')
                continue; /* the identity's own: read above */
            else
                return psprintf("%s depends on column \"%s\"", what, column);
        } else if (is_con) {
            HeapTuple tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(objid));
            if (!HeapTupleIsValid(tup))
                continue;
            Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
            char type = con->contype;
            Oid index = con->conindid;
            Oid parent = con->conparentid;
            ReleaseSysCache(tup);
            if (type == CONSTRAINT_PRIMARY || type == CONSTRAINT_UNIQUE)
                indexes = list_append_unique_oid(indexes, index);
            else if (type == CONSTRAINT_FOREIGN || type == CONSTRAINT_CHECK) {
                /* a partition's copy of its parent's foreign key goes and
                 * comes with the parent's */
                if (!OidIsValid(parent))
                    constraints = list_append_unique_oid(constraints, objid);
            }
#ifdef CONSTRAINT_NOTNULL
            else if (type == CONSTRAINT_NOTNULL)
                continue; /* proven again on the new column */
#endif
            else
                return psprintf("%s uses column \"%s\" (online execution does not rebuild it)", what,
                                column);
        } else if (is_def) {
            /* the column's own default is carried; another column's
             * generation expression is not */
            Oid t2[2] = {OIDOID, INT2OID};
            Datum a2[2] = {ObjectIdGetDatum(objid), Int16GetDatum(att)};
            if (SPI_execute_with_args("SELECT adnum OPERATOR(pg_catalog.=) $2 FROM pg_catalog.pg_attrdef "
                                      "WHERE oid OPERATOR(pg_catalog.=) $1",
                                      2, t2, a2, nullptr, true, 1) != SPI_OK_SELECT ||
                SPI_processed != 1 || !bool_value(0, 1))
                return psprintf("%s is computed from column \"%s\"", what, column);
        } else
            return psprintf("%s depends on column \"%s\"", what, column);
    }

    /* the indexes */
    p->n_indexes = list_length(indexes);
    p->indexes = (RebuiltIndex *) MemoryContextAllocZero(cxt, sizeof(RebuiltIndex) * (p->n_indexes + 1));
    ListCell *lc;
    int k = 0;
    foreach (lc, indexes) {
        Oid index = lfirst_oid(lc);
        Datum a1[1] = {ObjectIdGetDatum(index)};
        Oid t1[1] = {OIDOID};
        if (SPI_execute_with_args(
                "SELECT pg_catalog.pg_get_indexdef(i.indexrelid), c.relname::pg_catalog.text, "
                "i.indisvalid AND i.indisready, i.indisclustered, i.indisreplident, "
                "con.conname::pg_catalog.text, con.contype::pg_catalog.text, con.condeferrable, "
                "con.condeferred, pg_catalog.obj_description(i.indexrelid, 'pg_class'), "
                "pg_catalog.obj_description(con.oid, 'pg_constraint') "
                "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c "
                "ON c.oid OPERATOR(pg_catalog.=) i.indexrelid "
                "LEFT JOIN pg_catalog.pg_constraint con ON con.conindid OPERATOR(pg_catalog.=) i.indexrelid "
                "AND con.conrelid OPERATOR(pg_catalog.=) i.indrelid AND con.contype IN ('p', 'u', 'x') "
                "WHERE i.indexrelid OPERATOR(pg_catalog.=) $1",
                1, t1, a1, nullptr, true, 1) != SPI_OK_SELECT ||
            SPI_processed != 1)
            return "an index on the column could not be read from the catalog";
        RebuiltIndex *ix = &p->indexes[k++];
        char *def = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
        ix->name = copy_value(cxt, 0, 2);
        if (!bool_value(0, 3))
            return psprintf("index \"%s\" on column \"%s\" is invalid (drop it, or build it again, "
                            "first)", ix->name, column);
        ix->clustered = bool_value(0, 4);
        ix->replident = bool_value(0, 5);
        ix->conname = copy_value(cxt, 0, 6);
        char *contype = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 7);
        ix->contype = contype ? contype[0] : '\0';
        if (ix->contype == CONSTRAINT_EXCLUSION)
            return psprintf("exclusion constraint \"%s\" uses column \"%s\" (online execution does "
                            "not rebuild it)", ix->conname, column);
        ix->deferrable = bool_value(0, 8);
        ix->deferred = bool_value(0, 9);
        ix->comment = copy_value(cxt, 0, 10);
        ix->con_comment = copy_value(cxt, 0, 11);
        MemoryContext old = MemoryContextSwitchTo(cxt);
        ix->temp_name = pstrdup(makeObjectName(ix->name, nullptr, "sm_new"));
        ix->create = index_on_shadow(def, column, p->shadow, ix->temp_name);
        MemoryContextSwitchTo(old);
        if (ix->create == nullptr)
            return psprintf("the definition of index \"%s\" could not be read", ix->name);
    }

    /* the foreign keys and checks */
    p->n_constraints = list_length(constraints);
    p->constraints =
        (ReaddedConstraint *) MemoryContextAllocZero(cxt, sizeof(ReaddedConstraint) * (p->n_constraints + 1));
    k = 0;
    foreach (lc, constraints) {
        Datum a1[1] = {ObjectIdGetDatum(lfirst_oid(lc))};
        Oid t1[1] = {OIDOID};
        if (SPI_execute_with_args(
                "SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' "
                "OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname), "
                "con.conname::pg_catalog.text, pg_catalog.pg_get_constraintdef(con.oid), "
                "con.convalidated, pg_catalog.obj_description(con.oid, 'pg_constraint'), "
                "c.relkind OPERATOR(pg_catalog.=) 'p' AND con.contype OPERATOR(pg_catalog.=) 'f' "
                "FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_class c "
                "ON c.oid OPERATOR(pg_catalog.=) con.conrelid JOIN pg_catalog.pg_namespace n "
                "ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
                "WHERE con.oid OPERATOR(pg_catalog.=) $1",
                1, t1, a1, nullptr, true, 1) != SPI_OK_SELECT ||
            SPI_processed != 1)
            return "a constraint on the column could not be read from the catalog";
        ReaddedConstraint *c = &p->constraints[k++];
        c->oid = lfirst_oid(lc);
        c->table = copy_value(cxt, 0, 1);
        c->name = copy_value(cxt, 0, 2);
        c->def = copy_value(cxt, 0, 3);
        c->validated = bool_value(0, 4);
        c->comment = copy_value(cxt, 0, 5);
#if PG_VERSION_NUM < 180000
        if (bool_value(0, 6))
            return psprintf("foreign key \"%s\" of partitioned table %s uses column \"%s\" (before "
                            "PostgreSQL 18 it cannot be added again NOT VALID)",
                            c->name, c->table, column);
#endif
    }

    /* the sequences the column owns (serial) */
    foreach (lc, sequences) {
        Oid seq = lfirst_oid(lc);
        char *nsp = get_namespace_name(get_rel_namespace(seq));
        char *name = get_rel_name(seq);
        if (nsp == nullptr || name == nullptr)
            continue;
        MemoryContext old = MemoryContextSwitchTo(cxt);
        p->sequences = lappend(p->sequences, pstrdup(quote_qualified_identifier(nsp, name)));
        MemoryContextSwitchTo(old);
    }
    return nullptr;
}

/* The table's columns for the USING expression, found by name in the
 * catalog (the parse state has no range table entry: that would want the
 * table locked): column or table.column, as varno 1. */
struct UsingColumns {
    Oid relid;
    const char *relname;
    /* a column seen with another type (the changed column, by the name an
     * index definition or check gives it), or NULL */
    const char *as_name;
    AttrNumber as_att;
    Oid as_type;
    int32 as_mod;
    Oid as_coll;
};

Node *using_column(ParseState *pstate, ColumnRef *cref)
{
    const UsingColumns *c = (const UsingColumns *) pstate->p_ref_hook_state;
    int n = list_length(cref->fields);
    Node *last = (Node *) llast(cref->fields);
    if (!IsA(last, String) || n > 2)
        return nullptr; /* PostgreSQL's own error follows */
    if (n == 2 && (!IsA(linitial(cref->fields), String) ||
                   strcmp(strVal(linitial(cref->fields)), c->relname) != 0))
        return nullptr;
    if (c->as_name != nullptr && strcmp(strVal(last), c->as_name) == 0)
        return (Node *) makeVar(1, c->as_att, c->as_type, c->as_mod, c->as_coll, 0);
    AttrNumber att = get_attnum(c->relid, strVal(last));
    if (att <= 0)
        return nullptr;
    Oid type;
    int32 mod;
    Oid coll;
    get_atttypetypmodcoll(c->relid, att, &type, &mod, &coll);
    return (Node *) makeVar(1, att, type, mod, coll, 0);
}

/*
 * The USING expression of ALTER COLUMN ... TYPE, analyzed as PostgreSQL
 * analyzes it (against the table, with the session's search_path; no
 * subquery, aggregate, window or set-returning function) and checked for
 * what online execution needs: its result assignable to the new type (as
 * PostgreSQL requires), no volatile function (the trigger and the backfill
 * compute it row by row, at other moments than one ALTER would), no
 * temporary object (other sessions write the rows).  *text gets it as
 * PostgreSQL prints it with only pg_catalog on the search_path (every other
 * name qualified), in the caller's memory context.  Returns why it cannot
 * be taken, or NULL.  The table is not locked (its columns are read from
 * the catalog: migrate_plan never waits).
 */
const char *using_expression(Oid relid, Node *raw, Oid new_type, int32 new_mod, char **text)
{
    *text = nullptr;
    char *relname = get_rel_name(relid);
    if (relname == nullptr)
        return "the table is gone";
    UsingColumns columns = {relid, relname, nullptr, InvalidAttrNumber, InvalidOid, -1, InvalidOid};
    UsingColumns *columns_ptr = &columns;
    MemoryContext cxt = CurrentMemoryContext;
    const char *problem = nullptr;
    const char **problem_ptr = &problem;
    char *printed = nullptr;
    char **printed_ptr = &printed;
    ErrorData *bad = in_subtransaction([&]() {
        ParseState *pstate = make_parsestate(nullptr);
        pstate->p_pre_columnref_hook = using_column;
        pstate->p_ref_hook_state = columns_ptr;
        Node *e = transformExpr(pstate, (Node *) copyObjectImpl(raw), EXPR_KIND_ALTER_COL_TRANSFORM);
        assign_expr_collations(pstate, e);
        Oid from = exprType(e);
        Node *c = coerce_to_target_type(pstate, e, from, new_type, new_mod, COERCION_ASSIGNMENT,
                                        COERCE_IMPLICIT_CAST, -1);
        if (c == nullptr) {
            *problem_ptr = psprintf("the result of its USING expression (type %s) cannot be cast "
                                    "automatically to type %s",
                                    format_type_be(from), format_type_be(new_type));
            return;
        }
        if (contain_volatile_functions(c)) {
            *problem_ptr = "its USING expression calls a volatile function: the trigger and the "
                           "backfill compute it row by row, at other moments than one ALTER COLUMN "
                           "TYPE would, and the values would differ";
            return;
        }
        if (backfill::uses_temporary_object(c)) {
            *problem_ptr = "its USING expression uses a temporary object, which the other sessions "
                           "writing to the table cannot see";
            return;
        }
        int nest = pin_search_path();
        *printed_ptr = MemoryContextStrdup(
            cxt, deparse_expression(e, deparse_context_for(columns_ptr->relname, relid), false, false));
        unpin_search_path(nest);
    });
    MemoryContextSwitchTo(cxt);
    if (bad != nullptr) {
        keep_cancel(bad);
        const char *why = psprintf("its USING expression: %s", bad->message);
        FreeErrorData(bad);
        return why;
    }
    if (problem != nullptr)
        return problem;
    *text = printed;
    return nullptr;
}

/* The operator class of the referenced key column pkatt in foreign key
 * con's index, as it will be after the swap: a rebuilt index's is the one
 * the new column gets (new_opclass, by the index's name). */
Oid referenced_opclass(Form_pg_constraint con, AttrNumber pkatt, Oid relid, AttrNumber att,
                       const Plan *p, const Oid *new_opclass)
{
    if (con->confrelid == relid && pkatt == att) {
        const char *index = get_rel_name(con->conindid);
        for (int i = 0; index != nullptr && i < p->n_indexes; i++)
            if (strcmp(p->indexes[i].name, index) == 0 && OidIsValid(new_opclass[i]))
                return new_opclass[i];
        elog(ERROR, "its referenced index is not among the indexes built again");
    }
    HeapTuple tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(con->conindid));
    if (!HeapTupleIsValid(tup))
        elog(ERROR, "its referenced index is gone");
    Form_pg_index index = (Form_pg_index) GETSTRUCT(tup);
    bool isnull;
    Datum d = SysCacheGetAttr(INDEXRELID, tup, Anum_pg_index_indclass, &isnull);
    oidvector *classes = (oidvector *) DatumGetPointer(d);
    Oid opclass = InvalidOid;
    for (int j = 0; !isnull && j < index->indnkeyatts; j++)
        if (index->indkey.values[j] == pkatt)
            opclass = classes->values[j];
    ReleaseSysCache(tup);
    if (!OidIsValid(opclass))
        elog(ERROR, "its referenced column is not a key of its index");
    return opclass;
}

/* A column list of a constraint (conkey / confkey) as attribute numbers. */
int constraint_columns(HeapTuple tup, AttrNumber which, int16 **out)
{
    bool isnull;
    Datum d = SysCacheGetAttr(CONSTROID, tup, which, &isnull);
    if (isnull)
        elog(ERROR, "its key columns are missing");
    ArrayType *arr = DatumGetArrayTypeP(d);
    if (ARR_NDIM(arr) != 1 || ARR_HASNULL(arr) || ARR_ELEMTYPE(arr) != INT2OID)
        elog(ERROR, "its key columns are not an array of smallint");
    *out = (int16 *) ARR_DATA_PTR(arr);
    return ARR_DIMS(arr)[0];
}

/*
 * Would foreign key conoid, added again after the swap, find the equality
 * operators PostgreSQL needs to enforce it (as ADD FOREIGN KEY looks for
 * them: in the operator family of the referenced index's operator class,
 * one taking exactly the referencing type, else an implicit cast of both
 * key types to the class's input type)?  ERROR if not.
 */
void check_foreign_key(Oid relid, AttrNumber att, Oid new_type, Oid conoid, const Plan *p,
                       const Oid *new_opclass)
{
    HeapTuple tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
    if (!HeapTupleIsValid(tup))
        return; /* gone: the swap does not add it */
    Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
    int16 *fk, *pk;
    int n = constraint_columns(tup, Anum_pg_constraint_conkey, &fk);
    if (constraint_columns(tup, Anum_pg_constraint_confkey, &pk) != n)
        elog(ERROR, "its key column lists differ in length");
    for (int i = 0; i < n; i++) {
        Oid fktype = con->conrelid == relid && fk[i] == att ? new_type : get_atttype(con->conrelid, fk[i]);
        Oid pktype = con->confrelid == relid && pk[i] == att ? new_type : get_atttype(con->confrelid, pk[i]);
        Oid opclass = referenced_opclass(con, pk[i], relid, att, p, new_opclass);
        Oid family = get_opclass_family(opclass);
        Oid intype = get_opclass_input_type(opclass);
        Oid fkbase = getBaseType(fktype);
        bool found = OidIsValid(get_opfamily_member(family, intype, fkbase, BTEqualStrategyNumber)) &&
                     OidIsValid(get_opfamily_member(family, fkbase, fkbase, BTEqualStrategyNumber));
        if (!found) {
            Oid in[2] = {pktype, fktype};
            Oid to[2] = {intype, intype};
            found = can_coerce_type(2, in, to, COERCION_IMPLICIT);
        }
        if (!found)
            ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                            errmsg("key columns \"%s\" and \"%s\" would be of incompatible types: %s and %s",
                                   get_attname(con->conrelid, fk[i], false),
                                   get_attname(con->confrelid, pk[i], false), format_type_be(fktype),
                                   format_type_be(pktype))));
    }
    ReleaseSysCache(tup);
}

/*
 * Would the indexes built again on the shadow column, and the CHECK
 * constraints added again after the swap, hold for the new type?  Each is
 * analyzed as PostgreSQL analyzes it when it is created (the definition's
 * expressions and predicate with the changed column of the new type, each
 * key's operator class resolved for its type, a collation only on a
 * collatable type), without creating anything or locking the table.
 * Returns why one would fail (the naive ALTER would fail there too, but
 * before changing anything), or NULL.
 */
const char *check_rebuilt(Oid relid, AttrNumber att, const Plan *p, Oid new_type, int32 new_mod, Oid new_coll)
{
    UsingColumns columns = {relid, p->relname, nullptr, att, new_type, new_mod, new_coll};
    UsingColumns *columns_ptr = &columns;
    const char *what = nullptr;
    const char **what_ptr = &what;
    /* per rebuilt index: the operator class the new column gets in it */
    Oid *new_opclass = (Oid *) palloc0(sizeof(Oid) * (p->n_indexes + 1));
    ErrorData *bad = in_subtransaction([&]() {
        for (int i = 0; i < p->n_indexes; i++) {
            const RebuiltIndex *ix = &p->indexes[i];
            *what_ptr = psprintf("index \"%s\"", ix->name);
            List *stmts = raw_parser(ix->create, RAW_PARSE_DEFAULT);
            if (list_length(stmts) != 1 || !IsA(linitial_node(RawStmt, stmts)->stmt, IndexStmt))
                elog(ERROR, "its definition does not parse");
            IndexStmt *stmt = (IndexStmt *) linitial_node(RawStmt, stmts)->stmt;
            columns_ptr->as_name = p->shadow;
            Oid am = get_am_oid(stmt->accessMethod, false);
            ListCell *lc;
            foreach (lc, stmt->indexParams) {
                IndexElem *e = lfirst_node(IndexElem, lc);
                Oid type;
                if (e->name != nullptr && strcmp(e->name, p->shadow) == 0)
                    type = new_type;
                else if (e->name != nullptr)
                    type = get_atttype(relid, get_attnum(relid, e->name));
                else {
                    ParseState *pstate = make_parsestate(nullptr);
                    pstate->p_pre_columnref_hook = using_column;
                    pstate->p_ref_hook_state = columns_ptr;
                    Node *expr = transformExpr(pstate, e->expr, EXPR_KIND_INDEX_EXPRESSION);
                    assign_expr_collations(pstate, expr);
                    type = exprType(expr);
                    free_parsestate(pstate);
                }
                if (e->collation != NIL && !type_is_collatable(type))
                    ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                                    errmsg("collations are not supported by type %s", format_type_be(type))));
                Oid opclass = ResolveOpClass(e->opclass, type, stmt->accessMethod, am);
                if (e->name != nullptr && strcmp(e->name, p->shadow) == 0)
                    new_opclass[i] = opclass;
            }
            if (stmt->whereClause != nullptr) {
                ParseState *pstate = make_parsestate(nullptr);
                pstate->p_pre_columnref_hook = using_column;
                pstate->p_ref_hook_state = columns_ptr;
                Node *pred = transformExpr(pstate, stmt->whereClause, EXPR_KIND_INDEX_PREDICATE);
                (void) coerce_to_boolean(pstate, pred, "WHERE");
                free_parsestate(pstate);
            }
        }
        /* the checks on the table, added again after the swap (the new
         * column has the old one's name by then) */
        columns_ptr->as_name = p->column;
        for (int i = 0; i < p->n_constraints; i++) {
            const ReaddedConstraint *c = &p->constraints[i];
            if (strcmp(c->table, p->table) != 0 || strncmp(c->def, "CHECK", 5) != 0)
                continue;
            *what_ptr = psprintf("check constraint \"%s\"", c->name);
            List *stmts = raw_parser(psprintf("ALTER TABLE %s ADD %s", p->table, c->def), RAW_PARSE_DEFAULT);
            if (list_length(stmts) != 1 || !IsA(linitial_node(RawStmt, stmts)->stmt, AlterTableStmt))
                elog(ERROR, "its definition does not parse");
            AlterTableStmt *at = (AlterTableStmt *) linitial_node(RawStmt, stmts)->stmt;
            AlterTableCmd *cmd = linitial_node(AlterTableCmd, at->cmds);
            Constraint *con = (Constraint *) cmd->def;
            if (con == nullptr || !IsA(con, Constraint) || con->raw_expr == nullptr)
                elog(ERROR, "its definition does not parse");
            ParseState *pstate = make_parsestate(nullptr);
            pstate->p_pre_columnref_hook = using_column;
            pstate->p_ref_hook_state = columns_ptr;
            Node *expr = transformExpr(pstate, con->raw_expr, EXPR_KIND_CHECK_CONSTRAINT);
            (void) coerce_to_boolean(pstate, expr, "CHECK");
            free_parsestate(pstate);
        }
        /* the foreign keys, added again after the swap */
        for (int i = 0; i < p->n_constraints; i++) {
            const ReaddedConstraint *c = &p->constraints[i];
            if (strncmp(c->def, "FOREIGN KEY", 11) != 0)
                continue;
            *what_ptr = psprintf("foreign key \"%s\"", c->name);
            check_foreign_key(relid, att, new_type, c->oid, p, new_opclass);
        }
        *what_ptr = nullptr;
    });
    if (bad == nullptr)
        return nullptr;
    const char *why = psprintf("%s would not hold for the new type: %s (the naive statement fails there "
                               "too)",
                               what ? what : "an index or check on the column", bad->message);
    FreeErrorData(bad);
    return why;
}

void append_steps(StringInfo out, const Plan *p)
{
    const char *rel = p->table;
    const char *col = quote_identifier(p->column);
    const char *shadow = quote_identifier(p->shadow);
    const char *trig = quote_identifier(p->trigger);
    const char *lit_rel = quote_literal_cstr(rel);

    /* 1. the shadow column, kept in step by the trigger */
    appendStringInfo(out, "ALTER TABLE %s ADD COLUMN %s %s;\n", rel, shadow, p->type_text);
    /* with USING: the target computed from that expression of the row */
    const char *lit_expr = p->using_expr ? psprintf(", %s", quote_literal_cstr(p->using_expr)) : "";
    const char *value = p->using_expr ? psprintf("(%s)", p->using_expr) : col;
    appendStringInfo(out,
                     "CREATE TRIGGER %s BEFORE INSERT OR UPDATE ON %s FOR EACH ROW "
                     "EXECUTE FUNCTION safe_migrate.sync_column(%s, %s%s);\n",
                     trig, rel, quote_literal_cstr(p->column), quote_literal_cstr(p->shadow), lit_expr);
    appendStringInfo(out, "ALTER TABLE %s ENABLE ALWAYS TRIGGER %s;\n", rel, trig);
    /* 2. the existing rows */
    appendStringInfo(out, "SELECT migrate_backfill(%s, %s, %s%s);\n", lit_rel,
                     quote_literal_cstr(psprintf("%s = %s", shadow, value)),
                     quote_literal_cstr(psprintf("%s IS NULL AND %s IS NOT NULL", shadow, value)),
                     online_job_options(lit_rel));
    appendStringInfo(out,
                     "SELECT migrate_backfill_wait(max(id)) FROM safe_migrate.backfills "
                     "WHERE relation = %s AND submitted_by = current_user;\n",
                     lit_rel);
    /* 3. NOT NULL, proven */
    if (p->not_null) {
        const char *check = quote_identifier(makeObjectName(p->relname, p->shadow, "safe_migrate_not_null"));
        appendStringInfo(out, "ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID;\n", rel,
                         check, shadow);
        appendStringInfo(out, "ALTER TABLE %s VALIDATE CONSTRAINT %s;\n", rel, check);
        appendStringInfo(out, "ALTER TABLE %s ALTER COLUMN %s SET NOT NULL;\n", rel, shadow);
        appendStringInfo(out, "ALTER TABLE %s DROP CONSTRAINT %s;\n", rel, check);
    }
    /* 4. the indexes, built concurrently on the new column */
    for (int i = 0; i < p->n_indexes; i++)
        appendStringInfo(out, "%s;\n", p->indexes[i].create);
    /* 5. every row has its copy */
    appendStringInfo(out,
                     "SELECT safe_migrate.sync_column_check(%s, %s, %s%s);\n", lit_rel,
                     quote_literal_cstr(p->column), quote_literal_cstr(p->shadow), lit_expr);
    /* 6. the swap */
    for (int i = 0; i < p->n_constraints; i++)
        appendStringInfo(out, "ALTER TABLE %s DROP CONSTRAINT %s;\n", p->constraints[i].table,
                         quote_identifier(p->constraints[i].name));
    for (int i = 0; i < p->n_indexes; i++)
        if (p->indexes[i].conname != nullptr)
            appendStringInfo(out, "ALTER TABLE %s DROP CONSTRAINT %s;\n", rel,
                             quote_identifier(p->indexes[i].conname));
    ListCell *lc;
    foreach (lc, p->sequences)
        appendStringInfo(out, "ALTER SEQUENCE %s OWNED BY NONE;\n", (char *) lfirst(lc));
    const char *new_seq = nullptr;
    if (p->identity != '\0') {
        /* the new column's identity, its sequence going on from the old
         * one's position (nothing is inserted meanwhile: the swap holds
         * the table) */
        new_seq = quote_qualified_identifier(p->nspname, makeObjectName(p->relname, p->shadow, "seq"));
        appendStringInfo(out, "ALTER TABLE %s ALTER COLUMN %s ADD GENERATED %s AS IDENTITY (SEQUENCE NAME %s %s);\n",
                         rel, shadow, p->identity == 'a' ? "ALWAYS" : "BY DEFAULT", new_seq, p->identity_options);
        appendStringInfo(out, "SELECT pg_catalog.setval(%s::pg_catalog.regclass, s.last_value, s.is_called) FROM %s s;\n",
                         quote_literal_cstr(new_seq), p->identity_seq);
    }
    appendStringInfo(out, "ALTER TABLE %s DROP COLUMN %s;\n", rel, col);
    appendStringInfo(out, "ALTER TABLE %s RENAME COLUMN %s TO %s;\n", rel, shadow, col);
    if (new_seq != nullptr)
        appendStringInfo(out, "ALTER SEQUENCE %s RENAME TO %s;\n", new_seq, quote_identifier(p->identity_seq_name));
    appendStringInfo(out, "DROP TRIGGER %s ON %s;\n", trig, rel);
    if (p->not_null_name != nullptr) {
        /* the name SET NOT NULL gave the new column's constraint */
        const char *made = makeObjectName(p->relname, p->shadow, "not_null");
        if (strcmp(made, p->not_null_name) != 0)
            appendStringInfo(out, "ALTER TABLE %s RENAME CONSTRAINT %s TO %s;\n", rel, quote_identifier(made),
                             quote_identifier(p->not_null_name));
    }
    for (int i = 0; i < p->n_indexes; i++) {
        const RebuiltIndex *ix = &p->indexes[i];
        const char *temp = quote_qualified_identifier(p->nspname, ix->temp_name);
        if (ix->conname != nullptr) {
            appendStringInfo(out, "ALTER TABLE %s ADD CONSTRAINT %s %s USING INDEX %s%s;\n", rel,
                             quote_identifier(ix->conname),
                             ix->contype == CONSTRAINT_PRIMARY ? "PRIMARY KEY" : "UNIQUE",
                             quote_identifier(ix->temp_name),
                             ix->deferrable ? (ix->deferred ? " DEFERRABLE INITIALLY DEFERRED" : " DEFERRABLE")
                                            : "");
            /* USING INDEX names the index after the constraint */
            if (strcmp(ix->conname, ix->name) != 0)
                appendStringInfo(out, "ALTER INDEX %s RENAME TO %s;\n",
                                 quote_qualified_identifier(p->nspname, ix->conname), quote_identifier(ix->name));
        } else
            appendStringInfo(out, "ALTER INDEX %s RENAME TO %s;\n", temp, quote_identifier(ix->name));
        const char *index = quote_qualified_identifier(p->nspname, ix->name);
        if (ix->clustered)
            appendStringInfo(out, "ALTER TABLE %s CLUSTER ON %s;\n", rel, quote_identifier(ix->name));
        if (ix->replident)
            appendStringInfo(out, "ALTER TABLE %s REPLICA IDENTITY USING INDEX %s;\n", rel,
                             quote_identifier(ix->name));
        if (ix->comment)
            appendStringInfo(out, "COMMENT ON INDEX %s IS %s;\n", index, quote_literal_cstr(ix->comment));
        if (ix->con_comment)
            appendStringInfo(out, "COMMENT ON CONSTRAINT %s ON %s IS %s;\n", quote_identifier(ix->conname),
                             rel, quote_literal_cstr(ix->con_comment));
    }
    if (p->default_expr)
        appendStringInfo(out, "ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s;\n", rel, col, p->default_expr);
    foreach (lc, p->sequences)
        appendStringInfo(out, "ALTER SEQUENCE %s OWNED BY %s.%s;\n", (char *) lfirst(lc), rel, col);
    if (p->comment)
        appendStringInfo(out, "COMMENT ON COLUMN %s.%s IS %s;\n", rel, col, quote_literal_cstr(p->comment));
    foreach (lc, p->grants) {
        const char *g = (const char *) lfirst(lc);
        const char *bar = strchr(g, '|');
        appendStringInfo(out, "GRANT %.*s (%s) ON TABLE %s TO %s;\n", (int) (bar - g), g, col, rel, bar + 1);
    }
    for (int i = 0; i < p->n_constraints; i++) {
        const ReaddedConstraint *c = &p->constraints[i];
        appendStringInfo(out, "ALTER TABLE %s ADD CONSTRAINT %s %s%s;\n", c->table, quote_identifier(c->name),
                         c->def, c->validated ? " NOT VALID" : "");
        if (c->comment)
            appendStringInfo(out, "COMMENT ON CONSTRAINT %s ON %s IS %s;\n", quote_identifier(c->name),
                             c->table, quote_literal_cstr(c->comment));
    }
    /* 7. validated again, each alone; statistics for the new column */
    for (int i = 0; i < p->n_constraints; i++)
        if (p->constraints[i].validated)
            appendStringInfo(out, "ALTER TABLE %s VALIDATE CONSTRAINT %s;\n", p->constraints[i].table,
                             quote_identifier(p->constraints[i].name));
    appendStringInfo(out, "ANALYZE %s (%s);\n", rel, col);
}

}  // namespace

char *using_expression_text(Oid relid, const ColumnDef *def)
{
    if (def == nullptr || def->raw_default == nullptr || def->typeName == nullptr)
        return nullptr;
    Oid new_type = InvalidOid;
    int32 new_mod = -1;
    Oid *type_ptr = &new_type;
    int32 *mod_ptr = &new_mod;
    ErrorData *bad = in_subtransaction([&]() { typenameTypeIdAndMod(nullptr, def->typeName, type_ptr, mod_ptr); });
    if (bad != nullptr) {
        keep_cancel(bad);
        FreeErrorData(bad);
        return nullptr;
    }
    char *text = nullptr;
    return using_expression(relid, def->raw_default, new_type, new_mod, &text) == nullptr ? text : nullptr;
}

/*
 * ALTER TABLE t ALTER COLUMN c TYPE ... (alone in its statement, t not
 * created by the script): Expanded (the steps appended to out, when out
 * is not NULL), Refused (*refusal says why: PostgreSQL would rewrite t and
 * online execution cannot take it), or NotOnline (no rewrite, or the
 * statement fails on its own: left as written).
 */
TypeChangeOnline expand_type_change(const AlterTableStmt *at, StringInfo out, char **refusal)
{
    *refusal = nullptr;
    if (list_length(at->cmds) != 1)
        return TypeChangeOnline::NotOnline;
    AlterTableCmd *cmd = linitial_node(AlterTableCmd, at->cmds);
    if (cmd->subtype != AT_AlterColumnType || cmd->name == nullptr || cmd->def == nullptr ||
        !IsA(cmd->def, ColumnDef))
        return TypeChangeOnline::NotOnline;
    ColumnDef *def = (ColumnDef *) cmd->def;

    MemoryContext cxt = CurrentMemoryContext;
    bool own = !IsTransactionState();
    if (own)
        StartTransactionCommand();
    MemoryContextSwitchTo(cxt);
    TypeChangeOnline result = TypeChangeOnline::NotOnline;
    TypeChangeOnline *result_ptr = &result;
    char *why = nullptr;
    char **why_ptr = &why;
    Plan plan;
    memset(&plan, 0, sizeof(plan));
    Plan *p = &plan;
    /* SPI needs a snapshot (the runner prepares its script without one) */
    bool pushed = !ActiveSnapshotSet();
    if (pushed)
        PushActiveSnapshot(GetTransactionSnapshot());
    ErrorData *failure = in_subtransaction([&]() {
        Oid relid = RangeVarGetRelid(at->relation, NoLock, true);
        if (!OidIsValid(relid))
            return;
        char kind = get_rel_relkind(relid);
        if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
            return;
        if (get_rel_persistence(relid) == RELPERSISTENCE_TEMP)
            return;
        AttrNumber att = get_attnum(relid, cmd->name);
        if (att == InvalidAttrNumber || att < 0)
            return;
        List *rebuilt = NIL;
        bool known = false;
        bool rewrites = policy::column_type_change(relid, cmd, &rebuilt, &known);
        if (!known || !rewrites)
            return;
        *result_ptr = TypeChangeOnline::Refused;
        const char *column = cmd->name;
        if (kind == RELKIND_PARTITIONED_TABLE || has_subclass(relid) || get_rel_relispartition(relid)) {
            *why_ptr = pstrdup("the table is partitioned, a partition or an inheritance parent");
            return;
        }
        {
            /* an inheritance child */
            SPI_connect();
            Datum a1[1] = {ObjectIdGetDatum(relid)};
            Oid t1[1] = {OIDOID};
            bool child = SPI_execute_with_args("SELECT FROM pg_catalog.pg_inherits "
                                               "WHERE inhrelid OPERATOR(pg_catalog.=) $1",
                                               1, t1, a1, nullptr, true, 1) == SPI_OK_SELECT &&
                         SPI_processed > 0;
            bool key = SPI_execute_with_args("SELECT FROM pg_catalog.pg_index "
                                             "WHERE indrelid OPERATOR(pg_catalog.=) $1 AND indisprimary",
                                             1, t1, a1, nullptr, true, 1) == SPI_OK_SELECT &&
                       SPI_processed > 0;
            SPI_finish();
            if (child) {
                *why_ptr = pstrdup("the table inherits from another");
                return;
            }
            if (!key) {
                *why_ptr = pstrdup("the table has no primary key (the backfill walks one)");
                return;
            }
        }
        /* the new type as PostgreSQL names it, qualified */
        Oid new_type;
        int32 new_mod;
        typenameTypeIdAndMod(nullptr, def->typeName, &new_type, &new_mod);
        Oid new_coll = GetColumnDefCollation(nullptr, def, new_type);
        MemoryContext old = MemoryContextSwitchTo(cxt);
        StringInfoData type_text;
        initStringInfo(&type_text);
        appendStringInfoString(&type_text, format_type_extended(new_type, new_mod,
                                                                FORMAT_TYPE_TYPEMOD_GIVEN |
                                                                    FORMAT_TYPE_FORCE_QUALIFY));
        if (OidIsValid(new_coll) && new_coll != get_typcollation(new_type)) {
            HeapTuple ct = SearchSysCache1(COLLOID, ObjectIdGetDatum(new_coll));
            if (HeapTupleIsValid(ct)) {
                Form_pg_collation c = (Form_pg_collation) GETSTRUCT(ct);
                appendStringInfo(&type_text, " COLLATE %s",
                                 quote_qualified_identifier(get_namespace_name(c->collnamespace),
                                                            NameStr(c->collname)));
                ReleaseSysCache(ct);
            }
        }
        p->type_text = type_text.data;
        p->new_type = new_type;
        MemoryContextSwitchTo(old);
        if (def->raw_default != nullptr) {
            const char *problem = using_expression(relid, def->raw_default, new_type, new_mod, &p->using_expr);
            if (problem != nullptr) {
                *why_ptr = MemoryContextStrdup(cxt, problem);
                return;
            }
        }
        old = MemoryContextSwitchTo(cxt);
        p->nspname = get_namespace_name(get_rel_namespace(relid));
        p->relname = get_rel_name(relid);
        p->table = pstrdup(quote_qualified_identifier(p->nspname, p->relname));
        p->column = pstrdup(column);
        p->shadow = makeObjectName(column, "sm", "new");
        p->trigger = makeObjectName(p->relname, column, "sm_sync");
        MemoryContextSwitchTo(old);
        /* names of our own: free, or this migration's own (a resumed one) */
        Oid tgoid;
        TransactionId tgxmin;
        if (get_attnum(relid, p->shadow) != InvalidAttrNumber &&
            !policy::sync_trigger(relid, column, p->shadow, &tgoid, &tgxmin, p->using_expr)) {
            *why_ptr = psprintf("column \"%s\" exists already", p->shadow);
            return;
        }
        /* expressions and definitions printed with every name qualified */
        int nest = NewGUCNestLevel();
        (void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                                 GUC_ACTION_SAVE, true, 0, false);
        SPI_connect();
        const char *problem = read_plan(relid, att, column, p, cxt);
        /* the reason lives in SPI's memory: copied before SPI_finish */
        if (problem != nullptr)
            *why_ptr = MemoryContextStrdup(cxt, problem);
        SPI_finish();
        if (problem == nullptr) {
            /* what PostgreSQL builds again on the new type */
            problem = check_rebuilt(relid, att, p, new_type, new_mod, new_coll);
            if (problem != nullptr)
                *why_ptr = MemoryContextStrdup(cxt, problem);
        }
        AtEOXact_GUC(false, nest);
        if (problem != nullptr)
            return;
        *result_ptr = TypeChangeOnline::Expanded;
    });
    if (pushed)
        PopActiveSnapshot();
    if (own)
        CommitTransactionCommand();
    MemoryContextSwitchTo(cxt);
    if (failure != nullptr) {
        /* the statement is left as written: the policy judges it */
        elog(DEBUG1, "safe_migrate: online type change not planned: %s", failure->message);
        keep_cancel(failure);
        FreeErrorData(failure);
        return TypeChangeOnline::NotOnline;
    }
    if (result == TypeChangeOnline::Refused) {
        const RangeVar *rv = at->relation;
        *refusal = psprintf("online execution cannot change the type of column \"%s\" of table %s: %s",
                            cmd->name,
                            rv->schemaname ? quote_qualified_identifier(rv->schemaname, rv->relname)
                                           : quote_identifier(rv->relname),
                            why ? why : "unknown reason");
        return result;
    }
    if (result == TypeChangeOnline::Expanded && out != nullptr)
        append_steps(out, p);
    return result;
}

}  // namespace safe_migrate::pg
