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
    bool has_down = false;       // down marker present and its section is not whitespace-only
    bool dbmate_format = false;  // a `-- migrate:up` marker was present
    int up_first_line = 1;       // 1-based line in the original script where `up` starts
    int down_first_line = 0;     // 1-based line where `down` starts; 0 when no down marker
    std::vector<AllowDirective> allows;  // directives anywhere in the script, in order
};

// Splits a migration script into its up and down parts (dbmate format) and
// collects `-- safe_migrate:allow` directives. Purely line based: it never
// splits SQL into statements. Throws ScriptError on malformed input.
ScriptSections split_sections(std::string_view script);

// CR LF and lone CR -> LF, trailing whitespace of every line removed, trailing
// blank lines removed. The result has no final newline.
std::string normalize_for_checksum(std::string_view script);

// sha256_hex(normalize_for_checksum(script)).
std::string script_checksum(std::string_view script);

// "sha256-" + the first 16 characters of `checksum` (which must be lowercase hex).
// Throws ScriptError when the checksum is shorter than 16 characters or not hex.
std::string derived_version(std::string_view checksum);

// Accepts a non-empty version of at most 200 bytes without control characters
// (bytes 0x00-0x1F and 0x7F). Throws ScriptError otherwise.
void validate_version(std::string_view version);

}  // namespace safe_migrate::core
