// Tests of the training loop (engram/trainer.h) on a tiny model and corpus: resume reproduces an
// uninterrupted run bit for bit (dense and Engram table state), a half-written checkpoint never
// replaces the last good one, nor does a full disk while checkpointing, a corrupt or contradicting checkpoint is refused with a clear
// error, and evaluate() equals a window-by-window reference.
#include "engram/trainer.h"

#include <gtest/gtest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "engram/bpe_trainer.h"
#include "engram/error.h"
#include "engram/tokenizer.h"
#include "test_helpers.h"

namespace engram {
namespace {

namespace fs = std::filesystem;
using testing::error_of;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void spit(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
}

// A synthetic corpus of short sentences over a small word list, a 300-id BPE tokenizer trained
// on it, and train.bin / val.bin.
class TrainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    set_compute_threads(1);  // tiny tensors; also keeps the bit-for-bit comparisons on one path
    root_ = new fs::path(fs::temp_directory_path() /
                         ("engram_trainer_test_" + std::to_string(::getpid())));
    fs::remove_all(*root_);
    fs::create_directories(*root_ / "data");
    const char* words[] = {"the", "cat", "sat", "on",    "a",  "mat", "and",  "dog",  "ran",
                           "to",  "big", "red", "house", "we", "saw", "bird", "over", "tree"};
    std::mt19937_64 rng(7);
    std::vector<std::string> docs;
    for (int d = 0; d < 12; d++) {
      std::string doc;
      for (int s = 0; s < 30; s++) {
        for (int w = 0; w < 8; w++) doc += std::string(w ? " " : "") + words[rng() % 18];
        doc += ".\n";
      }
      docs.push_back(doc);
    }
    BpeTrainerOptions bo;
    bo.vocab_size = 300;
    BpeTrainer bpe(bo);
    for (const auto& d : docs) bpe.add_text(d);
    spit(*root_ / "tok.json", BpeTrainer::tokenizer_json(bpe.train(), bo));
    const Tokenizer tok = Tokenizer::from_file((*root_ / "tok.json").string());
    for (const char* split : {"train", "val"}) {
      TokenFileWriter w((*root_ / "data" / (std::string(split) + ".bin")).string(),
                        uint32_t(tok.vocab_size()), 1);
      const size_t begin = split[0] == 't' ? 0 : 10, end = split[0] == 't' ? 10 : 12;
      for (size_t i = begin; i < end; i++) {
        w.append(tok.encode(docs[i], false));
        w.append_separator();
      }
      w.finish();
    }
    spit(*root_ / "cfg.json", R"({"vocab_size": 300, "hidden_size": 32, "n_layers": 2,
      "n_heads": 2, "ffn_hidden": 48, "max_seq_len": 32,
      "engram": {"layer_ids": [1], "engram_vocab_size": [61, 67], "max_ngram_size": 3,
                 "n_embed_per_ngram": 16, "n_head_per_ngram": 2, "pad_id": 2, "seed": 0,
                 "kernel_size": 4}})");
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }

  TrainOptions options(const std::string& out) const {
    TrainOptions o;
    o.config_path = (*root_ / "cfg.json").string();
    o.tokenizer_path = (*root_ / "tok.json").string();
    o.data_dir = (*root_ / "data").string();
    o.out_dir = (*root_ / out).string();
    o.steps = 12;
    o.batch = 3;
    o.seq = 16;
    o.lr = 3e-3f;
    o.warmup = 2;
    o.eval_every = 4;
    o.eval_windows = 8;
    o.seed = 5;
    return o;
  }

  static fs::path* root_;
};

fs::path* TrainerTest::root_ = nullptr;

