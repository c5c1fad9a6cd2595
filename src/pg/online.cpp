/*
 * online.cpp — online execution of a migration script (issue 13, first
 * part): a script with the line `-- safe_migrate:online` has the statements
 * it writes naively replaced, before anything runs, by the sequence an
 * expert would run.  The result is an ordinary script: the runner splits
 * it into steps as always (a concurrent build runs alone, outside a
 * transaction block; a VALIDATE CONSTRAINT of an online script runs in a
 * transaction of its own), the step journal records each committed step,
 * the policy judges every statement of it, and migrate_plan shows it.
 *
 * The rewriting is textual, guided by PostgreSQL's own parse tree: the
 * user's statement text is kept, with words inserted where the grammar
 * allows them, and new statements are written with the user's own names.
 * It reads nothing of the catalog but whether a table is partitioned, an
 * UPDATE's or ADD COLUMN's table's schema and key, and an added column's
 * type and default, so the same script gives the same steps (a resumed
 * migration finds the steps it recorded).  What it handles:
 *
 *   CREATE [UNIQUE] INDEX on a table the script did not create
 *       -> CREATE [UNIQUE] INDEX CONCURRENTLY (a step of its own; the
 *          runner drops an invalid leftover of an interrupted build); on a
 *          partitioned table (a named index): the index ON ONLY the
 *          parent, each partition's built concurrently and attached
 *          (partitioned_index)
 *   DROP INDEX (one index, not CASCADE)    -> DROP INDEX CONCURRENTLY
 *   REINDEX INDEX / TABLE                  -> REINDEX ... CONCURRENTLY
 *   ALTER TABLE t ADD [CONSTRAINT c] FOREIGN KEY / CHECK (alone in its
 *   statement, t not created by the script)
 *       -> the same with NOT VALID (an unnamed one gets the name
 *          PostgreSQL would give it), then ALTER TABLE t VALIDATE
 *          CONSTRAINT c in a transaction of its own
 *   ALTER TABLE t ADD [CONSTRAINT c] PRIMARY KEY / UNIQUE (cols) (alone)
 *       -> CREATE UNIQUE INDEX CONCURRENTLY c ON t (cols); for a primary
 *          key each column's SET NOT NULL as below; ALTER TABLE t ADD
 *          CONSTRAINT c ... USING INDEX c (c: PostgreSQL's name when
 *          unnamed)
 *   UPDATE t SET ... [WHERE ...] (t an existing table, no FROM, RETURNING,
 *   WITH or alias)
 *       -> SELECT migrate_backfill('t', set, where): the throttled,
 *          crash-safe backfill in key-ordered batches; then
 *          SELECT migrate_backfill_wait(...) in a step of its own
 *   DELETE FROM t [WHERE ...] (t an existing table with a primary key, no
 *   USING, RETURNING, WITH or alias)
 *       -> SELECT migrate_delete('t', where): the same job deleting in
 *          key-ordered batches; then the wait, in a step of its own
 *   ALTER TABLE t ALTER COLUMN c SET NOT NULL (alone, t not created by the
 *   script)
 *       -> ADD CONSTRAINT ... CHECK (c IS NOT NULL) NOT VALID; VALIDATE it
 *          (own transaction); SET NOT NULL (no scan: the valid check proves
 *          it); DROP the check
 *   ALTER TABLE t ADD COLUMN c type [COLLATE ..] DEFAULT <volatile> [NOT
 *   NULL] (alone; t an existing plain table with a primary key and no
 *   children; not IF NOT EXISTS; no other constraint on c; not a domain
 *   with constraints; the default naming no function or type the script
 *   defines)
 *       -> ADD COLUMN c type (no rewrite); ALTER COLUMN c SET DEFAULT
 *          <volatile> (new rows); the existing rows filled by the backfill
 *          (SET c = <volatile> WHERE c IS NULL, each row its own value),
 *          waited for in a step of its own; NOT NULL as below
 *
 * Everything else is left as written (the policy judges it as always).
 * PostgreSQL style: no C++ objects live across calls that may ereport.
 */
#include "core_bridge.hpp"
#include "compat.hpp"
#include "subxact.hpp"
#include "policy/policy.hpp"
#include "backfill/pacing.hpp"

extern "C" {
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "mb/pg_wchar.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "access/genam.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "utils/fmgroids.h"
#include "commands/defrem.h"
#include "lib/stringinfo.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_target.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
}

#include <cctype>
#include <cstring>

