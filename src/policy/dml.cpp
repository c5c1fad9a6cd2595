/*
 * dml.cpp — large-unbatched-dml from what the executor really changed.
 *
 * The rule is about rows changed in one migration transaction: each stays
 * locked against other writers until the migration commits.  A top-level
 * UPDATE/DELETE is only one way to change them: a data-changing CTE, MERGE,
 * INSERT ... ON CONFLICT DO UPDATE, EXECUTE of a prepared statement, a DO
 * block or a function, a trigger of any of these.  All of them run the
 * executor, and the executor counts every row it updates or deletes in the
 * relation's pending statistics (pgstat: updated and deleted tuples of each
 * live level of this transaction; a rolled-back subtransaction's rows leave
 * those counts).
 *
 * So: while a migration runs in this backend, an ExecutorStart hook notes
 * each table a statement is about to change (the result relations of every
 * ModifyTable, nested executors included) with its counters at that moment;
 * after each statement of the migration, check_changed_rows() compares.  A
 * partition counts toward the table the statement named.  The notes live in
 * the transaction and are forgotten at its end (a procedure that commits
 * after each batch starts again from zero, as it should); each transaction
 * is also judged as it commits (PRE_COMMIT), so a procedure that changes
 * every row and then commits is judged like the UPDATE it is.
 *
 * Outside a migration the hook costs one test of a flag.
 */
#include "policy.hpp"
#include "pg/compat.hpp"
#include "core/policy.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "executor/executor.h"
#include "nodes/execnodes.h"
#include "pgstat.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
}

namespace safe_migrate::policy {

namespace {

ExecutorStart_hook_type prev_executor_start = nullptr;

/* One table a statement of the migration changes, in this transaction. */
struct Changed {
    Oid relid;      /* the relation whose counters are read */
    Oid reported;   /* the table it counts toward (the partitioned root, or itself) */
    int64 updated0; /* its counters when first seen */
    int64 deleted0;
};

List *changed = NIL;  /* of Changed *, in TopTransactionContext */
List *reported = NIL; /* tables already reported in this transaction (oids) */

void counters(Oid relid, int64 *updated, int64 *deleted)
{
    *updated = 0;
    *deleted = 0;
    PgStat_TableStatus *ts = pg::compat::pending_tabstat(relid);
    if (ts == nullptr)
        return;
    /* the transactional counts of the live (sub)transaction levels only:
     * rows changed by a subtransaction that was rolled back (a retried
     * attempt, an exception block) are no longer changed nor locked, and
     * pgstat moves them to the non-transactional t_counts */
    for (PgStat_TableXactStatus *x = ts->trans; x != nullptr; x = x->upper) {
        *updated += x->tuples_updated;
        *deleted += x->tuples_deleted;
    }
}

void note(ResultRelInfo *rri)
{
    Relation rel = rri->ri_RelationDesc;
    if (rel == nullptr || rel->rd_rel->relkind != RELKIND_RELATION)
        return;
    Oid relid = RelationGetRelid(rel);
    ListCell *lc;
    foreach (lc, changed)
        if (((Changed *) lfirst(lc))->relid == relid)
            return;
    Oid root = relid;
    if (rri->ri_RootResultRelInfo != nullptr && rri->ri_RootResultRelInfo->ri_RelationDesc)
        root = RelationGetRelid(rri->ri_RootResultRelInfo->ri_RelationDesc);
    MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
    Changed *c = (Changed *) palloc(sizeof(Changed));
    c->relid = relid;
    c->reported = root;
    counters(relid, &c->updated0, &c->deleted0);
    changed = lappend(changed, c);
    MemoryContextSwitchTo(old);
}

void dml_executor_start(QueryDesc *queryDesc, int eflags)
{
    if (prev_executor_start)
        prev_executor_start(queryDesc, eflags);
    else
        standard_ExecutorStart(queryDesc, eflags);
    if (!migration.active)
        return;
    if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
        return;
    EState *estate = queryDesc->estate;
    if (estate == nullptr)
        return;
    ListCell *lc;
    foreach (lc, estate->es_opened_result_relations)
        note((ResultRelInfo *) lfirst(lc));
}

void forget_at_end(XactEvent event, void *)
{
    switch (event) {
        case XACT_EVENT_PRE_COMMIT:
            /* a transaction of the migration that commits inside a
             * statement (a procedure's COMMIT) is judged on its own rows
             * before it commits: after the statement, its rows were another
             * transaction's and went uncounted */
            if (migration.active && changed != NIL)
                check_changed_rows();
            break;
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_COMMIT:
        case XACT_EVENT_PARALLEL_ABORT:
        case XACT_EVENT_PREPARE:
            changed = NIL;
            reported = NIL;
            break;
        default:
            break;
    }
}

}  // namespace

void install_dml_hooks(void)
{
    prev_executor_start = ExecutorStart_hook;
    ExecutorStart_hook = dml_executor_start;
    RegisterXactCallback(forget_at_end, nullptr);
}

void forget_changed_rows(void)
{
    /* (in TopTransactionContext: freed with the transaction) */
    changed = NIL;
    reported = NIL;
}

void check_changed_rows(void)
{
    if (!migration.active || changed == NIL || !IsTransactionState())
        return;
    /* sum per reported table, in the order first seen */
    List *tables = NIL;
    ListCell *lc;
    foreach (lc, changed) {
        Oid t = ((Changed *) lfirst(lc))->reported;
        if (!list_member_oid(tables, t) && !list_member_oid(reported, t))
            tables = lappend_oid(tables, t);
    }
    foreach (lc, tables) {
        Oid table = lfirst_oid(lc);
        int64 updated = 0, deleted = 0;
        ListCell *cc;
        foreach (cc, changed) {
            Changed *c = (Changed *) lfirst(cc);
            if (c->reported != table)
                continue;
            int64 u, d;
            counters(c->relid, &u, &d);
            /* TRUNCATE resets the counters: never count below zero */
            updated += u > c->updated0 ? u - c->updated0 : 0;
            deleted += d > c->deleted0 ? d - c->deleted0 : 0;
        }
        double rows = (double) (updated + deleted);
        /* fewer rows count while the transaction holds a lock that blocks
         * reads or writes of a table (an ALTER TABLE before the UPDATE):
         * the change keeps it held that long */
        LOCKMODE held = NoLock;
        Oid held_relid = InvalidOid;
        if (!(rows > (double) large_table_rows)) {
            if (!(rows > (double) large_table_rows * safe_migrate::core::kHeldLockDmlShare))
                continue;
            held = strongest_held_table_lock(&held_relid);
            if (held == NoLock)
                continue;
        }
        if (!OidIsValid(get_rel_namespace(table)))
            continue; /* dropped since */
        MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
        reported = lappend_oid(reported, table);
        MemoryContextSwitchTo(old);
        check_large_dml_on(table, rows, deleted > updated, held, held_relid);
    }
    list_free(tables);
}

}  // namespace safe_migrate::policy
