/*
 * core_bridge.cpp — see core_bridge.hpp.
 */
#include "core_bridge.hpp"

#include "core/backoff.hpp"
#include "core/script.hpp"
#include "core/segments.hpp"

extern "C" {
#include "common/pg_prng.h"
#include "utils/memutils.h"
}

#include <climits>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <string_view>

namespace safe_migrate::pg {

namespace {

void *alloc(size_t n)
{
    void *p = MemoryContextAllocExtended(CurrentMemoryContext, n, MCXT_ALLOC_NO_OOM);
    if (p == nullptr)
        throw std::bad_alloc();
    return p;
}

char *copy(std::string_view s)
{
    char *p = static_cast<char *>(alloc(s.size() + 1));
    memcpy(p, s.data(), s.size());
    p[s.size()] = '\0';
    return p;
}

/* Exception -> message in the current context (static text if even that fails). */
const char *message_of(const std::exception &e) noexcept
{
    try {
        return copy(e.what());
    } catch (...) {
        return "out of memory in safe_migrate";
    }
}

}  // namespace

const char *prepare_script(const char *script, const char *version, PreparedScript *out) noexcept
{
    try {
        core::ScriptSections sections = core::split_sections(script);
        std::string checksum = core::script_checksum(script);
        std::string chosen;
        if (version != nullptr) {
            core::validate_version(version);
            chosen = version;
        } else {
            chosen = core::derived_version(checksum);
        }
        out->up = copy(sections.up);
        out->down = sections.has_down ? copy(sections.down) : nullptr;
        out->checksum = copy(checksum);
        out->version = copy(chosen);
        out->dbmate_format = sections.dbmate_format;
        out->up_first_line = sections.up_first_line;
        out->down_first_line = sections.down_first_line;
        out->n_allows = static_cast<int>(sections.allows.size());
        out->allow_rules = static_cast<char **>(alloc(sizeof(char *) * (sections.allows.size() + 1)));
        out->allow_reasons = static_cast<char **>(alloc(sizeof(char *) * (sections.allows.size() + 1)));
        for (size_t i = 0; i < sections.allows.size(); i++) {
            out->allow_rules[i] = copy(sections.allows[i].rule);
            out->allow_reasons[i] = copy(sections.allows[i].reason);
        }
        return nullptr;
    } catch (const std::exception &e) {
        return message_of(e);
    } catch (...) {
        return "unknown error while reading the migration script";
    }
}

const char *plan_segments(const int *classes, int n, SegmentPlan *out) noexcept
{
    try {
        std::vector<core::TxClass> stmts;
        stmts.reserve(static_cast<size_t>(n));
        for (int i = 0; i < n; i++)
            stmts.push_back(static_cast<core::TxClass>(classes[i]));
        std::vector<core::Segment> segments = core::plan_segments(stmts);
        out->n_segments = static_cast<int>(segments.size());
        size_t bytes = sizeof(int) * (segments.size() + 1);
        out->first = static_cast<int *>(alloc(bytes));
        out->count = static_cast<int *>(alloc(bytes));
        out->kind = static_cast<int *>(alloc(bytes));
        for (size_t i = 0; i < segments.size(); i++) {
            out->first[i] = static_cast<int>(segments[i].first);
            out->count[i] = static_cast<int>(segments[i].count);
            out->kind[i] = static_cast<int>(segments[i].kind);
        }
        return nullptr;
    } catch (const std::exception &e) {
        return message_of(e);
    } catch (...) {
        return "unknown error while planning the migration";
    }
}

int lock_retry_delay_ms(int attempt, int base_ms) noexcept
{
    try {
        core::BackoffPolicy policy;
        policy.base_ms = base_ms;
        policy.cap_ms = base_ms > INT_MAX / 100 ? INT_MAX : base_ms * 100;
        return core::backoff_delay_ms(attempt, policy, pg_prng_double(&pg_global_prng_state));
    } catch (...) {
        return 1000;
    }
}

}  // namespace safe_migrate::pg
