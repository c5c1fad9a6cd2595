/*
 * scout.cpp — looks for the backfill jobs of one database that should run.
 *
 * Started by the launcher, connected to the database as the bootstrap
 * superuser (it must read the job table, which no application role may),
 * it runs nothing but the two statements below: fully qualified, with
 * search_path pinned to pg_catalog, pg_temp, on a table only the extension
 * owns (no trigger, rule or policy of anybody else can be on it), no user
 * object reachable.  Then it exits.
 *  - Jobs whose owner can no longer run a worker (the role was dropped or
 *    lost LOGIN: a job worker connects as its owner) are failed, with why.
 *  - Per table the oldest queued or running job is reported to the
 *    launcher: jobs on different tables run at once, jobs on one table one
 *    after the other; a paused or failed job holds nothing back.
 */
#include "backfill.hpp"

extern "C" {
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

namespace safe_migrate::backfill {

bool jobs_table_exists(void)
{
    Oid nsp = get_namespace_oid("safe_migrate", true);
    return OidIsValid(get_extension_oid("safe_migrate", true)) && OidIsValid(nsp) &&
           OidIsValid(get_relname_relid("backfill_jobs", nsp));
}

extern "C" void safe_migrate_backfill_scout_main(Datum arg)
{
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(arg), InvalidOid, 0);
    SetConfigOption("application_name", "safe_migrate backfill scout", PGC_USERSET, PGC_S_SESSION);
    pgstat_report_appname("safe_migrate backfill scout");
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
    SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
    if (RecoveryInProgress())
        proc_exit(0);

    StartTransactionCommand();
    if (!jobs_table_exists()) {
        CommitTransactionCommand();
        proc_exit(0);
    }
    PushActiveSnapshot(GetTransactionSnapshot());
    SPI_connect();
    SPI_execute(
        "UPDATE safe_migrate.backfill_jobs j SET status = 'failed', last_sqlstate = '28000', "
        "  last_error = CASE WHEN r.oid IS NULL "
        "    THEN 'the role that submitted the job no longer exists' "
        "    ELSE pg_catalog.format('role %s cannot log in, and a backfill runs in a worker "
        "connected as the role that submitted it', pg_catalog.quote_ident(r.rolname::pg_catalog.text)) "
        "  END, "
        "  finished_at = pg_catalog.clock_timestamp(), updated_at = pg_catalog.clock_timestamp() "
        "  FROM (SELECT j2.id, a.oid, a.rolname FROM safe_migrate.backfill_jobs j2 "
        "          LEFT JOIN pg_catalog.pg_authid a ON a.oid OPERATOR(pg_catalog.=) j2.owner "
        "         WHERE j2.status OPERATOR(pg_catalog.=) ANY ('{queued,running}'::pg_catalog.text[]) "
        "           AND (a.oid IS NULL OR NOT a.rolcanlogin)) r "
        " WHERE j.id OPERATOR(pg_catalog.=) r.id",
        false, 0);
    SPI_execute("SELECT DISTINCT ON (relid) id, owner FROM safe_migrate.backfill_jobs "
                " WHERE status OPERATOR(pg_catalog.=) ANY ('{queued,running}'::pg_catalog.text[]) "
                " ORDER BY relid, id",
                true, 0);
    for (uint64 i = 0; i < SPI_processed; i++) {
        bool isnull;
        int64 id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
        Oid owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
        if (!report_job(MyDatabaseId, id, owner))
            break; /* the launcher rechecks every database */
    }
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    proc_exit(0);
}

}  // namespace safe_migrate::backfill
