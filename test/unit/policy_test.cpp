// Unit tests of the safe-DDL rule engine (src/core/policy.*).
//
// The suite reads like the rule list: every entry of the registry has one
// case below (kCases) with facts that trigger it on a large table, the
// lock it is about and concrete substrings its hint must contain in the
// user's own names.  Generic properties (large / small / created in this
// transaction / levels / no placeholders) run over every case; rule-specific
// safe variants follow, then thresholds, levels, the registry and formatting.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "core/policy.hpp"
#include "test_util.hpp"

namespace sm = safe_migrate::core;
using sm::Action;
using sm::Level;
using sm::LockMode;
using sm::StatementFacts;
using sm::Verdict;

namespace safe_migrate::core {
// Readable gtest output for levels.
void PrintTo(Level l, std::ostream* os)
{
    *os << (l == Level::Off ? "Off" : l == Level::Warn ? "Warn" : "Error");
}
}  // namespace safe_migrate::core

namespace {

constexpr std::int64_t kKiB = 1024;
constexpr std::int64_t kMiB = 1024 * kKiB;
constexpr std::int64_t kGiB = 1024 * kMiB;
constexpr std::int64_t kTiB = 1024 * kGiB;

const sm::Thresholds kDefaults;  // 1M rows, 1 GB
const sm::RuleLevels kNoOverrides;

sm::TableFacts large_table(const std::string& name = "public.users")
{
    sm::TableFacts t;
    t.name = name;
    t.rows = 2'000'000;  // "2.0M"
    t.bytes = 3 * kGiB;  // "3072 MB"
    return t;
}

sm::TableFacts small_table(const std::string& name = "public.users")
{
    sm::TableFacts t;
    t.name = name;
    t.rows = 500;
    t.bytes = 64 * kKiB;
    return t;
}

std::vector<Verdict> eval(const StatementFacts& f, const sm::Thresholds& t = kDefaults,
                          const sm::RuleLevels& l = kNoOverrides)
{
    std::vector<Verdict> out = sm::evaluate(f, t, l);
    // the policy's first look (no messages) decides the same, every case
    EXPECT_EQ(sm::any_verdict(f, t, l), !out.empty());
    return out;
}

std::vector<std::string> names_of(const std::vector<Verdict>& vs)
{
    std::vector<std::string> out;
    for (const auto& v : vs)
        out.push_back(v.rule);
    return out;
}

const Verdict* find_verdict(const std::vector<Verdict>& vs, const std::string& rule)
{
    for (const auto& v : vs)
        if (v.rule == rule)
            return &v;
    return nullptr;
}

const sm::RuleInfo* info_of(std::string_view rule)
{
    for (const auto& r : sm::rules())
        if (r.name == rule)
            return &r;
    return nullptr;
}

bool contains(const std::string& hay, const std::string& needle)
{
    return hay.find(needle) != std::string::npos;
}

#define EXPECT_CONTAINS(hay, needle)                                                     \
    EXPECT_PRED2(contains, hay, needle)
#define EXPECT_NOT_CONTAINS(hay, needle)                                                 \
    EXPECT_FALSE(contains(hay, needle)) << "\"" << (hay) << "\" contains \"" << (needle) << "\""

/* ------------------------------------------------------------------------ */
/* One case per rule                                                        */
/* ------------------------------------------------------------------------ */

struct RuleCase {
    std::string rule;
    Level default_level;
    bool size_dependent;
    StatementFacts facts;            // on a large table; only this rule applies
    bool about_lock;                 // detail names the lock
    LockMode lock;                   // which one, if about_lock
    std::vector<std::string> hint;   // concrete substrings of the hint
    std::vector<std::string> detail; // further substrings of the detail
    bool counts_rows = true;         // the message gives rows and bytes (a database: bytes only)
};

std::ostream& operator<<(std::ostream& os, const RuleCase& c) { return os << c.rule; }

StatementFacts on_users(Action a)
{
    StatementFacts f;
    f.action = a;
    f.table = large_table();
    return f;
}

std::vector<RuleCase> make_cases()
{
    std::vector<RuleCase> cases;

    {  // ALTER TABLE public.users ADD COLUMN full_name text NOT NULL
        auto f = on_users(Action::AddColumn);
        f.column = "full_name";
        f.column_type = "text";
        f.not_null = true;
        cases.push_back({"adding-required-field", Level::Error, false, f, true,
                         LockMode::AccessExclusive,
                         {"ALTER TABLE public.users ADD COLUMN full_name text;", "in batches",
                          "SELECT migrate_backfill('public.users', $$full_name = <value>$$, "
                          "'full_name IS NULL');",
                          "SELECT migrate_backfill_wait(",
                          "ALTER TABLE public.users ADD CONSTRAINT users_full_name_not_null CHECK "
                          "(full_name IS NOT NULL) NOT VALID;",
                          "ALTER TABLE public.users VALIDATE CONSTRAINT users_full_name_not_null;",
                          "ALTER TABLE public.users ALTER COLUMN full_name SET NOT NULL;",
                          "ALTER TABLE public.users DROP CONSTRAINT users_full_name_not_null;",
                          "DEFAULT"},
                         {}});
    }
    {  // ALTER TABLE public.orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users
        StatementFacts f;
        f.action = Action::AddForeignKey;
        f.table = large_table("public.orders");
        f.constraint = "orders_user_id_fkey";
        f.columns = {"user_id"};
        f.referenced_table = "public.users";
        f.fk_columns_indexed = true;
        cases.push_back({"adding-foreign-key-constraint", Level::Error, true, f, true,
                         LockMode::ShareRowExclusive,
                         {"ALTER TABLE public.orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY "
                          "(user_id) REFERENCES public.users NOT VALID;",
                          "ALTER TABLE public.orders VALIDATE CONSTRAINT orders_user_id_fkey;"},
                         {"public.orders and public.users"}});
    }
    {  // ALTER TABLE public.users DROP COLUMN legacy_flag
        auto f = on_users(Action::DropColumn);
        f.column = "legacy_flag";
        cases.push_back({"ban-drop-column", Level::Error, false, f, false, LockMode::None,
                         {"legacy_flag", "-- safe_migrate:allow ban-drop-column"},
                         {"legacy_flag"}});
    }
    {  // DROP TABLE public.users
        auto f = on_users(Action::DropTable);
        cases.push_back({"ban-drop-table", Level::Error, false, f, false, LockMode::None,
                         {"public.users", "-- safe_migrate:allow ban-drop-table"},
                         {"public.users"}});
    }
    {  // TRUNCATE public.users
        auto f = on_users(Action::Truncate);
        cases.push_back({"ban-truncate", Level::Error, false, f, true, LockMode::AccessExclusive,
                         {"-- safe_migrate:allow ban-truncate"},
                         {}});
    }
    {  // TRUNCATE public.accounts CASCADE, reaching public.users through its foreign key
        auto f = on_users(Action::Truncate);
        f.cascade = true;
        f.via = "TRUNCATE public.accounts CASCADE";
        cases.push_back({"ban-truncate-cascade", Level::Error, false, f, true,
                         LockMode::AccessExclusive,
                         {"-- safe_migrate:allow ban-truncate-cascade"},
                         {"public.users"}});
    }
    {  // DROP DATABASE shop
        StatementFacts f;
        f.action = Action::DropDatabase;
        f.table = large_table("shop");
        cases.push_back({"ban-drop-database", Level::Error, false, f, false, LockMode::None,
                         {"-- safe_migrate:allow ban-drop-database"},
                         {"shop"},
                         false});
    }
    {  // ALTER TABLE public.users ALTER COLUMN amount TYPE numeric(12,2)
        auto f = on_users(Action::TableRewrite);
        f.type_change = true;
        f.rewrite_reasons = sm::rewrite_reason::kColumnRewrite;
        f.column = "amount";
        f.column_type = "numeric(12,2)";
        cases.push_back({"changing-column-type", Level::Error, true, f, true,
                         LockMode::AccessExclusive,
                         {"ALTER TABLE public.users ADD COLUMN amount_new numeric(12,2);",
                          "switch the application to amount_new", "drop amount"},
                         {}});
    }
    {  // CLUSTER public.users USING users_pkey
        auto f = on_users(Action::Cluster);
        f.index = "users_pkey";
        cases.push_back({"cluster", Level::Error, true, f, true, LockMode::AccessExclusive,
                         {"pg_repack", "-- safe_migrate:allow cluster"},
                         {}});
    }
    {  // ALTER TABLE public.users ADD CONSTRAINT users_age_check CHECK (age >= 0)
        auto f = on_users(Action::AddCheck);
        f.constraint = "users_age_check";
        f.expression = "age >= 0";
        cases.push_back({"constraint-missing-not-valid", Level::Error, true, f, true,
                         LockMode::AccessExclusive,
                         {"ALTER TABLE public.users ADD CONSTRAINT users_age_check CHECK (age >= 0) "
                          "NOT VALID;",
                          "ALTER TABLE public.users VALIDATE CONSTRAINT users_age_check;"},
                         {}});
    }
    {  // ALTER TABLE public.users ADD CONSTRAINT users_email_key UNIQUE (email)
        auto f = on_users(Action::AddUniqueOrPrimary);
        f.constraint = "users_email_key";
        f.columns = {"email"};
        cases.push_back({"disallowed-unique-constraint", Level::Error, true, f, true,
                         LockMode::AccessExclusive,
                         {"CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON public.users (email);",
                          "ALTER TABLE public.users ADD CONSTRAINT users_email_key UNIQUE USING "
                          "INDEX users_email_key;"},
                         {}});
    }
    {  // ALTER TABLE public.orders ADD FOREIGN KEY (user_id) REFERENCES public.users NOT VALID (no index)
        StatementFacts f;
        f.action = Action::AddForeignKey;
        f.table = large_table("public.orders");
        f.columns = {"user_id"};
        f.referenced_table = "public.users";
        f.not_valid = true;  // so only the index rule applies
        f.fk_columns_indexed = false;
        cases.push_back({"foreign-key-missing-index", Level::Warn, false, f, false,
                         LockMode::None,
                         {"CREATE INDEX CONCURRENTLY orders_user_id_idx ON public.orders (user_id);"},
                         {"public.users", "public.orders"}});
    }
    {  // UPDATE public.users SET ... touching 1.5M rows
        auto f = on_users(Action::LargeDml);
        f.rows_affected = 1'500'000;
        f.is_delete = false;
        cases.push_back({"large-unbatched-dml", Level::Error, false, f, false, LockMode::None,
                         {"Update public.users in batches", "SELECT migrate_backfill('public.users', ",
                          "SELECT migrate_backfill_wait("},
                         {}});
    }
    {  // ALTER TABLE public.users RENAME COLUMN full_name TO display_name
        auto f = on_users(Action::RenameColumn);
        f.column = "full_name";
        f.new_name = "display_name";
        cases.push_back({"renaming-column", Level::Error, false, f, false, LockMode::None,
                         {"Add display_name as a new column", "move the application to display_name",
                          "ALTER TABLE public.users DROP COLUMN full_name"},
                         {"full_name"}});
    }
    {  // ALTER TYPE public.status RENAME VALUE 'active' TO 'enabled' (public.users.status uses it)
        auto f = on_users(Action::RenameEnumValue);
        f.column = "status";
        f.column_type = "public.status";
        f.expression = "'active'";
        f.new_name = "'enabled'";
        cases.push_back({"renaming-enum-value", Level::Error, false, f, false, LockMode::None,
                         {"ALTER TYPE public.status ADD VALUE 'enabled';",
                          "SELECT migrate_backfill('public.users', $$status = 'enabled'$$, 'status = "
                          "''active''');",
                          "PostgreSQL cannot drop an enum value"},
                         {"'active'", "public.status"}});
    }
    {  // ALTER TABLE public.users RENAME TO accounts
        auto f = on_users(Action::RenameTable);
        f.new_name = "accounts";
        cases.push_back({"renaming-table", Level::Error, false, f, false, LockMode::None,
                         {"ALTER TABLE public.users RENAME TO accounts;",
                          "CREATE VIEW public.users AS SELECT * FROM public.accounts;"},
                         {"public.users"}});
    }
    {  // CREATE INDEX users_email_idx ON public.users (email)
        auto f = on_users(Action::CreateIndex);
        f.index = "users_email_idx";
        f.columns = {"email"};
        cases.push_back({"require-concurrent-index-creation", Level::Error, true, f, true,
                         LockMode::Share,
                         {"CREATE INDEX CONCURRENTLY users_email_idx ON public.users (email);"},
                         {}});
    }
    {  // DROP INDEX users_email_idx
        auto f = on_users(Action::DropIndex);
        f.index = "users_email_idx";
        cases.push_back({"require-concurrent-index-deletion", Level::Error, true, f, true,
                         LockMode::AccessExclusive,
                         {"DROP INDEX CONCURRENTLY users_email_idx;"},
                         {}});
    }
    {  // REINDEX INDEX users_email_idx
        auto f = on_users(Action::Reindex);
        f.index = "users_email_idx";
        cases.push_back({"require-concurrent-reindex", Level::Error, true, f, true, LockMode::Share,
                         {"REINDEX INDEX CONCURRENTLY users_email_idx;"},
                         {}});
    }
    {  // ALTER TABLE public.users SET TABLESPACE fast
        auto f = on_users(Action::SetTablespace);
        cases.push_back({"set-tablespace", Level::Error, true, f, true, LockMode::AccessExclusive,
                         {"pg_repack --tablespace", "-- safe_migrate:allow set-tablespace"},
                         {}});
    }
    {  // BEGIN; ADD CONSTRAINT ... NOT VALID; VALIDATE CONSTRAINT ...
        auto f = on_users(Action::ValidateConstraint);
        f.constraint = "users_full_name_nn";
        f.holds_exclusive_lock = true;
        cases.push_back({"validate-in-locking-transaction", Level::Error, true, f, true,
                         LockMode::AccessExclusive,
                         {"ALTER TABLE public.users VALIDATE CONSTRAINT users_full_name_nn;",
                          "migration of its own"},
                         {"SHARE UPDATE EXCLUSIVE"}});
    }
    {  // ALTER TABLE public.users ALTER COLUMN full_name SET NOT NULL
        auto f = on_users(Action::SetNotNull);
        f.column = "full_name";
        cases.push_back({"setting-not-null-field", Level::Error, true, f, true,
                         LockMode::AccessExclusive,
                         {"ALTER TABLE public.users ADD CONSTRAINT users_full_name_not_null CHECK "
                          "(full_name IS NOT NULL) NOT VALID;",
                          "ALTER TABLE public.users VALIDATE CONSTRAINT users_full_name_not_null;",
                          "ALTER TABLE public.users ALTER COLUMN full_name SET NOT NULL;",
                          "ALTER TABLE public.users DROP CONSTRAINT users_full_name_not_null;"},
                         {}});
    }
    {  // ALTER TABLE public.users ADD COLUMN created_at timestamptz DEFAULT clock_timestamp()
        auto f = on_users(Action::TableRewrite);
        f.rewrite_reasons = sm::rewrite_reason::kDefaultValue;
        f.column = "created_at";
        f.column_type = "timestamp with time zone";
        f.added_kind = "volatile default";
        cases.push_back({"table-rewrite", Level::Error, true, f, true, LockMode::AccessExclusive,
                         {"ALTER TABLE public.users ALTER COLUMN created_at SET DEFAULT",
                          "in batches"},
                         {"volatile default"}});
    }
    {  // ALTER TABLE public.events ATTACH PARTITION public.users FOR VALUES ... (no proof)
        auto f = on_users(Action::AttachPartition);
        f.partition = "public.users";
        f.parent = "public.events";
        f.expression = "(at >= 1) AND (at < 100)";
        cases.push_back({"attach-partition-scan", Level::Error, true, f, true,
                         LockMode::AccessExclusive,
                         {"ALTER TABLE public.users ADD CONSTRAINT users_bound CHECK ((at >= 1) AND "
                          "(at < 100)) NOT VALID;",
                          "ALTER TABLE public.users VALIDATE CONSTRAINT users_bound;",
                          "ALTER TABLE public.events ATTACH PARTITION public.users"},
                         {}});
    }
    {  // ALTER DOMAIN public.qty ADD CONSTRAINT qty_positive CHECK (VALUE > 0)
        auto f = on_users(Action::DomainConstraint);
        f.domain = "public.qty";
        f.domain_command = "ADD CONSTRAINT qty_positive";
        f.column = "qty";
        cases.push_back({"ban-alter-domain-with-add-constraint", Level::Error, true, f, true,
                         LockMode::Share,
                         {"ALTER DOMAIN public.qty ADD CONSTRAINT qty_positive ... NOT VALID",
                          "ALTER TABLE public.users ADD CONSTRAINT"},
                         {}});
    }
    {  // ALTER TABLE public.users DETACH PARTITION public.users_2020
        auto f = on_users(Action::DetachPartition);
        f.partition = "public.users_2020";
        cases.push_back({"require-concurrent-partition-detach", Level::Error, true, f, true,
                         LockMode::AccessExclusive,
                         {"ALTER TABLE public.users DETACH PARTITION public.users_2020 CONCURRENTLY;"},
                         {}});
    }
    {  // REFRESH MATERIALIZED VIEW public.users (a matview without a unique index)
        auto f = on_users(Action::RefreshMatview);
        cases.push_back({"require-concurrent-refresh", Level::Error, true, f, true,
                         LockMode::AccessExclusive,
                         {"CREATE UNIQUE INDEX CONCURRENTLY users_key ON public.users (<columns>);",
                          "REFRESH MATERIALIZED VIEW CONCURRENTLY public.users;"},
                         {}});
    }
    {  // VACUUM FULL public.users
        auto f = on_users(Action::VacuumFull);
        cases.push_back({"vacuum-full", Level::Error, true, f, true, LockMode::AccessExclusive,
                         {"plain VACUUM", "pg_repack"},
                         {}});
    }
    return cases;
}

const std::vector<RuleCase>& cases()
{
    static const std::vector<RuleCase> c = make_cases();
    return c;
}

const RuleCase& case_of(const std::string& rule)
{
    for (const auto& c : cases())
        if (c.rule == rule)
            return c;
    ADD_FAILURE() << "no case for " << rule;
    return cases().front();
}

/* Every rule has a case, and every case is a rule: the list stays complete. */
TEST(PolicyRuleList, EveryRuleHasACase)
{
    std::set<std::string> from_registry, from_cases;
    for (const auto& r : sm::rules())
        from_registry.insert(std::string(r.name));
    for (const auto& c : cases())
        EXPECT_TRUE(from_cases.insert(c.rule).second) << "duplicate case " << c.rule;
    EXPECT_EQ(from_registry, from_cases);
}

class PolicyRule : public ::testing::TestWithParam<RuleCase> {};

TEST_P(PolicyRule, RegistryEntryMatches)
{
    const RuleCase& c = GetParam();
    const sm::RuleInfo* info = info_of(c.rule);
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->default_level, c.default_level);
    EXPECT_EQ(info->size_dependent, c.size_dependent);
    EXPECT_FALSE(info->summary.empty());
    EXPECT_TRUE(sm::is_rule(c.rule));
}

