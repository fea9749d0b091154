// `engram tokenizer train`: byte-level BPE trained on a corpus, written as a tokenizer.json.
//
//   engram tokenizer train --brown assets/brown --vocab-size 8192 --output tok.json
//   engram tokenizer train --input a.txt docs/ --vocab-size 4096 --output tok.json
// Trains on the train split by default (--split), so the held-out files stay unseen.
#include <chrono>
#include <cstdio>

#include "cli/commands.h"
#include "engram/bpe_trainer.h"
#include "engram/corpus.h"
#include "engram/error.h"
#include "util/clock.h"
#include "util/read_file.h"

namespace engram::cli {
namespace {

struct TrainArgs {
  std::vector<std::string> inputs;
  std::string brown;
  std::string split = "train";
  int64_t vocab_size = 8192;
  uint64_t min_frequency = 2;
  std::vector<std::string> specials = BpeTrainerOptions{}.special_tokens;
  std::string regex = kGpt4SplitRegex;
  std::string output;
};

void run_train(const TrainArgs& a) {
  CorpusOptions corpus;
  corpus.inputs = a.brown.empty() ? a.inputs : std::vector<std::string>{a.brown};
  corpus.format = a.brown.empty() ? CorpusFormat::text : CorpusFormat::brown;
  corpus.split = parse_corpus_split(a.split);
  BpeTrainerOptions options;
  options.vocab_size = a.vocab_size;
  options.min_frequency = a.min_frequency;
  options.special_tokens = a.specials;
  options.split_regex = a.regex;

  const auto t0 = std::chrono::steady_clock::now();
  BpeTrainer trainer(options);
  const CorpusStats stats = trainer.add_corpus(corpus);
  const double count_s = seconds_since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  const BpeVocab vocab = trainer.train();
  const double merge_s = seconds_since(t1);

  const std::string json = BpeTrainer::tokenizer_json(vocab, options);
  write_file_atomic(a.output, json);  // a failed write leaves no partial tokenizer behind
  std::printf("corpus: %llu files (%s split), %llu documents, %llu bytes\n",
              static_cast<unsigned long long>(stats.files), a.split.c_str(),
              static_cast<unsigned long long>(stats.documents),
              static_cast<unsigned long long>(stats.bytes));
  std::printf("words: %llu (%llu distinct), counted in %.2f s\n",
              static_cast<unsigned long long>(trainer.total_words()),
              static_cast<unsigned long long>(trainer.unique_words()), count_s);
  std::printf("vocab: %zu ids (%d special, 256 bytes, %zu merges), merged in %.2f s\n",
              vocab.tokens.size(), vocab.n_special, vocab.merges.size(), merge_s);
  if (static_cast<int64_t>(vocab.tokens.size()) < a.vocab_size) {
    std::printf("note: stopped below --vocab-size %lld: no pair occurs %llu times any more\n",
                static_cast<long long>(a.vocab_size),
                static_cast<unsigned long long>(a.min_frequency));
  }
  std::printf("wrote %s\n", a.output.c_str());
}

}  // namespace

void add_tokenizer_command(CLI::App& app) {
  auto* tok = app.add_subcommand("tokenizer", "Train tokenizers");
  tok->require_subcommand(1);
  auto args = std::make_shared<TrainArgs>();
  auto* train = tok->add_subcommand(
      "train", "Train a byte-level BPE tokenizer and write it as a HF tokenizer.json");
  auto* in =
      train->add_option("--input", args->inputs, "UTF-8 files or folders (recursive, sorted)");
  auto* br = train->add_option("--brown", args->brown,
                               "Brown corpus folder (tags stripped), e.g. assets/brown");
  in->excludes(br);
  br->excludes(in);
  train->add_option("--split", args->split, "all, train or val (every 10th sorted file is val)")
      ->capture_default_str();
  train->add_option("--vocab-size", args->vocab_size, "total ids: special + 256 bytes + merges")
      ->capture_default_str();
  train
      ->add_option("--min-frequency", args->min_frequency,
                   "stop when the best pair occurs fewer times")
      ->capture_default_str();
  train->add_option("--special", args->specials, "special tokens, ids 0.. in order")
      ->capture_default_str();
  train->add_option("--regex", args->regex, "Split pre-tokenizer pattern (Oniguruma syntax)");
  train->add_option("--output", args->output, "tokenizer.json to write")->required();
  train->callback([args] {
    if (args->inputs.empty() && args->brown.empty())
      fail(Errc::invalid_argument, "give --input PATH... or --brown DIR");
    run_train(*args);
  });
}

}  // namespace engram::cli
