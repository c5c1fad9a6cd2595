/*
 * plan.cpp — migrate_plan(script): a dry run.  For each statement, as
 * PostgreSQL's parser splits the script: the lock it takes on its table, the
 * table's size, what it does to the data (metadata only, full scan, index
 * build, rewrite, copy) and the verdict of every rule.  Nothing is executed
 * and no lock is taken on any user table, so it never waits.
 */
#include "policy.hpp"
#include "pg/compat.hpp"
#include "pg/errcodes.hpp"
#include "pg/guard.hpp"
#include "pg/subxact.hpp"
#include "runner/classify.hpp"
#include "runner/lockwait.hpp"
#include "core/policy.hpp"

extern "C" {
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "catalog/partition.h"
#include "commands/tablespace.h"
#include "access/tableam.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
#include "catalog/pg_am.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_expr.h"
#include "parser/parse_node.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "storage/lockdefs.h"
#include "commands/tablecmds.h"
#include "commands/defrem.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
}

namespace safe_migrate::policy {

namespace {

enum Effect { kNone, kMetadata, kDataChange, kIndexBuild, kFullScan, kCopy, kRewrite };

const char *effect_name(Effect e)
{
    switch (e) {
        case kNone: return "none";
        case kMetadata: return "metadata only";
        case kDataChange: return "data change";
        case kIndexBuild: return "index build";
        case kFullScan: return "full scan";
        case kCopy: return "copy";
        case kRewrite: return "rewrite";
    }
    return "none";
}

const char *lock_name(LOCKMODE mode)
{
    static const char *const names[] = {"none", "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE",
                                        "SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE",
                                        "EXCLUSIVE", "ACCESS EXCLUSIVE"};
    return mode >= 0 && mode <= AccessExclusiveLock ? names[mode] : "unknown";
}

struct StatementPlan {
    RangeVar *relation;
    LOCKMODE lock;
    Effect effect;
    int rewrite_reasons; /* predicted, for the rewrite rules */
};

void raise(Effect *e, Effect to)
{
    if (to > *e)
        *e = to;
}

}  // namespace


/* How an added column's default evaluates (policy.hpp).  Analyzed in a
 * subtransaction: an expression that does not analyze (a function or
 * sequence not there yet) leaves nothing behind (no cache reference held by
 * the interrupted analysis). */
DefaultVolatility default_volatility(Node *raw_default)
{
    DefaultVolatility result = DefaultVolatility::Unknown;
    DefaultVolatility *result_ptr = &result;
    ErrorData *failure = pg::in_subtransaction([&]() {
        ParseState *pstate = make_parsestate(nullptr);
        Node *expr = transformExpr(pstate, (Node *) copyObjectImpl(raw_default), EXPR_KIND_COLUMN_DEFAULT);
        *result_ptr = contain_volatile_functions(expr) ? DefaultVolatility::Volatile
                                                       : DefaultVolatility::NotVolatile;
        free_parsestate(pstate);
    });
    if (failure != nullptr) {
        pg::keep_cancel(failure);
        FreeErrorData(failure);
        return DefaultVolatility::Unknown;
    }
    return result;
}

/* Is an added column's default volatile (so every row gets its own value)? */
bool default_is_volatile(Node *raw_default)
{
    /* cannot tell: assume the worst */
    return default_volatility(raw_default) != DefaultVolatility::NotVolatile;
}

/* A domain with constraints (policy.hpp). */
bool constrained_domain(TypeName *tn, bool *found)
{
    if (found != nullptr)
        *found = false;
    if (tn == nullptr)
        return false;
    Type t = LookupTypeName(nullptr, tn, nullptr, true);
    if (t == nullptr)
        return false;
    if (found != nullptr)
        *found = true;
    Oid typid = typeTypeId(t);
    ReleaseSysCache(t);
    return get_typtype(typid) == TYPTYPE_DOMAIN && DomainHasConstraints(typid);
}

bool is_serial(TypeName *tn)
{
    if (tn == nullptr || list_length(tn->names) != 1)
        return false;
    const char *name = strVal(linitial(tn->names));
    return strcmp(name, "serial") == 0 || strcmp(name, "bigserial") == 0 ||
           strcmp(name, "smallserial") == 0 || strcmp(name, "serial4") == 0 ||
           strcmp(name, "serial8") == 0 || strcmp(name, "serial2") == 0;
}

namespace {

void add_referenced_lock(StringInfo out, const Constraint *con)
{
    if (con->contype != CONSTR_FOREIGN || con->pktable == nullptr)
        return;
    appendStringInfo(out, "; SHARE ROW EXCLUSIVE on %s",
                     con->pktable->schemaname
                         ? quote_qualified_identifier(con->pktable->schemaname,
                                                      con->pktable->relname)
                         : quote_identifier(con->pktable->relname));
}

/* The locks a statement takes on the tables its foreign keys reference
 * (SHARE ROW EXCLUSIVE each, until the end of the transaction), whether or
 * not the referencing table is new: "" when none. */
const char *referenced_locks(Node *stmt)
{
    StringInfoData out;
    initStringInfo(&out);
    ListCell *lc, *cc;
    if (IsA(stmt, AlterTableStmt)) {
        foreach (lc, ((AlterTableStmt *) stmt)->cmds) {
            AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
            if (cmd->subtype == AT_AddConstraint && cmd->def && IsA(cmd->def, Constraint))
                add_referenced_lock(&out, (Constraint *) cmd->def);
            else if (cmd->subtype == AT_AddColumn && cmd->def && IsA(cmd->def, ColumnDef))
                foreach (cc, ((ColumnDef *) cmd->def)->constraints)
                    add_referenced_lock(&out, (Constraint *) lfirst(cc));
        }
    } else if (IsA(stmt, CreateStmt)) {
        foreach (lc, ((CreateStmt *) stmt)->tableElts) {
            Node *elt = (Node *) lfirst(lc);
            if (IsA(elt, ColumnDef))
                foreach (cc, ((ColumnDef *) elt)->constraints)
                    add_referenced_lock(&out, (Constraint *) lfirst(cc));
            else if (IsA(elt, Constraint))
                add_referenced_lock(&out, (Constraint *) elt);
        }
        foreach (lc, ((CreateStmt *) stmt)->constraints)
            add_referenced_lock(&out, (Constraint *) lfirst(lc));
    }
    return out.data;
}

/* A new partition (CREATE TABLE ... PARTITION OF, ATTACH PARTITION): the
 * locks it takes beyond the table shown, "" when none.  CREATE TABLE takes
 * ACCESS EXCLUSIVE on the parent, ATTACH PARTITION SHARE UPDATE EXCLUSIVE on
 * it (the table shown) and ACCESS EXCLUSIVE on the table attached; both take
 * ACCESS EXCLUSIVE on the parent's default partition (scanned unless its
 * constraints exclude the new bound: see the rules' facts). */
const char *partition_locks(Node *stmt)
{
    RangeVar *parent_rv = nullptr;
    RangeVar *attached = nullptr;
    PartitionBoundSpec *bound = nullptr;
    if (IsA(stmt, CreateStmt) && ((CreateStmt *) stmt)->partbound != nullptr &&
        list_length(((CreateStmt *) stmt)->inhRelations) == 1) {
        parent_rv = (RangeVar *) linitial(((CreateStmt *) stmt)->inhRelations);
        bound = ((CreateStmt *) stmt)->partbound;
    } else if (IsA(stmt, AlterTableStmt)) {
        ListCell *lc;
        foreach (lc, ((AlterTableStmt *) stmt)->cmds) {
            AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
            if (cmd->subtype == AT_AttachPartition && cmd->def && IsA(cmd->def, PartitionCmd)) {
                parent_rv = ((AlterTableStmt *) stmt)->relation;
                attached = ((PartitionCmd *) cmd->def)->name;
                bound = ((PartitionCmd *) cmd->def)->bound;
            }
        }
    }
    if (parent_rv == nullptr || bound == nullptr)
        return "";
    StringInfoData out;
    initStringInfo(&out);
    RangeVar *locked = IsA(stmt, CreateStmt) ? parent_rv : attached;
    if (locked != nullptr)
        appendStringInfo(&out, "; ACCESS EXCLUSIVE on %s",
                         locked->schemaname
                             ? quote_qualified_identifier(locked->schemaname, locked->relname)
                             : quote_identifier(locked->relname));
    Oid parent = RangeVarGetRelid(parent_rv, NoLock, true);
    if (!bound->is_default && OidIsValid(parent) &&
        get_rel_relkind(parent) == RELKIND_PARTITIONED_TABLE) {
        Oid default_part = get_default_partition_oid(parent);
        if (OidIsValid(default_part))
            appendStringInfo(&out, "; ACCESS EXCLUSIVE on %s (default partition)",
                             quote_qualified_identifier(
                                 get_namespace_name(get_rel_namespace(default_part)),
                                 get_rel_name(default_part)));
    }
    /* the parent's foreign keys are given to the new partition, each with
     * SHARE ROW EXCLUSIVE on the table it references */
    Relation prel = OidIsValid(parent) ? RelationIdGetRelation(parent) : nullptr;
    if (prel != nullptr && RelationIsValid(prel)) {
        List *seen = NIL;
        ListCell *lc;
        foreach (lc, RelationGetFKeyList(prel)) {
            Oid ref = ((ForeignKeyCacheInfo *) lfirst(lc))->confrelid;
            if (list_member_oid(seen, ref) || !OidIsValid(get_rel_namespace(ref)))
                continue;
            seen = lappend_oid(seen, ref);
            appendStringInfo(&out, "; SHARE ROW EXCLUSIVE on %s",
                             quote_qualified_identifier(get_namespace_name(get_rel_namespace(ref)),
                                                        get_rel_name(ref)));
        }
        RelationClose(prel);
    }
    return out.data;
}

/* The table access method of relid (pg_class.relam), or InvalidOid. */
static Oid rel_access_method(Oid relid)
{
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tup))
        return InvalidOid;
    Oid am = ((Form_pg_class) GETSTRUCT(tup))->relam;
    ReleaseSysCache(tup);
    return am;
}

