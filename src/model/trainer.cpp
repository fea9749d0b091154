// The training loop, kill-safe checkpoints with exact resume, and held-out evaluation
// (engram/trainer.h describes the folder layout and the guarantees).
#include "engram/trainer.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engram/error.h"
#include "engram/optim.h"
#include "engram/safetensors.h"
#include "engram/tokenizer.h"
#include "model/checkpoint.h"
#include "plot/plot.h"
#include "util/checked.h"
#include "util/hex.h"
#include "util/json.h"
#include "util/read_file.h"

namespace engram {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// A decimal integer, the whole string; Errc::parse naming `what` otherwise.
int64_t parse_int(const std::string& text, const std::string& what) {
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) fail(Errc::parse, what, ": \"", text, "\" is no integer");
  return v;
}

std::string file_checksum(const std::string& path) {
  const std::string bytes = read_file(path);
  return hex64(fnv1a64(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())));
}

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "checkpoint-%08lld", static_cast<long long>(step));
  return buf;
}

// The options a resumed run must share with the run that wrote the checkpoint: anything that
// changes the batches or the update rule would make the resumed losses differ.
json schedule_json(const TrainOptions& o) {
  return json{{"steps", o.steps},
              {"batch", o.batch},
              {"seq", o.seq},
              {"lr", o.lr},
              {"min_lr_ratio", o.min_lr_ratio},
              {"warmup", o.warmup},
              {"clip", o.clip},
              {"weight_decay", o.weight_decay},
              {"table_lr_mult", o.table_lr_mult},
              {"sampling", o.sampling == SamplingOrder::epoch ? "epoch" : "random"},
              {"seed", o.seed}};
}

struct Optimizers {
  AdamW dense;
  EngramTableAdam tables;
};

void save_optimizer(Optimizers& opt, const std::string& path) {
  std::vector<TensorView> views;
  const auto f32 = [&](std::string name, std::span<float> s) {
    views.push_back(
        {std::move(name), Dtype::F32, {static_cast<int64_t>(s.size())}, std::as_bytes(s)});
  };
  f32("adamw.m", opt.dense.first_moment());
  f32("adamw.v", opt.dense.second_moment());
  std::vector<SparseRowAdam>& tables = opt.tables.tables();
  for (size_t i = 0; i < tables.size(); i++) {
    const std::string p = "engram_table." + std::to_string(i);
    const int64_t rows = tables[i].rows(), width = tables[i].width();
    views.push_back({p + ".m", Dtype::F32, {rows, width}, std::as_bytes(tables[i].first_moment())});
    views.push_back(
        {p + ".v", Dtype::F32, {rows, width}, std::as_bytes(tables[i].second_moment())});
    views.push_back({p + ".steps", Dtype::I32, {rows}, std::as_bytes(tables[i].row_step_counts())});
  }
  save_safetensors(path, views, {{"adamw.steps", std::to_string(opt.dense.steps())}});
}

void load_optimizer(Optimizers& opt, const std::string& path) {
  const SafetensorsFile f = SafetensorsFile::open(path);
  size_t expected = 2;
  const auto read = [&](const std::string& name, Dtype dtype, std::span<std::byte> out) {
    const TensorInfo& t = f.tensor(name);
    if (t.dtype != dtype || t.nbytes != out.size())
      fail(Errc::mismatch, path, ": tensor ", name, " has dtype ", dtype_name(t.dtype), " and ",
           t.nbytes, " bytes, expected ", dtype_name(dtype), " and ", out.size());
    f.read(name, out);
  };
  read("adamw.m", Dtype::F32, std::as_writable_bytes(opt.dense.first_moment()));
  read("adamw.v", Dtype::F32, std::as_writable_bytes(opt.dense.second_moment()));
  std::vector<SparseRowAdam>& tables = opt.tables.tables();
  for (size_t i = 0; i < tables.size(); i++) {
    const std::string p = "engram_table." + std::to_string(i);
    read(p + ".m", Dtype::F32, std::as_writable_bytes(tables[i].first_moment()));
    read(p + ".v", Dtype::F32, std::as_writable_bytes(tables[i].second_moment()));
    read(p + ".steps", Dtype::I32, std::as_writable_bytes(tables[i].row_step_counts()));
    expected += 3;
  }
  if (f.tensors().size() != expected)
    fail(Errc::mismatch, path, ": holds ", f.tensors().size(), " tensors, the model needs ",
         expected);
  const auto it = f.metadata().find("adamw.steps");
  if (it == f.metadata().end()) fail(Errc::parse, path, ": metadata \"adamw.steps\" missing");
  opt.dense.set_steps(parse_int(it->second, path + ": metadata adamw.steps"));
}

