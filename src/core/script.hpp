#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "error.hpp"

namespace safe_migrate::core {

// A line `-- safe_migrate:allow <rule> <reason...>`.
struct AllowDirective {
    std::string rule;    // [a-z0-9-]+
    std::string reason;  // rest of the line, trimmed, never empty
    int line;            // 1-based line number in the original script
};

struct ScriptSections {
    std::string up;              // SQL text of the up part (plain script: the whole script)
    std::string down;            // SQL text of the down section ("" when there is no down marker)
    bool has_down = false;       // down marker present (its section may be empty: nothing to undo)
    bool dbmate_format = false;  // a `-- migrate:up` marker was present
    int up_first_line = 1;       // 1-based line in the original script where `up` starts
    int down_first_line = 0;     // 1-based line where `down` starts; 0 when no down marker
    std::vector<AllowDirective> allows;  // directives anywhere in the script, in order
    bool online = false;         // a `-- safe_migrate:online` line (anywhere in the script)
    int online_line = 0;         // its line (the first one), 0 when none
};

// Splits a migration script into its up and down parts (dbmate format) and
// collects `-- safe_migrate:allow` and `-- safe_migrate:online` directives. Purely line based: it never
// splits SQL into statements. Throws ScriptError on malformed input.
ScriptSections split_sections(std::string_view script);

// Outside string constants, quoted identifiers and dollar-quoted bodies (as
// core/lexer.hpp finds them, under either setting of
// standard_conforming_strings): CR LF and lone CR -> LF, trailing whitespace
// of every line removed, trailing blank lines removed (the result has no
// final newline).  Inside them every byte is kept: it is data.  For a script
// none of whose literals spans a line end this is exactly the line-based
// normalisation of earlier versions, so their recorded checksums stay valid.
std::string normalize_for_checksum(std::string_view script);

// sha256_hex(normalize_for_checksum(script)).
std::string script_checksum(std::string_view script);

// "sha256-" + the first 16 characters of `checksum` (which must be lowercase hex).
// Throws ScriptError when the checksum is shorter than 16 characters or not hex.
std::string derived_version(std::string_view checksum);

// The version as recorded: leading and trailing ASCII whitespace (space, tab,
// CR, LF, FF, VT) removed, so " 001 " and "001" name the same migration.
// Throws ScriptError when nothing is left (an empty or blank version), when
// more than 200 bytes are left, or when what is left contains a control
// character (bytes 0x00-0x1F and 0x7F).
std::string normalize_version(std::string_view version);

}  // namespace safe_migrate::core
