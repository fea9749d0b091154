// plot_test.cpp: tick selection, metrics.csv parsing (and its errors), and the drawn figures:
// series pixels in their colours, legend and text present, bad input rejected.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "data/test_files.h"
#include "engram/error.h"
#include "plot/plot.h"
#include "test_helpers.h"

namespace engram {
namespace {

using engram::test::TempDir;
using engram::testing::error_of;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

size_t count_color(const Image& img, Rgb c) {
  size_t n = 0;
  for (int y = 0; y < img.height(); y++)
    for (int x = 0; x < img.width(); x++) n += img.at(x, y) == c;
  return n;
}

TEST(NiceTicks, StepsOfOneTwoFive) {
  const auto near = [](std::vector<double> v) {
    return ::testing::Pointwise(::testing::DoubleNear(1e-9), std::move(v));
  };
  EXPECT_THAT(nice_ticks(0, 1, 5), near({0, 0.2, 0.4, 0.6, 0.8, 1}));
  EXPECT_THAT(nice_ticks(4.37, 9.12, 8), near({4.5, 5, 5.5, 6, 6.5, 7, 7.5, 8, 8.5, 9}));
  EXPECT_THAT(nice_ticks(0, 1.0e6, 5), near({0, 2e5, 4e5, 6e5, 8e5, 1e6}));
  EXPECT_THAT(nice_ticks(-0.3, 0.3, 3), near({-0.2, 0, 0.2}));
  EXPECT_FALSE(nice_ticks(5, 5, 4).empty());  // a single value still gets ticks around it
  EXPECT_THAT(error_of([] { nice_ticks(0, INFINITY, 4); }), HasSubstr("not finite"));
  // A span tiny against its magnitude: steps of 10 near 1e17 cannot all be represented; the
  // ticks stay increasing and the call returns.
  const std::vector<double> far = nice_ticks(1e17, 1e17 + 64, 8);
  EXPECT_FALSE(far.empty());
  EXPECT_TRUE(std::is_sorted(far.begin(), far.end()));
  EXPECT_THAT(error_of([] { nice_ticks(-1.7e308, 1.7e308, 4); }), HasSubstr("too wide"));
}

constexpr const char* kMetrics =
    "step,lr,train_loss,val_loss,tokens,elapsed_s\n"
    "1,0.001,9.1,,1024,0.5\n"
    "2,0.001,8.5,8.7,2048,1.0\n"
    "3,0.001,8.0,,3072,1.5\n"
    "4,0.001,7.6,7.9,4096,2.0\n";

TEST(MetricsCsv, ReadsEveryStepAndTheEvaluatedOnes) {
  const TempDir t;
  const TrainingCurves c = read_metrics_csv(t.write("m.csv", kMetrics));
  EXPECT_THAT(c.step, ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(c.tokens, ElementsAre(1024, 2048, 3072, 4096));
  EXPECT_THAT(c.train_loss, ElementsAre(9.1, 8.5, 8.0, 7.6));
  EXPECT_THAT(c.elapsed_s, ElementsAre(0.5, 1.0, 1.5, 2.0));
  EXPECT_THAT(c.val_step, ElementsAre(2, 4));
  EXPECT_THAT(c.val_tokens, ElementsAre(2048, 4096));
  EXPECT_THAT(c.val_loss, ElementsAre(8.7, 7.9));
  // Columns are found by name; CRLF line ends and a missing final newline are fine.
  const TrainingCurves d = read_metrics_csv(
      t.write("r.csv", "tokens,val_loss,train_loss,step\r\n10,,3.5,1\r\n20,3,2.5,2"));
  EXPECT_THAT(d.step, ElementsAre(1, 2));
  EXPECT_THAT(d.val_loss, ElementsAre(3));
  EXPECT_TRUE(d.elapsed_s.empty());
  // Only a header: no points, no error.
  EXPECT_TRUE(read_metrics_csv(t.write("h.csv", "step,train_loss,val_loss,tokens\n")).step.empty());
}

TEST(MetricsCsv, ErrorsNameFileLineAndColumn) {
  const TempDir t;
  Errc code{};
  const std::string missing = t.path("nope.csv");
  EXPECT_THAT(error_of([&] { read_metrics_csv(missing); }, &code), HasSubstr(missing));
  EXPECT_EQ(code, Errc::io);
  const std::string empty = t.write("e.csv", "");
  EXPECT_THAT(error_of([&] { read_metrics_csv(empty); }, &code), HasSubstr("e.csv:1: no header"));
  EXPECT_EQ(code, Errc::parse);
  const std::string nocol = t.write("n.csv", "step,train_loss,tokens\n1,2,3\n");
  EXPECT_THAT(error_of([&] { read_metrics_csv(nocol); }), HasSubstr("no column \"val_loss\""));
  const std::string bad = t.write("b.csv", std::string(kMetrics) + "5,0.001,7.x,,5120,2.5\n");
  EXPECT_THAT(error_of([&] { read_metrics_csv(bad); }),
              HasSubstr("b.csv:6: column train_loss: \"7.x\" is not a number"));
  const std::string shrt = t.write("s.csv", std::string(kMetrics) + "5,0.001\n");
  EXPECT_THAT(error_of([&] { read_metrics_csv(shrt); }), HasSubstr("s.csv:6: 2 fields"));
  const std::string nostep = t.write("t.csv", std::string(kMetrics) + ",0.001,7,,5120,2.5\n");
  EXPECT_THAT(error_of([&] { read_metrics_csv(nostep); }), HasSubstr("t.csv:6: column step"));
}

TEST(LinePlot, DrawsSeriesInTheirColoursInsideTheFrame) {
  const Rgb red{200, 0, 0}, blue{0, 0, 200};
  PlotSeries a{"rising", {0, 1, 2, 3}, {1, 2, 3, 4}, red};
  a.line_width = 3;
  PlotSeries b{"markers", {0, 1, 2, 3}, {4, 3, 2, 1}, blue};
  b.line_width = 0;
  b.marker_radius = 5;
  PlotOptions o;
  o.width = 400;
  o.height = 300;
  o.title = "T";
  o.x_label = "x";
  o.y_label = "y";
  const Image img = draw_line_plot({a, b}, o);
  EXPECT_EQ(img.width(), 400);
  EXPECT_EQ(img.height(), 300);
  EXPECT_GT(count_color(img, red), 300u);      // a 3 px line across most of the width
  EXPECT_GT(count_color(img, blue), 4 * 50u);  // four discs of radius 5 (and the legend's)
  EXPECT_EQ(img.at(0, 0), (Rgb{255, 255, 255}));
  EXPECT_GT(count_color(img, Rgb{30, 30, 30}), 100u);  // text ink: ticks, title, labels, legend
  // A line from the lowest point to the highest: the first point is left of and below the last.
  int first_x = img.width(), first_y = -1, last_x = -1, last_y = -1;
  for (int x = 0; x < img.width(); x++)
    for (int y = 0; y < img.height(); y++)
      if (img.at(x, y) == red) {
        if (x < first_x) first_x = x, first_y = y;
        if (x > last_x) last_x = x, last_y = y;
      }
  EXPECT_LT(first_x, last_x);
  EXPECT_GT(first_y, last_y);
}

TEST(LinePlot, NonFinitePointsBreakTheLineAndBadSeriesAreRejected) {
  PlotSeries s{"s", {0, 1, 2}, {1, NAN, 3}, Rgb{200, 0, 0}};
  PlotOptions o;
  EXPECT_NO_THROW(draw_line_plot({s}, o));
  PlotSeries nan_only{"n", {0, 1}, {NAN, INFINITY}, Rgb{}};
  Errc code{};
  EXPECT_THAT(error_of([&] { draw_line_plot({nan_only}, o); }, &code), HasSubstr("no series"));
  EXPECT_EQ(code, Errc::invalid_argument);
  PlotSeries ragged{"r", {0, 1, 2}, {1, 2}, Rgb{}};
  EXPECT_THAT(error_of([&] { draw_line_plot({ragged}, o); }), HasSubstr("3 x values but 2"));
  o.width = 30;
  EXPECT_THAT(error_of([&] { draw_line_plot({s}, o); }), HasSubstr("no room"));
}

TEST(LossPlot, EachRunHasItsColourAndLabelsMustMatch) {
  const TempDir t;
  const std::string m = t.write("m.csv", kMetrics);
  const TrainingCurves c = read_metrics_csv(m);
  const Image img = draw_loss_plot({c, c}, {"baseline", "engram"}, "title");
  EXPECT_GT(count_color(img, Rgb{31, 119, 180}), 20u);  // held-out markers, opaque centres
  EXPECT_GT(count_color(img, Rgb{230, 110, 0}), 20u);
  EXPECT_THAT(error_of([&] { draw_loss_plot({c}, {"a", "b"}, ""); }), HasSubstr("1 runs but 2"));
  EXPECT_THAT(error_of([&] { draw_loss_plot({}, {}, ""); }), HasSubstr("no run"));
  const std::string png = t.path("loss.png");
  write_loss_plot({m}, {"run"}, png, "loss");
  EXPECT_TRUE(std::filesystem::exists(png));
  EXPECT_GT(std::filesystem::file_size(png), 1000u);
}

}  // namespace
}  // namespace engram
