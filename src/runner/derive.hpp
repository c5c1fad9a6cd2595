/*
 * derive.hpp — down scripts derived from parse trees (see derive.cpp).
 *
 * A derived down script names every object schema-qualified, as the up
 * script's statements resolved it when they ran, so that it undoes the same
 * objects whatever the search_path of the session that rolls back.  The
 * names are resolved against the catalogs, hence the two calls:
 *
 *   1. capture_name_resolution(), BEFORE the first statement of the up script
 *      runs, in a transaction, as the role that runs the statements and with
 *      the search_path they run with (never inside pg::elevate, whose pinned
 *      search_path and bootstrap superuser are not the applier's);
 *
 *   2. derive_down_script(up, captured, &why), AFTER the last statement ran
 *      (and committed, for a script run in several transactions), in a
 *      transaction, again as that role with that search_path (again not
 *      inside pg::elevate).
 *
 * If the role or the effective search path differ between the two calls
 * (a SET in a function the script called, a schema created or made usable on
 * the way, a call site inside the elevation...) no script is derived.
 */
#pragma once

extern "C" {
#include "postgres.h"
}

namespace safe_migrate::runner {

/* How unqualified names resolve: the role and the effective search path
 * (schema OIDs, implicit ones included) and the creation schema.  Allocated
 * in CurrentMemoryContext: take it in a context that lives until the
 * derivation (the runner's migration context, not a transaction's). */
struct NameResolution {
    Oid role;
    Oid creation_namespace; /* InvalidOid: no schema to create in */
    int n_path;
    Oid *path;
};

/* Call 1: must run in a transaction; never errors but for out-of-memory. */
NameResolution *capture_name_resolution(void);

/* Call 2: the reverse of the up script, newest statement first, every name
 * schema-qualified, or NULL with the reason (in CurrentMemoryContext) when
 * some statement has no certain reverse or some name cannot be resolved with
 * certainty.  Must run in a transaction; a catalog error while deriving is
 * turned into NULL and a reason (query cancel and shutdown are re-thrown). */
char *derive_down_script(const char *up, const NameResolution *at_apply, const char **reason);

}  // namespace safe_migrate::runner
