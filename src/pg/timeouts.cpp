/*
 * timeouts.cpp — see timeouts.hpp.
 */
#include "timeouts.hpp"

extern "C" {
#include "storage/proc.h"
#include "utils/timeout.h"
}

namespace safe_migrate::pg {

void arm_statement_timeout(StatementTimer *saved)
{
    saved->outer_active = get_timeout_active(STATEMENT_TIMEOUT);
    saved->outer_finish = saved->outer_active ? get_timeout_finish_time(STATEMENT_TIMEOUT) : 0;
    if (StatementTimeout <= 0)
        return;
    TimestampTz mine = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), StatementTimeout);
    if (saved->outer_active && saved->outer_finish <= mine)
        return; /* the caller's deadline comes first */
    enable_timeout_at(STATEMENT_TIMEOUT, mine);
}

void restore_statement_timeout(const StatementTimer *saved)
{
    /* a caller's deadline already past has fired (it is the error being
     * handled): arming it again would cancel the handling too */
    if (saved->outer_active && saved->outer_finish > GetCurrentTimestamp())
        enable_timeout_at(STATEMENT_TIMEOUT, saved->outer_finish);
    else if (get_timeout_active(STATEMENT_TIMEOUT))
        disable_timeout(STATEMENT_TIMEOUT, false);
}

}  // namespace safe_migrate::pg
