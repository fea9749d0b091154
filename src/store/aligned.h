// Private to src/store: an owned, aligned, uninitialized byte buffer (O_DIRECT bounce buffers,
// prefetch staging). Move-only RAII over std::aligned_alloc.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

namespace engram::store_detail {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(size_t bytes, size_t align) { resize(bytes, align); }

  // Drops the old contents; the new buffer holds at least `bytes` bytes aligned to `align`.
  void resize(size_t bytes, size_t align) {
    size_t rounded = (bytes + align - 1) / align * align;
    if (rounded == 0) rounded = align;
    void* p = std::aligned_alloc(align, rounded);
    if (!p) throw std::bad_alloc();
    ptr_.reset(static_cast<std::byte*>(p));
    size_ = rounded;
  }
  std::byte* data() const { return ptr_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> ptr_;
  size_t size_ = 0;
};

}  // namespace engram::store_detail
