#include <gtest/gtest.h>

#include <string>
#include <type_traits>

#include "core/script.hpp"
#include "test_util.hpp"

namespace sm = safe_migrate::core;

static_assert(std::is_base_of_v<std::runtime_error, sm::ScriptError>);

TEST(SplitSections, PlainScriptIsAllUp) {
    const std::string s = "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n";
    const auto r = sm::split_sections(s);
    EXPECT_EQ(r.up, s);
    EXPECT_EQ(r.down, "");
    EXPECT_FALSE(r.has_down);
    EXPECT_FALSE(r.dbmate_format);
    EXPECT_EQ(r.up_first_line, 1);
    EXPECT_EQ(r.down_first_line, 0);
    EXPECT_TRUE(r.allows.empty());
}

TEST(SplitSections, EmptyScript) {
    const auto r = sm::split_sections("");
    EXPECT_EQ(r.up, "");
    EXPECT_FALSE(r.has_down);
    EXPECT_FALSE(r.dbmate_format);
    EXPECT_EQ(r.up_first_line, 1);
    EXPECT_EQ(r.down_first_line, 0);
}

TEST(SplitSections, PlainScriptWithoutTrailingNewline) {
    const auto r = sm::split_sections("SELECT 1");
    EXPECT_EQ(r.up, "SELECT 1");
    EXPECT_FALSE(r.dbmate_format);
}

TEST(SplitSections, DbmateUpAndDown) {
    const std::string s =
        "-- migrate:up\n"
        "CREATE TABLE t (id int);\n"
        "\n"
        "-- migrate:down\n"
        "DROP TABLE t;\n";
    const auto r = sm::split_sections(s);
    EXPECT_TRUE(r.dbmate_format);
    EXPECT_EQ(r.up, "CREATE TABLE t (id int);\n\n");
    EXPECT_EQ(r.down, "DROP TABLE t;\n");
    EXPECT_TRUE(r.has_down);
    EXPECT_EQ(r.up_first_line, 2);
    EXPECT_EQ(r.down_first_line, 5);
}

TEST(SplitSections, DbmateUpOnly) {
    const auto r = sm::split_sections("-- migrate:up\nSELECT 1;\n");
    EXPECT_TRUE(r.dbmate_format);
    EXPECT_EQ(r.up, "SELECT 1;\n");
    EXPECT_FALSE(r.has_down);
    EXPECT_EQ(r.down, "");
    EXPECT_EQ(r.down_first_line, 0);
    EXPECT_EQ(r.up_first_line, 2);
}

TEST(SplitSections, UpMarkerAtEndOfFileWithoutNewline) {
    const auto r = sm::split_sections("-- migrate:up");
    EXPECT_TRUE(r.dbmate_format);
    EXPECT_EQ(r.up, "");
    EXPECT_EQ(r.up_first_line, 2);
}

TEST(SplitSections, DownMarkerAtEndOfFile) {
    const auto r = sm::split_sections("-- migrate:up\nSELECT 1;\n-- migrate:down");
    EXPECT_EQ(r.up, "SELECT 1;\n");
    EXPECT_EQ(r.down, "");
    EXPECT_TRUE(r.has_down);  // an explicitly empty down section: nothing to undo
    EXPECT_EQ(r.down_first_line, 4);
}

TEST(SplitSections, BlankDownSectionIsAnEmptyDown) {
    // dbmate: an empty down section means "nothing to undo", unlike a missing one
    const auto r = sm::split_sections("-- migrate:up\nSELECT 1;\n-- migrate:down\n\n  \t\n\r\n");
    EXPECT_TRUE(r.has_down);
    EXPECT_EQ(r.down, "\n  \t\n\r\n");
    EXPECT_EQ(r.down_first_line, 4);
}

TEST(SplitSections, CommentOnlyDownSectionCountsAsPresent) {
    // Only whitespace counts as blank; a comment is content.
    const auto r = sm::split_sections("-- migrate:up\nSELECT 1;\n-- migrate:down\n-- irreversible\n");
    EXPECT_TRUE(r.has_down);
    EXPECT_EQ(r.down, "-- irreversible\n");
}