void plan_alter_table(AlterTableStmt *stmt, Oid relid, StatementPlan *p)
{
    p->relation = stmt->relation;
    p->lock = AlterTableGetLockLevel(stmt->cmds);
    ListCell *lc;
    foreach (lc, stmt->cmds) {
        AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
        switch (cmd->subtype) {
            case AT_AddColumn: {
                ColumnDef *def = (ColumnDef *) cmd->def;
                /* a column that exists: skipped (IF NOT EXISTS) or refused */
                if (OidIsValid(relid) && get_attnum(relid, def->colname) != InvalidAttrNumber) {
                    raise(&p->effect, kMetadata);
                    break;
                }
                bool rewrite = def->identity || def->generated == ATTRIBUTE_GENERATED_STORED ||
                               is_serial(def->typeName);
                /* NOT NULL with a default: every row reads the stored default,
                 * nothing to check (without one, PostgreSQL checks the rows) */
                bool has_default = def->raw_default != nullptr;
                ListCell *cc;
                foreach (cc, def->constraints)
                    if (((Constraint *) lfirst(cc))->contype == CONSTR_DEFAULT)
                        has_default = true;
                foreach (cc, def->constraints) {
                    Constraint *con = (Constraint *) lfirst(cc);
                    if (con->contype == CONSTR_IDENTITY ||
                        (con->contype == CONSTR_GENERATED && !pg::compat::generated_virtual(con)))
                        rewrite = true;
                    else if (con->contype == CONSTR_DEFAULT && con->raw_expr &&
                             default_is_volatile(con->raw_expr))
                        rewrite = true;
                    else if (con->contype == CONSTR_FOREIGN && !added_column_filled(def))
                        raise(&p->effect, kMetadata); /* all NULL: no validation scan */
                    else if (con->contype == CONSTR_NOTNULL && has_default)
                        raise(&p->effect, kMetadata);
                    else if (con->contype == CONSTR_CHECK || con->contype == CONSTR_FOREIGN ||
                             con->contype == CONSTR_NOTNULL)
                        raise(&p->effect, kFullScan);
                    else if (con->contype == CONSTR_PRIMARY || con->contype == CONSTR_UNIQUE)
                        raise(&p->effect, kIndexBuild);
                }
                /* a domain with constraints: every row gets the (checked)
                 * default, NULL included, by a rewrite */
                if (constrained_domain(def->typeName))
                    rewrite = true;
                if (rewrite) {
                    raise(&p->effect, kRewrite);
                    p->rewrite_reasons |= 0x02;
                } else
                    raise(&p->effect, kMetadata);
                break;
            }
            case AT_AlterColumnType: {
                /* PostgreSQL's own tests: a heap rewrite, or the heap kept
                 * with the indexes whose operator class or collation changes
                 * rebuilt, or metadata only */
                List *rebuilt = NIL;
                bool known = false;
                if (!OidIsValid(relid) || column_type_change(relid, cmd, &rebuilt, &known)) {
                    raise(&p->effect, kRewrite);
                    p->rewrite_reasons |= 0x04;
                } else if (rebuilt != NIL)
                    raise(&p->effect, kIndexBuild);
                else
                    raise(&p->effect, kMetadata);
                break;
            }
            case AT_AttachPartition:
                /* scans the partition unless a validated CHECK proves the
                 * bound: settled from the rule's facts (statement_verdicts) */
                raise(&p->effect, kMetadata);
                break;
            case AT_SetLogged:
            case AT_SetUnLogged: {
                /* to the persistence it already has: nothing to do */
                char want = cmd->subtype == AT_SetLogged ? RELPERSISTENCE_PERMANENT
                                                         : RELPERSISTENCE_UNLOGGED;
                if (OidIsValid(relid) && get_rel_persistence(relid) == want) {
                    raise(&p->effect, kMetadata);
                    break;
                }
                raise(&p->effect, kRewrite);
                p->rewrite_reasons |= 0x01;
                break;
            }
            case AT_SetAccessMethod: {
                /* to the access method it already has: nothing to do */
                Oid am = cmd->name ? get_table_am_oid(cmd->name, true) : InvalidOid;
                if (OidIsValid(relid) && OidIsValid(am) && rel_access_method(relid) == am) {
                    raise(&p->effect, kMetadata);
                    break;
                }
                raise(&p->effect, kRewrite);
                p->rewrite_reasons |= 0x08;
                break;
            }
            case AT_SetTableSpace: {
                /* where it already is, or a partitioned table (no storage:
                 * only the default of future partitions) */
                Oid target = get_tablespace_oid(cmd->name, true);
                Oid current = OidIsValid(relid) ? get_rel_tablespace(relid) : InvalidOid;
                if (!OidIsValid(current))
                    current = MyDatabaseTableSpace;
                if (OidIsValid(relid) &&
                    (target == current || get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)) {
                    raise(&p->effect, kMetadata);
                    break;
                }
                raise(&p->effect, kCopy);
                break;
            }
            case AT_AddConstraint: {
                Constraint *con = (Constraint *) cmd->def;
                if ((con->contype == CONSTR_CHECK || con->contype == CONSTR_FOREIGN) &&
                    !con->skip_validation)
                    raise(&p->effect, kFullScan);
                else if ((con->contype == CONSTR_PRIMARY || con->contype == CONSTR_UNIQUE ||
                          con->contype == CONSTR_EXCLUSION) && con->indexname == nullptr)
                    raise(&p->effect, kIndexBuild);
                else
                    raise(&p->effect, kMetadata);
                break;
            }
            case AT_ValidateConstraint:
                raise(&p->effect, kFullScan);
                break;
            case AT_SetNotNull:
                /* a scan unless a validated CHECK proves it (by the catalog or
                 * an earlier step of the script): settled from the rule's
                 * facts (refine_effect); on a column already NOT NULL nothing */
                raise(&p->effect, kMetadata);
                break;
            default:
                if (pg::compat::is_set_expression(cmd->subtype) && OidIsValid(relid) && cmd->name) {
                    /* 17: a stored generated column is recomputed by a
                     * rewrite; a virtual one (18) stores nothing */
                    AttrNumber att = get_attnum(relid, cmd->name);
                    if (att != InvalidAttrNumber && get_attgenerated(relid, att) == ATTRIBUTE_GENERATED_STORED) {
                        raise(&p->effect, kRewrite);
                        p->rewrite_reasons |= 0x04;
                        break;
                    }
                }
                raise(&p->effect, kMetadata);
                break;
        }
    }
}

