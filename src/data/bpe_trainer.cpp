// bpe_trainer.cpp: byte-level BPE training and tokenizer.json output (see engram/bpe_trainer.h).
//
// Words are counted with the very pre-tokenizer that the written tokenizer.json declares (built
// by src/text from the same JSON), so the trainer cannot disagree with encode() about where a
// word starts. The merge loop is the classic one: a word is a list of ids with a count, a pair's
// count is the sum over the words holding it, and merging a pair rewrites only the words that
// hold it (pair -> words index) while a max-heap with lazy invalidation finds the next pair.
#include "engram/bpe_trainer.h"

#include <algorithm>
#include <exception>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_set>

#include "engram/corpus.h"
#include "engram/error.h"
#include "text/json_util.h"
#include "text/pipeline.h"
#include "text/utf8.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace engram {
namespace {

using OrderedJson = nlohmann::ordered_json;

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}
int32_t pair_left(uint64_t p) {
  return static_cast<int32_t>(p >> 32);
}
int32_t pair_right(uint64_t p) {
  return static_cast<int32_t>(p & 0xFFFFFFFFu);
}

OrderedJson pre_tokenizer_object(const BpeTrainerOptions& o) {
  OrderedJson split = {{"type", "Split"},
                       {"pattern", {{"Regex", o.split_regex}}},
                       {"behavior", "Isolated"},
                       {"invert", false}};
  OrderedJson byte_level = {{"type", "ByteLevel"},
                            {"add_prefix_space", false},
                            {"trim_offsets", true},
                            {"use_regex", false}};
  return {{"type", "Sequence"}, {"pretokenizers", OrderedJson::array({split, byte_level})}};
}

struct Word {
  std::vector<int32_t> ids;
  uint64_t count = 0;
};

// The vocabulary under construction: specials, then the 256 byte stand-ins, then merges.
struct VocabBuilder {
  BpeVocab v;
  std::unordered_map<std::string, int32_t> index;

  explicit VocabBuilder(const std::vector<std::string>& specials) {
    for (const std::string& s : specials) add(s);
    v.n_special = static_cast<int32_t>(specials.size());
    for (int b = 0; b < 256; ++b) {
      std::string s;
      text::append_utf8(s, text::byte_to_char(static_cast<uint8_t>(b)));
      if (index.count(s))
        fail(Errc::invalid_argument, "special token \"", s, "\" collides with a byte token");
      add(s);
    }
  }
  int32_t add(const std::string& s) {
    const auto id = static_cast<int32_t>(v.tokens.size());
    v.tokens.push_back(s);
    index.emplace(s, id);
    return id;
  }
  // The id of the merged string, reusing an existing entry (as HF's trainer does).
  int32_t merge(int32_t a, int32_t b, uint64_t count) {
    std::string s = v.tokens[a] + v.tokens[b];
    const auto it = index.find(s);
    const int32_t id = it != index.end() ? it->second : add(s);
    v.merges.push_back({a, b, id, count});
    return id;
  }
  int64_t size() const { return static_cast<int64_t>(v.tokens.size()); }
};

// Replaces every non-overlapping (a, b), left to right, by id; returns whether any was found.
bool merge_word(std::vector<int32_t>& ids, int32_t a, int32_t b, int32_t id) {
  size_t out = 0;
  bool found = false;
  for (size_t i = 0; i < ids.size();) {
    if (i + 1 < ids.size() && ids[i] == a && ids[i + 1] == b) {
      ids[out++] = id;
      i += 2;
      found = true;
    } else {
      ids[out++] = ids[i++];
    }
  }
  ids.resize(out);
  return found;
}

}  // namespace

struct BpeTrainer::Impl {
  BpeTrainerOptions options;
  text::PreTokenizer pre;
  std::unordered_map<std::string, uint64_t> counts;  // byte-level word -> occurrences
  uint64_t total = 0;
  std::vector<std::string> pieces;  // scratch