// Evenly spaced window indices: n of count (all when n <= 0 or n >= count).
std::vector<uint64_t> pick_windows(uint64_t count, int64_t n) {
  std::vector<uint64_t> out;
  if (n <= 0 || uint64_t(n) >= count) {
    for (uint64_t i = 0; i < count; i++) out.push_back(i);
  } else {
    for (int64_t i = 0; i < n; i++) out.push_back(uint64_t(i) * count / uint64_t(n));
  }
  return out;
}

std::string format_duration(double s) {
  char buf[32];
  const long long t = static_cast<long long>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, t / 60 % 60);
  else
    std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
  return buf;
}

// metrics.csv keeps the rows up to `step` (a resumed run rewrites what the killed run logged
// after its last checkpoint); a fresh run starts it over.
void reset_metrics(const std::string& path, int64_t keep_through_step) {
  std::string kept = "step,lr,train_loss,val_loss,tokens,elapsed_s\n";
  if (keep_through_step > 0 && fs::exists(path)) {
    std::istringstream in(read_file(path));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      if (parse_int(line.substr(0, line.find(',')), path + ": step column") <= keep_through_step)
        kept += line + "\n";
    }
  }
  write_file_atomic(path, kept);
}

}  // namespace

bool holds_run(const std::string& out_dir) {
  std::error_code ec;
  const fs::path out(out_dir);
  if (!fs::is_directory(out, ec)) return false;
  for (const auto& e : fs::directory_iterator(out, ec)) {
    const std::string n = e.path().filename().string();
    if (n == "latest" || n == "metrics.csv" || n.rfind("checkpoint-", 0) == 0) return true;
  }
  return false;
}

void check_out_dir(const TrainOptions& o) {
  if (!o.resume && !o.overwrite && holds_run(o.out_dir))
    fail(Errc::invalid_argument, o.out_dir,
         ": holds a run (checkpoints or metrics.csv); give --resume to continue it or "
         "--overwrite to start over and replace it");
}

