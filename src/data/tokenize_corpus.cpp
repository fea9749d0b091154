// tokenize_corpus.cpp: corpus -> token file, encoded in parallel batches and written in order.
#include <exception>

#include "engram/data.h"
#include "engram/error.h"
#include "engram/tokenizer.h"

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

}  // namespace engram
