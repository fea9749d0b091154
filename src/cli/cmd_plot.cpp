// `engram plot`: training curves of one or more runs as a PNG.
//
//   engram plot --metrics runs/demo/baseline/metrics.csv runs/demo/engram/metrics.csv
//       --labels baseline,engram --output losses.png [--title "Brown, d128"]
// Each run draws its training loss (thin, light) and held-out loss (thick, markers) against
// training tokens, in its own colour (plot/plot.h).
#include <cstdio>

#include "cli/commands.h"
#include "engram/error.h"
#include "plot/plot.h"

namespace engram::cli {

namespace {

struct PlotArgs {
  std::vector<std::string> metrics;
  std::vector<std::string> labels;
  std::string output;
  std::string title = "training and held-out loss";
};

void run_plot(const PlotArgs& a) {
  std::vector<std::string> labels = a.labels;
  if (labels.empty()) {
    for (size_t i = 0; i < a.metrics.size(); i++) labels.push_back("run " + std::to_string(i + 1));
  }
  if (labels.size() != a.metrics.size())
    fail(Errc::invalid_argument, "--labels names ", labels.size(), " runs but --metrics gives ",
         a.metrics.size(), " files");
  write_loss_plot(a.metrics, labels, a.output, a.title);
  std::printf("wrote %s\n", a.output.c_str());
}

}  // namespace

void add_plot_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("plot", "draw training and held-out loss curves as a PNG");
  auto a = std::make_shared<PlotArgs>();
  cmd->add_option("--metrics", a->metrics, "metrics.csv of each run (engram train)")->required();
  cmd->add_option("--labels", a->labels, "comma-separated run names (default: run 1, run 2, ...)")
      ->delimiter(',');
  cmd->add_option("--output", a->output, "PNG file to write")->required();
  cmd->add_option("--title", a->title, "figure title")->capture_default_str();
  cmd->callback([a] { run_plot(*a); });
}

}  // namespace engram::cli
