#include "core/huge_pages.h"

#include <sys/mman.h>

#include <new>

namespace kinfer {

HugePageMapping::HugePageMapping(size_t min_bytes)
    : size_((min_bytes + kPageBytes - 1) / kPageBytes * kPageBytes) {
  if (size_ == 0) size_ = kPageBytes;
  // Over-map by one huge page, then give back the unaligned head and the rest of the tail.
  void* m = ::mmap(nullptr, size_ + kPageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
  if (m == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t raw = reinterpret_cast<uintptr_t>(m);
  const uintptr_t aligned = (raw + kPageBytes - 1) / kPageBytes * kPageBytes;
  if (aligned > raw) ::munmap(m, aligned - raw);
  ::munmap(reinterpret_cast<void*>(aligned + size_), raw + kPageBytes - aligned);
  data_ = reinterpret_cast<uint8_t*>(aligned);
  ::madvise(data_, size_, MADV_HUGEPAGE);  // only advice: 4 KiB pages still work without it
}

HugePageMapping::~HugePageMapping() { ::munmap(data_, size_); }

}  // namespace kinfer
