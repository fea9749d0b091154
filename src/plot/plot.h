// plot/plot.h: line plots of training curves, drawn into an Image (plot/png.h) and written as
// PNG: `engram plot`, the loss.png the trainer keeps next to metrics.csv, and `engram demo`.
//
// Hand-written on purpose: Debian packages no C or C++ plotting library that fits (gnuplot and
// matplotlib are programs to drive, not libraries to link; PLplot pulls in a driver stack and
// fonts). What is needed here is small: axes with "nice" ticks, grid, a few polylines and
// markers, a legend, and labels in a built-in bitmap font, so the figure is identical on every
// machine and needs nothing installed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "plot/png.h"

namespace engram {

struct PlotSeries {
  std::string label;      // legend text; empty: not in the legend
  std::vector<double> x;  // same length as y; points with a non-finite x or y break the line
  std::vector<double> y;
  Rgb color;
  double line_width = 1.5;   // pixels; 0: points only
  double marker_radius = 0;  // pixels; 0: no markers
  float alpha = 1.0f;        // opacity of line and markers
};

struct PlotOptions {
  int width = 960;
  int height = 600;
  std::string title;
  std::string x_label;
  std::string y_label;
  bool x_si_suffix = false;  // tick labels as 250k, 1.5M
};

// "Nice" tick positions (steps of 1, 2 or 5 times a power of ten) covering [lo, hi], about
// `target` of them; lo == hi widens the range. Errc::invalid_argument for non-finite bounds.
std::vector<double> nice_ticks(double lo, double hi, int target);

// Draws the series on white: frame, grid at the ticks, tick labels, title, axis labels, and a
// legend in the top-right corner. Axis ranges cover every finite point (with a small margin).
// Errc::invalid_argument when a series' x and y differ in length, or no series has a finite
// point.
Image draw_line_plot(const std::vector<PlotSeries>& series, const PlotOptions& options);

// ---- training curves -------------------------------------------------------------------------

// One run's metrics.csv (engram/trainer.h): every step's training loss, and the held-out loss of
// the steps that evaluated.
struct TrainingCurves {
  std::vector<double> step;
  std::vector<double> tokens;
  std::vector<double> train_loss;
  std::vector<double> elapsed_s;  // per step, when the file has the column (else empty)
  std::vector<double> val_step;
  std::vector<double> val_tokens;
  std::vector<double> val_loss;
};

// Reads a metrics.csv: a header naming at least the columns step, train_loss, val_loss and
// tokens (in any order; elapsed_s is read when present), then one row per step; val_loss may be
// empty. Errc::io when the file
// cannot be read; Errc::parse naming the file, line and column for a missing column, a short
// row or a field that is not a number.
TrainingCurves read_metrics_csv(const std::string& path);
// The same on the file's text; `origin` names it in errors.
TrainingCurves parse_metrics_csv(std::string_view text, const std::string& origin);

// The loss figure: x = training tokens, y = loss; per run a thin, light line for the training
// loss and a thick line with markers for the held-out loss, in the run's colour. labels[i] names
// runs[i] (Errc::invalid_argument when the counts differ or there is no run).
Image draw_loss_plot(const std::vector<TrainingCurves>& runs,
                     const std::vector<std::string>& labels, const std::string& title);

// read_metrics_csv on each path, draw_loss_plot, write_png (atomic) to png_path.
void write_loss_plot(const std::vector<std::string>& metrics_paths,
                     const std::vector<std::string>& labels, const std::string& png_path,
                     const std::string& title);

}  // namespace engram
