/*
 * snapshot.cpp — see snapshot.hpp.
 */
#include "snapshot.hpp"

extern "C" {
#include "access/xact.h"
#include "nodes/execnodes.h"
#include "nodes/plannodes.h"
#include "nodes/primnodes.h"
#include "storage/proc.h"
#include "tcop/pquery.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
}

namespace safe_migrate::pg {

/* Is expr the top-level call of the portal's plan: the one output column of
 * "SELECT fn(args)" (a Result without input or filter), of "SELECT
 * fn(agg(x)) FROM ..." without GROUP BY or HAVING (a plain Agg: it reads
 * all its input, then computes its one row, calling fn once), or the one
 * function of "SELECT ... FROM fn(args)" (a FunctionScan, maybe under a
 * Result that projects its output)?  Whatever subqueries the arguments
 * hold, and whatever the aggregate read, have run before fn is called;
 * afterwards nothing is left that reads a table.  (The plain Agg is the
 * form "SELECT migrate_backfill_wait(max(id)) FROM safe_migrate.backfills
 * WHERE ..." that online execution writes: not recognised before, its
 * runner kept one xmin for a whole backfill, so nothing the backfill and
 * the application replaced could be pruned, and the application's
 * latency rose until the pacer held the job at its least duty.)
 * Compared by address: the executor calls the plan's own expression node,
 * so a call of the same function nested in another function's query (whose
 * outer query still reads with this snapshot) does not match. */
static bool is_top_level_call(const PlannedStmt *stmt, const Node *expr)
{
    const Plan *top = stmt->planTree;
    if (top == nullptr || expr == nullptr || top->qual != NIL || top->righttree != nullptr)
        return false;
    if (IsA(top, Agg)) {
        const Agg *agg = (const Agg *) top;
        if (agg->aggstrategy != AGG_PLAIN || agg->numCols != 0 || agg->groupingSets != NIL ||
            agg->chain != NIL || list_length(top->targetlist) != 1)
            return false;
        return (const Node *) linitial_node(TargetEntry, top->targetlist)->expr == expr;
    }
    if (IsA(top, Result) && top->lefttree == nullptr) {
        if (((const Result *) top)->resconstantqual || list_length(top->targetlist) != 1)
            return false;
        return (const Node *) linitial_node(TargetEntry, top->targetlist)->expr == expr;
    }
    if (IsA(top, Result) && ((const Result *) top)->resconstantqual == nullptr)
        top = top->lefttree; /* a projection over the function scan */
    if (top == nullptr || !IsA(top, FunctionScan) || top->qual != NIL || top->lefttree != nullptr)
        return false;
    const FunctionScan *scan = (const FunctionScan *) top;
    if (list_length(scan->functions) != 1)
        return false;
    return linitial_node(RangeTblFunction, scan->functions)->funcexpr == expr;
}

bool caller_snapshot_is_disposable(FunctionCallInfo fcinfo)
{
    if (ActivePortal == nullptr || ActivePortal->strategy != PORTAL_ONE_SELECT ||
        ActivePortal->queryDesc == nullptr || !ActiveSnapshotSet() ||
        GetActiveSnapshot() != ActivePortal->queryDesc->snapshot ||
        GetCurrentTransactionNestLevel() != 1 || list_length(ActivePortal->stmts) != 1)
        return false;
    PlannedStmt *stmt = linitial_node(PlannedStmt, ActivePortal->stmts);
    if (stmt->commandType != CMD_SELECT || fcinfo == nullptr || fcinfo->flinfo == nullptr)
        return false;
    return is_top_level_call(stmt, fcinfo->flinfo->fn_expr);
}

void withdraw_xmin(void)
{
    InvalidateCatalogSnapshot();
    MyProc->xmin = InvalidTransactionId;
}

}  // namespace safe_migrate::pg
