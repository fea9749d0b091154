// plot/png.h: an 8-bit RGB raster with anti-aliased drawing primitives, and a PNG writer
// (libpng). It exists for the figures engram draws itself (loss curves, plot/plot.h).
// What it is not: an image library. RGB only, no alpha channel in the file, no PNG reading.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace engram {

struct Rgb {
  uint8_t r = 0;
  uint8_t g = 0;
  uint8_t b = 0;
  friend bool operator==(Rgb, Rgb) = default;
};

// width x height pixels, row-major, (0, 0) the top-left pixel; pixel (x, y) covers the square
// [x, x + 1) x [y, y + 1), so its centre is (x + 0.5, y + 0.5). Drawing outside is clipped.
class Image {
 public:
  // Errc::invalid_argument unless 1 <= width, height <= kMaxSide.
  Image(int width, int height, Rgb background);
  static constexpr int kMaxSide = 16384;

  int width() const { return width_; }
  int height() const { return height_; }
  // Errc::out_of_range naming (x, y) outside the image.
  Rgb at(int x, int y) const;
  const std::vector<uint8_t>& pixels() const { return pixels_; }  // [height, width, 3]

  // Mixes c into pixel (x, y) with weight alpha in [0, 1] (clamped); no-op outside the image.
  void blend(int x, int y, Rgb c, float alpha);
  // Pixels with x0 <= x < x1, y0 <= y < y1 (clipped), opaque.
  void fill_rect(int x0, int y0, int x1, int y1, Rgb c);
  // A segment of the given width (pixels) with round ends; coverage of each pixel centre is
  // estimated from its distance to the segment, so edges are anti-aliased.
  void draw_line(double x0, double y0, double x1, double y1, double width, Rgb c,
                 float alpha = 1.0f);
  // A filled disc, anti-aliased edge.
  void fill_circle(double cx, double cy, double radius, Rgb c, float alpha = 1.0f);

 private:
  int width_;
  int height_;
  std::vector<uint8_t> pixels_;
};

// ---- text: a 5x7 bitmap font of printable ASCII, drawn by hand for this project -----------
// Each glyph advances 6 * scale pixels; a line is 7 * scale pixels high. Bytes outside
// 0x20..0x7e (including every byte of a multi-byte UTF-8 character) draw as '?'.
inline constexpr int kGlyphWidth = 5;
inline constexpr int kGlyphHeight = 7;
int text_width(std::string_view text, int scale);
// Top-left corner of the first glyph at (x, y).
void draw_text(Image& image, int x, int y, std::string_view text, Rgb c, int scale = 1);
// Rotated 90 degrees counter-clockwise (reads bottom to top), for a y-axis label: the text's
// bounding box is [x, x + 7 * scale) x [y - text_width, y).
void draw_text_up(Image& image, int x, int y, std::string_view text, Rgb c, int scale = 1);

// ---- PNG -------------------------------------------------------------------------------------
// The image as a PNG file's bytes (8-bit RGB, no interlacing). Errc::internal when libpng fails.
std::vector<uint8_t> encode_png(const Image& image);
// Writes encode_png(image) to <path>.tmp, then renames it to <path>, so a reader never sees a
// half-written figure. Errc::io naming the path when it cannot be written or renamed.
void write_png(const Image& image, const std::string& path);

}  // namespace engram