  // Words sorted by their bytes (for a deterministic layout), as id lists.
  std::vector<Word> initial_words() const {
    std::vector<const std::pair<const std::string, uint64_t>*> sorted;
    sorted.reserve(counts.size());
    for (const auto& kv : counts) sorted.push_back(&kv);
    std::sort(sorted.begin(), sorted.end(), [](auto* x, auto* y) { return x->first < y->first; });
    const auto n_special = static_cast<int32_t>(options.special_tokens.size());
    std::vector<Word> words;
    words.reserve(sorted.size());
    for (const auto* kv : sorted) {
      Word w;
      w.count = kv->second;
      const std::string& s = kv->first;
      for (size_t i = 0; i < s.size();) {
        const int byte = text::char_to_byte(text::next_code_point(s, i));
        if (byte < 0) fail(Errc::internal, "pre-tokenizer produced a non byte-level word");
        w.ids.push_back(n_special + byte);
      }
      words.push_back(std::move(w));
    }
    return words;
  }
};

BpeTrainer::BpeTrainer(BpeTrainerOptions options) : impl_(std::make_unique<Impl>()) {
  const auto n_special = static_cast<int64_t>(options.special_tokens.size());
  if (options.vocab_size < n_special + 256) {
    fail(Errc::invalid_argument, "vocab size ", options.vocab_size, " is smaller than the ",
         n_special, " special tokens plus 256 byte tokens");
  }
  if (options.vocab_size > 0x7FFFFFFF)
    fail(Errc::invalid_argument, "vocab size ", options.vocab_size, " does not fit int32");
  std::unordered_set<std::string> seen;
  for (const std::string& s : options.special_tokens) {
    if (s.empty()) fail(Errc::invalid_argument, "a special token is empty");
    text::check_utf8(s, "special token");
    if (!seen.insert(s).second)
      fail(Errc::invalid_argument, "special token \"", s, "\" is given twice");
  }
  const std::string origin = "<bpe trainer pre_tokenizer>";
  const text::Json j = text::Json::parse(pre_tokenizer_json(options));
  impl_->pre = text::PreTokenizer::from_json(j, text::JsonPath{origin, ""});
  impl_->options = std::move(options);
  VocabBuilder check(impl_->options.special_tokens);  // special / byte collisions
}

BpeTrainer::~BpeTrainer() = default;
BpeTrainer::BpeTrainer(BpeTrainer&&) noexcept = default;
BpeTrainer& BpeTrainer::operator=(BpeTrainer&&) noexcept = default;

const BpeTrainerOptions& BpeTrainer::options() const {
  return impl_->options;
}
uint64_t BpeTrainer::total_words() const {
  return impl_->total;
}
uint64_t BpeTrainer::unique_words() const {
  return impl_->counts.size();
}

namespace {

// Counts the pre-tokenizer's words of text into counts; returns how many words there were.
// Only text between special-token strings is counted (leftmost, then longest match first),
// as encode() would cut them out.
uint64_t count_words(const text::PreTokenizer& pre, const std::vector<std::string>& specials,
                     std::string_view text, std::unordered_map<std::string, uint64_t>& counts,
                     std::vector<std::string>& pieces) {
  uint64_t total = 0;
  std::vector<size_t> next(specials.size());  // next occurrence of each special at or after pos
  for (size_t k = 0; k < specials.size(); ++k) next[k] = text.find(specials[k]);
  size_t pos = 0;
  for (;;) {
    size_t best = std::string_view::npos, best_len = 0;
    for (size_t k = 0; k < specials.size(); ++k) {
      if (next[k] != std::string_view::npos && next[k] < pos) next[k] = text.find(specials[k], pos);
      if (next[k] < best ||
          (next[k] == best && next[k] != std::string_view::npos && specials[k].size() > best_len)) {
        best = next[k];
        best_len = specials[k].size();
      }
    }
    const size_t end = best == std::string_view::npos ? text.size() : best;
    if (end > pos) {
      pieces.clear();
      pre.apply(text.substr(pos, end - pos), pieces);
      for (std::string& w : pieces) ++counts[std::move(w)];
      total += pieces.size();
    }
    if (best == std::string_view::npos) return total;
    pos = best + best_len;
  }
}

}  // namespace