TEST_P(PolicyRule, AppliesOnLargeTableWithFullExplanation)
{
    const RuleCase& c = GetParam();
    auto vs = eval(c.facts);
    ASSERT_EQ(vs.size(), 1u) << ::testing::PrintToString(names_of(vs));
    const Verdict& v = vs[0];
    EXPECT_EQ(v.rule, c.rule);
    EXPECT_EQ(v.level, c.default_level);

    // message: rule "<name>": ... table name and its size
    EXPECT_EQ(v.message.rfind("rule \"" + c.rule + "\": ", 0), 0u) << v.message;
    EXPECT_CONTAINS(v.message, c.facts.table.name);
    EXPECT_CONTAINS(v.message, "3072 MB");
    if (c.counts_rows) {
        EXPECT_CONTAINS(v.message, "2.0M rows");
        EXPECT_CONTAINS(v.message, sm::format_rows(c.facts.table.rows) + " rows, " +
                                       sm::format_bytes(c.facts.table.bytes));
    }

    // detail: non-empty, the lock and what it blocks when it is about a lock
    EXPECT_FALSE(v.detail.empty());
    if (c.about_lock) {
        EXPECT_CONTAINS(v.detail, std::string(sm::lock_name(c.lock)) + " lock");
        EXPECT_CONTAINS(v.detail, std::string(sm::lock_blocks(c.lock)));
    }
    for (const auto& d : c.detail)
        EXPECT_CONTAINS(v.detail, d);

    // hint: the safe way, in the user's own names
    EXPECT_FALSE(v.hint.empty());
    for (const auto& h : c.hint)
        EXPECT_CONTAINS(v.hint, h);
}

TEST_P(PolicyRule, SmallTableExemptOnlyIfSizeDependent)
{
    const RuleCase& c = GetParam();
    StatementFacts f = c.facts;
    f.table = small_table(c.facts.table.name);
    auto vs = eval(f);
    const sm::RuleInfo* info = info_of(c.rule);
    ASSERT_NE(info, nullptr);
    if (info->size_dependent) {
        EXPECT_TRUE(vs.empty()) << ::testing::PrintToString(names_of(vs));
    } else {
        ASSERT_EQ(vs.size(), 1u) << ::testing::PrintToString(names_of(vs));
        EXPECT_EQ(vs[0].rule, c.rule);
        EXPECT_EQ(vs[0].level, c.default_level);
        EXPECT_CONTAINS(vs[0].message, c.counts_rows ? "500 rows, 64 kB" : "64 kB");
    }
}

TEST_P(PolicyRule, TableCreatedInThisTransactionIsExempt)
{
    const RuleCase& c = GetParam();
    StatementFacts f = c.facts;
    f.table.created_in_transaction = true;
    EXPECT_TRUE(eval(f).empty());
    f.table = small_table(c.facts.table.name);
    f.table.created_in_transaction = true;
    EXPECT_TRUE(eval(f).empty());
}

TEST_P(PolicyRule, LevelsOffWarnError)
{
    const RuleCase& c = GetParam();
    EXPECT_TRUE(eval(c.facts, kDefaults, sm::parse_rule_levels(c.rule + "=off")).empty());

    auto warn = eval(c.facts, kDefaults, sm::parse_rule_levels(c.rule + "=warn"));
    ASSERT_EQ(warn.size(), 1u);
    EXPECT_EQ(warn[0].level, Level::Warn);

    auto error = eval(c.facts, kDefaults, sm::parse_rule_levels(c.rule + "=error"));
    ASSERT_EQ(error.size(), 1u);
    EXPECT_EQ(error[0].level, Level::Error);

    // an override of another rule leaves this one at its default
    std::string other = c.rule == "vacuum-full" ? "cluster" : "vacuum-full";
    auto others = eval(c.facts, kDefaults, sm::parse_rule_levels(other + "=off"));
    ASSERT_EQ(others.size(), 1u);
    EXPECT_EQ(others[0].level, c.default_level);
}

