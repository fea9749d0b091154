// engram/tokenize_corpus.h: a corpus (corpus.h) encoded by a tokenizer into token files
// (token_file.h): one file for a split, or train.bin + val.bin under a held-out rule.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "engram/corpus.h"
#include "engram/token_file.h"

namespace engram {

class Tokenizer;

struct TokenizeStats {
  uint64_t documents = 0;
  uint64_t bytes = 0;   // UTF-8 text bytes read
  uint64_t tokens = 0;  // ids written, separators included
  TokenFileHeader header;
};

// Encodes every document of `corpus` with `tokenizer` (no post-processor tokens) and writes
// the ids to a token file at `path`, with `separator_id` after each document. Streamed: chunks
// are read in batches of `threads` * 4 and encoded in parallel (OpenMP), written in order, so
// memory stays near 4 * threads * chunk_bytes whatever the corpus size. Errors as CorpusReader,
// TokenFileWriter; Errc::out_of_range when separator_id is not an id of the tokenizer.
TokenizeStats tokenize_corpus(const Tokenizer& tokenizer, const CorpusOptions& corpus,
                              const std::string& path, int32_t separator_id);

// ---- corpus -> train.bin + val.bin -----------------------------------------------------------
// The held-out rule, one of two, chosen by the number of corpus files and --val-fraction:
//   files     file i of the sorted list is held out when i % 10 == 9 (the Split rule of
//   engram/corpus.h).
//             Used when val_fraction is unset and the corpus has at least kFileSplitMinFiles
//             files (the Brown corpus: 450 train / 50 val texts).
//   fraction  the whole corpus is tokenized as one stream (documents in sorted file order, a
//             separator after each) and its last ceil(F * N) of N tokens are val.bin, the rest
//             train.bin (so a cut may fall inside a document). Used when val_fraction is set,
//             or, with F = kDefaultValFraction, when there are fewer files: one text file yields
//             both splits.
// Both are deterministic: the same corpus and options give the same two files.
inline constexpr size_t kFileSplitMinFiles = 10;
inline constexpr double kDefaultValFraction = 0.1;

enum class ValRule { files, fraction };

struct DatasetOptions {
  CorpusOptions corpus;                // inputs, format, chunk_bytes (its split is ignored)
  std::optional<double> val_fraction;  // set: the fraction rule with this F in (0, 1)
};

struct DatasetStats {
  ValRule rule = ValRule::files;
  double val_fraction = 0;  // the F used (fraction rule), else 0
  size_t files = 0;         // corpus files read
  uint64_t documents = 0;   // documents and UTF-8 bytes of the whole corpus
  uint64_t bytes = 0;
  TokenFileHeader train;  // the headers of <dir>/train.bin and <dir>/val.bin
  TokenFileHeader val;
};

// Tokenizes a corpus into <dir>/train.bin and <dir>/val.bin (the folder is created) with the
// held-out rule above. Errors as tokenize_corpus; Errc::invalid_argument for an F outside (0, 1)
// or a corpus of fewer than 2 tokens under the fraction rule. Streamed as tokenize_corpus; the
// fraction rule writes the whole stream to <dir>/stream.bin first and removes it after the split.
// The two files are replaced together: both are written as <dir>/*.bin.tmp and renamed only when
// both are complete, so a failure leaves an existing folder's train.bin and val.bin untouched,
// and removes the folder when this call created it.
DatasetStats tokenize_dataset(const Tokenizer& tokenizer, const DatasetOptions& options,
                              const std::string& dir, int32_t separator_id);

// One line saying which rule made a dataset, e.g. "held-out split: every 10th file (50 of 500
// files)" or "held-out split: the last 10% of the token stream (1 file)".
std::string describe_val_rule(const DatasetStats& stats);

}  // namespace engram
