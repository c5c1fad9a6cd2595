/*
 * privileged.cpp — see privileged.hpp.
 */
#include "privileged.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
}

namespace safe_migrate::pg {

void require_transaction(const char *what)
{
    if (!IsTransactionState())
        ereport(ERROR,
                (errcode(ERRCODE_INTERNAL_ERROR),
                 errmsg("safe_migrate: %s outside a transaction", what),
                 errdetail("Catalog lookups need a transaction; this is a bug in safe_migrate.")));
}

void elevate(Elevation *e)
{
    GetUserIdAndSecContext(&e->saved_user, &e->saved_sec);
    SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, e->saved_sec | SECURITY_LOCAL_USERID_CHANGE);
    e->guc_nest = NewGUCNestLevel();
    (void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                             GUC_ACTION_SAVE, true, 0, false);
}

void unelevate(Elevation *e)
{
    AtEOXact_GUC(true, e->guc_nest);
    SetUserIdAndSecContext(e->saved_user, e->saved_sec);
}

int pin_search_path(void)
{
    int nest = NewGUCNestLevel();
    (void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                             GUC_ACTION_SAVE, true, 0, false);
    return nest;
}

void unpin_search_path(int nest)
{
    /* undo every setting changed in the nest level, not only ours */
    AtEOXact_GUC(false, nest);
}

void sleep_ms(int ms)
{
    TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);
    for (;;) {
        long remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);
        if (remaining <= 0)
            break;
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, remaining,
                         PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
}

}  // namespace safe_migrate::pg
