// See plot/plot.h. Layout: a title band on top, y tick labels and the rotated y label on the
// left, x tick labels and the x label below, the legend inside the plot area's top-right corner.
// All text uses the 5x7 font of png.h at scale 2.
#include "plot/plot.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string_view>

#include "engram/error.h"
#include "util/read_file.h"

namespace engram {

namespace {

constexpr int kTextScale = 2;
constexpr int kTextHeight = kGlyphHeight * kTextScale;
constexpr Rgb kInk{30, 30, 30};
constexpr Rgb kGrid{226, 226, 226};
constexpr Rgb kFrame{90, 90, 90};
constexpr Rgb kWhite{255, 255, 255};

// Decimals that tell ticks `step` apart.
int tick_decimals(double step) {
  if (!(step > 0)) return 0;
  return std::clamp(int(std::ceil(-std::log10(step) - 1e-9)), 0, 6);
}

std::string format_tick(double v, double step, bool si, double scale_max) {
  if (v == 0) return "0";
  const char* suffix = "";
  double div = 1;
  if (si && scale_max >= 1e6) {
    suffix = "M";
    div = 1e6;
  } else if (si && scale_max >= 1e3) {
    suffix = "k";
    div = 1e3;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%s", tick_decimals(step / div), v / div, suffix);
  return buf;
}

struct Range {
  double lo = 0;
  double hi = 1;
};

// Range of the finite values of `pick` over all series, widened by `pad` of its span on each side.
template <typename Pick>
Range data_range(const std::vector<PlotSeries>& series, Pick pick, double pad) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const PlotSeries& s : series)
    for (size_t i = 0; i < s.x.size(); i++) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      lo = std::min(lo, pick(s, i));
      hi = std::max(hi, pick(s, i));
    }
  if (hi == lo) {
    const double w = std::max(std::abs(lo) * 0.05, 0.5);
    return {lo - w, hi + w};
  }
  const double m = (hi - lo) * pad;
  return {lo - m, hi + m};
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi))
    fail(Errc::invalid_argument, "nice_ticks: range [", lo, ", ", hi, "] is not finite");
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {
    const double w = std::max(std::abs(lo) * 0.05, 0.5);
    lo -= w;
    hi += w;
  }
  const double raw = (hi - lo) / std::max(target, 1);
  if (!std::isfinite(raw) || !(raw > 0))
    fail(Errc::invalid_argument, "nice_ticks: range [", lo, ", ", hi, "] is too wide or narrow");
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  std::vector<double> ticks;
  // k counts steps from 0; near 2^53 steps per value (a span tiny against its magnitude) k + 1
  // may round back to k, so the loop also stops when the tick does not move, and at 1000 ticks.
  const double first = std::ceil(lo / step - 1e-9);
  for (int i = 0; i < 1000; i++) {
    double t = (first + i) * step;
    if (t > hi + step * 1e-9 || !std::isfinite(t)) break;
    if (!ticks.empty() && t <= ticks.back()) break;
    if (std::abs(t) < step * 1e-9) t = 0;
    ticks.push_back(t);
  }
  return ticks;
}