TEST_F(TrainerTest, TrainsAndWritesALoadableCheckpoint) {
  const TrainOptions o = options("plain");
  const TrainResult r = train(o, nullptr);
  ASSERT_EQ(r.losses.size(), 12u);
  EXPECT_LT(r.losses.back(), r.losses.front() - 0.5f);
  EXPECT_EQ(r.step, 12);
  EXPECT_EQ(fs::path(r.checkpoint).filename(), "checkpoint-00000012");
  EXPECT_EQ(resolve_model_dir(o.out_dir), r.checkpoint);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json",
                        "optimizer.safetensors", "trainer_state.json"})
    EXPECT_TRUE(fs::exists(fs::path(r.checkpoint) / f)) << f;
  // Only the newest checkpoint is kept; metrics.csv has a header and one row per step.
  int checkpoints = 0;
  for (const auto& e : fs::directory_iterator(o.out_dir))
    checkpoints += e.path().filename().string().rfind("checkpoint-", 0) == 0;
  EXPECT_EQ(checkpoints, 1);
  std::istringstream csv(slurp(fs::path(o.out_dir) / "metrics.csv"));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "step,lr,train_loss,val_loss,tokens,elapsed_s");
  int rows = 0, with_val = 0;
  while (std::getline(csv, line)) {
    rows++;
    with_val += line.find(",,") == std::string::npos;
  }
  EXPECT_EQ(rows, 12);
  EXPECT_EQ(with_val, 3);  // steps 4, 8, 12

  // The saved model evaluates to the loss the run reported at its last step.
  Model m = Model::load(r.checkpoint);
  const TokenFile val = TokenFile::open(o.data_dir + "/val.bin");
  EXPECT_EQ(float(evaluate(m, val, o.batch, o.seq, o.eval_windows).loss), r.val_loss);
}

TEST_F(TrainerTest, ResumeReproducesAnUninterruptedRunBitForBit) {
  const TrainResult straight = train(options("straight"), nullptr);
  TrainOptions first = options("resumed");
  first.stop_after = 5;  // not a multiple of eval_every: the stop itself checkpoints
  const TrainResult a = train(first, nullptr);
  ASSERT_EQ(a.step, 5);
  TrainOptions second = options("resumed");
  second.resume = true;
  second.config_path.clear();  // the checkpoint's config is used
  const TrainResult b = train(second, nullptr);
  EXPECT_EQ(b.first_step, 5);
  std::vector<float> joined = a.losses;
  joined.insert(joined.end(), b.losses.begin(), b.losses.end());
  ASSERT_EQ(joined.size(), straight.losses.size());
  for (size_t i = 0; i < joined.size(); i++)
    EXPECT_EQ(std::memcmp(&joined[i], &straight.losses[i], sizeof(float)), 0) << "step " << i + 1;
  EXPECT_EQ(slurp(fs::path(b.checkpoint) / "model.safetensors"),
            slurp(fs::path(straight.checkpoint) / "model.safetensors"));
  EXPECT_EQ(slurp(fs::path(b.checkpoint) / "optimizer.safetensors"),
            slurp(fs::path(straight.checkpoint) / "optimizer.safetensors"));
  EXPECT_EQ(b.val_loss, straight.val_loss);
}

TEST_F(TrainerTest, HalfWrittenCheckpointLeavesTheLastGoodOne) {
  TrainOptions o = options("killed");
  o.stop_after = 6;
  ASSERT_EQ(train(o, nullptr).step, 6);
  // What a kill during the next checkpoint leaves: a partial folder with a corrupt optimizer
  // file, and a torn latest.tmp. Neither is named by `latest`.
  const fs::path out(o.out_dir);
  fs::create_directories(out / "checkpoint-00000009.tmp");
  spit(out / "checkpoint-00000009.tmp" / "optimizer.safetensors", "\x10\0\0\0garbage");
  spit(out / "latest.tmp", "checkpoint-000");
  EXPECT_EQ(fs::path(resolve_model_dir(o.out_dir)).filename(), "checkpoint-00000006");
  TrainOptions again = options("killed");
  again.resume = true;
  const TrainResult r = train(again, nullptr);
  EXPECT_EQ(r.first_step, 6);
  EXPECT_EQ(r.step, 12);
  EXPECT_FALSE(fs::exists(out / "checkpoint-00000009.tmp"));  // swept by the next checkpoint
  const TrainResult straight = train(options("killed_ref"), nullptr);
  EXPECT_EQ(slurp(fs::path(r.checkpoint) / "model.safetensors"),
            slurp(fs::path(straight.checkpoint) / "model.safetensors"));
}

