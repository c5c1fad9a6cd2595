#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/lexer.hpp"

namespace sm = safe_migrate::core;

namespace {

// The spans as "K:text" strings (K: S sql, L literal, I identifier, C comment).
std::vector<std::string> spans(const std::string& sql, bool backslashes = false) {
    std::vector<std::string> out;
    for (const sm::Span& s : sm::lex_spans(sql, sm::LexOptions{backslashes})) {
        const char k = s.kind == sm::SpanKind::Sql ? 'S'
                       : s.kind == sm::SpanKind::Literal ? 'L'
                       : s.kind == sm::SpanKind::Identifier ? 'I'
                                                              : 'C';
        out.push_back(std::string(1, k) + ":" + sql.substr(s.begin, s.end - s.begin));
    }
    return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST(Lexer, PlainString) {
    EXPECT_EQ(spans("SELECT 'a''b', 1"), (V{"S:SELECT ", "L:'a''b'", "S:, 1"}));
}

TEST(Lexer, BackslashInPlainStringDependsOnSetting) {
    EXPECT_EQ(spans("'a\\' x '"), (V{"L:'a\\'", "S: x ", "L:'"}));
    EXPECT_EQ(spans("'a\\' x '", true), (V{"L:'a\\' x '"}));
}

TEST(Lexer, EscapeString) {
    EXPECT_EQ(spans("E'a\\'b' x"), (V{"L:E'a\\'b'", "S: x"}));
    EXPECT_EQ(spans("e'\\\\' x"), (V{"L:e'\\\\'", "S: x"}));
    // a word ending in e is not an E prefix
    EXPECT_EQ(spans("some'a\\' x"), (V{"S:some", "L:'a\\'", "S: x"}));
}

TEST(Lexer, UnicodeAndOtherPrefixes) {
    EXPECT_EQ(spans("U&'d\\0061t' u&\"x\" B'1' X'ff' N'n'"),
              (V{"L:U&'d\\0061t'", "S: ", "I:u&\"x\"", "S: B", "L:'1'", "S: X", "L:'ff'", "S: N", "L:'n'"}));
}

TEST(Lexer, QuotedIdentifier) {
    EXPECT_EQ(spans("\"a\"\"b\".c"), (V{"I:\"a\"\"b\"", "S:.c"}));
}

TEST(Lexer, DollarQuotes) {
    EXPECT_EQ(spans("$$a'b$$ $t$x$$y$t$ $1 $2"), (V{"L:$$a'b$$", "S: ", "L:$t$x$$y$t$", "S: $1 $2"}));
    // $ inside an identifier does not open a body
    EXPECT_EQ(spans("a$b$ 'x'"), (V{"S:a$b$ ", "L:'x'"}));
    // unterminated: to the end
    EXPECT_EQ(spans("$q$ never"), (V{"L:$q$ never"}));
}

TEST(Lexer, Comments) {
    EXPECT_EQ(spans("a -- it's\nb"), (V{"S:a ", "C:-- it's", "S:\nb"}));
    EXPECT_EQ(spans("a -- x\rb"), (V{"S:a ", "C:-- x", "S:\rb"}));
    EXPECT_EQ(spans("/* a /* b */ 'c' */ d"), (V{"C:/* a /* b */ 'c' */", "S: d"}));
    EXPECT_EQ(spans("'--' \"/*\""), (V{"L:'--'", "S: ", "I:\"/*\""}));
}

TEST(Lexer, UnterminatedStringRunsToEnd) {
    EXPECT_EQ(spans("SELECT 'abc\n"), (V{"S:SELECT ", "L:'abc\n"}));
}

TEST(Lexer, LiteralMaskIsUnionOfBothReadings) {
    const std::string sql = "'a\\' x '";
    const std::vector<bool> mask = sm::literal_mask(sql);
    for (std::size_t i = 0; i < sql.size(); ++i) EXPECT_TRUE(mask[i]) << i;
}

TEST(BlankOut, KeepsCommentsAndLineEnds) {
    std::string s = "-- head\nBEGIN; /* c */\r\nSELECT 1;";
    sm::blank_out(s, 0, 14);  // "-- head\nBEGIN;"
    EXPECT_EQ(s, "-- head\n       /* c */\r\nSELECT 1;");
    std::string t = "SELECT 1;\nCOMMIT\n;\n";
    sm::blank_out(t, 9, t.size());
    EXPECT_EQ(t, "SELECT 1;\n      \n \n");
}