TEST(SplitSections, CommentsAndBlankLinesBeforeUpAreFine) {
    const std::string s =
        "-- Add the users table\n"
        "\n"
        "   -- indented comment\n"
        "\t\n"
        "-- migrate:up\n"
        "CREATE TABLE users ();\n";
    const auto r = sm::split_sections(s);
    EXPECT_TRUE(r.dbmate_format);
    EXPECT_EQ(r.up, "CREATE TABLE users ();\n");
    EXPECT_EQ(r.up_first_line, 6);
}

TEST(SplitSections, TextBeforeUpIsAnError) {
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("SELECT 1;\n-- migrate:up\nSELECT 2;\n"); },
                                  "text before -- migrate:up"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- c\n\nSELECT 1;\n-- migrate:up\nSELECT 2;\n"); },
                                  "(line 3)"));
    // A block comment is not a `--` comment: line-level parsing treats it as text.
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("/* header */\n-- migrate:up\nSELECT 2;\n"); },
                                  "text before -- migrate:up"));
}

TEST(SplitSections, MarkerWithOptions) {
    const std::string s =
        "-- migrate:up transaction:false\n"
        "CREATE INDEX CONCURRENTLY i ON t (a);\n"
        "-- migrate:down transaction:false\n"
        "DROP INDEX CONCURRENTLY i;\n";
    const auto r = sm::split_sections(s);
    EXPECT_TRUE(r.dbmate_format);
    EXPECT_EQ(r.up, "CREATE INDEX CONCURRENTLY i ON t (a);\n");
    EXPECT_EQ(r.down, "DROP INDEX CONCURRENTLY i;\n");
    EXPECT_TRUE(r.has_down);
}

TEST(SplitSections, MarkerWithTrailingWhitespace) {
    const auto r = sm::split_sections("-- migrate:up   \t\nSELECT 1;\n-- migrate:down \nSELECT 2;\n");
    EXPECT_EQ(r.up, "SELECT 1;\n");
    EXPECT_EQ(r.down, "SELECT 2;\n");
}

TEST(SplitSections, MarkersWithoutSpace) {
    const auto r = sm::split_sections("--migrate:up\nSELECT 1;\n--migrate:down\nSELECT 2;\n");
    EXPECT_TRUE(r.dbmate_format);
    EXPECT_EQ(r.up, "SELECT 1;\n");
    EXPECT_EQ(r.down, "SELECT 2;\n");
}

TEST(SplitSections, IndentedMarkersAndExtraSpaces) {
    const auto r = sm::split_sections("  \t--   migrate:up\nSELECT 1;\n    -- migrate:down\nSELECT 2;\n");
    EXPECT_TRUE(r.dbmate_format);
    EXPECT_EQ(r.up, "SELECT 1;\n");
    EXPECT_EQ(r.down, "SELECT 2;\n");
}

TEST(SplitSections, CrLfLineEndings) {
    const std::string s = "-- c\r\n-- migrate:up\r\nSELECT 1;\r\nSELECT 2;\r\n-- migrate:down\r\nSELECT 3;\r\n";
    const auto r = sm::split_sections(s);
    EXPECT_TRUE(r.dbmate_format);
    EXPECT_EQ(r.up, "SELECT 1;\r\nSELECT 2;\r\n");
    EXPECT_EQ(r.down, "SELECT 3;\r\n");
    EXPECT_EQ(r.up_first_line, 3);
    EXPECT_EQ(r.down_first_line, 6);
}

TEST(SplitSections, LoneCrLineEndings) {
    const auto r = sm::split_sections("-- migrate:up\rSELECT 1;\r-- migrate:down\rSELECT 2;\r");
    EXPECT_TRUE(r.dbmate_format);
    EXPECT_EQ(r.up, "SELECT 1;\r");
    EXPECT_EQ(r.down, "SELECT 2;\r");
    EXPECT_EQ(r.up_first_line, 2);
    EXPECT_EQ(r.down_first_line, 4);
}

TEST(SplitSections, CrLfLineNumbersCountPairsOnce) {
    const auto r = sm::split_sections("\r\n\r\n\r\n-- migrate:up\r\nSELECT 1;\r\n");
    EXPECT_EQ(r.up_first_line, 5);
}

TEST(SplitSections, DownOnlyMakesEverythingBeforeItUp) {
    const std::string s = "CREATE TABLE t ();\n-- migrate:down\nDROP TABLE t;\n";
    const auto r = sm::split_sections(s);
    EXPECT_FALSE(r.dbmate_format);
    EXPECT_EQ(r.up, "CREATE TABLE t ();\n");
    EXPECT_EQ(r.up_first_line, 1);
    EXPECT_EQ(r.down, "DROP TABLE t;\n");
    EXPECT_TRUE(r.has_down);
    EXPECT_EQ(r.down_first_line, 3);
}

