/*
 * core_bridge.hpp — the pure C++ core seen from PostgreSQL code.
 *
 * Every function here is noexcept and never ereports: results are copied
 * into palloc'd memory of the current context (allocated without
 * ereport-on-OOM), failures come back as a message the caller ereports
 * with its own SQLSTATE.  So PostgreSQL-style code can call the core
 * without any C++ object being alive in its frames.
 */
#pragma once

extern "C" {
#include "postgres.h"
}

namespace safe_migrate::pg {

struct PreparedScript {
    char *up;
    char *down;       /* NULL when the script has no down section */
    char *checksum;   /* sha256 hex of the normalised script */
    char *version;    /* the given version, or one derived from the checksum */
    bool dbmate_format;
    int up_first_line;
    int down_first_line;
    int n_allows;
    char **allow_rules;
    char **allow_reasons;
};

/* Split sections, compute checksum, validate or derive the version.
 * version may be NULL.  Returns NULL on success, else an error message. */
const char *prepare_script(const char *script, const char *version, PreparedScript *out) noexcept;

/* Statement classes are core::TxClass values as int. */
struct SegmentPlan {
    int n_segments;
    int *first;
    int *count;
    int *kind;
};

const char *plan_segments(const int *classes, int n, SegmentPlan *out) noexcept;

/* Delay before lock-timeout retry number `attempt` (1-based): exponential
 * from base_ms, capped at 100 * base_ms, with jitter. */
int lock_retry_delay_ms(int attempt, int base_ms) noexcept;

}  // namespace safe_migrate::pg
