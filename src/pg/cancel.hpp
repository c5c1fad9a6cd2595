/*
 * cancel.hpp — cancels that a lock timeout would hide.
 *
 * PostgreSQL delivers a lock timeout, a statement timeout and a cancel
 * request (pg_cancel_backend, a client's cancel, a migration's caller
 * stopping its runner) the same way: as SIGINT, read by the next
 * CHECK_FOR_INTERRUPTS.  When a lock timeout and a cancel are both pending
 * there, ProcessInterrupts reports the lock timeout and the cancel is gone.
 * A plain statement then fails anyway; a migration that waits for a lock in
 * slices of lock_timeout, or retries after a lock timeout, would go on
 * waiting as if nobody had asked it to stop (it happened: a runner whose
 * caller had given up applied the migration seconds later).
 *
 * So a backend that waits that way watches: a SIGINT sent by another
 * process (our own timers signal ourselves) is remembered until the watch
 * starts again, and the deadline of the statement it serves is known.
 * Where a lock timeout is absorbed, hidden_cancel() says whether it hid one.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "utils/elog.h"
#include "utils/timestamp.h"
}

namespace safe_migrate::pg {

/* Start watching (again): forget earlier cancels; statement_deadline is when
 * the statement this backend serves times out (0: never). */
void watch_cancels(TimestampTz statement_deadline);

/* The error a hidden cancel stands for (57014: a cancel request, or the
 * statement's deadline passed), or NULL.  Never throws; the error is
 * allocated in CurrentMemoryContext. */
ErrorData *hidden_cancel(void);

/* The same, raised. */
void check_hidden_cancel(void);

}  // namespace safe_migrate::pg
