/*
 * enforce.cpp — settings, the migration context and enforcement.
 */
#include "policy.hpp"
#include "pg/errcodes.hpp"
#include "pg/privileged.hpp"

#include <climits>

extern "C" {
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_proc.h"
#include "fmgr.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/memutils.h"
}

namespace safe_migrate::policy {

int policy_mode = 2; /* enforce */
bool guarded_database = false;
char *rule_levels = nullptr;
int large_table_rows = 100000;
int large_table_kb = 100 * 1024;
MigrationContext migration = {false, nullptr, NIL, nullptr, nullptr};

/* Overrides used by the running migration (TopMemoryContext). */
static List *used_overrides = NIL;

static const struct config_enum_entry policy_options[] = {
    {"off", 0, false}, {"warn", 1, false}, {"enforce", 2, false}, {nullptr, 0, false}};

static bool check_rule_levels_hook(char **newval, void **extra, GucSource source)
{
    const char *problem = pg::check_rule_levels(*newval);
    if (problem) {
        GUC_check_errdetail("%s", problem);
        return false;
    }
    return true;
}

void define_settings(void)
{
    /*
     * Everything that can weaken the policy is PGC_SUSET: a superuser may
     * change it, and so may members of safe_migrate_admin, to whom the
     * extension script grants SET on these parameters (PostgreSQL 15+).
     */
    DefineCustomEnumVariable(
        "safe_migrate.policy", "Whether unsafe DDL is refused (enforce), reported (warn) or not checked.",
        nullptr, &policy_mode, 2, policy_options, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "safe_migrate.rule_levels",
        "Per-rule levels overriding the defaults, as \"rule=level, ...\" (off, warn, error).",
        nullptr, &rule_levels, "", PGC_SUSET, 0, check_rule_levels_hook, nullptr, nullptr);
    DefineCustomBoolVariable(
        "safe_migrate.guarded_database",
        "Set on a database by CREATE EXTENSION safe_migrate (ALTER DATABASE ... SET), reset by "
        "its DROP EXTENSION.",
        "A database's settings are in a shared catalog: sessions of every other database, where "
        "the extension is not installed, see it there and judge DROP DATABASE of it.",
        &guarded_database, false, PGC_SUSET, GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "safe_migrate.large_table_rows",
        "Tables with fewer rows (and fewer bytes than large_table_bytes) are exempt from "
        "size-dependent rules.",
        nullptr, &large_table_rows, 100000, 0, INT_MAX, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "safe_migrate.large_table_bytes",
        "Tables smaller than this (and with fewer rows than large_table_rows) are exempt from "
        "size-dependent rules.",
        nullptr, &large_table_kb, 100 * 1024, 0, INT_MAX, PGC_SUSET, GUC_UNIT_KB, nullptr, nullptr,
        nullptr);
}

static bool may_override_lookup(Oid role)
{
    pg::require_transaction("override rights checked");
    if (superuser_arg(role))
        return true;
    Oid admin = get_role_oid("safe_migrate_admin", true);
    return OidIsValid(admin) && is_member_of_role(role, admin);
}

bool may_override(Oid role)
{
    /*
     * The answer comes from the catalogs (superuser_arg, role membership),
     * which need a transaction: without one the syscache crashes the
     * process.  A runner asks between its own transactions; give the lookup
     * one of its own there.  (superuser_arg's one-entry cache hides this
     * for the role it saw last -- usually the bootstrap superuser -- and no
     * other.)  Inside a transaction block that is not in progress (aborted)
     * nothing may be looked up: require_transaction refuses.
     */
    if (IsTransactionState() || IsTransactionOrTransactionBlock())
        return may_override_lookup(role);
    MemoryContext cxt = CurrentMemoryContext;
    StartTransactionCommand();
    bool may = may_override_lookup(role);
    CommitTransactionCommand();
    MemoryContextSwitchTo(cxt);
    return may;
}

void check_allowances(int n, char **rules)
{
    for (int i = 0; i < n; i++) {
        if (!pg::is_known_rule(rules[i]))
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("\"-- safe_migrate:allow %s\" names no rule", rules[i]),
                            errhint("See SELECT rule FROM safe_migrate.rules for the rule names.")));
        if (!may_override(GetUserId()))
            ereport(ERROR,
                    (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                     errmsg("role \"%s\" may not override rule \"%s\"",
                            GetUserNameFromId(GetUserId(), false), rules[i]),
                     errdetail("Overrides are honoured only for superusers and members of "
                               "safe_migrate_admin."),
                     errhint("Remove the \"-- safe_migrate:allow\" line, or have an "
                             "administrator apply the migration.")));
    }
}

void begin_migration(const char *version, int n, char **rules, char **reasons)
{
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    end_migration();
    migration.active = true;
    migration.version = pstrdup(version);
    for (int i = 0; i < n; i++) {
        Allowance *a = (Allowance *) palloc0(sizeof(Allowance));
        a->rule = pstrdup(rules[i]);
        a->reason = pstrdup(reasons[i]);
        migration.allowances = lappend(migration.allowances, a);
    }
    MemoryContextSwitchTo(old);
}

