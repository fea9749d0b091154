// See plot/png.h. A small raster (anti-aliased lines and discs), the hand-drawn 5x7 font, and
// PNG encoding through libpng into memory.
#include "plot/png.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <iterator>

#include "engram/error.h"
#include "util/read_file.h"

namespace engram {

Image::Image(int width, int height, Rgb background) : width_(width), height_(height) {
  if (width < 1 || height < 1 || width > kMaxSide || height > kMaxSide)
    fail(Errc::invalid_argument, "image size ", width, "x", height, " is outside 1..", kMaxSide);
  pixels_.resize(size_t(width) * size_t(height) * 3);
  for (size_t i = 0; i < pixels_.size(); i += 3) {
    pixels_[i] = background.r;
    pixels_[i + 1] = background.g;
    pixels_[i + 2] = background.b;
  }
}

Rgb Image::at(int x, int y) const {
  if (x < 0 || y < 0 || x >= width_ || y >= height_)
    fail(Errc::out_of_range, "pixel (", x, ", ", y, ") is outside the ", width_, "x", height_,
         " image");
  const uint8_t* p = pixels_.data() + (size_t(y) * size_t(width_) + size_t(x)) * 3;
  return {p[0], p[1], p[2]};
}

void Image::blend(int x, int y, Rgb c, float alpha) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_ || !(alpha > 0.0f)) return;
  const float a = std::min(alpha, 1.0f);
  uint8_t* p = pixels_.data() + (size_t(y) * size_t(width_) + size_t(x)) * 3;
  const auto mix = [a](uint8_t dst, uint8_t src) {
    return uint8_t(std::lround(float(dst) + (float(src) - float(dst)) * a));
  };
  p[0] = mix(p[0], c.r);
  p[1] = mix(p[1], c.g);
  p[2] = mix(p[2], c.b);
}

void Image::fill_rect(int x0, int y0, int x1, int y1, Rgb c) {
  x0 = std::max(x0, 0);
  y0 = std::max(y0, 0);
  x1 = std::min(x1, width_);
  y1 = std::min(y1, height_);
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) blend(x, y, c, 1.0f);
}

namespace {

// Distance from point p to the segment a-b.
double segment_distance(double px, double py, double ax, double ay, double bx, double by) {
  const double dx = bx - ax, dy = by - ay;
  const double len2 = dx * dx + dy * dy;
  double t = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0.0;
  t = std::clamp(t, 0.0, 1.0);
  const double ex = ax + t * dx - px, ey = ay + t * dy - py;
  return std::sqrt(ex * ex + ey * ey);
}

// Coverage of a pixel whose centre lies at distance d from a shape's core of half-width h: a
// one-pixel linear ramp across the edge.
float coverage(double d, double h) {
  return float(std::clamp(h + 0.5 - d, 0.0, 1.0));
}

// floor(v) clamped to [0, n - 1] before the conversion, so a far-off coordinate neither overflows
// int nor makes a loop walk pixels outside the image.
int clamp_to_pixel(double v, int n) {
  return int(std::clamp(std::floor(v), 0.0, double(n - 1)));
}

}  // namespace

void Image::draw_line(double x0, double y0, double x1, double y1, double width, Rgb c,
                      float alpha) {
  if (!std::isfinite(x0) || !std::isfinite(y0) || !std::isfinite(x1) || !std::isfinite(y1)) return;
  const double h = std::max(width, 0.0) / 2;
  const double pad = h + 1;
  const int xa = clamp_to_pixel(std::min(x0, x1) - pad, width_);
  const int xb = clamp_to_pixel(std::max(x0, x1) + pad, width_);
  const int ya = clamp_to_pixel(std::min(y0, y1) - pad, height_);
  const int yb = clamp_to_pixel(std::max(y0, y1) + pad, height_);
  for (int y = ya; y <= yb; y++)
    for (int x = xa; x <= xb; x++) {
      const float cov = coverage(segment_distance(x + 0.5, y + 0.5, x0, y0, x1, y1), h);
      if (cov > 0) blend(x, y, c, alpha * cov);
    }
}

void Image::fill_circle(double cx, double cy, double radius, Rgb c, float alpha) {
  if (!std::isfinite(cx) || !std::isfinite(cy) || !std::isfinite(radius) || !(radius > 0)) return;
  const int xa = clamp_to_pixel(cx - radius - 1, width_);
  const int xb = clamp_to_pixel(cx + radius + 1, width_);
  const int ya = clamp_to_pixel(cy - radius - 1, height_);
  const int yb = clamp_to_pixel(cy + radius + 1, height_);
  for (int y = ya; y <= yb; y++)
    for (int x = xa; x <= xb; x++) {
      const double d = std::hypot(x + 0.5 - cx, y + 0.5 - cy);
      const float cov = coverage(d, radius - 0.5);
      if (cov > 0) blend(x, y, c, alpha * cov);
    }
}