TEST_P(PolicyRule, NoPlaceholdersWhenFactsGiveTheNames)
{
    const RuleCase& c = GetParam();
    for (const auto& table : {large_table(c.facts.table.name), small_table(c.facts.table.name)}) {
        StatementFacts f = c.facts;
        f.table = table;
        for (const auto& v : eval(f)) {
            for (const std::string& text : {v.message, v.detail, v.hint}) {
                for (const char* ph : {"<column>", "<table>", "<type>", "<new type>",
                                       "<condition>", "<index>"}) {
                    EXPECT_NOT_CONTAINS(text, ph);
                }
            }
        }
    }
}

TEST_P(PolicyRule, BytesThresholdAloneMakesATableLarge)
{
    const RuleCase& c = GetParam();
    StatementFacts f = c.facts;
    f.table.rows = 10;
    f.table.bytes = kDefaults.large_table_bytes;
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u) << ::testing::PrintToString(names_of(vs));
    EXPECT_EQ(vs[0].rule, c.rule);
}

std::string param_name(const ::testing::TestParamInfo<RuleCase>& info)
{
    std::string n = info.param.rule;
    std::replace(n.begin(), n.end(), '-', '_');
    return n;
}

INSTANTIATE_TEST_SUITE_P(EveryRule, PolicyRule, ::testing::ValuesIn(cases()), param_name);

/* ------------------------------------------------------------------------ */
/* Rule by rule: what triggers, what the safe variants are                  */
/* ------------------------------------------------------------------------ */

TEST(AddingRequiredField, NullableColumnIsFine)
{
    auto f = case_of("adding-required-field").facts;
    f.not_null = false;
    EXPECT_TRUE(eval(f).empty());
}

TEST(AddingRequiredField, ColumnWithDefaultIsFine)
{
    auto f = case_of("adding-required-field").facts;
    f.has_default = true;
    EXPECT_TRUE(eval(f).empty());
}

TEST(AddingRequiredField, EmptyTableIsFine)
{
    auto f = case_of("adding-required-field").facts;
    f.table.rows = 0;
    f.table.bytes = 8 * kKiB;
    EXPECT_TRUE(eval(f).empty());
    f.table.rows = 1;
    EXPECT_EQ(names_of(eval(f)), std::vector<std::string>{"adding-required-field"});
}

TEST(AddingRequiredField, MessageNamesTheColumn)
{
    auto vs = eval(case_of("adding-required-field").facts);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "ADD COLUMN full_name NOT NULL without a default on table "
                                   "public.users (2.0M rows, 3072 MB)");
}

// A column holding the enum inside its values (an array of it, a composite
// type): its rows cannot be moved by comparing the column with the label.
TEST(RenamingEnumValue, HeldInsideIsRewrittenValueByValue)
{
    auto f = case_of("renaming-enum-value").facts;
    f.column = "history";
    f.via = "public.status[]";
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "changes column history (public.status[]) of table public.users");
    EXPECT_CONTAINS(vs[0].hint, "ALTER TYPE public.status ADD VALUE 'enabled';");
    EXPECT_CONTAINS(vs[0].hint, "$$history = <history with 'enabled' for 'active'>$$, "
                                "'<history holds ''active''>'");
    EXPECT_EQ(vs[0].hint.find("history = 'enabled'"), std::string::npos);
}

TEST(AddingRequiredField, MissingTypeIsAPlaceholder)
{
    auto f = case_of("adding-required-field").facts;
    f.column_type.clear();
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].hint, "ADD COLUMN full_name <type>;");
}

TEST(AddingForeignKeyConstraint, NotValidIsFine)
{
    auto f = case_of("adding-foreign-key-constraint").facts;
    f.not_valid = true;
    EXPECT_TRUE(eval(f).empty());
}

TEST(AddingForeignKeyConstraint, DerivesConstraintNameWhenNotGiven)
{
    auto f = case_of("adding-foreign-key-constraint").facts;
    f.constraint.clear();
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].hint, "ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id)");
    EXPECT_CONTAINS(vs[0].hint, "VALIDATE CONSTRAINT orders_user_id_fkey;");
}

TEST(AddingForeignKeyConstraint, MultiColumnKey)
{
    auto f = case_of("adding-foreign-key-constraint").facts;
    f.columns = {"tenant_id", "user_id"};
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].hint, "FOREIGN KEY (tenant_id, user_id) REFERENCES public.users NOT VALID");
}

TEST(AddingForeignKeyConstraint, TypeChangeOfReferencedColumnChecksItAgain)
{
    auto f = case_of("adding-foreign-key-constraint").facts;
    f.constraint = "orders_user_id_fkey";
    f.via = "ALTER TABLE public.users ALTER COLUMN id TYPE bigint";
    f.expression = "FOREIGN KEY (user_id) REFERENCES users(id)";
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "ALTER TABLE public.users ALTER COLUMN id TYPE bigint checks foreign key "
                                   "orders_user_id_fkey of table public.orders");
    EXPECT_CONTAINS(vs[0].detail, "every row of public.orders while holding an ACCESS EXCLUSIVE lock");
    EXPECT_CONTAINS(vs[0].hint, "ALTER TABLE public.orders DROP CONSTRAINT orders_user_id_fkey; "
                                "ALTER TABLE public.users ALTER COLUMN id TYPE bigint; "
                                "ALTER TABLE public.orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY "
                                "(user_id) REFERENCES users(id) NOT VALID; ALTER TABLE public.orders "
                                "VALIDATE CONSTRAINT orders_user_id_fkey;");
    // NOT VALID keys are added again without a check: nothing to say
    f.not_valid = true;
    EXPECT_TRUE(eval(f).empty());
}

TEST(AddingForeignKeyConstraint, AttachPartitionChecksTheParentsKey)
{
    auto f = case_of("adding-foreign-key-constraint").facts;
    f.constraint = "events_user_id_fkey";
    f.parent = "public.events";
    f.partition = "public.orders";
    f.via = "ALTER TABLE public.events ATTACH PARTITION public.orders";
    f.expression = "FOREIGN KEY (user_id) REFERENCES users(id)";
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "ALTER TABLE public.events ATTACH PARTITION public.orders checks foreign key "
                                   "events_user_id_fkey on table public.orders");
    EXPECT_CONTAINS(vs[0].detail, "ACCESS EXCLUSIVE lock on public.orders");
    EXPECT_CONTAINS(vs[0].detail, "SHARE ROW EXCLUSIVE lock on public.users");
    EXPECT_CONTAINS(vs[0].hint, "ALTER TABLE public.orders ADD CONSTRAINT orders_events_user_id_fkey FOREIGN KEY "
                                "(user_id) REFERENCES users(id) NOT VALID; ALTER TABLE public.orders VALIDATE "
                                "CONSTRAINT orders_events_user_id_fkey; ALTER TABLE public.events ATTACH "
                                "PARTITION public.orders ...;");
    // a partitioned table gets the key on each partition
    f.table.partitioned = true;
    vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].hint, "for each partition of public.orders that has none: ALTER TABLE <partition> "
                                "ADD CONSTRAINT <partition>_events_user_id_fkey");
    // a small table attaches without a verdict
    f.table.rows = 10;
    f.table.bytes = 8192;
    EXPECT_TRUE(eval(f).empty());
}

TEST(LargeUnbatchedDml, FewerRowsCountUnderAHeldLock)
{
    auto f = case_of("large-unbatched-dml").facts;
    f.rows_affected = 150'000;  // under the threshold (1M) ...
    EXPECT_TRUE(eval(f).empty());
    f.held_lock = LockMode::AccessExclusive;  // ... but an ALTER TABLE before it holds its lock
    f.held_on = "public.users";
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "UPDATE of 150k rows of table public.users");
    EXPECT_CONTAINS(vs[0].message, "in a transaction that holds an ACCESS EXCLUSIVE lock on public.users");
    EXPECT_CONTAINS(vs[0].detail, "reads included");
    EXPECT_CONTAINS(vs[0].hint, "Commit the statement that takes the lock first");
    EXPECT_CONTAINS(vs[0].hint, "SELECT migrate_backfill('public.users'");
    // a tenth of the threshold is the bar: not more than it passes
    f.rows_affected = 100'000;
    EXPECT_TRUE(eval(f).empty());
    // a lock that blocks neither reads nor writes does not lower it
    f.rows_affected = 150'000;
    f.held_lock = LockMode::ShareUpdateExclusive;
    EXPECT_TRUE(eval(f).empty());
    // writes only: the detail says so
    f.held_lock = LockMode::ShareRowExclusive;
    vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "a SHARE ROW EXCLUSIVE lock on public.users");
    EXPECT_CONTAINS(vs[0].detail, "reads go on");
}

TEST(LargeUnbatchedDml, ReadsCountOnlyUnderAHeldLock)
{
    // a copy (CREATE TABLE AS, INSERT ... SELECT) or a count of many rows
    auto f = case_of("large-unbatched-dml").facts;
    f.is_read = true;
    f.rows_affected = 2'000'000;
    EXPECT_TRUE(eval(f).empty());  // holding no lock: reads block nobody
    f.held_lock = LockMode::ShareUpdateExclusive;
    EXPECT_TRUE(eval(f).empty());  // nor under a lock that blocks no read or write
    f.held_lock = LockMode::AccessExclusive;  // an ALTER TABLE before it
    f.held_on = "public.accounts";
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "a read of 2.0M rows of table public.users");
    EXPECT_CONTAINS(vs[0].message, "holds an ACCESS EXCLUSIVE lock on public.accounts");
    EXPECT_CONTAINS(vs[0].detail, "keeps it held while it reads public.users");
    EXPECT_CONTAINS(vs[0].hint, "in a migration of its own");
    // the whole threshold, not the tenth a change under a lock gets
    f.rows_affected = 150'000;
    EXPECT_TRUE(eval(f).empty());
    f.rows_affected = 1'000'001;
    EXPECT_EQ(eval(f).size(), 1u);
}

TEST(SetTablespace, AnIndexIsMovedOnlineByReindex)
{
    // ALTER INDEX public.users_email_idx SET TABLESPACE fast (or ALTER INDEX
    // ALL IN TABLESPACE ...): judged on its table, with the index's size
    auto f = case_of("set-tablespace").facts;
    f.index = "public.users_email_idx";
    f.new_name = "fast";
    f.table.bytes = 40 * kMiB;
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message,
                    "SET TABLESPACE copies index public.users_email_idx (40 MB) of table public.users (");
    EXPECT_CONTAINS(vs[0].detail, "every query on public.users, reads included, waits");
    EXPECT_EQ(vs[0].hint, "Move it without blocking: REINDEX (TABLESPACE fast) INDEX CONCURRENTLY "
                          "public.users_email_idx;");
    // an index of a small table is not judged
    f.table = small_table();
    f.table.bytes = 64 * kKiB;
    EXPECT_TRUE(eval(f).empty());
}

TEST(TypedTable, HintsMakeTheColumnStepsOnTheType)
{
    // ALTER TYPE public.person ALTER ATTRIBUTE id TYPE bigint CASCADE, judged
    // on its typed table public.users: the column steps of the hint cannot be
    // made by ALTER TABLE on a typed table
    for (const char* rule : {"changing-column-type", "renaming-column"}) {
        auto f = case_of(rule).facts;
        auto plain = eval(f);
        ASSERT_EQ(plain.size(), 1u) << rule;
        EXPECT_EQ(plain[0].hint.find("typed table"), std::string::npos) << rule;
        f.typed_of = "public.person";
        auto vs = eval(f);
        ASSERT_EQ(vs.size(), 1u) << rule;
        EXPECT_EQ(vs[0].message, plain[0].message) << rule;
        EXPECT_CONTAINS(vs[0].hint, plain[0].hint);
        EXPECT_CONTAINS(vs[0].hint, "public.users is a typed table of public.person");
        EXPECT_CONTAINS(vs[0].hint, "ALTER TYPE public.person ADD / DROP / RENAME ATTRIBUTE ... CASCADE");
        EXPECT_CONTAINS(vs[0].hint, "ALTER TABLE public.users NOT OF");
    }
    // a hint without a column step (the allow directive ends it) is left as it is
    auto f = case_of("ban-drop-column").facts;
    auto plain = eval(f);
    f.typed_of = "public.person";
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_EQ(vs[0].hint, plain[0].hint);
}

