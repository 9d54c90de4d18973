// Fuzz target: a Hugging Face tokenizer.json, loaded as the worker loads it
// from a model directory and the router from a worker (LoadTokenizer). Any
// bytes must give a tokenizer or an error Status. A tokenizer that loads must
// encode a fixed sample to ids inside its vocabulary and decode them back to
// valid UTF-8, as the Tokenizer contract promises.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/jinja/unicode.h"
#include "common/tokenizer/loader.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

// Text that reaches the normalizer, pre-tokenizer, BPE merges, byte fallback
// and added-token matching of most tokenizers.
constexpr char kSample[] =
    "Once upon a time, there was a little girl named Lily.\n"
    "  <s> </s> <unk> <|im_start|>user\n"
    "Ünïcödé 日本語 😀 \t 12345 don't\r\n";

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) { return 0; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tessera::TokenizerFiles files;
  files.tokenizer_json.emplace(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<tessera::LoadedTokenizer> loaded =
      tessera::LoadTokenizer(files, /*byte_vocab_size=*/512);
  if (!loaded.ok()) return 0;
  const tessera::Tokenizer& tokenizer = *loaded->tokenizer;
  for (const bool special : {true, false}) {
    const absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(kSample, special);
    if (!ids.ok()) continue;  // e.g. a vocabulary that cannot spell the sample
    for (const int32_t id : *ids) {
      TESSERA_FUZZ_CHECK(id >= 0 && id < tokenizer.vocab_size());
    }
    for (const bool skip : {true, false}) {
      const absl::StatusOr<std::string> text = tokenizer.Decode(std::span(*ids), skip);
      TESSERA_FUZZ_CHECK(text.ok());
      TESSERA_FUZZ_CHECK(tessera::jinja::IsValidUtf8(*text));
    }
  }
  return 0;
}