// ---- font ------------------------------------------------------------------------------------

namespace {

constexpr int kGlyphsPerBlock = 12;
constexpr int kFirstGlyph = 0x20;
constexpr int kLastGlyph = 0x7e;

// Printable ASCII 0x20..0x7e as 5x7 bitmaps, 12 glyphs per block in code order, glyphs separated
// by one space; '#' is ink. Drawn by hand for this project.
constexpr std::string_view kFontSheet[] = {
    // ' '   '!'   '"'   '#'   '$'   '%'   '&'   "'"   '('   ')'   '*'   '+'
    "..... ..#.. .#.#. .#.#. ..#.. ##... .##.. ..#.. ...#. .#... ..... .....",
    "..... ..#.. .#.#. .#.#. .#### ##..# #..#. ..#.. ..#.. ..#.. ..#.. ..#..",
    "..... ..#.. ..... ##### #.#.. ...#. #.#.. .#... .#... ...#. #.#.# ..#..",
    "..... ..#.. ..... .#.#. .###. ..#.. .#... ..... .#... ...#. .###. #####",
    "..... ..#.. ..... ##### ..#.# .#... #.#.# ..... .#... ...#. #.#.# ..#..",
    "..... ..... ..... .#.#. ####. #..## #..#. ..... ..#.. ..#.. ..#.. ..#..",
    "..... ..#.. ..... .#.#. ..#.. ...## .##.# ..... ...#. .#... ..... .....",
    // ','   '-'   '.'   '/'   '0'   '1'   '2'   '3'   '4'   '5'   '6'   '7'
    "..... ..... ..... ..... .###. ..#.. .###. ##### ...#. ##### ..##. #####",
    "..... ..... ..... ....# #...# .##.. #...# ...#. ..##. #.... .#... ....#",
    "..... ..... ..... ...#. #..## ..#.. ....# ..#.. .#.#. ####. #.... ...#.",
    "..... ##### ..... ..#.. #.#.# ..#.. ...#. ...#. #..#. ....# ####. ..#..",
    ".##.. ..... ..... .#... ##..# ..#.. ..#.. ....# ##### ....# #...# .#...",
    "..#.. ..... .##.. #.... #...# ..#.. .#... #...# ...#. #...# #...# .#...",
    ".#... ..... .##.. ..... .###. .###. ##### .###. ...#. .###. .###. .#...",
    // '8'   '9'   ':'   ';'   '<'   '='   '>'   '?'   '@'   'A'   'B'   'C'
    ".###. .###. ..... ..... ...#. ..... .#... .###. .###. .###. ####. .###.",
    "#...# #...# .##.. .##.. ..#.. ..... ..#.. #...# #...# #...# #...# #...#",
    "#...# #...# .##.. .##.. .#... ##### ...#. ....# ....# #...# #...# #....",
    ".###. .#### ..... ..... #.... ..... ....# ...#. .##.# ##### ####. #....",
    "#...# ....# .##.. .##.. .#... ##### ...#. ..#.. #.#.# #...# #...# #....",
    "#...# ...#. .##.. ..#.. ..#.. ..... ..#.. ..... #.#.# #...# #...# #...#",
    ".###. .##.. ..... .#... ...#. ..... .#... ..#.. .###. #...# ####. .###.",
    // 'D'   'E'   'F'   'G'   'H'   'I'   'J'   'K'   'L'   'M'   'N'   'O'
    "###.. ##### ##### .###. #...# .###. ..### #...# #.... #...# #...# .###.",
    "#..#. #.... #.... #...# #...# ..#.. ...#. #..#. #.... ##.## #...# #...#",
    "#...# #.... #.... #.... #...# ..#.. ...#. #.#.. #.... #.#.# ##..# #...#",
    "#...# ####. ####. #.### ##### ..#.. ...#. ##... #.... #.#.# #.#.# #...#",
    "#...# #.... #.... #...# #...# ..#.. ...#. #.#.. #.... #...# #..## #...#",
    "#..#. #.... #.... #...# #...# ..#.. #..#. #..#. #.... #...# #...# #...#",
    "###.. ##### #.... .#### #...# .###. .##.. #...# ##### #...# #...# .###.",
    // 'P'   'Q'   'R'   'S'   'T'   'U'   'V'   'W'   'X'   'Y'   'Z'   '['
    "####. .###. ####. .#### ##### #...# #...# #...# #...# #...# ##### .###.",
    "#...# #...# #...# #.... ..#.. #...# #...# #...# #...# #...# ....# .#...",
    "#...# #...# #...# #.... ..#.. #...# #...# #...# .#.#. .#.#. ...#. .#...",
    "####. #...# ####. .###. ..#.. #...# #...# #.#.# ..#.. ..#.. ..#.. .#...",
    "#.... #.#.# #.#.. ....# ..#.. #...# #...# #.#.# .#.#. ..#.. .#... .#...",
    "#.... #..#. #..#. ....# ..#.. #...# .#.#. #.#.# #...# ..#.. #.... .#...",
    "#.... .##.# #...# ####. ..#.. .###. ..#.. .#.#. #...# ..#.. ##### .###.",
    // '\\'  ']'   '^'   '_'   '`'   'a'   'b'   'c'   'd'   'e'   'f'   'g'
    "..... .###. ..#.. ..... .#... ..... #.... ..... ....# ..... ..##. .....",
    "#.... ...#. .#.#. ..... ..#.. ..... #.... ..... ....# ..... .#..# .....",
    ".#... ...#. #...# ..... ...#. .###. #.##. .###. .##.# .###. .#... .####",
    "..#.. ...#. ..... ..... ..... ....# ##..# #.... #..## #...# ###.. #...#",
    "...#. ...#. ..... ..... ..... .#### #...# #.... #...# ##### .#... .####",
    "....# ...#. ..... ..... ..... #...# #...# #...# #...# #.... .#... ....#",
    "..... .###. ..... ##### ..... .#### ####. .###. .#### .###. .#... .###.",
    // 'h'   'i'   'j'   'k'   'l'   'm'   'n'   'o'   'p'   'q'   'r'   's'
    "#.... ..#.. ...#. #.... .##.. ..... ..... ..... ..... ..... ..... .....",
    "#.... ..... ..... #.... ..#.. ..... ..... ..... ..... ..... ..... .....",
    "#.##. .##.. ..##. #..#. ..#.. ##.#. #.##. .###. ####. .##.# #.##. .###.",
    "##..# ..#.. ...#. #.#.. ..#.. #.#.# ##..# #...# #...# #..## ##..# #....",
    "#...# ..#.. ...#. ##... ..#.. #.#.# #...# #...# ####. .#### #.... .###.",
    "#...# ..#.. #..#. #.#.. ..#.. #...# #...# #...# #.... ....# #.... ....#",
    "#...# .###. .##.. #..#. .###. #...# #...# .###. #.... ....# #.... ####.",
    // 't'   'u'   'v'   'w'   'x'   'y'   'z'   '{'   '|'   '}'   '~'
    ".#... ..... ..... ..... ..... ..... ..... ...#. ..#.. .#... .....",
    ".#... ..... ..... ..... ..... ..... ..... ..#.. ..#.. ..#.. .....",
    "###.. #...# #...# #...# #...# #...# ##### ..#.. ..#.. ..#.. .#...",
    ".#... #...# #...# #...# .#.#. #...# ...#. .#... ..#.. ...#. #.#.#",
    ".#... #...# #...# #.#.# ..#.. .#### ..#.. ..#.. ..#.. ..#.. ...#.",
    ".#..# #..## .#.#. #.#.# .#.#. ....# .#... ..#.. ..#.. ..#.. .....",
    "..##. .##.# ..#.. .#.#. #...# .###. ##### ...#. ..#.. .#... .....",
};
static_assert(std::size(kFontSheet) ==
              size_t((kLastGlyph - kFirstGlyph) / kGlyphsPerBlock + 1) * kGlyphHeight);

// Row `row` of the glyph for byte ch as 5 bits, bit 4 the leftmost pixel.
uint8_t glyph_row(unsigned char ch, int row) {
  const int code = ch >= kFirstGlyph && ch <= kLastGlyph ? ch : '?';
  const int i = code - kFirstGlyph;
  const std::string_view line = kFontSheet[(i / kGlyphsPerBlock) * kGlyphHeight + row];
  const std::string_view cells =
      line.substr(size_t(i % kGlyphsPerBlock) * (kGlyphWidth + 1), kGlyphWidth);
  uint8_t bits = 0;
  for (const char cell : cells) bits = uint8_t(bits << 1 | (cell == '#' ? 1 : 0));
  return bits;
}

// Draws glyph ch with its unrotated pixel (gx, gy) mapped through `place`.
template <typename Place>
void draw_glyph(unsigned char ch, int scale, Place place) {
  for (int gy = 0; gy < kGlyphHeight; gy++) {
    const uint8_t bits = glyph_row(ch, gy);
    for (int gx = 0; gx < kGlyphWidth; gx++) {
      if (!(bits >> (kGlyphWidth - 1 - gx) & 1)) continue;
      for (int sy = 0; sy < scale; sy++)
        for (int sx = 0; sx < scale; sx++) place(gx * scale + sx, gy * scale + sy);
    }
  }
}

}  // namespace

