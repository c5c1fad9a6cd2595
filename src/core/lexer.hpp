#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace safe_migrate::core {

// A small lexer of PostgreSQL SQL text: enough to tell which bytes of a
// script are inside a literal (a string constant, a quoted identifier, a
// dollar-quoted body), inside a comment, or plain SQL.  It never fails:
// unterminated constructs run to the end of the text, as PostgreSQL's own
// scanner would report them (a syntax error elsewhere).
//
// Knows '...' (with '' doubling), E'...' (backslash escapes), U&'...',
// B'...', X'...', N'...', "..." and U&"..." (with "" doubling),
// $tag$...$tag$ (a tag is empty or an identifier; $1 is a parameter),
// -- comments (to the end of the line: LF or CR) and nested /* */ comments.
enum class SpanKind {
    Sql,         // keywords, identifiers, operators, whitespace, ...
    Literal,     // a string constant or dollar-quoted body, quotes included
    Identifier,  // a quoted identifier, quotes included
    Comment,     // a -- or /* */ comment, markers included
};

struct Span {
    SpanKind kind;
    std::size_t begin;
    std::size_t end;  // one past the last byte
};

struct LexOptions {
    // standard_conforming_strings = off: a backslash escapes the next
    // character in '...' too (as it always does in E'...').
    bool backslash_escapes = false;
};

// The text as consecutive spans covering every byte.  Adjacent Sql bytes
// form one span.
std::vector<Span> lex_spans(std::string_view sql, LexOptions options = {});

// Bytes that are inside a literal or quoted identifier under EITHER reading
// of backslashes in '...' (standard_conforming_strings on or off): what a
// normalisation must leave alone whatever the server's setting.
std::vector<bool> literal_mask(std::string_view sql);

// Replaces every byte of text[begin, end) that is neither part of a comment
// nor a line terminator (LF, CR) by a space: the statement there disappears,
// while positions, line numbers and comments stay.  `begin` must be at a
// token boundary (the start of a statement).
void blank_out(std::string& text, std::size_t begin, std::size_t end);

}  // namespace safe_migrate::core
