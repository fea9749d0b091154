// `engram data`: corpora to token files, and a look inside both.
//
//   engram data tokenize --tokenizer tok.json --brown assets/brown --output data/brown
//       -> data/brown/train.bin, data/brown/val.bin (format in engram/token_file.h), <|eos|> after
//          every document (--separator to change it); the held-out rule (every 10th file, or
//          the last --val-fraction of the token stream) is printed
//   engram data tokenize --tokenizer tok.json --input my.txt --output data/my [--val-fraction 0.1]
//   engram data text --brown assets/brown --split val [--jsonl]   detagged documents to stdout
//   engram data info data/brown/val.bin                           header, verified payload
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/tokenize_dataset.h"
#include "engram/error.h"
#include "engram/tokenize_corpus.h"
#include "engram/tokenizer.h"

namespace engram::cli {
namespace {

struct CorpusArgs {
  std::vector<std::string> inputs;
  std::string brown;
  size_t chunk_bytes = CorpusOptions{}.chunk_bytes;

  void add_to(CLI::App* cmd) {
    auto* in = cmd->add_option("--input", inputs, "UTF-8 files or folders (recursive, sorted)");
    auto* br =
        cmd->add_option("--brown", brown, "Brown corpus folder (tags stripped), e.g. assets/brown");
    in->excludes(br);
    br->excludes(in);
    cmd->add_option("--chunk-bytes", chunk_bytes, "largest piece of a document read at once")
        ->capture_default_str();
  }
  CorpusOptions options(CorpusSplit split) const {
    if (inputs.empty() && brown.empty())
      fail(Errc::invalid_argument, "give --input PATH... or --brown DIR");
    CorpusOptions o;
    o.inputs = brown.empty() ? inputs : std::vector<std::string>{brown};
    o.format = brown.empty() ? CorpusFormat::text : CorpusFormat::brown;
    o.split = split;
    o.chunk_bytes = chunk_bytes;
    return o;
  }
};

struct TokenizeArgs {
  CorpusArgs corpus;
  std::string tokenizer;
  std::string separator = "<|eos|>";
  std::string output;
  double val_fraction = kDefaultValFraction;
  CLI::Option* val_fraction_option = nullptr;  // given: the fraction rule whatever the file count
};

void run_tokenize(const TokenizeArgs& a) {
  DatasetOptions o;
  o.corpus = a.corpus.options(CorpusSplit::all);
  if (a.val_fraction_option->count() > 0) o.val_fraction = a.val_fraction;
  tokenize_to_folder(a.tokenizer, a.separator, o, a.output, stdout);
}

void run_text(const CorpusArgs& c, const std::string& split, bool jsonl) {
  CorpusReader reader(c.options(parse_corpus_split(split)));
  TextChunk chunk;
  bool open = false;  // inside a document
  while (reader.next(&chunk)) {
    if (jsonl) {
      // One JSON string per document; chunks are whole characters, so each escapes on its own.
      const std::string q = nlohmann::json(chunk.text).dump();
      if (!open) std::fputc('"', stdout);
      std::fwrite(q.data() + 1, 1, q.size() - 2, stdout);
      if (chunk.document_end) std::fputs("\"\n", stdout);
    } else {
      std::fwrite(chunk.text.data(), 1, chunk.text.size(), stdout);
      if (chunk.document_end) std::fputs("\n\n", stdout);
    }
    open = !chunk.document_end;
  }
}

void run_info(const std::string& path) {
  const TokenFile f = TokenFile::open(path, /*verify_payload=*/true);
  const TokenFileHeader& h = f.header();
  std::printf(
      "%s: version %u, %llu tokens of uint%u, vocab size %u, separator %u, checksum %016llx "
      "(verified)\n",
      path.c_str(), h.version, static_cast<unsigned long long>(h.token_count),
      h.bytes_per_token * 8, h.vocab_size, h.separator_id,
      static_cast<unsigned long long>(h.checksum));
}

}  // namespace

DatasetStats tokenize_to_folder(const std::string& tokenizer_path, const std::string& separator,
                                const DatasetOptions& options, const std::string& dir,
                                std::FILE* report) {
  const Tokenizer tok = Tokenizer::from_file(tokenizer_path);
  const auto sep = tok.token_to_id(separator);
  if (!sep)
    fail(Errc::invalid_argument, tokenizer_path, ": separator token \"", separator,
         "\" is not in the vocabulary (--separator)");
  const auto t0 = std::chrono::steady_clock::now();
  const DatasetStats s = tokenize_dataset(tok, options, dir, *sep);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(report, "corpus: %zu file%s, %llu documents, %llu bytes -> %llu tokens in %.2f s\n",
               s.files, s.files == 1 ? "" : "s", static_cast<unsigned long long>(s.documents),
               static_cast<unsigned long long>(s.bytes),
               static_cast<unsigned long long>(s.train.token_count + s.val.token_count), secs);
  const std::pair<const char*, const TokenFileHeader*> splits[] = {{"train", &s.train},
                                                                   {"val", &s.val}};
  for (const auto& [name, h] : splits) {
    const std::string path = (std::filesystem::path(dir) / (std::string(name) + ".bin")).string();
    std::fprintf(report, "%s: %llu tokens (uint%u): %s\n", name,
                 static_cast<unsigned long long>(h->token_count), h->bytes_per_token * 8,
                 path.c_str());
  }
  std::fprintf(report, "%s\n", describe_val_rule(s).c_str());
  return s;
}

void add_data_command(CLI::App& app) {
  auto* data = app.add_subcommand("data", "Corpora and token files");
  data->require_subcommand(1);

  auto targs = std::make_shared<TokenizeArgs>();
  auto* tokenize = data->add_subcommand(
      "tokenize", "Tokenize a corpus into OUTPUT/train.bin and OUTPUT/val.bin");
  targs->corpus.add_to(tokenize);
  tokenize->add_option("--tokenizer", targs->tokenizer, "tokenizer.json")->required();
  tokenize->add_option("--separator", targs->separator, "token written after each document")
      ->capture_default_str();
  tokenize->add_option("--output", targs->output, "folder for train.bin and val.bin")->required();
  targs->val_fraction_option =
      tokenize->add_option("--val-fraction", targs->val_fraction,
                           "hold out the last F of the token stream (default: every 10th file "
                           "from 10 files on, else the last 0.1)");
  tokenize->callback([targs] { run_tokenize(*targs); });

  auto xargs = std::make_shared<CorpusArgs>();
  auto split = std::make_shared<std::string>("all");
  auto jsonl = std::make_shared<bool>(false);
  auto* text = data->add_subcommand("text", "Print a corpus's documents as engram reads them");
  xargs->add_to(text);
  text->add_option("--split", *split, "all, train or val")->capture_default_str();
  text->add_flag("--jsonl", *jsonl,
                 "one JSON string per document (default: documents separated by a blank line)");
  text->callback([xargs, split, jsonl] { run_text(*xargs, *split, *jsonl); });

  auto path = std::make_shared<std::string>();
  auto* info = data->add_subcommand("info", "Check a token file and print its header");
  info->add_option("file", *path, "token file")->required();
  info->callback([path] { run_info(*path); });
}

}  // namespace engram::cli
