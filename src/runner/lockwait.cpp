/*
 * lockwait.cpp — see lockwait.hpp.
 *
 * Everything here is plain C-style code (no C++ object with a destructor in
 * a frame that calls PostgreSQL): errors are PostgreSQL errors.
 */
#include "lockwait.hpp"
#include "pg/cancel.hpp"
#include "pg/compat.hpp"
#include "pg/guard.hpp"
#include "pg/privileged.hpp"
#include "policy/policy.hpp"

#include <csignal>

extern "C" {
#include "access/twophase.h"
#include "access/xact.h"
#include "mb/pg_wchar.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_inherits.h"
#include "catalog/namespace.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/sinvaladt.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
}

namespace safe_migrate::runner {

int lock_strategy = kLockStrategyWait;
int lock_wait_max_stall_ms = 20;
int lock_wait_deadline_ms = 10 * 60 * 1000;
int lock_wait_cancel_after_ms = -1;
int lock_wait_caller_pid = 0;

namespace {

/* how often a migration waiting for a holder looks again (who blocks, its
 * state, the deadline, a cancellation) */
constexpr int kSliceMs = 100;
/* how much of a blocker's query is kept and shown */
constexpr int kQueryChars = 256;

const struct config_enum_entry strategy_options[] = {
    {"wait", kLockStrategyWait, false},
    {"retry", kLockStrategyRetry, false},
    {nullptr, 0, false}};

const char *mode_name(int mode)
{
    static const char *const names[] = {"none", "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE",
                                        "SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE",
                                        "EXCLUSIVE", "ACCESS EXCLUSIVE"};
    return mode >= 0 && mode <= AccessExclusiveLock ? names[mode] : "unknown";
}

/* ---------------- shared memory: safe_migrate.lock_waits ---------------- */

constexpr int kSlots = 64;

struct WaitSlot {
    int pid; /* 0: free */
    Oid database;
    Oid role; /* the migration's role */
    char version[128];
    Oid relid;
    char relation[2 * NAMEDATALEN + 8];
    int mode;
    bool waiting; /* outside the queue for a blocker (else: trying for the lock) */
    TimestampTz since;
    int attempts;
    int blocker_pid;
    Oid blocker_role;
    char blocker_app[NAMEDATALEN];
    char blocker_state[32];
    TimestampTz blocker_xact_start;
    TimestampTz blocker_since;
    char blocker_query[kQueryChars + 4];
};

struct SharedWaits {
    WaitSlot slots[kSlots];
};

SharedWaits *shared = nullptr;
LWLock *shared_lock = nullptr;
shmem_request_hook_type prev_shmem_request = nullptr;
shmem_startup_hook_type prev_shmem_startup = nullptr;
int my_slot = -1;
/* claimed in a transaction (the caller's backend): its abort ends the wait;
 * a runner waits between its transactions, and its wait slices abort */
bool slot_in_transaction = false;
bool cleanup_registered = false;

void request_shmem(void)
{
    if (prev_shmem_request)
        prev_shmem_request();
    RequestAddinShmemSpace(MAXALIGN(sizeof(SharedWaits)));
    RequestNamedLWLockTranche("safe_migrate lock waits", 1);
}

void startup_shmem(void)
{
    if (prev_shmem_startup)
        prev_shmem_startup();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found;
    shared = (SharedWaits *) ShmemInitStruct("safe_migrate lock waits", sizeof(SharedWaits), &found);
    if (!found)
        memset(shared, 0, sizeof(SharedWaits));
    shared_lock = &(GetNamedLWLockTranche("safe_migrate lock waits"))->lock;
    LWLockRelease(AddinShmemInitLock);
}

void release_slot(void)
{
    if (my_slot < 0 || shared == nullptr)
        return;
    LWLockAcquire(shared_lock, LW_EXCLUSIVE);
    if (shared->slots[my_slot].pid == MyProcPid)
        memset(&shared->slots[my_slot], 0, sizeof(WaitSlot));
    LWLockRelease(shared_lock);
    my_slot = -1;
}

void release_slot_at_exit(int, Datum) { release_slot(); }

void release_slot_at_xact_end(XactEvent event, void *)
{
    if ((event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT) && slot_in_transaction)
        release_slot();
}

struct Holder;
void publish(const LockWait *w, const Holder *h);

/* ---------------- who holds what ---------------- */

struct Holder {
    int pid;
    Oid role;
    int backend; /* with lxid: its virtual transaction */
    uint32 lxid;
    bool autovacuum;
    bool wraparound;
    bool wrote; /* has an xid: wrote something */
    bool client; /* a client backend */
    BackendState state;
    TimestampTz xact_start; /* or the query's start; 0: unknown */
    char app[NAMEDATALEN];
    char query[kQueryChars + 4];
};

const char *state_name(BackendState s)
{
    switch (s) {
        case STATE_RUNNING: return "active";
        case STATE_IDLE: return "idle";
        case STATE_IDLEINTRANSACTION: return "idle in transaction";
        case STATE_FASTPATH: return "fastpath function call";
        case STATE_IDLEINTRANSACTION_ABORTED: return "idle in transaction (aborted)";
        case STATE_DISABLED: return "disabled";
        default: return "unknown";
    }
}

/* Fill h from the backend status of pid (a fresh copy of the table). */
void read_status(Holder *h)
{
    int n = pgstat_fetch_stat_numbackends();
    for (int i = 1; i <= n; i++) {
        LocalPgBackendStatus *l = pg::compat::local_beentry(i);
        if (l == nullptr || l->backendStatus.st_procpid != h->pid)
            continue;
        PgBackendStatus *b = &l->backendStatus;
        h->state = b->st_state;
        h->client = b->st_backendType == B_BACKEND;
        h->xact_start = b->st_xact_start_timestamp != 0 ? b->st_xact_start_timestamp
                                                        : b->st_activity_start_timestamp;
        if (b->st_appname)
            strlcpy(h->app, b->st_appname, sizeof(h->app));
        if (b->st_activity_raw) {
            char *q = pgstat_clip_activity(b->st_activity_raw);
            int len = pg_mbcliplen(q, strlen(q), kQueryChars);
            memcpy(h->query, q, len);
            h->query[len] = '\0';
            if (q[len] != '\0')
                strlcat(h->query, "...", sizeof(h->query));
        }
        return;
    }
}

/* The holders of locks that conflict with mode on relid (not us), into
 * holders[] (room for max); returns how many. */
int conflicting_holders(Oid relid, int mode, Holder *holders, int max, bool *status_read)
{
    LOCKTAG tag;
    SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
    int count = 0;
    VirtualTransactionId *vxids = GetLockConflicts(&tag, mode, &count);
    int n = 0;
    for (int i = 0; i < count && VirtualTransactionIdIsValid(vxids[i]) && n < max; i++) {
        PGPROC *proc = pg::compat::backend_proc(pg::compat::vxid_backend(vxids[i]));
        if (proc == nullptr || proc->pid == 0 || proc->pid == MyProcPid)
            continue;
        Holder *h = &holders[n];
        memset(h, 0, sizeof(*h));
        h->pid = proc->pid;
        h->role = proc->roleId;
        h->backend = pg::compat::vxid_backend(vxids[i]);
        h->lxid = vxids[i].localTransactionId;
        h->autovacuum = (proc->statusFlags & PROC_IS_AUTOVACUUM) != 0;
        h->wraparound = (proc->statusFlags & PROC_VACUUM_FOR_WRAPAROUND) != 0;
        h->wrote = TransactionIdIsValid(proc->xid);
        h->state = STATE_UNDEFINED;
        if (!*status_read) {
            /* a fresh look at every backend's status, once per poll */
            pgstat_clear_backend_activity_snapshot();
            *status_read = true;
        }
        read_status(h);
        n++;
    }
    return n;
}

/* Transaction age in ms (or a very large one when unknown). */
long holder_age_ms(const Holder *h, TimestampTz now)
{
    if (h->xact_start == 0)
        return LONG_MAX / 2;
    return TimestampDifferenceMilliseconds(h->xact_start, now);
}

bool is_long_lived(const Holder *h, TimestampTz now)
{
    if (h->autovacuum)
        return true; /* a vacuum runs long and yields only when asked to */
    return holder_age_ms(h, now) >= lock_wait_max_stall_ms;
}

/* Run fn inside a transaction (a runner between its steps has none). */
template <typename Fn>
void with_transaction(Fn fn)
{
    /* what fn allocates lives in the caller's context, not the
     * transaction's (freed at its commit) */
    MemoryContext cxt = CurrentMemoryContext;
    bool own = !IsTransactionState();
    if (own)
        StartTransactionCommand();
    MemoryContextSwitchTo(cxt);
    fn();
    if (own)
        CommitTransactionCommand();
    else
        InvalidateCatalogSnapshot();
    MemoryContextSwitchTo(cxt);
}

/* May role see the query of a session of owner (pg_stat_activity's rule,
 * plus safe_migrate's admins)?  Needs a transaction. */
bool may_see_query(Oid role, Oid owner)
{
    return has_privs_of_role(role, owner) || has_privs_of_role(role, ROLE_PG_READ_ALL_STATS) ||
           policy::may_override(role);
}

char *role_name(Oid role)
{
    if (!OidIsValid(role))
        return pstrdup("(none)"); /* autovacuum and other background processes */
    char *name = GetUserNameFromId(role, true);
    return name ? name : psprintf("(role %u)", role);
}

/* "session 123 (role alice, application "psql", idle in transaction,
 * transaction open 3.2 s): SELECT ..." */
char *describe_holder(const Holder *h, TimestampTz now, Oid viewer)
{
    char *who = nullptr;
    bool show = false;
    with_transaction([&]() {
        who = role_name(h->role);
        show = may_see_query(viewer, h->role);
    });
    StringInfoData buf;
    initStringInfo(&buf);
    appendStringInfo(&buf, "session %d (role %s, application \"%s\"", h->pid, who, h->app);
    /* its state, transaction age and query as pg_stat_activity shows them:
     * to roles that may see that session's (autovacuum's is no secret) */
    if (h->autovacuum)
        appendStringInfo(&buf, ", %s",
                         h->wraparound ? "autovacuum to prevent wraparound" : "autovacuum");
    else if (show)
        appendStringInfo(&buf, ", %s", state_name(h->state));
    if (h->xact_start != 0 && (show || h->autovacuum))
        appendStringInfo(&buf, ", transaction open %.1f s",
                         (double) holder_age_ms(h, now) / 1000.0);
    appendStringInfoChar(&buf, ')');
    if (show && h->query[0] != '\0')
        appendStringInfo(&buf, ": %s", h->query);
    else if (!show)
        appendStringInfoString(&buf, " (its state and query are not shown to you)");
    return buf.data;
}

/* ---------------- the blocker: cancellation ---------------- */

/* Does pid hold a relation lock of SHARE or stronger (LOCK TABLE, DDL)? */
bool holds_strong_lock(int pid)
{
    LockData *data = GetLockStatusData();
    bool strong = false;
    for (int i = 0; i < data->nelements && !strong; i++) {
        LockInstanceData *l = &data->locks[i];
        if (l->pid != pid || l->locktag.locktag_type != LOCKTAG_RELATION)
            continue;
        for (int m = ShareLock; m <= AccessExclusiveLock; m++)
            if (l->holdMask & LOCKBIT_ON(m))
                strong = true;
    }
    return strong;
}

/* After lock_wait_cancel_after, the safeguards: a client session that wrote
 * nothing (no xid: read-only so far), holds no relation lock of SHARE or
 * stronger (LOCK TABLE, DDL), and is no superuser's unless the migration's
 * role is one.  An idle-in-transaction session cannot be cancelled (it
 * runs no query): it is terminated, which rolls back nothing it wrote.
 * Returns what was done (for the history), or NULL. */
char *maybe_cancel(LockWait *w, const Holder *h, TimestampTz now)
{
    if (lock_wait_cancel_after_ms < 0 || w->cancelled_blocker)
        return nullptr;
    if (TimestampDifferenceMilliseconds(w->blocker_since, now) < lock_wait_cancel_after_ms)
        return nullptr;
    w->cancelled_blocker = true; /* judged once per blocker */
    const char *refusal = nullptr;
    bool super_blocker = false, super_me = false, may_signal = false, owns = false;
    char *who = nullptr;
    Oid target = w->relids[w->blocker_target];
    /* catalog lookups: a runner waits between its transactions */
    with_transaction([&]() {
        Oid me = GetUserId();
        super_blocker = superuser_arg(h->role);
        super_me = superuser_arg(me);
        who = role_name(h->role);
        /* what pg_cancel_backend() / pg_terminate_backend() would allow the
         * migration's role */
        may_signal = has_privs_of_role(me, h->role) ||
                     has_privs_of_role(me, ROLE_PG_SIGNAL_BACKEND);
        /* and only for a table whose owner's rights it has: the statement
         * would otherwise fail its own permission check anyway */
        owns = pg::compat::class_owner(target, me);
    });
    if (!owns)
        refusal = "the migration's role does not own the table it waits for";
    else if (!may_signal)
        refusal = "the migration's role may not signal it (it needs the blocking role's "
                  "privileges or membership in pg_signal_backend)";
    else if (!h->client || h->autovacuum)
        refusal = "it is not a client session";
    else if (h->wrote)
        refusal = "it has written (its transaction has an xid)";
    else if (holds_strong_lock(h->pid))
        refusal = "it holds a lock of SHARE or stronger on a table (LOCK TABLE or DDL)";
    else if (super_blocker && !super_me)
        refusal = "it is a superuser's session";
    else if (h->state != STATE_RUNNING && h->state != STATE_IDLEINTRANSACTION &&
             h->state != STATE_IDLEINTRANSACTION_ABORTED)
        refusal = "it is neither running a query nor idle in transaction";
    if (refusal) {
        ereport(NOTICE,
                (errmsg("migration \"%s\" does not cancel session %d: %s", w->version, h->pid,
                        refusal),
                 errhint("safe_migrate.lock_wait_cancel_after cancels only read-only sessions "
                         "that hold no strong lock.")));
        return nullptr;
    }
    bool terminate = h->state != STATE_RUNNING;
    /* the holder may have moved on since we looked: the same transaction? */
    PGPROC *proc = BackendPidGetProc(h->pid);
    if (proc == nullptr || pg::compat::proc_lxid(proc) != h->lxid || TransactionIdIsValid(proc->xid))
        return nullptr;
    if (kill(h->pid, terminate ? SIGTERM : SIGINT) != 0)
        return nullptr;
    char *what = psprintf("lock wait: %s session %d (role %s, application \"%s\", %s for %.1f s, "
                          "read-only) blocking %s on %s",
                          terminate ? "terminated" : "cancelled the query of", h->pid, who,
                          h->app, state_name(h->state),
                          (double) holder_age_ms(h, now) / 1000.0,
                          mode_name(w->modes[w->blocker_target]), w->names[w->blocker_target]);
    MemoryContext old = MemoryContextSwitchTo(w->cxt);
    w->cancellations = lappend(w->cancellations, pstrdup(what));
    MemoryContextSwitchTo(old);
    ereport(WARNING, (errmsg("%s", what),
                      errdetail("safe_migrate.lock_wait_cancel_after is %d ms.",
                                lock_wait_cancel_after_ms)));
    return what;
}

/* An autovacuum (not one preventing wraparound) yields to a lock request
 * after deadlock_timeout: PostgreSQL's deadlock checker cancels it (proc.c).
 * A migration waiting outside the queue is no lock request: do the same. */
void maybe_cancel_autovacuum(LockWait *w, const Holder *h, TimestampTz now)
{
    if (!h->autovacuum || h->wraparound || w->cancelled_blocker)
        return;
    if (TimestampDifferenceMilliseconds(w->blocker_since, now) < DeadlockTimeout)
        return;
    w->cancelled_blocker = true;
    PGPROC *proc = BackendPidGetProc(h->pid);
    if (proc == nullptr || !(proc->statusFlags & PROC_IS_AUTOVACUUM) ||
        (proc->statusFlags & PROC_VACUUM_FOR_WRAPAROUND))
        return;
    ereport(LOG, (errmsg("sending cancel to blocking autovacuum PID %d", h->pid),
                  errdetail("Migration \"%s\" waits for %s on %s.", w->version,
                            mode_name(w->modes[w->blocker_target]),
                            w->names[w->blocker_target])));
    (void) kill(h->pid, SIGINT);
}

void drop_xmin(const LockWait *w)
{
    if (IsTransactionState())
        InvalidateCatalogSnapshot();
    if (w->withdraw_xmin || !IsTransactionState())
        MyProc->xmin = InvalidTransactionId;
}

/* Wait up to ms for the holder's transaction to end, in the lock manager:
 * on its virtual transaction lock, where nobody else queues (CREATE INDEX
 * CONCURRENTLY waits there too).  Holds no lock of the table meanwhile;
 * pg_locks and pg_blocking_pids() show who waits for whom, the deadlock
 * detector sees the wait, and an autovacuum holder is cancelled after
 * deadlock_timeout as for any lock request it blocks (unless it prevents
 * wraparound).  Runs in a (sub)transaction of its own, whose lock_timeout is
 * the slice. */
void wait_for_holder(const LockWait *w, const Holder *h, int ms)
{
    VirtualTransactionId vxid;
    pg::compat::set_vxid_backend(&vxid, h->backend);
    vxid.localTransactionId = h->lxid;
    if (!VirtualTransactionIdIsValid(vxid) || h->backend == pg::compat::kInvalidBackend) {
        /* a prepared transaction: look again later */
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms,
                         PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        return;
    }
    bool own = !IsTransactionState();
    MemoryContext cxt = CurrentMemoryContext;
    ResourceOwner owner = CurrentResourceOwner;
    if (own)
        StartTransactionCommand();
    else
        BeginInternalSubTransaction(nullptr);
    MemoryContextSwitchTo(cxt);
    ErrorData *volatile failure = nullptr;
    PG_TRY();
    {
        (void) set_config_option("lock_timeout", psprintf("%d", ms), PGC_USERSET, PGC_S_SESSION,
                                 GUC_ACTION_LOCAL, true, 0, false);
        (void) VirtualXactLock(vxid, true);
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(cxt);
        failure = CopyErrorData();
        FlushErrorState();
    }
    PG_END_TRY();
    /* end it either way: its lock_timeout and any lock state go with it */
    if (own) {
        if (failure)
            AbortCurrentTransaction();
        else
            CommitTransactionCommand();
    } else {
        if (failure)
            RollbackAndReleaseCurrentSubTransaction();
        else
            ReleaseCurrentSubTransaction();
        CurrentResourceOwner = owner;
    }
    MemoryContextSwitchTo(cxt);
    drop_xmin(w);
    /* the slice is over (a lock timeout): look again; anything else (a
     * cancel, a deadlock) is the migration's error -- and so is a cancel
     * that came with the slice's end, reported as the lock timeout */
    if (failure && failure->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
        ReThrowError(failure);
    if (failure)
        pg::check_hidden_cancel();
}

ErrorData *deadline_error(LockWait *w)
{
    const char *table = w->names[w->blocker_target >= 0 ? w->blocker_target : 0];
    const char *mode = mode_name(w->modes[w->blocker_target >= 0 ? w->blocker_target : 0]);
    long waited = TimestampDifferenceMilliseconds(w->started, GetCurrentTimestamp());
    char *message;
    char *detail;
    if (w->blocker_pid != 0) {
        if (w->blocker_holder)
            w->blocker_text = describe_holder((const Holder *) w->blocker_holder,
                                              GetCurrentTimestamp(), GetUserId());
        message = psprintf("migration \"%s\" could not lock table %s: session %d held a "
                           "conflicting lock for all of safe_migrate.lock_wait_deadline",
                           w->version, table, w->blocker_pid);
        detail = psprintf("It waited %.1f s outside the lock queue for %s on %s. Blocker: %s",
                          (double) waited / 1000.0, mode, table, w->blocker_text);
    } else {
        message = psprintf("migration \"%s\" could not lock table %s within "
                           "safe_migrate.lock_wait_deadline",
                           w->version, table);
        detail = psprintf("It tried %d times for %s on %s, each time for at most %d ms "
                          "(safe_migrate.lock_wait_max_stall), over %.1f s.",
                          w->timeouts, mode, table, lock_wait_max_stall_ms,
                          (double) waited / 1000.0);
    }
    char *hint = w->blocker_pid != 0
                     ? psprintf("End that session (it holds its transaction open), or "
                                "SELECT pg_terminate_backend(%d), then apply the migration again; "
                                "or raise safe_migrate.lock_wait_deadline.",
                                w->blocker_pid)
                     : pstrdup("Find the sessions holding locks on the table with "
                               "pg_locks, then apply the migration again; or raise "
                               "safe_migrate.lock_wait_max_stall or "
                               "safe_migrate.lock_wait_deadline.");
    return pg::error_data(ERRCODE_LOCK_NOT_AVAILABLE, message, detail, hint);
}

/* ---------------- the view ---------------- */

void claim_slot(const LockWait *w)
{
    if (shared == nullptr || my_slot >= 0)
        return;
    if (!cleanup_registered) {
        before_shmem_exit(release_slot_at_exit, (Datum) 0);
        RegisterXactCallback(release_slot_at_xact_end, nullptr);
        cleanup_registered = true;
    }
    LWLockAcquire(shared_lock, LW_EXCLUSIVE);
    for (int i = 0; i < kSlots; i++) {
        WaitSlot *s = &shared->slots[i];
        /* free, or left by a backend that is gone */
        if (s->pid != 0 && s->pid != MyProcPid && BackendPidGetProc(s->pid) != nullptr)
            continue;
        memset(s, 0, sizeof(*s));
        s->pid = MyProcPid;
        s->database = MyDatabaseId;
        s->role = GetUserId();
        strlcpy(s->version, w->version, sizeof(s->version));
        s->since = w->started;
        my_slot = i;
        slot_in_transaction = IsTransactionState();
        break;
    }
    LWLockRelease(shared_lock);
}

void publish(const LockWait *w, const Holder *h)
{
    claim_slot(w);
    if (my_slot < 0)
        return;
    int t = w->blocker_target >= 0 ? w->blocker_target : 0;
    LWLockAcquire(shared_lock, LW_EXCLUSIVE);
    WaitSlot *s = &shared->slots[my_slot];
    s->relid = w->relids[t];
    strlcpy(s->relation, w->names[t], sizeof(s->relation));
    s->mode = w->modes[t];
    s->attempts = w->timeouts;
    s->waiting = h != nullptr;
    if (h) {
        s->blocker_pid = h->pid;
        s->blocker_role = h->role;
        strlcpy(s->blocker_app, h->app, sizeof(s->blocker_app));
        strlcpy(s->blocker_state,
                h->autovacuum ? "autovacuum" : state_name(h->state), sizeof(s->blocker_state));
        s->blocker_xact_start = h->xact_start;
        s->blocker_since = w->blocker_since;
        strlcpy(s->blocker_query, h->query, sizeof(s->blocker_query));
    } else {
        s->blocker_pid = 0;
        s->blocker_role = InvalidOid;
        s->blocker_app[0] = s->blocker_state[0] = s->blocker_query[0] = '\0';
        s->blocker_xact_start = s->blocker_since = 0;
    }
    LWLockRelease(shared_lock);
}

}  // namespace

void define_lock_wait_settings(void)
{
    DefineCustomEnumVariable(
        "safe_migrate.lock_strategy",
        "How a migration takes a lock that conflicts with the application's queries.",
        "wait: look at the holders first, wait outside the lock queue while a long-lived "
        "one is there, then ask with lock_timeout = safe_migrate.lock_wait_max_stall. "
        "retry: ask with safe_migrate.lock_timeout and retry with backoff "
        "(safe_migrate.lock_retries).",
        &lock_strategy, kLockStrategyWait, strategy_options, PGC_USERSET, 0, nullptr, nullptr,
        nullptr);
    DefineCustomIntVariable(
        "safe_migrate.lock_wait_max_stall",
        "The longest the application may queue behind a migration's lock request.",
        "With lock_strategy = wait, a migration asks for a lock that conflicts with the "
        "application only when no holder's transaction is older than this, and with this "
        "lock_timeout; holders older than this are waited for outside the lock queue.",
        &lock_wait_max_stall_ms, 20, 1, 60000, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr,
        nullptr);
    DefineCustomIntVariable(
        "safe_migrate.lock_wait_deadline",
        "How long a migration step waits for its locks (lock_strategy = wait) before it gives up.",
        nullptr, &lock_wait_deadline_ms, 10 * 60 * 1000, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS,
        nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "safe_migrate.lock_wait_cancel_after",
        "Cancel a session that blocks a migration's lock for this long (-1: never).",
        "Only read-only client sessions holding no lock of SHARE or stronger are cancelled "
        "(terminated when idle in transaction); each one is recorded in the migration's "
        "warnings in safe_migrate.history.",
        &lock_wait_cancel_after_ms, -1, -1, INT_MAX, PGC_SUSET, GUC_UNIT_MS, nullptr, nullptr,
        nullptr);
}

void request_lock_wait_shmem(void)
{
    prev_shmem_request = shmem_request_hook;
    shmem_request_hook = request_shmem;
    prev_shmem_startup = shmem_startup_hook;
    shmem_startup_hook = startup_shmem;
}

void lock_wait_prepare(LockWait *w, RawStmt **stmts, int n, MemoryContext cxt, bool withdraw_xmin)
{
    memset(w, 0, sizeof(*w));
    w->cxt = cxt;
    w->withdraw_xmin = withdraw_xmin;
    w->blocker_target = -1;
    w->version = MemoryContextStrdup(cxt, policy::migration.version ? policy::migration.version
                                                                    : "(unnamed)");
    if (lock_strategy != kLockStrategyWait)
        return;
    MemoryContext old = MemoryContextSwitchTo(cxt);
    List *relids = NIL, *modes = NIL;
    bool conflicting = false;
    for (int i = 0; i < n; i++) {
        List *r = NIL, *m = NIL;
        policy::statement_locks(stmts[i]->stmt, &r, &m);
        ListCell *rc, *mc;
        forboth (rc, r, mc, m) {
            int mode = lfirst_int(mc);
            /* SHARE and stronger conflict with writes (ACCESS EXCLUSIVE with
             * reads too): the application's traffic */
            if (mode < ShareLock)
                continue;
            conflicting = true;
            Oid relid = lfirst_oid(rc);
            /* a statement on a partitioned (or inherited) table locks the
             * children too */
            List *all = get_rel_relkind(relid) == RELKIND_INDEX
                            ? list_make1_oid(relid)
                            : find_all_inheritors(relid, NoLock, nullptr);
            ListCell *ac;
            foreach (ac, all) {
                relids = lappend_oid(relids, lfirst_oid(ac));
                modes = lappend_int(modes, mode);
            }
        }
    }
    /* a statement whose tables do not exist yet conflicts with nobody; one
     * on a table we know gets the short lock_timeout */
    w->active = conflicting;
    w->n = list_length(relids);
    w->relids = (Oid *) palloc0(sizeof(Oid) * (w->n + 1));
    w->modes = (int *) palloc0(sizeof(int) * (w->n + 1));
    w->names = (char **) palloc0(sizeof(char *) * (w->n + 1));
    for (int i = 0; i < w->n; i++) {
        w->relids[i] = list_nth_oid(relids, i);
        w->modes[i] = list_nth_int(modes, i);
        char *nsp = get_namespace_name(get_rel_namespace(w->relids[i]));
        char *rel = get_rel_name(w->relids[i]);
        w->names[i] = nsp && rel ? quote_qualified_identifier(nsp, rel)
                                 : psprintf("(relation %u)", w->relids[i]);
    }
    MemoryContextSwitchTo(old);
    w->started = GetCurrentTimestamp();
}

int lock_wait_timeout(const LockWait *w, int fallback)
{
    return w->active ? lock_wait_max_stall_ms : fallback;
}

ErrorData *lock_wait_outside_queue(LockWait *w)
{
    if (!w->active || w->n == 0)
        return nullptr;
    MemoryContext poll_cxt =
        AllocSetContextCreate(CurrentMemoryContext, "safe_migrate lock wait", ALLOCSET_SMALL_SIZES);
    int max = MaxBackends + max_prepared_xacts + 1;
    ErrorData *result = nullptr;
    bool reported_wait = false;
    for (;;) {
        /* a cancel a lock timeout hid (cancel.hpp) ends the wait */
        pg::check_hidden_cancel();
        MemoryContextReset(poll_cxt);
        MemoryContext old = MemoryContextSwitchTo(poll_cxt);
        Holder *holders = (Holder *) palloc(sizeof(Holder) * max);
        TimestampTz now = GetCurrentTimestamp();
        bool status_read = false;
        Holder *longest = nullptr;
        int longest_target = -1;
        for (int t = 0; t < w->n; t++) {
            Holder *mine = holders;
            int k = conflicting_holders(w->relids[t], w->modes[t], mine, max, &status_read);
            for (int i = 0; i < k; i++) {
                if (!is_long_lived(&mine[i], now))
                    continue;
                if (longest == nullptr || holder_age_ms(&mine[i], now) > holder_age_ms(longest, now)) {
                    Holder *keep = (Holder *) palloc(sizeof(Holder));
                    *keep = mine[i];
                    longest = keep;
                    longest_target = t;
                }
            }
        }
        MemoryContextSwitchTo(old);
        if (longest != nullptr && lock_wait_caller_pid != 0 && longest->pid == lock_wait_caller_pid) {
            /* the query that called migrate_apply holds it (SELECT
             * migrate_apply(...) FROM t, or a function that read t first) */
            result = pg::error_data(
                ERRCODE_LOCK_NOT_AVAILABLE,
                psprintf("migration \"%s\" could not lock table %s: the session that called "
                         "the migration holds a conflicting lock on it",
                         w->version, w->names[longest_target]),
                psprintf("The migration runs in a background runner and needs %s on %s; the "
                         "calling session (pid %d) keeps its lock until its statement ends, "
                         "which waits for the migration.",
                         mode_name(w->modes[longest_target]), w->names[longest_target],
                         longest->pid),
                "Call migrate_apply or migrate_rollback in a statement of its own that reads "
                "no table of the migration.");
            break;
        }
        if (longest == nullptr) {
            /* only short-lived holders, or none: ask for the locks */
            if (reported_wait) {
                publish(w, nullptr);
                w->published_pid = 0;
            }
            break;
        }
        if (longest->pid != w->blocker_pid || longest->lxid != w->blocker_lxid) {
            /* a new blocker: say so */
            w->blocker_pid = longest->pid;
            w->blocker_lxid = longest->lxid;
            w->blocker_since = now;
            w->blocker_target = longest_target;
            w->cancelled_blocker = false;
            old = MemoryContextSwitchTo(w->cxt);
            if (w->blocker_text)
                pfree(w->blocker_text);
            w->blocker_text = describe_holder(longest, now, GetUserId());
            if (w->blocker_holder == nullptr)
                w->blocker_holder = palloc(sizeof(Holder));
            MemoryContextSwitchTo(old);
        }
        /* a NOTICE when the blocker changes, at most one a second (a stream
         * of long-ish transactions would flood the client; the view always
         * has the current one) */
        if ((longest->pid != w->noticed_pid || longest->lxid != w->noticed_lxid) &&
            (w->noticed_at == 0 || TimestampDifferenceMilliseconds(w->noticed_at, now) >= 1000)) {
            w->noticed_pid = longest->pid;
            w->noticed_lxid = longest->lxid;
            w->noticed_at = now;
            ereport(NOTICE,
                    (errmsg("migration \"%s\" waits for %s to end before it locks table %s",
                            w->version, psprintf("session %d", longest->pid),
                            w->names[longest_target]),
                     errdetail("It needs %s and waits outside the lock queue: queries on the "
                               "table are not held up meanwhile. Blocker: %s",
                               mode_name(w->modes[longest_target]), w->blocker_text),
                     errhint("See safe_migrate.lock_waits; the migration gives up after "
                             "safe_migrate.lock_wait_deadline.")));
        }
        if (longest->pid != w->published_pid || longest->lxid != w->published_lxid ||
            (int) longest->state != w->published_state) {
            w->published_pid = longest->pid;
            w->published_lxid = longest->lxid;
            w->published_state = (int) longest->state;
            publish(w, longest);
            reported_wait = true;
            /* a runner's pg_stat_activity says what it does (the caller's
             * keeps its own query) */
            if (!IsTransactionState())
                pgstat_report_activity(STATE_RUNNING,
                                       psprintf("safe_migrate: migration \"%s\" waits for "
                                                "session %d before locking %s",
                                                w->version, longest->pid,
                                                w->names[longest_target]));
        }
        /* the latest look at it (its state and query change) */
        *(Holder *) w->blocker_holder = *longest;
        maybe_cancel_autovacuum(w, longest, now);
        (void) maybe_cancel(w, longest, now);
        if (TimestampDifferenceMilliseconds(w->started, now) >= lock_wait_deadline_ms) {
            result = deadline_error(w);
            break;
        }
        /* nothing of ours keeps an xmin while we wait */
        drop_xmin(w);
        /* until it ends, or the next look (its state, a cancellation, the
         * deadline) */
        long left = lock_wait_deadline_ms - TimestampDifferenceMilliseconds(w->started, now);
        int slice = (int) Max(1, Min(left, (long) kSliceMs));
        wait_for_holder(w, longest, slice);
    }
    MemoryContextDelete(poll_cxt);
    return result;
}

ErrorData *lock_wait_after_timeout(LockWait *w, ErrorData *timeout)
{
    (void) timeout;
    /* the lock timeout may have hidden a cancel (cancel.hpp) */
    if (ErrorData *cancel = pg::hidden_cancel())
        return cancel;
    w->timeouts++;
    TimestampTz now = GetCurrentTimestamp();
    if (TimestampDifferenceMilliseconds(w->started, now) >= lock_wait_deadline_ms) {
        w->blocker_pid = 0; /* no single blocker: short ones in a row */
        return deadline_error(w);
    }
    if (my_slot >= 0 || w->timeouts >= 3) {
        publish(w, nullptr);
        w->published_pid = 0;
    }
    /* a short pause, longer after each timeout in a row (a holder we do not
     * see, a stream of overlapping transactions), at most 1 s */
    int pause = w->timeouts <= 1 ? 1 : Min(1000, lock_wait_max_stall_ms * (1 << Min(w->timeouts - 1, 10)) / 4);
    drop_xmin(w);
    return pause_for_retry(pause, nullptr);
}

ErrorData *pause_for_retry(int ms, const char *notice, const char *notice_detail)
{
    if (ErrorData *cancel = pg::hidden_cancel())
        return cancel;
    MemoryContext cxt = CurrentMemoryContext;
    ErrorData *volatile failure = nullptr;
    PG_TRY();
    {
        /* (a NOTICE checks for interrupts as it is sent, as the sleep
         * does: a cancel here ends the migration, recorded like any) */
        if (notice)
            ereport(NOTICE, (errmsg_internal("%s", notice),
                             notice_detail ? errdetail_internal("%s", notice_detail) : 0));
        pg::sleep_ms(ms);
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(cxt);
        failure = CopyErrorData();
        FlushErrorState();
    }
    PG_END_TRY();
    if (failure == nullptr)
        failure = pg::hidden_cancel();
    return failure;
}

ErrorData *pause_before_retry(const ErrorData *failure, int statement, int retry, int retries,
                              int base_delay_ms)
{
    bool deadlock = failure->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED;
    int delay = pg::lock_retry_delay_ms(retry, base_delay_ms);
    /* a deadlock's message is generic; its DETAIL names the processes */
    const char *why = deadlock && failure->detail ? failure->detail : failure->message;
    return pause_for_retry(delay,
                           psprintf("%s on statement %d of the migration, retry %d of %d in %d ms",
                                    deadlock ? "deadlock" : "lock timeout", statement, retry,
                                    retries, delay),
                           why);
}

void lock_wait_done(LockWait *w)
{
    (void) w;
    release_slot();
}

char *describe_lock_blockers(Oid relid, LOCKMODE mode)
{
    if (!OidIsValid(relid) || mode == NoLock)
        return nullptr;
    int max = MaxBackends + max_prepared_xacts + 1;
    Holder *holders = (Holder *) palloc(sizeof(Holder) * max);
    bool status_read = false;
    List *all = find_all_inheritors(relid, NoLock, nullptr);
    StringInfoData buf;
    initStringInfo(&buf);
    TimestampTz now = GetCurrentTimestamp();
    ListCell *lc;
    foreach (lc, all) {
        int k = conflicting_holders(lfirst_oid(lc), mode, holders, max, &status_read);
        for (int i = 0; i < k; i++) {
            if (buf.len > 0)
                appendStringInfoString(&buf, "; ");
            appendStringInfoString(&buf, describe_holder(&holders[i], now, GetUserId()));
        }
    }
    return buf.len > 0 ? buf.data : nullptr;
}

}  // namespace safe_migrate::runner

using namespace safe_migrate::runner;

/* safe_migrate.lock_waits_raw(): the shared slots, for the view */
extern "C" {
PGDLLEXPORT Datum safe_migrate_lock_waits(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(safe_migrate_lock_waits);
}

Datum safe_migrate_lock_waits(PG_FUNCTION_ARGS)
{
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
    if (shared == nullptr)
        return (Datum) 0;
    WaitSlot *copy = (WaitSlot *) palloc(sizeof(WaitSlot) * kSlots);
    LWLockAcquire(shared_lock, LW_SHARED);
    memcpy(copy, shared->slots, sizeof(WaitSlot) * kSlots);
    LWLockRelease(shared_lock);
    for (int i = 0; i < kSlots; i++) {
        WaitSlot *s = &copy[i];
        if (s->pid == 0 || s->database != MyDatabaseId || BackendPidGetProc(s->pid) == nullptr)
            continue;
        Datum values[16];
        bool nulls[16];
        memset(nulls, 0, sizeof(nulls));
        values[0] = CStringGetTextDatum(s->version);
        values[1] = Int32GetDatum(s->pid);
        values[2] = ObjectIdGetDatum(s->role);
        values[3] = ObjectIdGetDatum(s->relid);
        values[4] = CStringGetTextDatum(s->relation);
        values[5] = CStringGetTextDatum(mode_name(s->mode));
        values[6] = CStringGetTextDatum(s->waiting ? "waiting for blocker" : "trying");
        values[7] = TimestampTzGetDatum(s->since);
        values[8] = Int32GetDatum(s->attempts);
        values[9] = Int32GetDatum(s->blocker_pid);
        values[10] = ObjectIdGetDatum(s->blocker_role);
        values[11] = CStringGetTextDatum(s->blocker_app);
        values[12] = CStringGetTextDatum(s->blocker_state);
        values[13] = TimestampTzGetDatum(s->blocker_xact_start);
        values[14] = CStringGetTextDatum(s->blocker_query);
        values[15] = TimestampTzGetDatum(s->blocker_since);
        if (s->blocker_pid == 0)
            for (int c = 9; c <= 15; c++)
                nulls[c] = true;
        if (s->blocker_xact_start == 0)
            nulls[13] = true;
        /* the blocker's state, transaction start and query: as
         * pg_stat_activity shows them (to roles that may see that session),
         * and to admins */
        if (s->blocker_pid != 0 && !may_see_query(GetUserId(), s->blocker_role))
            nulls[12] = nulls[13] = nulls[14] = true;
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum) 0;
}