void end_migration(void)
{
    forget_migration_checks();
    new_objects_from = InvalidSubTransactionId;
    migration.active = false;
    migration.version = nullptr;
    migration.allowances = NIL;
    migration.statement = nullptr;
    migration.display = nullptr;
    used_overrides = NIL;
}

char *overrides_json(void)
{
    StringInfoData buf;
    initStringInfo(&buf);
    appendStringInfoChar(&buf, '[');
    ListCell *lc;
    foreach (lc, used_overrides) {
        char *entry = (char *) lfirst(lc);
        if (buf.len > 1)
            appendStringInfoString(&buf, ", ");
        appendStringInfoString(&buf, entry);
    }
    appendStringInfoChar(&buf, ']');
    return buf.data;
}

/*
 * Allow lines cover the migration's own statements, not code of other roles
 * that runs inside them: a trigger function, a column default, an index
 * expression owned by a role that may not override, doing DDL while an
 * administrator's migration runs.  While a migration runs, every function
 * whose owner may not override is called through the function manager hook
 * (needs_fmgr_hook / fmgr_hook), which keeps the stack of such calls; while
 * it is not empty, no allow line is honoured.  Built-in functions never
 * reach the hook; outside migrations it answers no at once.
 */
static needs_fmgr_hook_type prev_needs_fmgr_hook = nullptr;
static fmgr_hook_type prev_fmgr_hook = nullptr;

constexpr int kForeignStack = 64;
static Oid foreign_fn[kForeignStack];    /* functions of other roles running, outermost first */
static Oid foreign_owner[kForeignStack];
static int foreign_depth = 0;

/* The owner of a function that may not override, else InvalidOid. */
static Oid foreign_function_owner(Oid fn)
{
    HeapTuple tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
    if (!HeapTupleIsValid(tup))
        return InvalidOid;
    Oid owner = ((Form_pg_proc) GETSTRUCT(tup))->proowner;
    ReleaseSysCache(tup);
    return may_override(owner) ? InvalidOid : owner;
}

static bool sm_needs_fmgr_hook(Oid fn)
{
    if (prev_needs_fmgr_hook && prev_needs_fmgr_hook(fn))
        return true;
    if (!migration.active || migration.allowances == NIL || !IsTransactionState())
        return false;
    return OidIsValid(foreign_function_owner(fn));
}

static void sm_fmgr_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *arg)
{
    if (prev_fmgr_hook)
        prev_fmgr_hook(event, flinfo, arg);
    switch (event) {
        case FHET_START: {
            if (!migration.active || !IsTransactionState())
                break;
            Oid owner = foreign_function_owner(flinfo->fn_oid);
            if (!OidIsValid(owner))
                break; /* another hook's function */
            if (foreign_depth < kForeignStack) {
                foreign_fn[foreign_depth] = flinfo->fn_oid;
                foreign_owner[foreign_depth] = owner;
            }
            foreign_depth++;
            break;
        }
        case FHET_END:
        case FHET_ABORT:
            if (foreign_depth > 0 &&
                (foreign_depth > kForeignStack || foreign_fn[foreign_depth - 1] == flinfo->fn_oid))
                foreign_depth--;
            break;
    }
}

void install_scope_hooks(void)
{
    prev_needs_fmgr_hook = needs_fmgr_hook;
    needs_fmgr_hook = sm_needs_fmgr_hook;
    prev_fmgr_hook = fmgr_hook;
    fmgr_hook = sm_fmgr_hook;
}

static Allowance *find_allowance(const char *rule)
{
    if (!migration.active || foreign_depth > 0)
        return nullptr;
    ListCell *lc;
    foreach (lc, migration.allowances) {
        Allowance *a = (Allowance *) lfirst(lc);
        if (strcmp(a->rule, rule) == 0)
            return a;
    }
    return nullptr;
}

static void record_override(const pg::PolicyVerdict *v, const Allowance *a)
{
    StringInfoData json;
    initStringInfo(&json);
    appendStringInfoString(&json, "{\"rule\": ");
    escape_json(&json, v->rule);
    appendStringInfoString(&json, ", \"reason\": ");
    escape_json(&json, a->reason);
    appendStringInfoString(&json, ", \"role\": ");
    escape_json(&json, GetUserNameFromId(GetUserId(), false));
    appendStringInfoString(&json, ", \"statement\": ");
    escape_json(&json, migration.display   ? migration.display
                       : migration.statement ? migration.statement
                                             : "");
    appendStringInfoChar(&json, '}');
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    used_overrides = lappend(used_overrides, pstrdup(json.data));
    MemoryContextSwitchTo(old);
}

PlanCapture *plan_capture = nullptr;
SubTransactionId new_objects_from = InvalidSubTransactionId;

