/*
 * backfill.hpp — throttled, crash-safe batch backfills run by background
 * workers.
 *
 * Three kinds of process (launcher.cpp, scout.cpp, worker.cpp):
 *  - the launcher (static background worker, needs shared_preload_libraries)
 *    connects to no database; it dispatches;
 *  - a scout per database, started by the launcher when the database may
 *    have jobs (server start, a submission, a resume, a worker's end, a
 *    periodic recheck): it reads the job table, and nothing else runs in it,
 *    and reports the jobs that should run;
 *  - a worker per job, connected as the job's owner: it walks the job's
 *    table by key in batches, each batch its own transaction that also
 *    commits the job's progress.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "nodes/nodes.h"
}

namespace safe_migrate::backfill {

/* _PG_init, while shared_preload_libraries is being processed */
void register_launcher(void);

/* _PG_init, always: safe_migrate.backfill_latency_budget (pacing.hpp) */
void define_settings(void);

/* Is the launcher's shared memory there (i.e. was the library preloaded)? */
bool available(void);

/* Ask the launcher to look for jobs to run in this database. */
void wake_launcher(Oid database);

/* Wake the worker of a job at once (its status was changed by a control). */
void poke_job(Oid database, int64 job);

/* Does the analyzed expression use an object of a temporary schema (a
 * table, function, operator or type)?  Another session cannot see it. */
bool uses_temporary_object(Node *expr);

/* ---- for the scout ---- */

/* Report a job that should run; false if the launcher's queue is full. */
bool report_job(Oid database, int64 job, Oid owner);

/* ---- for the job worker ---- */

/* What the launcher passes a job worker (in bgw_extra). */
struct WorkerArgs {
    Oid database;
    Oid owner;
    int64 job;
    int slot;
};

/* Before connecting: the slot is marked free when the process exits,
 * however it exits (args must stay valid for the process's lifetime). */
void worker_begin(const WorkerArgs *args);
/* The worker has connected: record its latch for poke_job. */
void worker_attach(const WorkerArgs *args);
/* The worker ends normally (its job's state is recorded). */
void worker_done(const WorkerArgs *args);
/* Wait up to ms milliseconds; true if a control poked the job meanwhile
 * (then the caller looks at the job's status before going on). */
bool worker_sleep(const WorkerArgs *args, long ms);
/* Has a control poked the job (and not been seen yet)?  Reads the slot
 * without its lock: callable from a signal (timeout) handler. */
bool worker_poked_now(const WorkerArgs *args);

/* Has this database the extension, at a version with backfills?  Needs a
 * transaction (catalog lookups). */
bool jobs_table_exists(void);

extern "C" PGDLLEXPORT void safe_migrate_backfill_launcher_main(Datum arg);
extern "C" PGDLLEXPORT void safe_migrate_backfill_scout_main(Datum arg);
extern "C" PGDLLEXPORT void safe_migrate_backfill_worker_main(Datum arg);

}  // namespace safe_migrate::backfill
