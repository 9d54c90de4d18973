#define PCRE2_CODE_UNIT_WIDTH 8
#include "common/tokenizer/regex.h"

#include <pcre2.h>

#include "absl/strings/str_cat.h"
#include "common/tokenizer/unicode.h"

namespace tessera::hf {
namespace {

// Oniguruma's \s: U+0009-000D, U+0085 and Zs/Zl/Zp (PCRE2's adds U+180E).
constexpr absl::string_view kSpaceClass =
    "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}";
// Oniguruma's \w: letters, marks, numbers and connector punctuation (PCRE2's
// has no marks and only "_" of Pc).
constexpr absl::string_view kWordClass = "\\p{L}\\p{M}\\p{N}\\p{Pc}";
// Oniguruma's \h: a hexadecimal digit (PCRE2's is horizontal space).
constexpr absl::string_view kHexClass = "0-9a-fA-F";

// Per-thread PCRE2 scratch: match data for the whole-match offsets and a JIT
// stack large enough for long runs of backtracking (e.g. `\s+(?!\S)`).
struct ThreadScratch {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  ThreadScratch() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~ThreadScratch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

ThreadScratch& Scratch() {
  thread_local ThreadScratch scratch;
  return scratch;
}

}  // namespace

struct Pattern::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

std::string OnigurumaToPcre2(absl::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 16);
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[i + 1];
      ++i;
      absl::string_view cls = e == 's' || e == 'S'   ? kSpaceClass
                              : e == 'w' || e == 'W' ? kWordClass
                              : e == 'h' || e == 'H' ? kHexClass
                                                     : absl::string_view();
      const bool negated = e == 'S' || e == 'W' || e == 'H';
      if (cls.empty() || (negated && in_class)) {
        // Everything else, and a negated class inside a class, is PCRE2's.
        out.push_back('\\');
        out.push_back(e);
      } else if (in_class) {
        absl::StrAppend(&out, cls);
      } else {
        absl::StrAppend(&out, negated ? "[^" : "[", cls, "]");
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out.push_back(c);
      // A ']' (or '^]') right after the opening bracket is a literal.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out.push_back(pattern[++i]);
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out.push_back(pattern[++i]);
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out.push_back(c);
  }
  return out;
}

std::unique_ptr<Pattern> Pattern::Literal(std::string literal) {
  std::unique_ptr<Pattern> p(new Pattern());
  p->literal_ = std::move(literal);
  return p;
}

absl::StatusOr<std::unique_ptr<Pattern>> Pattern::Regex(absl::string_view regex,
                                                        absl::string_view path) {
  const std::string translated = OnigurumaToPcre2(regex);
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                    PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    return absl::InvalidArgumentError(absl::StrCat(path, ": regex \"", regex,
                                                   "\" does not compile (PCRE2, at offset ", offset,
                                                   "): ", reinterpret_cast<const char*>(message)));
  }
  // Without JIT (an unsupported CPU) PCRE2 interprets the same pattern.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  std::unique_ptr<Pattern> p(new Pattern());
  p->regex_ = new Compiled{code};
  return p;
}

Pattern::~Pattern() { delete regex_; }

absl::Status Pattern::FindAll(absl::string_view text, std::vector<Span>* out) const {
  if (regex_ == nullptr) {
    if (literal_.empty()) return absl::OkStatus();
    for (size_t pos = text.find(literal_); pos != absl::string_view::npos;
         pos = text.find(literal_, pos + literal_.size())) {
      out->emplace_back(pos, pos + literal_.size());
    }
    return absl::OkStatus();
  }
  ThreadScratch& scratch = Scratch();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  size_t last_end = absl::string_view::npos;
  while (start <= text.size()) {
    const int rc = pcre2_match(regex_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK,
                               scratch.data, scratch.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      return absl::ResourceExhaustedError(absl::StrCat("regex match failed at byte ", start, ": ",
                                                       reinterpret_cast<const char*>(message)));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(scratch.data);
    const size_t b = ov[0];
    const size_t e = ov[1];
    if (b == e) {
      if (b != last_end) out->emplace_back(b, e);
      if (b >= text.size()) break;
      start = b + Utf8Length(static_cast<unsigned char>(text[b]));
    } else {
      out->emplace_back(b, e);
      start = e;
    }
    last_end = e;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Pattern::ReplaceAll(absl::string_view text,
                                                absl::string_view content) const {
  std::vector<Span> matches;
  if (absl::Status s = FindAll(text, &matches); !s.ok()) return s;
  std::string out;
  out.reserve(text.size());
  size_t prev = 0;
  for (const Span& m : matches) {
    out.append(text.data() + prev, m.first - prev);
    out.append(content.data(), content.size());
    prev = m.second;
  }
  out.append(text.data() + prev, text.size() - prev);
  return out;
}

}  // namespace tessera::hf
