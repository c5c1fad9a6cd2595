#include <gtest/gtest.h>

#include <string>

#include "core/script.hpp"
#include "core/sha256.hpp"
#include "test_util.hpp"

namespace sm = safe_migrate::core;

TEST(Normalize, LineEndingsBecomeLf) {
    EXPECT_EQ(sm::normalize_for_checksum("a\r\nb\rc\nd"), "a\nb\nc\nd");
}

TEST(Normalize, TrailingWhitespaceStripped) {
    EXPECT_EQ(sm::normalize_for_checksum("a  \t\nb\t\n  c  "), "a\nb\n  c");
}

TEST(Normalize, TrailingBlankLinesStripped) {
    EXPECT_EQ(sm::normalize_for_checksum("a\n\n \n\t\r\n\n"), "a");
}

TEST(Normalize, LeadingAndInnerBlankLinesKept) {
    EXPECT_EQ(sm::normalize_for_checksum("\n\na\n\n\nb\n"), "\n\na\n\n\nb");
}

TEST(Normalize, EmptyAndBlankInputs) {
    EXPECT_EQ(sm::normalize_for_checksum(""), "");
    EXPECT_EQ(sm::normalize_for_checksum("\n\r\n  \t \n"), "");
}

TEST(Normalize, LeadingWhitespaceKept) {
    EXPECT_EQ(sm::normalize_for_checksum("  a\n\tb"), "  a\n\tb");
}

TEST(Checksum, IsSha256OfNormalizedText) {
    EXPECT_EQ(sm::script_checksum("abc\n"), sm::sha256_hex("abc"));
    EXPECT_EQ(sm::script_checksum(""), sm::sha256_hex(""));
}

TEST(Checksum, EqualAcrossLineEndingsAndTrailingWhitespace) {
    const std::string lf = "-- migrate:up\nCREATE TABLE t (id int);\n-- migrate:down\nDROP TABLE t;\n";
    const std::string crlf = "-- migrate:up\r\nCREATE TABLE t (id int);  \r\n-- migrate:down\r\nDROP TABLE t;\r\n\r\n";
    const std::string cr = "-- migrate:up\rCREATE TABLE t (id int);\r-- migrate:down\rDROP TABLE t;";
    const std::string spaced = "-- migrate:up \t\nCREATE TABLE t (id int);\t\n-- migrate:down\nDROP TABLE t;\n\n\n   \n";
    EXPECT_EQ(sm::script_checksum(lf), sm::script_checksum(crlf));
    EXPECT_EQ(sm::script_checksum(lf), sm::script_checksum(cr));
    // a UTF-8 byte order mark at the start is not part of the script
    EXPECT_EQ(sm::script_checksum(lf), sm::script_checksum(std::string("\xEF\xBB\xBF") + lf));
    // ... anywhere else it is
    EXPECT_NE(sm::script_checksum(lf), sm::script_checksum(lf + std::string("\xEF\xBB\xBF")));
    EXPECT_EQ(sm::script_checksum(lf), sm::script_checksum(spaced));
}

TEST(Checksum, DiffersOnContentChange) {
    const std::string a = "CREATE TABLE t (id int);\n";
    EXPECT_NE(sm::script_checksum(a), sm::script_checksum("CREATE TABLE t (id bigint);\n"));
    EXPECT_NE(sm::script_checksum(a), sm::script_checksum("  CREATE TABLE t (id int);\n"));  // leading space
    EXPECT_NE(sm::script_checksum(a), sm::script_checksum("CREATE  TABLE t (id int);\n"));   // inner space
    EXPECT_NE(sm::script_checksum(a), sm::script_checksum("\nCREATE TABLE t (id int);\n"));  // leading blank line
    EXPECT_NE(sm::script_checksum("a\nb"), sm::script_checksum("a\n\nb"));                   // inner blank line
    EXPECT_NE(sm::script_checksum("a\nb"), sm::script_checksum("ab"));
}

