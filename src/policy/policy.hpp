/*
 * policy.hpp — the safe-DDL policy inside the server: settings, the
 * migration context (is a migrate_apply running in this backend, which
 * overrides does it carry), and enforcement of the core's verdicts.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "storage/lockdefs.h"
}

#include "pg/core_bridge.hpp"

namespace safe_migrate::policy {

/* settings */
extern bool guarded_database; /* safe_migrate.guarded_database (only a marker) */
extern int policy_mode;         /* core::PolicyMode */
extern char *rule_levels;
extern int large_table_rows;
extern int large_table_kb;
void define_settings(void);
void install_hooks(void);
/* Allow lines cover no code of other roles (enforce.cpp); from install_hooks. */
void install_scope_hooks(void);
/* safe_migrate.ddl_log (ddllog.cpp): a frame per utility statement, opened
 * by the ProcessUtility hook (false: this statement gets none) and closed
 * when it is done or failed; objects from the object access hook. */
bool ddl_log_begin(Node *parsetree, int context);
void ddl_log_end(void);
void ddl_log_abandon(void);
void ddl_log_object(int access, Oid classId, Oid objectId, int subId, void *arg);
void install_ddl_log_hooks(void);
/* The utility statement running now (innermost), or nullptr. */
Node *ddl_log_current_statement(void);

/* A `-- safe_migrate:allow <rule> <reason>` directive being honoured. */
struct Allowance {
    char *rule;
    char *reason;
    bool used;
};

/* What migrate_apply tells the policy about the migration running in this
 * backend (the caller's backend or the runner). */
struct MigrationContext {
    bool active;
    const char *version;
    List *allowances;      /* of Allowance *, in TopMemoryContext */
    const char *statement; /* source text the running statement was parsed from */
    const char *display;   /* the running statement alone, for the audit trail */
};
extern MigrationContext migration;

/* Objects count as new (exempt from every rule: nobody else sees them yet)
 * when created in this transaction, in subtransaction new_objects_from or a
 * later one.  migrate_test sets it for its down and up-again steps, which in
 * reality run after the up committed; InvalidSubTransactionId (0) otherwise. */
extern SubTransactionId new_objects_from;

/* Enter/leave the migration context.  Allowances must already be checked
 * with check_allowances(). */
void begin_migration(const char *version, int n, char **rules, char **reasons);
void end_migration(void);

/* Refuse directives that name no rule, or that the role may not use. */
void check_allowances(int n, char **rules);

/* The overrides used so far, as a jsonb text array of objects, or "[]". */
char *overrides_json(void);

/* May this role override rules (superuser or member of safe_migrate_admin)? */
bool may_override(Oid role);

/* While set (by migrate_plan), enforce() records facts and verdicts here
 * instead of acting on them. */
struct PlanCapture {
    List *facts;    /* of pg::PolicyFacts * */
    List *verdicts; /* of pg::PolicyVerdict * */
};
extern PlanCapture *plan_capture;

/* Evaluate the rules on the facts and act: ERROR, WARNING or an audited
 * override. */
void enforce(const pg::PolicyFacts *facts);
/* Could enforce(facts) say anything?  Measures the size if a rule could
 * use it (then left in facts).  False: no rule fires on these facts, and
 * what only a verdict's message or hint needs (names, the statement the
 * hint writes) need not be looked up.  Only facts a rule's condition reads
 * must be set; always true for migrate_plan. */
bool worth_judging(pg::PolicyFacts *facts);

/* Which partitions / inheritance children a statement reaches, and so count
 * in the table's rows and bytes: All (ALTER TABLE, TRUNCATE, DROP: they
 * recurse into both), Partitions (CREATE INDEX, VACUUM, CLUSTER, REINDEX,
 * foreign keys and unique constraints: a partitioned table's partitions, but
 * not the children of an inheritance parent), Self (ONLY, SET TABLESPACE). */
enum class Reach { All, Partitions, Self };

/* Facts of a table, without taking any lock. */
void table_facts(Oid relid, const char *written_name, pg::PolicyFacts *facts,
                 Reach reach = Reach::All);
