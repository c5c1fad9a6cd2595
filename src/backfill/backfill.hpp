/*
 * backfill.hpp — throttled, crash-safe batch backfills run by background
 * workers.
 *
 * A launcher (static background worker, needs shared_preload_libraries)
 * starts one worker per database that may have jobs; the worker walks each
 * job's table by primary key in batches, each batch its own transaction that
 * also commits the job's progress, as the role that submitted the job.
 */
#pragma once

extern "C" {
#include "postgres.h"
}

namespace safe_migrate::backfill {

/* _PG_init, while shared_preload_libraries is being processed */
void register_launcher(void);

/* Is the launcher's shared memory there (i.e. was the library preloaded)? */
bool available(void);

/* Ask the launcher to make sure a worker serves this database. */
void wake_launcher(Oid database);

extern "C" PGDLLEXPORT void safe_migrate_backfill_launcher_main(Datum arg);
extern "C" PGDLLEXPORT void safe_migrate_backfill_worker_main(Datum arg);

}  // namespace safe_migrate::backfill