namespace safe_migrate::pg {

bool classify_online = false;
bool online_setting = false;
double online_latency_budget_ms = 2.0;

void define_online_setting(void)
{
    DefineCustomBoolVariable(
        "safe_migrate.online",
        "Run every migration of the session online, as if its script had the line "
        "\"-- safe_migrate:online\".",
        nullptr, &online_setting, false, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomRealVariable(
        "safe_migrate.online_latency_budget",
        "The latency budget of the jobs online execution runs (its batched UPDATE, DELETE and "
        "column fills), in milliseconds: what they may add to the application's p99 statement latency.",
        "Written into the expanded script when a migration is expanded (migrate_plan shows it). "
        "0 turns the control off.",
        &online_latency_budget_ms, 2.0, 0.0, 10000.0, PGC_USERSET, 0, nullptr, nullptr, nullptr);
}

namespace {
/* the tables (as quoted literals) whose jobs the expansion under way
 * submits with vacuum => false: one migrate_vacuum each at its end */
List *vacuum_later = NIL;
}  // namespace

const char *online_job_options(const char *rel_literal)
{
    ListCell *lc;
    bool known = false;
    foreach (lc, vacuum_later)
        if (strcmp((const char *) lfirst(lc), rel_literal) == 0)
            known = true;
    if (!known)
        vacuum_later = lappend(vacuum_later, pstrdup(rel_literal));
    return psprintf(", latency_budget => %g, vacuum => false, eager => true", online_latency_budget_ms);
}

namespace {

/* Skip blanks and comments from i (up to end). */
size_t skip_space(const char *s, size_t i, size_t end)
{
    while (i < end) {
        if (isspace((unsigned char) s[i])) {
            i++;
        } else if (s[i] == '-' && i + 1 < end && s[i + 1] == '-') {
            while (i < end && s[i] != '\n')
                i++;
        } else if (s[i] == '/' && i + 1 < end && s[i + 1] == '*') {
            int depth = 1;
            i += 2;
            while (i < end && depth > 0) {
                if (s[i] == '/' && i + 1 < end && s[i + 1] == '*') {
                    depth++;
                    i += 2;
                } else if (s[i] == '*' && i + 1 < end && s[i + 1] == '/') {
                    depth--;
                    i += 2;
                } else
                    i++;
            }
        } else
            break;
    }
    return i;
}

bool ident_char(char c)
{
    return isalnum((unsigned char) c) || c == '_' || c == '$' || (unsigned char) c >= 0x80;
}

/* Is the keyword kw (lower case) at i, as a whole word?  Sets *after. */
bool word_at(const char *s, size_t i, size_t end, const char *kw, size_t *after)
{
    size_t n = strlen(kw);
    if (i + n > end || pg_strncasecmp(s + i, kw, n) != 0)
        return false;
    if (i + n < end && ident_char(s[i + n]))
        return false;
    *after = i + n;
    return true;
}

/* The end of the keywords `words` (NULL-terminated; a word starting with
 * '?' is optional) at the start of s[i, end), or 0 when they are not
 * there. */
size_t after_words(const char *s, size_t i, size_t end, const char *const *words)
{
    for (; *words != nullptr; words++) {
        const char *w = *words;
        bool optional = w[0] == '?';
        if (optional)
            w++;
        size_t at = skip_space(s, i, end);
        size_t next;
        if (w[0] == '(') {
            /* an optional parenthesized option list */
            if (at < end && s[at] == '(') {
                int depth = 0;
                size_t k = at;
                for (; k < end; k++) {
                    if (s[k] == '(')
                        depth++;
                    else if (s[k] == ')' && --depth == 0)
                        break;
                }
                if (k >= end)
                    return 0;
                i = k + 1;
            }
            continue;
        }
        if (word_at(s, at, end, w, &next))
            i = next;
        else if (!optional)
            return 0;
    }
    return i;
}

bool same_relation(const RangeVar *a, const RangeVar *b)
{
    if (strcmp(a->relname, b->relname) != 0)
        return false;
    return a->schemaname == nullptr || b->schemaname == nullptr ||
           strcmp(a->schemaname, b->schemaname) == 0;
}

bool created_here(List *created, const RangeVar *rv)
{
    ListCell *lc;
    foreach (lc, created)
        if (same_relation((const RangeVar *) lfirst(lc), rv))
            return true;
    return false;
}

/* The relation as the user wrote it (ONLY kept). */
char *relation_text(const RangeVar *rv)
{
    const char *name = rv->schemaname ? quote_qualified_identifier(rv->schemaname, rv->relname)
                                      : quote_identifier(rv->relname);
    return psprintf("%s%s", rv->inh ? "" : "ONLY ", name);
}

/* The column references of a raw expression: how many, and the first. */
struct ColumnRefs {
    int count;
    ColumnRef *first;
};

bool column_refs_walker(Node *node, void *context)
{
    if (node == nullptr)
        return false;
    if (IsA(node, ColumnRef)) {
        ColumnRefs *c = (ColumnRefs *) context;
        if (c->count++ == 0)
            c->first = (ColumnRef *) node;
        return false;
    }
    return raw_expression_tree_walker(node, SM_WALKER(column_refs_walker), context);
}

/* The name PostgreSQL gives an unnamed table constraint (without its
 * check for a name already taken: a taken one makes the ADD fail). */
char *constraint_name(const RangeVar *rv, const Constraint *c)
{
    if (c->contype == CONSTR_FOREIGN) {
        StringInfoData cols;
        initStringInfo(&cols);
        ListCell *lc;
        foreach (lc, c->fk_attrs) {
            const char *col = strVal(lfirst(lc));
            if (cols.len > 0)
                appendStringInfoChar(&cols, '_');
            appendStringInfoString(&cols, col);
            if (cols.len >= NAMEDATALEN)
                break;
        }
        return makeObjectName(rv->relname, cols.data, "fkey");
    }
    /* CHECK: named after its column when it refers to exactly one */
    ColumnRefs refs = {0, nullptr};
    (void) column_refs_walker(c->raw_expr, &refs);
    const char *col = nullptr;
    if (refs.count == 1 && IsA(llast(refs.first->fields), String))
        col = strVal(llast(refs.first->fields));
    return makeObjectName(rv->relname, col, "check");
}

void append_statement(StringInfo out, const char *text, size_t len)
{
    appendBinaryStringInfo(out, text, (int) len);
    appendStringInfoString(out, ";\n");
}

/* The statement s[begin, end) with " CONCURRENTLY" after its leading
 * keywords `words` (after_words); false when they are not there. */
bool insert_concurrently(StringInfo out, const char *s, size_t begin, size_t end,
                         const char *const *words)
{
    size_t at = after_words(s, begin, end, words);
    if (at == 0)
        return false;
    appendBinaryStringInfo(out, s + begin, (int) (at - begin));
    appendStringInfoString(out, " CONCURRENTLY");
    appendBinaryStringInfo(out, s + at, (int) (end - at));
    appendStringInfoString(out, ";\n");
    return true;
}

/* The kind of relation rv names now ('\0': none).  A catalog lookup, in a
 * transaction of its own when the caller has none (the runner prepares its
 * script outside one). */
char relkind_of(const RangeVar *rv)
{
    MemoryContext cxt = CurrentMemoryContext;
    bool own = !IsTransactionState();
    if (own)
        StartTransactionCommand();
    Oid relid = RangeVarGetRelid(rv, NoLock, true);
    char kind = OidIsValid(relid) ? get_rel_relkind(relid) : '\0';
    if (own)
        CommitTransactionCommand();
    MemoryContextSwitchTo(cxt);
    return kind;
}

/* PostgreSQL builds no index on a partitioned table concurrently (its
 * partitions' indexes are built one by one, which the policy's hint writes
 * out). */
bool partitioned_table(const RangeVar *rv)
{
    return relkind_of(rv) == RELKIND_PARTITIONED_TABLE;
}

/*
 * CREATE [UNIQUE] INDEX name ON partitioned (...) online.  PostgreSQL builds
 * no index on a partitioned table concurrently; the expert's sequence:
 *
 *   CREATE [UNIQUE] INDEX name ON ONLY parent ...;          -- invalid, no build
 *   CREATE [UNIQUE] INDEX CONCURRENTLY child_name ON part ...;  -- each partition
 *   ALTER INDEX name ATTACH PARTITION child_name;           -- valid once all are
 *
 * a sub-partitioned partition getting an ON ONLY index of its own, its
 * partitions' attached to it, before it is attached itself.  Each
 * partition's index gets the name PostgreSQL gives it when it builds it
 * for the parent (ChooseIndexColumnNames / ChooseIndexNameAddition /
 * ChooseRelationName), so the catalog ends as the naive statement leaves
 * it.  Taken only for a named index (the parent's name is needed to attach
 * to it), not IF NOT EXISTS, not ON ONLY (asked for as such), with every
 * partition a table or a partitioned table (a foreign partition takes no
 * index); none of them with an index already (the naive statement would
 * attach an equivalent one instead of building it).  The statement's text
 * after the relation (USING, columns, INCLUDE, WITH, TABLESPACE, WHERE) is
 * kept for every level.
 */
struct IndexText {
    const char *prefix; /* CREATE [UNIQUE] INDEX */
    const char *tail;   /* what follows the relation */
};

/* PostgreSQL's names of an index's columns (ChooseIndexColumnNames) */
List *index_column_names(const IndexStmt *ix)
{
    List *names = NIL;
    List *all = list_concat_copy(ix->indexParams, ix->indexIncludingParams);
    ListCell *lc;
    foreach (lc, all) {
        const IndexElem *e = (const IndexElem *) lfirst(lc);
        /* an expression: named as parse analysis names it (the function's
         * or type's name) before PostgreSQL chooses */
        const char *orig = e->indexcolname   ? e->indexcolname
                           : e->name         ? e->name
                           : e->expr != nullptr && FigureIndexColname(e->expr) != nullptr
                               ? FigureIndexColname(e->expr)
                               : "expr";
        char name[NAMEDATALEN];
        strlcpy(name, orig, NAMEDATALEN);
        for (int i = 1;; i++) {
            bool taken = false;
            ListCell *nc;
            foreach (nc, names)
                taken |= strcmp(strVal(lfirst(nc)), name) == 0;
            if (!taken)
                break;
            char suffix[NAMEDATALEN];
            snprintf(suffix, sizeof suffix, "%d", i);
            int room = NAMEDATALEN - 1 - (int) strlen(suffix);
            int len = pg_mbcliplen(orig, (int) strlen(orig), room);
            memcpy(name, orig, len);
            strlcpy(name + len, suffix, NAMEDATALEN - len);
        }
        names = lappend(names, makeString(pstrdup(name)));
    }
    return names;
}

/* ... joined as ChooseIndexNameAddition joins them */
char *index_name_addition(List *names)
{
    char buf[NAMEDATALEN * 2];
    int len = 0;
    buf[0] = '\0';
    ListCell *lc;
    foreach (lc, names) {
        if (len > 0)
            buf[len++] = '_';
        strlcpy(buf + len, strVal(lfirst(lc)), NAMEDATALEN);
        len += (int) strlen(buf + len);
        if (len >= NAMEDATALEN)
            break;
    }
    return pstrdup(buf);
}

/* The indexes of relid's partitions, each level: appended to out. */
void partition_indexes(StringInfo out, const IndexText *t, Oid relid, const char *index_qualified,
                       const char *addition)
{
    List *children = find_inheritance_children(relid, NoLock);
    ListCell *lc;
    foreach (lc, children) {
        Oid child = lfirst_oid(lc);
        Oid nsp = get_rel_namespace(child);
        const char *nspname = get_namespace_name(nsp);
        const char *relname = get_rel_name(child);
        const char *name = ChooseRelationName(relname, addition, "idx", nsp, false);
        const char *rel = quote_qualified_identifier(nspname, relname);
        const char *qualified = quote_qualified_identifier(nspname, name);
        if (get_rel_relkind(child) == RELKIND_PARTITIONED_TABLE) {
            appendStringInfo(out, "%s %s ON ONLY %s %s;\n", t->prefix, quote_identifier(name), rel, t->tail);
            partition_indexes(out, t, child, qualified, addition);
        } else {
            appendStringInfo(out, "%s CONCURRENTLY %s ON %s %s;\n", t->prefix, quote_identifier(name), rel,
                             t->tail);
        }
        appendStringInfo(out, "ALTER INDEX %s ATTACH PARTITION %s;\n", index_qualified, qualified);
    }
}

/* Can every partition under relid take the index (a table or partitioned
 * table, no index of its own yet)? */
bool partitions_take_index(Oid relid)
{
    List *children = find_inheritance_children(relid, NoLock);
    ListCell *lc;
    foreach (lc, children) {
        Oid child = lfirst_oid(lc);
        char kind = get_rel_relkind(child);
        if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
            return false;
        /* no lock: migrate_plan must not wait on one (a list one
         * invalidation old decides what a resumed migration re-checks) */
        Relation rel = RelationIdGetRelation(child);
        if (!RelationIsValid(rel))
            return false;
        List *indexes = RelationGetIndexList(rel);
        RelationClose(rel);
        if (indexes != NIL)
            return false;
        if (kind == RELKIND_PARTITIONED_TABLE && !partitions_take_index(child))
            return false;
    }
    return true;
}

bool partitioned_index(StringInfo out, const char *s, size_t begin, size_t end, const IndexStmt *ix)
{
    if (ix->idxname == nullptr || ix->if_not_exists || !ix->relation->inh || ix->primary || ix->isconstraint)
        return false;
    /* CREATE [UNIQUE] INDEX name ON rel <tail> */
    const int kw_index = ScanKeywordTokens[ScanKeywordLookup("index", &ScanKeywords)];
    const int kw_on = ScanKeywordTokens[ScanKeywordLookup("on", &ScanKeywords)];
    const int kw_only = ScanKeywordTokens[ScanKeywordLookup("only", &ScanKeywords)];
    Token *toks;
    int n = scan_tokens(s, begin, end, &toks);
    int i = 0;
    while (i < n && toks[i].code != kw_index)
        i++;
    /* the name, then ON */
    if (i + 2 >= n || toks[i + 2].code != kw_on)
        return false;
    int index_tok = i;
    int rel_tok = i + 3;
    if (rel_tok < n && toks[rel_tok].code == kw_only)
        return false;
    /* the relation: name [. name [. name]] */
    int k = rel_tok + 1;
    while (k + 1 < n && toks[k].code == '.')
        k += 2;
    if (k >= n)
        return false;
    IndexText t;
    t.prefix = pnstrdup(s + begin, toks[index_tok].stop - begin);
    t.tail = pnstrdup(s + toks[k].start, end - toks[k].start);
    const char *rel_text = pnstrdup(s + toks[rel_tok].start, toks[k - 1].stop - toks[rel_tok].start);

    MemoryContext cxt = CurrentMemoryContext;
    bool own = !IsTransactionState();
    if (own)
        StartTransactionCommand();
    StringInfoData steps;
    bool ok = false;
    Oid relid = RangeVarGetRelid(ix->relation, NoLock, true);
    if (OidIsValid(relid) && partitions_take_index(relid)) {
        MemoryContext old = MemoryContextSwitchTo(cxt);
        initStringInfo(&steps);
        appendStringInfo(&steps, "%s %s ON ONLY %s %s;\n", t.prefix, quote_identifier(ix->idxname), rel_text,
                         t.tail);
        const char *index_qualified =
            quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), ix->idxname);
        partition_indexes(&steps, &t, relid, index_qualified, index_name_addition(index_column_names(ix)));
        MemoryContextSwitchTo(old);
        ok = true;
    }
    if (own)
        CommitTransactionCommand();
    MemoryContextSwitchTo(cxt);
    if (ok)
        appendStringInfoString(out, steps.data);
    return ok;
}

/* In an UPDATE's text s[begin, end) (no FROM, no RETURNING): where its SET
 * list starts and where its WHERE keyword is (end when none), both at the
 * statement's own level (not in parentheses). */
bool update_clauses(const char *s, size_t begin, size_t end, size_t *set_from, size_t *where_at)
{
    char *text = pnstrdup(s + begin, end - begin);
    core_yy_extra_type extra;
    core_yyscan_t scanner = scanner_init(text, &extra, &ScanKeywords, ScanKeywordTokens);
    core_YYSTYPE lval;
    YYLTYPE lloc;
    const int set_token = ScanKeywordTokens[ScanKeywordLookup("set", &ScanKeywords)];
    const int where_token = ScanKeywordTokens[ScanKeywordLookup("where", &ScanKeywords)];
    int depth = 0;
    bool found_set = false;
    *where_at = end;
    for (;;) {
        int tok = core_yylex(&lval, &lloc, scanner);
        if (tok == 0)
            break;
        if (tok == '(' || tok == '[')
            depth++;
        else if (tok == ')' || tok == ']')
            depth--;
        else if (depth == 0 && !found_set && tok == set_token) {
            found_set = true;
            *set_from = begin + (size_t) lloc + 3;
        } else if (depth == 0 && found_set && tok == where_token) {
            *where_at = begin + (size_t) lloc;
            break;
        }
    }
    scanner_finish(scanner);
    return found_set;
}

/* Where a DELETE's WHERE keyword is in s[begin, end) (end when it has
 * none), by PostgreSQL's scanner, outside parentheses. */
size_t delete_where(const char *s, size_t begin, size_t end)
{
    char *text = pnstrdup(s + begin, end - begin);
    core_yy_extra_type extra;
    core_yyscan_t scanner = scanner_init(text, &extra, &ScanKeywords, ScanKeywordTokens);
    core_YYSTYPE lval;
    YYLTYPE lloc;
    const int where_token = ScanKeywordTokens[ScanKeywordLookup("where", &ScanKeywords)];
    int depth = 0;
    size_t where_at = end;
    for (;;) {
        int tok = core_yylex(&lval, &lloc, scanner);
        if (tok == 0)
            break;
        if (tok == '(' || tok == '[')
            depth++;
        else if (tok == ')' || tok == ']')
            depth--;
        else if (depth == 0 && tok == where_token) {
            where_at = begin + (size_t) lloc;
            break;
        }
    }
    scanner_finish(scanner);
    return where_at;
}

/* Is this UPDATE / DELETE of the shape the batched job can take over (one
 * table named without an alias; no FROM / USING, RETURNING, WITH, WHERE
 * CURRENT OF)?  Its table's key is the catalog's question. */
bool batchable_dml_shape(const Node *stmt)
{
    if (IsA(stmt, UpdateStmt)) {
        const UpdateStmt *u = (const UpdateStmt *) stmt;
        return u->fromClause == NIL && !pg::compat::update_has_returning(u) &&
               u->withClause == nullptr && u->relation->alias == nullptr &&
               !(u->whereClause != nullptr && IsA(u->whereClause, CurrentOfExpr));
    }
    if (IsA(stmt, DeleteStmt)) {
        const DeleteStmt *d = (const DeleteStmt *) stmt;
        return d->usingClause == NIL && !pg::compat::delete_has_returning(d) && d->withClause == nullptr &&
               d->relation->alias == nullptr &&
               !(d->whereClause != nullptr && IsA(d->whereClause, CurrentOfExpr));
    }
    return false;
}

/* The statement that waits for the job the step before submitted: this
 * user's latest on the table. */
void append_job_wait(StringInfo out, const char *rel)
{
    appendStringInfo(out,
                     "SELECT migrate_backfill_wait(max(id)) FROM safe_migrate.backfills "
                     "WHERE relation = %s AND submitted_by = current_user;\n",
                     rel);
}

/* text as a dollar-quoted literal: the first tag that closes it where it
 * ends (one the text does not contain, and that does not complete the
 * text's own end: "... a$sm" + "$sm$" would close at "$sm$" inside) */
char *dollar_quoted(const char *text)
{
    size_t len = strlen(text);
    for (int i = 0;; i++) {
        char *tag = i == 0 ? pstrdup("$sm$") : psprintf("$sm%d$", i);
        char *body = psprintf("%s%s", text, tag);
        if (strstr(body, tag) == body + len)
            return psprintf("%s%s", tag, body);
    }
}

/* Has the table a primary key (the key a backfill walks)?  Read from
 * pg_index, without locking the table: the caller's transaction may be
 * the one that hands the migration to a runner, which must not find it
 * holding a lock there. */
bool has_primary_key(Oid relid, List *targets)
{
    Relation index = table_open(IndexRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_index_indrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
    SysScanDesc scan = systable_beginscan(index, IndexIndrelidIndexId, true, nullptr, 1, &key);
    bool found = false;
    bool key_assigned = false;
    HeapTuple tup;
    while (!found && HeapTupleIsValid(tup = systable_getnext(scan))) {
        Form_pg_index ix = (Form_pg_index) GETSTRUCT(tup);
        if (!ix->indisprimary)
            continue;
        found = true;
        /* a backfill walks the key: it may not assign it */
        ListCell *lc;
        foreach (lc, targets) {
            ResTarget *t = (ResTarget *) lfirst(lc);
            AttrNumber att = t->name ? get_attnum(relid, t->name) : InvalidAttrNumber;
            for (int i = 0; i < ix->indnkeyatts; i++)
                if (att != InvalidAttrNumber && ix->indkey.values[i] == att)
                    key_assigned = true;
        }
    }
    systable_endscan(scan);
    table_close(index, AccessShareLock);
    return found && !key_assigned;
}

/* Does the batched job reach what the statement reaches?  It updates or
 * deletes from the table with its inheritance children, as UPDATE t and
 * DELETE FROM t do; UPDATE ONLY t / DELETE FROM ONLY t leave the children
 * alone, which it cannot. */
bool job_reaches_the_same(const RangeVar *rv, Oid relid)
{
    return rv->inh || !has_subclass(relid);
}

/* The table rv names now, schema-qualified as the backfill records it
 * (NULL when there is none, or it has no primary key, or the UPDATE
 * assigns a key column, or it says ONLY of a table with children: then
 * nothing is rewritten, and the policy judges the UPDATE as written). */
char *qualified_table(const RangeVar *rv, List *targets, bool key_known)
{
    MemoryContext cxt = CurrentMemoryContext;
    bool own = !IsTransactionState();
    if (own)
        StartTransactionCommand();
    Oid relid = RangeVarGetRelid(rv, NoLock, true);
    char *name = nullptr;
    if (OidIsValid(relid) && get_rel_relkind(relid) == RELKIND_RELATION &&
        job_reaches_the_same(rv, relid) && (key_known || has_primary_key(relid, targets))) {
        char *nsp = get_namespace_name(get_rel_namespace(relid));
        char *rel = get_rel_name(relid);
        if (nsp != nullptr && rel != nullptr) {
            MemoryContext old = MemoryContextSwitchTo(cxt);
            name = pstrdup(quote_qualified_identifier(nsp, rel));
            MemoryContextSwitchTo(old);
        }
    }
    if (own)
        CommitTransactionCommand();
    MemoryContextSwitchTo(cxt);
    return name;
}

/* SET NOT NULL without a scan under ACCESS EXCLUSIVE: a CHECK proves it
 * first (added NOT VALID, validated in a transaction of its own), then is
 * dropped. */
void append_not_null(StringInfo out, const char *rel, const char *relname, const char *column)
{
    const char *col = quote_identifier(column);
    const char *check = quote_identifier(makeObjectName(relname, column, "safe_migrate_not_null"));
    appendStringInfo(out, "ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID;\n", rel,
                     check, col);
    appendStringInfo(out, "ALTER TABLE %s VALIDATE CONSTRAINT %s;\n", rel, check);
    appendStringInfo(out, "ALTER TABLE %s ALTER COLUMN %s SET NOT NULL;\n", rel, col);
    appendStringInfo(out, "ALTER TABLE %s DROP CONSTRAINT %s;\n", rel, check);
}

/* ADD PRIMARY KEY / UNIQUE (columns) with nothing an index built apart
 * would not carry over (INCLUDE, WITH, a tablespace, DEFERRABLE). */
bool unique_by_index(const Constraint *c)
{
#if PG_VERSION_NUM >= 180000
    if (c->without_overlaps)
        return false;
#endif
    return (c->contype == CONSTR_PRIMARY || c->contype == CONSTR_UNIQUE) && c->indexname == nullptr &&
           c->keys != NIL && c->including == NIL && c->options == NIL && c->indexspace == nullptr &&
           !c->deferrable && !c->initdeferred;
}

/* The primary key the script added to rv before this statement (the last
 * ADD PRIMARY KEY of keys_added on it), or NULL. */
const Constraint *key_added(List *keys_added, const RangeVar *rv)
{
    const Constraint *added = nullptr;
    ListCell *kc;
    foreach (kc, keys_added) {
        const AlterTableStmt *a = (const AlterTableStmt *) lfirst(kc);
        if (same_relation(a->relation, rv))
            added = (const Constraint *) linitial_node(AlterTableCmd, a->cmds)->def;
    }
    return added;
}

/* ---- ADD COLUMN with a volatile default (item 6) ---- */

/* ALTER TABLE t ADD COLUMN c type [COLLATE ...] DEFAULT <expr> [NOT NULL]:
 * the column and the two clauses online execution takes apart. */
struct AddedColumn {
    ColumnDef *def;
    Constraint *with_default; /* DEFAULT <expr> */
    Constraint *not_null;     /* NOT NULL, or NULL */
};

/* Is stmt such an ADD COLUMN, with nothing the steps could not carry (an
 * identity, a generated or serial column, a constraint other than NULL /
 * NOT NULL / DEFAULT, IF NOT EXISTS, %TYPE, other subcommands)?  The
 * statement's shape only: added_column_online asks the catalog. */
bool added_column_shape(const Node *stmt, AddedColumn *out)
{
    if (stmt == nullptr || !IsA(stmt, AlterTableStmt))
        return false;
    const AlterTableStmt *at = (const AlterTableStmt *) stmt;
    if (at->objtype != OBJECT_TABLE || list_length(at->cmds) != 1)
        return false;
    const AlterTableCmd *cmd = linitial_node(AlterTableCmd, at->cmds);
    /* IF NOT EXISTS: whether the column is there decides what the statement
     * does, and a resumed migration finds it there (added by its own first
     * step): left as written */
    if (cmd->subtype != AT_AddColumn || cmd->missing_ok || cmd->def == nullptr ||
        !IsA(cmd->def, ColumnDef))
        return false;
    ColumnDef *def = (ColumnDef *) cmd->def;
    if (def->colname == nullptr || def->typeName == nullptr || def->typeName->pct_type ||
        def->identity != '\0' || def->generated != '\0' || def->raw_default != nullptr ||
        def->cooked_default != nullptr || def->fdwoptions != NIL || policy::is_serial(def->typeName))
        return false;
    Constraint *with_default = nullptr, *not_null = nullptr;
    bool null = false;
    ListCell *lc;
    foreach (lc, def->constraints) {
        Constraint *c = (Constraint *) lfirst(lc);
        if (!IsA(c, Constraint) || c->location < 0)
            return false;
        if (c->contype == CONSTR_DEFAULT && with_default == nullptr && c->raw_expr != nullptr)
            with_default = c;
        else if (c->contype == CONSTR_NOTNULL && not_null == nullptr)
            not_null = c;
        else if (c->contype == CONSTR_NULL)
            null = true;
        else
            return false;
    }
    if (with_default == nullptr || (null && not_null != nullptr))
        return false;
    out->def = def;
    out->with_default = with_default;
    out->not_null = not_null;
    return true;
}

/* Does the default (or the column's type) name a function or type the
 * script defines or changes before this statement?  Its volatility (or the
 * type's constraints) is then not known when the script is expanded, and
 * is known when a resumed migration expands it again: such a column is
 * left as written, so that the steps are the same both times. */
struct DefinedNames {
    List *names; /* of char *: the last component of each defined name */
    bool hit;
};

bool defined_name(List *names, const char *name)
{
    ListCell *lc;
    foreach (lc, names)
        if (strcmp((const char *) lfirst(lc), name) == 0)
            return true;
    return false;
}

bool defined_names_walker(Node *node, void *context)
{
    if (node == nullptr)
        return false;
    DefinedNames *d = (DefinedNames *) context;
    if (IsA(node, FuncCall)) {
        List *name = ((FuncCall *) node)->funcname;
        if (name != NIL && IsA(llast(name), String) && defined_name(d->names, strVal(llast(name))))
            d->hit = true;
    } else if (IsA(node, TypeCast)) {
        TypeName *tn = ((TypeCast *) node)->typeName;
        if (tn != nullptr && tn->names != NIL && IsA(llast(tn->names), String) &&
            defined_name(d->names, strVal(llast(tn->names))))
            d->hit = true;
    }
    if (d->hit)
        return true;
    return raw_expression_tree_walker(node, SM_WALKER(defined_names_walker), context);
}

bool uses_defined_names(const AddedColumn *col, List *names)
{
    if (names == NIL)
        return false;
    DefinedNames d = {names, false};
    List *type = col->def->typeName->names;
    if (type != NIL && IsA(llast(type), String) && defined_name(names, strVal(llast(type))))
        return true;
    (void) defined_names_walker(col->with_default->raw_expr, &d);
    return d.hit;
}

/* What a statement defines that a later column's default or type may name
 * (uses_defined_names): functions, types, domains, tables (row types). */
List *note_defined(List *names, const Node *stmt)
{
    List *name = NIL;
    switch (nodeTag(stmt)) {
        case T_CreateFunctionStmt:
            name = ((const CreateFunctionStmt *) stmt)->funcname;
            break;
        case T_AlterFunctionStmt:
            name = ((const AlterFunctionStmt *) stmt)->func->objname;
            break;
        case T_DefineStmt:
            if (((const DefineStmt *) stmt)->kind == OBJECT_TYPE)
                name = ((const DefineStmt *) stmt)->defnames;
            break;
        case T_CreateDomainStmt:
            name = ((const CreateDomainStmt *) stmt)->domainname;
            break;
        case T_AlterDomainStmt:
            name = ((const AlterDomainStmt *) stmt)->typeName;
            break;
        case T_CreateEnumStmt:
            name = ((const CreateEnumStmt *) stmt)->typeName;
            break;
        case T_CreateRangeStmt:
            name = ((const CreateRangeStmt *) stmt)->typeName;
            break;
        case T_CompositeTypeStmt:
            return lappend(names, ((const CompositeTypeStmt *) stmt)->typevar->relname);
        case T_CreateStmt:
            return lappend(names, ((const CreateStmt *) stmt)->relation->relname);
        default:
            break;
    }
    if (name != NIL && IsA(llast(name), String))
        names = lappend(names, strVal(llast(name)));
    return names;
}

/* Can the column be added online: the table a plain permanent one with no
 * children (a backfill walks one table) and a primary key (the script's own
 * when key_known), the column's type no domain with constraints (PostgreSQL
 * rewrites the table to check those whatever the default), and the default
 * volatile, or not to be told (as the policy, which then assumes a
 * rewrite: a sequence the script creates for nextval)?  Sets *table to the
 * table's schema-qualified name (as the backfill records it).  Catalog
 * lookups, in a subtransaction (in a transaction of its own when the caller
 * has none): any error means no. */
bool added_column_online(const RangeVar *rv, const AddedColumn *col, bool key_known, char **table)
{
    MemoryContext cxt = CurrentMemoryContext;
    bool own = !IsTransactionState();
    if (own)
        StartTransactionCommand();
    MemoryContextSwitchTo(cxt);
    char *name = nullptr;
    char **name_ptr = &name;
    ErrorData *failure = in_subtransaction([&]() {
        Oid relid = RangeVarGetRelid(rv, NoLock, true);
        if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION ||
            get_rel_persistence(relid) == RELPERSISTENCE_TEMP || has_subclass(relid) ||
            !(key_known || has_primary_key(relid, NIL)))
            return;
        bool found = false;
        if (policy::constrained_domain(col->def->typeName, &found) || !found)
            return;
        if (policy::default_volatility(col->with_default->raw_expr) ==
            policy::DefaultVolatility::NotVolatile)
            return;
        char *nsp = get_namespace_name(get_rel_namespace(relid));
        char *rel = get_rel_name(relid);
        if (nsp != nullptr && rel != nullptr) {
            MemoryContext old = MemoryContextSwitchTo(cxt);
            *name_ptr = pstrdup(quote_qualified_identifier(nsp, rel));
            MemoryContextSwitchTo(old);
        }
    });
    if (own)
        CommitTransactionCommand();
    MemoryContextSwitchTo(cxt);
    if (failure != nullptr) {
        keep_cancel(failure);
        FreeErrorData(failure);
        return false;
    }
    *table = name;
    return name != nullptr;
}

/* Where the column definition's element (constraint or COLLATE) at `from`
 * ends: where the next one starts, else the end of the statement's last
 * token (stop). */
size_t element_end(const ColumnDef *def, size_t from, size_t stop)
{
    size_t next = stop;
    ListCell *lc;
    foreach (lc, def->constraints) {
        const Constraint *c = (const Constraint *) lfirst(lc);
        if (c->location >= 0 && (size_t) c->location > from && (size_t) c->location < next)
            next = (size_t) c->location;
    }
    if (def->collClause != nullptr && def->collClause->location >= 0 &&
        (size_t) def->collClause->location > from && (size_t) def->collClause->location < next)
        next = (size_t) def->collClause->location;
    return next;
}

/* ALTER TABLE t ADD COLUMN c type DEFAULT <volatile> [NOT NULL] -> the column
 * without the rewrite (no default, no NOT NULL: metadata only); the default
 * for new rows; the existing rows filled with the same expression, each its
 * own value, by the backfill (waited for in a step of its own); NOT NULL
 * proven by a check (append_not_null).  The user's text is kept: the ADD
 * COLUMN as written without its DEFAULT and NOT NULL clauses, the
 * expression as written. */
bool rewrite_add_column(StringInfo out, const char *s, size_t begin, size_t end,
                        const AlterTableStmt *at, const AddedColumn *col, const char *table)
{
    Token *tokens;
    int n = scan_tokens(s, begin, end, &tokens);
    if (n == 0)
        return false;
    size_t stop = tokens[n - 1].stop;
    const ColumnDef *def = col->def;
    size_t d_from = (size_t) col->with_default->location;
    size_t d_to = element_end(def, d_from, stop);
    if (d_from < begin || d_to > stop)
        return false;
    /* the expression: the tokens after DEFAULT up to the next element */
    const int default_token = ScanKeywordTokens[ScanKeywordLookup("default", &ScanKeywords)];
    int first = -1, last = -1;
    bool after_default = false;
    for (int i = 0; i < n; i++) {
        if (tokens[i].start < d_from || tokens[i].start >= d_to)
            continue;
        if (!after_default) {
            after_default = tokens[i].code == default_token;
            continue;
        }
        if (first < 0)
            first = i;
        last = i;
    }
    if (first < 0)
        return false;
    char *expr = pnstrdup(s + tokens[first].start, tokens[last].stop - tokens[first].start);
    /* the ADD COLUMN without the DEFAULT and NOT NULL clauses */
    size_t cut_from[2], cut_to[2];
    int cuts = 0;
    cut_from[cuts] = d_from;
    cut_to[cuts++] = d_to;
    if (col->not_null != nullptr) {
        size_t nn_from = (size_t) col->not_null->location;
        size_t nn_to = element_end(def, nn_from, stop);
        if (nn_from < begin || nn_to > stop)
            return false;
        cut_from[cuts] = nn_from;
        cut_to[cuts++] = nn_to;
        if (nn_from < d_from) {
            cut_from[1] = d_from;
            cut_to[1] = d_to;
            cut_from[0] = nn_from;
            cut_to[0] = nn_to;
        }
    }
    StringInfoData add;
    initStringInfo(&add);
    size_t at_pos = begin;
    for (int i = 0; i < cuts; i++) {
        appendBinaryStringInfo(&add, s + at_pos, (int) (cut_from[i] - at_pos));
        at_pos = cut_to[i];
    }
    appendBinaryStringInfo(&add, s + at_pos, (int) (stop - at_pos));
    while (add.len > 0 && isspace((unsigned char) add.data[add.len - 1]))
        add.data[--add.len] = '\0';

    const char *rel = relation_text(at->relation);
    const char *column = quote_identifier(def->colname);
    appendStringInfo(out, "%s;\n", add.data);
    appendStringInfo(out, "ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s;\n", rel, column, expr);
    const char *literal = quote_literal_cstr(table);
    appendStringInfo(out, "SELECT migrate_backfill(%s, %s, %s%s);\n", literal,
                     dollar_quoted(psprintf("%s = %s", column, expr)),
                     dollar_quoted(psprintf("%s IS NULL", column)), online_job_options(literal));
    appendStringInfo(out,
                     "SELECT migrate_backfill_wait(max(id)) FROM safe_migrate.backfills "
                     "WHERE relation = %s AND submitted_by = current_user;\n",
                     literal);
    if (col->not_null != nullptr)
        append_not_null(out, rel, at->relation->relname, def->colname);
    return true;
}

/* Rewrite one statement s[begin, end) into out; false: keep it as it is. */
bool rewrite(StringInfo out, const char *s, size_t begin, size_t end, Node *stmt, List *created,
             List *keys_added, List *defined, char **refusal)
{
    if (IsA(stmt, IndexStmt)) {
        IndexStmt *ix = (IndexStmt *) stmt;
        if (ix->concurrent || created_here(created, ix->relation))
            return false;
        if (partitioned_table(ix->relation))
            return partitioned_index(out, s, begin, end, ix);
        static const char *const words[] = {"create", "?unique", "index", nullptr};
        return insert_concurrently(out, s, begin, end, words);
    }
    if (IsA(stmt, DropStmt)) {
        DropStmt *d = (DropStmt *) stmt;
        if (d->removeType != OBJECT_INDEX || d->concurrent || d->behavior == DROP_CASCADE ||
            list_length(d->objects) != 1)
            return false;
        /* PostgreSQL drops no partitioned index concurrently */
        RangeVar *index = makeRangeVarFromNameList((List *) linitial(d->objects));
        if (relkind_of(index) == RELKIND_PARTITIONED_INDEX)
            return false;
        static const char *const words[] = {"drop", "index", nullptr};
        return insert_concurrently(out, s, begin, end, words);
    }
    if (IsA(stmt, ReindexStmt)) {
        ReindexStmt *r = (ReindexStmt *) stmt;
        if (r->kind != REINDEX_OBJECT_INDEX && r->kind != REINDEX_OBJECT_TABLE)
            return false;
        ListCell *lc;
        foreach (lc, r->params)
            if (strcmp(((DefElem *) lfirst(lc))->defname, "concurrently") == 0)
                return false;
        static const char *const words_index[] = {"reindex", "(", "index", nullptr};
        static const char *const words_table[] = {"reindex", "(", "table", nullptr};
        return insert_concurrently(out, s, begin, end,
                                   r->kind == REINDEX_OBJECT_INDEX ? words_index : words_table);
    }
    if (IsA(stmt, UpdateStmt)) {
        /* many rows in one transaction -> the throttled backfill, waited
         * for in a step of its own (it holds no snapshot meanwhile) */
        UpdateStmt *u = (UpdateStmt *) stmt;
        if (!batchable_dml_shape(stmt) || created_here(created, u->relation))
            return false;
        size_t set_from = 0, where_at = 0;
        if (!update_clauses(s, begin, end, &set_from, &where_at))
            return false;
        /* a primary key the script adds before the UPDATE counts as there
         * (so that the steps are the same when a resumed migration finds
         * it added) */
        const Constraint *added = key_added(keys_added, u->relation);
        if (added != nullptr) {
            ListCell *tc, *nc;
            foreach (tc, u->targetList)
                foreach (nc, added->keys)
                    if (((ResTarget *) lfirst(tc))->name &&
                        strcmp(((ResTarget *) lfirst(tc))->name, strVal(lfirst(nc))) == 0)
                        return false;
        }
        char *table = qualified_table(u->relation, added != nullptr ? nullptr : u->targetList,
                                      added != nullptr);
        if (table == nullptr)
            return false;
        char *set_clause = pnstrdup(s + set_from, where_at - set_from);
        char *where_clause = where_at < end ? pnstrdup(s + where_at + 5, end - where_at - 5) : nullptr;
        const char *rel = quote_literal_cstr(table);
        appendStringInfo(out, "SELECT migrate_backfill(%s, %s%s%s%s);\n", rel, dollar_quoted(set_clause),
                         where_clause ? ", " : "", where_clause ? dollar_quoted(where_clause) : "",
                         online_job_options(rel));
        append_job_wait(out, rel);
        return true;
    }
    if (IsA(stmt, DeleteStmt)) {
        /* many rows in one transaction -> the throttled batched delete,
         * waited for in a step of its own */
        DeleteStmt *d = (DeleteStmt *) stmt;
        if (!batchable_dml_shape(stmt) || created_here(created, d->relation))
            return false;
        char *table = qualified_table(d->relation, NIL, key_added(keys_added, d->relation) != nullptr);
        if (table == nullptr)
            return false;
        size_t where_at = delete_where(s, begin, end);
        char *where_clause = where_at < end ? pnstrdup(s + where_at + 5, end - where_at - 5) : nullptr;
        const char *rel = quote_literal_cstr(table);
        appendStringInfo(out, "SELECT migrate_delete(%s, %s%s);\n", rel,
                         where_clause ? dollar_quoted(where_clause) : "NULL", online_job_options(rel));
        append_job_wait(out, rel);
        return true;
    }
    if (!IsA(stmt, AlterTableStmt))
        return false;
    AlterTableStmt *at = (AlterTableStmt *) stmt;
    if (at->objtype != OBJECT_TABLE || list_length(at->cmds) != 1 ||
        created_here(created, at->relation))
        return false;
    AlterTableCmd *cmd = linitial_node(AlterTableCmd, at->cmds);
    char *rel = relation_text(at->relation);
    if (cmd->subtype == AT_AlterColumnType) {
        char *why = nullptr;
        switch (expand_type_change(at, out, &why)) {
            case TypeChangeOnline::Expanded:
                return true;
            case TypeChangeOnline::Refused:
                *refusal = why;
                return false;
            case TypeChangeOnline::NotOnline:
                return false;
        }
    }
    AddedColumn col;
    if (added_column_shape(stmt, &col)) {
        char *table = nullptr;
        if (uses_defined_names(&col, defined) ||
            !added_column_online(at->relation, &col, key_added(keys_added, at->relation) != nullptr,
                                 &table))
            return false;
        return rewrite_add_column(out, s, begin, end, at, &col, table);
    }
    if (cmd->subtype == AT_AddConstraint && cmd->def && IsA(cmd->def, Constraint) &&
        (((Constraint *) cmd->def)->contype == CONSTR_FOREIGN ||
         ((Constraint *) cmd->def)->contype == CONSTR_CHECK)) {
        Constraint *c = (Constraint *) cmd->def;
        if (c->skip_validation ||
            c->location < 0 || (size_t) c->location < begin || (size_t) c->location >= end)
            return false;
#if PG_VERSION_NUM < 180000
        /* no NOT VALID foreign key on a partitioned table before 18 */
        if (c->contype == CONSTR_FOREIGN && partitioned_table(at->relation))
            return false;
#endif
        const char *name = c->conname;
        if (name == nullptr) {
            name = constraint_name(at->relation, c);
            appendBinaryStringInfo(out, s + begin, (int) ((size_t) c->location - begin));
            appendStringInfo(out, "CONSTRAINT %s ", quote_identifier(name));
            appendBinaryStringInfo(out, s + c->location, (int) (end - (size_t) c->location));
        } else
            appendBinaryStringInfo(out, s + begin, (int) (end - begin));
        /* a new line first: the statement may end in a -- comment */
        appendStringInfoString(out, "\n    NOT VALID;\n");
        appendStringInfo(out, "ALTER TABLE %s VALIDATE CONSTRAINT %s;\n", rel, quote_identifier(name));
        return true;
    }
    if (cmd->subtype == AT_AddConstraint && cmd->def && IsA(cmd->def, Constraint) &&
        unique_by_index((Constraint *) cmd->def) && !partitioned_table(at->relation)) {
        /* the unique index built concurrently, then the constraint on it
         * (a primary key's columns proven NOT NULL first, without a scan
         * under ACCESS EXCLUSIVE) */
        Constraint *c = (Constraint *) cmd->def;
        bool primary = c->contype == CONSTR_PRIMARY;
        StringInfoData cols, joined;
        initStringInfo(&cols);
        initStringInfo(&joined);
        ListCell *lc;
        foreach (lc, c->keys) {
            const char *col = strVal(lfirst(lc));
            appendStringInfo(&cols, "%s%s", cols.len ? ", " : "", quote_identifier(col));
            if (joined.len < NAMEDATALEN)
                appendStringInfo(&joined, "%s%s", joined.len ? "_" : "", col);
        }
        const char *name = c->conname ? c->conname
                                      : makeObjectName(at->relation->relname, primary ? nullptr : joined.data,
                                                       primary ? "pkey" : "key");
        RangeVar plain = *at->relation;
        plain.inh = true;
        appendStringInfo(out, "CREATE UNIQUE INDEX CONCURRENTLY %s ON %s (%s)%s;\n", quote_identifier(name),
                         relation_text(&plain), cols.data,
                         c->nulls_not_distinct ? " NULLS NOT DISTINCT" : "");
        if (primary)
            foreach (lc, c->keys)
                append_not_null(out, rel, at->relation->relname, strVal(lfirst(lc)));
        appendStringInfo(out, "ALTER TABLE %s ADD CONSTRAINT %s %s USING INDEX %s;\n", rel,
                         quote_identifier(name), primary ? "PRIMARY KEY" : "UNIQUE", quote_identifier(name));
        return true;
    }
    if (cmd->subtype == AT_SetNotNull && cmd->name != nullptr) {
        append_not_null(out, rel, at->relation->relname, cmd->name);
        return true;
    }
    return false;
}

}  // namespace

