// png_test.cpp: the raster (blending, lines, discs), the hand-drawn font, and PNG encoding checked
// by decoding with libpng's own reader (pixels must come back bit for bit).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <png.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "data/test_files.h"
#include "engram/error.h"
#include "plot/png.h"
#include "test_helpers.h"

namespace engram {
namespace {

using engram::testing::error_of;
using ::testing::HasSubstr;

constexpr Rgb kWhite{255, 255, 255};
constexpr Rgb kBlack{0, 0, 0};

// The glyph of byte c as drawn at scale 1: 7 strings of 5 '#' / '.' cells.
std::vector<std::string> glyph_cells(char c) {
  Image img(kGlyphWidth, kGlyphHeight, kWhite);
  draw_text(img, 0, 0, std::string(1, c), kBlack);
  std::vector<std::string> rows;
  for (int y = 0; y < kGlyphHeight; y++) {
    std::string r;
    for (int x = 0; x < kGlyphWidth; x++) r += img.at(x, y) == kBlack ? '#' : '.';
    rows.push_back(r);
  }
  return rows;
}

TEST(Image, SizeAndPixelAccessAreChecked) {
  Errc code{};
  EXPECT_THAT(error_of([] { Image(0, 5, kWhite); }, &code), HasSubstr("0x5"));
  EXPECT_EQ(code, Errc::invalid_argument);
  EXPECT_THAT(error_of([] { Image(Image::kMaxSide + 1, 1, kWhite); }), HasSubstr("outside"));
  const Image img(3, 2, Rgb{1, 2, 3});
  EXPECT_EQ(img.at(2, 1), (Rgb{1, 2, 3}));
  EXPECT_EQ(img.pixels().size(), 3u * 2u * 3u);
  EXPECT_THAT(error_of([&] { img.at(3, 0); }, &code), HasSubstr("pixel (3, 0)"));
  EXPECT_EQ(code, Errc::out_of_range);
}

TEST(Image, BlendMixesAndClips) {
  Image img(4, 4, kWhite);
  img.blend(1, 1, kBlack, 1.0f);
  EXPECT_EQ(img.at(1, 1), kBlack);
  img.blend(2, 2, kBlack, 0.5f);
  EXPECT_EQ(img.at(2, 2), (Rgb{128, 128, 128}));  // 255 - 127.5, rounded half away from zero
  img.blend(3, 3, kBlack, 7.0f);                  // clamped to 1
  EXPECT_EQ(img.at(3, 3), kBlack);
  img.blend(0, 0, kBlack, 0.0f);
  img.blend(-1, 0, kBlack, 1.0f);  // outside: ignored
  img.blend(0, 4, kBlack, 1.0f);
  EXPECT_EQ(img.at(0, 0), kWhite);
  img.fill_rect(-5, -5, 2, 1, Rgb{9, 9, 9});
  EXPECT_EQ(img.at(1, 0), (Rgb{9, 9, 9}));
  EXPECT_EQ(img.at(2, 0), kWhite);
  EXPECT_EQ(img.at(0, 1), kWhite);
}

TEST(Image, LinesCoverTheirWidthWithSoftEdges) {
  Image img(40, 20, kWhite);
  // Horizontal, 3 px wide, on y = 10 (a pixel boundary): it covers y in [8.5, 11.5], so the
  // centres of rows 9 and 10 are inside, those of rows 8 and 11 exactly on the edge (half
  // coverage), rows 7 and 12 outside.
  img.draw_line(5, 10, 35, 10, 3.0, kBlack);
  EXPECT_EQ(img.at(20, 9), kBlack);
  EXPECT_EQ(img.at(20, 10), kBlack);
  EXPECT_EQ(img.at(20, 8), (Rgb{128, 128, 128}));
  EXPECT_EQ(img.at(20, 11), (Rgb{128, 128, 128}));
  EXPECT_EQ(img.at(20, 7), kWhite);
  EXPECT_EQ(img.at(20, 12), kWhite);
  EXPECT_EQ(img.at(1, 10), kWhite);  // beyond the round end (radius 1.5 around x = 5)
  Image soft(40, 20, kWhite);
  soft.draw_line(5, 10.0, 35, 10.0, 2.0, kBlack);  // y in [9, 11]: rows 9 and 10 full
  EXPECT_EQ(soft.at(20, 10), kBlack);
  EXPECT_EQ(soft.at(20, 9), kBlack);
  EXPECT_EQ(soft.at(20, 11), kWhite);
  soft.draw_line(5, 3.0, 35, 3.0, 1.0, kBlack);  // y in [2.5, 3.5]: rows 2 and 3 half covered
  EXPECT_EQ(soft.at(20, 2), (Rgb{128, 128, 128}));
  EXPECT_EQ(soft.at(20, 3), (Rgb{128, 128, 128}));
  // Non-finite ends draw nothing.
  Image none(8, 8, kWhite);
  none.draw_line(0, 0, std::nan(""), 4, 2.0, kBlack);
  // Far-off coordinates are clipped without overflowing the pixel loops.
  none.draw_line(-1e30, 1e30, -2e30, 3e30, 2.0, kBlack);
  none.fill_circle(1e300, 1e300, 1e300, kBlack);
  EXPECT_EQ(none.pixels(), Image(8, 8, kWhite).pixels());
}

TEST(Image, DiscIsFilledInsideAndEmptyOutside) {
  Image img(30, 30, kWhite);
  img.fill_circle(15, 15, 5, kBlack);
  EXPECT_EQ(img.at(14, 14), kBlack);
  EXPECT_EQ(img.at(15, 11), kBlack);  // centre (15.5, 11.5) is 3.5 from the centre
  EXPECT_EQ(img.at(15, 21), kWhite);  // centre 6.5 away
  EXPECT_EQ(img.at(20, 20), kWhite);  // corner of the box, 7.8 away
}

TEST(Font, GlyphsAreDrawnAsDesigned) {
  EXPECT_THAT(glyph_cells('1'), ::testing::ElementsAre("..#..", ".##..", "..#..", "..#..", "..#..",
                                                       "..#..", ".###."));
  EXPECT_THAT(glyph_cells('E'), ::testing::ElementsAre("#####", "#....", "#....", "####.", "#....",
                                                       "#....", "#####"));
  EXPECT_THAT(glyph_cells(' '), ::testing::Each("....."));
  // Every printable glyph but the space has ink, and no two glyphs are the same: a misaligned
  // font sheet would break both.
  std::set<std::vector<std::string>> seen;
  for (int c = 0x21; c <= 0x7e; c++) {
    const auto cells = glyph_cells(char(c));
    EXPECT_NE(cells, std::vector<std::string>(kGlyphHeight, ".....")) << char(c);
    EXPECT_TRUE(seen.insert(cells).second) << "glyph '" << char(c) << "' repeats another";
  }
  // Bytes outside printable ASCII (here the two bytes of "é") draw as '?'.
  EXPECT_EQ(glyph_cells('\x01'), glyph_cells('?'));
  EXPECT_EQ(glyph_cells('\xc3'), glyph_cells('?'));
}

TEST(Font, ScaleAdvanceAndRotation) {
  EXPECT_EQ(text_width("", 2), 0);
  EXPECT_EQ(text_width("ab", 1), 11);
  EXPECT_EQ(text_width("ab", 3), 33);
  // Scale 2 doubles every cell.
  Image big(10, 14, kWhite);
  draw_text(big, 0, 0, "T", kBlack, 2);
  EXPECT_EQ(big.at(0, 0), kBlack);
  EXPECT_EQ(big.at(9, 1), kBlack);
  EXPECT_EQ(big.at(0, 2), kWhite);
  EXPECT_EQ(big.at(4, 13), kBlack);
  // Up-text: unrotated pixel (px, py) lands at (x + py, y - 1 - px).
  Image flat(11, 7, kWhite), up(7, 11, kWhite);
  draw_text(flat, 0, 0, "Lg", kBlack);
  draw_text_up(up, 0, 11, "Lg", kBlack);
  for (int py = 0; py < 7; py++)
    for (int px = 0; px < 11; px++) EXPECT_EQ(flat.at(px, py), up.at(py, 10 - px)) << px << py;
}

// Decodes PNG bytes with libpng's simplified reader into 8-bit RGB.
std::vector<uint8_t> decode_rgb(const std::vector<uint8_t>& bytes, int* w, int* h) {
  png_image im{};
  im.version = PNG_IMAGE_VERSION;
  EXPECT_TRUE(png_image_begin_read_from_memory(&im, bytes.data(), bytes.size())) << im.message;
  im.format = PNG_FORMAT_RGB;
  std::vector<uint8_t> out(PNG_IMAGE_SIZE(im));
  EXPECT_TRUE(png_image_finish_read(&im, nullptr, out.data(), 0, nullptr)) << im.message;
  *w = int(im.width);
  *h = int(im.height);
  png_image_free(&im);
  return out;
}

TEST(Png, DecodesToTheSamePixels) {
  Image img(37, 23, Rgb{10, 200, 30});
  for (int y = 0; y < img.height(); y++)
    for (int x = 0; x < img.width(); x++)
      img.blend(x, y, Rgb{uint8_t(x * 7), uint8_t(y * 11), uint8_t(x ^ y)}, float(x % 5) / 4);
  img.draw_line(0, 0, 36, 22, 2.5, Rgb{1, 2, 3});
  draw_text(img, 2, 2, "Loss 4.5", kBlack);
  const std::vector<uint8_t> png = encode_png(img);
  const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  ASSERT_GT(png.size(), 33u);
  EXPECT_TRUE(std::equal(signature, signature + 8, png.begin()));
  int w = 0, h = 0;
  EXPECT_EQ(decode_rgb(png, &w, &h), img.pixels());
  EXPECT_EQ(w, 37);
  EXPECT_EQ(h, 23);
}

TEST(Png, WriteIsAtomicAndErrorsNameThePath) {
  const engram::test::TempDir dir;
  const std::string path = dir.path("a.png");
  Image img(5, 4, kBlack);
  write_png(img, path);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  std::ifstream f(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), {});
  int w = 0, h = 0;
  EXPECT_EQ(decode_rgb(bytes, &w, &h), img.pixels());
  Errc code{};
  const std::string bad = dir.path("missing/b.png");
  EXPECT_THAT(error_of([&] { write_png(img, bad); }, &code), HasSubstr(bad));
  EXPECT_EQ(code, Errc::io);
}

}  // namespace
}  // namespace engram
