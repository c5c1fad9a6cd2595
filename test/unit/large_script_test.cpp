#include <gtest/gtest.h>

#include <string>

#include "core/script.hpp"
#include "core/sha256.hpp"

namespace sm = safe_migrate::core;

// A ~10 MB script must split (and checksum) without quadratic behaviour. No
// timing assertion: a quadratic implementation would simply make this test
// take minutes instead of milliseconds.
TEST(LargeScript, TenMegabytesSplitsCorrectly) {
    const std::string stmt = "INSERT INTO t (a, b, c) VALUES (1, 'some text padding the line', now());\r\n";
    const std::size_t target = 10u * 1024u * 1024u;
    const std::size_t up_lines = target / 2 / stmt.size();

    std::string up_body;
    up_body.reserve(target / 2 + stmt.size());
    for (std::size_t i = 0; i < up_lines; ++i) up_body += stmt;

    const std::string down_stmt = "DELETE FROM t WHERE a = 1;\r\n";
    const std::size_t down_lines = target / 2 / down_stmt.size();
    std::string down_body;
    down_body.reserve(target / 2 + target / 1000);
    for (std::size_t i = 0; i < down_lines; ++i) {
        if (i % 1000 == 0) down_body += "-- safe_migrate:allow rule-x bulk delete is fine\r\n";
        down_body += down_stmt;
    }

    const std::string script = "-- header\r\n-- migrate:up\r\n" + up_body + "-- migrate:down\r\n" + down_body;
    ASSERT_GE(script.size(), target - 2 * stmt.size());

    const auto r = sm::split_sections(script);
    EXPECT_TRUE(r.dbmate_format);
    EXPECT_TRUE(r.has_down);
    EXPECT_EQ(r.up_first_line, 3);
    EXPECT_EQ(r.down_first_line, static_cast<int>(3 + up_lines + 1));
    EXPECT_EQ(r.up.size(), up_body.size());
    EXPECT_TRUE(r.up == up_body);
    EXPECT_TRUE(r.down == down_body);
    EXPECT_EQ(r.allows.size(), (down_lines + 999) / 1000);
    EXPECT_EQ(r.allows.back().rule, "rule-x");

    // Checksum normalisation is linear too and CRLF-insensitive.
    std::string lf = script;
    std::string::size_type w = 0;
    for (char c : script) {
        if (c != '\r') lf[w++] = c;
    }
    lf.resize(w);
    EXPECT_EQ(sm::script_checksum(script), sm::script_checksum(lf));
}

TEST(LargeScript, TenMegabytesSingleLine) {
    const std::string script(10u * 1024u * 1024u, 'x');
    const auto r = sm::split_sections(script);
    EXPECT_FALSE(r.dbmate_format);
    EXPECT_EQ(r.up.size(), script.size());
}

TEST(LargeScript, ManyEmptyLines) {
    const std::string script = "-- migrate:up\n" + std::string(5u * 1024u * 1024u, '\n') + "SELECT 1;\n";
    const auto r = sm::split_sections(script);
    EXPECT_EQ(r.up_first_line, 2);
    EXPECT_EQ(r.up.size(), 5u * 1024u * 1024u + 10u);
    EXPECT_EQ(sm::normalize_for_checksum(script), "-- migrate:up\n" + std::string(5u * 1024u * 1024u, '\n') + "SELECT 1;");
}
