/*
 * policy.cpp — the safe-DDL rules (see policy.hpp).
 *
 * Each rule is one entry of kRules: name, default level, whether small
 * tables are exempt, a one-line summary, when it applies, and how it
 * explains itself.  Messages follow PostgreSQL's style guide: the primary
 * message names the rule, the statement and the table with its size; the
 * detail says which lock is taken and what it blocks; the hint writes out
 * the safe sequence with the user's own names.
 */
#include "policy.hpp"

#include <boost/container/flat_map.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

namespace safe_migrate::core {

namespace {

std::string join(const std::vector<std::string>& items, std::string_view sep = ", ")
{
    std::string out;
    for (size_t i = 0; i < items.size(); i++) {
        if (i)
            out += sep;
        out += items[i];
    }
    return out;
}

std::string or_default(const std::string& s, std::string_view fallback)
{
    return s.empty() ? std::string(fallback) : s;
}

/* "public.users" -> "users" (for names derived from a table's name) */
std::string bare(const std::string& qualified)
{
    auto dot = qualified.rfind('.');
    std::string b = dot == std::string::npos ? qualified : qualified.substr(dot + 1);
    b.erase(std::remove(b.begin(), b.end(), '"'), b.end());
    return b;
}

/* A name made of the user's names ("users_email_key"): their quotes dropped, and
 * quoted as a whole when it is not a plain identifier ("Full Name" has a space). */
std::string derived(std::string name)
{
    name.erase(std::remove(name.begin(), name.end(), '"'), name.end());
    bool plain = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                 std::all_of(name.begin(), name.end(), [](char ch) {
                     return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
                 });
    return plain ? name : "\"" + name + "\"";
}

std::string size_of(const TableFacts& t)
{
    return format_rows(t.rows) + " rows, " + format_bytes(t.bytes);
}

std::string on_table(const StatementFacts& f)
{
    return "table " + f.table.name + " (" + size_of(f.table) + ")";
}

std::string lock_detail(std::string_view what, LockMode mode, const std::string& table,
                        std::string_view duration)
{
    std::string out(what);
    std::string_view name = lock_name(mode);
    out += name.front() == 'A' || name.front() == 'E' ? " takes an " : " takes a ";
    out += name;
    out += " lock on " + table + " ";
    out += duration;
    out += ": ";
    out += lock_blocks(mode);
    out += ".";
    return out;
}

std::string not_null_sequence(const StatementFacts& f, const std::string& column)
{
    std::string c = derived(bare(f.table.name) + "_" + bare(column) + "_not_null");
    const std::string& t = f.table.name;
    return "ALTER TABLE " + t + " ADD CONSTRAINT " + c + " CHECK (" + column +
           " IS NOT NULL) NOT VALID; ALTER TABLE " + t + " VALIDATE CONSTRAINT " + c +
           "; ALTER TABLE " + t + " ALTER COLUMN " + column + " SET NOT NULL; ALTER TABLE " + t +
           " DROP CONSTRAINT " + c + ";";
}

/* A SQL string literal for a hint: $$...$$ (as the README writes clauses), or
 * '...' with quotes doubled when the text itself holds "$$". */
std::string sql_text(const std::string& text, bool dollar)
{
    if (dollar && text.find("$$") == std::string::npos)
        return "$$" + text + "$$";
    std::string out = "'";
    for (char ch : text) {
        out += ch;
        if (ch == '\'')
            out += '\'';
    }
    return out + "'";
}

/* The product's throttled backfill, in the user's names: start the job,
 * then wait for it in a later step (migrate_backfill returns its id). */
std::string backfill_steps(const std::string& table, const std::string& set_clause,
                           const std::string& where_clause)
{
    return "SELECT migrate_backfill(" + sql_text(table, false) + ", " + sql_text(set_clause, true) +
           ", " + sql_text(where_clause, false) +
           "); then, in a later step, SELECT migrate_backfill_wait(<id it returned>, '1 hour');";
}

struct Explanation {
    std::string message, detail, hint;
};

struct Rule {
    std::string_view name;
    Level default_level;
    bool size_dependent;
    std::string_view summary;
    bool (*applies)(const StatementFacts&);
    Explanation (*explain)(const StatementFacts&);
};

std::string head(std::string_view rule, const std::string& what)
{
    return "rule \"" + std::string(rule) + "\": " + what;
}

/* ------------------------------ the rules ------------------------------ */

const Rule kRules[] = {
    {"adding-required-field", Level::Error, false,
     "ADD COLUMN ... NOT NULL without a default on a table with rows",
     [](const StatementFacts& f) {
         return f.action == Action::AddColumn && f.not_null && !f.has_default && f.table.rows > 0;
     },
     [](const StatementFacts& f) {
         const std::string& t = f.table.name;
         return Explanation{
             head("adding-required-field", "ADD COLUMN " + f.column +
                                               " NOT NULL without a default on " + on_table(f)),
             "The existing rows have no value for the new column, so the statement fails after "
             "scanning the table under an ACCESS EXCLUSIVE lock: " +
                 std::string(lock_blocks(LockMode::AccessExclusive)) + ".",
             "Add the column in steps: ALTER TABLE " + t + " ADD COLUMN " + f.column + " " +
                 or_default(f.column_type, "<type>") + "; fill it in batches: " +
                 backfill_steps(t, f.column + " = <value>", f.column + " IS NULL") + " then " +
                 not_null_sequence(f, f.column) +
                 " Or give it a constant DEFAULT, which PostgreSQL adds without a rewrite."};
     }},
    {"adding-foreign-key-constraint", Level::Error, true,
     "FOREIGN KEY added without NOT VALID on a large table",
     [](const StatementFacts& f) { return f.action == Action::AddForeignKey && !f.not_valid; },
     [](const StatementFacts& f) {
         const std::string& t = f.table.name;
         std::string c = or_default(f.constraint, derived(bare(t) + "_" +
                                                              (f.columns.empty() ? "fk" : f.columns[0]) +
                                                              "_fkey"));
         return Explanation{
             head("adding-foreign-key-constraint",
                  "FOREIGN KEY without NOT VALID on " + on_table(f)),
             lock_detail("Adding it", LockMode::ShareRowExclusive, t + " and " +
                                                                       or_default(f.referenced_table,
                                                                                  "the referenced table"),
                         "while every row is checked"),
             "Add it without checking existing rows, then validate it without blocking writes: "
             "ALTER TABLE " + t + " ADD CONSTRAINT " + c + " FOREIGN KEY (" + join(f.columns) +
                 ") REFERENCES " + or_default(f.referenced_table, "<table>") +
                 " NOT VALID; ALTER TABLE " + t + " VALIDATE CONSTRAINT " + c + ";"};
     }},
    {"ban-drop-column", Level::Error, false, "DROP COLUMN of an existing table",
     [](const StatementFacts& f) { return f.action == Action::DropColumn; },
     [](const StatementFacts& f) {
         return Explanation{
             head("ban-drop-column", "DROP COLUMN " + f.column + " on " + on_table(f)),
             "Application code that still reads or writes " + f.column +
                 " fails as soon as this commits, and the data cannot be brought back.",
             "First deploy the application without any use of " + f.column +
                 ", then drop it in a migration that says so: "
                 "-- safe_migrate:allow ban-drop-column <reason>"};
     }},
    {"ban-drop-table", Level::Error, false, "DROP TABLE of an existing table",
     [](const StatementFacts& f) { return f.action == Action::DropTable; },
     [](const StatementFacts& f) {
         return Explanation{
             head("ban-drop-table", "DROP TABLE on " + on_table(f)),
             "Application code that still uses " + f.table.name +
                 " fails as soon as this commits, and the data cannot be brought back.",
             "First deploy the application without any use of " + f.table.name +
                 " (and keep a backup), then drop it in a migration that says so: "
                 "-- safe_migrate:allow ban-drop-table <reason>"};
     }},
    {"ban-truncate", Level::Error, false, "TRUNCATE of an existing table",
     [](const StatementFacts& f) { return f.action == Action::Truncate; },
     [](const StatementFacts& f) {
         return Explanation{
             head("ban-truncate", "TRUNCATE on " + on_table(f)),
             lock_detail("TRUNCATE", LockMode::AccessExclusive, f.table.name,
                         "and deletes every row at once"),
             "Delete the rows you mean in batches, or say why in the migration: "
             "-- safe_migrate:allow ban-truncate <reason>"};
     }},
    {"changing-column-type", Level::Error, true,
     "ALTER COLUMN TYPE that makes PostgreSQL rewrite a large table",
     [](const StatementFacts& f) { return f.action == Action::TableRewrite && f.type_change; },
     [](const StatementFacts& f) {
         const std::string& t = f.table.name;
         std::string col = or_default(f.column, "<column>");
         return Explanation{
             head("changing-column-type",
                  "ALTER COLUMN " + col + " TYPE rewrites " + on_table(f)),
             lock_detail("The rewrite", LockMode::AccessExclusive, t,
                         "while it copies every row and rebuilds every index"),
             "Change the type in steps: ALTER TABLE " + t + " ADD COLUMN " + col + "_new " +
                 or_default(f.column_type, "<new type>") +
                 "; keep it in sync with a trigger; fill it in batches: " +
                 backfill_steps(t, col + "_new = " + col +
                                       (f.column_type.empty() ? "" : "::" + f.column_type),
                                col + "_new IS NULL AND " + col + " IS NOT NULL") +
                 " switch the application to " + col + "_new; drop " + col +
                 " and rename. Type changes that need no rewrite (varchar(n) to a longer "
                 "varchar or to text, a larger numeric precision) are allowed as they are."};
     }},
    {"cluster", Level::Error, true, "CLUSTER rewrites a large table",
     [](const StatementFacts& f) { return f.action == Action::Cluster; },
     [](const StatementFacts& f) {
         return Explanation{
             head("cluster", "CLUSTER rewrites " + on_table(f)),
             lock_detail("CLUSTER", LockMode::AccessExclusive, f.table.name,
                         "while it copies every row and rebuilds every index"),
             "Reorder it online with pg_repack, or run CLUSTER in a maintenance window with "
             "-- safe_migrate:allow cluster <reason>"};
     }},
    {"constraint-missing-not-valid", Level::Error, true,
     "CHECK constraint added without NOT VALID on a large table",
     [](const StatementFacts& f) { return f.action == Action::AddCheck && !f.not_valid; },
     [](const StatementFacts& f) {
         const std::string& t = f.table.name;
         std::string c = or_default(f.constraint, derived(bare(t) + "_check"));
         return Explanation{
             head("constraint-missing-not-valid", "CHECK without NOT VALID on " + on_table(f)),
             lock_detail("Adding it", LockMode::AccessExclusive, t, "while every row is checked"),
             "Add it without checking existing rows, then validate it without blocking reads "
             "or writes: ALTER TABLE " + t + " ADD CONSTRAINT " + c + " CHECK (" +
                 or_default(f.expression, "<condition>") + ") NOT VALID; ALTER TABLE " + t +
                 " VALIDATE CONSTRAINT " + c + ";"};
     }},
    {"disallowed-unique-constraint", Level::Error, true,
     "UNIQUE / PRIMARY KEY constraint that builds its index under the table lock",
     [](const StatementFacts& f) {
         return f.action == Action::AddUniqueOrPrimary && !f.using_index;
     },
     [](const StatementFacts& f) {
         const std::string& t = f.table.name;
         std::string c = or_default(f.constraint, derived(bare(t) + "_" + join(f.columns, "_") + "_key"));
         return Explanation{
             head("disallowed-unique-constraint",
                  "constraint building a unique index on " + on_table(f)),
             lock_detail("Adding it", LockMode::AccessExclusive, t, "while the index is built"),
             "Build the index first without blocking writes, then attach it: CREATE UNIQUE "
             "INDEX CONCURRENTLY " + c + " ON " + t + " (" + join(f.columns) +
                 "); ALTER TABLE " + t + " ADD CONSTRAINT " + c + " UNIQUE USING INDEX " + c +
                 "; (PRIMARY KEY USING INDEX for a primary key)"};
     }},
    {"foreign-key-missing-index", Level::Warn, false,
     "FOREIGN KEY whose referencing columns no index starts with",
     [](const StatementFacts& f) {
         return f.action == Action::AddForeignKey && !f.fk_columns_indexed;
     },
     [](const StatementFacts& f) {
         const std::string& t = f.table.name;
         return Explanation{
             head("foreign-key-missing-index",
                  "no index on " + on_table(f) + " for its FOREIGN KEY (" + join(f.columns) +
                      ")"),
             "Every DELETE or key UPDATE on " + or_default(f.referenced_table, "the referenced table") +
                 " scans " + t + " (" + size_of(f.table) + ") to check for referencing rows.",
             "CREATE INDEX CONCURRENTLY " + derived(bare(t) + "_" + join(f.columns, "_") + "_idx") + " ON " + t +
                 " (" + join(f.columns) + ");"};
     }},
    {"large-unbatched-dml", Level::Error, false,
     "UPDATE or DELETE of many rows in one migration transaction",
     [](const StatementFacts& f) { return f.action == Action::LargeDml; },
     [](const StatementFacts& f) {
         const std::string& t = f.table.name;
         std::string verb = f.is_delete ? "DELETE" : "UPDATE";
         return Explanation{
             head("large-unbatched-dml", verb + " of " + format_rows(f.rows_affected) +
                                             (f.rows_affected == 1 ? " row of " : " rows of ") +
                                             on_table(f) + " in one transaction"),
             "Every changed row stays locked against other writers until the migration "
             "commits, and the change reaches replicas as one burst of WAL.",
             f.is_delete
                 ? "Delete in batches of a few thousand rows by key range, each committed on its "
                   "own (a procedure with COMMIT, run by CALL in its own migration)."
                 : "Update " + t + " in batches, each committed on its own, with the throttled "
                   "backfill: " + backfill_steps(t, "<your SET list>", "<your WHERE condition>")};
     }},
    {"renaming-column", Level::Error, false, "RENAME COLUMN of an existing table",
     [](const StatementFacts& f) { return f.action == Action::RenameColumn; },
     [](const StatementFacts& f) {
         const std::string& t = f.table.name;
         return Explanation{
             head("renaming-column", "RENAME COLUMN " + f.column + " TO " + f.new_name + " on " +
                                         on_table(f)),
             "Application code that uses " + f.column + " fails as soon as this commits.",
             "Add " + f.new_name + " as a new column, keep both in sync with a trigger, fill it "
             "in batches (" + backfill_steps(t, f.new_name + " = " + f.column,
                                             f.new_name + " IS DISTINCT FROM " + f.column) +
                 "), move the application to " + f.new_name + ", then drop " + f.column +
                 " (ALTER TABLE " + t + " DROP COLUMN " + f.column + ")."};
     }},
    {"renaming-table", Level::Error, false, "RENAME of an existing table",
     [](const StatementFacts& f) { return f.action == Action::RenameTable; },
     [](const StatementFacts& f) {
         /* RENAME TO keeps the schema; the view must name the table there, not by search_path */
         auto dot = f.table.name.rfind('.');
         std::string renamed = (dot == std::string::npos ? "" : f.table.name.substr(0, dot + 1)) +
                               f.new_name;
         return Explanation{
             head("renaming-table", "RENAME TO " + f.new_name + " on " + on_table(f)),
             "Application code that uses " + f.table.name + " fails as soon as this commits.",
             "Rename it and leave a view under the old name until the application has moved: "
             "ALTER TABLE " + f.table.name + " RENAME TO " + f.new_name + "; CREATE VIEW " +
                 f.table.name + " AS SELECT * FROM " + renamed + ";"};
     }},
    {"require-concurrent-index-creation", Level::Error, true,
     "CREATE INDEX without CONCURRENTLY on a large table",
     [](const StatementFacts& f) { return f.action == Action::CreateIndex && !f.concurrently; },
     [](const StatementFacts& f) {
         const std::string& t = f.table.name;
         return Explanation{
             head("require-concurrent-index-creation",
                  "CREATE INDEX without CONCURRENTLY on " + on_table(f)),
             lock_detail("CREATE INDEX", LockMode::Share, t, "while it builds the index"),
             f.table.partitioned
                 /* CREATE INDEX CONCURRENTLY cannot build on a partitioned table */
                 ? "Create the index on the parent only, build it on each partition without "
                   "blocking writes, then attach: CREATE INDEX " + or_default(f.index, "<index>") +
                       " ON ONLY " + t + " (" + join(f.columns) +
                       "); then for each partition: CREATE INDEX CONCURRENTLY <partition index> "
                       "ON <partition> (" + join(f.columns) + "); ALTER INDEX " +
                       or_default(f.index, "<index>") + " ATTACH PARTITION <partition index>;"
                 : "Build it without blocking writes, in a migration step of its own: CREATE "
                   "INDEX CONCURRENTLY " + or_default(f.index, "") + (f.index.empty() ? "" : " ") +
                       "ON " + t + " (" + join(f.columns) + ");"};
     }},
    {"require-concurrent-index-deletion", Level::Error, true,
     "DROP INDEX without CONCURRENTLY on a large table",
     [](const StatementFacts& f) { return f.action == Action::DropIndex && !f.concurrently; },
     [](const StatementFacts& f) {
         return Explanation{
             head("require-concurrent-index-deletion",
                  "DROP INDEX " + f.index + " without CONCURRENTLY on " + on_table(f)),
             lock_detail("DROP INDEX", LockMode::AccessExclusive, f.table.name,
                         "and waits behind every query using the table"),
             "DROP INDEX CONCURRENTLY " + f.index + ";"};
     }},
    {"require-concurrent-reindex", Level::Error, true,
     "REINDEX without CONCURRENTLY on a large table",
     [](const StatementFacts& f) { return f.action == Action::Reindex && !f.concurrently; },
     [](const StatementFacts& f) {
         std::string kind = f.index.empty() ? "TABLE " : "INDEX ";
         std::string name = f.index.empty() ? f.table.name : f.index;
         std::string target = kind + name;
         return Explanation{
             head("require-concurrent-reindex", "REINDEX " + target + " without CONCURRENTLY on " +
                                                     on_table(f)),
             lock_detail("REINDEX", LockMode::Share, f.table.name,
                         "and locks the rebuilt indexes against every query using them"),
             "REINDEX " + kind + "CONCURRENTLY " + name + ";"};
     }},
    {"set-tablespace", Level::Error, true, "ALTER TABLE ... SET TABLESPACE copies a large table",
     [](const StatementFacts& f) { return f.action == Action::SetTablespace; },
     [](const StatementFacts& f) {
         return Explanation{
             head("set-tablespace", "SET TABLESPACE copies " + on_table(f)),
             lock_detail("SET TABLESPACE", LockMode::AccessExclusive, f.table.name,
                         "while it copies every page"),
             "Move it online with pg_repack --tablespace, or in a maintenance window with "
             "-- safe_migrate:allow set-tablespace <reason>"};
     }},
    {"setting-not-null-field", Level::Error, true,
     "SET NOT NULL on a large table without a validated CHECK that proves it",
     [](const StatementFacts& f) { return f.action == Action::SetNotNull && !f.not_null_proven; },
     [](const StatementFacts& f) {
         return Explanation{
             head("setting-not-null-field", "SET NOT NULL on column " + f.column + " of " +
                                                on_table(f)),
             lock_detail("SET NOT NULL", LockMode::AccessExclusive, f.table.name,
                         "while it scans every row"),
             "Prove it first without blocking, then set it without a scan: " +
                 not_null_sequence(f, f.column)};
     }},
    {"table-rewrite", Level::Error, true, "any other rewrite of a large table",
     [](const StatementFacts& f) { return f.action == Action::TableRewrite && !f.type_change; },
     [](const StatementFacts& f) {
         std::string why;
         std::string hint;
         if (f.rewrite_reasons & rewrite_reason::kDefaultValue) {
             why = "to fill a new column's volatile default (or identity / serial values)";
             std::string col = or_default(f.column, "<column>");
             hint = "Add the column without a default, set the default afterwards "
                    "(ALTER TABLE " + f.table.name + " ALTER COLUMN " + col +
                    " SET DEFAULT ...), "
                    "and fill the existing rows in batches: " +
                    backfill_steps(f.table.name, col + " = <value>", col + " IS NULL");
         } else if (f.rewrite_reasons & rewrite_reason::kPersistence) {
             why = "to change it between LOGGED and UNLOGGED";
             hint = "There is no online way to change persistence: copy into a new table in "
                    "batches and swap, or do it in a maintenance window with "
                    "-- safe_migrate:allow table-rewrite <reason>";
         } else if (f.rewrite_reasons & rewrite_reason::kAccessMethod) {
             why = "to change its access method";
             hint = "Copy into a new table in batches and swap, or do it in a maintenance "
                    "window with -- safe_migrate:allow table-rewrite <reason>";
         } else {
             why = "";
             hint = "Make the change in steps that need no rewrite: a new column filled in "
                    "batches (" +
                    backfill_steps(f.table.name, "<new column> = <value>", "<new column> IS NULL") +
                    "), then swap.";
         }
         return Explanation{
             head("table-rewrite", "statement rewrites " + on_table(f)),
             lock_detail("The rewrite", LockMode::AccessExclusive, f.table.name,
                         "while it copies every row" + (why.empty() ? "" : " " + why)),
             hint};
     }},
    {"validate-in-locking-transaction", Level::Error, true,
     "VALIDATE CONSTRAINT in a transaction that already holds ACCESS EXCLUSIVE on the table",
     [](const StatementFacts& f) {
         return f.action == Action::ValidateConstraint && f.holds_exclusive_lock;
     },
     [](const StatementFacts& f) {
         std::string c = or_default(f.constraint, "<constraint>");
         return Explanation{
             head("validate-in-locking-transaction",
                  "VALIDATE CONSTRAINT " + c + " on " + on_table(f) +
                      " in a transaction that already holds an ACCESS EXCLUSIVE lock on it"),
             "VALIDATE scans every row.  It takes only a SHARE UPDATE EXCLUSIVE lock itself, but an "
             "earlier statement of this transaction (such as ADD CONSTRAINT ... NOT VALID) holds an "
             "ACCESS EXCLUSIVE lock until the end: " +
                 std::string(lock_blocks(LockMode::AccessExclusive)) + ".",
             "Commit the NOT VALID constraint first, in a migration of its own, then validate it "
             "in the next: ALTER TABLE " + f.table.name + " VALIDATE CONSTRAINT " + c + ";"};
     }},
    {"vacuum-full", Level::Error, true, "VACUUM FULL rewrites a large table",
     [](const StatementFacts& f) { return f.action == Action::VacuumFull; },
     [](const StatementFacts& f) {
         return Explanation{
             head("vacuum-full", "VACUUM FULL rewrites " + on_table(f)),
             lock_detail("VACUUM FULL", LockMode::AccessExclusive, f.table.name,
                         "while it copies every row and rebuilds every index"),
             "Use plain VACUUM, which blocks neither reads nor writes; to give the space back "
             "online, use pg_repack or pg_squeeze."};
     }},
};

const boost::container::flat_map<std::string_view, const Rule*>& registry()
{
    static const auto map = [] {
        boost::container::flat_map<std::string_view, const Rule*> m;
        for (const Rule& r : kRules)
            m.emplace(r.name, &r);
        return m;
    }();
    return map;
}

std::string trim(std::string_view s)
{
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b])))
        b++;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])))
        e--;
    return std::string(s.substr(b, e - b));
}

}  // namespace