/* A boolean option as PostgreSQL reads it: FULL, FULL true, FULL false;
 * the last one given wins. */
bool option_on(List *options, const char *name)
{
    bool on = false;
    ListCell *lc;
    foreach (lc, options) {
        DefElem *opt = (DefElem *) lfirst(lc);
        if (strcmp(opt->defname, name) == 0)
            on = opt->arg == nullptr || defGetBoolean(opt);
    }
    return on;
}

/* Lock, effect and main relation of one statement (without looking it up). */
void describe(Node *stmt, Oid *relid_out, StatementPlan *p)
{
    memset(p, 0, sizeof(*p));
    p->lock = NoLock;
    switch (nodeTag(stmt)) {
        case T_AlterTableStmt: {
            AlterTableStmt *s = (AlterTableStmt *) stmt;
            *relid_out = RangeVarGetRelid(s->relation, NoLock, true);
            plan_alter_table(s, *relid_out, p);
            return;
        }
        case T_IndexStmt: {
            IndexStmt *s = (IndexStmt *) stmt;
            p->relation = s->relation;
            p->lock = s->concurrent ? ShareUpdateExclusiveLock : ShareLock;
            p->effect = kIndexBuild;
            break;
        }
        case T_DropStmt: {
            DropStmt *s = (DropStmt *) stmt;
            if ((s->removeType == OBJECT_TABLE || s->removeType == OBJECT_INDEX) && s->objects) {
                p->relation = makeRangeVarFromNameList((List *) linitial(s->objects));
                p->lock = s->concurrent ? ShareUpdateExclusiveLock : AccessExclusiveLock;
            }
            p->effect = kMetadata;
            break;
        }
        case T_RenameStmt:
            p->relation = ((RenameStmt *) stmt)->relation;
            /* ALTER INDEX ... RENAME locks only the index, SHARE UPDATE
             * EXCLUSIVE (reads and writes of the table go on) */
            p->lock = ((RenameStmt *) stmt)->renameType == OBJECT_INDEX ? ShareUpdateExclusiveLock
                                                                        : AccessExclusiveLock;
            p->effect = kMetadata;
            break;
        case T_RuleStmt:
            p->relation = ((RuleStmt *) stmt)->relation;
            p->lock = AccessExclusiveLock;
            p->effect = kMetadata;
            break;
        case T_CreatePolicyStmt:
            p->relation = ((CreatePolicyStmt *) stmt)->table;
            p->lock = AccessExclusiveLock;
            p->effect = kMetadata;
            break;
        case T_AlterPolicyStmt:
            p->relation = ((AlterPolicyStmt *) stmt)->table;
            p->lock = AccessExclusiveLock;
            p->effect = kMetadata;
            break;
        case T_CreateStatsStmt: {
            CreateStatsStmt *s = (CreateStatsStmt *) stmt;
            if (list_length(s->relations) == 1 && IsA(linitial(s->relations), RangeVar))
                p->relation = (RangeVar *) linitial(s->relations);
            p->lock = ShareUpdateExclusiveLock;
            p->effect = kMetadata;
            break;
        }
        case T_CommentStmt: {
            /* a comment on a table (or a column of it) locks the table
             * SHARE UPDATE EXCLUSIVE */
            CommentStmt *s = (CommentStmt *) stmt;
            if ((s->objtype == OBJECT_TABLE || s->objtype == OBJECT_VIEW || s->objtype == OBJECT_MATVIEW ||
                 s->objtype == OBJECT_FOREIGN_TABLE || s->objtype == OBJECT_INDEX ||
                 s->objtype == OBJECT_SEQUENCE) && s->object && IsA(s->object, List)) {
                p->relation = makeRangeVarFromNameList(castNode(List, s->object));
                p->lock = ShareUpdateExclusiveLock;
            } else if (s->objtype == OBJECT_COLUMN && s->object && IsA(s->object, List) &&
                       list_length(castNode(List, s->object)) > 1) {
                p->relation = makeRangeVarFromNameList(
                    list_truncate(list_copy(castNode(List, s->object)), list_length(castNode(List, s->object)) - 1));
                p->lock = ShareUpdateExclusiveLock;
            }
            p->effect = kMetadata;
            break;
        }
        case T_TruncateStmt: {
            TruncateStmt *s = (TruncateStmt *) stmt;
            p->relation = s->relations ? (RangeVar *) linitial(s->relations) : nullptr;
            p->lock = AccessExclusiveLock;
            p->effect = kDataChange;
            break;
        }
        case T_VacuumStmt: {
            VacuumStmt *s = (VacuumStmt *) stmt;
            if (s->rels)
                p->relation = ((VacuumRelation *) linitial(s->rels))->relation;
            bool full = s->is_vacuumcmd && option_on(s->options, "full");
            p->lock = full ? AccessExclusiveLock : s->is_vacuumcmd ? ShareUpdateExclusiveLock
                                                                   : ShareUpdateExclusiveLock;
            p->effect = full ? kRewrite : kFullScan;
            break;
        }
        case T_AlterTableMoveAllStmt:
            /* every relation of its kind in the tablespace (the rules'
             * facts name them and their size) */
            p->lock = AccessExclusiveLock;
            p->effect = kCopy;
            break;
        case T_ClusterStmt:
            p->relation = ((ClusterStmt *) stmt)->relation;
            p->lock = AccessExclusiveLock;
            p->effect = kRewrite;
            break;
        case T_ReindexStmt: {
            ReindexStmt *s = (ReindexStmt *) stmt;
            p->relation = s->relation;
            p->lock = option_on(s->params, "concurrently") ? ShareUpdateExclusiveLock : ShareLock;
            p->effect = kIndexBuild;
            break;
        }
        case T_UpdateStmt:
            p->relation = ((UpdateStmt *) stmt)->relation;
            p->lock = RowExclusiveLock;
            p->effect = kDataChange;
            break;
        case T_DeleteStmt:
            p->relation = ((DeleteStmt *) stmt)->relation;
            p->lock = RowExclusiveLock;
            p->effect = kDataChange;
            break;
        case T_InsertStmt:
            p->relation = ((InsertStmt *) stmt)->relation;
            p->lock = RowExclusiveLock;
            p->effect = kDataChange;
            break;
        case T_LockStmt: {
            LockStmt *s = (LockStmt *) stmt;
            p->relation = s->relations ? (RangeVar *) linitial(s->relations) : nullptr;
            p->lock = s->mode;
            p->effect = kNone;
            break;
        }
        case T_MergeStmt:
            p->relation = ((MergeStmt *) stmt)->relation;
            p->lock = RowExclusiveLock;
            p->effect = kDataChange;
            break;
        case T_AlterObjectSchemaStmt: {
            AlterObjectSchemaStmt *s = (AlterObjectSchemaStmt *) stmt;
            if (s->relation) {
                p->relation = s->relation;
                p->lock = AccessExclusiveLock;
            }
            p->effect = kMetadata;
            break;
        }
        case T_AlterDomainStmt: {
            /* ADD CONSTRAINT (valid), VALIDATE, SET NOT NULL: every column
             * using the domain is checked, each table under SHARE */
            AlterDomainStmt *s = (AlterDomainStmt *) stmt;
            bool scans = s->subtype == 'V' || s->subtype == 'O' ||
                         (s->subtype == 'C' && s->def && IsA(s->def, Constraint) &&
                          !((Constraint *) s->def)->skip_validation);
            p->lock = scans ? ShareLock : NoLock;
            p->effect = scans ? kFullScan : kMetadata;
            break;
        }
        case T_CreateStmt:
            p->relation = ((CreateStmt *) stmt)->relation;
            p->effect = kMetadata;
            break;
        case T_CreateTrigStmt: {
            /* a catalog change under SHARE ROW EXCLUSIVE (blocks writes
             * for a moment, not reads) */
            CreateTrigStmt *s = (CreateTrigStmt *) stmt;
            p->relation = s->relation;
            p->lock = ShareRowExclusiveLock;
            p->effect = kMetadata;
            break;
        }
        case T_RefreshMatViewStmt: {
            /* a new heap filled by the view's query, swapped in (WITH NO
             * DATA: emptied); CONCURRENTLY diffs it in under EXCLUSIVE */
            RefreshMatViewStmt *s = (RefreshMatViewStmt *) stmt;
            p->relation = s->relation;
            p->lock = s->concurrent ? ExclusiveLock : AccessExclusiveLock;
            p->effect = s->concurrent ? kDataChange : s->skipData ? kMetadata : kRewrite;
            break;
        }
        default:
            p->effect = kNone;
            break;
    }
    if (p->relation) {
        *relid_out = RangeVarGetRelid(p->relation, NoLock, true);
        /* an index named: its table is what gets locked */
        if (OidIsValid(*relid_out) && get_rel_relkind(*relid_out) == RELKIND_INDEX) {
            Oid table = IndexGetRelation(*relid_out, true);
            if (OidIsValid(table))
                *relid_out = table;
        }
        /* CREATE INDEX ON ONLY a partitioned table builds nothing (an
         * invalid index the partitions' indexes are attached to later) */
        if (IsA(stmt, IndexStmt) && !p->relation->inh && OidIsValid(*relid_out) &&
            get_rel_relkind(*relid_out) == RELKIND_PARTITIONED_TABLE)
            p->effect = kMetadata;
    }
}

