/*
 * core_fuzz.cpp -- a libFuzzer target for the pure C++ core's text
 * functions, the ones every migration script and version string reaches
 * before PostgreSQL sees anything: the lexer, the section splitter, the
 * checksum normalisation, version handling and blank_out.  Built and run by
 * scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined); not part of
 * the CI run.
 *
 * Besides "no crash, no sanitizer report, no exception but ScriptError", it
 * checks the properties the rest of the code relies on:
 *   - lex_spans covers every byte, in order, with non-empty spans, under
 *     both readings of backslashes;
 *   - literal_mask has one entry per byte;
 *   - split_sections' parts are no longer than the script;
 *   - normalize_for_checksum is idempotent (a script recorded once and
 *     normalised again keeps its checksum);
 *   - blank_out keeps the text's length (positions and line numbers stay).
 */
#include "core/lexer.hpp"
#include "core/script.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace safe_migrate::core;

namespace {

void require(bool ok)
{
    if (!ok)
        std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view in(reinterpret_cast<const char*>(data), size);

    for (bool backslashes : {false, true}) {
        LexOptions options;
        options.backslash_escapes = backslashes;
        std::size_t at = 0;
        for (const Span& s : lex_spans(in, options)) {
            require(s.begin == at && s.end > s.begin && s.end <= size);
            at = s.end;
        }
        require(at == size);
    }
    require(literal_mask(in).size() == size);

    try {
        const ScriptSections sections = split_sections(in);
        require(sections.up.size() <= size && sections.down.size() <= size);
    } catch (const ScriptError&) {
    }

    const std::string once = normalize_for_checksum(in);
    require(normalize_for_checksum(once) == once);
    (void) script_checksum(in);

    try {
        (void) normalize_version(in);
    } catch (const ScriptError&) {
    }
    try {
        (void) derived_version(in);
    } catch (const ScriptError&) {
    }

    // blank_out from a token boundary the first byte picks
    if (size > 0) {
        const std::size_t from = data[0] % (size + 1);
        std::string text(in);
        for (const Span& s : lex_spans(text))
            if (s.begin >= from) {
                blank_out(text, s.begin, size);
                require(text.size() == size);
                break;
            }
    }
    return 0;
}
