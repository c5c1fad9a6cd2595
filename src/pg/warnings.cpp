/*
 * warnings.cpp — see warnings.hpp.
 */
#include "warnings.hpp"

extern "C" {
#include "utils/elog.h"
#include "utils/memutils.h"
}

namespace safe_migrate::pg {

namespace {

List *kept = NIL;
MemoryContext kept_cxt = nullptr;
bool installed = false;
emit_log_hook_type previous = nullptr;

void keep_warning(ErrorData *edata)
{
    if (edata->elevel == WARNING && edata->message != nullptr && kept_cxt != nullptr) {
        MemoryContext old = MemoryContextSwitchTo(kept_cxt);
        kept = lappend(kept, pstrdup(edata->message));
        MemoryContextSwitchTo(old);
    }
    if (previous)
        previous(edata);
}

}  // namespace

void collect_warnings(MemoryContext into)
{
    kept = NIL;
    kept_cxt = into;
    if (!installed) {
        previous = emit_log_hook;
        emit_log_hook = keep_warning;
        installed = true;
    }
}

List *collected_warnings(void) { return kept; }

void stop_collecting_warnings(void)
{
    if (installed && emit_log_hook == keep_warning) {
        emit_log_hook = previous;
        installed = false;
    }
    kept_cxt = nullptr;
}

}  // namespace safe_migrate::pg
