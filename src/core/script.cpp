#include "script.hpp"

#include <cstddef>
#include <string>

#include "lexer.hpp"
#include "sha256.hpp"

// Script format notes
// -------------------
// Markers (`-- migrate:up`, `-- migrate:down`) and directives
// (`-- safe_migrate:allow ...`) are recognised at LINE level, exactly like
// dbmate does: a line whose first non-blank characters are `--` followed by
// the marker. No SQL lexing happens here, so a marker-looking line inside a
// dollar-quoted body, a multi-line string literal or a block comment is still
// taken as a marker. This is deliberate (it keeps the format simple,
// predictable and identical to dbmate's); statement splitting is left to
// PostgreSQL's own parser elsewhere.
//
// Line terminators are LF, CR LF and lone CR (PostgreSQL's lexer also ends a
// `--` comment at either CR or LF). Line numbers are 1-based and count a CR LF
// pair as one terminator.

namespace safe_migrate::core {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

bool is_hspace(char c) { return c == ' ' || c == '\t' || c == '\f' || c == '\v'; }

bool is_space(char c) { return is_hspace(c) || c == '\n' || c == '\r'; }

std::string_view ltrim(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size() && is_hspace(s[i])) ++i;
    return s.substr(i);
}

std::string_view rtrim(std::string_view s) {
    std::size_t n = s.size();
    while (n > 0 && is_hspace(s[n - 1])) --n;
    return s.substr(0, n);
}

std::string_view trim(std::string_view s) { return rtrim(ltrim(s)); }

// Leading and trailing ASCII whitespace, line terminators included.
std::string_view trim_space(std::string_view s) {
    std::size_t b = 0;
    std::size_t e = s.size();
    while (b < e && is_space(s[b])) ++b;
    while (e > b && is_space(s[e - 1])) --e;
    return s.substr(b, e - b);
}

// The leading run of non-whitespace characters.
std::string_view first_word(std::string_view s) {
    std::size_t n = 0;
    while (n < s.size() && !is_hspace(s[n])) ++n;
    return s.substr(0, n);
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool istarts_with(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        if (ascii_lower(s[i]) != ascii_lower(prefix[i])) return false;
    }
    return true;
}

// One physical line of the script.
struct Line {
    std::size_t begin;  // offset of the first character
    std::size_t end;    // offset one past the last content character (terminator excluded)
    std::size_t next;   // offset of the next line (after the terminator)
};

Line line_at(std::string_view s, std::size_t pos) {
    const std::size_t t = s.find_first_of("\r\n", pos);
    if (t == std::string_view::npos) return {pos, s.size(), s.size()};
    std::size_t next = t + 1;
    if (s[t] == '\r' && next < s.size() && s[next] == '\n') ++next;
    return {pos, t, next};
}

std::string line_ref(int line) { return std::to_string(line); }

enum class LineKind { Blank, Comment, Text, UpMarker, DownMarker };

bool valid_rule(std::string_view rule) {
    if (rule.empty()) return false;
    for (char c : rule) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        if (!ok) return false;
    }
    return true;
}

// `rest` is the comment text after `--` and optional blanks, starting with a
// case-insensitive `safe_migrate:` / `safe-migrate:`.
void parse_directive(std::string_view rest, int line_no, ScriptSections& sections) {
    std::vector<AllowDirective>& out = sections.allows;
    const std::string_view token = first_word(rest);
    if (token == "safe_migrate:online") {
        const std::string_view extra = trim(rest.substr(token.size()));
        if (!extra.empty()) {
            throw ScriptError("safe_migrate:online takes nothing after it (line " + line_ref(line_no) + ")");
        }
        if (!sections.online) sections.online_line = line_no;
        sections.online = true;
        return;
    }
    if (token != "safe_migrate:allow") {
        throw ScriptError("unknown directive \"-- " + std::string(token) + "\" at line " + line_ref(line_no) +
                          " (the directives are \"-- safe_migrate:allow <rule> <reason>\" and "
                          "\"-- safe_migrate:online\")");
    }
    const std::string_view after = ltrim(rest.substr(token.size()));
    const std::string_view rule = first_word(after);
    if (rule.empty()) {
        throw ScriptError("safe_migrate:allow needs a rule name and a reason (line " + line_ref(line_no) + ")");
    }
    if (!valid_rule(rule)) {
        throw ScriptError("safe_migrate:allow: invalid rule name \"" + std::string(rule) + "\" (line " +
                          line_ref(line_no) + "); rule names consist of a-z, 0-9 and -");
    }
    const std::string_view reason = trim(after.substr(rule.size()));
    if (reason.empty()) {
        throw ScriptError("safe_migrate:allow " + std::string(rule) + " needs a reason (line " + line_ref(line_no) +
                          ")");
    }
    out.push_back(AllowDirective{std::string(rule), std::string(reason), line_no});
}

