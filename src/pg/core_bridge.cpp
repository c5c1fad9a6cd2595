/*
 * core_bridge.cpp — see core_bridge.hpp.
 */
#include "core_bridge.hpp"

#include "core/backoff.hpp"
#include "core/lexer.hpp"
#include "core/policy.hpp"
#include "core/script.hpp"
#include "core/segments.hpp"
#include "core/throttle.hpp"

extern "C" {
#include "common/pg_prng.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/memutils.h"
}

#include <algorithm>
#include <climits>
#include <new>
#include <type_traits>
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

namespace {

const char *prepare_core(const char *script, const char *version, PreparedScript *out) noexcept
{
    try {
        core::ScriptSections sections = core::split_sections(script);
        std::string checksum = core::script_checksum(script);
        std::string chosen;
        if (version != nullptr)
            chosen = core::normalize_version(version);
        else
            chosen = core::derived_version(checksum);
        out->up = copy(sections.up);
        out->down = sections.has_down ? copy(sections.down) : nullptr;
        out->checksum = copy(checksum);
        out->version = copy(chosen);
        out->up_wrapped = false;
        out->down_wrapped = false;
        out->dbmate_format = sections.dbmate_format;
        out->up_first_line = sections.up_first_line;
        out->down_first_line = sections.down_first_line;
        out->online = sections.online;
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

/* Blank text[begin, end) out (core::blank_out) in place. */
bool blank_range(char *text, size_t begin, size_t end) noexcept
{
    try {
        std::string s(text);
        core::blank_out(s, begin, end);
        memcpy(text, s.data(), s.size());
        return true;
    } catch (...) {
        return false;
    }
}

bool is_plain_begin(const Node *n)
{
    if (!IsA(n, TransactionStmt))
        return false;
    const TransactionStmt *t = (const TransactionStmt *) n;
    return (t->kind == TRANS_STMT_BEGIN || t->kind == TRANS_STMT_START) && t->options == NIL;
}

bool is_plain_commit(const Node *n)
{
    if (!IsA(n, TransactionStmt))
        return false;
    const TransactionStmt *t = (const TransactionStmt *) n;
    return t->kind == TRANS_STMT_COMMIT && !t->chain;
}

/* One past the statement's terminating semicolon (or the end of the text). */
size_t statement_end(const char *text, const RawStmt *stmt)
{
    size_t len = strlen(text);
    if (stmt->stmt_len == 0)
        return len;
    size_t end = (size_t) stmt->stmt_location + (size_t) stmt->stmt_len;
    return end < len && text[end] == ';' ? end + 1 : end;
}

/*
 * A section whose first statement is a plain BEGIN (or START TRANSACTION)
 * and whose last is a plain COMMIT (or END, COMMIT WORK, ...) means "run
 * this section in one transaction": blank the pair out of the text and say
 * so.  Anything else is left as it is; transaction control then found is
 * refused where the statements are checked.  PostgreSQL style: no C++
 * objects in this frame (raw_parser may ereport; the error is dropped, the
 * caller's own parse reports it).
 */
bool unwrap_section(char *text)
{
    if (text == nullptr)
        return false;
    MemoryContext cxt = CurrentMemoryContext;
    List *volatile trees = NIL;
    volatile bool parsed = false;
    PG_TRY();
    {
        trees = raw_parser(text, RAW_PARSE_DEFAULT);
        parsed = true;
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(cxt);
        FlushErrorState();
    }
    PG_END_TRY();
    if (!parsed || list_length(trees) < 2)
        return false;
    RawStmt *first = linitial_node(RawStmt, trees);
    RawStmt *last = llast_node(RawStmt, trees);
    if (!is_plain_begin(first->stmt) || !is_plain_commit(last->stmt))
        return false;
    size_t first_end = statement_end(text, first);
    size_t last_end = statement_end(text, last);
    if (!blank_range(text, (size_t) first->stmt_location, first_end))
        return false;
    return blank_range(text, (size_t) last->stmt_location, last_end);
}

}  // namespace

const char *prepare_script(const char *script, const char *version, PreparedScript *out) noexcept
{
    const char *problem = prepare_core(script, version, out);
    if (problem)
        return problem;
    out->up_wrapped = unwrap_section(out->up);
    out->down_wrapped = unwrap_section(out->down);
    if (!out->online && online_setting && !out->up_wrapped)
        out->online = true;
    classify_online = out->online;
    if (out->online) {
        if (out->up_wrapped)
            return "an online migration (\"-- safe_migrate:online\") runs in steps of its own: its "
                   "up section cannot be wrapped in BEGIN; ... COMMIT;";
        const char *refused = nullptr;
        char *expanded = expand_online(out->up, &refused);
        if (expanded == nullptr)
            return refused;
        out->up = expanded;
    }
    return nullptr;
}

const char *normalize_version(const char *version, char **out) noexcept
{
    try {
        *out = copy(core::normalize_version(version));
        return nullptr;
    } catch (const std::exception &e) {
        return message_of(e);
    } catch (...) {
        return "invalid migration version";
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

namespace {

std::string str(const char *s) { return s ? std::string(s) : std::string(); }

/* The core's view of the facts PostgreSQL found. */
core::StatementFacts statement_facts(const PolicyFacts *in)
{
    core::StatementFacts f;
    f.action = static_cast<core::Action>(in->action);
    f.server_version = PG_VERSION_NUM;
    f.table.name = str(in->table);
    f.table.rows = in->rows;
    f.table.bytes = in->bytes;
    f.table.created_in_transaction = in->created_in_transaction;
    f.table.temporary = in->temporary;
    f.table.partitioned = in->partitioned;
    f.table.matview = in->matview;
    f.column = str(in->column);
    f.column_type = str(in->column_type);
    f.constraint = str(in->constraint);
    f.index = str(in->index);
    f.new_name = str(in->new_name);
    f.referenced_table = str(in->referenced_table);
    f.expression = str(in->expression);
    for (int i = 0; i < in->n_columns; i++)
        f.columns.push_back(str(in->columns[i]));
    f.not_null = in->not_null;
    f.has_default = in->has_default;
    f.not_valid = in->not_valid;
    f.using_index = in->using_index;
    f.concurrently = in->concurrently;
    f.not_null_proven = in->not_null_proven;
    f.fk_columns_indexed = in->fk_columns_indexed;
    f.rewrite_reasons = in->rewrite_reasons;
    f.type_change = in->type_change;
    f.rows_affected = in->rows_affected;
    f.is_delete = in->is_delete;
    f.is_read = in->is_read;
    f.holds_exclusive_lock = in->holds_exclusive_lock;
    f.held_lock = static_cast<core::LockMode>(in->held_lock);
    f.held_on = str(in->held_on);
    f.domain = str(in->domain);
    f.domain_command = str(in->domain_command);
    f.bound_proven = in->bound_proven;
    f.default_partition = in->default_partition;
    f.partition = str(in->partition);
    f.parent = str(in->parent);
    f.sweep = str(in->sweep);
    f.via = str(in->via);
    f.cascade = in->cascade;
    f.added_kind = str(in->added_kind);
    f.exclusion = in->exclusion;
    f.primary_key = in->primary_key;
    f.typed_of = str(in->typed_of);
    return f;
}

}  // namespace

const char *evaluate_policy(const PolicyFacts *in, double large_rows, int64 large_bytes,
                            const char *rule_levels, PolicyVerdict **verdicts,
                            int *n_verdicts) noexcept
{
    try {
        core::StatementFacts f = statement_facts(in);
        core::Thresholds t;
        t.large_table_rows = large_rows;
        t.large_table_bytes = large_bytes;
        core::RuleLevels levels = core::parse_rule_levels(str(rule_levels));
        std::vector<core::Verdict> found = core::evaluate(f, t, levels);

        auto *out = static_cast<PolicyVerdict *>(alloc(sizeof(PolicyVerdict) * (found.size() + 1)));
        for (size_t i = 0; i < found.size(); i++) {
            out[i].rule = copy(found[i].rule);
            out[i].level = static_cast<int>(found[i].level);
            out[i].message = copy(found[i].message);
            out[i].detail = copy(found[i].detail);
            out[i].hint = copy(found[i].hint);
        }
        *verdicts = out;
        *n_verdicts = static_cast<int>(found.size());
        return nullptr;
    } catch (const std::exception &e) {
        return message_of(e);
    } catch (...) {
        return "unknown error while checking the safe-DDL policy";
    }
}

const char *policy_would_fire(const PolicyFacts *in, double large_rows, int64 large_bytes,
                              const char *rule_levels, bool *fires) noexcept
{
    try {
        core::Thresholds t;
        t.large_table_rows = large_rows;
        t.large_table_bytes = large_bytes;
        *fires = core::any_verdict(statement_facts(in), t,
                                   core::parse_rule_levels(str(rule_levels)));
        return nullptr;
    } catch (const std::exception &e) {
        return message_of(e);
    } catch (...) {
        return "unknown error while checking the safe-DDL policy";
    }
}

const char *check_rule_levels(const char *spec) noexcept
{
    try {
        (void) core::parse_rule_levels(str(spec));
        return nullptr;
    } catch (const std::exception &e) {
        return message_of(e);
    } catch (...) {
        return "invalid rule levels";
    }
}

bool is_known_rule(const char *name) noexcept
{
    try {
        return name != nullptr && core::is_rule(name);
    } catch (...) {
        return false;
    }
}

const RuleRow *rule_rows(int *n) noexcept
{
    *n = 0;
    try {
        const std::vector<core::RuleInfo> &all = core::rules();
        auto *rows = static_cast<RuleRow *>(alloc(sizeof(RuleRow) * (all.size() + 1)));
        for (size_t i = 0; i < all.size(); i++) {
            rows[i].name = copy(all[i].name);
            rows[i].default_level = all[i].default_level == core::Level::Error  ? "error"
                                    : all[i].default_level == core::Level::Warn ? "warn"
                                                                                : "off";
            rows[i].size_dependent = all[i].size_dependent;
            rows[i].summary = copy(all[i].summary);
        }
        *n = static_cast<int>(all.size());
        return rows;
    } catch (...) {
        return nullptr;
    }
}

/* The throttle lives in palloc'd memory: it must need no destructor. */
static_assert(std::is_trivially_destructible_v<core::Throttle>,
              "core::Throttle is kept in PostgreSQL memory without its destructor running");

struct ThrottleState {
    alignas(core::Throttle) unsigned char storage[sizeof(core::Throttle)];
    core::Throttle *get() { return std::launder(reinterpret_cast<core::Throttle *>(storage)); }
    const core::Throttle *get() const
    {
        return std::launder(reinterpret_cast<const core::Throttle *>(storage));
    }
};

const char *throttle_create(const ThrottleSettings *settings, ThrottleState **state) noexcept
{
    try {
        core::ThrottleConfig config;
        config.initial_batch = settings->initial_batch;
        config.max_batch = std::max(settings->initial_batch * 100, 100000);
        /* with a rate cap, no batch holds more than a second's worth of rows */
        if (settings->max_rows_per_second > 0)
            config.max_batch = std::max(1, std::min(config.max_batch, settings->max_rows_per_second));
        config.target_batch_ms = settings->target_batch_ms;
        config.max_rows_per_second = settings->max_rows_per_second;
        config.pause_ms = settings->pause_ms;
        auto *s = static_cast<ThrottleState *>(alloc(sizeof(ThrottleState)));
        new (s->storage) core::Throttle(config);
        *state = s;
        return nullptr;
    } catch (const std::exception &e) {
        return message_of(e);
    } catch (...) {
        return "invalid throttle settings";
    }
}

int throttle_first_batch(const ThrottleState *state) noexcept { return state->get()->first_batch(); }

void throttle_after(ThrottleState *state, long rows, int batch_size, double duration_ms,
                    int lock_waiters, int *next_batch, double *sleep_ms, double *rate) noexcept
{
    try {
        core::BatchObservation obs{rows, batch_size, duration_ms, lock_waiters};
        core::ThrottleDecision d = state->get()->after_batch(obs);
        *next_batch = d.next_batch;
        *sleep_ms = d.sleep_ms;
        *rate = state->get()->rate_rows_per_second();
    } catch (...) {
        *next_batch = batch_size;
        *sleep_ms = 1000;
    }
}

}  // namespace safe_migrate::pg
