/*
 * settings.cpp — the caller's session settings, carried to its runner.
 *
 * A migration behaves the same whether it runs in the caller's backend or in
 * a runner: the runner starts with every setting the caller's session
 * changed (SET, SET LOCAL, set_config, startup options): the policy
 * (safe_migrate.policy, rule_levels, thresholds), statement_timeout,
 * maintenance_work_mem, DateStyle, custom placeholders read by the
 * application's triggers, ...
 *
 * Privilege: each setting is applied in the runner with the context and the
 * role that set it in the caller (PostgreSQL records both), so a setting
 * reserved to superusers, or to roles granted SET on it, is carried only if
 * it was set by such a role; set_config_option_ext repeats the check.
 *
 * Not carried: what the runner owns (search_path, role and session
 * authorization come with the request; client_encoding stays the database's;
 * application_name names the runner; lock_timeout is safe_migrate's
 * lock_timeout) and transaction-level pseudo settings.
 */
#include "runner.hpp"
#include "pg/compat.hpp"

extern "C" {
#include "access/xact.h"
#include "lib/stringinfo.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/memutils.h"
}

namespace safe_migrate::runner {

namespace {

bool carried(const struct config_generic *conf)
{
    static const char *const owned[] = {"search_path", "client_encoding", "application_name",
                                        "lock_timeout", nullptr};
    if (conf->context != PGC_USERSET && conf->context != PGC_SUSET)
        return false;
    if (conf->flags & GUC_NO_RESET_ALL) /* role, session_authorization, transaction_* */
        return false;
    if (conf->source < PGC_S_CLIENT) /* the runner gets these by itself */
        return false;
    for (int i = 0; owned[i]; i++)
        if (pg_strcasecmp(conf->name, owned[i]) == 0)
            return false;
    return true;
}

}  // namespace

int capture_session_settings(StringInfo out)
{
    int n = 0;
    struct config_generic **vars = pg::compat::guc_variables(&n);
    int count = 0;
    for (int i = 0; i < n; i++) {
        const struct config_generic *conf = vars[i];
        if (!carried(conf))
            continue;
        const char *value = GetConfigOption(conf->name, true, false);
        if (value == nullptr)
            continue;
        appendStringInfo(out, "%s%c%s%c%d%c%u%c", conf->name, '\0', value, '\0',
                         (int) conf->scontext, '\0', conf->srole, '\0');
        count++;
    }
    return count;
}

void apply_session_settings(const char *block, int count)
{
    const char *p = block;
    for (int i = 0; i < count; i++) {
        const char *name = p;
        p += strlen(p) + 1;
        const char *value = p;
        p += strlen(p) + 1;
        GucContext context = (GucContext) atoi(p);
        p += strlen(p) + 1;
        Oid role = (Oid) strtoul(p, nullptr, 10);
        p += strlen(p) + 1;

        /* check hooks may look at catalogs: each in a transaction, and one
         * that fails is reported, not fatal (the runner's defaults are the
         * server's, the policy's are its strictest) */
        MemoryContext cxt = CurrentMemoryContext;
        PG_TRY();
        {
            StartTransactionCommand();
            (void) set_config_option_ext(name, value, context, PGC_S_SESSION, role,
                                         GUC_ACTION_SET, true, ERROR, false);
            CommitTransactionCommand();
        }
        PG_CATCH();
        {
            MemoryContextSwitchTo(cxt);
            ErrorData *edata = CopyErrorData();
            FlushErrorState();
            AbortCurrentTransaction();
            ereport(WARNING,
                    (errmsg("the runner could not take over the setting \"%s\" of your session",
                            name),
                     errdetail("%s", edata->message),
                     errhint("The migration runs with the server's value of \"%s\".", name)));
        }
        PG_END_TRY();
    }
}

}  // namespace safe_migrate::runner
