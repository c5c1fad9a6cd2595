#include "lexer.hpp"

#include <string>

namespace safe_migrate::core {
namespace {

bool ident_start(unsigned char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c >= 0x80; }

bool ident_cont(unsigned char c) { return ident_start(c) || (c >= '0' && c <= '9') || c == '$'; }

bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

class Lexer {
public:
    Lexer(std::string_view sql, LexOptions options) : s_(sql), opt_(options) {}

    std::vector<Span> run() {
        while (i_ < s_.size()) step();
        return std::move(spans_);
    }

private:
    std::string_view s_;
    LexOptions opt_;
    std::size_t i_ = 0;
    std::vector<Span> spans_;

    void add(SpanKind kind, std::size_t begin, std::size_t end) {
        if (begin == end) return;
        if (kind == SpanKind::Sql && !spans_.empty() && spans_.back().kind == SpanKind::Sql &&
            spans_.back().end == begin) {
            spans_.back().end = end;
            return;
        }
        spans_.push_back(Span{kind, begin, end});
    }

    char at(std::size_t k) const { return k < s_.size() ? s_[k] : '\0'; }

    // A quoted run from the opening quote at i_ (prefix bytes already
    // emitted); `q` is the quote character.  Returns the end offset.
    std::size_t quoted(char q, bool backslashes) const {
        std::size_t k = i_ + 1;
        while (k < s_.size()) {
            const char c = s_[k];
            if (backslashes && c == '\\') {
                k += 2;
                continue;
            }
            if (c == q) {
                if (at(k + 1) == q) {
                    k += 2;
                    continue;
                }
                return k + 1;
            }
            ++k;
        }
        return s_.size();
    }

    // The dollar-quote delimiter at i_ ("$tag$"), or 0 when there is none.
    std::size_t dollar_delimiter() const {
        std::size_t k = i_ + 1;
        if (k < s_.size() && ident_start(static_cast<unsigned char>(s_[k]))) {
            ++k;
            while (k < s_.size() && ident_cont(static_cast<unsigned char>(s_[k])) && s_[k] != '$') ++k;
        }
        if (at(k) != '$') return 0;
        return k + 1 - i_;
    }

    void string_at(std::size_t prefix_begin, bool backslashes) {
        const std::size_t end = quoted('\'', backslashes);
        add(SpanKind::Literal, prefix_begin, end);
        i_ = end;
    }

    void step() {
        const std::size_t begin = i_;
        const char c = s_[i_];
        const auto uc = static_cast<unsigned char>(c);

        if (c == '-' && at(i_ + 1) == '-') {
            std::size_t k = i_ + 2;
            while (k < s_.size() && s_[k] != '\n' && s_[k] != '\r') ++k;
            add(SpanKind::Comment, begin, k);
            i_ = k;
            return;
        }
        if (c == '/' && at(i_ + 1) == '*') {
            int depth = 1;
            std::size_t k = i_ + 2;
            while (k < s_.size() && depth > 0) {
                if (s_[k] == '/' && at(k + 1) == '*') {
                    ++depth;
                    k += 2;
                } else if (s_[k] == '*' && at(k + 1) == '/') {
                    --depth;
                    k += 2;
                } else {
                    ++k;
                }
            }
            add(SpanKind::Comment, begin, k);
            i_ = k;
            return;
        }
        if (c == '\'') {
            string_at(begin, opt_.backslash_escapes);
            return;
        }
        if (c == '"') {
            const std::size_t end = quoted('"', false);
            add(SpanKind::Identifier, begin, end);
            i_ = end;
            return;
        }
        if (c == '$') {
            const std::size_t len = dollar_delimiter();
            if (len == 0) {  // $1, or a lone $
                std::size_t k = i_ + 1;
                while (k < s_.size() && is_digit(static_cast<unsigned char>(s_[k]))) ++k;
                add(SpanKind::Sql, begin, k);
                i_ = k;
                return;
            }
            const std::string_view delim = s_.substr(i_, len);
            const std::size_t close = s_.find(delim, i_ + len);
            const std::size_t end = close == std::string_view::npos ? s_.size() : close + len;
            add(SpanKind::Literal, begin, end);
            i_ = end;
            return;
        }
        if (ident_start(uc) || is_digit(uc)) {
            std::size_t k = i_ + 1;
            while (k < s_.size() && ident_cont(static_cast<unsigned char>(s_[k]))) ++k;
            const std::string_view word = s_.substr(i_, k - i_);
            const bool one = word.size() == 1;
            if (one && (word[0] == 'e' || word[0] == 'E') && at(k) == '\'') {
                i_ = k;
                string_at(begin, true);
                return;
            }
            if (one && (word[0] == 'u' || word[0] == 'U') && at(k) == '&' && (at(k + 1) == '\'' || at(k + 1) == '"')) {
                i_ = k + 1;
                if (s_[i_] == '\'') {
                    string_at(begin, false);
                } else {
                    const std::size_t end = quoted('"', false);
                    add(SpanKind::Identifier, begin, end);
                    i_ = end;
                }
                return;
            }
            // B'...', X'...', N'...' and a word directly followed by a plain
            // string are handled as the string on the next step
            add(SpanKind::Sql, begin, k);
            i_ = k;
            return;
        }
        add(SpanKind::Sql, begin, i_ + 1);
        ++i_;
    }
};

}  // namespace

std::vector<Span> lex_spans(std::string_view sql, LexOptions options) { return Lexer(sql, options).run(); }

std::vector<bool> literal_mask(std::string_view sql) {
    std::vector<bool> mask(sql.size(), false);
    for (const bool backslashes : {false, true}) {
        for (const Span& span : lex_spans(sql, LexOptions{backslashes})) {
            if (span.kind != SpanKind::Literal && span.kind != SpanKind::Identifier) continue;
            for (std::size_t k = span.begin; k < span.end; ++k) mask[k] = true;
        }
    }
    return mask;
}

void blank_out(std::string& text, std::size_t begin, std::size_t end) {
    if (end > text.size()) end = text.size();
    if (begin >= end) return;
    const std::string_view part(text.data() + begin, end - begin);
    const std::vector<Span> spans = lex_spans(part);
    for (const Span& span : spans) {
        if (span.kind == SpanKind::Comment) continue;
        for (std::size_t k = begin + span.begin; k < begin + span.end; ++k) {
            if (text[k] != '\n' && text[k] != '\r') text[k] = ' ';
        }
    }
}

}  // namespace safe_migrate::core