Image draw_line_plot(const std::vector<PlotSeries>& series, const PlotOptions& o) {
  bool any = false;
  for (const PlotSeries& s : series) {
    if (s.x.size() != s.y.size())
      fail(Errc::invalid_argument, "plot series \"", s.label, "\" has ", s.x.size(),
           " x values but ", s.y.size(), " y values");
    for (size_t i = 0; i < s.x.size(); i++)
      any = any || (std::isfinite(s.x[i]) && std::isfinite(s.y[i]));
  }
  if (!any) fail(Errc::invalid_argument, "plot \"", o.title, "\": no series has a finite point");
  Image img(o.width, o.height, kWhite);

  const Range xr = data_range(
      series, [](const PlotSeries& s, size_t i) { return s.x[i]; }, 0.01);
  const Range yr = data_range(
      series, [](const PlotSeries& s, size_t i) { return s.y[i]; }, 0.04);
  const std::vector<double> xt = nice_ticks(xr.lo, xr.hi, 8);
  const std::vector<double> yt = nice_ticks(yr.lo, yr.hi, 8);
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1;
  const double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
  const double xmax = std::max(std::abs(xr.lo), std::abs(xr.hi));

  std::vector<std::string> ylabels;
  int ylabel_w = 0;
  for (double t : yt) {
    if (t < yr.lo || t > yr.hi) continue;
    ylabels.push_back(format_tick(t, ystep, false, 0));
    ylabel_w = std::max(ylabel_w, text_width(ylabels.back(), kTextScale));
  }

  // Plot area [left, right) x [top, bottom).
  const int pad = 12;
  const int left = pad + (o.y_label.empty() ? 0 : kTextHeight + pad) + ylabel_w + 8;
  const int right = o.width - 2 * pad;
  const int top = o.title.empty() ? 2 * pad : 2 * pad + kTextHeight + pad;
  const int bottom = o.height - pad - kTextHeight - 6 - (o.x_label.empty() ? 0 : kTextHeight + pad);
  if (right - left < 40 || bottom - top < 40)
    fail(Errc::invalid_argument, "plot size ", o.width, "x", o.height, " leaves no room to draw");
  const auto px = [&](double x) { return left + (x - xr.lo) / (xr.hi - xr.lo) * (right - left); };
  const auto py = [&](double y) { return bottom - (y - yr.lo) / (yr.hi - yr.lo) * (bottom - top); };

  // Grid, ticks and their labels.
  size_t yi = 0;
  for (double t : yt) {
    if (t < yr.lo || t > yr.hi) continue;
    const int y = int(std::lround(py(t)));
    img.fill_rect(left, y, right, y + 1, kGrid);
    img.fill_rect(left - 5, y, left, y + 1, kFrame);
    const std::string& s = ylabels[yi++];
    draw_text(img, left - 8 - text_width(s, kTextScale), y - kTextHeight / 2, s, kInk, kTextScale);
  }
  for (double t : xt) {
    if (t < xr.lo || t > xr.hi) continue;
    const int x = int(std::lround(px(t)));
    img.fill_rect(x, top, x + 1, bottom, kGrid);
    img.fill_rect(x, bottom, x + 1, bottom + 5, kFrame);
    const std::string s = format_tick(t, xstep, o.x_si_suffix, xmax);
    draw_text(img, x - text_width(s, kTextScale) / 2, bottom + 8, s, kInk, kTextScale);
  }
  img.fill_rect(left, top, right, top + 1, kFrame);
  img.fill_rect(left, bottom, right + 1, bottom + 1, kFrame);
  img.fill_rect(left, top, left + 1, bottom, kFrame);
  img.fill_rect(right, top, right + 1, bottom, kFrame);

  // Data: lines first, then markers on top.
  for (const PlotSeries& s : series) {
    if (s.line_width <= 0) continue;
    for (size_t i = 1; i < s.x.size(); i++) {
      if (!std::isfinite(s.x[i - 1]) || !std::isfinite(s.y[i - 1]) || !std::isfinite(s.x[i]) ||
          !std::isfinite(s.y[i]))
        continue;
      img.draw_line(px(s.x[i - 1]), py(s.y[i - 1]), px(s.x[i]), py(s.y[i]), s.line_width, s.color,
                    s.alpha);
    }
  }
  for (const PlotSeries& s : series) {
    if (s.marker_radius <= 0) continue;
    for (size_t i = 0; i < s.x.size(); i++)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]))
        img.fill_circle(px(s.x[i]), py(s.y[i]), s.marker_radius, s.color, s.alpha);
  }

  // Title, axis labels.
  if (!o.title.empty())
    draw_text(img, (left + right - text_width(o.title, kTextScale)) / 2, 2 * pad, o.title, kInk,
              kTextScale);
  if (!o.x_label.empty())
    draw_text(img, (left + right - text_width(o.x_label, kTextScale)) / 2,
              o.height - pad - kTextHeight, o.x_label, kInk, kTextScale);
  if (!o.y_label.empty())
    draw_text_up(img, pad, (top + bottom + text_width(o.y_label, kTextScale)) / 2, o.y_label, kInk,
                 kTextScale);

  // Legend: a swatch drawn in the series' own style, then its label.
  int entries = 0, label_w = 0;
  for (const PlotSeries& s : series) {
    if (s.label.empty()) continue;
    entries++;
    label_w = std::max(label_w, text_width(s.label, kTextScale));
  }
  if (entries > 0) {
    const int row = kTextHeight + 8, swatch = 32;
    const int w = 10 + swatch + 8 + label_w + 10, h = 8 + entries * row;
    const int x0 = right - 10 - w, y0 = top + 10;
    img.fill_rect(x0, y0, x0 + w, y0 + h, kWhite);
    img.fill_rect(x0, y0, x0 + w, y0 + 1, kFrame);
    img.fill_rect(x0, y0 + h - 1, x0 + w, y0 + h, kFrame);
    img.fill_rect(x0, y0, x0 + 1, y0 + h, kFrame);
    img.fill_rect(x0 + w - 1, y0, x0 + w, y0 + h, kFrame);
    int y = y0 + 8;
    for (const PlotSeries& s : series) {
      if (s.label.empty()) continue;
      const double cy = y + kTextHeight / 2.0;
      if (s.line_width > 0)
        img.draw_line(x0 + 10, cy, x0 + 10 + swatch, cy, std::max(s.line_width, 1.5), s.color,
                      std::max(s.alpha, 0.6f));
      if (s.marker_radius > 0)
        img.fill_circle(x0 + 10 + swatch / 2.0, cy, s.marker_radius, s.color, s.alpha);
      draw_text(img, x0 + 10 + swatch + 8, y, s.label, kInk, kTextScale);
      y += row;
    }
  }
  return img;
}