TEST(Checksum, IsLowercaseHex64) {
    const std::string c = sm::script_checksum("SELECT 1;");
    ASSERT_EQ(c.size(), 64u);
    for (char ch : c) EXPECT_TRUE((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'));
}

TEST(DerivedVersion, FirstSixteenHexChars) {
    const std::string c = sm::sha256_hex("abc");
    EXPECT_EQ(sm::derived_version(c), "sha256-ba7816bf8f01cfea");
    EXPECT_EQ(sm::derived_version("0123456789abcdef"), "sha256-0123456789abcdef");
    EXPECT_EQ(sm::derived_version("0123456789abcdefXYZ"), "sha256-0123456789abcdef");
}

TEST(DerivedVersion, TooShort) {
    EXPECT_TRUE(ThrowsScriptError([] { sm::derived_version(""); }, "too short"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::derived_version("0123456789abcde"); }, "too short"));
}

TEST(DerivedVersion, NotHex) {
    EXPECT_TRUE(ThrowsScriptError([] { sm::derived_version("0123456789ABCDEF"); }, "hexadecimal"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::derived_version("0123456789abcdeg0000"); }, "hexadecimal"));
}

TEST(DerivedVersion, IsAValidVersion) {
    EXPECT_NO_THROW(sm::normalize_version(sm::derived_version(sm::script_checksum("SELECT 1;"))));
}

TEST(ValidateVersion, AcceptsOrdinaryVersions) {
    EXPECT_NO_THROW(sm::normalize_version("1"));
    EXPECT_NO_THROW(sm::normalize_version("20240101120000"));
    EXPECT_NO_THROW(sm::normalize_version("2024-01-01 add users"));
    EXPECT_NO_THROW(sm::normalize_version("v1.2.3_add-users"));
    EXPECT_NO_THROW(sm::normalize_version("versión-ü-日本"));  // UTF-8 is fine
    EXPECT_NO_THROW(sm::normalize_version("~"));              // 0x7E, last printable ASCII
    EXPECT_EQ(sm::normalize_version("2024-01-01 add users"), "2024-01-01 add users");  // inner spaces kept
}

TEST(ValidateVersion, Empty) {
    EXPECT_TRUE(ThrowsScriptError([] { sm::normalize_version(""); }, "must not be empty"));
}

TEST(ValidateVersion, LengthLimit) {
    EXPECT_NO_THROW(sm::normalize_version(std::string(200, 'v')));
    EXPECT_TRUE(ThrowsScriptError([] { sm::normalize_version(std::string(201, 'v')); }, "201 bytes"));
    // The limit is in bytes: 100 two-byte characters fit, 101 do not.
    std::string two_byte;
    for (int i = 0; i < 100; ++i) two_byte += "\xC3\xA9";
    EXPECT_NO_THROW(sm::normalize_version(two_byte));
    two_byte += "\xC3\xA9";
    EXPECT_TRUE(ThrowsScriptError([&] { sm::normalize_version(two_byte); }, "maximum is 200"));
}

TEST(ValidateVersion, ControlCharacters) {
    EXPECT_TRUE(ThrowsScriptError([] { sm::normalize_version("1\n2"); }, "control character (0x0A at byte 2)"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::normalize_version(" \t1\x01"); }, "0x01 at byte 4"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::normalize_version("a\rb"); }, "0x0D"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::normalize_version(std::string("a\0b", 3)); }, "0x00"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::normalize_version("a\x1f"); }, "0x1F"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::normalize_version("del\x7f"); }, "0x7F"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::normalize_version("\x1b[31m"); }, "0x1B"));
}

TEST(Version, SurroundingWhitespaceIsTrimmed) {
    EXPECT_EQ(sm::normalize_version(" 001 "), "001");
    EXPECT_EQ(sm::normalize_version("\t001\r\n"), "001");
    EXPECT_EQ(sm::normalize_version("001"), sm::normalize_version("  001\n"));
    // the 200-byte limit applies to what is recorded
    EXPECT_NO_THROW(sm::normalize_version("  " + std::string(200, 'v') + "  "));
}

TEST(Version, BlankIsRefused) {
    EXPECT_TRUE(ThrowsScriptError([] { sm::normalize_version(" "); }, "must not be blank"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::normalize_version("   "); }, "must not be blank"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::normalize_version("\t\r\n \f\v"); }, "must not be blank"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::normalize_version(""); }, "must not be empty"));
}