/* The tokens of s[begin, end), by PostgreSQL's scanner (the text parsed:
 * it scans without error).  A token's end is where the scanner left its
 * terminating NUL in its copy of the text (as PostgreSQL's parser finds a
 * token's length when it looks ahead). */
int scan_tokens(const char *s, size_t begin, size_t end, Token **out)
{
    char *text = pnstrdup(s + begin, end - begin);
    core_yy_extra_type extra;
    core_yyscan_t scanner = scanner_init(text, &extra, &ScanKeywords, ScanKeywordTokens);
    int n = 0, room = 32;
    Token *tokens = (Token *) palloc(sizeof(Token) * room);
    for (;;) {
        core_YYSTYPE lval;
        YYLTYPE lloc;
        int code = core_yylex(&lval, &lloc, scanner);
        if (code == 0)
            break;
        if (n == room) {
            room *= 2;
            tokens = (Token *) repalloc(tokens, sizeof(Token) * room);
        }
        tokens[n].code = code;
        tokens[n].start = begin + (size_t) lloc;
        tokens[n].stop = begin + (size_t) lloc + strlen(extra.scanbuf + lloc);
        n++;
    }
    scanner_finish(scanner);
    *out = tokens;
    return n;
}

namespace {

/* ALTER TABLE with several subcommands.  PostgreSQL runs a statement's
 * subcommands in passes (tablecmds.c: drops first, then type changes, new
 * columns, NOT NULL, index-based constraints, other constraints and
 * defaults, everything else), in the order written within a pass.  When
 * one of them is one online execution takes, the statement is split into
 * one ALTER TABLE per subcommand, in that same order, and each is taken
 * on its own (or left as written).  The rank of a subcommand: its pass. */
int subcommand_pass(const AlterTableCmd *cmd)
{
    switch (cmd->subtype) {
        case AT_DropColumn:
        case AT_DropConstraint:
        case AT_DropNotNull:
        case AT_DropIdentity:
        case AT_DropExpression:
            return 0;
        case AT_ColumnDefault:
            return cmd->def != nullptr ? 8 : 0;
        case AT_AlterColumnType:
            return 1;
        case AT_AddColumn:
            return 2;
#if PG_VERSION_NUM >= 170000
        case AT_SetExpression:
            return 3;
#endif
        case AT_SetNotNull:
            return 5;
        case AT_AddIndexConstraint:
            return 6;
        case AT_AddConstraint: {
            const Constraint *c = (cmd->def != nullptr && IsA(cmd->def, Constraint)) ? (const Constraint *) cmd->def
                                                                                      : nullptr;
            if (c != nullptr && (c->contype == CONSTR_PRIMARY || c->contype == CONSTR_UNIQUE ||
                                 c->contype == CONSTR_EXCLUSION))
                return 6;
            return 8;
        }
        case AT_AddIdentity:
            return 8;
        default:
            return 9;
    }
}

/* Can the statement be split without changing what it does?  Not when a
 * new column carries a CHECK or a generation expression (they may name
 * columns other subcommands add, which PostgreSQL adds first), nor when
 * one of several type changes has USING (PostgreSQL computes every USING
 * from the row before any of the changes). */
bool splittable(const AlterTableStmt *at)
{
    if (at->objtype != OBJECT_TABLE || list_length(at->cmds) < 2)
        return false;
    int type_changes = 0;
    bool using_clause = false;
    ListCell *lc;
    foreach (lc, at->cmds) {
        const AlterTableCmd *cmd = (const AlterTableCmd *) lfirst(lc);
        if (!IsA(cmd, AlterTableCmd))
            return false;
        if (cmd->subtype == AT_AlterColumnType) {
            type_changes++;
            using_clause |= cmd->def != nullptr && IsA(cmd->def, ColumnDef) &&
                            ((const ColumnDef *) cmd->def)->raw_default != nullptr;
        }
        if (cmd->subtype == AT_AddColumn && cmd->def != nullptr && IsA(cmd->def, ColumnDef)) {
            const ColumnDef *def = (const ColumnDef *) cmd->def;
            if (def->generated != '\0')
                return false;
            ListCell *cc;
            foreach (cc, def->constraints) {
                const Constraint *c = (const Constraint *) lfirst(cc);
                if (!IsA(c, Constraint) || c->contype == CONSTR_CHECK || c->contype == CONSTR_GENERATED)
                    return false;
            }
        }
    }
    return !(type_changes > 1 && using_clause);
}

/* The subcommands of at, one statement each, in the order PostgreSQL runs
 * them: texts[i] is "ALTER TABLE <as written> <subcommand i>", stmts[i]
 * its parse tree.  0 when the text does not split into exactly the
 * subcommands the parser found (then the statement stays whole). */
int split_alter(const char *s, size_t begin, size_t end, const AlterTableStmt *at, char ***texts,
                AlterTableStmt ***stmts)
{
    if (at->relation == nullptr || at->relation->location < 0)
        return 0;
    Token *tok = nullptr;
    int n = scan_tokens(s, begin, end, &tok);
    int k = 0;
    while (k < n && tok[k].start != (size_t) at->relation->location)
        k++;
    if (k == n)
        return 0;
    k++; /* the name, qualified or not, and ONLY's "*" */
    while (k + 1 < n && tok[k].code == '.')
        k += 2;
    if (k < n && tok[k].code == '*')
        k++;
    if (k >= n)
        return 0;
    int want = list_length(at->cmds);
    int *first = (int *) palloc(sizeof(int) * (n + 1));
    int *last = (int *) palloc(sizeof(int) * (n + 1));
    int pieces = 0, depth = 0;
    first[0] = k;
    for (int i = k; i < n; i++) {
        int c = tok[i].code;
        if (c == '(' || c == '[')
            depth++;
        else if (c == ')' || c == ']')
            depth--;
        else if (c == ',' && depth == 0) {
            if (i == first[pieces])
                return 0;
            last[pieces++] = i - 1;
            first[pieces] = i + 1;
        }
    }
    if (first[pieces] >= n)
        return 0;
    last[pieces++] = n - 1;
    if (pieces != want)
        return 0;
    /* from the statement's first token: not the comments before it */
    char *prefix = pnstrdup(s + tok[0].start, tok[k].start - tok[0].start);
    char **t = (char **) palloc(sizeof(char *) * pieces);
    AlterTableStmt **st = (AlterTableStmt **) palloc(sizeof(AlterTableStmt *) * pieces);
    ListCell *lc = list_head(at->cmds);
    for (int i = 0; i < pieces; i++, lc = lnext(at->cmds, lc)) {
        size_t from = tok[first[i]].start, to = tok[last[i]].stop;
        t[i] = psprintf("%s%.*s", prefix, (int) (to - from), s + from);
        MemoryContext cxt = CurrentMemoryContext;
        List *volatile trees = NIL;
        volatile bool parsed = false;
        PG_TRY();
        {
            trees = raw_parser(t[i], RAW_PARSE_DEFAULT);
            parsed = true;
        }
        PG_CATCH();
        {
            MemoryContextSwitchTo(cxt);
            FlushErrorState();
        }
        PG_END_TRY();
        if (!parsed || list_length(trees) != 1)
            return 0;
        Node *one = linitial_node(RawStmt, trees)->stmt;
        if (!IsA(one, AlterTableStmt) || list_length(((AlterTableStmt *) one)->cmds) != 1 ||
            linitial_node(AlterTableCmd, ((AlterTableStmt *) one)->cmds)->subtype !=
                ((AlterTableCmd *) lfirst(lc))->subtype)
            return 0;
        st[i] = (AlterTableStmt *) one;
    }
    /* PostgreSQL's order: by pass, as written within a pass (a stable
     * insertion sort) */
    for (int i = 1; i < pieces; i++) {
        char *ti = t[i];
        AlterTableStmt *si = st[i];
        int pi = subcommand_pass(linitial_node(AlterTableCmd, si->cmds));
        int j = i - 1;
        while (j >= 0 && subcommand_pass(linitial_node(AlterTableCmd, st[j]->cmds)) > pi) {
            t[j + 1] = t[j];
            st[j + 1] = st[j];
            j--;
        }
        t[j + 1] = ti;
        st[j + 1] = si;
    }
    *texts = t;
    *stmts = st;
    return pieces;
}

/* The primary key an ALTER TABLE of one subcommand adds (keys_added). */
bool adds_primary_key(const Node *stmt)
{
    if (!IsA(stmt, AlterTableStmt) || list_length(((const AlterTableStmt *) stmt)->cmds) != 1)
        return false;
    const AlterTableCmd *cmd = linitial_node(AlterTableCmd, ((const AlterTableStmt *) stmt)->cmds);
    return cmd->subtype == AT_AddConstraint && cmd->def && IsA(cmd->def, Constraint) &&
           ((Constraint *) cmd->def)->contype == CONSTR_PRIMARY && ((Constraint *) cmd->def)->keys != NIL;
}

/* A several-subcommand ALTER TABLE, split (split_alter) when online
 * execution takes at least one of its subcommands: each appended to out,
 * taken online or as written.  1: split; 0: left whole (nothing of it
 * online, or it does not split); -1: refused (*refusal). */
int rewrite_split(StringInfo out, const char *s, size_t begin, size_t end, AlterTableStmt *at,
                  List *created, List **keys_added, List *defined, char **refusal)
{
    if (!splittable(at) || created_here(created, at->relation))
        return 0;
    char **texts = nullptr;
    AlterTableStmt **stmts = nullptr;
    int n = split_alter(s, begin, end, at, &texts, &stmts);
    if (n == 0)
        return 0;
    StringInfoData steps;
    initStringInfo(&steps);
    bool online = false;
    for (int i = 0; i < n; i++) {
        int before = steps.len;
        size_t len = strlen(texts[i]);
        char *why = nullptr;
        if (rewrite(&steps, texts[i], 0, len, (Node *) stmts[i], created, *keys_added, defined, &why)) {
            online = true;
        } else {
            if (why != nullptr) {
                *refusal = why;
                return -1;
            }
            steps.len = before;
            steps.data[before] = '\0';
            append_statement(&steps, texts[i], len);
        }
        if (adds_primary_key((Node *) stmts[i]))
            *keys_added = lappend(*keys_added, stmts[i]);
    }
    if (!online)
        return 0;
    appendBinaryStringInfo(out, steps.data, steps.len);
    return 1;
}

}  // namespace

