/*
 * warnings.hpp — keep the WARNING messages a migration raises, for its
 * result row and its history (an emit_log_hook, installed while wanted).
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "nodes/pg_list.h"
}

namespace safe_migrate::pg {

/* Start keeping warnings (copies in `into`), forgetting earlier ones. */
void collect_warnings(MemoryContext into);
/* The warnings kept so far (char * in the context given). */
List *collected_warnings(void);
/* Stop keeping them; the list stays readable. */
void stop_collecting_warnings(void);

}  // namespace safe_migrate::pg