TEST(AddingForeignKeyConstraint, MissingReferencedTableIsAPlaceholder)
{
    auto f = case_of("adding-foreign-key-constraint").facts;
    f.referenced_table.clear();
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].hint, "REFERENCES <table> NOT VALID");
    EXPECT_CONTAINS(vs[0].detail, "public.orders and the referenced table");
}

TEST(ForeignKeyMissingIndex, OnlyWhenColumnsNotIndexed)
{
    auto f = case_of("foreign-key-missing-index").facts;
    f.fk_columns_indexed = true;
    EXPECT_TRUE(eval(f).empty());
    f.fk_columns_indexed = false;
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_EQ(vs[0].rule, "foreign-key-missing-index");
    EXPECT_EQ(vs[0].level, Level::Warn);
}

TEST(ForeignKeyMissingIndex, WithValidatedForeignKeyBothRulesApply)
{
    auto f = case_of("foreign-key-missing-index").facts;
    f.not_valid = false;
    auto vs = eval(f);
    std::vector<std::string> names = names_of(vs);
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"adding-foreign-key-constraint",
                                               "foreign-key-missing-index"}));
    EXPECT_EQ(find_verdict(vs, "adding-foreign-key-constraint")->level, Level::Error);
    EXPECT_EQ(find_verdict(vs, "foreign-key-missing-index")->level, Level::Warn);

    // small table: the index rule still warns, the lock rule does not apply
    f.table = small_table("public.orders");
    EXPECT_EQ(names_of(eval(f)), std::vector<std::string>{"foreign-key-missing-index"});
}

TEST(ForeignKeyMissingIndex, DetailSaysWhatScans)
{
    auto vs = eval(case_of("foreign-key-missing-index").facts);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].detail, "Every DELETE or key UPDATE on public.users scans public.orders "
                                  "(2.0M rows, 3072 MB)");
    EXPECT_CONTAINS(vs[0].message, "(user_id)");
}

TEST(ForeignKeyMissingIndex, MultiColumnIndexName)
{
    auto f = case_of("foreign-key-missing-index").facts;
    f.columns = {"tenant_id", "user_id"};
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].hint, "CREATE INDEX CONCURRENTLY orders_tenant_id_user_id_idx ON "
                                "public.orders (tenant_id, user_id);");
}

TEST(BanDropColumn, MessageNamesTheColumn)
{
    auto vs = eval(case_of("ban-drop-column").facts);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "DROP COLUMN legacy_flag on table public.users");
}

TEST(BanDropTable, AppliesToEmptyTablesToo)
{
    auto f = case_of("ban-drop-table").facts;
    f.table.rows = 0;
    f.table.bytes = 0;
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "(0 rows, 0 bytes)");
}

TEST(BanTruncate, HintEmptiesTheTableInThrottledBatches)
{
    auto vs = eval(case_of("ban-truncate").facts);
    ASSERT_EQ(vs.size(), 1u);
    // every row: a real NULL condition, not the string 'NULL' (which would
    // be the condition NULL and delete nothing)
    EXPECT_CONTAINS(vs[0].hint, "SELECT migrate_delete('public.users', NULL);");
    EXPECT_CONTAINS(vs[0].hint, "SELECT migrate_backfill_wait(");
}

TEST(LargeUnbatchedDml, DeleteHintNamesTheBatchedDelete)
{
    auto f = case_of("large-unbatched-dml").facts;
    f.is_delete = true;
    auto vs = eval(f);
    ASSERT_EQ(names_of(vs), std::vector<std::string>{"large-unbatched-dml"});
    EXPECT_CONTAINS(vs[0].message, "DELETE of 1.5M rows");
    EXPECT_CONTAINS(vs[0].hint, "SELECT migrate_delete('public.users', '<your WHERE condition>');");
    EXPECT_CONTAINS(vs[0].hint, "SELECT migrate_backfill_wait(");
}

TEST(BanTruncate, DetailNamesAccessExclusive)
{
    auto vs = eval(case_of("ban-truncate").facts);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].detail, "TRUNCATE takes an ACCESS EXCLUSIVE lock on public.users");
}

TEST(BanTruncate, CascadedTableIsJudgedByTheCascadeRule)
{
    auto f = case_of("ban-truncate").facts;
    f.via = "TRUNCATE public.parent";
    auto vs = eval(f);
    ASSERT_EQ(names_of(vs), std::vector<std::string>{"ban-truncate"});
    EXPECT_CONTAINS(vs[0].message, "TRUNCATE public.parent empties table public.users");
    f.cascade = true;
    vs = eval(f);
    ASSERT_EQ(names_of(vs), std::vector<std::string>{"ban-truncate-cascade"});
    EXPECT_CONTAINS(vs[0].message, "through a foreign key");
    /* an allow line for one rule does not cover the other */
    EXPECT_TRUE(eval(f, kDefaults, sm::parse_rule_levels("ban-truncate=off")).size() == 1);
}

TEST(BanDropTable, ReachedThroughAnotherObject)
{
    auto f = case_of("ban-drop-table").facts;
    f.via = "DROP SCHEMA";
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "DROP SCHEMA drops table public.users (2.0M rows");
    f = case_of("ban-drop-column").facts;
    f.via = "DROP TYPE";
    vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "DROP TYPE drops column legacy_flag of table public.users");
}

TEST(BanDropDatabase, NotExemptWhenSmall)
{
    StatementFacts f;
    f.action = Action::DropDatabase;
    f.table.name = "scratch";
    auto vs = eval(f);
    ASSERT_EQ(names_of(vs), std::vector<std::string>{"ban-drop-database"});
    EXPECT_CONTAINS(vs[0].message, "DROP DATABASE scratch (0 bytes)");
}

TEST(ChangingColumnType, TypeChangeRewriteIsNotTableRewrite)
{
    auto f = case_of("changing-column-type").facts;
    EXPECT_EQ(names_of(eval(f)), std::vector<std::string>{"changing-column-type"});
    f.type_change = false;
    EXPECT_EQ(names_of(eval(f)), std::vector<std::string>{"table-rewrite"});
}

TEST(ChangingColumnType, OnlyOnRewrite)
{
    // a type change that needs no rewrite never reaches the rule as a TableRewrite
    auto f = case_of("changing-column-type").facts;
    f.action = Action::Other;
    EXPECT_TRUE(eval(f).empty());
}

TEST(ChangingColumnType, MessageNamesTheColumn)
{
    auto vs = eval(case_of("changing-column-type").facts);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "ALTER COLUMN amount TYPE rewrites table public.users");
}

TEST(ChangingColumnType, MissingFactsArePlaceholders)
{
    auto f = case_of("changing-column-type").facts;
    f.column.clear();
    f.column_type.clear();
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "ALTER COLUMN <column> TYPE");
    EXPECT_CONTAINS(vs[0].hint, "ADD COLUMN <column>_new <new type>;");
}

TEST(ConstraintMissingNotValid, NotValidIsFine)
{
    auto f = case_of("constraint-missing-not-valid").facts;
    f.not_valid = true;
    EXPECT_TRUE(eval(f).empty());
}

TEST(ConstraintMissingNotValid, DerivedNameAndMissingExpression)
{
    auto f = case_of("constraint-missing-not-valid").facts;
    f.constraint.clear();
    f.expression.clear();
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].hint, "ALTER TABLE public.users ADD CONSTRAINT users_check CHECK "
                                "(<condition>) NOT VALID;");
}

TEST(DisallowedUniqueConstraint, UsingIndexIsFine)
{
    auto f = case_of("disallowed-unique-constraint").facts;
    f.using_index = true;
    EXPECT_TRUE(eval(f).empty());
}

TEST(DisallowedUniqueConstraint, DerivesNameFromColumns)
{
    auto f = case_of("disallowed-unique-constraint").facts;
    f.constraint.clear();
    f.columns = {"tenant_id", "email"};
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].hint, "CREATE UNIQUE INDEX CONCURRENTLY users_tenant_id_email_key ON "
                                "public.users (tenant_id, email);");
    EXPECT_CONTAINS(vs[0].hint, "UNIQUE USING INDEX users_tenant_id_email_key;");
}

TEST(DisallowedUniqueConstraint, ExclusionHasNoUsingIndexForm)
{
    auto f = case_of("disallowed-unique-constraint").facts;
    f.exclusion = true;
    f.columns = {"room"};
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "EXCLUDE constraint");
    EXPECT_EQ(vs[0].hint.find("USING INDEX"), std::string::npos);
    EXPECT_CONTAINS(vs[0].hint, "-- safe_migrate:allow disallowed-unique-constraint");
}

TEST(DisallowedUniqueConstraint, PrimaryKeyHintProvesNullableColumnsFirst)
{
    auto f = case_of("disallowed-unique-constraint").facts;
    f.primary_key = true;
    f.constraint.clear();
    f.columns = {"id"};
    f.not_null = false;
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "PRIMARY KEY");
    EXPECT_CONTAINS(vs[0].hint, "CREATE UNIQUE INDEX CONCURRENTLY users_pkey ON public.users (id);");
    EXPECT_CONTAINS(vs[0].hint, "CHECK (id IS NOT NULL) NOT VALID; ALTER TABLE public.users "
                                "VALIDATE CONSTRAINT users_id_not_null;");
    EXPECT_CONTAINS(vs[0].hint, "ADD CONSTRAINT users_pkey PRIMARY KEY USING INDEX users_pkey;");
    EXPECT_LT(vs[0].hint.find("VALIDATE"), vs[0].hint.find("PRIMARY KEY USING INDEX"));
    f.not_null = true;
    vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_EQ(vs[0].hint.find("IS NOT NULL"), std::string::npos);
}

TEST(RequireConcurrentIndexCreation, AttachPartitionBuildsTheParentsIndex)
{
    auto f = case_of("require-concurrent-index-creation").facts;
    f.index = "events_pkey";
    f.parent = "public.events";
    f.partition = "public.users";
    f.via = "ALTER TABLE public.events ATTACH PARTITION public.users";
    f.expression = "CREATE UNIQUE INDEX CONCURRENTLY users_events_pkey ON public.users USING btree (id)";
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "ALTER TABLE public.events ATTACH PARTITION public.users builds index "
                                   "events_pkey of public.events on table public.users");
    EXPECT_CONTAINS(vs[0].detail, "ACCESS EXCLUSIVE lock on public.users");
    EXPECT_CONTAINS(vs[0].hint, "CREATE UNIQUE INDEX CONCURRENTLY users_events_pkey ON public.users USING btree "
                                "(id); ALTER TABLE public.events ATTACH PARTITION public.users ...;");
    // not the hint of a plain CREATE INDEX
    EXPECT_EQ(vs[0].hint.find("ON ONLY"), std::string::npos);
}