TEST(SplitSections, DuplicateUpMarker) {
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- migrate:up\nSELECT 1;\n-- migrate:up\n"); },
                                  "duplicate -- migrate:up marker at line 3"));
}

TEST(SplitSections, DuplicateDownMarker) {
    EXPECT_TRUE(ThrowsScriptError(
        [] { sm::split_sections("-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n--migrate:down\n"); },
        "duplicate -- migrate:down marker at line 5"));
}

TEST(SplitSections, DownBeforeUp) {
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- migrate:down\nDROP TABLE t;\n-- migrate:up\n"); },
                                  "comes after the -- migrate:down marker at line 1"));
}

TEST(SplitSections, MisspeltMarkersAreErrors) {
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- migrate:up\nSELECT 1;\n-- migrate:donw\n"); },
                                  "unknown marker \"-- migrate:donw\" at line 3"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- migrate:upgrade\n"); }, "unknown marker"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- Migrate:Up\n"); }, "unknown marker"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- MIGRATE:DOWN\n"); }, "unknown marker"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::split_sections("-- migrate: up\n"); }, "unknown marker"));
}

TEST(SplitSections, MarkerTextNotAtLineStartIsNotAMarker) {
    const std::string s = "SELECT 1; -- migrate:down\nSELECT '-- migrate:up';\n";
    const auto r = sm::split_sections(s);
    EXPECT_FALSE(r.dbmate_format);
    EXPECT_FALSE(r.has_down);
    EXPECT_EQ(r.up, s);
}

TEST(SplitSections, OtherCommentsMentioningMigrateAreFine) {
    const auto r = sm::split_sections("-- migrates the table\n--- migrate:up\nSELECT 1;\n");
    EXPECT_FALSE(r.dbmate_format);
}

TEST(SplitSections, MarkersRecognisedAtLineLevelEvenInsideDollarQuotes) {
    // Documented behaviour (same as dbmate): no SQL lexing happens here.
    const std::string s =
        "-- migrate:up\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$\n"
        "-- migrate:down\n"
        "SELECT 1 $$;\n";
    const auto r = sm::split_sections(s);
    EXPECT_EQ(r.up, "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$\n");
    EXPECT_EQ(r.down, "SELECT 1 $$;\n");
}

TEST(SplitSections, Utf8BomIsSkipped) {
    const auto r = sm::split_sections("\xEF\xBB\xBF-- migrate:up\nSELECT 1;\n");
    EXPECT_TRUE(r.dbmate_format);
    EXPECT_EQ(r.up, "SELECT 1;\n");
    const auto plain = sm::split_sections("\xEF\xBB\xBFSELECT 1;\n");
    EXPECT_EQ(plain.up, "SELECT 1;\n");
    EXPECT_EQ(plain.up_first_line, 1);
}

TEST(SplitSections, UpFirstLineMapsBackToOriginal) {
    const std::string s = "-- a\n-- b\n\n-- migrate:up\nSELECT 1;\nSELEC 2;\n-- migrate:down\nSELECT 3;\n";
    const auto r = sm::split_sections(s);
    ASSERT_EQ(r.up_first_line, 5);
    // "SELEC 2;" is the 2nd line of up, so line up_first_line + 1 = 6 of the original.
    std::size_t nl = r.up.find('\n');
    EXPECT_EQ(r.up.substr(nl + 1, 8), "SELEC 2;");
    EXPECT_EQ(r.down_first_line, 8);
}

TEST(SplitSections, NulBytesAreKept) {
    const std::string s("-- migrate:up\nSELECT '\0';\n", 26);
    const auto r = sm::split_sections(s);
    EXPECT_EQ(r.up, std::string("SELECT '\0';\n", 12));
}

TEST(SplitSections, EmptyUpWithDownSection) {
    const auto r = sm::split_sections("-- migrate:up\n-- nothing yet\n\n-- migrate:down\nDROP TABLE t;\n");
    EXPECT_TRUE(r.dbmate_format);
    EXPECT_EQ(r.up, "-- nothing yet\n\n");
    EXPECT_TRUE(r.has_down);
    EXPECT_EQ(r.down, "DROP TABLE t;\n");
}
