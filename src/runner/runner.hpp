/*
 * runner.hpp — what the caller of migrate_apply/migrate_rollback and the
 * background session that runs the migration share.
 *
 * Why a background session: a function call always runs inside the
 * caller's transaction, and CREATE INDEX CONCURRENTLY, VACUUM & co. refuse to
 * run there.  The caller therefore hands the script to a dynamic background
 * worker connected to the same database as the same user and role with the
 * same search_path; the worker runs each statement as a top-level command,
 * records history in its own transactions and streams notices, errors and
 * result rows back through a shm_mq.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "lib/stringinfo.h"
#include "storage/dsm.h"
#include "storage/lock.h"
#include "storage/shm_mq.h"
#include "utils/timestamp.h"
}

namespace safe_migrate::runner {

enum class Mode : int32 {
    Apply = 1,         /* run a migration */
    Rollback = 2,      /* run down scripts */
    RecordFailure = 3  /* only record a migration that failed in the caller */
};

/* Message type of a result row sent by the worker (protocol-style). */
constexpr char kResultMessage = 'R';

/* Fixed header at the start of the DSM segment; variable data follows. */
struct SharedRequest {
    Mode mode;
    Oid database_id;
    Oid authenticated_user_id;
    Oid current_user_id;
    int sec_context;
    int lock_timeout_ms;
    int lock_retries;
    int lock_retry_delay_ms;
    int parallel_maintenance_workers; /* -1: the server's */
    int caller_pid;
    /* offsets (from the segment start) and lengths of NUL-terminated strings */
    Size script_off;   /* apply: the whole script */
    Size version_off;  /* apply: version or "" ; rollback: to_version or "" */
    Size description_off;
    Size search_path_off;
    Size applied_by_off; /* the caller's current_user name */
    Size settings_off;   /* the caller's session settings (settings.cpp) */
    int n_settings;
    bool has_version;
    bool has_description;
    /* RecordFailure: what failed (string offsets of 0 mean NULL) */
    TimestampTz started_at;
    int fail_sqlstate;
    int fail_statements;
    int fail_lock_retries;
    Size fail_message_off;
    Size fail_detail_off;
    Size fail_hint_off;
    Size fail_statement_off;
    Size mq_off;
    Size mq_size;
};

/* The settings the caller's session changed, appended to out as NUL-
 * terminated strings; returns how many (settings.cpp). */
int capture_session_settings(StringInfo out);
/* In the runner, with the caller's role current: take them over. */
void apply_session_settings(const char *block, int count);

/* Entry point of the background worker (bgw_function_name). */
extern "C" PGDLLEXPORT void safe_migrate_runner_main(Datum arg);

/* Settings (defined in safe_migrate.cpp). */
extern int lock_timeout_ms;
extern int lock_retries;
extern int lock_retry_delay_ms;
extern int parallel_maintenance_workers;

/* The settings every statement of a migration runs with, in the current
 * session: lock_timeout, max_parallel_maintenance_workers unless
 * parallel_workers is -1, and backend_flush_after 256 kB where it is 0.
 * action is GUC_ACTION_SET for the runner's own session, GUC_ACTION_SAVE
 * inside a GUC nest level in the caller's. */
void set_step_settings(int lock_timeout, int parallel_workers, int action);

/* The lock that serialises the migrations of a database: an advisory lock
 * tag whose last field (3) no SQL function produces (pg_advisory_lock uses 1
 * and 2), so no role can take it to hold migrations off; admins use
 * safe_migrate.hold_migrations().  Advisory (USER_LOCKMETHOD) session locks
 * survive the aborts of the runner's steps, unlike relation locks. */
