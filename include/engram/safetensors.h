// engram/safetensors.h: safetensors files and multi-shard checkpoints, read in place and written
// atomically; plus the RAII file descriptor and mapping that the rest of engram reads files with.
//
// Format (https://github.com/huggingface/safetensors): 8-byte little-endian header length N,
// N bytes of JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
// {str: str}}, then the data section; offsets are relative to its start (byte 8 + N).
// Opening a file reads and validates only the header; nothing is served before every tensor
// passed: header length vs file size, JSON, known dtype, non-negative shape with
// numel * itemsize == end - begin (overflow checked), begin <= end inside the data section, no
// two tensors overlapping, no duplicate names. Gaps between tensors are tolerated. Errors are
// engram::Error naming the file, the tensor and the byte offset.
// Thread safety: an opened SafetensorsFile is immutable; read*/map may run concurrently (pread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace engram {

// ---- RAII file descriptor and mapping -------------------------------------------------------

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  // open(2) with O_CLOEXEC added; throws Errc::io naming the path and errno text.
  static UniqueFd open(const std::string& path, int flags, int mode = 0644);

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() noexcept;
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

// fstat size of an open file; throws Errc::io naming `what`.
uint64_t file_size(int fd, const std::string& what);
// Reads exactly out.size() bytes at `offset` (retrying short reads and EINTR); a short file or
// an error throws Errc::io naming `what` and the offset.
void pread_full(int fd, std::span<std::byte> out, uint64_t offset, const std::string& what);

// A read-only shared mmap of [offset, offset + length) of a file. The
// mapping starts at the page below `offset`; data() points at byte `offset`. Unmapped on
// destruction. length 0 gives an empty mapping with data() == nullptr.
class Mapping {
 public:
  Mapping() = default;
  static Mapping map_file(int fd, uint64_t offset, uint64_t length, const std::string& what,
                          bool populate = false);
  Mapping(Mapping&& o) noexcept;
  Mapping& operator=(Mapping&& o) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();

  const std::byte* data() const { return data_; }
  uint64_t size() const { return size_; }
  std::span<const std::byte> bytes() const { return {data_, static_cast<size_t>(size_)}; }

 private:
  void* base_ = nullptr;  // page-aligned start given to munmap
  size_t base_len_ = 0;
  const std::byte* data_ = nullptr;
  uint64_t size_ = 0;
};

// ---- Dtypes ---------------------------------------------------------------------------------

enum class Dtype : uint8_t {
  BOOL,
  U8,
  I8,
  F8_E4M3,
  F8_E5M2,
  F8_E8M0,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  I64,
  U64,
  F64,
  C64
};
const char* dtype_name(Dtype d);                              // "F8_E4M3", exactly as in files
std::string shape_string(const std::vector<int64_t>& shape);  // "[3, 4]", for messages
std::optional<Dtype> dtype_from_name(std::string_view s);     // nullopt if unknown
size_t dtype_size(Dtype d);                                   // bytes per element

// ---- Reading --------------------------------------------------------------------------------

struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::U8;
  std::vector<int64_t> shape;  // [] is a scalar (one element)
  uint64_t offset = 0;         // absolute byte offset of the first element in the file
  uint64_t nbytes = 0;         // numel() * dtype_size(dtype)
  int64_t numel() const;
};

// A validated header: what parse_safetensors_header returns and SafetensorsFile holds.
struct SafetensorsHeader {
  uint64_t data_offset = 0;                     // 8 + header length
  std::vector<TensorInfo> tensors;              // sorted by offset
  std::map<std::string, std::string> metadata;  // "__metadata__"
};

// Parses and validates a header. `prefix` holds at least the first 8 bytes of the file and, if
// the header fits, all of it (8 + N bytes); `file_size` is the whole file's size. `origin` names
// the file in messages. Throws Errc::parse (malformed / inconsistent) or Errc::unsupported
// (a dtype engram does not know, e.g. F4). Never reads past prefix.
SafetensorsHeader parse_safetensors_header(std::span<const std::byte> prefix, uint64_t file_size,
                                           const std::string& origin);

class SafetensorsFile {
 public:
  // Opens and validates; reads only the header (Errc::io if unreadable, see parse_... above).
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }  // for io_uring / pread users; owned by this object
  uint64_t file_size() const { return file_size_; }
  uint64_t data_offset() const { return header_.data_offset; }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }  // by offset
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }

  const TensorInfo* find(std::string_view name) const;    // nullptr if absent
  const TensorInfo& tensor(std::string_view name) const;  // Errc::out_of_range if absent

  // Whole tensor into out (out.size() must equal nbytes) / byte range [begin, begin + out.size())
  // of a tensor; a range past its end throws Errc::out_of_range.
  void read(std::string_view name, std::span<std::byte> out) const;
  void read_range(std::string_view name, uint64_t begin, std::span<std::byte> out) const;
  std::vector<std::byte> read(std::string_view name) const;
  // Maps one tensor read-only (the file need not be mapped as a whole).
  Mapping map(std::string_view name, bool populate = false) const;

 private:
  std::string path_;
  UniqueFd fd_;
  uint64_t file_size_ = 0;
  SafetensorsHeader header_;
  std::map<std::string, size_t, std::less<>> by_name_;
};

// A checkpoint: one .safetensors file, or `model.safetensors.index.json` whose "weight_map"
// maps tensor -> shard file (relative to the index's directory). Opening validates every shard
// and that every indexed tensor exists in the shard the index names (Errc::mismatch otherwise;
// a missing shard file is Errc::io naming the shard and the index). Tensors present in a shard
// but absent from the index are kept out of lookups and listed by unindexed().
class SafetensorsCheckpoint {
 public:
  static SafetensorsCheckpoint open(const std::string& path);  // .safetensors or index .json

  struct Entry {
    const SafetensorsFile* file;
    const TensorInfo* info;
  };
  const Entry* find(std::string_view name) const;    // nullptr if absent
  const Entry& tensor(std::string_view name) const;  // Errc::out_of_range if absent
  std::vector<std::string> names() const;            // sorted
  const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return shards_; }
  // "shard-file: tensor" for tensors found in shards but not named by the index.
  const std::vector<std::string>& unindexed() const { return unindexed_; }
  const std::map<std::string, std::string>& index_metadata() const { return metadata_; }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::vector<std::string> unindexed_;
  std::map<std::string, std::string> metadata_;
};

// ---- Writing --------------------------------------------------------------------------------

struct TensorView {
  std::string name;
  Dtype dtype = Dtype::U8;
  std::vector<int64_t> shape;
  std::span<const std::byte> data;  // numel * dtype_size bytes
};

// Writes a safetensors file atomically: a temporary file in the same directory, fsync, rename
// over `path`, fsync of the directory. Tensors are laid out by descending item size, then name,
// so every tensor is aligned to its item size (the header is padded to 8 bytes with spaces).
// Bad arguments (duplicate or empty names, "__metadata__", size mismatch) throw
// Errc::invalid_argument; a write error (e.g. a full disk) throws Errc::io and leaves no file
// at `path` (an existing file there is kept) and no temporary behind.
void save_safetensors(const std::string& path, std::span<const TensorView> tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace engram
