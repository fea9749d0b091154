// `engram eval`: mean cross-entropy and perplexity of a model on a token file.
//
//   engram eval --model runs/base --data data/brown [--seq 128] [--batch 8] [--max-windows 0]
// --model takes a model directory or a training folder (its `latest` checkpoint); --data a
// token file or a folder holding val.bin. Windows: TokenFile::eval_windows (targets tile the file).
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "engram/model.h"
#include "engram/token_file.h"
#include "engram/tokenizer.h"
#include "engram/trainer.h"

namespace engram::cli {

namespace {

struct EvalArgs {
  std::string model;
  std::string data;
  int64_t seq = 0;
  int64_t batch = 8;
  int64_t max_windows = 0;
  int threads = 0;
};

void run_eval(const EvalArgs& a) {
  set_compute_threads(a.threads);
  const std::string dir = resolve_model_dir(a.model);
  Model model = Model::load(dir);
  std::string path = a.data;
  if (std::filesystem::is_directory(path))
    path = (std::filesystem::path(path) / "val.bin").string();
  const TokenFile file = TokenFile::open(path);
  // Ids from another tokenizer than the model's would be scored as other text.
  const std::string tok_path = dir + "/tokenizer.json";
  if (std::filesystem::exists(tok_path)) {
    const Tokenizer tok = Tokenizer::from_file(tok_path);
    verify_checkpoint_tokenizer(dir, tok, tok_path);
    check_token_file_tokenizer(file.header(), path, tokenizer_digest(tok), tok_path);
  }
  const int64_t T = a.seq > 0 ? a.seq : model.config().max_seq_len;
  const EvalResult r = evaluate(model, file, a.batch, T, a.max_windows);
  std::printf("val_loss: %.6f\n", r.loss);
  std::printf("perplexity: %.4f\n", std::exp(r.loss));
  std::printf("windows: %lld\ntokens: %lld\n", static_cast<long long>(r.windows),
              static_cast<long long>(r.tokens));
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "held-out loss and perplexity of a model");
  auto a = std::make_shared<EvalArgs>();
  cmd->add_option("--model", a->model, "model directory or training folder")->required();
  cmd->add_option("--data", a->data, "token file, or a folder with val.bin")->required();
  cmd->add_option("--seq", a->seq, "window length T (0: the model's max_seq_len)")
      ->capture_default_str();
  cmd->add_option("--batch", a->batch, "windows per forward")->capture_default_str();
  cmd->add_option("--max-windows", a->max_windows, "evenly spaced windows to use (0: all)")
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "OpenMP / OpenBLAS threads (0: default)")
      ->capture_default_str();
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace engram::cli
