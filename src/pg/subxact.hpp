/*
 * subxact.hpp — run PostgreSQL code in an internal subtransaction and get
 * its error back as data instead of a longjmp (the PL/pgSQL EXCEPTION block
 * pattern).
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "access/xact.h"
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

}  // namespace safe_migrate::pg