// A full disk while checkpointing: RLIMIT_FSIZE makes write() fail past 16 KiB (EFBIG, as ENOSPC
// would), so the next checkpoint's model.safetensors cannot be written. The run stops with
// Errc::io naming the file, `latest` still names the last good checkpoint, and a resume from it
// (with room again) reaches the uninterrupted run's weights.
TEST_F(TrainerTest, FullDiskWhileCheckpointingKeepsTheLastGoodOne) {
  TrainOptions o = options("full");
  o.stop_after = 4;
  const TrainResult first = train(o, nullptr);
  const std::string good = slurp(fs::path(first.checkpoint) / "model.safetensors");

  TrainOptions again = options("full");
  again.resume = true;
  struct rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  struct rlimit lim = old;
  lim.rlim_cur = 16 * 1024;
  const auto prev = signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  Errc code = Errc::invalid_argument;
  const std::string what = error_of([&] { train(again, nullptr); }, &code);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, prev);
  ASSERT_NE(what, "<no error>") << "a checkpoint past the size limit was reported written";
  EXPECT_EQ(code, Errc::io);
  EXPECT_NE(what.find("safetensors"), std::string::npos) << what;
  EXPECT_EQ(resolve_model_dir(o.out_dir), first.checkpoint);
  EXPECT_EQ(slurp(fs::path(first.checkpoint) / "model.safetensors"), good);

  const TrainResult resumed = train(again, nullptr);
  EXPECT_EQ(resumed.first_step, 4);
  const TrainResult straight = train(options("full_ref"), nullptr);
  EXPECT_EQ(slurp(fs::path(resumed.checkpoint) / "model.safetensors"),
            slurp(fs::path(straight.checkpoint) / "model.safetensors"));
}

// engram.compress_tokens: the trainer builds the lookup from --tokenizer, the checkpoint keeps
// it, and resuming with a tokenizer that compresses differently is refused.
TEST_F(TrainerTest, CompressedTokensComeFromTheTokenizerAndMustMatchOnResume) {
  std::string cfg = slurp(*root_ / "cfg.json");
  cfg.replace(cfg.find("\"engram\": {"), 11, "\"engram\": {\"compress_tokens\": true, ");
  spit(*root_ / "cfg_compress.json", cfg);
  TrainOptions o = options("compress");
  o.config_path = (*root_ / "cfg_compress.json").string();
  o.stop_after = 4;
  const TrainResult r = train(o, nullptr);
  const Model m = Model::load(r.checkpoint);
  const Tokenizer tok = Tokenizer::from_file(o.tokenizer_path);
  EXPECT_TRUE(m.config().engram.compress_tokens);
  EXPECT_EQ(m.config().engram.compress_lookup, tokenizer_compress_lookup(tok, 300));
  std::set<int64_t> distinct(m.config().engram.compress_lookup.begin(),
                             m.config().engram.compress_lookup.end());
  EXPECT_LT(distinct.size(), 300u);  // the tokenizer has case / spacing variants to merge

  // Resuming with another tokenizer (fewer ids, so it fits the model, but other merges) is
  // refused before anything is written.
  BpeTrainerOptions bo;
  bo.vocab_size = 270;
  BpeTrainer bpe(bo);
  bpe.add_text("The cat sat on the mat. THE DOG ran over the tree and a big red house.\n");
  TrainOptions again = o;
  again.resume = true;
  again.stop_after = 0;
  again.tokenizer_path = (*root_ / "tok_other.json").string();
  spit(again.tokenizer_path, BpeTrainer::tokenizer_json(bpe.train(), bo));
  try {
    train(again, nullptr);
    ADD_FAILURE() << "resumed with a tokenizer that compresses differently";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::mismatch);
    EXPECT_NE(std::string(e.what()).find("compresses differently"), std::string::npos) << e.what();
  }
  EXPECT_EQ(resolve_model_dir(o.out_dir), r.checkpoint);
}

