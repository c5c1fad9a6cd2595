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
    std::string rows = format_rows(t.rows);
    return rows + (rows == "1" ? " row, " : " rows, ") + format_bytes(t.bytes);
}

std::string on_table(const StatementFacts& f)
{
    return (f.table.matview ? "materialized view " : "table ") + f.table.name + " (" +
           size_of(f.table) + ")";
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
    /* 18: a NOT NULL constraint of its own can be added NOT VALID (new rows
     * are checked at once) and validated under SHARE UPDATE EXCLUSIVE */
    if (f.server_version >= 180000)
        return "ALTER TABLE " + t + " ADD CONSTRAINT " + c + " NOT NULL " + column +
               " NOT VALID; ALTER TABLE " + t + " VALIDATE CONSTRAINT " + c + ";";
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

/* The same for a batched delete (migrate_delete); an empty condition:
 * every row (NULL). */
std::string delete_steps(const std::string& table, const std::string& where_clause)
{
    return "SELECT migrate_delete(" + sql_text(table, false) + ", " +
           (where_clause.empty() ? std::string("NULL") : sql_text(where_clause, false)) +
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

/* Does a hint tell the user to change a column of table t by ALTER TABLE? */
bool names_column_step(const std::string& hint, const std::string& t)
{
    for (const char* step : {" ADD COLUMN", " DROP COLUMN", " RENAME COLUMN"})
        if (hint.find("ALTER TABLE " + t + step) != std::string::npos)
            return true;
    return false;
}

/* A typed table takes no column change of its own (PostgreSQL: "cannot add
 * column to typed table"): the steps of a hint are made on the type, or on
 * the table once it is detached from the type. */
std::string typed_table_note(const StatementFacts& f)
{
    std::string t = f.table.name;
    return t + " is a typed table of " + f.typed_of + ": make the column steps on the type (ALTER TYPE " +
           f.typed_of + " ADD / DROP / RENAME ATTRIBUTE ... CASCADE), or detach the table first (ALTER TABLE " +
           t + " NOT OF).";
}

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
         /* ATTACH PARTITION gives the table the parent's key */
         if (!f.parent.empty())
             return Explanation{
                 head("adding-foreign-key-constraint",
                      f.via + " checks foreign key " + c + " on " + on_table(f)),
                 "PostgreSQL gives " + t + " every foreign key of " + f.parent +
                     " and, unless " + t + " has an equivalent validated key of its own, checks every "
                     "row while it holds an ACCESS EXCLUSIVE lock on " + t + " (every query on it, reads "
                     "included, waits) and a SHARE ROW EXCLUSIVE lock on " +
                     or_default(f.referenced_table, "the referenced table") + " (writes to it wait).",
                 [&] {
                     /* a partitioned table: on each partition (15-17 add no
                      * NOT VALID key to a partitioned table) */
                     std::string on = f.table.partitioned ? "<partition>" : t;
                     std::string k = f.table.partitioned ? "<partition>_" + bare(c) : derived(bare(t) + "_" + bare(c));
                     return "Give " + t + " the key first without checking, validate it without blocking, "
                            "then attach: PostgreSQL uses the validated key instead of checking the rows: " +
                            (f.table.partitioned ? "for each partition of " + t + " that has none: " : "") +
                            "ALTER TABLE " + on + " ADD CONSTRAINT " + k + " " +
                            or_default(f.expression, "FOREIGN KEY (...) REFERENCES ...") +
                            " NOT VALID; ALTER TABLE " + on + " VALIDATE CONSTRAINT " + k + "; " + f.via + " ...;";
                 }()};
         /* a type change of the referenced column adds the key again */
         if (!f.via.empty())
             return Explanation{
                 head("adding-foreign-key-constraint",
                      f.via + " checks foreign key " + c + " of " + on_table(f) + " again"),
                 "PostgreSQL adds again every foreign key that references a column whose type "
                 "changes, and unless the new type compares values as the old one did, it checks "
                 "every row of " + t + " while holding an ACCESS EXCLUSIVE lock on it: every query "
                 "on " + t + ", reads included, waits until the transaction ends.",
                 "Take the key off for the change and add it back without checking, then validate "
                 "it without blocking: ALTER TABLE " + t + " DROP CONSTRAINT " + c + "; " + f.via +
                     "; ALTER TABLE " + t + " ADD CONSTRAINT " + c + " " +
                     or_default(f.expression, "FOREIGN KEY (...) REFERENCES ...") +
                     " NOT VALID; ALTER TABLE " + t + " VALIDATE CONSTRAINT " + c +
                     "; Or change the type of the referencing column first, in the same way."};
         /* 18 adds a NOT VALID foreign key to a partitioned table too */
         if (f.table.partitioned && f.server_version < 180000)
             return Explanation{
                 head("adding-foreign-key-constraint",
                      "FOREIGN KEY without NOT VALID on partitioned " + on_table(f)),
                 lock_detail("Adding it", LockMode::ShareRowExclusive, t + " and " +
                                                                           or_default(f.referenced_table,
                                                                                      "the referenced table"),
                             "while every row of its partitions is checked"),
                 "PostgreSQL 15 cannot add a NOT VALID foreign key to a partitioned table: add it to "
                 "each partition NOT VALID and validate it there (ALTER TABLE <partition> ADD "
                 "CONSTRAINT " + c + " FOREIGN KEY (" + join(f.columns) + ") REFERENCES " +
                     or_default(f.referenced_table, "<table>") +
                     " NOT VALID; ALTER TABLE <partition> VALIDATE CONSTRAINT " + c +
                     ";), then add it to " + t +
                     ": PostgreSQL attaches the partitions' validated keys without checking a row."};
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
    {"attach-partition-scan", Level::Error, true,
     "ATTACH PARTITION that scans a large table because no validated CHECK proves the bound",
     [](const StatementFacts& f) { return f.action == Action::AttachPartition && !f.bound_proven; },
     [](const StatementFacts& f) {
         const std::string& t = f.table.name;
         if (f.default_partition) {
             /* ATTACH PARTITION, or CREATE TABLE ... PARTITION OF (via) */
             std::string statement =
                 f.via.empty() ? "ATTACH PARTITION " + or_default(f.partition, "<partition>") : f.via;
             std::string verb = f.via.empty() ? "ATTACH PARTITION" : "CREATE TABLE ... PARTITION OF";
             return Explanation{
                 head("attach-partition-scan",
                      statement + " scans the default partition " + on_table(f)),
                 lock_detail(verb, LockMode::AccessExclusive, t,
                             "while it checks that no row of the default partition belongs to the new one"),
                 "Prove it first without blocking: ALTER TABLE " + t + " ADD CONSTRAINT " +
                     derived(bare(t) + "_bound") + " CHECK (NOT (" +
                     or_default(f.expression, "<the new partition's bound>") + ")) NOT VALID; ALTER TABLE " +
                     t + " VALIDATE CONSTRAINT " + derived(bare(t) + "_bound") + "; then " + verb +
                     ", which no longer scans " + t + " (a default partition cannot be detached "
                     "CONCURRENTLY, and attaching it back scans it too)."};
         }
         std::string c = derived(bare(t) + "_bound");
         return Explanation{
             head("attach-partition-scan", "ATTACH PARTITION scans " + on_table(f)),
             lock_detail("ATTACH PARTITION", LockMode::AccessExclusive, t,
                         "while it checks every row against the partition bound"),
             "Prove the bound first without blocking, then attach without a scan: ALTER TABLE " + t +
                 " ADD CONSTRAINT " + c + " CHECK (" +
                 or_default(f.expression, "<the partition bound as a condition>") +
                 ") NOT VALID; ALTER TABLE " + t + " VALIDATE CONSTRAINT " + c + "; ALTER TABLE " +
                 or_default(f.parent, "<parent>") + " ATTACH PARTITION " + t + " ...; ALTER TABLE " + t +
                 " DROP CONSTRAINT " + c + ";"};
     }},
    {"ban-alter-domain-with-add-constraint", Level::Error, true,
     "ALTER DOMAIN ... ADD CONSTRAINT (without NOT VALID), VALIDATE CONSTRAINT or SET NOT NULL "
     "checking a large table's column",
     [](const StatementFacts& f) { return f.action == Action::DomainConstraint && !f.not_valid; },
     [](const StatementFacts& f) {
         const std::string& d = or_default(f.domain, "<domain>");
         std::string cmd = or_default(f.domain_command, "ADD CONSTRAINT");
         return Explanation{
             head("ban-alter-domain-with-add-constraint",
                  "ALTER DOMAIN " + d + " " + cmd + " checks column " + or_default(f.column, "<column>") +
                      " of " + on_table(f)),
             lock_detail("It", LockMode::Share, f.table.name,
                         "while it checks every value of the column"),
             cmd.rfind("ADD", 0) == 0
                 ? "Add it NOT VALID, which checks only new values at once: ALTER DOMAIN " + d + " " +
                       cmd + " ... NOT VALID; validating it later scans the same tables under SHARE "
                       "locks, so check existing rows with a table CHECK instead (ALTER TABLE " +
                       f.table.name + " ADD CONSTRAINT ... CHECK (...) NOT VALID, then VALIDATE "
                       "CONSTRAINT, which blocks neither reads nor writes)."
                 : "A domain's values cannot be checked without SHARE locks: check them with a table "
                   "CHECK (ALTER TABLE " + f.table.name + " ADD CONSTRAINT ... CHECK (...) NOT VALID, "
                   "then VALIDATE CONSTRAINT, which blocks neither reads nor writes), or run it in a "
                   "maintenance window with -- safe_migrate:allow ban-alter-domain-with-add-constraint <reason>"};
     }},
    {"ban-drop-column", Level::Error, false, "DROP COLUMN of an existing table",
     [](const StatementFacts& f) { return f.action == Action::DropColumn; },
     [](const StatementFacts& f) {
         return Explanation{
             head("ban-drop-column",
                  f.via.empty() ? "DROP COLUMN " + f.column + " on " + on_table(f)
                                : f.via + " drops column " + f.column + " of " + on_table(f)),
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
             head("ban-drop-table", f.via.empty() ? "DROP TABLE on " + on_table(f)
                                                  : f.via + " drops " + on_table(f)),
             "Application code that still uses " + f.table.name +
                 " fails as soon as this commits, and the data cannot be brought back.",
             "First deploy the application without any use of " + f.table.name +
                 " (and keep a backup), then drop it in a migration that says so: "
                 "-- safe_migrate:allow ban-drop-table <reason>"};
     }},
    {"ban-drop-database", Level::Error, false, "DROP DATABASE",
     [](const StatementFacts& f) { return f.action == Action::DropDatabase; },
     [](const StatementFacts& f) {
         return Explanation{
             head("ban-drop-database", "DROP DATABASE " + f.table.name + " (" +
                                           format_bytes(f.table.bytes) + ")"),
             "Every application connected to " + f.table.name +
                 " fails, and its data cannot be brought back.",
             "Drop a database by hand in a maintenance window (with a backup), or say why in "
             "the migration: -- safe_migrate:allow ban-drop-database <reason>"};
     }},
    {"ban-truncate", Level::Error, false, "TRUNCATE of an existing table",
     [](const StatementFacts& f) { return f.action == Action::Truncate && !f.cascade; },
     [](const StatementFacts& f) {
         return Explanation{
             head("ban-truncate", f.via.empty() ? "TRUNCATE on " + on_table(f)
                                                : f.via + " empties " + on_table(f)),
             lock_detail("TRUNCATE", LockMode::AccessExclusive, f.table.name,
                         "and deletes every row at once"),
             "Empty it in throttled batches instead (every row, each batch committed on its "
             "own): " + delete_steps(f.table.name, "") +
                 " Or say why in the migration: -- safe_migrate:allow ban-truncate <reason>"};
     }},
    {"ban-truncate-cascade", Level::Error, false,
     "TRUNCATE ... CASCADE that empties an existing table through a foreign key",
     [](const StatementFacts& f) { return f.action == Action::Truncate && f.cascade; },
     [](const StatementFacts& f) {
         std::string via = or_default(f.via, "TRUNCATE ... CASCADE");
         return Explanation{
             head("ban-truncate-cascade", via + " empties " + on_table(f) +
                                              " through a foreign key"),
             lock_detail("TRUNCATE", LockMode::AccessExclusive, f.table.name,
                         "and deletes every row at once, though the statement does not name it"),
             "Name every table you mean to empty (TRUNCATE without CASCADE fails while "
             "another table refers to it), delete the rows you mean in batches, or say why in "
             "the migration: -- safe_migrate:allow ban-truncate-cascade <reason>"};
     }},
    {"changing-column-type", Level::Error, true,
     "ALTER COLUMN TYPE that makes PostgreSQL rewrite a large table, or rebuild its indexes "
     "under ACCESS EXCLUSIVE without a rewrite",
     [](const StatementFacts& f) {
         return (f.action == Action::TableRewrite && f.type_change) ||
                f.action == Action::IndexRebuild;
     },
     [](const StatementFacts& f) {
         const std::string& t = f.table.name;
         std::string col = or_default(f.column, "<column>");
         if (f.action == Action::IndexRebuild && f.index.empty()) {
             /* the heap kept, but CHECK constraints on the column re-added
              * and re-checked with a full scan */
             bool several = f.constraint.find(", ") != std::string::npos;
             std::string c = or_default(f.constraint, "<constraint>");
             std::string type = or_default(f.column_type, "<new type>");
             return Explanation{
                 head("changing-column-type",
                      "ALTER COLUMN " + col + " TYPE re-checks " +
                          (several ? "constraints " : "constraint ") + c + " on every row of " +
                          on_table(f)),
                 lock_detail("The statement keeps the table's rows but", LockMode::AccessExclusive, t,
                             "while it scans every row to re-check the CHECK constraints on " + col),
                 several
                     ? "In one statement, drop each of them, change the type and add each back NOT "
                       "VALID (ALTER TABLE " + t + " DROP CONSTRAINT <name>, ..., ALTER COLUMN " + col +
                           " TYPE " + type +
                           ", ADD CONSTRAINT <name> <its definition> NOT VALID, ...;), then in a later "
                           "transaction validate each without blocking writes: ALTER TABLE " + t +
                           " VALIDATE CONSTRAINT <name>;"
                     : "In one statement, drop it, change the type and add it back NOT VALID, then "
                       "validate it in a later transaction without blocking writes: ALTER TABLE " + t +
                           " DROP CONSTRAINT " + c + ", ALTER COLUMN " + col + " TYPE " + type +
                           ", ADD CONSTRAINT " + c + " " + or_default(f.expression, "CHECK (<its check>)") +
                           " NOT VALID; ALTER TABLE " + t + " VALIDATE CONSTRAINT " + c + ";"};
         }
         if (f.action == Action::IndexRebuild)
             return Explanation{
                 head("changing-column-type",
                      "ALTER COLUMN " + col + " TYPE rebuilds index " + or_default(f.index, "<index>") +
                          " of table " + t + " (" + format_rows(f.table.rows) + " rows, " +
                          format_bytes(f.table.bytes) + " of indexes to rebuild)"),
                 lock_detail("The statement keeps the table's rows but", LockMode::AccessExclusive, t,
                             "while it rebuilds every index on " + col +
                                 " (the new type or collation sorts differently)"),
                 "Change the type in steps: ALTER TABLE " + t + " ADD COLUMN " + col + "_new " +
                     or_default(f.column_type, "<new type>") +
                     "; keep it in sync with a trigger; fill it with SELECT migrate_backfill(...) and "
                     "SELECT migrate_backfill_wait(...); build its indexes with CREATE INDEX CONCURRENTLY; "
                     "switch the application to " + col + "_new; drop " + col + " and rename."};
         return Explanation{
             head("changing-column-type",
                  "ALTER COLUMN " + col + " TYPE rewrites " + on_table(f)),
             lock_detail("The rewrite", LockMode::AccessExclusive, t,
                         "while it copies every row and rebuilds every index"),
             "Change the type in steps: ALTER TABLE " + t + " ADD COLUMN " + col + "_new " +
                 or_default(f.column_type, "<new type>") +
                 "; keep it in sync with a trigger; fill it in batches: " +
                 (f.expression.empty()
                      ? backfill_steps(t, col + "_new = " + col +
                                              (f.column_type.empty() ? "" : "::" + f.column_type),
                                       col + "_new IS NULL AND " + col + " IS NOT NULL")
                      : backfill_steps(t, col + "_new = (" + f.expression + ")",
                                       col + "_new IS NULL AND (" + f.expression + ") IS NOT NULL")) +
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
         if (f.exclusion)
             return Explanation{
                 head("disallowed-unique-constraint",
                      "EXCLUDE constraint building its index on " + on_table(f)),
                 lock_detail("Adding it", LockMode::AccessExclusive, t,
                             "while the index is built and every row checked"),
                 "PostgreSQL cannot make an exclusion constraint from an index built "
                 "CONCURRENTLY; when every operator is =, a unique index does the same job: "
                 "CREATE UNIQUE INDEX CONCURRENTLY " +
                     derived(bare(t) + "_" + join(f.columns, "_") + "_key") + " ON " + t + " (" +
                     join(f.columns) + "); otherwise add it in a maintenance window with "
                     "-- safe_migrate:allow disallowed-unique-constraint <reason>"};
         if (f.table.partitioned) {
             std::string c = or_default(f.constraint, derived(bare(t) + "_" + join(f.columns, "_") +
                                                                (f.primary_key ? "_pkey" : "_key")));
             std::string kind = f.primary_key ? "PRIMARY KEY" : "UNIQUE";
             return Explanation{
                 head("disallowed-unique-constraint",
                      kind + " building its index on partitioned " + on_table(f)),
                 lock_detail("Adding it", LockMode::AccessExclusive, t,
                             "while the index is built on every partition"),
                 std::string(f.primary_key && !f.not_null
                                 ? "Make the key columns NOT NULL without a scan first (CHECK ... NOT "
                                   "VALID, VALIDATE, SET NOT NULL); then g"
                                 : "G") +
                     "ive each partition the constraint from a unique index built without blocking "
                     "writes (CREATE UNIQUE INDEX CONCURRENTLY <partition index> ON <partition> (" +
                     join(f.columns) + "); ALTER TABLE <partition> ADD CONSTRAINT <partition index> " +
                     kind + " USING INDEX <partition index>;), " +
                     "then add it: ALTER TABLE " + t + " ADD CONSTRAINT " + c + " " + kind + " (" +
                     join(f.columns) + "); PostgreSQL attaches the partitions' constraints instead of "
                     "building their indexes."};
         }
         if (f.primary_key) {
             std::string c = or_default(f.constraint, derived(bare(t) + "_pkey"));
             std::string prove;
             if (!f.not_null)
                 for (const auto& col : f.columns) {
                     std::string n = derived(bare(t) + "_" + bare(col) + "_not_null");
                     prove += "ALTER TABLE " + t + " ADD CONSTRAINT " + n + " CHECK (" + col +
                              " IS NOT NULL) NOT VALID; ALTER TABLE " + t +
                              " VALIDATE CONSTRAINT " + n + "; ";
                 }
             return Explanation{
                 head("disallowed-unique-constraint",
                      "PRIMARY KEY building its index on " + on_table(f)),
                 lock_detail("Adding it", LockMode::AccessExclusive, t, "while the index is built"),
                 "Build the index first without blocking writes, " +
                     std::string(f.not_null ? "" : "prove its columns NOT NULL without a scan under the lock, ") +
                     "then attach it: CREATE UNIQUE INDEX CONCURRENTLY " + c + " ON " + t + " (" +
                     join(f.columns) + "); " + prove + "ALTER TABLE " + t + " ADD CONSTRAINT " + c +
                     " PRIMARY KEY USING INDEX " + c + ";"};
         }
         std::string c = or_default(f.constraint, derived(bare(t) + "_" + join(f.columns, "_") + "_key"));
         return Explanation{
             head("disallowed-unique-constraint",
                  "constraint building a unique index on " + on_table(f)),
             lock_detail("Adding it", LockMode::AccessExclusive, t, "while the index is built"),
             "Build the index first without blocking writes, then attach it: CREATE UNIQUE "
             "INDEX CONCURRENTLY " + c + " ON " + t + " (" + join(f.columns) +
                 "); ALTER TABLE " + t + " ADD CONSTRAINT " + c + " UNIQUE USING INDEX " + c + ";"};
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
         /* a statement reading many rows (a copy, CREATE TABLE AS, a
          * count) while an earlier one's lock is held */
         if (f.is_read) {
             std::string on = or_default(f.held_on, t);
             std::string_view mode = lock_name(f.held_lock);
             std::string article = mode.front() == 'A' || mode.front() == 'E' ? "an " : "a ";
             return Explanation{
                 head("large-unbatched-dml",
                      "a read of " + format_rows(f.rows_affected) + " rows of " + on_table(f) +
                          " in a transaction that holds " + article + std::string(mode) + " lock on " + on),
                 "An earlier statement of this migration's transaction took " + article +
                     std::string(mode) + " lock on " + on + ", held until the transaction ends, and the "
                     "statement keeps it held while it reads " + t + ": " +
                     std::string(lock_blocks(f.held_lock)) + ".",
                 "Read or copy the rows first, in a migration of its own (or in batches), and take "
                 "the lock in a later one; or commit the statement that takes the lock first."};
         }
         /* fewer rows, under a lock an earlier statement took */
         if (f.held_lock >= LockMode::Share) {
             std::string on = or_default(f.held_on, t);
             std::string_view mode = lock_name(f.held_lock);
             std::string article = mode.front() == 'A' || mode.front() == 'E' ? "an " : "a ";
             return Explanation{
                 head("large-unbatched-dml",
                      verb + " of " + format_rows(f.rows_affected) + " rows of " + on_table(f) +
                          " in a transaction that holds " + article + std::string(mode) + " lock on " + on),
                 "An earlier statement of this migration's transaction took " + article +
                     std::string(mode) + " lock on " + on + ", held until the transaction ends, and the " +
                     verb + " keeps it held while it changes its rows: " +
                     std::string(lock_blocks(f.held_lock)) + ".",
                 "Commit the statement that takes the lock first, in a migration of its own, then "
                 "change the rows in batches, each committed on its own: " +
                     (f.is_delete ? delete_steps(t, "<your WHERE condition>")
                                  : backfill_steps(t, "<your SET list>", "<your WHERE condition>"))};
         }
         return Explanation{
             head("large-unbatched-dml", verb + " of " + format_rows(f.rows_affected) +
                                             (f.rows_affected == 1 ? " row of " : " rows of ") +
                                             on_table(f) + " in one transaction"),
             "Every changed row stays locked against other writers until the migration "
             "commits, and the change reaches replicas as one burst of WAL.",
             f.is_delete
                 ? "Delete from " + t + " in batches, each committed on its own, with the "
                   "throttled batched delete: " + delete_steps(t, "<your WHERE condition>")
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
    {"renaming-enum-value", Level::Error, false,
     "ALTER TYPE ... RENAME VALUE of an enum a column of an existing table holds",
     [](const StatementFacts& f) { return f.action == Action::RenameEnumValue; },
     [](const StatementFacts& f) {
         const std::string& t = f.table.name;
         const std::string& type = or_default(f.column_type, "<type>");
         const std::string& old_label = or_default(f.expression, "'<old>'");
         const std::string& new_label = or_default(f.new_name, "'<new>'");
         /* a column holding the enum inside its values (an array, a
          * composite type: its type in via) is rewritten value by value */
         const std::string set = f.via.empty() ? f.column + " = " + new_label
                                               : f.column + " = <" + f.column + " with " + new_label +
                                                     " for " + old_label + ">";
         const std::string where = f.via.empty() ? f.column + " = " + old_label
                                                 : "<" + f.column + " holds " + old_label + ">";
         return Explanation{
             head("renaming-enum-value",
                  "RENAME VALUE " + old_label + " TO " + new_label + " of type " + type + " changes column " +
                      f.column + (f.via.empty() ? "" : " (" + f.via + ")") + " of " + on_table(f)),
             "Every row of " + t + " holding " + old_label + " reads back as " + new_label +
                 " as soon as this commits: application code that writes " + old_label +
                 " fails (invalid input value for enum " + type + "), and code that compares with it "
                 "finds nothing.",
             "Add the new value in a migration of its own (ALTER TYPE " + type + " ADD VALUE " + new_label +
                 ";), deploy the application accepting both, move the rows in batches (" +
                 backfill_steps(t, set, where) +
                 "), then stop writing " + old_label + " (PostgreSQL cannot drop an enum value: leave "
                 "it unused)."};
     }},
    {"renaming-table", Level::Error, false, "RENAME of an existing table",
     [](const StatementFacts& f) { return f.action == Action::RenameTable; },
     [](const StatementFacts& f) {
         if (!f.via.empty()) {
             /* moved to another schema, or its schema renamed: new_name is
              * the qualified name it will have */
             std::string old_schema;
             auto dot = f.table.name.rfind('.');
             if (dot != std::string::npos)
                 old_schema = f.table.name.substr(0, dot);
             bool schema_renamed = f.via.rfind("ALTER SCHEMA", 0) == 0;
             return Explanation{
                 head("renaming-table", f.via + " moves " + on_table(f) + " to " + f.new_name),
                 "Application code that uses " + f.table.name + " fails as soon as this commits.",
                 "Leave a view under the old name until the application has moved: " + f.via +
                     "; " + (schema_renamed && !old_schema.empty() ? "CREATE SCHEMA " + old_schema + "; " : "") +
                     "CREATE VIEW " + f.table.name + " AS SELECT * FROM " + f.new_name + ";"};
         }
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
         /* ATTACH PARTITION gives the table the parent's index */
         if (!f.parent.empty())
             return Explanation{
                 head("require-concurrent-index-creation",
                      f.via + " builds index " + or_default(f.index, "<index>") + " of " + f.parent +
                          " on " + on_table(f)),
                 "PostgreSQL gives " + t + " every index of " + f.parent + " and, unless " + t +
                     " has an equivalent valid index of its own, builds it while it holds an ACCESS "
                     "EXCLUSIVE lock on " + t + ": every query on " + t + ", reads included, waits "
                     "until the transaction ends.",
                 "Build the index on " + t + " first without blocking writes, in a migration step of "
                 "its own; ATTACH PARTITION then attaches it instead of building one: " +
                     or_default(f.expression, "CREATE INDEX CONCURRENTLY ON " + t + " (...)") + "; " + f.via +
                     " ...;"};
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
                 : "Build it without blocking writes, in a migration step of its own: " +
                       or_default(f.expression, "CREATE INDEX CONCURRENTLY " + or_default(f.index, "") +
                                                    (f.index.empty() ? "" : " ") + "ON " + t + " (" +
                                                    join(f.columns) + ");")};
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
    {"require-concurrent-partition-detach", Level::Error, true,
     "DETACH PARTITION without CONCURRENTLY on a large partitioned table",
     [](const StatementFacts& f) { return f.action == Action::DetachPartition && !f.concurrently; },
     [](const StatementFacts& f) {
         const std::string& t = f.table.name;
         std::string part = or_default(f.partition, "<partition>");
         return Explanation{
             head("require-concurrent-partition-detach",
                  "DETACH PARTITION " + part + " without CONCURRENTLY on " + on_table(f)),
             lock_detail("DETACH PARTITION", LockMode::AccessExclusive, t,
                         "and waits behind every query using it"),
             "Detach it in two phases that only take SHARE UPDATE EXCLUSIVE on " + t +
                 ", in a migration step of its own (it cannot run in a transaction block): ALTER TABLE " +
                 t + " DETACH PARTITION " + part + " CONCURRENTLY;"};
     }},
    {"require-concurrent-refresh", Level::Error, true,
     "REFRESH MATERIALIZED VIEW without CONCURRENTLY on a large materialized view",
     [](const StatementFacts& f) { return f.action == Action::RefreshMatview && !f.concurrently; },
     [](const StatementFacts& f) {
         const std::string& v = f.table.name;
         std::string refresh = "REFRESH MATERIALIZED VIEW CONCURRENTLY " + v + ";";
         return Explanation{
             head("require-concurrent-refresh",
                  "REFRESH MATERIALIZED VIEW without CONCURRENTLY on materialized view " + v + " (" +
                      format_rows(f.table.rows) + " rows, " + format_bytes(f.table.bytes) + ")"),
             lock_detail("REFRESH MATERIALIZED VIEW", LockMode::AccessExclusive, v,
                         "while it runs the view's query and replaces every row"),
             f.index.empty()
                 ? "Give it a unique index (on columns that identify a row), in a migration step of its "
                   "own: CREATE UNIQUE INDEX CONCURRENTLY " + derived(bare(v) + "_key") + " ON " + v +
                       " (<columns>); then refresh it without blocking reads: " + refresh
                 : "Refresh it without blocking reads (it uses the unique index " + f.index + "): " +
                       refresh};
     }},
    {"require-concurrent-reindex", Level::Error, true,
     "REINDEX without CONCURRENTLY on a large table",
     [](const StatementFacts& f) { return f.action == Action::Reindex && !f.concurrently; },
     [](const StatementFacts& f) {
         if (!f.sweep.empty()) {
             bool system = f.sweep.rfind("SYSTEM", 0) == 0;
             return Explanation{
                 head("require-concurrent-reindex", "REINDEX " + f.sweep +
                                                         " rebuilds without CONCURRENTLY the indexes of " +
                                                         on_table(f)),
                 lock_detail("REINDEX", LockMode::Share, f.table.name,
                             "and locks the rebuilt indexes against every query using them"),
                 system ? "System catalogs cannot be reindexed CONCURRENTLY: run it in a maintenance "
                          "window with -- safe_migrate:allow require-concurrent-reindex <reason>"
                        : "REINDEX " + f.sweep.substr(0, f.sweep.find(' ')) + " CONCURRENTLY" +
                              f.sweep.substr(f.sweep.find(' ')) + "; (or REINDEX TABLE CONCURRENTLY " +
                              f.table.name + ";)"};
         }
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
         if (!f.index.empty())
             /* an index: every query on its table waits (the planner
              * opens each index of the table); REINDEX moves it online */
             return Explanation{
                 head("set-tablespace", "SET TABLESPACE copies index " + f.index + " (" +
                                            format_bytes(f.table.bytes) + ") of table " + f.table.name +
                                            " (" + format_rows(f.table.rows) +
                                            (format_rows(f.table.rows) == "1" ? " row)" : " rows)")),
                 "SET TABLESPACE takes an ACCESS EXCLUSIVE lock on index " + f.index +
                     " while it copies every page: every query on " + f.table.name +
                     ", reads included, waits until the transaction ends (each query opens "
                     "every index of its table).",
                 "Move it without blocking: REINDEX (TABLESPACE " + or_default(f.new_name, "<tablespace>") +
                     ") INDEX CONCURRENTLY " + f.index + ";"};
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
             head("setting-not-null-field",
                  (f.using_index ? "ADD PRIMARY KEY USING INDEX sets NOT NULL on column "
                                 : "SET NOT NULL on column ") +
                      f.column + " of " + on_table(f)),
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
             const std::string& t = f.table.name;
             std::string col = or_default(f.column, "<column>");
             std::string type = or_default(f.column_type, "<type>");
             std::string seq = derived(bare(t) + "_" + bare(col) + "_seq");
             std::string nextval = "nextval('" + seq + "')";
             if (f.added_kind == "identity") {
                 why = "to give each row an identity value";
                 hint = "Add it as a plain column with a sequence, fill it in batches, then make "
                        "it an identity (no rewrite on a NOT NULL column): ALTER TABLE " + t +
                        " ADD COLUMN " + col + " " + type + "; CREATE SEQUENCE " + seq +
                        "; ALTER TABLE " + t + " ALTER COLUMN " + col + " SET DEFAULT " + nextval +
                        "; " + backfill_steps(t, col + " = " + nextval, col + " IS NULL") +
                        " then " + not_null_sequence(f, col) + " ALTER TABLE " + t +
                        " ALTER COLUMN " + col + " DROP DEFAULT; ALTER TABLE " + t + " ALTER COLUMN " + col +
                        " ADD GENERATED BY DEFAULT AS IDENTITY (START WITH <max(" + col +
                        ") + 1>); DROP SEQUENCE " + seq + ";";
             } else if (f.added_kind == "serial") {
                 why = "to give each row a value of the new sequence";
                 hint = "Add it as a plain column, give it the sequence as its default "
                        "afterwards, and fill the existing rows in batches: ALTER TABLE " + t +
                        " ADD COLUMN " + col + " " + type + "; CREATE SEQUENCE " + seq +
                        " OWNED BY " + t + "." + col + "; ALTER TABLE " + t + " ALTER COLUMN " +
                        col + " SET DEFAULT " + nextval + "; " +
                        backfill_steps(t, col + " = " + nextval, col + " IS NULL") + " then " +
                        not_null_sequence(f, col);
             } else if (f.added_kind == "generated") {
                 why = "to compute the stored generated column";
                 hint = std::string(f.server_version >= 180000
                                        ? "Add it as a VIRTUAL generated column (PostgreSQL 18 "
                                          "adds one without a rewrite: its values are computed "
                                          "when read), or, to keep it stored, "
                                        : "PostgreSQL cannot add a stored generated column, or "
                                          "turn a column into one, without a rewrite: ") +
                        "add a plain column kept current by a "
                        "trigger and fill it in batches (ALTER TABLE " + t + " ADD COLUMN " + col +
                        " " + type + "; " +
                        backfill_steps(t, col + " = <its expression>", col + " IS NULL") +
                        "), or add it in a maintenance window with -- safe_migrate:allow "
                        "table-rewrite <reason>";
             } else if (f.added_kind == "domain") {
                 why = "to check each value against the constraints of domain " + type;
                 hint = "Add the column with the domain's base type (" +
                        or_default(f.expression, "<base type>") +
                        ") and its check as a table constraint added NOT VALID and validated "
                        "later: ALTER TABLE " + t + " ADD COLUMN " + col + " " +
                        or_default(f.expression, "<base type>") + "; ALTER TABLE " + t +
                        " ADD CONSTRAINT " + derived(bare(t) + "_" + bare(col) + "_check") +
                        " CHECK (<the domain's check on " + col + ">) NOT VALID; ALTER TABLE " + t +
                        " VALIDATE CONSTRAINT " + derived(bare(t) + "_" + bare(col) + "_check") +
                        ";";
             } else {
                 why = "to fill a new column's volatile default";
                 hint = "Add the column without a default, set the default afterwards "
                        "(ALTER TABLE " + t + " ADD COLUMN " + col + " " + type +
                        "; ALTER TABLE " + t + " ALTER COLUMN " + col +
                        " SET DEFAULT <the default>;), "
                        "and fill the existing rows in batches: " +
                        backfill_steps(t, col + " = <the default>", col + " IS NULL");
             }
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
             head("table-rewrite", ((f.rewrite_reasons & rewrite_reason::kDefaultValue) &&
                                            !f.column.empty()
                                        ? "ADD COLUMN " + f.column + " rewrites "
                                        : std::string("statement rewrites ")) +
                                       on_table(f)),
             lock_detail("The rewrite", LockMode::AccessExclusive, f.table.name,
                         "while it copies every row" + (why.empty() ? "" : " " + why)),
             hint};
     }},
    {"validate-in-locking-transaction", Level::Error, true,
     "VALIDATE CONSTRAINT in a transaction that already holds a lock blocking reads or writes "
     "(SHARE or stronger) on the table, or on the table a foreign key references",
     [](const StatementFacts& f) {
         return f.action == Action::ValidateConstraint &&
                (f.holds_exclusive_lock || f.held_lock >= LockMode::Share);
     },
     [](const StatementFacts& f) {
         std::string c = or_default(f.constraint, "<constraint>");
         if (!f.holds_exclusive_lock) {
             std::string on = or_default(f.held_on, f.table.name);
             std::string_view mode = lock_name(f.held_lock);
             std::string article = mode.front() == 'A' || mode.front() == 'E' ? "an " : "a ";
             return Explanation{
                 head("validate-in-locking-transaction",
                      "VALIDATE CONSTRAINT " + c + " on " + on_table(f) +
                          " in a transaction that already holds " + article + std::string(mode) +
                          " lock on " + on),
                 "VALIDATE scans every row of " + f.table.name +
                     ".  It takes only a SHARE UPDATE EXCLUSIVE lock itself, but an earlier "
                     "statement of this transaction (such as ADD CONSTRAINT ... NOT VALID) holds " +
                     article + std::string(mode) + " lock on " + on + " until the end: " +
                     std::string(lock_blocks(f.held_lock)) + ".",
                 "Commit the NOT VALID constraint first, in a migration of its own, then validate it "
                 "in the next: ALTER TABLE " + f.table.name + " VALIDATE CONSTRAINT " + c + ";"};
         }
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

namespace {

/* Calls found(rule, level) for every rule that fires, in order; stops when
 * it returns false. */
template <typename Found>
void for_each_firing(const StatementFacts& facts, const Thresholds& thresholds,
                     const RuleLevels& levels, Found found)
{
    if (facts.table.created_in_transaction || facts.table.temporary)
        return; /* nobody else can see the table */
    bool large = is_large(facts.table, thresholds);
    /* "more than large_table_rows" rows changed (threshold 0: any row); a
     * share of them while the transaction holds a lock blocking reads or
     * writes of a table */
    if (facts.action == Action::LargeDml &&
        !(facts.rows_affected > thresholds.large_table_rows *
                                    (facts.held_lock >= LockMode::Share && !facts.is_read ? kHeldLockDmlShare
                                                                                          : 1.0)))
        return;
    /* reading rows only matters under a lock an earlier statement holds */
    if (facts.action == Action::LargeDml && facts.is_read && facts.held_lock < LockMode::Share)
        return;
    for (const Rule& rule : kRules) {
        if (rule.size_dependent && !large)
            continue;
        if (!rule.applies(facts))
            continue;
        Level level = levels.level_of(rule.name, rule.default_level);
        if (level == Level::Off)
            continue;
        if (!found(rule, level))
            return;
    }
}

}  // namespace

/* The rules' lock details describe a table (on_table names a materialized
 * view as one); for a materialized view what its locks block is told as it
 * is: nobody writes to it but REFRESH, so a lock that blocks writes blocks
 * its refreshes (and a plain REFRESH, queued behind it, holds every read of
 * it in turn). */
static void for_materialized_view(Explanation& e)
{
    auto replace_all = [](std::string& s, const std::string& from, const std::string& to) {
        for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
            s.replace(at, from.size(), to);
    };
    replace_all(e.hint, "without blocking writes", "without blocking its refreshes");
    for (std::string* s : {&e.message, &e.detail}) {
        replace_all(*s, "INSERT, UPDATE and DELETE on the table wait until it is done; reads go on",
                    "REFRESH MATERIALIZED VIEW of it waits until it is done (and a plain REFRESH "
                    "queued behind it makes every read wait too); reads go on");
        replace_all(*s, "on the table", "on the materialized view");
    }
}

std::vector<Verdict> evaluate(const StatementFacts& facts, const Thresholds& thresholds,
                              const RuleLevels& levels)
{
    std::vector<Verdict> out;
    for_each_firing(facts, thresholds, levels, [&](const Rule& rule, Level level) {
        Explanation e = rule.explain(facts);
        if (facts.table.matview)
            for_materialized_view(e);
        if (!facts.typed_of.empty() && names_column_step(e.hint, facts.table.name))
            e.hint += " " + typed_table_note(facts);
        out.push_back({std::string(rule.name), level, std::move(e.message), std::move(e.detail),
                       std::move(e.hint)});
        return true;
    });
    return out;
}

bool any_verdict(const StatementFacts& facts, const Thresholds& thresholds,
                 const RuleLevels& levels)
{
    bool any = false;
    for_each_firing(facts, thresholds, levels, [&](const Rule&, Level) {
        any = true;
        return false;
    });
    return any;
}

}  // namespace safe_migrate::core
