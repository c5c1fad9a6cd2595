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
 * It reads nothing of the catalog but whether a table is partitioned, so
 * the same script gives the same steps (a resumed migration finds the
 * steps it recorded).  What it handles:
 *
 *   CREATE [UNIQUE] INDEX on a table the script did not create (and not
 *   partitioned)
 *       -> CREATE [UNIQUE] INDEX CONCURRENTLY (a step of its own; the
 *          runner drops an invalid leftover of an interrupted build)
 *   DROP INDEX (one index, not CASCADE)    -> DROP INDEX CONCURRENTLY
 *   REINDEX INDEX / TABLE                  -> REINDEX ... CONCURRENTLY
 *   ALTER TABLE t ADD [CONSTRAINT c] FOREIGN KEY / CHECK (alone in its
 *   statement, t not created by the script)
 *       -> the same with NOT VALID (an unnamed one gets the name
 *          PostgreSQL would give it), then ALTER TABLE t VALIDATE
 *          CONSTRAINT c in a transaction of its own
 *   ALTER TABLE t ALTER COLUMN c SET NOT NULL (alone, t not created by the
 *   script)
 *       -> ADD CONSTRAINT ... CHECK (c IS NOT NULL) NOT VALID; VALIDATE it
 *          (own transaction); SET NOT NULL (no scan: the valid check proves
 *          it); DROP the check
 *
 * Everything else is left as written (the policy judges it as always).
 * PostgreSQL style: no C++ objects live across calls that may ereport.
 */
#include "core_bridge.hpp"
#include "compat.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "lib/stringinfo.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
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

void define_online_setting(void)
{
    DefineCustomBoolVariable(
        "safe_migrate.online",
        "Run every migration of the session online, as if its script had the line "
        "\"-- safe_migrate:online\".",
        nullptr, &online_setting, false, PGC_USERSET, 0, nullptr, nullptr, nullptr);
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

void append_insert(StringInfo out, const char *s, size_t begin, size_t at, size_t end,
                   const char *insert)
{
    appendBinaryStringInfo(out, s + begin, (int) (at - begin));
    appendStringInfoString(out, insert);
    appendBinaryStringInfo(out, s + at, (int) (end - at));
    appendStringInfoString(out, ";\n");
}

/* Is rv a partitioned table now?  PostgreSQL builds no index on one
 * concurrently (its partitions' indexes are built one by one, which the
 * policy's hint writes out).  A catalog lookup, in a transaction of its own
 * when the caller has none (the runner prepares its script outside one). */
bool partitioned_table(const RangeVar *rv)
{
    MemoryContext cxt = CurrentMemoryContext;
    bool own = !IsTransactionState();
    bool partitioned = false;
    if (own)
        StartTransactionCommand();
    Oid relid = RangeVarGetRelid(rv, NoLock, true);
    partitioned = OidIsValid(relid) && get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE;
    if (own)
        CommitTransactionCommand();
    MemoryContextSwitchTo(cxt);
    return partitioned;
}

/* Rewrite one statement s[begin, end) into out; false: keep it as it is. */
bool rewrite(StringInfo out, const char *s, size_t begin, size_t end, Node *stmt, List *created)
{
    if (IsA(stmt, IndexStmt)) {
        IndexStmt *ix = (IndexStmt *) stmt;
        if (ix->concurrent || created_here(created, ix->relation) || partitioned_table(ix->relation))
            return false;
        static const char *const words[] = {"create", "?unique", "index", nullptr};
        size_t at = after_words(s, begin, end, words);
        if (at == 0)
            return false;
        append_insert(out, s, begin, at, end, " CONCURRENTLY");
        return true;
    }
    if (IsA(stmt, DropStmt)) {
        DropStmt *d = (DropStmt *) stmt;
        if (d->removeType != OBJECT_INDEX || d->concurrent || d->behavior == DROP_CASCADE ||
            list_length(d->objects) != 1)
            return false;
        static const char *const words[] = {"drop", "index", nullptr};
        size_t at = after_words(s, begin, end, words);
        if (at == 0)
            return false;
        append_insert(out, s, begin, at, end, " CONCURRENTLY");
        return true;
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
        size_t at = after_words(s, begin, end,
                                r->kind == REINDEX_OBJECT_INDEX ? words_index : words_table);
        if (at == 0)
            return false;
        append_insert(out, s, begin, at, end, " CONCURRENTLY");
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
    if (cmd->subtype == AT_AddConstraint && cmd->def && IsA(cmd->def, Constraint)) {
        Constraint *c = (Constraint *) cmd->def;
        if ((c->contype != CONSTR_FOREIGN && c->contype != CONSTR_CHECK) || c->skip_validation ||
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
    if (cmd->subtype == AT_SetNotNull && cmd->name != nullptr) {
        const char *col = quote_identifier(cmd->name);
        const char *check = quote_identifier(makeObjectName(at->relation->relname, cmd->name,
                                                            "safe_migrate_not_null"));
        appendStringInfo(out, "ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID;\n",
                         rel, check, col);
        appendStringInfo(out, "ALTER TABLE %s VALIDATE CONSTRAINT %s;\n", rel, check);
        appendStringInfo(out, "ALTER TABLE %s ALTER COLUMN %s SET NOT NULL;\n", rel, col);
        appendStringInfo(out, "ALTER TABLE %s DROP CONSTRAINT %s;\n", rel, check);
        return true;
    }
    return false;
}

}  // namespace

bool online_handles(const Node *stmt)
{
    if (stmt == nullptr)
        return false;
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
    if (at->objtype != OBJECT_TABLE || list_length(at->cmds) != 1)
        return false;
    const AlterTableCmd *cmd = linitial_node(AlterTableCmd, at->cmds);
    if (cmd->subtype == AT_SetNotNull)
        return cmd->name != nullptr;
    if (cmd->subtype != AT_AddConstraint || cmd->def == nullptr || !IsA(cmd->def, Constraint))
        return false;
    const Constraint *c = (const Constraint *) cmd->def;
    return (c->contype == CONSTR_FOREIGN || c->contype == CONSTR_CHECK) && !c->skip_validation &&
           c->location >= 0;
}

char *expand_online(const char *sql) noexcept
{
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
    List *created = NIL;
    ListCell *lc;
    foreach (lc, trees) {
        RawStmt *raw = lfirst_node(RawStmt, lc);
        size_t begin = (size_t) raw->stmt_location;
        size_t end = raw->stmt_len == 0 ? len : begin + (size_t) raw->stmt_len;
        if (!rewrite(&out, sql, begin, end, raw->stmt, created))
            append_statement(&out, sql + begin, end - begin);
        if (IsA(raw->stmt, CreateStmt))
            created = lappend(created, ((CreateStmt *) raw->stmt)->relation);
        else if (IsA(raw->stmt, CreateTableAsStmt))
            created = lappend(created, ((CreateTableAsStmt *) raw->stmt)->into->rel);
    }
    return out.data;
}

}  // namespace safe_migrate::pg
