/*
 * journal.cpp — what the history knows about a version's committed steps,
 * for both paths (apply.cpp, worker.cpp), and migrate_abandon().
 *
 * A migration run by a background runner commits in steps; worker.cpp
 * records each committed step in safe_migrate.migration_steps (and the
 * count in its safe_migrate.migrations row) inside the step's own
 * transaction.  A failed or interrupted attempt with committed steps leaves
 * its version "partly applied": applying the same script again continues
 * after the last committed step; another script is refused until the
 * version is abandoned.
 *
 * Every function here that runs SQL expects SPI to be connected and the
 * extension owner's rights with a pinned search_path (pg::elevate).
 */
#include "runner.hpp"
#include "pg/errcodes.hpp"
#include "pg/guard.hpp"
#include "pg/privileged.hpp"
#include "pg/core_bridge.hpp"
#include "policy/policy.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
}

namespace safe_migrate::runner {

void reconcile_interrupted(void)
{
    SPI_execute(
        "UPDATE safe_migrate.migrations SET status = 'interrupted', "
        "finished_at = pg_catalog.clock_timestamp(), sqlstate = '57P01', "
        "error_message = CASE WHEN steps_committed OPERATOR(pg_catalog.>) 0 "
        "  THEN pg_catalog.format('the migration was interrupted (server restart, crash or "
        "termination of its runner) after steps 1 to %s of %s had committed (statements 1 to "
        "%s); the uncommitted rest was rolled back', steps_committed, steps, statements) "
        "  ELSE 'the migration was interrupted (server restart, crash or termination of its "
        "runner); its uncommitted effects were rolled back' END, "
        "error_hint = CASE WHEN steps_committed OPERATOR(pg_catalog.>) 0 "
        "  THEN pg_catalog.format('Apply the same script again to continue after step %s, or "
        "undo what the committed steps did and call safe_migrate.migrate_abandon(%L).', "
        "steps_committed, version) END "
        "WHERE status = 'running'",
        false, 0);
}

/* The latest attempt of version, whatever its status; false if none. */
static bool latest_attempt(const char *version, VersionAttempt *a)
{
    Oid types[1] = {TEXTOID};
    Datum values[1] = {CStringGetTextDatum(version)};
    /* not read-only: a fresh snapshot, taken under the migration lock */
    if (SPI_execute_with_args(
            "SELECT id, status, checksum, steps, steps_committed, statements, "
            "applied_by::pg_catalog.text, abandoned_at IS NOT NULL, executed_script "
            "FROM safe_migrate.migrations WHERE version OPERATOR(pg_catalog.=) $1 "
            "ORDER BY id DESC LIMIT 1",
            1, types, values, nullptr, false, 1) != SPI_OK_SELECT)
        elog(ERROR, "could not read the history of migration \"%s\"", version);
    if (SPI_processed == 0)
        return false;
    HeapTuple tup = SPI_tuptable->vals[0];
    TupleDesc desc = SPI_tuptable->tupdesc;
    bool isnull;
    a->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
    a->status = SPI_getvalue(tup, desc, 2);
    a->checksum = SPI_getvalue(tup, desc, 3);
    Datum steps = SPI_getbinval(tup, desc, 4, &isnull);
    a->steps = isnull ? 0 : DatumGetInt32(steps);
    a->steps_committed = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
    a->statements = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
    a->applied_by = SPI_getvalue(tup, desc, 7);
    a->abandoned = DatumGetBool(SPI_getbinval(tup, desc, 8, &isnull));
    a->executed_script = SPI_getvalue(tup, desc, 9); /* NULL when null */
    a->partly_applied = (strcmp(a->status, "failed") == 0 || strcmp(a->status, "interrupted") == 0) &&
                        a->steps_committed > 0 && !a->abandoned;
    return true;
}

char *describe_committed_steps(int steps_committed, int steps, int statements)
{
    const char *stmts = statements == 1 ? "statement 1" : psprintf("statements 1 to %d", statements);
    if (steps_committed == 1)
        return psprintf("step 1 of %d (%s)", steps, stmts);
    return psprintf("steps 1 to %d of %d (%s)", steps_committed, steps, stmts);
}

bool partly_applied_attempt(const char *version, VersionAttempt *a)
{
    return latest_attempt(version, a) && a->partly_applied;
}

/* May caller act for the role that applied an attempt (continue or abandon
 * it)?  That role, its members, superusers and safe_migrate_admin. */
static bool acts_for_applier(Oid caller, const char *applied_by)
{
    Oid applier = get_role_oid(applied_by, true);
    return policy::may_override(caller) || (OidIsValid(applier) && is_member_of_role(caller, applier));
}

bool check_partly_applied(const char *version, const char *checksum, Oid caller,
                          VersionAttempt *a)
{
    if (!partly_applied_attempt(version, a))
        return false;
    /* Its committed steps are the applier's: only that role, its members
     * and admins may continue it.  Anyone else's attempt would become the
     * version's latest, whose role then decides who may abandon it (the
     * applier could no longer), and an abandon lets the version start over
     * from its first statement, running the committed steps again. */
    if (!acts_for_applier(caller, a->applied_by))
        ereport(ERROR,
                (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                 errmsg("permission denied to continue migration \"%s\"", version),
                 errdetail("Migration \"%s\" is partly applied by role \"%s\" (attempt %lld "
                           "committed %s); only that role, its members, superusers and members "
                           "of safe_migrate_admin may continue it. Nothing was run.",
                           version, a->applied_by, (long long) a->id,
                           describe_committed_steps(a->steps_committed, a->steps, a->statements)),
                 errhint("Ask role \"%s\" to apply it again, or an administrator to abandon it.",
                         a->applied_by)));
    if (strcmp(a->checksum, checksum) != 0)
        ereport(ERROR,
                (errcode(ERRCODE_SM_CHECKSUM_MISMATCH),
                 errmsg("migration \"%s\" is partly applied with a different checksum", version),
                 errdetail("Attempt %lld (checksum %s) %s after committing %s. This script's "
                           "checksum: %s.",
                           (long long) a->id, a->checksum,
                           strcmp(a->status, "failed") == 0 ? "failed" : "was interrupted",
                           describe_committed_steps(a->steps_committed, a->steps, a->statements),
                           checksum),
                 errhint("Apply the script it was started with again to continue after step %d; "
                         "or undo what the committed steps did, call "
                         "safe_migrate.migrate_abandon('%s') and apply the new script.",
                         a->steps_committed, version)));
    return true;
}

void refuse_partly_rolled_back(const char *version, int down_statements)
{
    if (down_statements <= 0)
        return;
    ereport(ERROR,
            (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
             errmsg("migration \"%s\" is partly rolled back", version),
             errdetail("A rollback committed statements 1 to %d of its down script, then failed or "
                       "was interrupted: the schema is neither as the migration left it nor as "
                       "before it. Nothing was run.",
                       down_statements),
             errhint("Call migrate_rollback again: it continues the down script after statement "
                     "%d. Then apply the migration again if it is wanted.",
                     down_statements)));
}

void refuse_rollback_while_partly_applied(void)
{
    if (SPI_execute("SELECT m.version, m.steps_committed, m.steps, m.statements "
                    "FROM safe_migrate.migrations m "
                    "WHERE m.status IN ('failed', 'interrupted') "
                    "AND m.steps_committed OPERATOR(pg_catalog.>) 0 AND m.abandoned_at IS NULL "
                    "AND NOT EXISTS (SELECT 1 FROM safe_migrate.migrations later "
                    "  WHERE later.version OPERATOR(pg_catalog.=) m.version "
                    "  AND later.id OPERATOR(pg_catalog.>) m.id) "
                    "ORDER BY m.id DESC LIMIT 1",
                    /* not read-only: see what reconcile_interrupted changed */
                    false, 1) != SPI_OK_SELECT)
        elog(ERROR, "could not read the history");
    if (SPI_processed == 0)
        return;
    HeapTuple tup = SPI_tuptable->vals[0];
    TupleDesc desc = SPI_tuptable->tupdesc;
    bool isnull;
    char *version = SPI_getvalue(tup, desc, 1);
    int committed = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
    Datum steps_d = SPI_getbinval(tup, desc, 3, &isnull);
    int steps = isnull ? 0 : DatumGetInt32(steps_d);
    int statements = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
    ereport(ERROR,
            (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
             errmsg("migration \"%s\" is partly applied", version),
             errdetail("Only %s of it are committed; its down script undoes the whole migration. "
                       "Nothing was rolled back.",
                       describe_committed_steps(committed, steps, statements)),
             errhint("Apply it again with the same script to finish it (then roll back), or undo "
                     "what its committed steps did and call safe_migrate.migrate_abandon('%s').",
                     version)));
}

namespace {

Datum abandon_impl(FunctionCallInfo fcinfo)
{
    char *version = text_to_cstring(PG_GETARG_TEXT_PP(0));
    {
        /* versions are recorded trimmed, as migrate_apply and
         * migrate_rollback take them */
        char *trimmed;
        const char *bad = pg::normalize_version(version, &trimmed);
        if (bad)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s", bad)));
        version = trimmed;
    }
    refuse_inside_migration("migrate_abandon");

    /* no migration may run meanwhile: it could be this version's */
    LOCKTAG tag;
    migration_lock_tag(&tag);
    if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_IN_USE),
                 errmsg("a migration of database \"%s\" is running", get_database_name(MyDatabaseId)),
                 errhint("Abandon migration \"%s\" when no migration runs.", version)));
    /* held until the end of the transaction that records the abandon */

    MemoryContext caller_cxt = CurrentMemoryContext;
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    pg::Elevation e;
    pg::elevate(&e);
    Oid caller = e.saved_user;
    reconcile_interrupted();
    VersionAttempt a;
    if (!latest_attempt(version, &a))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("migration \"%s\" has no recorded attempt", version),
                        errhint("See safe_migrate.history.")));
    if (!a.partly_applied) {
        if (strcmp(a.status, "applied") == 0)
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("migration \"%s\" is applied, not partly applied", version),
                            errhint("Undo an applied migration with migrate_rollback.")));
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("migration \"%s\" is not partly applied", version),
                 errdetail("Its latest attempt (%lld) is %s%s.", (long long) a.id, a.status,
                           a.abandoned ? " and abandoned" : " with no committed step"),
                 errhint("The version may be applied again as it is.")));
    }
    /* the role that applied it, its members and admins */
    if (!acts_for_applier(caller, a.applied_by))
        ereport(ERROR,
                (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                 errmsg("permission denied to abandon migration \"%s\"", version),
                 errdetail("Migration \"%s\" was applied by role \"%s\"; only that role, its "
                           "members, superusers and members of safe_migrate_admin may abandon it.",
                           version, a.applied_by)));
    Oid types[2] = {INT8OID, TEXTOID};
    Datum values[2] = {Int64GetDatum(a.id), CStringGetTextDatum(GetUserNameFromId(caller, false))};
    if (SPI_execute_with_args("UPDATE safe_migrate.migrations SET abandoned_at = "
                              "pg_catalog.clock_timestamp(), abandoned_by = $2::pg_catalog.name "
                              "WHERE id OPERATOR(pg_catalog.=) $1",
                              2, types, values, nullptr, false, 0) != SPI_OK_UPDATE)
        elog(ERROR, "could not record the abandon of migration \"%s\"", version);
    char *what = describe_committed_steps(a.steps_committed, a.steps, a.statements);
    pg::unelevate(&e);
    MemoryContextSwitchTo(caller_cxt);
    text *result = cstring_to_text(
        psprintf("abandoned migration \"%s\" (attempt %lld): its %s stay committed; the version "
                 "may be applied again from its first statement",
                 version, (long long) a.id, what));
    SPI_finish();
    PG_RETURN_TEXT_P(result);
}

}  // namespace

}  // namespace safe_migrate::runner

/* migrate_abandon(version text) returns text */
SM_ENTRY(migrate_abandon)
{
    return safe_migrate::runner::abandon_impl(fcinfo);
}
