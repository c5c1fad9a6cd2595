/*
 * compat.cpp — the API differences of compat.hpp that need headers the rest
 * of the code should not see.
 */
#include "pg/compat.hpp"

extern "C" {
#include "pgstat.h"
#if PG_VERSION_NUM >= 160000
#include "utils/pgstat_internal.h"
#endif
}

namespace safe_migrate::pg::compat {

PgStat_TableStatus *pending_tabstat(Oid relid)
{
#if PG_VERSION_NUM >= 160000
    /* find_tabstat_entry returns a copy without the per-level counts
     * (trans) since 16: the pending entry itself has them */
    PgStat_EntryRef *ref = pgstat_fetch_pending_entry(PGSTAT_KIND_RELATION, MyDatabaseId, relid);
    if (ref == nullptr)
        ref = pgstat_fetch_pending_entry(PGSTAT_KIND_RELATION, InvalidOid, relid);
    return ref != nullptr ? (PgStat_TableStatus *) ref->pending : nullptr;
#else
    return find_tabstat_entry(relid);
#endif
}

void pending_reads(Oid relid, int64 *returned, int64 *fetched)
{
    *returned = 0;
    *fetched = 0;
    PgStat_TableStatus *ts = pending_tabstat(relid);
    if (ts == nullptr)
        return;
#if PG_VERSION_NUM >= 160000
    *returned = ts->counts.tuples_returned;
    *fetched = ts->counts.tuples_fetched;
#else
    *returned = ts->t_counts.t_tuples_returned;
    *fetched = ts->t_counts.t_tuples_fetched;
#endif
}

}  // namespace safe_migrate::pg::compat