TEST(DisallowedUniqueConstraint, PartitionedTableAttachesPartitionIndexes)
{
    auto f = case_of("disallowed-unique-constraint").facts;
    f.table.partitioned = true;
    f.constraint.clear();
    f.columns = {"id", "at"};
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "partitioned table");
    EXPECT_CONTAINS(vs[0].hint, "CREATE UNIQUE INDEX CONCURRENTLY <partition index> ON <partition> (id, at);");
    EXPECT_CONTAINS(vs[0].hint, "ALTER TABLE <partition> ADD CONSTRAINT <partition index> UNIQUE USING INDEX");
    EXPECT_CONTAINS(vs[0].hint, "ALTER TABLE public.users ADD CONSTRAINT users_id_at_key UNIQUE (id, at);");
    /* USING INDEX is not supported on a partitioned table itself */
    EXPECT_EQ(vs[0].hint.find("ALTER TABLE public.users ADD CONSTRAINT users_id_at_key UNIQUE USING"),
              std::string::npos);
}

TEST(AddingForeignKeyConstraint, PartitionedTableValidatesPerPartition)
{
    auto f = case_of("adding-foreign-key-constraint").facts;
    f.table.partitioned = true;
    auto vs = eval(f);
    ASSERT_FALSE(vs.empty());
    EXPECT_CONTAINS(vs[0].hint, "cannot add a NOT VALID foreign key to a partitioned table");
    EXPECT_CONTAINS(vs[0].hint, "ALTER TABLE <partition> VALIDATE CONSTRAINT");
    EXPECT_EQ(vs[0].hint.find("ALTER TABLE public.users ADD CONSTRAINT"), std::string::npos);
}

TEST(RequireConcurrentIndexCreation, ConcurrentlyIsFine)
{
    auto f = case_of("require-concurrent-index-creation").facts;
    f.concurrently = true;
    EXPECT_TRUE(eval(f).empty());
}

TEST(RequireConcurrentIndexCreation, UnnamedIndex)
{
    auto f = case_of("require-concurrent-index-creation").facts;
    f.index.clear();
    f.columns = {"last_name", "first_name"};
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].hint, "CREATE INDEX CONCURRENTLY ON public.users (last_name, first_name);");
    EXPECT_NOT_CONTAINS(vs[0].hint, "CONCURRENTLY  ON");
}

TEST(RequireConcurrentIndexDeletion, ConcurrentlyIsFine)
{
    auto f = case_of("require-concurrent-index-deletion").facts;
    f.concurrently = true;
    EXPECT_TRUE(eval(f).empty());
}

TEST(RequireConcurrentIndexDeletion, MessageNamesTheIndex)
{
    auto vs = eval(case_of("require-concurrent-index-deletion").facts);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "DROP INDEX users_email_idx without CONCURRENTLY on table "
                                   "public.users");
}

TEST(RequireConcurrentReindex, ConcurrentlyIsFine)
{
    auto f = case_of("require-concurrent-reindex").facts;
    f.concurrently = true;
    EXPECT_TRUE(eval(f).empty());
}

TEST(RequireConcurrentReindex, HintIsValidSyntaxForIndexAndTable)
{
    // REINDEX { INDEX | TABLE } CONCURRENTLY name
    auto f = case_of("require-concurrent-reindex").facts;
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_EQ(vs[0].hint, "REINDEX INDEX CONCURRENTLY users_email_idx;");
    EXPECT_CONTAINS(vs[0].message, "REINDEX INDEX users_email_idx without CONCURRENTLY");

    f.index.clear();
    vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_EQ(vs[0].hint, "REINDEX TABLE CONCURRENTLY public.users;");
    EXPECT_CONTAINS(vs[0].message, "REINDEX TABLE public.users without CONCURRENTLY");
}

TEST(RenamingColumn, MessageNamesOldAndNew)
{
    auto vs = eval(case_of("renaming-column").facts);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "RENAME COLUMN full_name TO display_name on table public.users");
}

TEST(RenamingTable, MovedToAnotherSchemaLeavesAView)
{
    auto f = case_of("renaming-table").facts;
    f.via = "ALTER TABLE public.users SET SCHEMA archive";
    f.new_name = "archive.users";
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].message, "SET SCHEMA archive moves table public.users (2.0M rows");
    EXPECT_CONTAINS(vs[0].hint, "ALTER TABLE public.users SET SCHEMA archive; CREATE VIEW "
                                "public.users AS SELECT * FROM archive.users;");
    EXPECT_NOT_CONTAINS(vs[0].hint, "CREATE SCHEMA");
}

TEST(RenamingTable, SchemaRenamedRecreatesTheSchemaForTheView)
{
    auto f = case_of("renaming-table").facts;
    f.via = "ALTER SCHEMA public RENAME TO old";
    f.new_name = "old.users";
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].hint, "ALTER SCHEMA public RENAME TO old; CREATE SCHEMA public; "
                                "CREATE VIEW public.users AS SELECT * FROM old.users;");
}

TEST(RenamingTable, ViewNamesTheRenamedTableInItsSchema)
{
    auto f = case_of("renaming-table").facts;
    f.table.name = "app.users";
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].hint, "ALTER TABLE app.users RENAME TO accounts; CREATE VIEW app.users AS "
                                "SELECT * FROM app.accounts;");

    f.table.name = "users";  // unqualified stays unqualified
    vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].hint, "CREATE VIEW users AS SELECT * FROM accounts;");
}

TEST(SettingNotNullField, ProvenNotNullIsFine)
{
    auto f = case_of("setting-not-null-field").facts;
    f.not_null_proven = true;
    EXPECT_TRUE(eval(f).empty());
}

TEST(SettingNotNullField, ExactSafeSequence)
{
    auto vs = eval(case_of("setting-not-null-field").facts);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_EQ(vs[0].hint,
              "Prove it first without blocking, then set it without a scan: "
              "ALTER TABLE public.users ADD CONSTRAINT users_full_name_not_null CHECK (full_name IS "
              "NOT NULL) NOT VALID; ALTER TABLE public.users VALIDATE CONSTRAINT "
              "users_full_name_not_null; ALTER TABLE public.users ALTER COLUMN full_name SET NOT "
              "NULL; ALTER TABLE public.users DROP CONSTRAINT users_full_name_not_null;");
    EXPECT_CONTAINS(vs[0].message, "SET NOT NULL on column full_name of table public.users");
}

TEST(SettingNotNullField, QuotedNamesGiveOneConstraintIdentifier)
{
    auto f = case_of("setting-not-null-field").facts;
    f.table.name = "public.\"Users\"";
    f.column = "\"Full Name\"";
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    // the derived name is one identifier: quoted because of the space
    EXPECT_CONTAINS(vs[0].hint, "ALTER TABLE public.\"Users\" ADD CONSTRAINT \"Users_Full Name_not_null\" "
                                "CHECK (\"Full Name\" IS NOT NULL) NOT VALID;");
    EXPECT_CONTAINS(vs[0].hint, "VALIDATE CONSTRAINT \"Users_Full Name_not_null\";");
    EXPECT_CONTAINS(vs[0].hint, "DROP CONSTRAINT \"Users_Full Name_not_null\";");

    // plain names stay unquoted, even with capitals (they fold the same everywhere)
    f.column = "\"Email\"";
    vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].hint, "ADD CONSTRAINT Users_Email_not_null CHECK (\"Email\" IS NOT NULL)");
}

TEST(DerivedNames, QuotedColumnsInForeignKeyUniqueAndIndexNames)
{
    auto fk = case_of("foreign-key-missing-index").facts;
    fk.not_valid = false;
    fk.columns = {"\"User Id\""};
    auto vs = eval(fk);
    ASSERT_EQ(vs.size(), 2u);
    EXPECT_CONTAINS(find_verdict(vs, "adding-foreign-key-constraint")->hint,
                    "ADD CONSTRAINT \"orders_User Id_fkey\" FOREIGN KEY (\"User Id\")");
    EXPECT_CONTAINS(find_verdict(vs, "foreign-key-missing-index")->hint,
                    "CREATE INDEX CONCURRENTLY \"orders_User Id_idx\" ON public.orders (\"User Id\");");

    auto uq = case_of("disallowed-unique-constraint").facts;
    uq.constraint.clear();
    uq.columns = {"\"E-Mail\""};
    vs = eval(uq);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].hint, "CREATE UNIQUE INDEX CONCURRENTLY \"users_E-Mail_key\" ON public.users "
                                "(\"E-Mail\");");
}

TEST(TableRewrite, TypeChangeIsChangingColumnType)
{
    auto f = case_of("table-rewrite").facts;
    f.type_change = true;
    EXPECT_EQ(names_of(eval(f)), std::vector<std::string>{"changing-column-type"});
}

TEST(TableRewrite, AddedColumnHintPerKind)
{
    auto f = case_of("table-rewrite").facts;
    f.rewrite_reasons = sm::rewrite_reason::kDefaultValue;
    f.column = "n";
    f.column_type = "integer";
    auto one = [&](const char* kind) {
        f.added_kind = kind;
        auto vs = eval(f);
        EXPECT_EQ(vs.size(), 1u);
        return vs.empty() ? Verdict{} : vs[0];
    };
    Verdict identity = one("identity");
    EXPECT_CONTAINS(identity.message, "ADD COLUMN n rewrites table public.users");
    EXPECT_CONTAINS(identity.hint, "migrate_backfill('public.users', $$n = nextval('users_n_seq')$$");
    EXPECT_CONTAINS(identity.hint, "ADD GENERATED BY DEFAULT AS IDENTITY");
    Verdict serial = one("serial");
    EXPECT_CONTAINS(serial.hint, "CREATE SEQUENCE users_n_seq OWNED BY public.users.n;");
    EXPECT_EQ(serial.hint.find("IDENTITY"), std::string::npos);
    Verdict generated = one("generated");
    EXPECT_CONTAINS(generated.hint, "-- safe_migrate:allow table-rewrite");
    f.expression = "integer";
    Verdict domain = one("domain");
    EXPECT_CONTAINS(domain.hint, "ALTER TABLE public.users ADD COLUMN n integer;");
    EXPECT_CONTAINS(domain.hint, "NOT VALID");
    f.expression.clear();
    Verdict dflt = one("volatile default");
    EXPECT_CONTAINS(dflt.hint, "SET DEFAULT <the default>");
    std::set<std::string> distinct{identity.hint, serial.hint, generated.hint, domain.hint, dflt.hint};
    EXPECT_EQ(distinct.size(), 5u);
}

TEST(TableRewrite, HintPerRewriteReason)
{
    auto f = case_of("table-rewrite").facts;
    auto one = [&](int reasons) {
        f.rewrite_reasons = reasons;
        auto vs = eval(f);
        EXPECT_EQ(vs.size(), 1u);
        return vs.empty() ? Verdict{} : vs[0];
    };
    namespace rr = sm::rewrite_reason;

    Verdict dflt = one(rr::kDefaultValue);
    EXPECT_CONTAINS(dflt.detail, "volatile default");
    EXPECT_CONTAINS(dflt.hint, "ALTER TABLE public.users ALTER COLUMN created_at SET DEFAULT");
    EXPECT_CONTAINS(dflt.hint, "in batches");

    Verdict pers = one(rr::kPersistence);
    EXPECT_CONTAINS(pers.detail, "between LOGGED and UNLOGGED");
    EXPECT_CONTAINS(pers.hint, "no online way to change persistence");
    EXPECT_CONTAINS(pers.hint, "-- safe_migrate:allow table-rewrite");

    Verdict am = one(rr::kAccessMethod);
    EXPECT_CONTAINS(am.detail, "access method");
    EXPECT_CONTAINS(am.hint, "Copy into a new table in batches and swap");

    Verdict col = one(rr::kColumnRewrite);
    EXPECT_CONTAINS(col.hint, "a new column filled in batches");
    EXPECT_CONTAINS(col.detail, "while it copies every row:");

    Verdict none = one(0);
    EXPECT_EQ(none.hint, col.hint);

    std::set<std::string> distinct{dflt.hint, pers.hint, am.hint, col.hint};
    EXPECT_EQ(distinct.size(), 4u);

    // several bits: the default-value explanation wins, then persistence
    EXPECT_EQ(one(rr::kDefaultValue | rr::kPersistence | rr::kAccessMethod).hint, dflt.hint);
    EXPECT_EQ(one(rr::kPersistence | rr::kAccessMethod | rr::kColumnRewrite).hint, pers.hint);
    EXPECT_EQ(one(rr::kAccessMethod | rr::kColumnRewrite).hint, am.hint);
}

