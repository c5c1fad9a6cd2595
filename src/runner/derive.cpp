/*
 * derive.cpp — down scripts derived from the up script's parse trees, for
 * the DDL whose reverse is certain: CREATE TABLE / INDEX / VIEW / SEQUENCE /
 * FUNCTION / PROCEDURE, ALTER TABLE ADD COLUMN / ADD CONSTRAINT (named),
 * renames.  Anything else (data changes, IF NOT EXISTS, OR REPLACE, unnamed
 * indexes and constraints) makes the migration underivable: better no down
 * script than a wrong one.
 */
#include "derive.hpp"

extern "C" {
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "utils/builtins.h"
}

namespace safe_migrate::runner {

namespace {

const char *rv_text(const RangeVar *rv)
{
    return rv->schemaname ? quote_qualified_identifier(rv->schemaname, rv->relname)
                          : quote_identifier(rv->relname);
}

const char *in_schema_of(const RangeVar *rv, const char *name)
{
    return rv->schemaname ? quote_qualified_identifier(rv->schemaname, name) : quote_identifier(name);
}

const char *names_text(List *names)
{
    StringInfoData s;
    initStringInfo(&s);
    ListCell *lc;
    foreach (lc, names)
        appendStringInfo(&s, "%s%s", s.len ? "." : "", quote_identifier(strVal(lfirst(lc))));
    return s.data;
}

/* The reverse of one statement, or NULL (why in *reason). */
char *reverse_of(Node *stmt, const char **reason, bool *drops_table, bool *drops_column)
{
    StringInfoData out;
    initStringInfo(&out);
    switch (nodeTag(stmt)) {
        case T_CreateStmt: {
            CreateStmt *s = (CreateStmt *) stmt;
            if (s->if_not_exists) {
                *reason = "CREATE TABLE IF NOT EXISTS may not have created the table";
                return nullptr;
            }
            appendStringInfo(&out, "DROP TABLE %s;", rv_text(s->relation));
            *drops_table = true;
            return out.data;
        }
        case T_IndexStmt: {
            IndexStmt *s = (IndexStmt *) stmt;
            if (s->idxname == nullptr || s->if_not_exists) {
                *reason = "an index without a name, or IF NOT EXISTS, cannot be dropped for sure";
                return nullptr;
            }
            appendStringInfo(&out, "DROP INDEX %s%s;", s->concurrent ? "CONCURRENTLY " : "",
                             in_schema_of(s->relation, s->idxname));
            return out.data;
        }
        case T_ViewStmt: {
            ViewStmt *s = (ViewStmt *) stmt;
            if (s->replace) {
                *reason = "CREATE OR REPLACE VIEW may have replaced an older view";
                return nullptr;
            }
            appendStringInfo(&out, "DROP VIEW %s;", rv_text(s->view));
            return out.data;
        }
        case T_CreateSeqStmt: {
            CreateSeqStmt *s = (CreateSeqStmt *) stmt;
            if (s->if_not_exists) {
                *reason = "CREATE SEQUENCE IF NOT EXISTS may not have created the sequence";
                return nullptr;
            }
            appendStringInfo(&out, "DROP SEQUENCE %s;", rv_text(s->sequence));
            return out.data;
        }
        case T_CreateFunctionStmt: {
            CreateFunctionStmt *s = (CreateFunctionStmt *) stmt;
            if (s->replace) {
                *reason = "CREATE OR REPLACE FUNCTION may have replaced an older function";
                return nullptr;
            }
            StringInfoData args;
            initStringInfo(&args);
            ListCell *lc;
            foreach (lc, s->parameters) {
                FunctionParameter *p = (FunctionParameter *) lfirst(lc);
                if (p->mode == FUNC_PARAM_OUT || p->mode == FUNC_PARAM_TABLE)
                    continue;
                appendStringInfo(&args, "%s%s", args.len ? ", " : "", TypeNameToString(p->argType));
            }
            appendStringInfo(&out, "DROP %s %s(%s);", s->is_procedure ? "PROCEDURE" : "FUNCTION",
                             names_text(s->funcname), args.data);
            return out.data;
        }
        case T_RenameStmt: {
            RenameStmt *s = (RenameStmt *) stmt;
            if (s->relation && s->renameType == OBJECT_TABLE) {
                appendStringInfo(&out, "ALTER TABLE %s RENAME TO %s;",
                                 in_schema_of(s->relation, s->newname),
                                 quote_identifier(s->relation->relname));
                return out.data;
            }
            if (s->relation && s->renameType == OBJECT_COLUMN) {
                appendStringInfo(&out, "ALTER TABLE %s RENAME COLUMN %s TO %s;",
                                 rv_text(s->relation), quote_identifier(s->newname),
                                 quote_identifier(s->subname));
                return out.data;
            }
            *reason = "only renames of tables and columns are reversed";
            return nullptr;
        }
        case T_AlterTableStmt: {
            AlterTableStmt *s = (AlterTableStmt *) stmt;
            List *parts = NIL;
            ListCell *lc;
            foreach (lc, s->cmds) {
                AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
                if (cmd->subtype == AT_AddColumn && !cmd->missing_ok) {
                    parts = lcons(psprintf("DROP COLUMN %s",
                                           quote_identifier(((ColumnDef *) cmd->def)->colname)),
                                  parts);
                    *drops_column = true;
                } else if (cmd->subtype == AT_AddConstraint && cmd->def &&
                           IsA(cmd->def, Constraint) && ((Constraint *) cmd->def)->conname) {
                    parts = lcons(psprintf("DROP CONSTRAINT %s",
                                           quote_identifier(((Constraint *) cmd->def)->conname)),
                                  parts);
                } else {
                    *reason = "only ADD COLUMN and named ADD CONSTRAINT are reversed in ALTER TABLE";
                    return nullptr;
                }
            }
            appendStringInfo(&out, "ALTER TABLE %s ", rv_text(s->relation));
            bool first = true;
            foreach (lc, parts) {
                appendStringInfo(&out, "%s%s", first ? "" : ", ", (char *) lfirst(lc));
                first = false;
            }
            appendStringInfoChar(&out, ';');
            return out.data;
        }
        default:
            *reason = "the statement has no certain reverse";
            return nullptr;
    }
}

}  // namespace

char *derive_down_script(const char *up, const char **reason)
{
    List *trees = raw_parser(up, RAW_PARSE_DEFAULT);
    List *reversed = NIL;
    bool drops_table = false, drops_column = false;
    ListCell *lc;
    foreach (lc, trees) {
        RawStmt *raw = lfirst_node(RawStmt, lc);
        char *rev = reverse_of(raw->stmt, reason, &drops_table, &drops_column);
        if (rev == nullptr)
            return nullptr;
        reversed = lcons(rev, reversed);
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
    if (drops_table)
        appendStringInfoString(&out, "-- safe_migrate:allow ban-drop-table the derived down script drops the tables its migration created\n");
    if (drops_column)
        appendStringInfoString(&out, "-- safe_migrate:allow ban-drop-column the derived down script drops the columns its migration added\n");
    foreach (lc, reversed)
        appendStringInfo(&out, "%s\n", (char *) lfirst(lc));
    return out.data;
}

}  // namespace safe_migrate::runner
