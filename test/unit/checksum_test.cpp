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
    EXPECT_NO_THROW(sm::validate_version(sm::derived_version(sm::script_checksum("SELECT 1;"))));
}

TEST(ValidateVersion, AcceptsOrdinaryVersions) {
    EXPECT_NO_THROW(sm::validate_version("1"));
    EXPECT_NO_THROW(sm::validate_version("20240101120000"));
    EXPECT_NO_THROW(sm::validate_version("2024-01-01 add users"));
    EXPECT_NO_THROW(sm::validate_version("v1.2.3_add-users"));
    EXPECT_NO_THROW(sm::validate_version("versión-ü-日本"));  // UTF-8 is fine
    EXPECT_NO_THROW(sm::validate_version("~"));              // 0x7E, last printable ASCII
    EXPECT_NO_THROW(sm::validate_version(" "));              // 0x20 is not a control character
}

TEST(ValidateVersion, Empty) {
    EXPECT_TRUE(ThrowsScriptError([] { sm::validate_version(""); }, "must not be empty"));
}

TEST(ValidateVersion, LengthLimit) {
    EXPECT_NO_THROW(sm::validate_version(std::string(200, 'v')));
    EXPECT_TRUE(ThrowsScriptError([] { sm::validate_version(std::string(201, 'v')); }, "201 bytes"));
    // The limit is in bytes: 100 two-byte characters fit, 101 do not.
    std::string two_byte;
    for (int i = 0; i < 100; ++i) two_byte += "\xC3\xA9";
    EXPECT_NO_THROW(sm::validate_version(two_byte));
    two_byte += "\xC3\xA9";
    EXPECT_TRUE(ThrowsScriptError([&] { sm::validate_version(two_byte); }, "maximum is 200"));
}

TEST(ValidateVersion, ControlCharacters) {
    EXPECT_TRUE(ThrowsScriptError([] { sm::validate_version("1\n"); }, "control character (0x0A at byte 2)"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::validate_version("\t1"); }, "0x09 at byte 1"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::validate_version("a\rb"); }, "0x0D"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::validate_version(std::string("a\0b", 3)); }, "0x00"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::validate_version("a\x1f"); }, "0x1F"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::validate_version("del\x7f"); }, "0x7F"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::validate_version("\x1b[31m"); }, "0x1B"));
}