constexpr int64 kMigrationLockKey = 0x5AFE3167;
void migration_lock_tag(LOCKTAG *tag);
void notice_waiting_for_migration_lock(const LOCKTAG *tag);
/* A caller's wait for the migration lock (held by the running migration),
 * in `mode`: ExclusiveLock to take it (a migration in the caller's
 * session), ShareLock only to wait until it is free (before a runner is
 * started).  A plain lock wait, so the deadlock detector sees it, with a
 * longer deadlock_timeout than the runners': when the running
 * migration's concurrent index build waits for this caller's transaction
 * (it took its snapshot before the caller withdrew its xmin), the cycle is
 * found by the build first, which loses it and is retried (worker.cpp); the
 * caller, which has done nothing yet, keeps waiting (deadlock_recheck_ms).
 * `unbounded`: not bounded by lock_timeout either (as a runner's wait).
 * `keeps_snapshot`: a caller that cannot withdraw its xmin (not a top-level
 * SELECT migrate_apply) would make the build wait for it again after every
 * retry: it is the one that loses (deadlock_timeout 100 ms at most), with a
 * HINT saying how to call. */
void wait_for_migration_lock(const LOCKTAG *tag, LOCKMODE mode, bool unbounded,
                             bool keeps_snapshot);
/* How often a runner's step that waits for a lock looks for a deadlock
 * again (PostgreSQL looks once, deadlock_timeout after the wait starts; a
 * caller that starts waiting for the migration lock later closes a cycle
 * that one look missed): deadlock_timeout, at least 5 s.  A caller waits
 * for the migration lock with a deadlock_timeout 10 s longer than this. */
int deadlock_recheck_ms(void);

/* Does this backend hold any advisory lock (session or transaction level)?
 * Asked before a script runs in the caller's session: if not, every
 * session-level advisory lock held afterwards is the script's, and is
 * released (LockReleaseSession) as the end of a runner's session would. */
bool session_holds_advisory_locks(void);

/* ERROR if a migration runs in this session (migrate_apply, _rollback or
 * _test called from a migration's own statements). */
void refuse_inside_migration(const char *fname);

/* ---- the step journal and the state of a version (journal.cpp) ----
 * These run SQL: SPI connected, extension owner's rights (pg::elevate). */

/* The latest attempt to apply a version. */
struct VersionAttempt {
    int64 id;
    char *status;
    char *checksum;
    int steps;           /* steps its script splits into (0: not recorded) */
    int steps_committed; /* including those of the attempts it resumed */
    int statements;      /* statements whose effects are committed */
    char *applied_by;
    bool abandoned;
    bool partly_applied; /* failed or interrupted after committing steps, not abandoned */
    char *executed_script; /* the online expansion it ran (NULL: the script as written) */
};

/* Mark attempts left 'running' by a dead runner 'interrupted', saying which
 * steps had committed.  Only valid while holding the migration lock. */
void reconcile_interrupted(void);

/* True if version's latest attempt left it partly applied (then *a says
 * how far it got). */
bool partly_applied_attempt(const char *version, VersionAttempt *a);

/* As partly_applied_attempt, with an ERROR (SM001, naming the committed
 * steps and migrate_abandon) when the checksum is not the attempt's. */
bool check_partly_applied(const char *version, const char *checksum, Oid caller,
                          VersionAttempt *a);

/* ERROR (55000) if any version is partly applied: a down script undoes a
 * whole migration. */
void refuse_rollback_while_partly_applied(void);
/* An applied migration whose down script a rollback left half run: ERROR. */
void refuse_partly_rolled_back(const char *version, int down_statements);

/* "steps 1 to 2 of 4 (statements 1 to 3)" */
char *describe_committed_steps(int steps_committed, int steps, int statements);

/* ---- statement_timeout for each statement of a migration (worker.cpp) ----
 * As postgres.c arms it for each statement of a query string, bounded by
 * the deadline of the statement that called migrate_apply, if any:
 *   TimestampTz outer = outer_statement_deadline();
 *   arm_statement_timeout(outer); ...run one statement...; restore_statement_timeout(outer); */
TimestampTz outer_statement_deadline(void);
void arm_statement_timeout(TimestampTz outer);
void restore_statement_timeout(TimestampTz outer);

}  // namespace safe_migrate::runner