TEST(TableRewrite, DefaultValueHintWithoutColumnIsAPlaceholder)
{
    auto f = case_of("table-rewrite").facts;
    f.column.clear();
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].hint, "ALTER COLUMN <column> SET DEFAULT");
}

TEST(LargeUnbatchedDml, OnlyFromTheRowsThreshold)
{
    auto f = case_of("large-unbatched-dml").facts;
    f.rows_affected = kDefaults.large_table_rows;
    EXPECT_TRUE(eval(f).empty());
    f.rows_affected = kDefaults.large_table_rows + 1;
    EXPECT_EQ(names_of(eval(f)), std::vector<std::string>{"large-unbatched-dml"});
    f.rows_affected = 0;
    EXPECT_TRUE(eval(f).empty());
}

TEST(LargeUnbatchedDml, IndependentOfTableSize)
{
    auto f = case_of("large-unbatched-dml").facts;
    // small table, many rows affected (statistics lag behind): applies
    f.table = small_table();
    f.rows_affected = 1'200'000;
    EXPECT_EQ(names_of(eval(f)), std::vector<std::string>{"large-unbatched-dml"});
    // huge table, few rows affected: does not apply
    f.table = large_table();
    f.table.rows = 1e9;
    f.table.bytes = kTiB;
    f.rows_affected = 5000;
    EXPECT_TRUE(eval(f).empty());
}

TEST(LargeUnbatchedDml, FollowsCustomThreshold)
{
    auto f = case_of("large-unbatched-dml").facts;
    sm::Thresholds t;
    t.large_table_rows = 100;
    f.rows_affected = 99;
    EXPECT_TRUE(eval(f, t).empty());
    /* "more than large_table_rows", as the README says */
    f.rows_affected = 100;
    EXPECT_TRUE(eval(f, t).empty());
    f.rows_affected = 101;
    EXPECT_EQ(names_of(eval(f, t)), std::vector<std::string>{"large-unbatched-dml"});
    /* threshold 0: any changed row counts, none does not */
    t.large_table_rows = 0;
    f.rows_affected = 0;
    EXPECT_TRUE(eval(f, t).empty());
    f.rows_affected = 1;
    EXPECT_EQ(names_of(eval(f, t)), std::vector<std::string>{"large-unbatched-dml"});
}

/* Hints that fill rows in batches show the product's backfill, in the user's names. */
TEST(Hints, BatchesUseMigrateBackfill)
{
    for (const auto& c : make_cases()) {
        for (const auto& v : eval(c.facts)) {
            EXPECT_NOT_CONTAINS(v.hint, "run by CALL");
            if (v.hint.find("fill it in batches") != std::string::npos ||
                v.hint.find("filled in batches") != std::string::npos ||
                v.hint.find("fill the existing rows") != std::string::npos) {
                EXPECT_CONTAINS(v.hint, "SELECT migrate_backfill(");
                EXPECT_CONTAINS(v.hint, "migrate_backfill_wait(");
            }
        }
    }
    auto f = case_of("changing-column-type").facts;
    f.column = "qty";
    f.column_type = "bigint";
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].hint, "SELECT migrate_backfill('public.users', $$qty_new = qty::bigint$$, "
                                "'qty_new IS NULL AND qty IS NOT NULL');");
    /* a name with a quote stays one literal */
    f.table.name = "public.\"O'Brien\"";
    vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].hint, "SELECT migrate_backfill('public.\"O''Brien\"', ");
}

TEST(LargeUnbatchedDml, DeleteAndUpdateHaveTheirOwnWords)
{
    auto f = case_of("large-unbatched-dml").facts;
    f.is_delete = false;
    auto upd = eval(f);
    f.is_delete = true;
    auto del = eval(f);
    ASSERT_EQ(upd.size(), 1u);
    ASSERT_EQ(del.size(), 1u);
    EXPECT_CONTAINS(upd[0].message, "UPDATE of 1.5M rows of table public.users (2.0M rows, 3072 MB) "
                                    "in one transaction");
    EXPECT_CONTAINS(del[0].message, "DELETE of 1.5M rows of table public.users");
    EXPECT_CONTAINS(upd[0].hint, "Update public.users in batches");
    EXPECT_CONTAINS(del[0].hint, "Delete from public.users in batches");
    EXPECT_NOT_CONTAINS(del[0].hint, "Update public.users");
    EXPECT_NE(upd[0].hint, del[0].hint);
    EXPECT_EQ(upd[0].detail, del[0].detail);
}

TEST(OtherActions, NothingApplies)
{
    auto f = on_users(Action::Other);
    f.column = "x";
    f.not_null = true;
    EXPECT_TRUE(eval(f).empty());
}

/* ------------------------------------------------------------------------ */
/* Thresholds                                                               */
/* ------------------------------------------------------------------------ */

TEST(Thresholds, Defaults)
{
    EXPECT_DOUBLE_EQ(kDefaults.large_table_rows, 1'000'000);
    EXPECT_EQ(kDefaults.large_table_bytes, kGiB);
}

TEST(Thresholds, IsLargeAtExactBoundaries)
{
    sm::TableFacts t;
    t.name = "public.users";
    t.rows = kDefaults.large_table_rows - 1;
    t.bytes = kDefaults.large_table_bytes - 1;
    EXPECT_FALSE(sm::is_large(t, kDefaults));
    t.rows = kDefaults.large_table_rows;
    EXPECT_TRUE(sm::is_large(t, kDefaults));
    t.rows = 0;
    t.bytes = kDefaults.large_table_bytes;
    EXPECT_TRUE(sm::is_large(t, kDefaults));
    t.rows = 0;
    t.bytes = 0;
    EXPECT_FALSE(sm::is_large(t, kDefaults));
}

TEST(Thresholds, BoundaryThroughEvaluate)
{
    auto f = case_of("setting-not-null-field").facts;
    f.table.bytes = 8 * kKiB;
    f.table.rows = kDefaults.large_table_rows;
    EXPECT_EQ(names_of(eval(f)), std::vector<std::string>{"setting-not-null-field"});
    f.table.rows = kDefaults.large_table_rows - 1;
    EXPECT_TRUE(eval(f).empty());
    f.table.bytes = kDefaults.large_table_bytes;
    EXPECT_EQ(names_of(eval(f)), std::vector<std::string>{"setting-not-null-field"});
    f.table.bytes = kDefaults.large_table_bytes - 1;
    EXPECT_TRUE(eval(f).empty());
}

TEST(Thresholds, CustomThresholds)
{
    sm::Thresholds t;
    t.large_table_rows = 100;
    t.large_table_bytes = 1 * kMiB;
    auto f = case_of("require-concurrent-index-creation").facts;
    f.table = small_table();  // 500 rows, 64 kB
    EXPECT_EQ(names_of(eval(f, t)), std::vector<std::string>{"require-concurrent-index-creation"});
    f.table.rows = 10;
    EXPECT_TRUE(eval(f, t).empty());
    f.table.bytes = 1 * kMiB;
    EXPECT_EQ(names_of(eval(f, t)), std::vector<std::string>{"require-concurrent-index-creation"});
}

/* ------------------------------------------------------------------------ */
/* parse_rule_levels and levels in evaluate                                 */
/* ------------------------------------------------------------------------ */

TEST(RuleLevels, ParsesEntries)
{
    auto l = sm::parse_rule_levels("ban-drop-table=warn, cluster=off");
    ASSERT_EQ(l.overrides.size(), 2u);
    EXPECT_EQ(l.overrides[0].first, "ban-drop-table");
    EXPECT_EQ(l.overrides[0].second, Level::Warn);
    EXPECT_EQ(l.overrides[1].first, "cluster");
    EXPECT_EQ(l.overrides[1].second, Level::Off);
    EXPECT_EQ(l.level_of("ban-drop-table", Level::Error), Level::Warn);
    EXPECT_EQ(l.level_of("cluster", Level::Error), Level::Off);
    EXPECT_EQ(l.level_of("vacuum-full", Level::Error), Level::Error);
    EXPECT_EQ(l.level_of("foreign-key-missing-index", Level::Warn), Level::Warn);
}

TEST(RuleLevels, Whitespace)
{
    auto l = sm::parse_rule_levels("  ban-truncate = error ,\tvacuum-full\t=\toff \n");
    ASSERT_EQ(l.overrides.size(), 2u);
    EXPECT_EQ(l.overrides[0], (std::pair<std::string, Level>{"ban-truncate", Level::Error}));
    EXPECT_EQ(l.overrides[1], (std::pair<std::string, Level>{"vacuum-full", Level::Off}));
}

TEST(RuleLevels, EmptySpecs)
{
    EXPECT_TRUE(sm::parse_rule_levels("").overrides.empty());
    EXPECT_TRUE(sm::parse_rule_levels("   ").overrides.empty());
    EXPECT_TRUE(sm::parse_rule_levels(",").overrides.empty());
    EXPECT_TRUE(sm::parse_rule_levels(" , ,, ").overrides.empty());
}

TEST(RuleLevels, TrailingAndLeadingCommas)
{
    auto l = sm::parse_rule_levels("cluster=warn,");
    ASSERT_EQ(l.overrides.size(), 1u);
    EXPECT_EQ(l.overrides[0].second, Level::Warn);
    l = sm::parse_rule_levels(",cluster=warn,,vacuum-full=off,,");
    ASSERT_EQ(l.overrides.size(), 2u);
}

TEST(RuleLevels, LaterEntriesOverrideEarlier)
{
    auto l = sm::parse_rule_levels("cluster=off, cluster=warn");
    EXPECT_EQ(l.level_of("cluster", Level::Error), Level::Warn);
    l = sm::parse_rule_levels("cluster=warn, vacuum-full=warn, cluster=off");
    EXPECT_EQ(l.level_of("cluster", Level::Error), Level::Off);
    EXPECT_EQ(l.level_of("vacuum-full", Level::Error), Level::Warn);

    auto f = case_of("cluster").facts;
    EXPECT_TRUE(eval(f, kDefaults, l).empty());
    EXPECT_EQ(eval(f, kDefaults, sm::parse_rule_levels("cluster=off,cluster=error"))[0].level,
              Level::Error);
}

TEST(RuleLevels, UnknownRule)
{
    EXPECT_TRUE(ThrowsScriptError([] { sm::parse_rule_levels("no-such-rule=warn"); },
                                  "unknown rule \"no-such-rule\""));
    EXPECT_TRUE(ThrowsScriptError([] { sm::parse_rule_levels("cluster=warn, clustr=off"); },
                                  "clustr"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::parse_rule_levels("=warn"); }, "unknown rule"));
}

TEST(RuleLevels, UnknownLevel)
{
    EXPECT_TRUE(ThrowsScriptError([] { sm::parse_rule_levels("cluster=fatal"); },
                                  "unknown level \"fatal\" for rule \"cluster\""));
    EXPECT_TRUE(ThrowsScriptError([] { sm::parse_rule_levels("cluster="); }, "unknown level"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::parse_rule_levels("cluster=warn=off"); },
                                  "unknown level"));
}

