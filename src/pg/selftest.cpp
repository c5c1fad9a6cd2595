/*
 * selftest.cpp — exercises the error boundary from SQL, so the regression
 * suite proves it: errors raised on each side, nested, with C++ objects
 * alive, and memory drawn from a PostgreSQL context.
 */
#include "guard.hpp"
#include "memory.hpp"

extern "C" {
#include "utils/builtins.h"
}

#include <stdexcept>
#include <string>
#include <vector>

namespace {

/* Counts destructor runs of objects alive while PostgreSQL raised an error. */
int destructors_run = 0;

struct Witness {
    ~Witness() { destructors_run++; }
};

void raise_division_by_zero(void)
{
    ereport(ERROR, (errcode(ERRCODE_DIVISION_BY_ZERO), errmsg("boundary test: division by zero"),
                    errdetail("raised by PostgreSQL code"), errhint("caught by pg::call")));
}

int add_or_raise(int a, int b)
{
    if (b == 0)
        raise_division_by_zero();
    return a + b;
}

std::string run(const std::string &kind)
{
    using namespace safe_migrate;
    if (kind == "cpp_exception") {
        Witness w;
        throw std::runtime_error("boundary test: C++ exception");
    }
    if (kind == "bad_alloc") {
        Witness w;
        throw std::bad_alloc();
    }
    if (kind == "pg_error") {
        Witness w;
        pg::call(raise_division_by_zero);
        return "not reached";
    }
    if (kind == "pg_value") {
        return std::to_string(pg::call(add_or_raise, 40, 2));
    }
    if (kind == "nested") {
        /* a PostgreSQL error, caught in C++ two levels down, turned into a
         * C++ error that carries it, rethrown across a second pg::call */
        Witness outer;
        try {
            Witness inner;
            pg::call(add_or_raise, 1, 0);
        } catch (const pg::PgError &e) {
            pg::throw_error(e.data()->sqlerrcode, "boundary test: nested", e.data()->message,
                            "rethrown from C++");
        }
        return "not reached";
    }
    if (kind == "caught_in_cpp") {
        /* a PostgreSQL error handled entirely in C++: the backend is fine */
        try {
            pg::call(raise_division_by_zero);
        } catch (const pg::PgError &e) {
            return std::string("caught: ") + e.what();
        }
        return "not reached";
    }
    if (kind == "pmr") {
        MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "boundary test",
                                                  ALLOCSET_SMALL_SIZES);
        pg::ContextResource resource(cxt);
        std::pmr::vector<std::pmr::string> words(&resource);
        for (int i = 0; i < 1000; i++)
            words.emplace_back("word number " + std::to_string(i) + " padded beyond SSO");
        Size used = MemoryContextMemAllocated(cxt, false);
        std::string out = std::to_string(words.size()) + " strings, context holds " +
                          (used > 1000 * 30 ? "them" : "too little");
        words.clear();
        words.shrink_to_fit();
        MemoryContextDelete(cxt);
        return out;
    }
    if (kind == "destructors") {
        return std::to_string(destructors_run);
    }
    pg::throw_error(ERRCODE_INVALID_PARAMETER_VALUE, ("unknown selftest \"" + kind + "\"").c_str());
}

}  // namespace

SM_ENTRY(safe_migrate_boundary_selftest)
{
    /* PG_GETARG is PostgreSQL code that may ereport: do it before any C++
     * object lives in this frame; pg::call keeps that promise for us. */
    char *kind = safe_migrate::pg::call(
        [](FunctionCallInfo f) { return text_to_cstring(DatumGetTextPP(f->args[0].value)); }, fcinfo);
    std::string result = run(kind);
    return safe_migrate::pg::call([](const char *s) { return PointerGetDatum(cstring_to_text(s)); },
                                  result.c_str());
}
