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

/* "SELECT fn(args)": a Result without input or filter whose one output
 * column is a direct call of fn_oid.  Whatever subqueries the arguments hold
 * (initplans or not) are evaluated before fn is called, and nothing else is
 * left to run after it returns. */
static bool is_direct_call(const PlannedStmt *stmt, Oid fn_oid)
{
    const Plan *top = stmt->planTree;
    if (top == nullptr || !IsA(top, Result) || top->lefttree != nullptr ||
        top->righttree != nullptr || top->qual != NIL || ((const Result *) top)->resconstantqual ||
        list_length(top->targetlist) != 1)
        return false;
    const TargetEntry *te = linitial_node(TargetEntry, top->targetlist);
    return IsA(te->expr, FuncExpr) && ((const FuncExpr *) te->expr)->funcid == fn_oid;
}

bool caller_snapshot_is_disposable(Oid fn_oid)
{
    if (ActivePortal == nullptr || ActivePortal->strategy != PORTAL_ONE_SELECT ||
        ActivePortal->queryDesc == nullptr || !ActiveSnapshotSet() ||
        GetActiveSnapshot() != ActivePortal->queryDesc->snapshot ||
        GetCurrentTransactionNestLevel() != 1 || list_length(ActivePortal->stmts) != 1)
        return false;
    PlannedStmt *stmt = linitial_node(PlannedStmt, ActivePortal->stmts);
    if (stmt->commandType != CMD_SELECT)
        return false;
    if (OidIsValid(fn_oid) && is_direct_call(stmt, fn_oid))
        return true;
    if (stmt->subplans != NIL)
        return false;
    ListCell *lc;
    foreach (lc, stmt->rtable) {
        RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);
        if (rte->rtekind != RTE_RESULT && rte->rtekind != RTE_FUNCTION)
            return false;
    }
    return true;
}

void withdraw_xmin(void)
{
    InvalidateCatalogSnapshot();
    MyProc->xmin = InvalidTransactionId;
}

}  // namespace safe_migrate::pg
