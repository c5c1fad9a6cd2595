/*
 * privileged.hpp — writing the extension's own tables whatever the session's
 * role, and waiting without holding anything.
 *
 * The history and the DDL log are not writable by the roles whose actions
 * they record.  The extension writes them as the bootstrap superuser, with
 * search_path pinned to pg_catalog so no object of the session's can be
 * picked up, inside the current transaction: an abort restores both the
 * user and the setting.
 */
#pragma once

extern "C" {
#include "postgres.h"
}

namespace safe_migrate::pg {

struct Elevation {
    Oid saved_user;
    int saved_sec;
    int guc_nest;
};

/* Catalog and syscache lookups (superuser_arg, role membership, relcache)
 * need a transaction: outside one they crash the process instead of
 * failing.  Functions that look things up call this first, so a caller
 * that forgot its transaction gets an error naming what it tried. */
void require_transaction(const char *what);

void elevate(Elevation *e);
void unelevate(Elevation *e);

/* Our own catalog queries in a user's session: search_path pinned to
 * pg_catalog, pg_temp, so that no function, operator or type of the
 * session's schemas can be picked up (an overload in a schema on the user's
 * path would otherwise run with the rights of whoever called us).  Returns
 * the GUC nest level to pass to unpin_search_path. */
int pin_search_path(void);
void unpin_search_path(int nest);

/* Sleep ms milliseconds on the latch (interruptible); other wakeups of the
 * latch, such as shm_mq traffic, do not cut the sleep short. */
void sleep_ms(int ms);

}  // namespace safe_migrate::pg
