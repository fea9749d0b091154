// bpe.cpp: BPE model loading and the merge loop (see bpe.h).
#include "text/bpe.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <queue>

#include "text/utf8.h"

namespace engram::text {

std::unique_ptr<BpeModel> BpeModel::from_json(const Json& j, const JsonPath& p) {
  require_object(j, p);
  auto m = std::make_unique<BpeModel>();
  if (const auto it = j.find("dropout"); it != j.end() && !it->is_null()) {
    if (!it->is_number()) p.at("dropout").fail_parse("expected a number or null");
    if (it->get<double>() != 0.0)
      p.at("dropout").fail_unsupported(
          "BPE dropout is not supported (encode must be deterministic)");
  }
  bool present = false;
  m->unk_token_ = optional_string(j, "unk_token", p, &present);
  m->has_unk_ = present;
  m->continuing_subword_prefix_ = optional_string(j, "continuing_subword_prefix", p, &present);
  m->end_of_word_suffix_ = optional_string(j, "end_of_word_suffix", p, &present);
  m->fuse_unk_ = optional_bool(j, "fuse_unk", p, false);
  m->byte_fallback_ = optional_bool(j, "byte_fallback", p, false);
  m->ignore_merges_ = optional_bool(j, "ignore_merges", p, false);

  const JsonPath vp = p.at("vocab");
  const Json& vocab = require_object(require_member(j, "vocab", p), vp);
  m->vocab_.reserve(vocab.size());
  int32_t max_id = -1;
  for (const auto& [token, idj] : vocab.items()) {
    const JsonPath tp = vp.at(token);
    check_utf8(token, tp.origin + ": " + vp.path + " key");
    const int32_t id = as_id(idj, tp);
    m->vocab_.emplace(token, id);
    max_id = std::max(max_id, id);
  }
  // Ids index dense tables; refuse a vocabulary whose largest id is far beyond its size
  // (a hostile file could otherwise make us allocate gigabytes).
  if (static_cast<int64_t>(max_id) >= 2 * static_cast<int64_t>(vocab.size()) + 65536) {
    vp.fail_parse("largest id ", max_id, " is implausibly large for ", vocab.size(), " entries");
  }
  m->id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  m->id_present_.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [token, id] : m->vocab_) {
    if (m->id_present_[id])
      vp.fail_parse("id ", id, " is used by two tokens (\"", excerpt(m->id_to_token_[id]),
                    "\" and \"", excerpt(token), "\")");
    m->id_to_token_[id] = token;
    m->id_present_[id] = true;
  }
  if (m->has_unk_ && !m->vocab_.count(m->unk_token_)) {
    p.at("unk_token")
        .fail_parse("unk token \"", excerpt(m->unk_token_), "\" is not in the vocabulary");
  }

  const JsonPath mp = p.at("merges");
  const Json& merges = require_array(require_member(j, "merges", p), mp);
  m->merges_.reserve(merges.size());
  const size_t prefix_len = m->continuing_subword_prefix_.size();
  for (size_t i = 0; i < merges.size(); ++i) {
    const JsonPath ip = mp.at(i);
    std::string a, b;
    if (merges[i].is_string()) {
      const std::string& s = merges[i].get_ref<const std::string&>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
        ip.fail_parse("expected \"a b\" (two tokens separated by one space), got \"", excerpt(s),
                      "\"");
      }
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (merges[i].is_array() && merges[i].size() == 2) {
      a = as_string(merges[i][0], ip.at(0));
      b = as_string(merges[i][1], ip.at(1));
    } else {
      ip.fail_parse("expected \"a b\" or [\"a\", \"b\"], got ", merges[i].type_name());
    }
    const auto ia = m->vocab_.find(a);
    if (ia == m->vocab_.end())
      ip.fail_parse("merge names token \"", excerpt(a), "\" which is not in the vocabulary");
    const auto ib = m->vocab_.find(b);
    if (ib == m->vocab_.end())
      ip.fail_parse("merge names token \"", excerpt(b), "\" which is not in the vocabulary");
    if (b.size() < prefix_len)
      ip.fail_parse("token \"", excerpt(b), "\" is shorter than continuing_subword_prefix");
    const std::string merged = a + b.substr(prefix_len);
    const auto im = m->vocab_.find(merged);
    if (im == m->vocab_.end())
      ip.fail_parse("merged token \"", excerpt(merged), "\" is not in the vocabulary");
    // A repeated pair keeps its last rank, as HF's map collection does.
    m->merges_[pair_key(ia->second, ib->second)] = Merge{static_cast<int32_t>(i), im->second};
  }
  return m;
}