const char *rv_name(RangeVar *rv)
{
    return rv->schemaname ? quote_qualified_identifier(rv->schemaname, rv->relname)
                          : quote_identifier(rv->relname);
}

/* What the rules' facts know better than the statement's spelling: an
 * ATTACH PARTITION whose bound no CHECK proves scans the partition (ACCESS
 * EXCLUSIVE), and it builds the parent's indexes and checks its foreign keys
 * the table has no equivalent of; a PRIMARY KEY USING INDEX on a nullable column scans for
 * NULLs; a sweep (VACUUM FULL; CLUSTER; REINDEX SCHEMA ...) locks every
 * table it reaches. */
void refine_effect(PlanCapture *capture, StatementPlan *p)
{
    ListCell *lc;
    foreach (lc, capture->facts) {
        pg::PolicyFacts *f = (pg::PolicyFacts *) lfirst(lc);
        if (f->action == (int) core::Action::AttachPartition && !f->bound_proven) {
            /* (the locks on the table attached and on the default
             * partition are shown on their own: partition_locks) */
            raise(&p->effect, kFullScan);
        } else if (f->action == (int) core::Action::CreateIndex && f->parent != nullptr) {
            /* ATTACH PARTITION builds a parent's index on the table */
            raise(&p->effect, kIndexBuild);
        } else if (f->action == (int) core::Action::AddForeignKey && f->parent != nullptr) {
            /* ATTACH PARTITION checks a parent's foreign key on its rows */
            raise(&p->effect, kFullScan);
        } else if (f->action == (int) core::Action::SetNotNull && !f->not_null_proven) {
            raise(&p->effect, kFullScan);
        } else if (f->action == (int) core::Action::IndexRebuild) {
            /* the heap kept, indexes rebuilt (ALTER TYPE ... CASCADE: on
             * its typed tables); CHECK constraints on the column re-checked */
            raise(&p->effect, f->constraint != nullptr ? kFullScan : kIndexBuild);
        }
    }
}

