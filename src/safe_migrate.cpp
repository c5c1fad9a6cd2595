/*
 * safe_migrate.cpp — module entry: settings and registration.
 */
extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
}

#include "backfill/backfill.hpp"
#include "backfill/pacing.hpp"
#include "policy/policy.hpp"
#include "runner/runner.hpp"
#include "runner/lockwait.hpp"

extern "C" {
PG_MODULE_MAGIC;
PGDLLEXPORT void _PG_init(void);
}

namespace safe_migrate::runner {
int lock_timeout_ms = 2000;
int lock_retries = 10;
int lock_retry_delay_ms = 100;
int parallel_maintenance_workers = 0;
}  // namespace safe_migrate::runner

namespace safe_migrate::policy {
/* the DDL log (written in policy/triggers.cpp) */
int ddl_log_max_statement_bytes = 8192;
int ddl_log_retention_min = 30 * 24 * 60;
}  // namespace safe_migrate::policy

void _PG_init(void)
{
    using namespace safe_migrate;

    DefineCustomIntVariable(
        "safe_migrate.lock_timeout",
        "Lock timeout of a migration's statements whose locks the application does not "
        "need, and of every statement with safe_migrate.lock_strategy = retry.",
        "A statement that cannot get its lock within this time is rolled back and retried "
        "with backoff (safe_migrate.lock_retries).  Locks that conflict with the "
        "application's queries (SHARE and stronger) use safe_migrate.lock_wait_max_stall "
        "instead, unless lock_strategy is retry.",
        &runner::lock_timeout_ms, 2000, 1, INT_MAX, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr,
        nullptr);
    DefineCustomIntVariable(
        "safe_migrate.lock_retries",
        "How many times a migration step that hit safe_migrate.lock_timeout is retried.",
        nullptr, &runner::lock_retries, 10, 0, 1000, PGC_USERSET, 0, nullptr, nullptr, nullptr);

    DefineCustomIntVariable(
        "safe_migrate.lock_retry_delay",
        "Delay before the first retry of a migration step that hit safe_migrate.lock_timeout.",
        "Later retries wait exponentially longer (up to 100 times this), with random jitter.",
        &runner::lock_retry_delay_ms, 100, 1, 600000, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr,
        nullptr);

    DefineCustomIntVariable(
        "safe_migrate.parallel_maintenance_workers",
        "Parallel workers a migration step may use for an index build (max_parallel_maintenance_workers).",
        "0 builds each index in one process, leaving the other CPUs to the application; "
        "-1 keeps the server's max_parallel_maintenance_workers.  A SET in the script itself "
        "still applies to the statements after it.",
        &runner::parallel_maintenance_workers, 0, -1, 1024, PGC_USERSET, 0, nullptr, nullptr,
        nullptr);

    /*
     * The DDL log's settings are PGC_SUSET like the policy's: a role that
     * could lower them could hide its own DDL from the audit trail.  The
     * extension script grants SET on them to safe_migrate_admin.
     */
    DefineCustomIntVariable(
        "safe_migrate.ddl_log_max_statement_bytes",
        "How much of a DDL statement's text safe_migrate.ddl_log keeps.",
        "The text is kept once per top-level statement, cut at this many bytes (the full "
        "length is kept too); 0 keeps no text.",
        &policy::ddl_log_max_statement_bytes, 8192, 0, INT_MAX, PGC_SUSET, GUC_UNIT_BYTE,
        nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "safe_migrate.ddl_log_retention",
        "How long safe_migrate.ddl_log keeps a statement.",
        "Older entries are deleted by the sessions that write to the log, at most every ten "
        "minutes, or by safe_migrate.ddl_log_trim().  0 or -1 keep the log forever.",
        &policy::ddl_log_retention_min, 30 * 24 * 60, -1, INT_MAX / 60, PGC_SUSET, GUC_UNIT_MIN,
        nullptr, nullptr, nullptr);

    runner::define_lock_wait_settings();
    backfill::define_settings();
    policy::define_settings();
    pg::define_online_setting();
    policy::install_hooks();
    if (process_shared_preload_libraries_in_progress) {
        backfill::register_launcher();
        runner::request_lock_wait_shmem();
        backfill::request_latency_recording();
    }

    MarkGUCPrefixReserved("safe_migrate");
}