// Issue 11, item 9: bytes inside literals are data, never normalised.
TEST(Normalize, StringLiteralContentKept) {
    EXPECT_EQ(sm::normalize_for_checksum("SELECT 'a  \nb';  \n"), "SELECT 'a  \nb';");
    EXPECT_EQ(sm::normalize_for_checksum("SELECT 'a\r\nb'\r\n"), "SELECT 'a\r\nb'");
    EXPECT_EQ(sm::normalize_for_checksum("SELECT 'a\rb'"), "SELECT 'a\rb'");
    EXPECT_EQ(sm::normalize_for_checksum("SELECT 'it''s  \n'  \n"), "SELECT 'it''s  \n'");
}

TEST(Normalize, EveryLiteralKindKept) {
    EXPECT_EQ(sm::normalize_for_checksum("SELECT E'\\'  \n  '"), "SELECT E'\\'  \n  '");
    EXPECT_EQ(sm::normalize_for_checksum("SELECT U&'x  \n'"), "SELECT U&'x  \n'");
    EXPECT_EQ(sm::normalize_for_checksum("SELECT 1 AS \"a  \nb\"  \n"), "SELECT 1 AS \"a  \nb\"");
    EXPECT_EQ(sm::normalize_for_checksum("SELECT $f$x  \r\n$f$;\t\n"), "SELECT $f$x  \r\n$f$;");
    EXPECT_EQ(sm::normalize_for_checksum("DO $$ BEGIN  \nEND $$;  \n\n"), "DO $$ BEGIN  \nEND $$;");
    EXPECT_EQ(sm::normalize_for_checksum("SELECT B'01', X'0a  \n'"), "SELECT B'01', X'0a  \n'");
}

TEST(Normalize, CommentsAreNotLiteral) {
    // a quote in a comment starts nothing; the comment's trailing blanks go
    EXPECT_EQ(sm::normalize_for_checksum("-- don't  \nSELECT 1;  \n"), "-- don't\nSELECT 1;");
    EXPECT_EQ(sm::normalize_for_checksum("/* it's  \r\n /* nested ' */  \n */ SELECT 'x  \n'"),
              "/* it's\n /* nested ' */\n */ SELECT 'x  \n'");
}

TEST(Normalize, TrailingWhitespaceAfterLiteralStripped) {
    EXPECT_EQ(sm::normalize_for_checksum("SELECT 'a'   \r\nSELECT 'b'\t"), "SELECT 'a'\nSELECT 'b'");
}

TEST(Normalize, EitherBackslashReadingIsKept) {
    // with standard_conforming_strings off the literal runs on past \' :
    // the blanks after it may be data, so they are kept whatever the setting
    EXPECT_EQ(sm::normalize_for_checksum("SELECT 'C:\\';  \nSELECT 'x';"), "SELECT 'C:\\';  \nSELECT 'x';");
}

TEST(Checksum, DiffersWhenOnlyLiteralWhitespaceDiffers) {
    const std::string a = "INSERT INTO t VALUES ('line one  \nline two');\n";
    const std::string b = "INSERT INTO t VALUES ('line one\nline two');\n";
    const std::string c = "INSERT INTO t VALUES ('line one\r\nline two');\n";
    EXPECT_NE(sm::script_checksum(a), sm::script_checksum(b));
    EXPECT_NE(sm::script_checksum(b), sm::script_checksum(c));
    EXPECT_NE(sm::script_checksum("SELECT $$a \n$$"), sm::script_checksum("SELECT $$a\n$$"));
}

TEST(Checksum, UnchangedForScriptsWithoutMultilineLiterals) {
    // the checksum recorded by earlier versions: sha256 of the line-normalised text
    const std::string script = "-- migrate:up  \r\nCREATE TABLE t (id int, s text DEFAULT 'x');  \r\n"
                               "-- migrate:down\r\nDROP TABLE t;\r\n\r\n";
    EXPECT_EQ(sm::script_checksum(script),
              sm::sha256_hex("-- migrate:up\nCREATE TABLE t (id int, s text DEFAULT 'x');\n"
                             "-- migrate:down\nDROP TABLE t;"));
}