TEST(RuleLevels, MissingEquals)
{
    EXPECT_TRUE(ThrowsScriptError([] { sm::parse_rule_levels("cluster"); },
                                  "\"cluster\" is not of the form rule=level"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::parse_rule_levels("cluster=off, vacuum-full warn"); },
                                  "\"vacuum-full warn\""));
}

TEST(RuleLevels, EvaluateAppliesLevels)
{
    const auto& fk = case_of("foreign-key-missing-index").facts;
    // Warn by default, upgraded to Error
    EXPECT_EQ(eval(fk)[0].level, Level::Warn);
    auto up = eval(fk, kDefaults, sm::parse_rule_levels("foreign-key-missing-index=error"));
    ASSERT_EQ(up.size(), 1u);
    EXPECT_EQ(up[0].level, Level::Error);

    // Error by default, downgraded to Warn, switched off
    const auto& drop = case_of("ban-drop-table").facts;
    auto down = eval(drop, kDefaults, sm::parse_rule_levels("ban-drop-table=warn"));
    ASSERT_EQ(down.size(), 1u);
    EXPECT_EQ(down[0].level, Level::Warn);
    EXPECT_TRUE(eval(drop, kDefaults, sm::parse_rule_levels("ban-drop-table=off")).empty());

    // off removes just that rule when two apply
    auto both = fk;
    both.not_valid = false;
    auto vs = eval(both, kDefaults, sm::parse_rule_levels("adding-foreign-key-constraint=off"));
    EXPECT_EQ(names_of(vs), std::vector<std::string>{"foreign-key-missing-index"});
}

/* ------------------------------------------------------------------------ */
/* The registry                                                             */
/* ------------------------------------------------------------------------ */

TEST(Registry, SortedByNameWithoutDuplicates)
{
    const auto& rs = sm::rules();
    ASSERT_FALSE(rs.empty());
    for (size_t i = 1; i < rs.size(); i++)
        EXPECT_LT(rs[i - 1].name, rs[i].name) << "at " << i;
}

TEST(Registry, NamesAreLowercaseWordsWithDashes)
{
    for (const auto& r : sm::rules()) {
        EXPECT_FALSE(r.name.empty());
        for (char ch : r.name)
            EXPECT_TRUE((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')
                << r.name;
        EXPECT_NE(r.name.front(), '-') << r.name;
        EXPECT_NE(r.name.back(), '-') << r.name;
        EXPECT_NE(r.default_level, Level::Off) << r.name;
        EXPECT_FALSE(r.summary.empty()) << r.name;
    }
}

TEST(Registry, ContainsTheDocumentedRules)
{
    const char* expected[] = {
        "adding-required-field",
        "adding-foreign-key-constraint",
        "ban-drop-column",
        "ban-drop-table",
        "ban-truncate",
        "ban-truncate-cascade",
        "ban-drop-database",
        "changing-column-type",
        "cluster",
        "constraint-missing-not-valid",
        "disallowed-unique-constraint",
        "foreign-key-missing-index",
        "large-unbatched-dml",
        "renaming-column",
        "renaming-enum-value",
        "renaming-table",
        "require-concurrent-index-creation",
        "require-concurrent-index-deletion",
        "require-concurrent-refresh",
        "require-concurrent-reindex",
        "set-tablespace",
        "setting-not-null-field",
        "table-rewrite",
        "vacuum-full",
    };
    for (const char* name : expected) {
        EXPECT_NE(info_of(name), nullptr) << name;
        EXPECT_TRUE(sm::is_rule(name)) << name;
    }
    EXPECT_GE(sm::rules().size(), std::size(expected));
}

TEST(Registry, IsRuleAgreesWithRules)
{
    for (const auto& r : sm::rules())
        EXPECT_TRUE(sm::is_rule(r.name)) << r.name;
    EXPECT_FALSE(sm::is_rule(""));
    EXPECT_FALSE(sm::is_rule("no-such-rule"));
    EXPECT_FALSE(sm::is_rule("Cluster"));
    EXPECT_FALSE(sm::is_rule("cluster "));
    EXPECT_FALSE(sm::is_rule("ban-drop"));
}

TEST(Registry, StableAcrossCalls)
{
    EXPECT_EQ(&sm::rules(), &sm::rules());
}

/* ------------------------------------------------------------------------ */
/* Locks and sizes in words                                                 */
/* ------------------------------------------------------------------------ */

TEST(Locks, Names)
{
    EXPECT_EQ(sm::lock_name(LockMode::None), "no");
    EXPECT_EQ(sm::lock_name(LockMode::AccessShare), "ACCESS SHARE");
    EXPECT_EQ(sm::lock_name(LockMode::RowShare), "ROW SHARE");
    EXPECT_EQ(sm::lock_name(LockMode::RowExclusive), "ROW EXCLUSIVE");
    EXPECT_EQ(sm::lock_name(LockMode::ShareUpdateExclusive), "SHARE UPDATE EXCLUSIVE");
    EXPECT_EQ(sm::lock_name(LockMode::Share), "SHARE");
    EXPECT_EQ(sm::lock_name(LockMode::ShareRowExclusive), "SHARE ROW EXCLUSIVE");
    EXPECT_EQ(sm::lock_name(LockMode::Exclusive), "EXCLUSIVE");
    EXPECT_EQ(sm::lock_name(LockMode::AccessExclusive), "ACCESS EXCLUSIVE");
}

TEST(Locks, WhatTheyBlock)
{
    const std::string weak = "it blocks only statements that lock the whole table";
    EXPECT_EQ(sm::lock_blocks(LockMode::None), weak);
    EXPECT_EQ(sm::lock_blocks(LockMode::AccessShare), weak);
    EXPECT_EQ(sm::lock_blocks(LockMode::RowShare), weak);
    EXPECT_EQ(sm::lock_blocks(LockMode::RowExclusive), weak);
    EXPECT_EQ(sm::lock_blocks(LockMode::ShareUpdateExclusive),
              "it blocks other schema changes and VACUUM, not reads or writes");
    const std::string writes =
        "INSERT, UPDATE and DELETE on the table wait until it is done; reads go on";
    EXPECT_EQ(sm::lock_blocks(LockMode::Share), writes);
    EXPECT_EQ(sm::lock_blocks(LockMode::ShareRowExclusive), writes);
    EXPECT_EQ(sm::lock_blocks(LockMode::Exclusive),
              "everything but plain reads waits until it is done");
    EXPECT_EQ(sm::lock_blocks(LockMode::AccessExclusive),
              "every query on the table, reads included, waits until the transaction ends");
}

TEST(Locks, EveryModeHasWords)
{
    for (int m = static_cast<int>(LockMode::None); m <= static_cast<int>(LockMode::AccessExclusive);
         m++) {
        EXPECT_FALSE(sm::lock_name(static_cast<LockMode>(m)).empty()) << m;
        EXPECT_FALSE(sm::lock_blocks(static_cast<LockMode>(m)).empty()) << m;
        EXPECT_NE(sm::lock_name(static_cast<LockMode>(m)), "unknown") << m;
    }
}

TEST(FormatBytes, Bytes)
{
    EXPECT_EQ(sm::format_bytes(0), "0 bytes");
    EXPECT_EQ(sm::format_bytes(1), "1 bytes");
    EXPECT_EQ(sm::format_bytes(1023), "1023 bytes");
    EXPECT_EQ(sm::format_bytes(1024), "1024 bytes");
    EXPECT_EQ(sm::format_bytes(10 * kKiB - 1), "10239 bytes");
    EXPECT_EQ(sm::format_bytes(-5), "0 bytes");
}

TEST(FormatBytes, UnitBoundaries)
{
    EXPECT_EQ(sm::format_bytes(10 * kKiB), "10 kB");
    EXPECT_EQ(sm::format_bytes(64 * kKiB), "64 kB");
    EXPECT_EQ(sm::format_bytes(1 * kMiB), "1024 kB");
    EXPECT_EQ(sm::format_bytes(10 * kMiB - 1), "10239 kB");
    EXPECT_EQ(sm::format_bytes(10 * kMiB), "10 MB");
    EXPECT_EQ(sm::format_bytes(12 * kMiB + 512 * kKiB), "12 MB");
    EXPECT_EQ(sm::format_bytes(1 * kGiB), "1024 MB");
    EXPECT_EQ(sm::format_bytes(3 * kGiB), "3072 MB");
    EXPECT_EQ(sm::format_bytes(10 * kGiB - 1), "10239 MB");
    EXPECT_EQ(sm::format_bytes(10 * kGiB), "10 GB");
    EXPECT_EQ(sm::format_bytes(10 * kTiB), "10 TB");
    EXPECT_EQ(sm::format_bytes(10240 * kTiB), "10240 TB");  // TB is the largest unit
}

TEST(FormatRows, Boundaries)
{
    EXPECT_EQ(sm::format_rows(0), "0");
    EXPECT_EQ(sm::format_rows(-3), "0");
    EXPECT_EQ(sm::format_rows(1), "1");
    EXPECT_EQ(sm::format_rows(9999), "9999");
    EXPECT_EQ(sm::format_rows(10000), "10k");
    EXPECT_EQ(sm::format_rows(250000), "250k");
    EXPECT_EQ(sm::format_rows(1'000'000), "1.0M");
    EXPECT_EQ(sm::format_rows(1'500'000), "1.5M");
    EXPECT_EQ(sm::format_rows(2'000'000), "2.0M");
    EXPECT_EQ(sm::format_rows(1e9), "1.0G");
    EXPECT_EQ(sm::format_rows(2e9), "2.0G");
}

}  // namespace

TEST(PolicyEdges, TemporaryTablesAreExempt)
{
    sm::StatementFacts f;
    f.action = Action::CreateIndex;
    f.table.name = "scratch";
    f.table.rows = 5e6;
    f.table.bytes = 1LL << 32;
    f.table.temporary = true;
    EXPECT_TRUE(sm::evaluate(f, sm::Thresholds{}, sm::RuleLevels{}).empty());
    f.table.temporary = false;
    EXPECT_FALSE(sm::evaluate(f, sm::Thresholds{}, sm::RuleLevels{}).empty());
}

TEST(PolicyEdges, PartitionedIndexHintBuildsPerPartition)
{
    sm::StatementFacts f;
    f.action = Action::CreateIndex;
    f.table.name = "events";
    f.table.rows = 5e6;
    f.table.partitioned = true;
    f.index = "events_at";
    f.columns = {"at"};
    auto v = sm::evaluate(f, sm::Thresholds{}, sm::RuleLevels{});
    ASSERT_EQ(v.size(), 1u);
    EXPECT_NE(v[0].hint.find("CREATE INDEX events_at ON ONLY events (at)"), std::string::npos);
    EXPECT_NE(v[0].hint.find("ALTER INDEX events_at ATTACH PARTITION"), std::string::npos);
}

TEST(PolicyEdges, ValidateWithoutAnEarlierLockIsFine)
{
    sm::StatementFacts f;
    f.action = Action::ValidateConstraint;
    f.table.name = "users";
    f.table.rows = 5e6;
    f.constraint = "c";
    EXPECT_TRUE(sm::evaluate(f, sm::Thresholds{}, sm::RuleLevels{}).empty());
}

/* ------------------------------------------------------------------------ */
/* Scans, rebuilds and locks the statement does not spell out (issue 12)    */
/* ------------------------------------------------------------------------ */

TEST(ScanDoors, AttachPartitionProvenByCheckIsFine)
{
    auto f = on_users(Action::AttachPartition);
    f.bound_proven = true;
    EXPECT_TRUE(eval(f).empty());
}

TEST(ScanDoors, AttachPartitionScansTheDefaultPartition)
{
    auto f = on_users(Action::AttachPartition);
    f.default_partition = true;
    f.partition = "public.events_2";
    f.expression = "(at >= 10) AND (at < 20)";
    auto v = eval(f);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_CONTAINS(v[0].message, "scans the default partition table public.users");
    EXPECT_CONTAINS(v[0].hint, "CHECK (NOT ((at >= 10) AND (at < 20))) NOT VALID");
}

TEST(ScanDoors, DomainConstraintNotValidIsFine)
{
    auto f = on_users(Action::DomainConstraint);
    f.domain = "public.qty";
    f.not_valid = true;
    EXPECT_TRUE(eval(f).empty());
    f.not_valid = false;
    f.domain_command = "VALIDATE CONSTRAINT qty_positive";
    auto v = eval(f);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_CONTAINS(v[0].message, "ALTER DOMAIN public.qty VALIDATE CONSTRAINT qty_positive");
    EXPECT_CONTAINS(v[0].hint, "-- safe_migrate:allow ban-alter-domain-with-add-constraint");
}

TEST(RequireConcurrentRefresh, ConcurrentlyAndSmallViewsAreFine)
{
    auto f = on_users(Action::RefreshMatview);
    f.concurrently = true;
    EXPECT_TRUE(eval(f).empty());
    f.concurrently = false;
    f.table = small_table();
    EXPECT_TRUE(eval(f).empty());
}

TEST(RequireConcurrentRefresh, HintUsesTheUniqueIndexItHas)
{
    auto f = on_users(Action::RefreshMatview);
    f.index = "users_id";
    auto v = eval(f);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].rule, "require-concurrent-refresh");
    EXPECT_CONTAINS(v[0].message, "materialized view public.users");
    EXPECT_CONTAINS(v[0].detail, "ACCESS EXCLUSIVE");
    EXPECT_CONTAINS(v[0].hint, "unique index users_id");
    EXPECT_CONTAINS(v[0].hint, "REFRESH MATERIALIZED VIEW CONCURRENTLY public.users;");
    EXPECT_EQ(v[0].hint.find("CREATE UNIQUE INDEX"), std::string::npos);
}

