// token_file.cpp: the binary token file (format in engram/token_file.h): header parsing, a
// streaming writer, a memory-mapped reader, and seeded training / sequential evaluation windows.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "engram/error.h"
#include "engram/token_file.h"
#include "engram/tokenizer.h"
#include "util/read_file.h"

namespace engram {

static_assert(std::endian::native == std::endian::little,
              "token files are read and written as little-endian");

namespace {

constexpr char kMagic[8] = {'E', 'N', 'G', 'R', 'A', 'M', 'T', 'K'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kVersionWithTokenizer = 2;
constexpr size_t kWriteBufferBytes = size_t{1} << 20;

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
template <typename T>
void store(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

std::array<uint8_t, kTokenFileHeaderBytes> encode_header(const TokenFileHeader& h) {
  std::array<uint8_t, kTokenFileHeaderBytes> b{};
  std::memcpy(b.data(), kMagic, 8);
  store<uint32_t>(b.data() + 8, h.version);
  store<uint32_t>(b.data() + 12, h.bytes_per_token);
  store<uint64_t>(b.data() + 16, h.token_count);
  store<uint32_t>(b.data() + 24, h.vocab_size);
  store<uint32_t>(b.data() + 28, h.separator_id);
  store<uint64_t>(b.data() + 32, h.checksum);
  store<uint64_t>(b.data() + 40, h.tokenizer_digest);
  return b;
}

std::string errno_text() {
  return std::strerror(errno);
}

}  // namespace

uint64_t fnv1a64(std::span<const uint8_t> bytes, uint64_t state) {
  for (const uint8_t b : bytes) {
    state ^= b;
    state *= 0x100000001b3ull;
  }
  return state;
}

TokenFileHeader parse_token_file_header(std::span<const uint8_t> bytes, const std::string& origin,
                                        std::optional<uint64_t> file_size) {
  if (bytes.size() < kTokenFileHeaderBytes) {
    fail(Errc::parse, origin, ": truncated token file: ", bytes.size(), " bytes, the header needs ",
         kTokenFileHeaderBytes);
  }
  const uint8_t* p = bytes.data();
  if (std::memcmp(p, kMagic, 8) != 0)
    fail(Errc::parse, origin, ": not a token file (magic at byte 0 is not \"ENGRAMTK\")");
  TokenFileHeader h;
  h.version = load<uint32_t>(p + 8);
  h.bytes_per_token = load<uint32_t>(p + 12);
  h.token_count = load<uint64_t>(p + 16);
  h.vocab_size = load<uint32_t>(p + 24);
  h.separator_id = load<uint32_t>(p + 28);
  h.checksum = load<uint64_t>(p + 32);
  if (h.version != kVersion && h.version != kVersionWithTokenizer) {
    fail(Errc::parse, origin, ": token file version ", h.version, " (byte 8) is neither ", kVersion,
         " nor ", kVersionWithTokenizer);
  }
  if (h.version == kVersionWithTokenizer) {
    h.tokenizer_digest = load<uint64_t>(p + 40);
    if (h.tokenizer_digest == 0) {
      fail(Errc::parse, origin, ": version 2 token file without a tokenizer digest (byte 40)");
    }
  }
  if (h.bytes_per_token != 2 && h.bytes_per_token != 4) {
    fail(Errc::parse, origin, ": bytes per token ", h.bytes_per_token,
         " (byte 12) is neither 2 nor 4");
  }
  if (h.vocab_size == 0) fail(Errc::parse, origin, ": vocab size (byte 24) is 0");
  if (h.bytes_per_token == 2 && h.vocab_size > 65536) {
    fail(Errc::parse, origin, ": vocab size ", h.vocab_size, " (byte 24) does not fit 2-byte ids");
  }
  if (h.separator_id >= h.vocab_size) {
    fail(Errc::parse, origin, ": separator id ", h.separator_id,
         " (byte 28) is not below vocab size ", h.vocab_size);
  }
  for (size_t i = h.version == kVersion ? 40 : 48; i < kTokenFileHeaderBytes; ++i) {
    if (p[i] != 0) fail(Errc::parse, origin, ": reserved header byte ", i, " is not zero");
  }
  if (h.token_count > (UINT64_MAX - kTokenFileHeaderBytes) / h.bytes_per_token) {
    fail(Errc::parse, origin, ": token count ", h.token_count, " (byte 16) is impossibly large");
  }
  if (file_size) {
    const uint64_t want = kTokenFileHeaderBytes + h.token_count * h.bytes_per_token;
    if (*file_size != want) {
      fail(Errc::parse, origin, ": ", *file_size < want ? "truncated" : "oversized",
           " token file: the header announces ", h.token_count, " tokens (", want,
           " bytes) but the file has ", *file_size, " bytes");
    }
  }
  return h;
}

void check_token_payload(const TokenFileHeader& h, std::span<const uint8_t> payload,
                         const std::string& origin) {
  const uint64_t n = h.token_count;
  if (payload.size() / h.bytes_per_token != n || payload.size() % h.bytes_per_token != 0) {
    fail(Errc::parse, origin, ": payload has ", payload.size(), " bytes, the header announces ", n,
         " tokens of ", h.bytes_per_token, " bytes");
  }
  const uint64_t sum = fnv1a64(payload);
  if (sum != h.checksum) {
    fail(Errc::parse, origin, ": checksum mismatch: the header (byte 32) says ", h.checksum,
         ", the payload gives ", sum);
  }
  for (uint64_t i = 0; i < n; ++i) {
    const uint32_t id = h.bytes_per_token == 2 ? load<uint16_t>(payload.data() + 2 * i)
                                               : load<uint32_t>(payload.data() + 4 * i);
    if (id >= h.vocab_size) {
      fail(Errc::out_of_range, origin, ": token ", i, " (byte offset ",
           kTokenFileHeaderBytes + i * h.bytes_per_token, ") has id ", id,
           ", not below vocab size ", h.vocab_size);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Writer

TokenFileWriter::TokenFileWriter(std::string path, uint32_t vocab_size, uint32_t separator_id)
    : path_(std::move(path)), tmp_path_(path_ + ".tmp") {
  if (vocab_size == 0) fail(Errc::invalid_argument, path_, ": vocab size must be positive");
  if (separator_id >= vocab_size) {
    fail(Errc::invalid_argument, path_, ": separator id ", separator_id,
         " is not below vocab size ", vocab_size);
  }
  header_.vocab_size = vocab_size;
  header_.separator_id = separator_id;
  header_.bytes_per_token = vocab_size <= 65536 ? 2 : 4;
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(Errc::io, tmp_path_, ": cannot create: ", errno_text());
  buffer_.reserve(kWriteBufferBytes);
  // A zero header until finish(): a file left behind by a crash never has the magic.
  const std::array<uint8_t, kTokenFileHeaderBytes> zero{};
  if (::write(fd_, zero.data(), zero.size()) != static_cast<ssize_t>(zero.size())) {
    fail(Errc::io, tmp_path_, ": write failed: ", errno_text());
  }
}

TokenFileWriter::~TokenFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_) ::unlink(tmp_path_.c_str());
}

void TokenFileWriter::append(std::span<const int32_t> ids) {
  const uint32_t V = header_.vocab_size;
  const size_t bpt = header_.bytes_per_token;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0 || static_cast<uint32_t>(id) >= V) {
      fail(Errc::out_of_range, path_, ": token ", count_ + i, " has id ", id, ", outside [0, ", V,
           ")");
    }
  }
  size_t done = 0;
  while (done < ids.size()) {
    if (buffer_.size() + bpt > kWriteBufferBytes) flush();
    const size_t take = std::min(ids.size() - done, (kWriteBufferBytes - buffer_.size()) / bpt);
    const size_t at = buffer_.size();
    buffer_.resize(at + take * bpt);
    uint8_t* out = buffer_.data() + at;
    for (size_t i = 0; i < take; ++i) {
      if (bpt == 2) {
        store<uint16_t>(out + 2 * i, static_cast<uint16_t>(ids[done + i]));
      } else {
        store<uint32_t>(out + 4 * i, static_cast<uint32_t>(ids[done + i]));
      }
    }
    done += take;
  }
  count_ += ids.size();
}

void TokenFileWriter::append_separator() {
  const auto id = static_cast<int32_t>(header_.separator_id);
  append(std::span<const int32_t>(&id, 1));
}

void TokenFileWriter::flush() {
  checksum_ = fnv1a64(buffer_, checksum_);
  size_t done = 0;
  while (done < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(Errc::io, tmp_path_, ": write failed: ", errno_text());
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
}

void TokenFileWriter::set_tokenizer_digest(uint64_t digest) {
  if (digest == 0) fail(Errc::invalid_argument, path_, ": a tokenizer digest is never 0");
  header_.tokenizer_digest = digest;
  header_.version = kVersionWithTokenizer;
}

uint64_t tokenizer_digest(const Tokenizer& tokenizer) {
  uint64_t state = kFnvOffsetBasis;
  for (int64_t id = 0; id < tokenizer.vocab_size(); id++) {
    const std::string& t = tokenizer.id_to_token(static_cast<int32_t>(id));
    const uint64_t len = t.size();
    const uint8_t special = tokenizer.is_special(static_cast<int32_t>(id)) ? 1 : 0;
    // The length first, so that token boundaries are part of the digest.
    state = fnv1a64(std::span(reinterpret_cast<const uint8_t*>(&len), sizeof len), state);
    state = fnv1a64(std::span(reinterpret_cast<const uint8_t*>(t.data()), t.size()), state);
    state = fnv1a64(std::span(&special, 1), state);
  }
  return state == 0 ? 1 : state;
}

void check_token_file_tokenizer(const TokenFileHeader& header, const std::string& origin,
                                uint64_t digest, const std::string& tokenizer_origin) {
  if (header.tokenizer_digest == 0 || header.tokenizer_digest == digest) return;
  char a[17], b[17];
  std::snprintf(a, sizeof a, "%016llx", static_cast<unsigned long long>(header.tokenizer_digest));
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(digest));
  fail(Errc::mismatch, origin, ": made with a tokenizer of digest ", a, " but ", tokenizer_origin,
       " has digest ", b, " (same ids would mean other text)");
}

TokenFileHeader TokenFileWriter::finish() {
  if (finished_) fail(Errc::invalid_argument, path_, ": finish() called twice");
  flush();
  header_.token_count = count_;
  header_.checksum = checksum_;
  const auto h = encode_header(header_);
  if (::pwrite(fd_, h.data(), h.size(), 0) != static_cast<ssize_t>(h.size())) {
    fail(Errc::io, tmp_path_, ": cannot write the header: ", errno_text());
  }
  if (::close(fd_) != 0) {
    fd_ = -1;
    fail(Errc::io, tmp_path_, ": close failed: ", errno_text());
  }
  fd_ = -1;
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    fail(Errc::io, "cannot rename ", tmp_path_, " to ", path_, ": ", errno_text());
  }
  finished_ = true;
  return header_;
}

// ---------------------------------------------------------------------------------------------
// Reader

struct TokenFile::Impl {
  std::string path;
  int fd = -1;
  void* map = nullptr;
  size_t map_bytes = 0;
  TokenFileHeader header;
  const uint8_t* payload = nullptr;

