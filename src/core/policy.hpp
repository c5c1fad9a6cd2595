/*
 * policy.hpp — the safe-DDL rules, decided on plain facts.
 *
 * The glue (src/policy) reads facts off parse trees, catalogs and events;
 * this file knows nothing of PostgreSQL.  One rule is one entry of the
 * registry (rules()): its name, default level, whether it only matters for
 * large tables, when it applies, and how it explains itself (message,
 * detail with the lock and what it blocks, hint with the safe sequence in
 * the user's own names).
 */
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "error.hpp"

namespace safe_migrate::core {

/* What a rule does when it applies. */
enum class Level { Off, Warn, Error };

/* The global switch (safe_migrate.policy). */
enum class PolicyMode { Off, Warn, Enforce };

/* PostgreSQL's table lock modes, weakest first. */
enum class LockMode {
    None,
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive
};

/* large-unbatched-dml: the share of large_table_rows a migration
 * transaction may change while it holds a lock that blocks reads or writes
 * of a table (SHARE or stronger; an ALTER TABLE before the UPDATE): the
 * change keeps it held.  A tenth: 100,000 rows by default, about a second
 * of UPDATE on a 2-CPU machine. */
inline constexpr double kHeldLockDmlShare = 0.1;

/* What the statement does, as far as the rules care. */
enum class Action {
    Other,
    AddColumn,           /* ALTER TABLE ADD COLUMN */
    AddCheck,            /* ADD CONSTRAINT ... CHECK, or inline on ADD COLUMN */
    AddForeignKey,       /* ADD CONSTRAINT ... FOREIGN KEY / REFERENCES */
    AddUniqueOrPrimary,  /* ADD CONSTRAINT UNIQUE / PRIMARY KEY / EXCLUDE */
    SetNotNull,          /* ALTER COLUMN SET NOT NULL */
    DropColumn,
    DropTable,
    RenameColumn,
    RenameTable,
    CreateIndex,
    DropIndex,
    Reindex,
    SetTablespace,
    VacuumFull,
    Cluster,
    Truncate,
    TableRewrite,        /* PostgreSQL is about to rewrite the table (table_rewrite) */
    LargeDml,            /* an UPDATE/DELETE inside a migration touched many rows */
    ValidateConstraint,  /* ALTER TABLE ... VALIDATE CONSTRAINT */
    DomainConstraint,    /* ALTER DOMAIN ADD CONSTRAINT / VALIDATE / SET NOT NULL: checks a column using it */
    AttachPartition,     /* ALTER TABLE ... ATTACH PARTITION: the table scanned for the bound */
    DetachPartition,     /* ALTER TABLE ... DETACH PARTITION */
    IndexRebuild,        /* ALTER COLUMN TYPE that keeps the heap but rebuilds indexes */
    DropDatabase,        /* DROP DATABASE (table.name: the database) */
    RefreshMatview,      /* REFRESH MATERIALIZED VIEW (table: the view; index: a unique
                          * index CONCURRENTLY could use, if it has one) */
    RenameEnumValue      /* ALTER TYPE ... RENAME VALUE of an enum a column of the table uses
                          * (column, column_type: the type; expression / new_name: the
                          * old and new label as literals) */
};

/* Why PostgreSQL rewrites a table (bits of the table_rewrite event). */
namespace rewrite_reason {
constexpr int kPersistence = 0x01;
constexpr int kDefaultValue = 0x02;
constexpr int kColumnRewrite = 0x04;
constexpr int kAccessMethod = 0x08;
}  // namespace rewrite_reason

struct TableFacts {
    std::string name;            /* schema-qualified, as the user would write it */
    double rows = 0;             /* best estimate: statistics, or pages when stale */
    std::int64_t bytes = 0;      /* heap + indexes + toast */
    bool created_in_transaction = false;
    bool temporary = false;      /* a temporary table: no other session sees it */
    bool partitioned = false;    /* a partitioned table (rows/bytes: all partitions) */
    bool matview = false;        /* a materialized view: named so, and nobody writes to it but REFRESH */
};

struct StatementFacts {
    Action action = Action::Other;
    TableFacts table;            /* the table the statement works on */
    std::string column;          /* column added / changed / dropped / renamed */
    std::string column_type;     /* type of an added column, as written */
    std::string constraint;      /* constraint name if given */
    std::string index;           /* index name if given */
    std::string new_name;        /* RENAME ... TO */
    std::string referenced_table;/* FOREIGN KEY ... REFERENCES */
    std::string expression;      /* CHECK expression as written, or a rewriting type change's USING expression (as PostgreSQL prints it), if known */
    std::vector<std::string> columns; /* index / constraint / FK columns */
    /* PG_VERSION_NUM of the server the facts come from: hints name what that
     * version offers (18: NOT NULL constraints added NOT VALID, virtual
     * generated columns) */
    int server_version = 150000;
    bool not_null = false;       /* ADD COLUMN ... NOT NULL */
    bool has_default = false;    /* ADD COLUMN ... DEFAULT (or identity/generated) */
    bool not_valid = false;      /* constraint added NOT VALID */
    bool using_index = false;    /* ADD CONSTRAINT ... USING INDEX */
    bool concurrently = false;
    bool not_null_proven = false;/* SET NOT NULL backed by a validated CHECK (col IS NOT NULL) */
    bool fk_columns_indexed = true; /* an index leads with the FK's referencing columns */
    int rewrite_reasons = 0;     /* TableRewrite: rewrite_reason bits */
    bool type_change = false;    /* TableRewrite caused by ALTER COLUMN TYPE */
    double rows_affected = 0;    /* LargeDml */
    bool is_delete = false;      /* LargeDml: DELETE rather than UPDATE */
    bool is_read = false;        /* LargeDml: rows read, not changed (only under a held lock) */
    LockMode lock = LockMode::None; /* lock the statement takes on the table */
    bool holds_exclusive_lock = false; /* the transaction already holds ACCESS EXCLUSIVE on it */
    /* ValidateConstraint: the strongest lock that blocks reads or writes (SHARE or
     * stronger) the transaction already holds on the table or, for a foreign
     * key, on the referenced table; held_on names that table */
    LockMode held_lock = LockMode::None;
    std::string held_on;
    std::string domain;          /* DomainConstraint: the domain */
    std::string domain_command;  /* DomainConstraint: "ADD CONSTRAINT c", "VALIDATE CONSTRAINT c", "SET NOT NULL" */
    bool bound_proven = false;   /* AttachPartition: a validated CHECK implies the partition bound */
    bool default_partition = false; /* AttachPartition: the table scanned is the parent's default partition */
    std::string partition;       /* Attach/DetachPartition: the partition; table is the scanned one / the parent */
    std::string parent;          /* AttachPartition: the partitioned table */
    std::string sweep;           /* Reindex without a table: "SCHEMA p2", "DATABASE db", "SYSTEM db" */
    /* The statement reaches the table through another object, not by naming
     * it: its own words ("ALTER SCHEMA app RENAME TO old", "DROP SCHEMA",
     * "TRUNCATE public.parent"); empty when it names the table itself. */
    std::string via;
    bool cascade = false;        /* Truncate: reached through a foreign key (CASCADE) */
    /* TableRewrite by ADD COLUMN (column, column_type): what makes PostgreSQL
     * write every row: "identity", "serial", "generated", "domain" (a domain
     * with constraints; expression: its base type), "volatile default" */
    std::string added_kind;
    bool exclusion = false;      /* AddUniqueOrPrimary: EXCLUDE (no USING INDEX form exists) */
    bool primary_key = false;    /* AddUniqueOrPrimary: PRIMARY KEY; not_null: its columns
                                  * are NOT NULL already */
    /* reached by ALTER TYPE ... CASCADE: the table is a typed table of this
     * composite type (as written), whose columns only the type changes */
    std::string typed_of;
};

struct Thresholds {
    double large_table_rows = 1000000;
    std::int64_t large_table_bytes = 1024LL * 1024 * 1024;
};

/* A rule's decision on one statement. */
struct Verdict {
    std::string rule;
    Level level = Level::Off;    /* effective level (Off: does not apply) */
    std::string message;
    std::string detail;
    std::string hint;
};

struct RuleInfo {
    std::string_view name;
    Level default_level;
    bool size_dependent;
    std::string_view summary;
};

/* Every rule, for docs, tests and settings validation, sorted by name. */
const std::vector<RuleInfo>& rules();
bool is_rule(std::string_view name);

/* Per-rule levels: "rule=level, rule=level" (level: off | warn | error).
 * Throws ScriptError naming the bad entry. */
struct RuleLevels {
    std::vector<std::pair<std::string, Level>> overrides;
    Level level_of(std::string_view rule, Level default_level) const;
};
RuleLevels parse_rule_levels(std::string_view spec);

/* Is the table large by the thresholds? */
bool is_large(const TableFacts& table, const Thresholds& t);

/* Words for a lock: "ACCESS EXCLUSIVE", and what it blocks. */
std::string_view lock_name(LockMode mode);
std::string_view lock_blocks(LockMode mode);

/* Human size: "12 MB", "3 GB". */
std::string format_bytes(std::int64_t bytes);
std::string format_rows(double rows);

/*
 * All rules that apply to the statement, with their effective levels
 * (Off entries omitted).  Exemptions are facts: tables created in this
 * transaction, small tables for size-dependent rules, proven NOT NULL, ...
 */
std::vector<Verdict> evaluate(const StatementFacts& facts, const Thresholds& thresholds,
                              const RuleLevels& levels);

/* Would evaluate() return any verdict?  The same decision without writing
 * the messages (the policy's first look at a statement, as if its table
 * were huge, needs only this). */
bool any_verdict(const StatementFacts& facts, const Thresholds& thresholds,
                 const RuleLevels& levels);

}  // namespace safe_migrate::core
