/*
 * guard.cpp — the C++/PostgreSQL error boundary (see guard.hpp).
 */
#include "guard.hpp"

namespace safe_migrate::pg {

ErrorData *take_current_error(MemoryContext into) noexcept
{
    /* CopyErrorData refuses to run in ErrorContext. */
    MemoryContext old = MemoryContextSwitchTo(into == ErrorContext ? TopMemoryContext : into);
    ErrorData *edata = CopyErrorData();
    FlushErrorState();
    MemoryContextSwitchTo(old);
    return edata;
}

ErrorData *error_data(int sqlstate, const char *message, const char *detail, const char *hint)
{
    MemoryContext cxt = CurrentMemoryContext;
    ErrorData *volatile e = nullptr;
    PG_TRY();
    {
        ereport(ERROR, (errcode(sqlstate), errmsg_internal("%s", message),
                        detail ? errdetail_internal("%s", detail) : 0,
                        hint ? errhint("%s", hint) : 0));
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(cxt);
        e = CopyErrorData();
        FlushErrorState();
    }
    PG_END_TRY();
    return e;
}

void raise_caught(const CaughtError &caught)
{
    if (caught.pg_error)
        ReThrowError(caught.pg_error);
    ereport(ERROR, (errcode(caught.sqlstate), errmsg("%s", caught.message)));
    pg_unreachable();
}

void throw_error(int sqlstate, const char *message, const char *detail, const char *hint)
{
    /* Build the ErrorData without going through errstart/errfinish so that
     * nothing longjmps here: allocate in the current context. */
    ErrorData *edata = static_cast<ErrorData *>(
        MemoryContextAllocExtended(CurrentMemoryContext, sizeof(ErrorData),
                                   MCXT_ALLOC_NO_OOM | MCXT_ALLOC_ZERO));
    if (edata == nullptr)
        throw std::bad_alloc();
    auto dup = [](const char *s) -> char * {
        if (s == nullptr)
            return nullptr;
        size_t n = strlen(s) + 1;
        char *p = static_cast<char *>(
            MemoryContextAllocExtended(CurrentMemoryContext, n, MCXT_ALLOC_NO_OOM));
        if (p == nullptr)
            throw std::bad_alloc();
        memcpy(p, s, n);
        return p;
    };
    edata->elevel = ERROR;
    edata->output_to_server = true;
    edata->output_to_client = true;
    edata->sqlerrcode = sqlstate;
    edata->message = dup(message);
    edata->detail = dup(detail);
    edata->hint = dup(hint);
    edata->filename = "safe_migrate";
    edata->funcname = "safe_migrate";
    edata->assoc_context = CurrentMemoryContext;
    throw PgError(edata);
}

}  // namespace safe_migrate::pg