/* Measure the rows and bytes table_facts left for later (facts->size_of);
 * nothing if they are final.  Whoever reads or replaces them calls it first
 * (enforce does, when a rule could use them). */
void resolve_size(pg::PolicyFacts *facts);

/* How a column default (raw, as parsed) evaluates: calling a volatile
 * function (PostgreSQL then computes it for every row, by a rewrite), not
 * (computed once, stored as the "missing" value), or cannot be told (an
 * object it names does not exist, or it does not analyze).  Analyzes the
 * expression: call it in a transaction (plan.cpp). */
enum class DefaultVolatility { NotVolatile, Volatile, Unknown };
DefaultVolatility default_volatility(Node *raw_default);
/* Does a column default call a volatile function?  True when it cannot be
 * told (default_volatility: not NotVolatile). */
bool default_is_volatile(Node *raw_default);
/* Is tn a domain with constraints (adding a column of it makes PostgreSQL
 * check every row, by a rewrite, whatever its default)?  *found (optional):
 * whether the type exists.  Looks it up: call it in a transaction
 * (plan.cpp). */
bool constrained_domain(TypeName *tn, bool *found = nullptr);
/* serial, bigserial, smallserial (serial2/4/8), as written unqualified. */
bool is_serial(TypeName *tn);

/* Is the column already NOT NULL on relid and, with recurse, on every
 * partition or inheritance child (SET NOT NULL then checks nothing)? */
bool column_not_null(Oid relid, const char *column, bool recurse);

/* A script judged before it runs (migrate_plan, the pre-check of a
 * multi-step migration): forget the last one, then after judging each
 * statement note what it establishes for the later ones (a CHECK (col IS
 * NOT NULL) validated by an earlier step proves a later SET NOT NULL). */
void plan_script_begin(void);
void plan_script_after(Node *stmt);

/* Facts and checks per statement kind (facts.cpp). */
void check_parsetree(Node *parsetree);
void check_table_rewrite(Oid relid, int reasons, Node *parsetree);
/* An index PostgreSQL drops inside an ALTER TABLE to build it again (the
 * indexes on a column whose type changes are dropped before the table is
 * rewritten, and made anew after it): its bytes count with its table when
 * that rewrite is judged (check_table_rewrite), as they did before the
 * statement began.  Called from the object access hook. */
void note_rebuilt_index(Oid indexid, Node *statement);
/* The typed tables (CREATE TABLE t OF type) of a composite type, by its relation. */
List *typed_tables_of(Oid composite);
void check_utility(Node *parsetree);
/* A migration that commits in n_steps transactions: refuse it before its
 * first step if the policy would refuse one of its statements numbered
 * first_checked or later (1-based) when it runs, after earlier steps
 * committed.  The allow directives are those of the script (already checked
 * with check_allowances). */
void refuse_before_first_step(const char *script, List *trees, int first_checked, int n_steps,
                              int n_allows, char **allow_rules);

/* The locks a statement takes on existing tables, as migrate_plan reports
 * them (plan.cpp): appends each table's Oid to *relids and its LOCKMODE to
 * *modes (the statement's own table, then the tables its foreign keys
 * reference).  Names resolve with the current search_path, without locking;
 * tables that do not exist (yet) are left out.  Needs a transaction. */
void statement_locks(Node *stmt, List **relids, List **modes);

/* What ALTER COLUMN TYPE does (facts.cpp): true when the heap is rewritten;
 * else *rebuilt lists the Oids of the indexes rebuilt.  *known is false when
 * it cannot be told here (the statement fails on its own). */
bool column_type_change(Oid relid, AlterTableCmd *cmd, List **rebuilt, bool *known);
/* Does a column ADD COLUMN adds get values in existing rows (a default, a
 * generated, identity or serial column)?  If not, PostgreSQL skips the
 * validation of a foreign key on it (facts.cpp). */
bool added_column_filled(const ColumnDef *def);
/* Drops judged by what really goes (facts.cpp): note_ddl_statement at each
 * ddl_command_start (its command tag, static); check_dropped_relation for
 * every table (attnum 0) or column PostgreSQL is about to delete;
 * remember_judged_drop for what a statement named and was judged on. */
void note_ddl_statement(const char *tag);
/* Is safe_migrate created in this database?  (The hooks are per process;
 * the policy is per database.)  A catalog lookup: ask last. */
