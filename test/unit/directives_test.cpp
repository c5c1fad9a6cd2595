#include <gtest/gtest.h>

#include <string>

#include "core/script.hpp"
#include "test_util.hpp"

namespace sm = safe_migrate::core;

TEST(Directives, AllowWithReason) {
    const auto r = sm::split_sections("-- safe_migrate:allow add-column-default table is tiny\nALTER TABLE t ADD c int;\n");
    ASSERT_EQ(r.allows.size(), 1u);
    EXPECT_EQ(r.allows[0].rule, "add-column-default");
    EXPECT_EQ(r.allows[0].reason, "table is tiny");
    EXPECT_EQ(r.allows[0].line, 1);
}

TEST(Directives, ReasonIsTrimmedAndKeepsInnerSpacing) {
    const auto r = sm::split_sections("  --   safe_migrate:allow   rule1  \t  the   reason \t \r\n");
    ASSERT_EQ(r.allows.size(), 1u);
    EXPECT_EQ(r.allows[0].rule, "rule1");
    EXPECT_EQ(r.allows[0].reason, "the   reason");
}

TEST(Directives, NoSpaceAfterDashes) {
    const auto r = sm::split_sections("--safe_migrate:allow x because\n");
    ASSERT_EQ(r.allows.size(), 1u);
    EXPECT_EQ(r.allows[0].rule, "x");
    EXPECT_EQ(r.allows[0].reason, "because");
}

TEST(Directives, CollectedFromEverySectionInOrder) {
    const std::string s =
        "-- safe_migrate:allow rule-a before up\n"
        "-- migrate:up\n"
        "-- safe_migrate:allow rule-b in up\n"
        "SELECT 1;\n"
        "-- migrate:down\n"
        "-- safe_migrate:allow rule-c in down\n"
        "SELECT 2;\n";
    const auto r = sm::split_sections(s);
    ASSERT_EQ(r.allows.size(), 3u);
    EXPECT_EQ(r.allows[0].rule, "rule-a");
    EXPECT_EQ(r.allows[0].line, 1);
    EXPECT_EQ(r.allows[1].rule, "rule-b");
    EXPECT_EQ(r.allows[1].reason, "in up");
    EXPECT_EQ(r.allows[1].line, 3);
    EXPECT_EQ(r.allows[2].rule, "rule-c");
    EXPECT_EQ(r.allows[2].line, 6);
    // Directive lines stay in the SQL text (they are ordinary comments).
    EXPECT_EQ(r.up, "-- safe_migrate:allow rule-b in up\nSELECT 1;\n");
}

TEST(Directives, SameRuleTwiceIsKeptTwice) {
    const auto r = sm::split_sections("-- safe_migrate:allow r one\n-- safe_migrate:allow r two\n");
    ASSERT_EQ(r.allows.size(), 2u);
    EXPECT_EQ(r.allows[1].reason, "two");
    EXPECT_EQ(r.allows[1].line, 2);
}

TEST(Directives, MissingReason) {
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("SELECT 1;\n-- safe_migrate:allow my-rule\n"); },
                                  "safe_migrate:allow my-rule needs a reason (line 2)"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- safe_migrate:allow my-rule   \t\r\n"); },
                                  "safe_migrate:allow my-rule needs a reason (line 1)"));
}

TEST(Directives, MissingRule) {
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- safe_migrate:allow\n"); }, "needs a rule name"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- safe_migrate:allow    \n"); }, "needs a rule name"));
}

TEST(Directives, InvalidRuleName) {
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- safe_migrate:allow Add_Column reason\n"); },
                                  "invalid rule name \"Add_Column\""));
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- safe_migrate:allow a,b reason\n"); },
                                  "invalid rule name"));
}

TEST(Directives, TyposAreErrors) {
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- safe_migrate:alow r reason\n"); },
                                  "unknown directive \"-- safe_migrate:alow\" at line 1"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("\n-- safe_migrate:allows r reason\n"); },
                                  "at line 2"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- safe_migrate:\n"); }, "unknown directive"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- SAFE_MIGRATE:ALLOW r reason\n"); },
                                  "unknown directive"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- safe-migrate:allow r reason\n"); },
                                  "unknown directive"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- safe_migrate:allowr reason\n"); },
                                  "unknown directive"));
}

TEST(Directives, NotAtLineStartIsIgnored) {
    const auto r = sm::split_sections("SELECT 1; -- safe_migrate:allow r reason\nSELECT '-- safe_migrate:alow';\n");
    EXPECT_TRUE(r.allows.empty());
}

TEST(Directives, UnrelatedCommentsAreIgnored) {
    const auto r = sm::split_sections("-- safe migrate allow everything\n-- safe_migrate is great\n");
    EXPECT_TRUE(r.allows.empty());
}

TEST(Directives, OnlineAnywhere) {
    const auto plain = sm::split_sections("ALTER TABLE t ADD COLUMN c int;\n");
    EXPECT_FALSE(plain.online);
    EXPECT_EQ(plain.online_line, 0);
    const auto r = sm::split_sections("-- migrate:up\nSELECT 1;\n-- safe_migrate:online\nSELECT 2;\n"
                                      "-- safe_migrate:online\n-- migrate:down\nSELECT 3;\n");
    EXPECT_TRUE(r.online);
    EXPECT_EQ(r.online_line, 3);  // the first one
    EXPECT_TRUE(r.allows.empty());
    EXPECT_TRUE(sm::split_sections("--safe_migrate:online   \nSELECT 1;\n").online);
}

TEST(Directives, OnlineTakesNothingAndTyposAreErrors) {
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- safe_migrate:online please\n"); },
                                  "safe_migrate:online takes nothing after it (line 1)"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- safe_migrate:onlin\n"); },
                                  "unknown directive \"-- safe_migrate:onlin\" at line 1"));
    // a mention inside a statement is not a directive
    EXPECT_FALSE(sm::split_sections("SELECT '-- safe_migrate:online';\n").online);
}
