#include "segments.hpp"

#include <string>

namespace safe_migrate::core {

std::vector<Segment> plan_segments(const std::vector<TxClass>& stmts) {
    // Validate everything first so nothing is planned for a script that cannot run.
    for (std::size_t i = 0; i < stmts.size(); ++i) {
        if (stmts[i] == TxClass::Forbidden) {
            throw ScriptError("statement " + std::to_string(i + 1) +
                              ": transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, ...) and "
                              "COPY ... FROM STDIN are not allowed in a migration");
        }
    }

    std::vector<Segment> segments;
    for (std::size_t i = 0; i < stmts.size(); ++i) {
        const TxClass kind = stmts[i];
        if (kind == TxClass::Transactional && !segments.empty() &&
            segments.back().kind == TxClass::Transactional) {
            ++segments.back().count;
        } else {
            segments.push_back(Segment{i, 1, kind});
        }
    }
    return segments;
}

bool is_atomic(const std::vector<Segment>& segments) { return segments.size() <= 1; }

}  // namespace safe_migrate::core