TEST_F(TrainerTest, CorruptCheckpointIsRefusedAndKept) {
  TrainOptions o = options("corrupt");
  o.stop_after = 4;
  const TrainResult r = train(o, nullptr);
  const fs::path opt_file = fs::path(r.checkpoint) / "optimizer.safetensors";
  std::string bytes = slurp(opt_file);
  bytes[bytes.size() - 3] ^= 0x40;  // one flipped bit in the moments
  spit(opt_file, bytes);
  TrainOptions again = options("corrupt");
  again.resume = true;
  try {
    train(again, nullptr);
    FAIL() << "a corrupt optimizer file was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::parse);
    EXPECT_NE(std::string(e.what()).find("optimizer.safetensors"), std::string::npos) << e.what();
  }
  EXPECT_EQ(slurp(opt_file), bytes);  // untouched
  EXPECT_EQ(resolve_model_dir(o.out_dir), r.checkpoint);
}

TEST_F(TrainerTest, BadInputsFailBeforeTouchingTheOutput) {
  TrainOptions o = options("bad_seq");
  o.seq = 33;  // max_seq_len is 32
  try {
    train(o, nullptr);
    FAIL() << "--seq beyond max_seq_len was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("max_seq_len"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(o.out_dir));

  TrainOptions base = options("bad_resume");
  base.stop_after = 2;
  const std::string ckpt = train(base, nullptr).checkpoint;
  const std::string before = slurp(fs::path(ckpt) / "model.safetensors");

  TrainOptions other_lr = options("bad_resume");
  other_lr.resume = true;
  other_lr.lr = 1e-3f;
  EXPECT_THROW(train(other_lr, nullptr), Error);

  spit(*root_ / "cfg_wide.json", R"({"vocab_size": 300, "hidden_size": 64, "n_layers": 2,
      "n_heads": 2, "ffn_hidden": 48, "max_seq_len": 32})");
  TrainOptions other_cfg = options("bad_resume");
  other_cfg.resume = true;
  other_cfg.config_path = (*root_ / "cfg_wide.json").string();
  try {
    train(other_cfg, nullptr);
    FAIL() << "a contradicting config was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::mismatch);
  }
  // A config.json that contradicts the weights: the model refuses to load.
  fs::copy_file(*root_ / "cfg_wide.json", fs::path(ckpt) / "config.json",
                fs::copy_options::overwrite_existing);
  TrainOptions again = options("bad_resume");
  again.resume = true;
  again.config_path.clear();
  EXPECT_THROW(train(again, nullptr), Error);
  EXPECT_EQ(slurp(fs::path(ckpt) / "model.safetensors"), before);

  TrainOptions no_ckpt = options("never_trained");
  no_ckpt.resume = true;
  EXPECT_THROW(train(no_ckpt, nullptr), Error);
}

TEST_F(TrainerTest, EvaluateMatchesWindowByWindowReference) {
  Model m(ModelConfig::from_json(slurp(*root_ / "cfg.json")), 3);
  const TokenFile val = TokenFile::open((*root_ / "data" / "val.bin").string());
  const int64_t T = 16;
  const uint64_t count = val.eval_window_count(T);
  ASSERT_GT(count, 10u);
  double sum = 0;
  std::vector<int32_t> win(T + 1);
  for (uint64_t w = 0; w < count; w++) {
    val.eval_windows(w, 1, T, win);
    m.forward(win.data(), win.data() + 1, 1, T);
    sum += m.last_ce_loss();
  }
  const EvalResult r = evaluate(m, val, 4, T);  // batches of 4, a short last batch
  EXPECT_EQ(r.windows, int64_t(count));
  EXPECT_EQ(r.tokens, int64_t(count) * T);
  EXPECT_NEAR(r.loss, sum / double(count), 1e-5);
  EXPECT_THROW(evaluate(m, val, 4, 33), Error);
}

}  // namespace
}  // namespace engram