/* ALTER TABLE child INHERIT parent, where the script made the parent: the
 * catalogs do not know the child yet, but a later DROP TABLE parent CASCADE
 * drops it and TRUNCATE parent empties it. */
struct ScriptInherit {
    const char *parent; /* as written */
    Oid child;
};

void note_script_inherit(Node *stmt, Oid relid, List *created, List **inherits)
{
    if (!IsA(stmt, AlterTableStmt) || !OidIsValid(relid))
        return;
    ListCell *lc;
    foreach (lc, ((AlterTableStmt *) stmt)->cmds) {
        AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
        if ((cmd->subtype != AT_AddInherit && cmd->subtype != AT_DropInherit) || cmd->def == nullptr ||
            !IsA(cmd->def, RangeVar))
            continue;
        RangeVar *parent = (RangeVar *) cmd->def;
        if (OidIsValid(RangeVarGetRelid(parent, NoLock, true)))
            continue; /* an existing parent: the catalogs tell */
        const char *name = parent->schemaname
                               ? quote_qualified_identifier(parent->schemaname, parent->relname)
                               : quote_identifier(parent->relname);
        bool made = false;
        ListCell *cc;
        foreach (cc, created)
            made |= strcmp((const char *) lfirst(cc), name) == 0;
        if (!made)
            continue;
        if (cmd->subtype == AT_DropInherit) {
            List *kept = NIL;
            foreach (cc, *inherits) {
                ScriptInherit *i = (ScriptInherit *) lfirst(cc);
                if (!(i->child == relid && strcmp(i->parent, name) == 0))
                    kept = lappend(kept, i);
            }
            *inherits = kept;
            continue;
        }
        ScriptInherit *i = (ScriptInherit *) palloc(sizeof(ScriptInherit));
        i->parent = name;
        i->child = relid;
        *inherits = lappend(*inherits, i);
    }
}

