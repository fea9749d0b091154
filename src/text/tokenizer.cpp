// tokenizer.cpp: Tokenizer (include/engram/tokenizer.h): tokenizer.json loading, added-token
// matching, the encode pipeline (added tokens -> normalizer -> pre-tokenizer -> BPE ->
// post-processor) and decode (ids -> tokens -> ByteLevel decoder -> lossy UTF-8).
#include "engram/tokenizer.h"

#include <fstream>
#include <map>
#include <sstream>
#include <unordered_map>

#include "engram/error.h"
#include "text/bpe.h"
#include "text/json_util.h"
#include "text/pipeline.h"
#include "text/unicode.h"
#include "text/utf8.h"
#include "util/json.h"
#include "util/read_file.h"
#include "util/token_ids.h"

namespace engram {

using text::Json;
using text::JsonPath;

namespace {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// A byte trie over added-token contents, for HF's leftmost-longest (Aho-Corasick) matching.
class TokenTrie {
 public:
  void insert(std::string_view s, int token_index) {
    int node = 0;
    for (const char c : s) {
      const auto key = std::make_pair(node, static_cast<unsigned char>(c));
      auto it = edges_.find(key);
      if (it == edges_.end()) {
        terminal_.push_back(-1);
        it = edges_.emplace(key, static_cast<int>(terminal_.size()) - 1).first;
      }
      node = it->second;
    }
    // The first token with this content wins, as in HF (one pattern id per content).
    if (terminal_[node] < 0) terminal_[node] = token_index;
  }
  bool empty() const { return terminal_.size() == 1; }
  // The longest token starting at text[pos]: (token index, length) or (-1, 0).
  std::pair<int, size_t> longest_at(std::string_view text, size_t pos) const {
    int node = 0;
    std::pair<int, size_t> best{-1, 0};
    for (size_t k = pos; k < text.size(); ++k) {
      const auto it = edges_.find(std::make_pair(node, static_cast<unsigned char>(text[k])));
      if (it == edges_.end()) break;
      node = it->second;
      if (terminal_[node] >= 0) best = {terminal_[node], k + 1 - pos};
    }
    return best;
  }

