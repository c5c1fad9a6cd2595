/*
 * guard.hpp — the one layer that owns the C++/PostgreSQL error boundary.
 *
 * Two directions, two tools:
 *
 *  - PostgreSQL -> C++: pg::call(f, args...) runs a PostgreSQL function that
 *    may ereport(ERROR) under PG_TRY.  If it does, the ErrorData is copied,
 *    the error state is flushed and a pg::PgError C++ exception is thrown, so
 *    the C++ frames above unwind normally (destructors run).
 *
 *  - C++ -> PostgreSQL: SM_ENTRY(name, impl) defines an extern "C"
 *    SQL-callable function whose body `impl` is C++.  Any exception leaving
 *    `impl` is caught; once every C++ frame of `impl` is gone, a PgError is
 *    re-raised as the original PostgreSQL error (same SQLSTATE, detail, hint)
 *    and any other exception becomes ERRCODE_INTERNAL_ERROR (or
 *    ERRCODE_OUT_OF_MEMORY for std::bad_alloc).
 *
 * Rule for the rest of the code: a frame that owns a C++ object with a
 * non-trivial destructor must not call an ereport-ing PostgreSQL function
 * directly; it calls it through pg::call.  Frames that are plain C-style
 * (PostgreSQL data only) may call PostgreSQL directly.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

#include <exception>
#include <new>
#include <utility>

namespace safe_migrate::backfill {
/* pacing.cpp: this transaction ran safe_migrate's own functions */
void latency_not_application(void) noexcept;
}  // namespace safe_migrate::backfill

namespace safe_migrate::pg {

/* A PostgreSQL error carried through C++ frames.  Owns a copy of the
 * ErrorData allocated in a memory context that outlives the unwinding. */
class PgError : public std::exception {
  public:
    explicit PgError(ErrorData *edata) noexcept : edata_(edata) {}
    const char *what() const noexcept override
    {
        return edata_ && edata_->message ? edata_->message : "PostgreSQL error";
    }
    ErrorData *data() const noexcept { return edata_; }

  private:
    ErrorData *edata_;
};

/* Copy the current error (we are in a PG_CATCH) and flush it.  Never
 * ereports: on failure to copy we still have a generic message. */
ErrorData *take_current_error(MemoryContext into) noexcept;

/* An error to report later (to fail with, to record), made by ereport so
 * that it carries what any error does; allocated in CurrentMemoryContext.
 * Returns it, never raises it. */
ErrorData *error_data(int sqlstate, const char *message, const char *detail = nullptr,
                      const char *hint = nullptr);

/*
 * Run fn(args...) -- a PostgreSQL call -- turning an ereport(ERROR) into a
 * PgError exception.  fn must be a plain function or a lambda without
 * captures of objects with destructors.  The result is copied out of the
 * PG_TRY frame before any C++ unwinding happens.
 */
template <typename Fn, typename... Args>
auto call(Fn fn, Args... args) -> decltype(fn(args...))
{
    using Result = decltype(fn(args...));
    MemoryContext caller_cxt = CurrentMemoryContext;
    ErrorData *volatile failure = nullptr;
    if constexpr (std::is_void_v<Result>) {
        PG_TRY();
        {
            fn(args...);
        }
        PG_CATCH();
        {
            failure = take_current_error(caller_cxt);
        }
        PG_END_TRY();
        if (failure)
            throw PgError(failure);
    } else {
        Result result{};
        PG_TRY();
        {
            result = fn(args...);
        }
        PG_CATCH();
        {
            failure = take_current_error(caller_cxt);
        }
        PG_END_TRY();
        if (failure)
            throw PgError(failure);
        return result;
    }
}

/* What an entry point caught, in plain data that survives the catch. */
struct CaughtError {
    ErrorData *pg_error = nullptr; /* a PostgreSQL error to re-raise as is */
    int sqlstate = 0;              /* else: this SQLSTATE */
    char message[1024] = {0};      /* and this message */
};

/* Raise what was caught.  Called only after the C++ frames are gone. */
[[noreturn]] void raise_caught(const CaughtError &caught);

/* Run impl under a catch-all; returns true if it completed. */
template <typename Impl>
bool run_guarded(Impl &&impl, CaughtError &caught) noexcept
{
    try {
        impl();
        return true;
    } catch (const PgError &e) {
        caught.pg_error = e.data();
    } catch (const std::bad_alloc &) {
        caught.sqlstate = ERRCODE_OUT_OF_MEMORY;
        strlcpy(caught.message, "out of memory in safe_migrate", sizeof(caught.message));
    } catch (const std::exception &e) {
        caught.sqlstate = ERRCODE_INTERNAL_ERROR;
        strlcpy(caught.message, e.what(), sizeof(caught.message));
    } catch (...) {
        caught.sqlstate = ERRCODE_INTERNAL_ERROR;
        strlcpy(caught.message, "unknown C++ exception in safe_migrate", sizeof(caught.message));
    }
    return false;
}

/* Throw a PostgreSQL-style error from C++ code (becomes ereport at the
 * boundary). */
[[noreturn]] void throw_error(int sqlstate, const char *message, const char *detail = nullptr,
                              const char *hint = nullptr);

}  // namespace safe_migrate::pg

/*
 * Define an SQL-callable function whose body is C++.  The body is a lambda
 * `[&]() -> void` that assigns `result`; the Datum returned is `result`.
 */
#define SM_ENTRY(fname)                                                             \
    static Datum fname##_impl(FunctionCallInfo fcinfo);                             \
    extern "C" {                                                                    \
    PG_FUNCTION_INFO_V1(fname);                                                     \
    Datum fname(PG_FUNCTION_ARGS);                                                  \
    }                                                                               \
    Datum fname(PG_FUNCTION_ARGS)                                                   \
    {                                                                               \
        safe_migrate::pg::CaughtError caught;                                      \
        Datum result = (Datum) 0;                                                   \
        safe_migrate::backfill::latency_not_application();                         \
        if (safe_migrate::pg::run_guarded([&] { result = fname##_impl(fcinfo); }, \
                                          caught))                                  \
            return result;                                                          \
        safe_migrate::pg::raise_caught(caught);                                    \
    }                                                                               \
    static Datum fname##_impl(FunctionCallInfo fcinfo)
