/*
 * classify.hpp — facts about one parsed statement, read off its raw parse
 * tree (never off its text).
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "nodes/parsenodes.h"
}

#include "core/segments.hpp"

namespace safe_migrate::runner {

/* How the statement may be grouped into transactions. */
core::TxClass classify_statement(const RawStmt *stmt);

/* True if the statement leaves state in its session that outlives the
 * transaction: a temporary table, view or sequence (or SELECT INTO TEMP),
 * a function in pg_temp, a prepared statement, a cursor WITH HOLD.  (LISTEN
 * is Forbidden.)
 * A migration with one runs in a background runner, whose session ends
 * with the migration, instead of in the caller's session, where the state
 * would outlive the migration (and, behind a pooler, pass to the next
 * client of the server connection). */
bool keeps_session_state(const RawStmt *stmt);

/* True for a SELECT that calls migrate_backfill_wait (in its target list or
 * FROM clause): such a statement runs in a transaction of its own. */
bool waits_for_backfill(const RawStmt *stmt);

/* raw_parser() on a script: a syntax error points into the script (as an
 * internal query with its position) instead of into the calling query, with
 * "<what> of the migration script" as its context. */
List *parse_script(const char *sql, const char *what);

/* Why a Forbidden statement is forbidden (for the error message). */
const char *forbidden_reason(const RawStmt *stmt);

/* BEGIN or START TRANSACTION without transaction modes. */
bool opens_transaction_plainly(const RawStmt *stmt);

/* What the statement is, as an error message names it ("VACUUM",
 * "CREATE INDEX CONCURRENTLY", ...). */
const char *statement_kind(const RawStmt *stmt);

/* The statement's own text, trimmed, palloc'd in the current context. */
char *statement_text(const char *script, const RawStmt *stmt);

/* True if the statement builds or rebuilds indexes concurrently, so a
 * failure may leave an INVALID index behind. */
bool may_leave_invalid_index(const RawStmt *stmt);

/* In a section wrapped in its own BEGIN; ... COMMIT;: ERROR (25001) if the
 * statement cannot run inside a transaction block.  number is 1-based, what
 * names the section ("up section"). */
void refuse_outside_block_only(const char *sql, const RawStmt *stmt, int number, const char *what);

}  // namespace safe_migrate::runner