bool online_handles(const Node *stmt)
{
    if (stmt == nullptr)
        return false;
    if (IsA(stmt, UpdateStmt) || IsA(stmt, DeleteStmt)) {
        /* the batched job walks a primary key the UPDATE does not assign
         * (in a transaction: the policy asks) */
        if (!batchable_dml_shape(stmt))
            return false;
        const RangeVar *rv = IsA(stmt, UpdateStmt) ? ((const UpdateStmt *) stmt)->relation
                                                   : ((const DeleteStmt *) stmt)->relation;
        Oid relid = RangeVarGetRelid(rv, NoLock, true);
        return OidIsValid(relid) && get_rel_relkind(relid) == RELKIND_RELATION &&
               job_reaches_the_same(rv, relid) &&
               has_primary_key(relid, IsA(stmt, UpdateStmt) ? ((const UpdateStmt *) stmt)->targetList
                                                            : NIL);
    }
    if (IsA(stmt, IndexStmt))
        return !((const IndexStmt *) stmt)->concurrent;
    if (IsA(stmt, DropStmt)) {
        const DropStmt *d = (const DropStmt *) stmt;
        return d->removeType == OBJECT_INDEX && !d->concurrent && d->behavior != DROP_CASCADE &&
               list_length(d->objects) == 1;
    }
    if (IsA(stmt, ReindexStmt)) {
        const ReindexStmt *r = (const ReindexStmt *) stmt;
        if (r->kind != REINDEX_OBJECT_INDEX && r->kind != REINDEX_OBJECT_TABLE)
            return false;
        ListCell *lc;
        foreach (lc, r->params)
            if (strcmp(((DefElem *) lfirst(lc))->defname, "concurrently") == 0)
                return false;
        return true;
    }
    if (!IsA(stmt, AlterTableStmt))
        return false;
    const AlterTableStmt *at = (const AlterTableStmt *) stmt;
    if (splittable(at)) {
        /* split into its subcommands, each taken on its own */
        ListCell *lc;
        foreach (lc, at->cmds) {
            AlterTableStmt one = *at;
            one.cmds = list_make1(lfirst(lc));
            if (online_handles((Node *) &one))
                return true;
        }
        return false;
    }
    if (at->objtype != OBJECT_TABLE || list_length(at->cmds) != 1)
        return false;
    const AlterTableCmd *cmd = linitial_node(AlterTableCmd, at->cmds);
    if (cmd->subtype == AT_SetNotNull)
        return cmd->name != nullptr;
    if (cmd->subtype == AT_AlterColumnType) {
        /* judged while it runs, after PostgreSQL changed the column's type
         * in the catalog: the shape only (a plain table with a primary key,
         * with or without USING); an online attempt says what else blocks
         * it */
        if (cmd->def == nullptr || !IsA(cmd->def, ColumnDef))
            return false;
        Oid relid = RangeVarGetRelid(at->relation, NoLock, true);
        return OidIsValid(relid) && get_rel_relkind(relid) == RELKIND_RELATION && !has_subclass(relid) &&
               !get_rel_relispartition(relid) && has_primary_key(relid, NIL);
    }
    AddedColumn col;
    if (added_column_shape(stmt, &col)) {
        /* as rewrite: the table, its key, the type and the default */
        char *table = nullptr;
        return added_column_online(at->relation, &col, false, &table);
    }
    if (cmd->subtype != AT_AddConstraint || cmd->def == nullptr || !IsA(cmd->def, Constraint))
        return false;
    const Constraint *c = (const Constraint *) cmd->def;
    if (unique_by_index(c))
        return true;
    return (c->contype == CONSTR_FOREIGN || c->contype == CONSTR_CHECK) && !c->skip_validation &&
           c->location >= 0;
}

