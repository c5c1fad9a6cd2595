/*
 * subxact.hpp — run PostgreSQL code in an internal subtransaction and get
 * its error back as data instead of a longjmp (the PL/pgSQL EXCEPTION block
 * pattern).
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
}

namespace safe_migrate::pg {

/* Run fn() in a subtransaction: NULL when it succeeded, else the error (a
 * copy in the caller's memory context).  The subtransaction is rolled back
 * after an error, and also after success when keep is false (code run only
 * to read something: what it locked or opened goes with it); what fn()
 * allocated in the caller's memory context stays.  fn must be a lambda
 * whose captures need no destructor. */
template <typename Fn>
ErrorData *run_in_subtransaction(Fn fn, bool keep)
{
    MemoryContext cxt = CurrentMemoryContext;
    ResourceOwner owner = CurrentResourceOwner;
    ErrorData *volatile failure = nullptr;
    BeginInternalSubTransaction(nullptr);
    MemoryContextSwitchTo(cxt);
    PG_TRY();
    {
        fn();
        if (keep)
            ReleaseCurrentSubTransaction();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(cxt);
        failure = CopyErrorData();
        FlushErrorState();
        RollbackAndReleaseCurrentSubTransaction();
    }
    PG_END_TRY();
    if (!keep && failure == nullptr)
        RollbackAndReleaseCurrentSubTransaction();
    MemoryContextSwitchTo(cxt);
    CurrentResourceOwner = owner;
    return failure;
}

/* fn() in a subtransaction kept when it succeeds (the PL/pgSQL EXCEPTION
 * block pattern). */
template <typename Fn>
ErrorData *in_subtransaction(Fn fn)
{
    return run_in_subtransaction(fn, true);
}

/* fn() in a subtransaction rolled back whatever happens. */
template <typename Fn>
ErrorData *in_rolled_back_subtransaction(Fn fn)
{
    return run_in_subtransaction(fn, false);
}

/* A cancel (pg_cancel_backend, statement_timeout) caught as the error of
 * code whose failure only changes a judgement must still end the statement:
 * asked for again here, it is raised at the next CHECK_FOR_INTERRUPTS(). */
inline void keep_cancel(const ErrorData *e)
{
    if (e != nullptr && e->sqlerrcode == ERRCODE_QUERY_CANCELED) {
        QueryCancelPending = true;
        InterruptPending = true;
    }
}

}  // namespace safe_migrate::pg
