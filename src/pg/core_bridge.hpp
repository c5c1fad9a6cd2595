/*
 * core_bridge.hpp — the pure C++ core seen from PostgreSQL code.
 *
 * Every function here is noexcept and never ereports: results are copied
 * into palloc'd memory of the current context (allocated without
 * ereport-on-OOM), failures come back as a message the caller ereports
 * with its own SQLSTATE.  So PostgreSQL-style code can call the core
 * without any C++ object being alive in its frames.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "nodes/nodes.h"
#include "nodes/parsenodes.h"
#include "lib/stringinfo.h"
}

namespace safe_migrate::pg {

struct PreparedScript {
    char *up;
    char *down;       /* NULL when the script has no "-- migrate:down" marker; a
                       * blank or comments-only down section ("nothing to undo")
                       * is an empty or comments-only string */
    char *checksum;   /* sha256 hex of the normalised script, as given */
    char *version;    /* the given version trimmed, or one derived from the checksum */
    bool up_wrapped;  /* the up section was wrapped in BEGIN; ... COMMIT; (now
                       * blanked out of `up`): it runs as one transaction */
    bool down_wrapped; /* likewise for the down section */
    bool dbmate_format;
    int up_first_line;
    int down_first_line;
    int n_allows;
    char **allow_rules;
    char **allow_reasons;
    bool online;      /* "-- safe_migrate:online": `up` is the expanded script
                       * (online.cpp), not the text as given */
};

/* Split sections, compute checksum, validate (trim) or derive the version,
 * and unwrap a section wrapped in its own BEGIN; ... COMMIT; (the pair is
 * replaced by blanks, so positions and line numbers stay).  version may be
 * NULL.  Returns NULL on success, else an error message.  Needs no
 * transaction (raw parsing only); a syntax error leaves the section as it
 * is, for the caller's own parse to report. */
const char *prepare_script(const char *script, const char *version, PreparedScript *out) noexcept;

/* Online execution (online.cpp): the up section rewritten into the careful
 * sequence; a copy of sql when it does not parse (the caller's parse
 * reports that).  NULL with *problem set when a statement would rewrite a
 * table and online execution cannot take it (refused before any step). */
char *expand_online(const char *sql, const char **problem) noexcept;
/* One token of SQL text: its code and where it starts and stops. */
struct Token {
    int code;
    size_t start;
    size_t stop;
};
/* The tokens of s[begin, end) by PostgreSQL's scanner (online.cpp), in
 * palloc'd *out; returns their number.  The text must scan without error
 * (it parsed). */
int scan_tokens(const char *s, size_t begin, size_t end, Token **out);
/* ALTER TABLE ... ALTER COLUMN ... TYPE online (online_type.cpp): the steps
 * appended to out (when not NULL), refused (*refusal says why), or left as
 * written (no rewrite, or it fails on its own). */
enum class TypeChangeOnline { NotOnline, Refused, Expanded };
TypeChangeOnline expand_type_change(const ::AlterTableStmt *at, ::StringInfoData *out, char **refusal);
/* The USING expression of ALTER COLUMN ... TYPE (def) on relid as
 * PostgreSQL prints it, every name outside pg_catalog qualified, for a
 * hint; NULL if it does not analyze (online_type.cpp). */
char *using_expression_text(Oid relid, const ::ColumnDef *def);
/* Whether the script last prepared is an online one: its VALIDATE
 * CONSTRAINT statements run in transactions of their own
 * (runner::classify_statement). */
extern bool classify_online;
/* safe_migrate.online: every migration of the session online (a script
 * wrapped in its own BEGIN; ... COMMIT; excepted: it asked for one
 * transaction) */
extern bool online_setting;
/* safe_migrate.online_latency_budget: the budget of online execution's jobs */
extern double online_latency_budget_ms;
void define_online_setting(void);
/* What online execution adds to a migrate_backfill or migrate_delete call
 * it writes for the table rel_literal (a quoted literal): its latency
 * budget, vacuum => false (the table's vacuum queued at the end of the
 * expansion, expand_online) and eager => true (the migration's next step
 * waits for the job: it starts at full duty, the budget still cuts it). */
const char *online_job_options(const char *rel_literal);
/* Is stmt (a top-level statement) one that online execution rewrites into
 * its careful sequence?  (The policy's HINT then says so.) */
bool online_handles(const ::Node *stmt);