LineKind classify(std::string_view line, int line_no, ScriptSections& sections) {
    const std::string_view body = ltrim(line);
    if (body.empty()) return LineKind::Blank;
    if (body.substr(0, 2) != "--") return LineKind::Text;

    const std::string_view rest = ltrim(body.substr(2));
    if (istarts_with(rest, "migrate:")) {
        // Strict on purpose: a misspelt `-- migrate:donw` would otherwise turn
        // the down SQL into part of the up migration.
        const std::string_view token = first_word(rest);
        if (token == "migrate:up") return LineKind::UpMarker;      // options after it are ignored
        if (token == "migrate:down") return LineKind::DownMarker;  // likewise
        throw ScriptError("unknown marker \"-- " + std::string(token) + "\" at line " + line_ref(line_no) +
                          " (expected \"-- migrate:up\" or \"-- migrate:down\")");
    }
    if (istarts_with(rest, "safe_migrate:") || istarts_with(rest, "safe-migrate:")) {
        parse_directive(rest, line_no, sections);
    }
    return LineKind::Comment;
}

}  // namespace

ScriptSections split_sections(std::string_view script) {
    ScriptSections result;

    std::size_t content_start = 0;
    if (script.substr(0, kBom.size()) == kBom) content_start = kBom.size();

    int up_line = 0;          // line of the up marker, 0 when none
    std::size_t up_next = 0;  // offset just after the up marker line
    int down_line = 0;
    std::size_t down_begin = 0;  // offset of the down marker line
    std::size_t down_next = 0;   // offset just after the down marker line
    int first_text_line = 0;     // first non-blank, non-comment line before any marker

    int line_no = 1;
    std::size_t pos = content_start;
    while (pos < script.size()) {
        const Line ln = line_at(script, pos);
        const LineKind kind = classify(script.substr(ln.begin, ln.end - ln.begin), line_no, result);
        switch (kind) {
            case LineKind::Text:
                if (first_text_line == 0 && up_line == 0 && down_line == 0) first_text_line = line_no;
                break;
            case LineKind::UpMarker:
                if (up_line != 0) {
                    throw ScriptError("duplicate -- migrate:up marker at line " + line_ref(line_no) +
                                      " (first one at line " + line_ref(up_line) + ")");
                }
                if (down_line != 0) {
                    throw ScriptError("-- migrate:up marker at line " + line_ref(line_no) +
                                      " comes after the -- migrate:down marker at line " + line_ref(down_line));
                }
                if (first_text_line != 0) {
                    throw ScriptError("text before -- migrate:up (line " + line_ref(first_text_line) +
                                      "); only blank lines and -- comments may precede it");
                }
                up_line = line_no;
                up_next = ln.next;
                break;
            case LineKind::DownMarker:
                if (down_line != 0) {
                    throw ScriptError("duplicate -- migrate:down marker at line " + line_ref(line_no) +
                                      " (first one at line " + line_ref(down_line) + ")");
                }
                down_line = line_no;
                down_begin = ln.begin;
                down_next = ln.next;
                break;
            case LineKind::Blank:
            case LineKind::Comment:
                break;
        }
        pos = ln.next;
        ++line_no;
    }

    const std::size_t up_begin = up_line != 0 ? up_next : content_start;
    const std::size_t up_end = down_line != 0 ? down_begin : script.size();
    result.up.assign(script.substr(up_begin, up_end - up_begin));
    result.up_first_line = up_line != 0 ? up_line + 1 : 1;
    result.dbmate_format = up_line != 0;

    if (down_line != 0) {
        result.down.assign(script.substr(down_next));
        result.down_first_line = down_line + 1;
        // an empty or comments-only down section is still a down section:
        // "nothing to undo" (dbmate); only a missing marker means "none given"
        result.has_down = true;
    }
    return result;
}