const std::vector<RuleInfo>& rules()
{
    static const std::vector<RuleInfo> list = [] {
        std::vector<RuleInfo> v;
        for (const auto& [name, rule] : registry())
            v.push_back({name, rule->default_level, rule->size_dependent, rule->summary});
        return v;
    }();
    return list;
}

bool is_rule(std::string_view name) { return registry().count(name) > 0; }

Level RuleLevels::level_of(std::string_view rule, Level default_level) const
{
    for (auto it = overrides.rbegin(); it != overrides.rend(); ++it)
        if (it->first == rule)
            return it->second;
    return default_level;
}

RuleLevels parse_rule_levels(std::string_view spec)
{
    RuleLevels levels;
    size_t pos = 0;
    while (pos <= spec.size()) {
        size_t comma = spec.find(',', pos);
        std::string item = trim(spec.substr(pos, comma == std::string_view::npos ? std::string_view::npos
                                                                                 : comma - pos));
        pos = comma == std::string_view::npos ? spec.size() + 1 : comma + 1;
        if (item.empty())
            continue;
        size_t eq = item.find('=');
        if (eq == std::string::npos)
            throw ScriptError("\"" + item + "\" is not of the form rule=level");
        std::string name = trim(item.substr(0, eq));
        std::string level = trim(item.substr(eq + 1));
        if (!is_rule(name))
            throw ScriptError("unknown rule \"" + name + "\"");
        Level l;
        if (level == "off")
            l = Level::Off;
        else if (level == "warn")
            l = Level::Warn;
        else if (level == "error")
            l = Level::Error;
        else
            throw ScriptError("unknown level \"" + level + "\" for rule \"" + name +
                              "\" (off, warn or error)");
        levels.overrides.emplace_back(name, l);
    }
    return levels;
}

