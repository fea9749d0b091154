// cmd_encode.cpp: `engram encode` (text file -> ids JSON) and `engram decode` (ids JSON -> text),
// with HF tokenizers' semantics (special tokens added on encode unless --no-special; kept on
// decode unless --skip-special). The ids JSON format is text/ids_json.h.
#include <memory>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "engram/error.h"
#include "engram/tokenizer.h"
#include "text/ids_json.h"
#include "util/read_file.h"
#include "util/token_ids.h"

namespace engram::cli {
namespace {

struct EncodeOptions {
  std::string tokenizer, input, output;
  bool flag = false;  // encode: --no-special; decode: --skip-special
};

void run_encode(const EncodeOptions& o) {
  const Tokenizer tok = Tokenizer::from_file(o.tokenizer);
  const std::string text = read_file(o.input, {kMaxTextBytes, "a text to encode"});
  std::vector<int32_t> ids;
  try {
    ids = tok.encode(text, !o.flag);
  } catch (const Error& e) {
    throw Error(e.code(), o.input + ": " + e.what());
  }
  IdsBatch batch;
  batch.batch = 1;
  batch.length = static_cast<int64_t>(ids.size());
  batch.ids.assign(ids.begin(), ids.end());
  write_file_atomic(o.output, ids_json_string(batch));
}

void run_decode(const EncodeOptions& o) {
  const Tokenizer tok = Tokenizer::from_file(o.tokenizer);
  // Read with no limits, then judged by the rule every front end shares (util/token_ids.h).
  const IdsBatch batch = read_ids_json(o.input, IdsLimits{-1, /*allow_negative=*/true});
  try {
    check_token_ids(batch.ids, batch.length, tok.vocab_size(), {}, IdUse::decode);
  } catch (const Error& e) {
    fail(e.code(), o.input, ": ", e.what());
  }
  std::string text;
  for (int64_t b = 0; b < batch.batch; ++b) {
    std::vector<int32_t> row(static_cast<size_t>(batch.length));
    for (int64_t t = 0; t < batch.length; ++t)
      row[static_cast<size_t>(t)] = static_cast<int32_t>(batch.at(b, t));
    if (b) text.push_back('\n');
    text += tok.decode(row, o.flag);
  }
  write_file_atomic(o.output, text);  // a failed write leaves no partial file behind
}

}  // namespace

void add_encode_commands(CLI::App& app) {
  auto enc = std::make_shared<EncodeOptions>();
  CLI::App* e =
      app.add_subcommand("encode", "Tokenize a UTF-8 text file into {\"input_ids\": [[ids]]}");
  e->add_option("--tokenizer", enc->tokenizer, "tokenizer.json (Hugging Face format)")
      ->required()
      ->check(CLI::ExistingFile);
  e->add_option("--input", enc->input, "UTF-8 text file")->required()->check(CLI::ExistingFile);
  e->add_option("--output", enc->output, "ids JSON file to write")->required();
  e->add_flag("--no-special", enc->flag, "do not add the post-processor's special tokens");
  e->callback([enc] { run_encode(*enc); });

  auto dec = std::make_shared<EncodeOptions>();
  CLI::App* d = app.add_subcommand(
      "decode", "Turn {\"input_ids\": [[ids]]} back into text (one line per row)");
  d->add_option("--tokenizer", dec->tokenizer, "tokenizer.json (Hugging Face format)")
      ->required()
      ->check(CLI::ExistingFile);
  d->add_option("--input", dec->input, "ids JSON file")->required()->check(CLI::ExistingFile);
  d->add_option("--output", dec->output, "text file to write")->required();
  d->add_flag("--skip-special", dec->flag, "leave special tokens out of the text");
  d->callback([dec] { run_decode(*dec); });
}

}  // namespace engram::cli