/* DROP TABLE p CASCADE, TRUNCATE p, of a parent the script made: judge the
 * existing tables the script made inherit from it. */
void judge_script_children(Node *stmt, List *inherits)
{
    if (inherits == NIL)
        return;
    List *names = NIL;
    bool truncate = false;
    if (IsA(stmt, DropStmt) && ((DropStmt *) stmt)->removeType == OBJECT_TABLE &&
        ((DropStmt *) stmt)->behavior == DROP_CASCADE) {
        ListCell *lc;
        foreach (lc, ((DropStmt *) stmt)->objects)
            names = lappend(names, makeRangeVarFromNameList((List *) lfirst(lc)));
    } else if (IsA(stmt, TruncateStmt)) {
        truncate = true;
        ListCell *lc;
        foreach (lc, ((TruncateStmt *) stmt)->relations)
            if (((RangeVar *) lfirst(lc))->inh)
                names = lappend(names, lfirst(lc));
    }
    ListCell *lc;
    foreach (lc, names) {
        RangeVar *rv = (RangeVar *) lfirst(lc);
        if (OidIsValid(RangeVarGetRelid(rv, NoLock, true)))
            continue;
        const char *name = rv->schemaname ? quote_qualified_identifier(rv->schemaname, rv->relname)
                                          : quote_identifier(rv->relname);
        ListCell *ic;
        foreach (ic, inherits) {
            ScriptInherit *i = (ScriptInherit *) lfirst(ic);
            if (strcmp(i->parent, name) == 0)
                judge_reached_table(i->child, truncate,
                                    truncate ? psprintf("TRUNCATE %s", name) : "DROP TABLE");
        }
    }
}

/* Describe one statement of a script and collect the rules' verdicts on it
 * without acting.  *created lists the tables the script created before this
 * statement (their names as written); *new_here is set when the statement
 * works on one of them: nobody else can see such a table yet, so no rule
 * applies.  *inherits: existing tables the script made inherit from a table
 * it created (note_script_inherit). */
void statement_verdicts(RawStmt *raw, List **created, Oid *relid, StatementPlan *p,
                    const char **relation_out, bool *new_here_out, PlanCapture *capture,
                    List **inherits)
{
    *relid = InvalidOid;
    describe(raw->stmt, relid, p);
    const char *relation = p->relation ? rv_name(p->relation) : nullptr;
    bool new_here = false;
    if (relation && !OidIsValid(*relid)) {
        ListCell *cc;
        foreach (cc, *created)
            new_here |= strcmp((char *) lfirst(cc), relation) == 0;
    }
    if (IsA(raw->stmt, CreateStmt) && relation)
        *created = lappend(*created, (void *) relation);

    /* the rules, on the facts, without acting */
    plan_capture = capture;
    /* an error in a check must not leave the session marked as running a
     * migration */
    volatile bool was_active = migration.active;
    PG_TRY();
    {
        /* (the parent is new: the statement is, the children are not) */
        judge_script_children(raw->stmt, *inherits);
        note_script_inherit(raw->stmt, *relid, *created, inherits);
        if (!new_here) {
            check_parsetree(raw->stmt);
            check_utility(raw->stmt);
            if (p->effect == kRewrite && p->rewrite_reasons && OidIsValid(*relid)) {
                if (get_rel_relkind(*relid) == RELKIND_COMPOSITE_TYPE) {
                    /* ALTER TYPE ... CASCADE rewrites its typed tables */
                    ListCell *tc;
                    foreach (tc, typed_tables_of(*relid))
                        check_table_rewrite(lfirst_oid(tc), p->rewrite_reasons, raw->stmt);
                } else
                    check_table_rewrite(*relid, p->rewrite_reasons, raw->stmt);
            }
            if ((IsA(raw->stmt, UpdateStmt) &&
                 ((UpdateStmt *) raw->stmt)->whereClause == nullptr) ||
                (IsA(raw->stmt, DeleteStmt) &&
                 ((DeleteStmt *) raw->stmt)->whereClause == nullptr)) {
                /* every row: as many as the table has */
                pg::PolicyFacts size;
                memset(&size, 0, sizeof(size));
                if (OidIsValid(*relid)) {
                    table_facts(*relid, relation, &size);
                    resolve_size(&size);
                }
                migration.active = true;
                check_large_dml(raw, size.rows);
                migration.active = was_active;
            }
        }
    }
    PG_FINALLY();
    {
        plan_capture = nullptr;
        migration.active = was_active;
    }
    PG_END_TRY();
    refine_effect(capture, p);

    *relation_out = relation;
    *new_here_out = new_here;
}