  ~Impl() {
    if (map != nullptr) ::munmap(map, map_bytes);
    if (fd >= 0) ::close(fd);
  }
  uint32_t at(uint64_t i) const {
    return header.bytes_per_token == 2 ? load<uint16_t>(payload + 2 * i)
                                       : load<uint32_t>(payload + 4 * i);
  }
};

TokenFile::TokenFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TokenFile::TokenFile(TokenFile&&) noexcept = default;
TokenFile& TokenFile::operator=(TokenFile&&) noexcept = default;
TokenFile::~TokenFile() = default;

TokenFile TokenFile::open(const std::string& path, bool verify_payload) {
  auto m = std::make_unique<Impl>();
  m->path = path;
  uint64_t regular_size = 0;  // a FIFO or device as a token file is refused, never read
  m->fd = open_regular_file(path, &regular_size);
  struct stat st {};
  if (::fstat(m->fd, &st) != 0) fail(Errc::io, path, ": cannot stat: ", errno_text());
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < kTokenFileHeaderBytes) {
    std::vector<uint8_t> head(size);
    if (size > 0 && ::pread(m->fd, head.data(), size, 0) != static_cast<ssize_t>(size)) {
      fail(Errc::io, path, ": read failed: ", errno_text());
    }
    parse_token_file_header(head, path, size);  // throws: truncated
  }
  m->map_bytes = size;
  m->map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, m->fd, 0);
  if (m->map == MAP_FAILED) {
    m->map = nullptr;
    fail(Errc::io, path, ": cannot map: ", errno_text());
  }
  const auto* bytes = static_cast<const uint8_t*>(m->map);
  m->header =
      parse_token_file_header(std::span<const uint8_t>(bytes, kTokenFileHeaderBytes), path, size);
  m->payload = bytes + kTokenFileHeaderBytes;
  if (verify_payload) {
    check_token_payload(m->header,
                        std::span<const uint8_t>(m->payload, size - kTokenFileHeaderBytes), path);
  }
  return TokenFile(std::move(m));
}

