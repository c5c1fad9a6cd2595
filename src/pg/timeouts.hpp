/*
 * timeouts.hpp — statement_timeout for each statement of a migration that
 * runs inside the caller's statement (SELECT migrate_apply(...)).
 *
 * PostgreSQL arms the statement timer once per top-level statement; a
 * script's `SET statement_timeout` would otherwise only apply to the
 * caller's next query.  Each statement of the script gets the timer as it
 * would in a multi-statement query: statement_timeout from its start, with
 * the value current when it starts, and never later than the caller's own
 * deadline.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "utils/timestamp.h"
}

namespace safe_migrate::pg {

struct StatementTimer {
    bool outer_active;       /* the caller's statement timer was running */
    TimestampTz outer_finish; /* and fires then */
};

/* Before a statement: arm the timer; remember the caller's. */
void arm_statement_timeout(StatementTimer *saved);
/* After it (also after an error): put the caller's timer back. */
void restore_statement_timeout(const StatementTimer *saved);

}  // namespace safe_migrate::pg