/* A statement without a table (VACUUM FULL;, CLUSTER;, REINDEX SCHEMA,
 * ALTER DOMAIN) reaches several: its rows and bytes are theirs together,
 * each table counted once. */
void sum_reached_tables(List *all_facts, pg::PolicyFacts *out)
{
    List *seen = NIL;
    double rows = 0;
    int64 bytes = 0;
    ListCell *lc;
    foreach (lc, all_facts) {
        pg::PolicyFacts *f = (pg::PolicyFacts *) lfirst(lc);
        if (f->table == nullptr)
            continue;
        bool dup = false;
        ListCell *sc;
        foreach (sc, seen)
            dup |= strcmp((const char *) lfirst(sc), f->table) == 0;
        if (dup)
            continue;
        seen = lappend(seen, (void *) f->table);
        rows += f->rows;
        bytes += f->bytes;
    }
    out->rows = rows;
    out->bytes = bytes;
}

}  // namespace

void statement_locks(Node *stmt, List **relids, List **modes)
{
    Oid relid = InvalidOid;
    StatementPlan p;
    describe(stmt, &relid, &p);
    if (OidIsValid(relid) && p.lock != NoLock) {
        *relids = lappend_oid(*relids, relid);
        *modes = lappend_int(*modes, p.lock);
    }
    /* the tables its foreign keys reference: SHARE ROW EXCLUSIVE each */
    List *cons = NIL;
    ListCell *lc, *cc;
    if (IsA(stmt, AlterTableStmt)) {
        foreach (lc, ((AlterTableStmt *) stmt)->cmds) {
            AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
            if (cmd->subtype == AT_AddConstraint && cmd->def && IsA(cmd->def, Constraint))
                cons = lappend(cons, cmd->def);
            else if (cmd->subtype == AT_AddColumn && cmd->def && IsA(cmd->def, ColumnDef))
                cons = list_concat(cons, ((ColumnDef *) cmd->def)->constraints);
        }
    } else if (IsA(stmt, CreateStmt)) {
        foreach (lc, ((CreateStmt *) stmt)->tableElts) {
            Node *elt = (Node *) lfirst(lc);
            if (IsA(elt, ColumnDef))
                cons = list_concat(cons, ((ColumnDef *) elt)->constraints);
            else if (IsA(elt, Constraint))
                cons = lappend(cons, elt);
        }
        cons = list_concat(cons, ((CreateStmt *) stmt)->constraints);
    }
    foreach (cc, cons) {
        Constraint *con = (Constraint *) lfirst(cc);
        if (con == nullptr || !IsA(con, Constraint) || con->contype != CONSTR_FOREIGN ||
            con->pktable == nullptr)
            continue;
        Oid pk = RangeVarGetRelid(con->pktable, NoLock, true);
        if (OidIsValid(pk)) {
            *relids = lappend_oid(*relids, pk);
            *modes = lappend_int(*modes, ShareRowExclusiveLock);
        }
    }
}

void refuse_before_first_step(const char *script, List *trees, int first_checked, int n_steps,
                              int n_allows, char **allow_rules)
{
    if (policy_mode != 2)
        return; /* nothing is refused: warnings come as the statements run */
    plan_script_begin();
    List *created = NIL;
    List *inherits = NIL; /* of ScriptInherit * */
    int number = 0;
    ListCell *lc;
    foreach (lc, trees) {
        RawStmt *raw = lfirst_node(RawStmt, lc);
        number++;
        Oid relid;
        StatementPlan p;
        const char *relation;
        bool new_here;
        PlanCapture capture = {NIL, NIL};
        statement_verdicts(raw, &created, &relid, &p, &relation, &new_here, &capture, &inherits);
        plan_script_after(raw->stmt);
        if (number < first_checked)
            continue; /* its step rolls back as a whole if it is refused */
        ListCell *vc;
        foreach (vc, capture.verdicts) {
            pg::PolicyVerdict *v = (pg::PolicyVerdict *) lfirst(vc);
            if (v->level != 2)
                continue;
            bool allowed = false;
            for (int i = 0; i < n_allows && !allowed; i++)
                allowed = allow_rules[i] != nullptr && strcmp(allow_rules[i], v->rule) == 0;
            if (allowed)
                continue;
            ereport(ERROR,
                    (errcode(ERRCODE_SM_POLICY_VIOLATION), errmsg("%s", v->message),
                     errdetail("Statement %d of the migration would be refused when it runs, "
                               "after earlier steps committed: the migration runs in %d "
                               "transactions. Nothing was run. %s",
                               number, n_steps, v->detail),
                     errhint("%s", v->hint),
                     errcontext("statement %d of the migration: %s", number,
                                runner::statement_text(script, raw))));
        }
    }
}

}  // namespace safe_migrate::policy