const TokenFileHeader& TokenFile::header() const {
  return impl_->header;
}

uint32_t TokenFile::token(uint64_t i) const {
  assert(i < size());
  return impl_->at(i);
}

void TokenFile::read(uint64_t start, std::span<int32_t> out) const {
  const uint64_t n = size();
  if (start > n || out.size() > n - start) {
    fail(Errc::out_of_range, impl_->path, ": tokens [", start, ", ", start + out.size(),
         ") are past the end (", n, " tokens)");
  }
  if (impl_->header.bytes_per_token == 2) {
    const uint8_t* p = impl_->payload + 2 * start;
    for (size_t i = 0; i < out.size(); ++i) out[i] = load<uint16_t>(p + 2 * i);
  } else {
    const uint8_t* p = impl_->payload + 4 * start;
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = static_cast<int32_t>(load<uint32_t>(p + 4 * i));
  }
}

uint64_t TokenFile::eval_window_count(int64_t T) const {
  if (T < 1) fail(Errc::invalid_argument, impl_->path, ": window length T = ", T, " must be >= 1");
  return size() == 0 ? 0 : (size() - 1) / static_cast<uint64_t>(T);
}

void TokenFile::eval_windows(uint64_t first, int64_t B, int64_t T, std::span<int32_t> out) const {
  if (B < 1) fail(Errc::invalid_argument, impl_->path, ": batch B = ", B, " must be >= 1");
  const uint64_t count = eval_window_count(T);
  if (first > count || static_cast<uint64_t>(B) > count - first) {
    fail(Errc::out_of_range, impl_->path, ": eval windows [", first, ", ", first + B,
         ") of T = ", T, " are past the last (", count, " windows)");
  }
  const auto row = static_cast<size_t>(T + 1);
  if (out.size() != static_cast<size_t>(B) * row) {
    fail(Errc::invalid_argument, "eval_windows: out holds ", out.size(), " ids, [B, T+1] needs ",
         B * (T + 1));
  }
  for (int64_t b = 0; b < B; ++b)
    read((first + b) * static_cast<uint64_t>(T), out.subspan(b * row, row));
}

