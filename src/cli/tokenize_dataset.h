// The tokenizing step shared by `engram data tokenize` and `engram train --data TEXT`: a corpus
// to <dir>/train.bin and <dir>/val.bin (engram::tokenize_dataset), reporting each split and the
// held-out rule used. Implemented in cmd_data.cpp.
#pragma once

#include <cstdio>
#include <string>

#include "engram/tokenize_corpus.h"

namespace engram::cli {

// Loads the tokenizer, looks up `separator` (Errc::invalid_argument naming the tokenizer file
// when it is not in the vocabulary) and tokenizes; one line per split and one for the rule go
// to `report`.
DatasetStats tokenize_to_folder(const std::string& tokenizer_path, const std::string& separator,
                                const DatasetOptions& options, const std::string& dir,
                                std::FILE* report);

}  // namespace engram::cli