 private:
  std::map<std::pair<int, unsigned char>, int> edges_;
  std::vector<int> terminal_{-1};
};

// One element of a TemplateProcessing "single" template.
struct TemplatePiece {
  bool is_sequence = false;  // the input itself ("A")
  std::vector<int32_t> ids;  // a special token's ids
};

struct PostProcessor {
  bool has_template = false;
  std::vector<TemplatePiece> single;
};

void load_post_processor(const Json& j, const JsonPath& p, PostProcessor& out) {
  if (j.is_null()) return;
  const std::string& type = text::as_string(text::require_member(j, "type", p), p.at("type"));
  if (type == "ByteLevel") return;  // only adjusts offsets, which encode() does not report
  if (type == "Sequence") {
    const JsonPath sp = p.at("processors");
    const Json& list = text::require_array(text::require_member(j, "processors", p), sp);
    for (size_t i = 0; i < list.size(); ++i) load_post_processor(list[i], sp.at(i), out);
    return;
  }
  if (type != "TemplateProcessing")
    p.at("type").fail_unsupported("post-processor type \"", text::excerpt(type),
                                  "\" is not supported");
  if (out.has_template) p.fail_unsupported("more than one TemplateProcessing");
  out.has_template = true;
  // Special tokens referenced by the template: name -> ids.
  std::unordered_map<std::string, std::vector<int32_t>> specials;
  const JsonPath stp = p.at("special_tokens");
  const Json& st = text::require_object(text::require_member(j, "special_tokens", p), stp);
  for (const auto& [name, entry] : st.items()) {
    const JsonPath ep = stp.at(name);
    const JsonPath ip = ep.at("ids");
    const Json& ids = text::require_array(text::require_member(entry, "ids", ep), ip);
    std::vector<int32_t> v;
    for (size_t i = 0; i < ids.size(); ++i) v.push_back(text::as_id(ids[i], ip.at(i)));
    specials.emplace(name, std::move(v));
  }
  const JsonPath sp = p.at("single");
  const Json& single = text::require_array(text::require_member(j, "single", p), sp);
  for (size_t i = 0; i < single.size(); ++i) {
    const JsonPath ip = sp.at(i);
    const Json& piece = text::require_object(single[i], ip);
    TemplatePiece tp;
    if (const auto it = piece.find("Sequence"); it != piece.end()) {
      const std::string& seq = text::as_string(text::require_member(*it, "id", ip.at("Sequence")),
                                               ip.at("Sequence").at("id"));
      if (seq != "A")
        ip.at("Sequence")
            .at("id")
            .fail_unsupported("a single-sequence template can only use \"A\", got \"",
                              text::excerpt(seq), "\"");
      tp.is_sequence = true;
    } else if (const auto it2 = piece.find("SpecialToken"); it2 != piece.end()) {
      const JsonPath kp = ip.at("SpecialToken").at("id");
      const std::string& name =
          text::as_string(text::require_member(*it2, "id", ip.at("SpecialToken")), kp);
      const auto sit = specials.find(name);
      if (sit == specials.end())
        kp.fail_parse("special token \"", text::excerpt(name),
                      "\" is not listed in special_tokens");
      tp.ids = sit->second;
    } else {
      ip.fail_parse("expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
    out.single.push_back(std::move(tp));
  }
}

enum class DecoderKind { none, byte_level };

}  // namespace

struct Tokenizer::Impl {
  std::unique_ptr<text::BpeModel> model;
  text::Normalizer normalizer;
  text::PreTokenizer pre_tokenizer;
  PostProcessor post;
  DecoderKind decoder = DecoderKind::none;

  std::vector<AddedToken> added;                 // in file order
  std::unordered_map<int32_t, int> added_by_id;  // id -> index into added
  std::unordered_map<std::string, int32_t> added_by_content;
  std::unordered_map<std::string, bool> special_contents;
  TokenTrie raw_trie;         // tokens with normalized == false, matched in the raw text
  TokenTrie normalized_trie;  // tokens with normalized == true, matched after normalization
  int64_t vocab_size = 0;

  // HF's AddedVocabulary::find_matches over `s` with `trie`: calls emit(piece, token_id or -1).
  template <typename Emit>
  void split_added(std::string_view s, const TokenTrie& trie, Emit&& emit) const {
    if (trie.empty()) {
      emit(s, -1);
      return;
    }
    size_t start_offset = 0;
    size_t pos = 0;
    while (pos < s.size()) {
      const auto [index, len] = trie.longest_at(s, pos);
      if (index < 0) {
        ++pos;
        continue;
      }
      const AddedToken& tok = added[index];
      size_t start = pos, stop = pos + len;
      pos = stop;  // matches never overlap, even when this one is discarded below
      if (tok.single_word) {
        const bool start_space = start == 0 || !ends_with_word(s.substr(0, start));
        const bool stop_space = stop == s.size() || !starts_with_word(s.substr(stop));
        if (!start_space || !stop_space) continue;
      }
      if (tok.lstrip) start = std::max(space_leftmost_at_end(s.substr(0, start)), start_offset);
      if (tok.rstrip) stop += space_rightmost_at_start(s.substr(stop));
      if (start_offset < start) emit(s.substr(start_offset, start - start_offset), -1);
      emit(s.substr(start, stop - start), tok.id);
      start_offset = stop;
      pos = stop;
    }
    if (start_offset != s.size()) emit(s.substr(start_offset), -1);
  }

  static bool ends_with_word(std::string_view s) {
    if (s.empty()) return false;
    size_t k = s.size() - 1;
    while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
    return text::is_word_char(text::next_code_point(s, k));
  }
  static bool starts_with_word(std::string_view s) {
    if (s.empty()) return false;
    size_t k = 0;
    return text::is_word_char(text::next_code_point(s, k));
  }
  static size_t space_leftmost_at_end(std::string_view s) {
    size_t end = s.size();
    while (end > 0) {
      size_t k = end - 1;
      while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
      size_t tmp = k;
      if (!text::is_white_space(text::next_code_point(s, tmp))) break;
      end = k;
    }
    return end;
  }
  static size_t space_rightmost_at_start(std::string_view s) {
    size_t k = 0;
    while (k < s.size()) {
      size_t tmp = k;
      if (!text::is_white_space(text::next_code_point(s, tmp))) break;
      k = tmp;
    }
    return k;
  }

  void encode_words(std::string_view piece, std::vector<int32_t>& out,
                    std::vector<std::string>& words) const {
    words.clear();
    pre_tokenizer.apply(piece, words);
    for (const std::string& w : words) model->tokenize(w, out);
  }
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::string& path) {
  return from_json(read_file(path, {kMaxTokenizerBytes, "a tokenizer.json"}), path);
}

Tokenizer Tokenizer::from_json(std::string_view json_text, const std::string& origin) {
  const Json root = parse_json(json_text, origin);
  const JsonPath rp{origin, ""};
  text::require_object(root, rp);
  auto impl = std::make_unique<Impl>();

  for (const char* key : {"truncation", "padding"}) {
    const auto it = root.find(key);
    if (it != root.end() && !it->is_null())
      rp.at(key).fail_unsupported(key, " is not supported (must be null)");
  }

  // Model first: added tokens and the post-processor refer to its vocabulary.
  const JsonPath mp = rp.at("model");
  const auto mit = root.find("model");
  if (mit == root.end() || mit->is_null()) mp.fail_parse("missing (a tokenizer needs a model)");
  text::require_object(*mit, mp);
  const auto tit = mit->find("type");
  if (tit == mit->end()) mp.at("type").fail_parse("missing");
  const std::string& model_type = text::as_string(*tit, mp.at("type"));
  if (model_type != "BPE")
    mp.at("type").fail_unsupported("model type \"", text::excerpt(model_type),
                                   "\" is not supported (only BPE)");
  impl->model = text::BpeModel::from_json(*mit, mp);

  auto member_or_null = [&](const char* key) -> const Json& {
    static const Json null_json;
    const auto it = root.find(key);
    return it == root.end() ? null_json : *it;
  };
  impl->normalizer = text::Normalizer::from_json(member_or_null("normalizer"), rp.at("normalizer"));
  impl->pre_tokenizer =
      text::PreTokenizer::from_json(member_or_null("pre_tokenizer"), rp.at("pre_tokenizer"));
  load_post_processor(member_or_null("post_processor"), rp.at("post_processor"), impl->post);

  const Json& dec = member_or_null("decoder");
  if (!dec.is_null()) {
    const JsonPath dp = rp.at("decoder");
    const std::string& type = text::as_string(text::require_member(dec, "type", dp), dp.at("type"));
    if (type != "ByteLevel")
      dp.at("type").fail_unsupported("decoder type \"", text::excerpt(type),
                                     "\" is not supported (only ByteLevel)");
    impl->decoder = DecoderKind::byte_level;
  }

  int64_t max_id = static_cast<int64_t>(impl->model->id_to_token().size()) - 1;
  const Json& added = member_or_null("added_tokens");
  if (!added.is_null()) {
    const JsonPath ap = rp.at("added_tokens");
    text::require_array(added, ap);
    for (size_t i = 0; i < added.size(); ++i) {
      const JsonPath ip = ap.at(i);
      const Json& a = text::require_object(added[i], ip);
      AddedToken t;
      t.id = text::as_id(text::require_member(a, "id", ip), ip.at("id"));
      t.content = text::as_string(text::require_member(a, "content", ip), ip.at("content"));
      text::check_utf8(t.content, ip.origin + ": " + ip.at("content").path);
      if (t.content.empty()) ip.at("content").fail_parse("an added token cannot be empty");
      t.single_word = text::optional_bool(a, "single_word", ip, false);
      t.lstrip = text::optional_bool(a, "lstrip", ip, false);
      t.rstrip = text::optional_bool(a, "rstrip", ip, false);
      t.special = text::optional_bool(a, "special", ip, false);
      t.normalized = text::optional_bool(a, "normalized", ip, !t.special);
      if (impl->added_by_id.count(t.id))
        ip.at("id").fail_parse("id ", t.id, " is given to two added tokens");
      if (impl->added_by_content.count(t.content))
        ip.at("content").fail_parse("\"", text::excerpt(t.content), "\" is added twice");
      max_id = std::max<int64_t>(max_id, t.id);
      const int index = static_cast<int>(impl->added.size());
      impl->added_by_id.emplace(t.id, index);
      impl->added_by_content.emplace(t.content, t.id);
      if (t.special) impl->special_contents.emplace(t.content, true);
      impl->added.push_back(std::move(t));
    }
  }
  // HF builds its tries from special tokens first, then the others, each in file order.
  for (const bool special_pass : {true, false}) {
    for (size_t k = 0; k < impl->added.size(); ++k) {
      const AddedToken& t = impl->added[k];
      if (t.special != special_pass) continue;
      if (t.normalized) {
        impl->normalized_trie.insert(impl->normalizer.apply(t.content), static_cast<int>(k));
      } else {
        impl->raw_trie.insert(t.content, static_cast<int>(k));
      }
    }
  }
  const int64_t entries = static_cast<int64_t>(impl->model->vocab().size() + impl->added.size());
  if (max_id >= 2 * entries + 65536) {
    rp.at("added_tokens")
        .fail_parse("largest id ", max_id, " is implausibly large for ", entries, " entries");
  }
  impl->vocab_size = max_id + 1;
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view input, bool add_special_tokens) const {
  text::check_utf8(input, "encode input");
  const Impl& m = *impl_;
  std::vector<int32_t> ids;
  std::vector<std::string> words;
  // 1. Added tokens that match the raw text; 2. normalize the rest and match normalized added
  // tokens; 3. pre-tokenize and run the model on what is left.
  m.split_added(input, m.raw_trie, [&](std::string_view piece, int32_t id) {
    if (piece.empty()) return;
    if (id >= 0) {
      ids.push_back(id);
      return;
    }
    const std::string normalized =
        m.normalizer.empty() ? std::string(piece) : m.normalizer.apply(std::string(piece));
    m.split_added(normalized, m.normalized_trie, [&](std::string_view sub, int32_t sub_id) {
      if (sub.empty()) return;
      if (sub_id >= 0) {
        ids.push_back(sub_id);
      } else {
        m.encode_words(sub, ids, words);
      }
    });
  });
  if (!m.post.has_template) return ids;
  std::vector<int32_t> out;
  out.reserve(ids.size() + 4);
  for (const TemplatePiece& tp : m.post.single) {
    if (tp.is_sequence) {
      out.insert(out.end(), ids.begin(), ids.end());
    } else if (add_special_tokens) {
      out.insert(out.end(), tp.ids.begin(), tp.ids.end());
    }
  }
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& m = *impl_;
  std::vector<const std::string*> tokens;
  tokens.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (bad_token_id(id, m.vocab_size, IdUse::decode))
      fail_token_id(id, "position " + std::to_string(i), m.vocab_size, IdUse::decode);
    const std::string& tok = id_to_token(id);
    if (skip_special_tokens && m.special_contents.count(tok)) continue;
    tokens.push_back(&tok);
  }
  if (m.decoder == DecoderKind::none) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out.push_back(' ');
      out.append(*tokens[i]);
    }
    return out;
  }
  // ByteLevel: each token maps back to bytes through the GPT-2 table; a token with a character
  // outside the table keeps its own UTF-8 bytes. The joined bytes are converted lossily.
  std::string bytes;
  for (const std::string* tok : tokens) {
    const size_t mark = bytes.size();
    bool all_mapped = true;
    size_t k = 0;
    while (k < tok->size()) {
      const int b = text::char_to_byte(text::next_code_point(*tok, k));
      if (b < 0) {
        all_mapped = false;
        break;
      }
      bytes.push_back(static_cast<char>(b));
    }
    if (!all_mapped) {
      bytes.resize(mark);
      bytes.append(*tok);
    }
  }
  return text::utf8_lossy(bytes);
}

int64_t Tokenizer::vocab_size() const {
  return impl_->vocab_size;
}

const std::string& Tokenizer::id_to_token(int32_t id) const {
  const Impl& m = *impl_;
  if (const auto it = m.added_by_id.find(id); it != m.added_by_id.end())
    return m.added[it->second].content;
  const auto& table = m.model->id_to_token();
  if (id < 0 || static_cast<size_t>(id) >= table.size() || !m.model->id_present()[id]) {
    fail(Errc::out_of_range, "token id ", id, " has no vocabulary entry (vocab_size ", m.vocab_size,
         ")");
  }
  return table[id];
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  const Impl& m = *impl_;
  const std::string key(token);
  if (const auto it = m.added_by_content.find(key); it != m.added_by_content.end())
    return it->second;
  if (const auto it = m.model->vocab().find(key); it != m.model->vocab().end()) return it->second;
  return std::nullopt;
}

bool Tokenizer::is_special(int32_t id) const {
  const auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

}  // namespace engram