// ---------------------------------------------------------------------------------------------
// Sampler

WindowSampler::WindowSampler(const TokenFile& file, int64_t B, int64_t T, uint64_t seed,
                             SamplingOrder order)
    : file_(&file), B_(B), T_(T), state_(seed), order_(order) {
  if (B < 1 || T < 1)
    fail(Errc::invalid_argument, "window sampler: B = ", B, " and T = ", T, " must be >= 1");
  const uint64_t need =
      order == SamplingOrder::epoch ? 2 * static_cast<uint64_t>(T) : static_cast<uint64_t>(T) + 1;
  if (file.size() < need) {
    fail(Errc::invalid_argument, "window sampler: the token file holds ", file.size(), " tokens, ",
         order == SamplingOrder::epoch ? "epoch order needs 2 T = " : "a window needs T + 1 = ",
         need);
  }
  if (order == SamplingOrder::epoch) {
    n_ = (file.size() - static_cast<uint64_t>(T)) / static_cast<uint64_t>(T);
    while ((uint64_t{1} << (2 * half_bits_)) < n_) half_bits_++;
    if (half_bits_ == 0) half_bits_ = 1;  // a 4-value domain: the Feistel needs a bit a half
    start_epoch();
  }
}

uint64_t WindowSampler::next_u64() {  // SplitMix64
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t WindowSampler::bounded(uint64_t n) {
  // Rejects the top partial block of 2^64 so every value in [0, n) is equally likely.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  for (;;) {
    const uint64_t x = next_u64();
    if (x < limit) return x % n;
  }
}

void WindowSampler::start_epoch() {
  phase_ = bounded(static_cast<uint64_t>(T_));
  for (uint64_t& k : keys_) k = next_u64();
  pos_ = 0;
}

// A bijection on [0, 4^half_bits) (balanced Feistel network, round function a keyed 64-bit mix),
// restricted to [0, n) by cycle walking: re-applying it until the value lands below n visits each
// value of [0, n) exactly once as i runs over [0, n). Less than 4 applications on average, since
// the domain is under 4 n.
uint64_t WindowSampler::permute(uint64_t i) const {
  const uint64_t mask = (uint64_t{1} << half_bits_) - 1;
  uint64_t x = i;
  do {
    uint64_t l = x >> half_bits_, r = x & mask;
    for (uint64_t k : keys_) {
      uint64_t f = (r ^ k) * 0xbf58476d1ce4e5b9ull;
      f ^= f >> 31;
      f *= 0x94d049bb133111ebull;
      f ^= f >> 29;
      const uint64_t nl = r;
      r = (l ^ f) & mask;
      l = nl;
    }
    x = (l << half_bits_) | r;
  } while (x >= n_);
  return x;
}

void WindowSampler::next(std::span<int32_t> out) {
  const auto row = static_cast<size_t>(T_ + 1);
  if (out.size() != static_cast<size_t>(B_) * row) {
    fail(Errc::invalid_argument, "window sampler: out holds ", out.size(), " ids, [B, T+1] needs ",
         B_ * (T_ + 1));
  }
  if (order_ == SamplingOrder::random) {
    const uint64_t starts = file_->size() - static_cast<uint64_t>(T_);  // 0 .. size - T - 1
    for (int64_t b = 0; b < B_; ++b) file_->read(bounded(starts), out.subspan(b * row, row));
    return;
  }
  for (int64_t b = 0; b < B_; ++b) {
    if (pos_ == n_) {
      epoch_++;
      start_epoch();
    }
    const uint64_t start = phase_ + permute(pos_++) * static_cast<uint64_t>(T_);
    file_->read(start, out.subspan(b * row, row));
  }
}

}  // namespace engram
