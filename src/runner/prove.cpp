/*
 * prove.cpp — migrate_test(script): up, down, up again, inside a
 * subtransaction that is always rolled back, comparing a catalog fingerprint
 * after each step: down must restore the schema exactly, and up must
 * reproduce what it made the first time.
 */
#include "classify.hpp"
#include "runner.hpp"
#include "derive.hpp"
#include "pg/core_bridge.hpp"
#include "pg/guard.hpp"
#include "pg/privileged.hpp"
#include "pg/subxact.hpp"
#include "policy/policy.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
}

namespace safe_migrate::runner {

/* One line per schema object and property, for the user's schemas. */
const char *kFingerprint =
    "SELECT line FROM ("
    " SELECT format('relation %s (%s) owner %s%s', c.oid::regclass, c.relkind,"
    "        pg_catalog.pg_get_userbyid(c.relowner), coalesce(' grants ' || c.relacl::text, '')) AS line"
    "   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    "  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'safe_migrate', 'pg_toast')"
    "    AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'"
    " UNION ALL"
    " SELECT format('column %s.%s %s%s%s', a.attrelid::regclass, quote_ident(a.attname),"
    "        pg_catalog.format_type(a.atttypid, a.atttypmod),"
    "        CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,"
    "        coalesce(' default ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), ''))"
    "   FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
    "   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    "   LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
    "  WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
    "    AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'safe_migrate')"
    "    AND n.nspname NOT LIKE 'pg_temp%'"
    " UNION ALL"
    " SELECT format('constraint %s on %s: %s', quote_ident(co.conname), co.conrelid::regclass,"
    "        pg_catalog.pg_get_constraintdef(co.oid))"
    "   FROM pg_catalog.pg_constraint co JOIN pg_catalog.pg_namespace n ON n.oid = co.connamespace"
    "  WHERE co.conrelid <> 0 AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'safe_migrate')"
    " UNION ALL"
    " SELECT format('index %s', pg_catalog.pg_get_indexdef(i.indexrelid))"
    "   FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"
    "   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    "  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'safe_migrate', 'pg_toast')"
    " UNION ALL"
    " SELECT format('view %s: %s', c.oid::regclass, pg_catalog.pg_get_viewdef(c.oid))"
    "   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    "  WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'safe_migrate')"
    " UNION ALL"
    " SELECT format('function %s.%s(%s) returns %s owner %s%s, body md5 %s', quote_ident(n.nspname),"
    "        quote_ident(p.proname), pg_catalog.pg_get_function_identity_arguments(p.oid),"
    "        pg_catalog.pg_get_function_result(p.oid), pg_catalog.pg_get_userbyid(p.proowner),"
    "        coalesce(' grants ' || p.proacl::text, ''), md5(coalesce(p.prosrc, '')))"
    "   FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
    "  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'safe_migrate')"
    "    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend dep WHERE dep.classid = 'pg_proc'::regclass"
    "                    AND dep.objid = p.oid AND dep.deptype = 'e')"
    " UNION ALL"
    " SELECT format('trigger %s', pg_catalog.pg_get_triggerdef(t.oid))"
    "   FROM pg_catalog.pg_trigger t WHERE NOT t.tgisinternal"
    " UNION ALL"
    " SELECT format('schema %s owner %s', quote_ident(n.nspname), pg_catalog.pg_get_userbyid(n.nspowner))"
    "   FROM pg_catalog.pg_namespace n"
    "  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'safe_migrate', 'pg_toast')"
    "    AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'"
    ") f ORDER BY line";