TEST(MaterializedViews, NamedAsOneWithWhatTheirLocksBlock)
{
    auto f = on_users(Action::CreateIndex);
    f.index = "users_q";
    f.columns = {"q"};
    f.table.matview = true;
    auto v = eval(f);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_CONTAINS(v[0].message, "on materialized view public.users (");
    EXPECT_EQ(v[0].message.find("table"), std::string::npos);
    /* nobody writes to it: its refreshes wait */
    EXPECT_CONTAINS(v[0].detail, "REFRESH MATERIALIZED VIEW of it waits until it is done");
    EXPECT_EQ(v[0].detail.find("INSERT"), std::string::npos);
    EXPECT_CONTAINS(v[0].hint, "without blocking its refreshes");
    /* a rewrite: every query on it waits */
    f = on_users(Action::VacuumFull);
    f.table.matview = true;
    v = eval(f);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_CONTAINS(v[0].message, "rewrites materialized view public.users (");
    EXPECT_CONTAINS(v[0].detail, "every query on the materialized view, reads included");
    /* the same statement on a table is told as before */
    f.table.matview = false;
    v = eval(f);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_CONTAINS(v[0].message, "rewrites table public.users (");
}

TEST(RequireConcurrentIndexCreation, HintBuildsTheStatementsIndex)
{
    /* what the statement says beyond its key (UNIQUE, USING, WHERE, ...)
     * comes written out in the facts: the hint builds that index */
    auto f = on_users(Action::CreateIndex);
    f.index = "users_email_u";
    f.columns = {"email text_pattern_ops"};
    f.expression = "CREATE UNIQUE INDEX CONCURRENTLY users_email_u ON public.users (email "
                   "text_pattern_ops) WHERE (deleted_at IS NULL);";
    auto v = eval(f);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_CONTAINS(v[0].hint, "in a migration step of its own: CREATE UNIQUE INDEX CONCURRENTLY "
                               "users_email_u ON public.users (email text_pattern_ops) WHERE "
                               "(deleted_at IS NULL);");
    f.expression.clear();
    v = eval(f);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_CONTAINS(v[0].hint, "CREATE INDEX CONCURRENTLY users_email_u ON public.users (email text_pattern_ops);");
}

TEST(ScanDoors, DetachConcurrentlyIsFine)
{
    auto f = on_users(Action::DetachPartition);
    f.concurrently = true;
    EXPECT_TRUE(eval(f).empty());
}

TEST(ScanDoors, IndexRebuildIsJudgedOnTheIndexes)
{
    auto f = on_users(Action::IndexRebuild);
    f.column = "created_at";
    f.column_type = "timestamp with time zone";
    f.index = "public.users_created_at";
    auto v = eval(f);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].rule, "changing-column-type");
    EXPECT_CONTAINS(v[0].message, "rebuilds index public.users_created_at");
    EXPECT_CONTAINS(v[0].message, "3072 MB of indexes to rebuild");
    EXPECT_CONTAINS(v[0].detail, "ACCESS EXCLUSIVE");
    EXPECT_CONTAINS(v[0].hint, "migrate_backfill(");
    /* small indexes of a small table: exempt like any size-dependent rule */
    f.table = small_table();
    EXPECT_TRUE(eval(f).empty());
}

TEST(ScanDoors, TypeChangeKeepingTheHeapRechecksConstraints)
{
    auto f = on_users(Action::IndexRebuild);
    f.column = "note";
    f.column_type = "character varying(40)";
    f.constraint = "users_note_check";
    f.expression = "CHECK (note <> '')";
    auto v = eval(f);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].rule, "changing-column-type");
    EXPECT_CONTAINS(v[0].message, "re-checks constraint users_note_check on every row");
    EXPECT_CONTAINS(v[0].hint, "ALTER TABLE public.users DROP CONSTRAINT users_note_check, ALTER COLUMN "
                               "note TYPE character varying(40), ADD CONSTRAINT users_note_check "
                               "CHECK (note <> '') NOT VALID;");
    EXPECT_CONTAINS(v[0].hint, "VALIDATE CONSTRAINT users_note_check;");
    f.constraint = "users_note_check, users_note_len";
    v = eval(f);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_CONTAINS(v[0].message, "constraints users_note_check, users_note_len");
    EXPECT_CONTAINS(v[0].hint, "<its definition>");
    f.table = small_table();
    EXPECT_TRUE(eval(f).empty());
}

TEST(ScanDoors, ValidateUnderAnyWriteBlockingLock)
{
    auto f = on_users(Action::ValidateConstraint);
    f.constraint = "users_org_fkey";
    for (LockMode weak : {LockMode::RowExclusive, LockMode::ShareUpdateExclusive})
    {
        f.held_lock = weak;
        EXPECT_TRUE(eval(f).empty()) << sm::lock_name(weak);
    }
    for (LockMode strong : {LockMode::Share, LockMode::ShareRowExclusive, LockMode::Exclusive}) {
        f.held_lock = strong;
        auto v = eval(f);
        ASSERT_EQ(v.size(), 1u) << sm::lock_name(strong);
        EXPECT_CONTAINS(v[0].message, std::string(sm::lock_name(strong)) + " lock on public.users");
        EXPECT_CONTAINS(v[0].detail, std::string(sm::lock_blocks(strong)));
    }
    f.held_lock = LockMode::ShareRowExclusive;
    f.held_on = "public.orgs";
    auto v = eval(f);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_CONTAINS(v[0].message, "SHARE ROW EXCLUSIVE lock on public.orgs");
}

TEST(ScanDoors, PrimaryKeyUsingIndexSaysWhySetNotNull)
{
    auto f = on_users(Action::SetNotNull);
    f.column = "id";
    f.using_index = true;
    auto v = eval(f);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_CONTAINS(v[0].message, "ADD PRIMARY KEY USING INDEX sets NOT NULL on column id");
    f.not_null_proven = true;
    EXPECT_TRUE(eval(f).empty());
}

TEST(ScanDoors, ReindexWithoutATableNamesWhatWasTyped)
{
    auto f = on_users(Action::Reindex);
    f.sweep = "SCHEMA app";
    auto v = eval(f);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_CONTAINS(v[0].message, "REINDEX SCHEMA app rebuilds without CONCURRENTLY the indexes of table public.users");
    EXPECT_CONTAINS(v[0].hint, "REINDEX SCHEMA CONCURRENTLY app;");
    f.sweep = "SYSTEM db";
    v = eval(f);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_CONTAINS(v[0].hint, "-- safe_migrate:allow require-concurrent-reindex");
    f.concurrently = true;
    f.sweep = "DATABASE db";
    EXPECT_TRUE(eval(f).empty());
}

// PostgreSQL 18 adds a NOT NULL constraint NOT VALID and validates it under
// SHARE UPDATE EXCLUSIVE: the hints say so there, and keep the CHECK
// sequence (which 15 and 17 need) elsewhere.
TEST(ServerVersion, NotNullSequencePerVersion)
{
    auto f = case_of("setting-not-null-field").facts;
    for (int version : {150000, 170000}) {
        f.server_version = version;
        auto vs = eval(f);
        ASSERT_EQ(vs.size(), 1u);
        EXPECT_CONTAINS(vs[0].hint, "CHECK (full_name IS NOT NULL) NOT VALID;");
        EXPECT_CONTAINS(vs[0].hint, "ALTER COLUMN full_name SET NOT NULL;");
    }
    f.server_version = 180000;
    auto vs = eval(f);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_CONTAINS(vs[0].hint, "ALTER TABLE public.users ADD CONSTRAINT users_full_name_not_null NOT NULL "
                                "full_name NOT VALID; ALTER TABLE public.users VALIDATE CONSTRAINT "
                                "users_full_name_not_null;");
    EXPECT_EQ(vs[0].hint.find("CHECK ("), std::string::npos);
    EXPECT_EQ(vs[0].hint.find("SET NOT NULL"), std::string::npos);
    // the same sequence ends the hints that fill a new column first
    auto add = case_of("adding-required-field").facts;
    add.server_version = 180000;
    auto va = eval(add);
    ASSERT_EQ(va.size(), 1u);
    EXPECT_CONTAINS(va[0].hint, "NOT NULL " + add.column + " NOT VALID;");
}

TEST(ServerVersion, GeneratedColumnHintOffersVirtualOn18)
{
    auto f = case_of("table-rewrite").facts;
    f.rewrite_reasons = sm::rewrite_reason::kDefaultValue;
    f.column = "n";
    f.column_type = "integer";
    f.added_kind = "generated";
    auto before = eval(f);
    ASSERT_EQ(before.size(), 1u);
    EXPECT_EQ(before[0].hint.find("VIRTUAL"), std::string::npos);
    f.server_version = 180000;
    auto on18 = eval(f);
    ASSERT_EQ(on18.size(), 1u);
    EXPECT_CONTAINS(on18[0].hint, "VIRTUAL generated column");
    EXPECT_CONTAINS(on18[0].hint, "-- safe_migrate:allow table-rewrite");
}

TEST(ServerVersion, PartitionedForeignKeyNotValidOn18)
{
    auto f = case_of("adding-foreign-key-constraint").facts;
    f.table.partitioned = true;
    auto before = eval(f);
    ASSERT_EQ(before.size(), 1u);
    EXPECT_CONTAINS(before[0].hint, "ALTER TABLE <partition> ADD CONSTRAINT");
    f.server_version = 180000;
    auto on18 = eval(f);
    ASSERT_EQ(on18.size(), 1u);
    EXPECT_EQ(on18[0].hint.find("<partition>"), std::string::npos);
    EXPECT_CONTAINS(on18[0].hint, " NOT VALID; ALTER TABLE public.orders VALIDATE CONSTRAINT ");
}
