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
 * Rows read count too, while the transaction holds a lock an earlier
 * statement took that blocks the application's reads or writes of a table
 * (an ALTER TABLE, a LOCK TABLE): a copy (INSERT ... SELECT, CREATE TABLE
 * AS), a count or any read of many rows keeps that lock held all along.
 * Judged before the statement runs from the sequential scans in its plan
 * (the table's rows on disk), and after it from the rows its scans really
 * read (pgstat's pending counts of every table it scans).  Reads done
 * inside another DDL statement (a foreign key's validation, REFRESH
 * MATERIALIZED VIEW) are that statement's own business, judged by its
 * rules; CREATE TABLE AS is a read.
 *
 * Outside a migration the hook costs one test of a flag.
 */
#include "policy.hpp"
#include "pg/compat.hpp"
#include "core/policy.hpp"

#include <algorithm>

extern "C" {
#include "access/xact.h"
#include "access/transam.h"
#include "catalog/catalog.h"
#include "catalog/pg_class.h"
#include "executor/executor.h"
#include "nodes/execnodes.h"
#include "nodes/nodeFuncs.h"
#include "parser/parsetree.h"
#include "storage/bufmgr.h"
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

/* One table a statement of the migration reads, in this transaction. */
struct Scanned {
    Oid relid;
    int64 read0; /* rows read from it when first seen */
};
List *scanned = NIL; /* of Scanned *, in TopTransactionContext */
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

/* Are the reads of this executor run the migration's own (not those of a
 * DDL statement, which its rules judge)? */
bool reads_counted(void)
{
    Node *st = ddl_log_current_statement();
    return st == nullptr || IsA(st, CreateTableAsStmt);
}

/* A table of the extension's own schema? */
bool is_extension_table(Oid relid)
{
    static Oid nsp = InvalidOid;
    Oid relnsp = get_rel_namespace(relid);
    if (!OidIsValid(nsp) || relnsp != nsp) {
        if (!OidIsValid(relnsp))
            return false;
        char *name = get_namespace_name(relnsp);
        bool ours = name != nullptr && strcmp(name, "safe_migrate") == 0;
        if (ours)
            nsp = relnsp;
        return ours;
    }
    return true;
}

/* Rows read from table relid so far by this backend: by its sequential and
 * bitmap scans (counted on the table) and through each of its indexes
 * (counted on the index: rows fetched, or index entries returned by an
 * index-only scan) */
int64 rows_read(Oid relid)
{
    int64 returned, fetched;
    pg::compat::pending_reads(relid, &returned, &fetched);
    int64 total = returned + fetched;
    Relation rel = RelationIdGetRelation(relid);
    if (!RelationIsValid(rel))
        return total;
    List *indexes = RelationGetIndexList(rel);
    RelationClose(rel);
    ListCell *lc;
    foreach (lc, indexes) {
        pg::compat::pending_reads(lfirst_oid(lc), &returned, &fetched);
        total += std::max(returned, fetched);
    }
    list_free(indexes);
    return total;
}

void note_scanned(Oid relid)
{
    ListCell *lc;
    foreach (lc, scanned)
        if (((Scanned *) lfirst(lc))->relid == relid)
            return;
    MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
    Scanned *c = (Scanned *) palloc(sizeof(Scanned));
    c->relid = relid;
    c->read0 = rows_read(relid);
    scanned = lappend(scanned, c);
    MemoryContextSwitchTo(old);
}

/* The rows on disk of each table the plan reads whole (sequential scans). */
struct PlannedReads {
    List *relids;
    List *rows; /* of double *, parallel */
};

bool find_seq_scans(PlanState *ps, void *arg)
{
    if (ps == nullptr)
        return false;
    if (IsA(ps, SeqScanState)) {
        Relation rel = ((ScanState *) ps)->ss_currentRelation;
        if (rel != nullptr && rel->rd_rel->relkind == RELKIND_RELATION) {
            PlannedReads *r = (PlannedReads *) arg;
            Oid relid = RelationGetRelid(rel);
            if (relid >= FirstNormalObjectId && !IsCatalogRelationOid(relid) &&
                !is_extension_table(relid) && !list_member_oid(r->relids, relid)) {
                BlockNumber pages = RelationGetNumberOfBlocks(rel);
                double density = rel->rd_rel->relpages > 0 && rel->rd_rel->reltuples > 0
                                     ? rel->rd_rel->reltuples / rel->rd_rel->relpages
                                     : BLCKSZ / 32.0;
                double *rows = (double *) palloc(sizeof(double));
                *rows = std::max((double) rel->rd_rel->reltuples, density * pages);
                r->relids = lappend_oid(r->relids, relid);
                r->rows = lappend(r->rows, rows);
            }
        }
    }
    return planstate_tree_walker(ps, SM_WALKER(find_seq_scans), arg);
}

/* Before the statement runs: a sequential scan of more than
 * large_table_rows rows while the transaction holds a lock blocking reads
 * or writes of a table. */
void judge_planned_reads(QueryDesc *queryDesc, List *targets)
{
    PlannedReads r = {NIL, NIL};
    (void) find_seq_scans(queryDesc->planstate, &r);
    ListCell *rc, *nc;
    LOCKMODE held = NoLock;
    Oid held_relid = InvalidOid;
    bool looked = false;
    forboth (rc, r.relids, nc, r.rows) {
        double rows = *(double *) lfirst(nc);
        if (!(rows > (double) large_table_rows) || list_member_oid(targets, lfirst_oid(rc)))
            continue;
        if (!looked) {
            held = strongest_held_table_lock(&held_relid);
            looked = true;
        }
        if (held == NoLock)
            break;
        check_large_dml_on(lfirst_oid(rc), rows, false, held, held_relid, true);
    }
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
    if (!pgstat_track_counts || !reads_counted() || queryDesc->plannedstmt == nullptr)
        return;
    /* the tables the statement changes are judged on the rows it changes */
    List *targets = NIL;
    foreach (lc, queryDesc->plannedstmt->resultRelations)
        targets = lappend_oid(targets, rt_fetch(lfirst_int(lc), queryDesc->plannedstmt->rtable)->relid);
    foreach (lc, queryDesc->plannedstmt->rtable) {
        RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);
        if (list_member_oid(targets, rte->relid))
            continue;
        /* not the catalogs, nor the extension's own tables (its own
         * queries read them) */
        if (rte->rtekind == RTE_RELATION && rte->relkind == RELKIND_RELATION &&
            rte->relid >= FirstNormalObjectId && !IsCatalogRelationOid(rte->relid) &&
            !is_extension_table(rte->relid))
            note_scanned(rte->relid);
    }
    judge_planned_reads(queryDesc, targets);
}

void forget_at_end(XactEvent event, void *)
{
    switch (event) {
        case XACT_EVENT_PRE_COMMIT:
            /* a transaction of the migration that commits inside a
             * statement (a procedure's COMMIT) is judged on its own rows
             * before it commits: after the statement, its rows were another
             * transaction's and went uncounted */
            if (migration.active && (changed != NIL || scanned != NIL))
                check_changed_rows();
            break;
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_COMMIT:
        case XACT_EVENT_PARALLEL_ABORT:
        case XACT_EVENT_PREPARE:
            changed = NIL;
            scanned = NIL;
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
    scanned = NIL;
    reported = NIL;
}

/* After a statement: the rows its scans really read from each table, while
 * the transaction holds a lock blocking reads or writes of a table. */
static void check_read_rows(void)
{
    if (scanned == NIL)
        return;
    LOCKMODE held = NoLock;
    Oid held_relid = InvalidOid;
    bool looked = false;
    ListCell *lc;
    foreach (lc, scanned) {
        Scanned *c = (Scanned *) lfirst(lc);
        if (list_member_oid(reported, c->relid))
            continue;
        int64 now = rows_read(c->relid);
        double rows = now > c->read0 ? (double) (now - c->read0) : 0;
        /* each statement is judged on its own reads: those of an earlier
         * statement, before the lock was taken, held no lock */
        c->read0 = now;
        if (!(rows > (double) large_table_rows))
            continue;
        if (!looked) {
            held = strongest_held_table_lock(&held_relid);
            looked = true;
        }
        /* (not a return: every table's count must start again here) */
        if (held == NoLock)
            continue;
        if (!OidIsValid(get_rel_namespace(c->relid)))
            continue;
        MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
        reported = lappend_oid(reported, c->relid);
        MemoryContextSwitchTo(old);
        check_large_dml_on(c->relid, rows, false, held, held_relid, true);
    }
}

void check_changed_rows(void)
{
    if (!migration.active || (changed == NIL && scanned == NIL) || !IsTransactionState())
        return;
    check_read_rows();
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