bool active_here(void);
void check_dropped_relation(Oid relid, int attnum);
/* migrate_plan and the precheck: an existing table a statement drops or
 * empties through what an earlier statement of the script did (it inherits
 * from a parent the script made) */
void judge_reached_table(Oid relid, bool truncate, const char *via);
void remember_judged_drop(Oid relid, const char *column);
/* Columns that went without their table are judged when the deletions are
 * done (at the end of the utility statement); forgotten when a
 * subtransaction aborts. */
void flush_dropped_columns(void);
void forget_dropped_columns(void);

/* large-unbatched-dml: after each statement of a migration (`rows`: what the
 * statement reported; used only when track_counts is off) */
void check_large_dml(RawStmt *raw, double rows);
/* The UPDATE / DELETE check_large_dml is judging when the table reported
 * is the one it names (else NULL): its refusal may offer online execution. */
Node *current_dml_statement(void);
/* dml.cpp: the executor hook noting the tables a migration changes, and the
 * check of the rows changed so far in this transaction */
void install_dml_hooks(void);
void check_changed_rows(void);
/* Start counting again from zero, as a new transaction would (migrate_test:
 * each of its phases, and each step of a phase, is a transaction of its own
 * in a real apply or rollback). */
void forget_changed_rows(void);
/* timing.cpp: verdicts decided at the end of the migration (of the
 * transaction outside one): foreign-key-missing-index; columns the
 * migration added (renaming them breaks nothing) */
void defer_foreign_key_index(Oid relid, Oid confrelid, List *column_names, const char *table,
                             const char *referenced_table);
void finish_migration_checks(void); /* both paths, after the last statement */
void forget_migration_checks(void); /* end_migration */
void note_added_column(Oid relid, const char *name);
/* A table the running migration creates (schema, name), and whether a
 * table is one: exempt like a new table in the migration's later steps
 * (runner steps commit one by one); forgotten when the migration ends. */
void note_created_table(Oid nsp, const char *name);
bool is_created_table(Oid nsp, const char *name);
/* DROP TABLE / VIEW / ... / INDEX: its names are relations; those that exist */
bool drop_of_relations(ObjectType type);
List *relations_a_drop_names(DropStmt *stmt);
bool renames_added_column(Oid relid, const char *name, const char *new_name);
bool is_added_column(Oid relid, const char *name);
/* Is column name of relid being replaced by an online type change: a row
 * trigger of safe_migrate.sync_column, ENABLE ALWAYS, copies it into another
 * column of the table, and safe_migrate.sync_column_check found every row
 * copied since that trigger was last changed (facts.cpp)?  Its values live
 * on in that column (which must take its name by commit). */
bool column_replaced_online(Oid relid, const char *name);
/* The safe_migrate.sync_column trigger (ENABLE ALWAYS) of relid copying source
 * into target: its Oid and the xmin of its pg_trigger row (facts.cpp). */
bool sync_trigger(Oid relid, const char *source, const char *target, Oid *tgoid, TransactionId *xmin,
                  const char *expression = nullptr);
/* Are the facts those of an ALTER COLUMN TYPE that keeps the heap (indexes
 * rebuilt, checks re-checked), which online execution leaves as written? */
bool keeps_heap(const pg::PolicyFacts *f);
/* facts.cpp: for timing.cpp */
bool foreign_key_columns_indexed(Oid relid, List *names);
void check_foreign_key_index(Oid relid, const char *table, const char *referenced_table,
                             List *names);
/* facts.cpp: enforce large-unbatched-dml on one table */
/* held: a lock blocking reads or writes the transaction holds on held_relid
 * (NoLock: none counted) */
void check_large_dml_on(Oid relid, double rows, bool is_delete, LOCKMODE held = NoLock,
                        Oid held_relid = InvalidOid, bool is_read = false);
/* The strongest lock blocking reads or writes (SHARE or stronger) this
 * transaction holds on a table an application may use (not temporary, not
 * new in this migration), NoLock if none; its table in *relid. */
LOCKMODE strongest_held_table_lock(Oid *relid);

}  // namespace safe_migrate::policy