void BpeTrainer::add_text(std::string_view text) {
  Impl& m = *impl_;
  m.total += count_words(m.pre, m.options.special_tokens, text, m.counts, m.pieces);
}

CorpusStats BpeTrainer::add_corpus(const CorpusOptions& corpus) {
  Impl& m = *impl_;
  CorpusReader reader(corpus);
#ifdef _OPENMP
  const int threads = omp_get_max_threads();
#else
  const int threads = 1;
#endif
  // Batches of chunks: each thread counts into its own map, then the maps are summed (sums
  // do not depend on the order, so the result is the same for any thread count).
  std::vector<TextChunk> chunks(static_cast<size_t>(threads) * 4);
  bool more = true;
  while (more) {
    size_t n = 0;
    while (n < chunks.size() && (more = reader.next(&chunks[n]))) ++n;
    if (n == 0) break;
    std::exception_ptr error;
#pragma omp parallel num_threads(threads)
    {
      std::unordered_map<std::string, uint64_t> local;
      std::vector<std::string> pieces;
      uint64_t words = 0;
#pragma omp for schedule(dynamic, 1)
      for (size_t i = 0; i < n; ++i) {
        try {
          words += count_words(m.pre, m.options.special_tokens, chunks[i].text, local, pieces);
        } catch (...) {
#pragma omp critical(bpe_error)
          if (!error) error = std::current_exception();
        }
      }
#pragma omp critical(bpe_merge)
      {
        m.total += words;
        if (m.counts.empty()) {
          m.counts.swap(local);
        } else {
          for (auto& [w, c] : local) m.counts[w] += c;
        }
      }
    }
    if (error) std::rethrow_exception(error);
  }
  return {reader.files().size(), reader.documents_read(), reader.bytes_read()};
}