bool is_large(const TableFacts& table, const Thresholds& t)
{
    return table.rows >= t.large_table_rows || table.bytes >= t.large_table_bytes;
}

std::string_view lock_name(LockMode mode)
{
    switch (mode) {
        case LockMode::None: return "no";
        case LockMode::AccessShare: return "ACCESS SHARE";
        case LockMode::RowShare: return "ROW SHARE";
        case LockMode::RowExclusive: return "ROW EXCLUSIVE";
        case LockMode::ShareUpdateExclusive: return "SHARE UPDATE EXCLUSIVE";
        case LockMode::Share: return "SHARE";
        case LockMode::ShareRowExclusive: return "SHARE ROW EXCLUSIVE";
        case LockMode::Exclusive: return "EXCLUSIVE";
        case LockMode::AccessExclusive: return "ACCESS EXCLUSIVE";
    }
    return "unknown";
}

std::string_view lock_blocks(LockMode mode)
{
    switch (mode) {
        case LockMode::None:
        case LockMode::AccessShare:
        case LockMode::RowShare:
        case LockMode::RowExclusive:
            return "it blocks only statements that lock the whole table";
        case LockMode::ShareUpdateExclusive:
            return "it blocks other schema changes and VACUUM, not reads or writes";
        case LockMode::Share:
        case LockMode::ShareRowExclusive:
            return "INSERT, UPDATE and DELETE on the table wait until it is done; reads go on";
        case LockMode::Exclusive:
            return "everything but plain reads waits until it is done";
        case LockMode::AccessExclusive:
            return "every query on the table, reads included, waits until the transaction ends";
    }
    return "";
}