/* A version as migrate_apply records it (trimmed), palloc'd in *out; returns
 * NULL or an error message. */
const char *normalize_version(const char *version, char **out) noexcept;

/* Statement classes are core::TxClass values as int. */
struct SegmentPlan {
    int n_segments;
    int *first;
    int *count;
    int *kind;
};

const char *plan_segments(const int *classes, int n, SegmentPlan *out) noexcept;

/* Delay before lock-timeout retry number `attempt` (1-based): exponential
 * from base_ms, capped at 100 * base_ms, with jitter. */
int lock_retry_delay_ms(int attempt, int base_ms) noexcept;

/* ---- the safe-DDL rules (core/policy.hpp) seen from PostgreSQL code ---- */

/* Values of core::Action and core::Level, as int. */
struct PolicyFacts {
    int action;
    const char *table;      /* as the user wrote it */
    double rows;
    int64 bytes;
    bool created_in_transaction;
    bool temporary;
    bool partitioned;
    bool matview;           /* the relation is a materialized view */
    const char *column;
    const char *column_type;
    const char *constraint;
    const char *index;
    const char *new_name;
    const char *referenced_table;
    const char *expression;
    int n_columns;
    const char **columns;
    bool not_null;
    bool has_default;
    bool not_valid;
    bool using_index;
    bool concurrently;
    bool not_null_proven;
    bool fk_columns_indexed;
    int rewrite_reasons;
    bool type_change;
    double rows_affected;
    bool is_delete;
    bool is_read;               /* LargeDml: rows read (under a held lock), not changed */
    bool holds_exclusive_lock;
    int held_lock;              /* core::LockMode */
    const char *held_on;
    const char *domain;
    const char *domain_command;
    bool bound_proven;
    bool default_partition;
    const char *partition;
    const char *parent;
    const char *sweep;
    const char *via;        /* how the statement reaches the table, or NULL */
    bool cascade;           /* TRUNCATE reached it through a foreign key */
    const char *added_kind; /* TableRewrite of ADD COLUMN: "identity", "serial", "generated",
                             * "domain", "volatile default"; or NULL */
    bool exclusion;         /* AddUniqueOrPrimary: an EXCLUDE constraint */
    bool primary_key;       /* AddUniqueOrPrimary: a PRIMARY KEY (not_null: its columns are
                             * NOT NULL already) */
    const char *typed_of;   /* reached by ALTER TYPE ... CASCADE: the table is a typed table
                             * of this composite type (as written), or NULL */
    /* rows and bytes not measured yet: the relation to measure (policy's
     * resolve_size, only when a rule could use them); InvalidOid: final */
    Oid size_of;
    int size_reach;
};

struct PolicyVerdict {
    char *rule;
    int level; /* core::Level */
    char *message;
    char *detail;
    char *hint;
};

/* Evaluate every rule; *verdicts is palloc'd.  Returns NULL or an error. */
const char *evaluate_policy(const PolicyFacts *facts, double large_rows, int64 large_bytes,
                            const char *rule_levels, PolicyVerdict **verdicts,
                            int *n_verdicts) noexcept;

/* Would evaluate_policy() find any verdict?  (*fires; no messages written.)
 * Returns NULL or an error. */
const char *policy_would_fire(const PolicyFacts *facts, double large_rows, int64 large_bytes,
                              const char *rule_levels, bool *fires) noexcept;

/* NULL if the "rule=level, ..." spec is valid, else what is wrong. */
const char *check_rule_levels(const char *spec) noexcept;

bool is_known_rule(const char *name) noexcept;

struct RuleRow {
    char *name;
    const char *default_level;
    bool size_dependent;
    char *summary;
};
/* The rule registry; palloc'd, *n rows (0 and NULL on failure). */
const RuleRow *rule_rows(int *n) noexcept;

/* ---- the backfill throttle (core/throttle.hpp) ---- */
struct ThrottleSettings {
    int initial_batch;
    int target_batch_ms;
    int max_rows_per_second;
    int pause_ms;
};
struct ThrottleState; /* opaque, palloc'd */
const char *throttle_create(const ThrottleSettings *settings, ThrottleState **state) noexcept;
int throttle_first_batch(const ThrottleState *state) noexcept;
void throttle_after(ThrottleState *state, long rows, int batch_size, double duration_ms,
                    int lock_waiters, int *next_batch, double *sleep_ms, double *rate) noexcept;

}  // namespace safe_migrate::pg