BpeVocab BpeTrainer::train() const {
  const Impl& m = *impl_;
  if (m.counts.empty()) fail(Errc::invalid_argument, "BPE training: the corpus has no words");
  VocabBuilder vb(m.options.special_tokens);
  std::vector<Word> words = m.initial_words();

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<uint32_t>>
      pair_words;  // may hold stale / repeated words
  for (uint32_t w = 0; w < words.size(); ++w) {
    const Word& word = words[w];
    for (size_t i = 0; i + 1 < word.ids.size(); ++i) {
      const uint64_t p = pair_key(word.ids[i], word.ids[i + 1]);
      pair_count[p] += static_cast<int64_t>(word.count);
      auto& list = pair_words[p];
      if (list.empty() || list.back() != w) list.push_back(w);
    }
  }

  // Max-heap on count, then the smallest pair first.
  struct Entry {
    int64_t count;
    uint64_t pair;
  };
  auto lower = [](const Entry& x, const Entry& y) {
    return x.count != y.count ? x.count < y.count : x.pair > y.pair;
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(lower)> heap(lower);
  for (const auto& [p, c] : pair_count) heap.push({c, p});

  const auto min_count = static_cast<int64_t>(std::max<uint64_t>(m.options.min_frequency, 1));
  std::vector<uint32_t> stamp(words.size(), UINT32_MAX);
  std::vector<uint64_t> touched;
  std::vector<int32_t> old_ids;
  while (vb.size() < m.options.vocab_size && !heap.empty()) {
    const Entry top = heap.top();
    heap.pop();
    const auto it = pair_count.find(top.pair);
    const int64_t current = it == pair_count.end() ? 0 : it->second;
    if (current != top.count) {  // stale: re-queue with the true count
      if (current > 0) heap.push({current, top.pair});
      continue;
    }
    if (current < min_count) break;

    const int32_t a = pair_left(top.pair), b = pair_right(top.pair);
    const auto merge_index = static_cast<uint32_t>(vb.v.merges.size());
    const int32_t id = vb.merge(a, b, static_cast<uint64_t>(current));
    std::vector<uint32_t> holders = std::move(pair_words[top.pair]);
    pair_words.erase(top.pair);
    touched.clear();
    for (const uint32_t w : holders) {
      if (stamp[w] == merge_index) continue;
      stamp[w] = merge_index;
      Word& word = words[w];
      old_ids = word.ids;
      if (!merge_word(word.ids, a, b, id)) continue;
      const auto c = static_cast<int64_t>(word.count);
      for (size_t i = 0; i + 1 < old_ids.size(); ++i)
        pair_count[pair_key(old_ids[i], old_ids[i + 1])] -= c;
      for (size_t i = 0; i + 1 < word.ids.size(); ++i) {
        const int32_t l = word.ids[i], r = word.ids[i + 1];
        const uint64_t p = pair_key(l, r);
        pair_count[p] += c;
        if (l == id || r == id) {  // only pairs with the new id can have grown
          auto& list = pair_words[p];
          if (list.empty() || list.back() != w) list.push_back(w);
          touched.push_back(p);
        }
      }
    }
    pair_count.erase(top.pair);
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (const uint64_t p : touched) heap.push({pair_count[p], p});
  }
  return std::move(vb.v);
}

BpeVocab BpeTrainer::train_reference() const {
  const Impl& m = *impl_;
  if (m.counts.empty()) fail(Errc::invalid_argument, "BPE training: the corpus has no words");
  VocabBuilder vb(m.options.special_tokens);
  std::vector<Word> words = m.initial_words();
  const auto min_count = std::max<uint64_t>(m.options.min_frequency, 1);
  while (vb.size() < m.options.vocab_size) {
    std::unordered_map<uint64_t, uint64_t> counts;
    for (const Word& w : words) {
      for (size_t i = 0; i + 1 < w.ids.size(); ++i)
        counts[pair_key(w.ids[i], w.ids[i + 1])] += w.count;
    }
    uint64_t best = 0, best_count = 0;
    for (const auto& [p, c] : counts) {
      if (c > best_count || (c == best_count && p < best)) {
        best = p;
        best_count = c;
      }
    }
    if (best_count < min_count) break;
    const int32_t a = pair_left(best), b = pair_right(best);
    const int32_t id = vb.merge(a, b, best_count);
    for (Word& w : words) merge_word(w.ids, a, b, id);
  }
  return std::move(vb.v);
}

std::string BpeTrainer::pre_tokenizer_json(const BpeTrainerOptions& options) {
  return pre_tokenizer_object(options).dump();
}

std::string BpeTrainer::tokenizer_json(const BpeVocab& vocab, const BpeTrainerOptions& options) {
  OrderedJson added = OrderedJson::array();
  for (int32_t i = 0; i < vocab.n_special; ++i) {
    added.push_back({{"id", i},
                     {"content", vocab.tokens[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  OrderedJson vocab_obj = OrderedJson::object();
  for (size_t i = 0; i < vocab.tokens.size(); ++i)
    vocab_obj[vocab.tokens[i]] = static_cast<int32_t>(i);
  OrderedJson merges = OrderedJson::array();
  for (const BpeMerge& mg : vocab.merges)
    merges.push_back(OrderedJson::array({vocab.tokens[mg.left], vocab.tokens[mg.right]}));
  OrderedJson model = {{"type", "BPE"},
                       {"dropout", nullptr},
                       {"unk_token", nullptr},
                       {"continuing_subword_prefix", nullptr},
                       {"end_of_word_suffix", nullptr},
                       {"fuse_unk", false},
                       {"byte_fallback", false},
                       {"ignore_merges", false},
                       {"vocab", std::move(vocab_obj)},
                       {"merges", std::move(merges)}};
  OrderedJson byte_level = {{"type", "ByteLevel"},
                            {"add_prefix_space", false},
                            {"trim_offsets", false},
                            {"use_regex", false}};
  OrderedJson root = {{"version", "1.0"},
                      {"truncation", nullptr},
                      {"padding", nullptr},
                      {"added_tokens", std::move(added)},
                      {"normalizer", nullptr},
                      {"pre_tokenizer", pre_tokenizer_object(options)},
                      {"post_processor", byte_level},
                      {"decoder", byte_level},
                      {"model", std::move(model)}};
  return root.dump(2) + "\n";
}

}  // namespace engram