bool worth_judging(pg::PolicyFacts *facts)
{
    if (plan_capture != nullptr)
        return true; /* migrate_plan shows every statement's facts */
    if (policy_mode == 0 || creating_extension || facts->created_in_transaction ||
        facts->temporary)
        return false;
    bool fires = true;
    pg::PolicyFacts probe = *facts;
    if (OidIsValid(facts->size_of)) {
        /* as enforce: no rule for a table of any size, none for this one */
        probe.rows = 1e18;
        probe.bytes = PG_INT64_MAX / 2;
        if (pg::policy_would_fire(&probe, (double) large_table_rows,
                                  (int64) large_table_kb * 1024, rule_levels, &fires) == nullptr &&
            !fires)
            return false;
        resolve_size(facts);
        probe = *facts;
    }
    if (pg::policy_would_fire(&probe, (double) large_table_rows, (int64) large_table_kb * 1024,
                              rule_levels, &fires) != nullptr)
        return true; /* enforce reports the problem */
    return fires;
}

void enforce(const pg::PolicyFacts *facts)
{
    if (plan_capture == nullptr && (policy_mode == 0 || creating_extension))
        return;
    /* every rule exempts what nobody else can see yet */
    if (plan_capture == nullptr && (facts->created_in_transaction || facts->temporary))
        return;
    pg::PolicyVerdict *verdicts;
    int n;
    const char *problem = nullptr;
    pg::PolicyFacts sized;
    if (OidIsValid(facts->size_of)) {
        /* The size is not measured yet.  A larger table never makes fewer
         * rules fire: if none fires for a table of any size, none fires for
         * this one, and measuring it is saved (most DDL).  Else measure and
         * judge with the real size.  migrate_plan shows sizes: always. */
        sized = *facts;
        if (plan_capture == nullptr) {
            sized.rows = 1e18;
            sized.bytes = PG_INT64_MAX / 2;
            bool fires = true;
            problem = pg::policy_would_fire(&sized, (double) large_table_rows,
                                            (int64) large_table_kb * 1024, rule_levels, &fires);
            if (problem == nullptr && !fires)
                return;
            sized.rows = 0;
            sized.bytes = 0;
        }
        resolve_size(&sized);
        facts = &sized;
    }
    if (problem == nullptr)
        problem = pg::evaluate_policy(facts, (double) large_table_rows,
                                      (int64) large_table_kb * 1024, rule_levels, &verdicts, &n);
    if (problem)
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
                        errmsg("safe_migrate could not check the statement: %s", problem)));
    if (plan_capture != nullptr) {
        /* migrate_plan: remember, do not act */
        pg::PolicyFacts *copy = (pg::PolicyFacts *) palloc(sizeof(pg::PolicyFacts));
        *copy = *facts;
        plan_capture->facts = lappend(plan_capture->facts, copy);
        for (int i = 0; i < n; i++) {
            pg::PolicyVerdict *v = (pg::PolicyVerdict *) palloc(sizeof(pg::PolicyVerdict));
            *v = verdicts[i];
            plan_capture->verdicts = lappend(plan_capture->verdicts, v);
        }
        return;
    }
    for (int i = 0; i < n; i++) {
        const pg::PolicyVerdict *v = &verdicts[i];
        bool error = v->level == 2 && policy_mode == 2;
        if (error) {
            Allowance *a = find_allowance(v->rule);
            if (a != nullptr) {
                record_override(v, a);
                ereport(NOTICE, (errmsg("%s", v->message),
                                 errdetail("Allowed by \"-- safe_migrate:allow %s %s\".", v->rule,
                                           a->reason)));
                continue;
            }
            if (foreign_depth > 0 && migration.active && migration.allowances != NIL)
                ereport(ERROR,
                        (errcode(ERRCODE_SM_POLICY_VIOLATION), errmsg("%s", v->message),
                         errdetail("%s The migration's allow lines do not cover it: it ran in "
                                   "function %s of role \"%s\", which may not override rules.",
                                   v->detail, format_procedure(foreign_fn[0]),
                                   GetUserNameFromId(foreign_owner[0], true)
                                       ? GetUserNameFromId(foreign_owner[0], true)
                                       : "?"),
                         errhint("%s", v->hint)));
            /* the sequence the hint writes out, online execution runs */
            const char *hint = v->hint;
            const Node *statement = ddl_log_current_statement();
            if (statement == nullptr)
                statement = current_dml_statement();
            if (!facts->partitioned && !keeps_heap(facts) && pg::online_handles(statement))
                hint = psprintf("%s\nOr add the line \"-- safe_migrate:online\" to the migration "
                                "(or SET safe_migrate.online = on) and migrate_apply runs that "
                                "sequence for you.",
                                v->hint);
            ereport(ERROR, (errcode(ERRCODE_SM_POLICY_VIOLATION), errmsg("%s", v->message),
                            errdetail("%s", v->detail), errhint("%s", hint)));
        }
        ereport(WARNING, (errcode(ERRCODE_SM_POLICY_VIOLATION), errmsg("%s", v->message),
                          errdetail("%s", v->detail), errhint("%s", v->hint)));
    }
}

}  // namespace safe_migrate::policy