List *fingerprint(void)
{
    int nest = pg::pin_search_path();
    if (SPI_execute(kFingerprint, false, 0) != SPI_OK_SELECT)
        elog(ERROR, "could not take the catalog fingerprint");
    pg::unpin_search_path(nest);
    List *lines = NIL;
    for (uint64 i = 0; i < SPI_processed; i++)
        lines = lappend(lines, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
    return lines;
}

bool contains(List *lines, const char *line)
{
    ListCell *lc;
    foreach (lc, lines)
        if (strcmp((char *) lfirst(lc), line) == 0)
            return true;
    return false;
}

/* "missing: ..." for lines of `want` not in `got`, "extra: ..." the other way */
List *differences(List *want, List *got, const char *missing, const char *extra)
{
    List *out = NIL;
    ListCell *lc;
    foreach (lc, want)
        if (!contains(got, (char *) lfirst(lc)))
            out = lappend(out, psprintf("%s %s", missing, (char *) lfirst(lc)));
    foreach (lc, got)
        if (!contains(want, (char *) lfirst(lc)))
            out = lappend(out, psprintf("%s %s", extra, (char *) lfirst(lc)));
    return out;
}

void run_script(const char *sql)
{
    List *trees = runner::parse_script(sql, "script");
    ListCell *lc;
    foreach (lc, trees) {
        char *text = statement_text(sql, lfirst_node(RawStmt, lc));
        policy::migration.statement = text;
        if (SPI_execute(text, false, 0) < 0)
            elog(ERROR, "could not run: %s", text);
    }
    policy::migration.statement = nullptr;
}

/* Parse one section of the script under test (syntax errors point into it)
 * and refuse what cannot run inside the test's transaction.  A statement that
 * only wants a transaction of its own (a wait for a backfill, ALTER TYPE ...
 * ADD VALUE) runs in the test's. */
void check_testable(const char *sql, const char *what)
{
    List *trees = runner::parse_script(sql, what);
    ListCell *lc;
    foreach (lc, trees) {
        RawStmt *stmt = lfirst_node(RawStmt, lc);
        int number = foreach_current_index(lc) + 1;
        core::TxClass cls = runner::classify_statement(stmt);
        if (cls == core::TxClass::Forbidden)
            ereport(ERROR,
                    (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                     errmsg("statement %d of the %s: %s", number, what,
                            runner::forbidden_reason(stmt)),
                     errdetail("Statement: %s", runner::statement_text(sql, stmt)),
                     errhint("migrate_test runs the migration inside one transaction it rolls "
                             "back; remove BEGIN/COMMIT and load data with INSERT or COPY FROM a "
                             "server file.")));
        if (cls == core::TxClass::NonTransactional)
            ereport(ERROR,
                    (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                     errmsg("migrate_test runs a migration inside a transaction it rolls back"),
                     errdetail("Statement \"%s\" cannot run inside a transaction block.",
                               runner::statement_text(sql, stmt)),
                     errhint("Test the migration's transactional part, or test it on a copy of "
                             "the database with migrate_apply and migrate_rollback.")));
    }
}

/* Run a script in a subtransaction of its own; its error message, or NULL. */
char *try_script(const char *sql)
{
    ErrorData *failure = pg::in_subtransaction([sql]() { run_script(sql); });
    return failure ? failure->message : nullptr;
}

Datum text_array(List *items)
{
    int n = list_length(items);
    Datum *elems = (Datum *) palloc(sizeof(Datum) * (n + 1));
    for (int i = 0; i < n; i++)
        elems[i] = CStringGetTextDatum((char *) list_nth(items, i));
    return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

}  // namespace safe_migrate::runner

using namespace safe_migrate;

/* migrate_test(script) returns setof (step, ok, differences) */
SM_ENTRY(migrate_test)
{
    runner::refuse_inside_migration("migrate_test");
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("migration script must not be null")));
    char *script = text_to_cstring(PG_GETARG_TEXT_PP(0));
    pg::PreparedScript prepared;
    const char *problem = pg::prepare_script(script, "test", &prepared);
    if (problem)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid migration script: %s", problem)));
    policy::check_allowances(prepared.n_allows, prepared.allow_rules);
    runner::check_testable(prepared.up, "up section");
    /* a written down script is checked now; a derived one once up ran
     * (derive.hpp: names are resolved against the catalogs up left) */
    char *down = prepared.down;
    pg::PreparedScript down_prepared;
    memset(&down_prepared, 0, sizeof(down_prepared));
    if (down != nullptr) {
        runner::check_testable(down, "down section");
        /* the down script's directives count too */
        if (pg::prepare_script(down, "test", &down_prepared) == nullptr)
            policy::check_allowances(down_prepared.n_allows, down_prepared.allow_rules);
    }

    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
    MemoryContext cxt = CurrentMemoryContext;
    ResourceOwner owner = CurrentResourceOwner;
    List *volatile rows = NIL;

    BeginInternalSubTransaction(nullptr);
    MemoryContextSwitchTo(cxt);
    PG_TRY();
    {
        SPI_connect();
        int n = prepared.n_allows + down_prepared.n_allows;
        char **rules = (char **) palloc(sizeof(char *) * (n + 1));
        char **reasons = (char **) palloc(sizeof(char *) * (n + 1));
        for (int i = 0; i < prepared.n_allows; i++) {
            rules[i] = prepared.allow_rules[i];
            reasons[i] = prepared.allow_reasons[i];
        }
        for (int i = 0; i < down_prepared.n_allows; i++) {
            rules[prepared.n_allows + i] = down_prepared.allow_rules[i];
            reasons[prepared.n_allows + i] = down_prepared.allow_reasons[i];
        }
        policy::begin_migration("migrate_test", n, rules, reasons);

        List *before = runner::fingerprint();
        runner::NameResolution *at_apply =
            prepared.down ? nullptr : runner::capture_name_resolution();
        runner::run_script(prepared.up);
        List *after_up = runner::fingerprint();
        if (down == nullptr) {
            const char *why = nullptr;
            down = runner::derive_down_script(prepared.up, at_apply, &why);
            if (down == nullptr)
                ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                                errmsg("the migration has no down script to test"),
                                errdetail("None was given, and none could be derived: %s.", why),
                                errhint("Give it a \"-- migrate:down\" section.")));
            runner::check_testable(down, "down section");
            /* the derived script's directives count too */
            pg::PreparedScript derived;
            if (pg::prepare_script(down, "test", &derived) == nullptr && derived.n_allows > 0) {
                policy::check_allowances(derived.n_allows, derived.allow_rules);
                int m = prepared.n_allows + derived.n_allows;
                char **all_rules = (char **) palloc(sizeof(char *) * (m + 1));
                char **all_reasons = (char **) palloc(sizeof(char *) * (m + 1));
                for (int i = 0; i < prepared.n_allows; i++) {
                    all_rules[i] = prepared.allow_rules[i];
                    all_reasons[i] = prepared.allow_reasons[i];
                }
                for (int i = 0; i < derived.n_allows; i++) {
                    all_rules[prepared.n_allows + i] = derived.allow_rules[i];
                    all_reasons[prepared.n_allows + i] = derived.allow_reasons[i];
                }
                policy::end_migration();
                policy::begin_migration("migrate_test", m, all_rules, all_reasons);
            }
        }
        char *down_failed = runner::try_script(down);
        List *after_down = runner::fingerprint();
        char *up_again_failed = down_failed ? nullptr : runner::try_script(prepared.up);
        List *after_up_again = runner::fingerprint();

        MemoryContext old = MemoryContextSwitchTo(cxt);
        List *d1 = runner::differences(before, after_down, "not restored by down:", "left by down:");
        List *d2 = runner::differences(after_up, after_up_again, "not made again by up:",
                                       "new the second time:");
        List *changed = runner::differences(before, after_up, "removed by up:", "added by up:");
        if (down_failed)
            d1 = lcons(psprintf("down failed: %s", down_failed), d1);
        if (up_again_failed)
            d2 = lcons(psprintf("up failed the second time: %s", up_again_failed), d2);
        else if (down_failed)
            d2 = lcons(pstrdup("not run: down failed"), d2);
        rows = list_make3(list_make2(pstrdup("up"), changed), list_make2(pstrdup("down"), d1),
                          list_make2(pstrdup("up again"), d2));
        /* copy the text out of SPI memory */
        ListCell *rc;
        foreach (rc, rows) {
            List *row = (List *) lfirst(rc);
            List *copy = NIL;
            ListCell *dc;
            foreach (dc, (List *) lsecond(row))
                copy = lappend(copy, pstrdup((char *) lfirst(dc)));
            lsecond(row) = copy;
        }
        MemoryContextSwitchTo(old);
        policy::end_migration();
        SPI_finish();
    }
    PG_CATCH();
    {
        policy::end_migration();
        MemoryContextSwitchTo(cxt);
        ErrorData *edata = CopyErrorData();
        FlushErrorState();
        RollbackAndReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(cxt);
        CurrentResourceOwner = owner;
        edata->context = psprintf("migrate_test%s%s", edata->context ? "\n" : "",
                                  edata->context ? edata->context : "");
        ReThrowError(edata);
    }
    PG_END_TRY();
    /* whatever happened, none of it stays */
    RollbackAndReleaseCurrentSubTransaction();
    MemoryContextSwitchTo(cxt);
    CurrentResourceOwner = owner;

    ListCell *rc;
    foreach (rc, rows) {
        List *row = (List *) lfirst(rc);
        const char *step = (const char *) linitial(row);
        List *diffs = (List *) lsecond(row);
        bool ok = strcmp(step, "up") == 0 ? true : diffs == NIL;
        Datum values[3] = {CStringGetTextDatum(step), BoolGetDatum(ok), runner::text_array(diffs)};
        bool nulls[3] = {false, false, false};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum) 0;
}