char *expand_online(const char *sql, const char **problem) noexcept
{
    *problem = nullptr;
    MemoryContext cxt = CurrentMemoryContext;
    List *volatile trees = NIL;
    volatile bool parsed = false;
    PG_TRY();
    {
        trees = raw_parser(sql, RAW_PARSE_DEFAULT);
        parsed = true;
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(cxt);
        FlushErrorState();
    }
    PG_END_TRY();
    if (!parsed)
        return pstrdup(sql); /* the caller's own parse reports the error */
    size_t len = strlen(sql);
    StringInfoData out;
    initStringInfo(&out);
    vacuum_later = NIL;
    List *created = NIL;
    List *keys_added = NIL; /* ALTER TABLE ... ADD PRIMARY KEY statements */
    List *defined = NIL;    /* functions and types the script defines (note_defined) */
    ListCell *lc;
    foreach (lc, trees) {
        RawStmt *raw = lfirst_node(RawStmt, lc);
        size_t begin = (size_t) raw->stmt_location;
        size_t end = raw->stmt_len == 0 ? len : begin + (size_t) raw->stmt_len;
        char *refusal = nullptr;
        if (IsA(raw->stmt, AlterTableStmt) && list_length(((AlterTableStmt *) raw->stmt)->cmds) > 1) {
            int split = rewrite_split(&out, sql, begin, end, (AlterTableStmt *) raw->stmt, created,
                                      &keys_added, defined, &refusal);
            if (split < 0) {
                *problem = refusal;
                return nullptr;
            }
            if (split > 0) {
                defined = note_defined(defined, raw->stmt);
                continue;
            }
        }
        if (!rewrite(&out, sql, begin, end, raw->stmt, created, keys_added, defined, &refusal)) {
            if (refusal != nullptr) {
                *problem = refusal;
                return nullptr;
            }
            append_statement(&out, sql + begin, end - begin);
        }
        defined = note_defined(defined, raw->stmt);
        if (IsA(raw->stmt, CreateStmt))
            created = lappend(created, ((CreateStmt *) raw->stmt)->relation);
        else if (adds_primary_key(raw->stmt))
            keys_added = lappend(keys_added, raw->stmt);
        else if (IsA(raw->stmt, CreateTableAsStmt))
            created = lappend(created, ((CreateTableAsStmt *) raw->stmt)->into->rel);
    }
    /* The jobs' vacuum, after the last step: a job's own vacuum at its end
     * holds the table's SHARE UPDATE EXCLUSIVE lock, which the migration's
     * next steps (VALIDATE, CREATE INDEX CONCURRENTLY, the swap) would wait
     * for (measured: 12 s of a 23 s migration on 2,000,000 rows), or cancel
     * it.  A table gone by then, or one the migration's role does not own
     * (the vacuum is the owner's), is left to autovacuum, as a job's own
     * vacuum would leave it; safe_migrate.backfill_vacuum off: none. */
    if (backfill::backfill_vacuum) {
        foreach (lc, vacuum_later)
            appendStringInfo(&out,
                             "SELECT migrate_vacuum(c.oid) FROM pg_catalog.pg_class c "
                             "WHERE c.oid = pg_catalog.to_regclass(%s) "
                             "AND pg_catalog.pg_has_role(c.relowner, 'USAGE');\n",
                             (const char *) lfirst(lc));
    }
    vacuum_later = NIL;
    return out.data;
}

}  // namespace safe_migrate::pg
