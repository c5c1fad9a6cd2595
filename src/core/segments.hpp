#pragma once

#include <cstddef>
#include <vector>

#include "error.hpp"

namespace safe_migrate::core {

enum class TxClass {
    Transactional,     // can share a transaction with other statements of the migration
    OwnTransaction,    // allowed in a transaction block but must be committed before later
                       // statements can use its effect (ALTER TYPE ... ADD VALUE): runs alone
                       // in its own transaction
    NonTransactional,  // cannot run inside a transaction block (CREATE INDEX CONCURRENTLY,
                       // VACUUM, ...): runs alone, top level
    Forbidden          // transaction control (BEGIN/COMMIT/SAVEPOINT...), COPY FROM STDIN:
                       // not allowed in a migration
};

// Statements [first, first + count) of the migration. `kind` is Transactional
// for a group of transactional statements, else the single statement's class.
struct Segment {
    std::size_t first;
    std::size_t count;
    TxClass kind;
};

// Consecutive Transactional statements form one segment; every OwnTransaction
// or NonTransactional statement is a segment of its own. Throws ScriptError
// ("statement N: ... not allowed ...", N 1-based) for the first Forbidden one.
std::vector<Segment> plan_segments(const std::vector<TxClass>& stmts);

// True when there is at most one segment (the migration runs all-or-nothing).
bool is_atomic(const std::vector<Segment>& segments);

}  // namespace safe_migrate::core