void set_compute_threads(int threads) {
  if (threads <= 0) return;
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

void verify_checkpoint_tokenizer(const std::string& model_dir, const Tokenizer& tokenizer,
                                 const std::string& tokenizer_origin) {
  const std::optional<std::string> recorded = recorded_state_string(model_dir, "tokenizer_digest");
  if (!recorded) return;
  const std::string& was = *recorded;
  const std::string now = hex64(tokenizer_digest(tokenizer));
  if (was != now) {
    fail(Errc::mismatch, tokenizer_origin, ": tokenizer digest ", now, " differs from ",
         was.substr(0, 64), ", the tokenizer the model was trained with (", model_dir,
         "/trainer_state.json)");
  }
}

std::string resolve_model_dir(const std::string& dir) {
  if (fs::exists(fs::path(dir) / "config.json")) return dir;
  const fs::path latest = fs::path(dir) / "latest";
  if (fs::exists(latest)) {
    std::string name = read_file(latest.string());
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    const fs::path d = fs::path(dir) / name;
    if (name.empty() || name.find('/') != std::string::npos || !fs::exists(d / "config.json"))
      fail(Errc::io, latest.string(), ": names \"", name, "\", which is not a model directory");
    return d.string();
  }
  fail(Errc::io, dir, ": neither a model directory (config.json) nor a training folder (latest)");
}

EvalResult evaluate(Model& model, const TokenFile& file, int64_t B, int64_t T,
                    int64_t max_windows) {
  const ModelConfig& cfg = model.config();
  if (T < 1 || T > cfg.max_seq_len)
    fail(Errc::invalid_argument, "evaluation sequence length ", T, " is outside [1, ",
         cfg.max_seq_len, "] (the model's max_seq_len)");
  if (B < 1) fail(Errc::invalid_argument, "evaluation batch must be >= 1, got ", B);
  if (int64_t(file.vocab_size()) > cfg.vocab_size)
    fail(Errc::mismatch, "token file vocabulary ", file.vocab_size(),
         " is larger than the model's vocab_size ", cfg.vocab_size);
  const uint64_t count = file.eval_window_count(T);
  if (count == 0)
    fail(Errc::invalid_argument, "token file of ", file.size(), " tokens has no window of ", T + 1,
         " tokens");
  const std::vector<uint64_t> picks = pick_windows(count, max_windows);
  // A forward keeps the activations of its rows: refuse a batch the machine cannot hold by
  // estimate rather than by a bare allocation failure.
  const int64_t max_rows = std::min<int64_t>(B, int64_t(picks.size()));
  cfg.check_memory(checked_add(cfg.model_bytes(), cfg.activation_bytes(max_rows, T), "evaluation"),
                   str_cat("evaluation at --batch ", max_rows, " --seq ", T), "the model's config");
  std::vector<int32_t> win(static_cast<size_t>(T + 1)), ids, targets;
  double sum = 0;
  for (size_t i = 0; i < picks.size(); i += size_t(B)) {
    const int64_t rows = std::min<int64_t>(B, int64_t(picks.size() - i));
    ids.resize(size_t(rows * T));
    targets.resize(size_t(rows * T));
    for (int64_t r = 0; r < rows; r++) {
      file.eval_windows(picks[i + size_t(r)], 1, T, win);
      std::copy(win.begin(), win.end() - 1, ids.begin() + r * T);
      std::copy(win.begin() + 1, win.end(), targets.begin() + r * T);
    }
    model.forward(ids.data(), targets.data(), rows, T);
    sum += double(model.last_ce_loss()) * double(rows);
  }
  EvalResult res;
  res.windows = int64_t(picks.size());
  res.tokens = res.windows * T;
  res.loss = sum / double(res.windows);
  return res;
}

TrainResult train(const TrainOptions& o, std::FILE* progress) {
  // ---- validate everything before touching the output folder ----
  if (o.steps < 1) fail(Errc::invalid_argument, "--steps must be >= 1, got ", o.steps);
  if (o.batch < 1) fail(Errc::invalid_argument, "--batch must be >= 1, got ", o.batch);
  if (o.seq < 1) fail(Errc::invalid_argument, "--seq must be >= 1, got ", o.seq);
  if (!(o.lr > 0) || !std::isfinite(o.lr))
    fail(Errc::invalid_argument, "--lr must be a positive number, got ", o.lr);
  if (o.warmup < 0 || o.warmup > o.steps)
    fail(Errc::invalid_argument, "--warmup ", o.warmup, " is outside [0, --steps ", o.steps, "]");
  if (o.weight_decay < 0) fail(Errc::invalid_argument, "--weight-decay must be >= 0");
  if (!(o.table_lr_mult >= 0) || !std::isfinite(o.table_lr_mult))
    fail(Errc::invalid_argument, "--table-lr-mult must be a number >= 0, got ", o.table_lr_mult);
  if (o.out_dir.empty()) fail(Errc::invalid_argument, "--out is required");
  check_out_dir(o);
  const fs::path out(o.out_dir);
  const std::string latest_path = (out / "latest").string();

  std::string resume_dir;
  json state;
  if (o.resume) {
    if (!fs::exists(latest_path))
      fail(Errc::io, latest_path, ": no checkpoint to resume from (run without --resume first)");
    resume_dir = resolve_model_dir(o.out_dir);
    const std::string state_path = resume_dir + "/trainer_state.json";
    state = parse_json(read_file(state_path, {kMaxConfigBytes, "training state"}), state_path);
    for (const char* f : {"model.safetensors", "optimizer.safetensors"}) {
      const std::string key = std::string("checksum.") + f;
      if (!state.contains(key) || !state[key].is_string())
        fail(Errc::parse, state_path, ": key \"", key, "\" missing");
      if (file_checksum(resume_dir + "/" + f) != state[key].get<std::string>())
        fail(Errc::parse, resume_dir, "/", f, ": checksum differs from trainer_state.json (",
             "the checkpoint is corrupt)");
    }
    const json want = schedule_json(o);
    if (!state.contains("options") || !state["options"].is_object())
      fail(Errc::parse, state_path, ": key \"options\" missing");
    for (auto it = want.begin(); it != want.end(); ++it) {
      if (state["options"].value(it.key(), json()) != it.value())
        fail(Errc::mismatch, "--resume: option ", it.key(), " = ", json_excerpt(it.value()),
             " differs from the checkpoint's ",
             json_excerpt(state["options"].value(it.key(), json())), " (", state_path,
             "); a resumed run must use the same options");
    }
  }

  const Tokenizer tok = Tokenizer::from_file(o.tokenizer_path);
  Model model = [&] {
    if (!o.resume) {
      if (o.config_path.empty()) fail(Errc::invalid_argument, "--config is required");
      return Model(new_model_config(o.config_path, tok), o.seed);
    }
    Model m = Model::load(resume_dir);
    if (!o.config_path.empty()) {
      const ModelConfig c = ModelConfig::from_json(
          read_file(o.config_path, {kMaxConfigBytes, "config"}), o.config_path);
      if (c.to_json() != m.config().to_json()) {
        // Name the first key that differs, with both values (an Engram seed, say).
        const json a = json::parse(c.to_json()), b = json::parse(m.config().to_json());
        std::string key, mine, theirs;
        for (const json* obj : {&a, &b}) {
          for (auto it = obj->begin(); it != obj->end() && key.empty(); ++it) {
            const json& x = a.value(it.key(), json());
            const json& y = b.value(it.key(), json());
            if (x == y) continue;
            key = it.key();
            if (x.is_object() && y.is_object()) {
              for (auto e = x.begin(); e != x.end(); ++e) {
                if (y.value(e.key(), json()) == e.value()) continue;
                key += "." + e.key();
                mine = json_excerpt(e.value());
                theirs = json_excerpt(y.value(e.key(), json()));
                break;
              }
            }
            if (mine.empty()) {
              mine = json_excerpt(x);
              theirs = json_excerpt(y);
            }
          }
        }
        fail(Errc::mismatch, o.config_path, ": contradicts the checkpoint's config (", resume_dir,
             "/config.json): ", key, " is ", mine, " here but ", theirs, " in the checkpoint");
      }
    }
    return m;
  }();
  const ModelConfig& cfg = model.config();
  if (o.seq > cfg.max_seq_len)
    fail(Errc::invalid_argument, "--seq ", o.seq, " exceeds the model's max_seq_len ",
         cfg.max_seq_len);
  const std::string cfg_where = o.resume ? resume_dir + "/config.json" : o.config_path;
  cfg.check_memory(cfg.train_bytes(o.batch, o.seq, cfg_where),
                   str_cat("training at --batch ", o.batch, " --seq ", o.seq), cfg_where);
  if (tok.vocab_size() > cfg.vocab_size)
    fail(Errc::mismatch, o.tokenizer_path, ": ", tok.vocab_size(),
         " ids do not fit the model's vocab_size ", cfg.vocab_size);
  if (o.resume && cfg.engram.compress_tokens &&
      tokenizer_compress_lookup(tok, cfg.vocab_size) != cfg.engram.compress_lookup)
    fail(Errc::mismatch, o.tokenizer_path, ": compresses differently from the tokenizer the ",
         "checkpoint was trained with (", resume_dir, ")");
  // Token files and checkpoints record the tokenizer they were made with (tokenizer_digest); a
  // different one with the same vocabulary size would train on ids that mean other text.
  const uint64_t tok_digest = tokenizer_digest(tok);
  if (o.resume) {
    verify_checkpoint_tokenizer(resume_dir, tok, o.tokenizer_path);
    const std::string ckpt_tok = resume_dir + "/tokenizer.json";
    if (fs::exists(ckpt_tok)) {
      const uint64_t was = tokenizer_digest(Tokenizer::from_file(ckpt_tok));
      if (was != tok_digest)
        fail(Errc::mismatch, o.tokenizer_path, ": tokenizer digest ", hex64(tok_digest),
             " differs from the checkpoint's ", ckpt_tok, " (digest ", hex64(was), ")");
    }
  }
  const std::string train_path = (fs::path(o.data_dir) / "train.bin").string();
  const std::string val_path = (fs::path(o.data_dir) / "val.bin").string();
  const TokenFile train_file = TokenFile::open(train_path);
  const TokenFile val_file = TokenFile::open(val_path);
  check_token_file_tokenizer(train_file.header(), train_path, tok_digest, o.tokenizer_path);
  check_token_file_tokenizer(val_file.header(), val_path, tok_digest, o.tokenizer_path);
  for (const TokenFile* f : {&train_file, &val_file}) {
    if (int64_t(f->vocab_size()) > cfg.vocab_size)
      fail(Errc::mismatch, o.data_dir, ": token file vocabulary ", f->vocab_size(),
           " is larger than the model's vocab_size ", cfg.vocab_size);
  }
  if (val_file.eval_window_count(o.seq) == 0)
    fail(Errc::invalid_argument, o.data_dir, "/val.bin: fewer than --seq + 1 = ", o.seq + 1,
         " tokens");

  AdamWOptions aw;
  aw.weight_decay = o.weight_decay;
  Optimizers opt{AdamW(model.param_spans(), aw), EngramTableAdam(model, o.table_lr_mult)};
  WindowSampler sampler(train_file, o.batch, o.seq, o.seed, o.sampling);
  const int64_t B = o.batch, T = o.seq;
  std::vector<int32_t> batch(size_t(B * (T + 1))), ids(size_t(B * T)), targets(size_t(B * T));

  TrainResult res;
  int64_t tokens = 0;
  double elapsed_before = 0;
  if (o.resume) {
    load_optimizer(opt, resume_dir + "/optimizer.safetensors");
    res.first_step = state.at("step").get<int64_t>();
    tokens = state.at("tokens").get<int64_t>();
    elapsed_before = state.at("elapsed_s").get<double>();
    if (opt.dense.steps() != res.first_step)
      fail(Errc::mismatch, resume_dir, ": optimizer step ", opt.dense.steps(),
           " differs from trainer step ", res.first_step);
    for (int64_t s = 0; s < res.first_step; s++) sampler.next(batch);  // sampler position
  }

  std::error_code ec;
  if (!o.resume && o.overwrite) {  // the old run goes as a whole, not piecemeal as steps pass
    for (const auto& e : fs::directory_iterator(out, ec)) {
      const std::string n = e.path().filename().string();
      if (n == "latest" || n == "metrics.csv" || n == "loss.png" || n.rfind("checkpoint-", 0) == 0)
        fs::remove_all(e.path());
    }
  }
  fs::create_directories(out, ec);
  if (ec) fail(Errc::io, o.out_dir, ": cannot create folder: ", ec.message());
  const std::string metrics_path = (out / "metrics.csv").string();
  reset_metrics(metrics_path, res.first_step);
  std::FILE* metrics = std::fopen(metrics_path.c_str(), "a");
  if (!metrics) fail(Errc::io, metrics_path, ": cannot open for appending");
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> metrics_guard(metrics, std::fclose);

  const LrSchedule sched{o.lr, o.lr * o.min_lr_ratio, o.warmup, o.steps};
  const bool tty = progress && isatty(fileno(progress));
  const auto t0 = std::chrono::steady_clock::now();
  const auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };

  const auto save_checkpoint = [&](int64_t step) {
    const std::string name = checkpoint_name(step);
    const fs::path final_dir = out / name;
    const fs::path tmp_dir = out / (name + ".tmp");
    fs::remove_all(tmp_dir);
    model.save(tmp_dir.string());
    fs::copy_file(o.tokenizer_path, tmp_dir / "tokenizer.json",
                  fs::copy_options::overwrite_existing);
    save_optimizer(opt, (tmp_dir / "optimizer.safetensors").string());
    json st;
    st["step"] = step;
    st["tokens"] = tokens;
    st["elapsed_s"] = elapsed_before + seconds();
    st["options"] = schedule_json(o);
    st["tokenizer_digest"] = hex64(tok_digest);
    st["checksum.model.safetensors"] = file_checksum((tmp_dir / "model.safetensors").string());
    st["checksum.optimizer.safetensors"] =
        file_checksum((tmp_dir / "optimizer.safetensors").string());
    write_file_atomic((tmp_dir / "trainer_state.json").string(), st.dump(2) + "\n");
    fsync_path((tmp_dir / "tokenizer.json").string(), false);
    fsync_path(tmp_dir.string(), true);
    if (fs::exists(final_dir)) fs::remove_all(final_dir);  // never `latest`: steps only grow
    fs::rename(tmp_dir, final_dir);
    fsync_path(out.string(), true);
    write_file_atomic(latest_path, name + "\n");
    fsync_path(out.string(), true);
    for (const auto& e : fs::directory_iterator(out)) {  // older checkpoints, stale temp folders
      const std::string n = e.path().filename().string();
      if (n.rfind("checkpoint-", 0) == 0 && n != name) fs::remove_all(e.path());
    }
    res.checkpoint = final_dir.string();
  };

  const int64_t end = o.stop_after > 0 ? std::min(o.steps, res.first_step + o.stop_after) : o.steps;
  const int64_t ckpt_every = o.checkpoint_every > 0 ? o.checkpoint_every : o.eval_every;
  for (int64_t step = res.first_step; step < end; step++) {
    sampler.next(batch);
    for (int64_t b = 0; b < B; b++) {
      const int32_t* row = batch.data() + b * (T + 1);
      std::copy(row, row + T, ids.begin() + b * T);
      std::copy(row + 1, row + T + 1, targets.begin() + b * T);
    }
    model.zero_grad();
    const float loss = model.forward(ids.data(), targets.data(), B, T);
    if (!std::isfinite(loss))
      fail(Errc::invalid_argument, "training loss is ", loss, " at step ", step + 1,
           " (lower --lr?); the last checkpoint is kept");
    model.backward();
    model.clip_grad_norm(o.clip);
    const float lr = sched.at(step);
    opt.dense.step(lr);
    opt.tables.step(lr);
    tokens += B * T;
    res.losses.push_back(loss);
    const int64_t done = step + 1;

    const bool last = done == end;
    const bool do_eval = done == o.steps || (o.eval_every > 0 && done % o.eval_every == 0);
    float val = std::numeric_limits<float>::quiet_NaN();
    if (do_eval) {
      val = float(evaluate(model, val_file, B, T, o.eval_windows).loss);
      res.val_loss = val;
    }
    const double elapsed = elapsed_before + seconds();
    std::fprintf(metrics, "%lld,%.6g,%.6f,", static_cast<long long>(done), double(lr),
                 double(loss));
    if (do_eval) std::fprintf(metrics, "%.6f", double(val));
    std::fprintf(metrics, ",%lld,%.3f\n", static_cast<long long>(tokens), elapsed);
    std::fflush(metrics);
    if (do_eval) {
      // The figure is a convenience: failing to draw it must not stop training.
      try {
        const fs::path name = out.has_filename() ? out.filename() : out.parent_path().filename();
        write_loss_plot({metrics_path}, {name.string()}, (out / "loss.png").string(),
                        "training and held-out loss");
      } catch (const std::exception& e) {
        std::fprintf(stderr, "warning: loss.png not updated: %s\n", e.what());
      }
    }

    if (progress && (tty || do_eval || last || done % std::max<int64_t>(1, o.log_every) == 0)) {
      const double run_s = seconds();
      const double per_step = run_s / double(done - res.first_step);
      const double tps = double(B * T) / per_step;
      char vbuf[48] = "";
      if (do_eval) std::snprintf(vbuf, sizeof vbuf, " val_loss %.4f", double(val));
      std::fprintf(progress, "%sstep %lld/%lld loss %.4f%s lr %.3g %.0f tok/s ETA %s%s",
                   tty ? "\r\033[K" : "", static_cast<long long>(done),
                   static_cast<long long>(o.steps), double(loss), vbuf, double(lr), tps,
                   format_duration(per_step * double(o.steps - done)).c_str(),
                   tty && !do_eval && !last ? "" : "\n");
      std::fflush(progress);
    }
    if (last || (ckpt_every > 0 && done % ckpt_every == 0)) save_checkpoint(done);
  }
  res.step = std::max(end, res.first_step);
  if (res.checkpoint.empty() && res.first_step == end) res.checkpoint = resume_dir;
  return res;
}

}  // namespace engram
