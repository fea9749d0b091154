// engram/bpe_trainer.h: byte-level BPE trained on a corpus, written as a Hugging Face
// tokenizer.json that engram::Tokenizer and HF tokenizers both load and encode identically.
//
// The tokenizer it writes (and the one the trainer counts words with, built from the same JSON,
// so training and encoding can never disagree):
//   added_tokens   the special tokens (default <|bos|> 0, <|eos|> 1, <|pad|> 2; special=true,
//                  also in the model vocab). DeepSeek-V3 uses the same three slots, so an Engram
//                  config's pad id 2 carries over.
//   normalizer     null
//   pre_tokenizer  Sequence[Split(split_regex, Isolated), ByteLevel(add_prefix_space=false,
//                  use_regex=false)]; the default regex is GPT-4's (cl100k) word pattern.
//   model          BPE: ids [n_special, n_special + 256) are the 256 bytes (id n_special + b is
//                  byte b, written as GPT-2's printable stand-in), then one id per merge.
//   post_processor ByteLevel (no tokens added); decoder ByteLevel.
// Training: words are the pre-tokenizer's pieces, counted over the corpus (text between
// occurrences of special-token strings only, as encode() would split them out). Each step
// merges the adjacent pair with the highest total count; ties go to the smallest
// (left id, right id). A merge whose string already exists reuses that id (vocab grows by 0).
// Training stops when the vocab has vocab_size ids or no pair occurs min_frequency times.
// train() updates pair counts incrementally (pair -> words index, max-heap with lazy
// invalidation); train_reference() recounts every pair at every step, for tests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace engram {

// GPT-4's (cl100k) pre-tokenizer pattern, in Oniguruma syntax as tokenizer.json stores it.
inline constexpr const char* kGpt4SplitRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct BpeTrainerOptions {
  int64_t vocab_size = 8192;  // total ids: special tokens + 256 bytes + merges
  uint64_t min_frequency = 2;
  std::vector<std::string> special_tokens = {"<|bos|>", "<|eos|>", "<|pad|>"};
  std::string split_regex = kGpt4SplitRegex;
};

struct CorpusOptions;

struct CorpusStats {
  uint64_t files = 0;
  uint64_t documents = 0;
  uint64_t bytes = 0;
};

struct BpeMerge {
  int32_t left = 0;
  int32_t right = 0;
  int32_t result = 0;  // id of left's string + right's string
  uint64_t count = 0;  // how often the pair occurred when it was merged
};

struct BpeVocab {
  std::vector<std::string> tokens;  // id -> token (special tokens as is, others byte-level)
  std::vector<BpeMerge> merges;     // in rank order
  int32_t n_special = 0;
};

class BpeTrainer {
 public:
  // Checks the options (Errc::invalid_argument: vocab smaller than specials + 256, duplicate or
  // empty special tokens; Errc::parse: a regex that does not compile).
  explicit BpeTrainer(BpeTrainerOptions options);
  ~BpeTrainer();
  BpeTrainer(BpeTrainer&&) noexcept;
  BpeTrainer& operator=(BpeTrainer&&) noexcept;

  // Counts the words of one piece of text (valid UTF-8; a document or a chunk of one).
  void add_text(std::string_view text);
  // Counts every chunk of a corpus (engram/corpus.h), streamed, on all OpenMP threads. The
  // counts equal add_text() over each chunk in turn. Errors as CorpusReader.
  CorpusStats add_corpus(const CorpusOptions& corpus);

  // Errc::invalid_argument when no word was counted.
  BpeVocab train() const;
  BpeVocab train_reference() const;

  uint64_t total_words() const;
  uint64_t unique_words() const;
  const BpeTrainerOptions& options() const;

  // The pre_tokenizer member of the written tokenizer.json (JSON text).
  static std::string pre_tokenizer_json(const BpeTrainerOptions& options);
  // The complete tokenizer.json (JSON text, 2-space indented).
  static std::string tokenizer_json(const BpeVocab& vocab, const BpeTrainerOptions& options);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace engram
