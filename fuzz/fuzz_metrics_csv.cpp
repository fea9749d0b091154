// Fuzz target for metrics.csv parsing (parse_metrics_csv) and, when the text parses, the loss
// figure drawn from it (draw_loss_plot + encode_png): arbitrary numbers (huge, tiny, negative,
// equal) must give a figure or an engram::Error, never a crash, a sanitizer report or a hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engram/error.h"
#include "plot/plot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const engram::TrainingCurves c = engram::parse_metrics_csv(text, "fuzz.csv");
    if (c.step.size() <= 2000) engram::encode_png(engram::draw_loss_plot({c}, {"run"}, "fuzz"));
  } catch (const engram::Error&) {
  }
  return 0;
}