std::string normalize_for_checksum(std::string_view script) {
    // Only what cannot change the script's meaning: line terminators and
    // trailing whitespace OUTSIDE string constants, quoted identifiers and
    // dollar-quoted bodies (inside them every byte is data).
    const std::vector<bool> literal = literal_mask(script);
    std::string out;
    out.reserve(script.size());
    std::size_t keep = 0;          // length of `out` up to its last byte that is not a trailing newline
    std::size_t pending_from = 0;  // start of a run of horizontal whitespace outside literals
    std::size_t pending_len = 0;
    auto flush = [&]() {
        if (pending_len > 0) out.append(script.substr(pending_from, pending_len));
        pending_len = 0;
    };
    std::size_t i = 0;
    while (i < script.size()) {
        const char c = script[i];
        if (literal[i]) {
            flush();
            out.push_back(c);
            keep = out.size();
            ++i;
        } else if (c == '\r' || c == '\n') {
            pending_len = 0;  // trailing whitespace of the line
            out.push_back('\n');
            i += (c == '\r' && i + 1 < script.size() && script[i + 1] == '\n' && !literal[i + 1]) ? 2 : 1;
        } else if (is_hspace(c)) {
            if (pending_len == 0) pending_from = i;
            ++pending_len;
            ++i;
        } else {
            flush();
            out.push_back(c);
            keep = out.size();
            ++i;
        }
    }
    out.resize(keep);  // trailing whitespace, blank lines and final newline
    return out;
}

std::string script_checksum(std::string_view script) {
    // a byte order mark is how an editor saved the file, not part of it
    if (script.substr(0, kBom.size()) == kBom) script.remove_prefix(kBom.size());
    return sha256_hex(normalize_for_checksum(script));
}

std::string derived_version(std::string_view checksum) {
    constexpr std::size_t kLen = 16;
    if (checksum.size() < kLen) {
        throw ScriptError("checksum \"" + std::string(checksum) + "\" is too short to derive a version from (" +
                          std::to_string(checksum.size()) + " characters, need at least 16)");
    }
    const std::string_view prefix = checksum.substr(0, kLen);
    for (char c : prefix) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            throw ScriptError("checksum \"" + std::string(checksum) + "\" is not lowercase hexadecimal");
        }
    }
    return "sha256-" + std::string(prefix);
}

std::string normalize_version(std::string_view version) {
    constexpr std::size_t kMax = 200;
    const std::string_view trimmed = trim_space(version);
    if (trimmed.empty()) {
        throw ScriptError(version.empty() ? "migration version must not be empty"
                                          : "migration version must not be blank (it is only whitespace)");
    }
    if (trimmed.size() > kMax) {
        throw ScriptError("migration version is " + std::to_string(trimmed.size()) +
                          " bytes long; the maximum is 200 bytes");
    }
    for (std::size_t i = 0; i < trimmed.size(); ++i) {
        const auto c = static_cast<unsigned char>(trimmed[i]);
        if (c < 0x20 || c == 0x7F) {
            static constexpr char kHex[] = "0123456789ABCDEF";
            std::string code = "0x";
            code.push_back(kHex[c >> 4]);
            code.push_back(kHex[c & 0xF]);
            throw ScriptError("migration version contains a control character (" + code + " at byte " +
                              std::to_string(i + 1 + static_cast<std::size_t>(trimmed.data() - version.data())) +
                              ")");
        }
    }
    return std::string(trimmed);
}

}  // namespace safe_migrate::core