// ---- training curves -------------------------------------------------------------------------

namespace {

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t comma = line.find(',', start);
    out.push_back(line.substr(start, comma == std::string_view::npos ? line.npos : comma - start));
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

double parse_number(std::string_view field, const std::string& path, size_t line,
                    std::string_view column) {
  double v = 0;
  const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
  if (field.empty() || ec != std::errc() || end != field.data() + field.size())
    fail(Errc::parse, path, ":", line, ": column ", column, ": \"", field, "\" is not a number");
  return v;
}

}  // namespace

TrainingCurves read_metrics_csv(const std::string& path) {
  return parse_metrics_csv(read_file(path), path);
}

TrainingCurves parse_metrics_csv(std::string_view text, const std::string& path) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view l = text.substr(start, end - start);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    lines.push_back(l);
    start = end + 1;
  }
  if (lines.empty() || lines[0].empty()) fail(Errc::parse, path, ":1: no header line");
  const std::vector<std::string_view> header = split_fields(lines[0]);
  const auto column = [&](std::string_view name) {
    const auto it = std::find(header.begin(), header.end(), name);
    if (it == header.end()) fail(Errc::parse, path, ":1: the header has no column \"", name, "\"");
    return size_t(it - header.begin());
  };
  const size_t c_step = column("step"), c_train = column("train_loss"), c_val = column("val_loss"),
               c_tokens = column("tokens");
  const auto elapsed_it = std::find(header.begin(), header.end(), "elapsed_s");
  const bool has_elapsed = elapsed_it != header.end();
  const size_t c_elapsed = size_t(elapsed_it - header.begin());
  const size_t needed =
      std::max({c_step, c_train, c_val, c_tokens, has_elapsed ? c_elapsed : 0}) + 1;

  TrainingCurves c;
  for (size_t i = 1; i < lines.size(); i++) {
    if (lines[i].empty()) continue;
    const size_t ln = i + 1;
    const std::vector<std::string_view> f = split_fields(lines[i]);
    if (f.size() < needed)
      fail(Errc::parse, path, ":", ln, ": ", f.size(), " fields, the header needs at least ",
           needed);
    const double step = parse_number(f[c_step], path, ln, "step");
    const double tokens = parse_number(f[c_tokens], path, ln, "tokens");
    c.step.push_back(step);
    c.tokens.push_back(tokens);
    c.train_loss.push_back(parse_number(f[c_train], path, ln, "train_loss"));
    if (has_elapsed) c.elapsed_s.push_back(parse_number(f[c_elapsed], path, ln, "elapsed_s"));
    if (!f[c_val].empty()) {
      c.val_step.push_back(step);
      c.val_tokens.push_back(tokens);
      c.val_loss.push_back(parse_number(f[c_val], path, ln, "val_loss"));
    }
  }
  return c;
}

Image draw_loss_plot(const std::vector<TrainingCurves>& runs,
                     const std::vector<std::string>& labels, const std::string& title) {
  if (runs.empty()) fail(Errc::invalid_argument, "loss plot: no run to draw");
  if (labels.size() != runs.size())
    fail(Errc::invalid_argument, "loss plot: ", runs.size(), " runs but ", labels.size(),
         " labels");
  static constexpr Rgb kPalette[] = {{31, 119, 180}, {230, 110, 0},   {44, 160, 44},
                                     {214, 39, 40},  {148, 103, 189}, {140, 86, 75}};
  std::vector<PlotSeries> series;
  for (size_t i = 0; i < runs.size(); i++) {
    const Rgb color = kPalette[i % std::size(kPalette)];
    PlotSeries train{labels[i] + " train", runs[i].tokens, runs[i].train_loss, color};
    train.line_width = 1.0;
    train.alpha = 0.45f;
    series.push_back(std::move(train));
  }
  for (size_t i = 0; i < runs.size(); i++) {
    const Rgb color = kPalette[i % std::size(kPalette)];
    PlotSeries val{labels[i] + " held-out", runs[i].val_tokens, runs[i].val_loss, color};
    val.line_width = 2.5;
    val.marker_radius = 4.5;
    series.push_back(std::move(val));
  }
  PlotOptions o;
  o.title = title;
  o.x_label = "training tokens";
  o.y_label = "loss (nats/token)";
  o.x_si_suffix = true;
  return draw_line_plot(series, o);
}

void write_loss_plot(const std::vector<std::string>& metrics_paths,
                     const std::vector<std::string>& labels, const std::string& png_path,
                     const std::string& title) {
  std::vector<TrainingCurves> runs;
  for (const std::string& p : metrics_paths) runs.push_back(read_metrics_csv(p));
  write_png(draw_loss_plot(runs, labels, title), png_path);
}

}  // namespace engram
