// tokenize_corpus.cpp: corpus -> token file, encoded in parallel batches and written in order;
// and corpus -> train.bin + val.bin under one of the two held-out rules (tokenize_corpus.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>

#include "engram/error.h"
#include "engram/tokenize_corpus.h"
#include "engram/tokenizer.h"
#include "util/remove_unless_committed.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace engram {

TokenizeStats tokenize_corpus(const Tokenizer& tokenizer, const CorpusOptions& corpus,
                              const std::string& path, int32_t separator_id) {
  const int64_t V = tokenizer.vocab_size();
  if (separator_id < 0 || separator_id >= V) {
    fail(Errc::out_of_range, "separator id ", separator_id,
         " is not an id of the tokenizer (vocab size ", V, ")");
  }
  if (V > 0xFFFFFFFFll) fail(Errc::unsupported, "vocab size ", V, " does not fit a token file");
  CorpusReader reader(corpus);
  TokenFileWriter writer(path, static_cast<uint32_t>(V), static_cast<uint32_t>(separator_id));
  writer.set_tokenizer_digest(tokenizer_digest(tokenizer));
#ifdef _OPENMP
  const int threads = omp_get_max_threads();
#else
  const int threads = 1;
#endif
  const size_t batch = static_cast<size_t>(threads) * 4;
  std::vector<TextChunk> chunks(batch);
  std::vector<std::vector<int32_t>> ids(batch);
  bool more = true;
  while (more) {
    size_t n = 0;
    while (n < batch && (more = reader.next(&chunks[n]))) ++n;
    std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < n; ++i) {
      try {
        ids[i] = tokenizer.encode(chunks[i].text, /*add_special_tokens=*/false);
      } catch (...) {
#pragma omp critical
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    for (size_t i = 0; i < n; ++i) {
      writer.append(ids[i]);
      if (chunks[i].document_end) writer.append_separator();
    }
  }
  TokenizeStats stats;
  stats.documents = reader.documents_read();
  stats.bytes = reader.bytes_read();
  stats.header = writer.finish();
  stats.tokens = stats.header.token_count;
  return stats;
}

namespace {

namespace fs = std::filesystem;

// Copies tokens [first, first + count) of `from` into a new token file at `path`.
TokenFileHeader copy_tokens(const TokenFile& from, uint64_t first, uint64_t count,
                            const std::string& path) {
  const TokenFileHeader& h = from.header();
  TokenFileWriter writer(path, h.vocab_size, h.separator_id);
  if (h.tokenizer_digest != 0) writer.set_tokenizer_digest(h.tokenizer_digest);
  std::vector<int32_t> block(size_t{1} << 20);
  for (uint64_t done = 0; done < count;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(block.size(), count - done));
    const std::span<int32_t> ids(block.data(), n);
    from.read(first + done, ids);
    writer.append(ids);
    done += n;
  }
  return writer.finish();
}

}  // namespace

DatasetStats tokenize_dataset(const Tokenizer& tokenizer, const DatasetOptions& options,
                              const std::string& dir, int32_t separator_id) {
  if (options.val_fraction && !(*options.val_fraction > 0 && *options.val_fraction < 1)) {
    fail(Errc::invalid_argument, "val fraction ", *options.val_fraction,
         " is outside (0, 1): it is the share of the token stream held out");
  }
  CorpusOptions corpus = options.corpus;
  corpus.split = CorpusSplit::all;
  DatasetStats stats;
  stats.files = list_corpus_files(corpus).size();
  stats.rule =
      options.val_fraction || stats.files < kFileSplitMinFiles ? ValRule::fraction : ValRule::files;
  // A folder this call makes goes again if it fails; the splits are written under temporary
  // names and renamed only once both are complete, so a failure leaves an existing folder's
  // train.bin and val.bin as they were, never a new one beside an old one.
  RemoveUnlessCommitted made_dir = create_folders_guarded(dir);
  const fs::path train_path = fs::path(dir) / "train.bin";
  const fs::path val_path = fs::path(dir) / "val.bin";
  const std::string train_tmp_path = (fs::path(dir) / "train.bin.tmp").string();
  const std::string val_tmp_path = (fs::path(dir) / "val.bin.tmp").string();
  std::error_code ec;
  fs::remove(train_tmp_path, ec);  // a killed run's leftovers: guards only undo what they see made
  fs::remove(val_tmp_path, ec);
  RemoveUnlessCommitted train_tmp(train_tmp_path);
  RemoveUnlessCommitted val_tmp(val_tmp_path);

  if (stats.rule == ValRule::files) {
    for (const CorpusSplit split : {CorpusSplit::train, CorpusSplit::val}) {
      corpus.split = split;
      const bool train = split == CorpusSplit::train;
      const TokenizeStats s =
          tokenize_corpus(tokenizer, corpus, train ? train_tmp_path : val_tmp_path, separator_id);
      stats.documents += s.documents;
      stats.bytes += s.bytes;
      (train ? stats.train : stats.val) = s.header;
    }
  } else {
    stats.val_fraction = options.val_fraction.value_or(kDefaultValFraction);
    const fs::path stream_path = fs::path(dir) / "stream.bin";
    fs::remove(stream_path, ec);
    const RemoveUnlessCommitted stream(stream_path);  // never committed: a scratch file
    const TokenizeStats all =
        tokenize_corpus(tokenizer, corpus, stream_path.string(), separator_id);
    stats.documents = all.documents;
    stats.bytes = all.bytes;
    const uint64_t n = all.tokens;
    if (n < 2) {
      fail(Errc::invalid_argument, "corpus ", corpus.inputs.front(), ": ", n,
           " token(s) cannot be split into a training and a held-out part");
    }
    const auto want = static_cast<uint64_t>(std::ceil(stats.val_fraction * double(n)));
    const uint64_t n_val = std::clamp<uint64_t>(want, 1, n - 1);
    const TokenFile whole = TokenFile::open(stream_path.string(), /*verify_payload=*/false);
    stats.train = copy_tokens(whole, 0, n - n_val, train_tmp_path);
    stats.val = copy_tokens(whole, n - n_val, n_val, val_tmp_path);
  }
  fs::rename(train_tmp_path, train_path, ec);
  if (ec) fail(Errc::io, train_path.string(), ": cannot rename into place: ", ec.message());
  fs::rename(val_tmp_path, val_path, ec);
  if (ec) {
    const std::string why = ec.message();
    fs::remove(train_path, ec);  // never a new train.bin beside the old val.bin
    fail(Errc::io, val_path.string(), ": cannot rename into place: ", why);
  }
  train_tmp.commit();
  val_tmp.commit();
  made_dir.commit();
  return stats;
}

std::string describe_val_rule(const DatasetStats& stats) {
  char line[160];
  if (stats.rule == ValRule::files) {
    std::snprintf(line, sizeof line,
                  "held-out split: every 10th file of the sorted list (%zu of %zu files)",
                  stats.files / 10, stats.files);
  } else {
    std::snprintf(line, sizeof line,
                  "held-out split: the last %g%% of the token stream (%zu file%s; every 10th "
                  "file is used from %zu files on, unless a fraction is given)",
                  stats.val_fraction * 100, stats.files, stats.files == 1 ? "" : "s",
                  kFileSplitMinFiles);
  }
  return line;
}

}  // namespace engram