std::string format_bytes(std::int64_t bytes)
{
    const char* units[] = {"bytes", "kB", "MB", "GB", "TB"};
    double v = static_cast<double>(bytes < 0 ? 0 : bytes);
    int u = 0;
    while (v >= 1024 * 10 && u < 4) {
        v /= 1024;
        u++;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.0f %s", std::floor(v), units[u]);
    return buf;
}

std::string format_rows(double rows)
{
    char buf[64];
    if (rows < 0)
        rows = 0;
    if (rows >= 1e9)
        std::snprintf(buf, sizeof buf, "%.1fG", rows / 1e9);
    else if (rows >= 1e6)
        std::snprintf(buf, sizeof buf, "%.1fM", rows / 1e6);
    else if (rows >= 1e4)
        std::snprintf(buf, sizeof buf, "%.0fk", rows / 1e3);
    else
        std::snprintf(buf, sizeof buf, "%.0f", rows);
    return buf;
}

std::vector<Verdict> evaluate(const StatementFacts& facts, const Thresholds& thresholds,
                              const RuleLevels& levels)
{
    std::vector<Verdict> out;
    if (facts.table.created_in_transaction || facts.table.temporary)
        return out; /* nobody else can see the table */
    bool large = is_large(facts.table, thresholds);
    /* "more than large_table_rows" rows changed (threshold 0: any row) */
    if (facts.action == Action::LargeDml && !(facts.rows_affected > thresholds.large_table_rows))
        return out;
    for (const Rule& rule : kRules) {
        if (rule.size_dependent && !large)
            continue;
        if (!rule.applies(facts))
            continue;
        Level level = levels.level_of(rule.name, rule.default_level);
        if (level == Level::Off)
            continue;
        Explanation e = rule.explain(facts);
        out.push_back({std::string(rule.name), level, std::move(e.message), std::move(e.detail),
                       std::move(e.hint)});
    }
    return out;
}

}  // namespace safe_migrate::core