int text_width(std::string_view text, int scale) {
  if (text.empty()) return 0;
  return (int(text.size()) * (kGlyphWidth + 1) - 1) * std::max(scale, 1);
}

void draw_text(Image& image, int x, int y, std::string_view text, Rgb c, int scale) {
  scale = std::max(scale, 1);
  for (size_t i = 0; i < text.size(); i++) {
    const int ox = x + int(i) * (kGlyphWidth + 1) * scale;
    draw_glyph(static_cast<unsigned char>(text[i]), scale,
               [&](int px, int py) { image.blend(ox + px, y + py, c, 1.0f); });
  }
}

void draw_text_up(Image& image, int x, int y, std::string_view text, Rgb c, int scale) {
  scale = std::max(scale, 1);
  // Unrotated pixel (px, py) of the run goes to (x + py, y - 1 - px).
  for (size_t i = 0; i < text.size(); i++) {
    const int ox = int(i) * (kGlyphWidth + 1) * scale;
    draw_glyph(static_cast<unsigned char>(text[i]), scale,
               [&](int px, int py) { image.blend(x + py, y - 1 - (ox + px), c, 1.0f); });
  }
}

// ---- PNG -------------------------------------------------------------------------------------

namespace {

// libpng reports errors by calling an error function that must not return; it longjmps back to
// the setjmp in encode_rows. That function holds no object with a destructor (a longjmp would
// skip it), and the C++ exception is thrown only after control is back in ordinary code.
struct PngSink {
  std::vector<uint8_t>* out = nullptr;
  char message[256] = {};
  std::jmp_buf jump;
};

void png_on_error(png_structp png, png_const_charp msg) {
  auto* sink = static_cast<PngSink*>(png_get_error_ptr(png));
  std::snprintf(sink->message, sizeof sink->message, "%s", msg ? msg : "unknown error");
  std::longjmp(sink->jump, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

void png_on_write(png_structp png, png_bytep data, size_t length) {
  auto* sink = static_cast<PngSink*>(png_get_io_ptr(png));
  try {
    sink->out->insert(sink->out->end(), data, data + length);
  } catch (const std::bad_alloc&) {
    png_error(png, "out of memory");
  }
}

void png_on_flush(png_structp) {}

// Returns false (message in sink->message) when libpng failed.
bool encode_rows(PngSink* sink, png_structp png, png_infop info, int width, int height,
                 png_bytepp rows) {
  if (setjmp(sink->jump)) return false;
  png_set_write_fn(png, sink, png_on_write, png_on_flush);
  png_set_IHDR(png, info, png_uint_32(width), png_uint_32(height), 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return true;
}

}  // namespace

std::vector<uint8_t> encode_png(const Image& image) {
  std::vector<uint8_t> out;
  std::vector<png_bytep> rows(size_t(image.height()));
  for (int y = 0; y < image.height(); y++)
    rows[size_t(y)] = const_cast<png_bytep>(image.pixels().data()) + size_t(y) * image.width() * 3;
  PngSink sink;
  sink.out = &out;
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, png_on_error, png_on_warning);
  if (!png) fail(Errc::internal, "libpng: cannot create a write struct");
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    fail(Errc::internal, "libpng: cannot create an info struct");
  }
  const bool ok = encode_rows(&sink, png, info, image.width(), image.height(), rows.data());
  png_destroy_write_struct(&png, &info);
  if (!ok) fail(Errc::internal, "libpng: ", sink.message);
  return out;
}

void write_png(const Image& image, const std::string& path) {
  const std::vector<uint8_t> bytes = encode_png(image);
  write_file_atomic(path, {reinterpret_cast<const char*>(bytes.data()), bytes.size()});
}

}  // namespace engram