void BpeModel::initial_symbols(std::string_view w, std::vector<int32_t>& ids) const {
  ids.clear();
  std::string s;
  int32_t unk_pending = -1;
  size_t i = 0;
  while (i < w.size()) {
    const size_t start = i;
    next_code_point(w, i);
    const bool is_first = start == 0;
    const bool is_last = i == w.size();
    s.assign(w.substr(start, i - start));
    if (!is_first && !continuing_subword_prefix_.empty()) s.insert(0, continuing_subword_prefix_);
    if (is_last && !end_of_word_suffix_.empty()) s.append(end_of_word_suffix_);
    if (const auto it = vocab_.find(s); it != vocab_.end()) {
      if (unk_pending >= 0) {
        ids.push_back(unk_pending);
        unk_pending = -1;
      }
      ids.push_back(it->second);
      continue;
    }
    if (byte_fallback_) {
      std::vector<int32_t> bytes;
      bool all = true;
      for (const char c : s) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", static_cast<unsigned char>(c));
        const auto it = vocab_.find(name);
        if (it == vocab_.end()) {
          all = false;
          break;
        }
        bytes.push_back(it->second);
      }
      if (all) {
        ids.insert(ids.end(), bytes.begin(), bytes.end());
        continue;
      }
    }
    if (has_unk_) {
      const int32_t unk_id = vocab_.at(unk_token_);
      if (unk_pending >= 0 && !fuse_unk_) ids.push_back(unk_pending);
      unk_pending = unk_id;
    }
  }
  if (unk_pending >= 0) ids.push_back(unk_pending);
}

void BpeModel::merge_symbols(std::vector<int32_t>& ids) const {
  const int n = static_cast<int>(ids.size());
  if (n < 2) return;
  // Symbols form a doubly linked list over positions; a merged-away symbol gets id -1.
  std::vector<int> prev(n), next(n);
  for (int k = 0; k < n; ++k) {
    prev[k] = k - 1;
    next[k] = k + 1 < n ? k + 1 : -1;
  }
  struct Entry {
    int32_t rank;
    int pos;
    int32_t new_id;
    bool operator>(const Entry& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  for (int k = 0; k + 1 < n; ++k) {
    if (const Merge* mg = find_merge(ids[k], ids[k + 1])) heap.push({mg->rank, k, mg->new_id});
  }
  while (!heap.empty()) {
    const Entry top = heap.top();
    heap.pop();
    if (ids[top.pos] < 0) continue;
    const int right = next[top.pos];
    if (right < 0) continue;
    // Stale entry: the pair at this position changed since it was queued.
    const Merge* cur = find_merge(ids[top.pos], ids[right]);
    if (cur == nullptr || cur->new_id != top.new_id) continue;
    ids[top.pos] = top.new_id;
    ids[right] = -1;
    next[top.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = top.pos;
    if (prev[top.pos] >= 0) {
      if (const Merge* mg = find_merge(ids[prev[top.pos]], ids[top.pos]))
        heap.push({mg->rank, prev[top.pos], mg->new_id});
    }
    if (next[top.pos] >= 0) {
      if (const Merge* mg = find_merge(ids[top.pos], ids[next[top.pos]]))
        heap.push({mg->rank, top.pos, mg->new_id});
    }
  }
  size_t w = 0;
  for (int k = 0; k < n; ++k) {
    if (ids[k] >= 0) ids[w++] = ids[k];
  }
  ids.resize(w);
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (const auto it = vocab_.find(std::string(word)); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() < kCacheMaxWordBytes;
  if (cacheable) {
    std::shared_lock lock(cache_mu_);
    if (const auto it = cache_.find(std::string(word)); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  initial_symbols(word, ids);
  merge_symbols(ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::unique_lock lock(cache_mu_);
    if (cache_.size() < kCacheCapacity) cache_.emplace(std::string(word), std::move(ids));
  }
}

void BpeModel::tokenize_reference(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (const auto it = vocab_.find(std::string(word)); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  std::vector<int32_t> ids;
  initial_symbols(word, ids);
  // Merge the lowest-ranked adjacent pair (leftmost on ties) until none is left.
  for (;;) {
    int best = -1;
    const Merge* best_merge = nullptr;
    for (size_t k = 0; k + 1 < ids.size(); ++k) {
      const Merge* mg = find_merge(ids[k], ids[k + 1]);
      if (mg != nullptr && (best_merge == nullptr || mg->rank < best_merge->rank)) {
        best = static_cast<int>(k);
        best_merge = mg;
      }
    }
    if (best_merge == nullptr) break;
    ids[best] = best_merge->new_id;
    ids.erase(ids.begin() + best + 1);
  }
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace engram::text
