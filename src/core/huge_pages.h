// Anonymous memory that transparent huge pages can back: what streams from DRAM once a step
// (packed weights, the bandwidth probe that bounds them) reads faster in 2 MiB pages, since the
// hardware prefetchers stop at page boundaries and every 4 KiB page costs a TLB walk.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kinfer {

class HugePageMapping {
 public:
  // At least `min_bytes` (rounded up to whole 2 MiB pages), zeroed, 2 MiB-aligned and advised
  // MADV_HUGEPAGE, so the kernel backs it with huge pages in its "madvise" mode too. Pages cost
  // memory once touched. Throws std::bad_alloc when the mapping fails.
  explicit HugePageMapping(size_t min_bytes);
  ~HugePageMapping();
  HugePageMapping(const HugePageMapping&) = delete;
  HugePageMapping& operator=(const HugePageMapping&) = delete;

  static constexpr size_t kPageBytes = size_t{2} << 20;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace kinfer
