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

/* Run fn() in a subtransaction: NULL when it committed, else the error (a
 * copy in the caller's memory context) after rolling it back.  fn must be a
 * lambda whose captures need no destructor. */
template <typename Fn>
ErrorData *in_subtransaction(Fn fn)
{
    MemoryContext cxt = CurrentMemoryContext;
    ResourceOwner owner = CurrentResourceOwner;
    ErrorData *volatile failure = nullptr;
    BeginInternalSubTransaction(nullptr);
    MemoryContextSwitchTo(cxt);
    PG_TRY();
    {
        fn();
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
    MemoryContextSwitchTo(cxt);
    CurrentResourceOwner = owner;
    return failure;
}

/* The same, but the subtransaction is rolled back also when fn() succeeded:
 * for code run only to read something (what it locked or opened is
 * released with it).  What fn() allocated in the caller's memory context
 * stays. */
template <typename Fn>
ErrorData *in_rolled_back_subtransaction(Fn fn)
{
    MemoryContext cxt = CurrentMemoryContext;
    ResourceOwner owner = CurrentResourceOwner;
    ErrorData *volatile failure = nullptr;
    BeginInternalSubTransaction(nullptr);
    MemoryContextSwitchTo(cxt);
    PG_TRY();
    {
        fn();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(cxt);
        failure = CopyErrorData();
        FlushErrorState();
    }
    PG_END_TRY();
    RollbackAndReleaseCurrentSubTransaction();
    MemoryContextSwitchTo(cxt);
    CurrentResourceOwner = owner;
    return failure;
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