using namespace safe_migrate;
using namespace safe_migrate::policy;

SM_ENTRY(migrate_plan)
{
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("migration script must not be null")));
    char *script = text_to_cstring(PG_GETARG_TEXT_PP(0));
    pg::PreparedScript prepared;
    const char *problem = pg::prepare_script(script, "plan", &prepared);
    if (problem)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid migration script: %s", problem)));

    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
    /* a syntax error points into the script, as migrate_apply's does */
    List *trees = runner::parse_script(prepared.up, "up section");
    plan_script_begin();
    List *created = NIL; /* tables the script creates before using them */
    List *inherits = NIL; /* of ScriptInherit *: existing tables made to inherit from them */
    int number = 0;
    ListCell *lc;
    foreach (lc, trees) {
        RawStmt *raw = lfirst_node(RawStmt, lc);
        number++;
        /* migrate_apply refuses it as it stands */
        if (prepared.up_wrapped)
            runner::refuse_outside_block_only(prepared.up, raw, number, "up section");
        Oid relid = InvalidOid;
        StatementPlan p;
        const char *relation = nullptr;
        bool new_here = false;
        PlanCapture capture = {NIL, NIL};
        statement_verdicts(raw, &created, &relid, &p, &relation, &new_here, &capture, &inherits);
        plan_script_after(raw->stmt);

        pg::PolicyFacts facts;
        memset(&facts, 0, sizeof(facts));
        if (capture.facts != NIL)
            facts = *(pg::PolicyFacts *) linitial(capture.facts);
        else if (OidIsValid(relid)) {
            table_facts(relid, relation, &facts);
            resolve_size(&facts);
        }
        if (relation == nullptr && list_length(capture.facts) > 1)
            sum_reached_tables(capture.facts, &facts);

        StringInfoData rules;
        initStringInfo(&rules);
        appendStringInfoChar(&rules, '[');
        int worst = 0;
        ListCell *vc;
        foreach (vc, capture.verdicts) {
            pg::PolicyVerdict *v = (pg::PolicyVerdict *) lfirst(vc);
            int level = v->level == 2 && policy_mode == 1 ? 1 : v->level;
            if (level > worst)
                worst = level;
            if (rules.len > 1)
                appendStringInfoString(&rules, ", ");
            appendStringInfoString(&rules, "{\"rule\": ");
            escape_json(&rules, v->rule);
            appendStringInfoString(&rules, ", \"level\": ");
            escape_json(&rules, level == 2 ? "error" : "warn");
            appendStringInfoString(&rules, ", \"message\": ");
            escape_json(&rules, v->message);
            appendStringInfoString(&rules, ", \"hint\": ");
            escape_json(&rules, v->hint);
            appendStringInfoChar(&rules, '}');
        }
        appendStringInfoChar(&rules, ']');

        Datum values[11];
        bool nulls[11] = {false, false, false, false, false, false, false, false, false, false,
                          false};
        values[0] = Int32GetDatum(number);
        values[1] = CStringGetTextDatum(runner::statement_text(prepared.up, raw));
        values[2] = CStringGetTextDatum(GetCommandTagName(CreateCommandTag(raw->stmt)));
        if (relation)
            values[3] = CStringGetTextDatum(relation);
        else
            nulls[3] = true;
        values[4] = CStringGetTextDatum(psprintf("%s%s%s",
                                                 new_here ? "none (created by this migration)"
                                                          : lock_name(p.lock),
                                                 referenced_locks(raw->stmt),
                                                 new_here ? "" : partition_locks(raw->stmt)));
        values[5] = Float8GetDatum(facts.rows);
        values[6] = Int64GetDatum(facts.bytes);
        nulls[5] = nulls[6] = !(OidIsValid(relid) || capture.facts != NIL);
        values[7] = CStringGetTextDatum(effect_name(p.effect));
        values[8] = CStringGetTextDatum(worst == 2 ? "blocked" : worst == 1 ? "warning" : "ok");
        values[9] = DirectFunctionCall1(jsonb_in, CStringGetDatum(rules.data));
        /* who holds, now, a lock that one of this statement's locks (on its
         * table, on the tables its foreign keys reference) would wait for */
        StringInfoData blockers;
        initStringInfo(&blockers);
        if (!new_here) {
            List *lock_relids = NIL, *lock_modes = NIL;
            statement_locks(raw->stmt, &lock_relids, &lock_modes);
            ListCell *rc, *mc;
            forboth (rc, lock_relids, mc, lock_modes) {
                char *who = runner::describe_lock_blockers(lfirst_oid(rc), lfirst_int(mc));
                if (who == nullptr)
                    continue;
                if (blockers.len > 0)
                    appendStringInfoString(&blockers, "; ");
                if (list_length(lock_relids) > 1)
                    appendStringInfo(&blockers, "on %s: ", quote_identifier(get_rel_name(lfirst_oid(rc))));
                appendStringInfoString(&blockers, who);
            }
        }
        values[10] = blockers.len > 0 ? CStringGetTextDatum(blockers.data) : (Datum) 0;
        nulls[10] = blockers.len == 0;
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum) 0;
}
