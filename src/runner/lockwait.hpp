/*
 * lockwait.hpp — taking a lock without stalling the application (issue 15).
 *
 * A request for a lock that conflicts with the application's traffic (SHARE
 * or stronger: every write, or every read for ACCESS EXCLUSIVE) waits in the
 * lock queue, and every later query on the table queues behind it.  So
 * before a migration asks for such a lock it looks at who holds conflicting
 * locks (the lock manager's GetLockConflicts, the holders' PGPROC and
 * backend status), without queueing:
 *   - while a long-lived holder is there (its transaction open longer than
 *     safe_migrate.lock_wait_max_stall, an autovacuum), it waits outside the
 *     queue: a latch wait with a short poll, no snapshot, no lock of the
 *     unit it is about to run (a failed attempt's locks were rolled back);
 *   - when only short-lived holders remain it runs the unit with
 *     lock_timeout = safe_migrate.lock_wait_max_stall, so the application
 *     never queues behind it for longer than that; a timeout rolls the unit
 *     back and it looks again;
 *   - after safe_migrate.lock_wait_deadline it gives up with 55P03 naming
 *     the table and the blocker.
 * While it waits it says why (a NOTICE when the blocker changes, a row in
 * safe_migrate.lock_waits).  Optionally (safe_migrate.lock_wait_cancel_after,
 * admin-only) it cancels a blocker that is safe to cancel.
 *
 * A "unit" is what one attempt runs and rolls back: a step of the runner,
 * the in-caller path's subtransaction.
 *
 * safe_migrate.lock_strategy = 'retry' brings back the old behaviour
 * (safe_migrate.lock_timeout, lock_retries with backoff).
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "storage/lockdefs.h"
#include "utils/timestamp.h"
}

namespace safe_migrate::runner {

enum LockStrategy { kLockStrategyWait = 0, kLockStrategyRetry = 1 };

/* settings (lockwait.cpp) */
extern int lock_strategy;
extern int lock_wait_max_stall_ms;
extern int lock_wait_deadline_ms;
extern int lock_wait_cancel_after_ms; /* -1: never cancel */
void define_lock_wait_settings(void);
/* From _PG_init while shared_preload_libraries loads us: the shared memory
 * behind safe_migrate.lock_waits (without it the view is empty). */
void request_lock_wait_shmem(void);

struct LockWait {
    bool active;        /* the wait strategy applies to this unit */
    bool withdraw_xmin; /* the caller's snapshot is disposable: drop our xmin while waiting */
    MemoryContext cxt;  /* where everything that survives the unit lives */
    const char *version;
    int n;              /* targets: relations the unit locks in a traffic-conflicting mode */
    Oid *relids;
    int *modes;
    char **names;       /* qualified, quoted */
    TimestampTz started;
    int timeouts;       /* attempts that hit the short lock_timeout */
    int blocker_pid;    /* the blocker reported last (0: none) */
    uint32 blocker_lxid;
    TimestampTz blocker_since;
    bool cancelled_blocker;
    char *blocker_text; /* its description, for the error at the deadline */
    int blocker_target; /* index of the target it blocks */
    void *blocker_holder; /* what we saw of it last (lockwait.cpp) */
    int noticed_pid;      /* the blocker the last NOTICE named, and when */
    uint32 noticed_lxid;
    TimestampTz noticed_at;
    int published_pid;    /* the blocker safe_migrate.lock_waits shows */
    uint32 published_lxid;
    int published_state;
    List *cancellations; /* char *: what was cancelled, for the history */
};

/* In a runner: the backend that called migrate_apply/_rollback and waits
 * for us (0 elsewhere).  A lock it holds would never be released while we
 * wait: that is an error at once, not a wait until the deadline. */
extern int lock_wait_caller_pid;

/* Look at the unit's statements (catalog lookups: needs a transaction; no
 * lock is taken).  Everything kept lives in cxt. */
void lock_wait_prepare(LockWait *w, RawStmt **stmts, int n, MemoryContext cxt,
                       bool withdraw_xmin);
/* The lock_timeout the unit's attempts run with. */
int lock_wait_timeout(const LockWait *w, int fallback);
/* Wait outside the lock queue while a long-lived holder is there.  NULL
 * when the unit may ask for its locks, else the 55P03 error to fail with
 * (its deadline passed).  Works inside or outside a transaction; holds no
 * snapshot while waiting. */
ErrorData *lock_wait_outside_queue(LockWait *w);
/* An attempt hit the short lock_timeout: NULL to try again (after a short
 * pause), else the error to fail with (the deadline passed). */
ErrorData *lock_wait_after_timeout(LockWait *w, ErrorData *timeout);
/* Before another attempt after a lock timeout: send the notice (if any),
 * then pause ms.  Never throws: NULL to go on, else the error to fail with
 * (a cancel during the pause, or one the lock timeout hid: cancel.hpp). */
ErrorData *pause_for_retry(int ms, const char *notice, const char *notice_detail = nullptr);
/* Statement `statement` (1-based) of a migration lost its lock (`failure`: a
 * lock timeout or a deadlock) and is run again: retry number `retry` of
 * `retries`, after the backoff lock_retry_delay_ms(retry, base_delay_ms),
 * announced by a NOTICE that says which, with the failure's own words as
 * its DETAIL.  As pause_for_retry: NULL to go on, else the error to fail
 * with. */
ErrorData *pause_before_retry(const ErrorData *failure, int statement, int retry, int retries,
                              int base_delay_ms);
/* The unit is over (its locks taken, or given up). */
void lock_wait_done(LockWait *w);

/* The sessions holding locks that conflict with mode on relid, described for
 * migrate_plan ("pid 123 (role ..., ...)"; their query only if the current
 * user may see it, as in pg_stat_activity); NULL when none. */
char *describe_lock_blockers(Oid relid, LOCKMODE mode);

}  // namespace safe_migrate::runner
