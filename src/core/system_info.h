// What this process may use of the machine, container limits included: memory that is still
// free (MemAvailable, capped by the cgroup memory limit) and CPUs (affinity, capped by the
// cgroup CPU quota). Kubernetes sets both limits; defaults derived from the raw machine would
// oversubscribe a pod.
#pragma once

#include <cstdint>
#include <optional>

namespace kinfer {

// Bytes this process can still allocate: the smaller of MemAvailable and the cgroup (v2 or v1)
// memory limit minus current usage.
int64_t AvailableMemoryBytes();

// The cgroup CPU quota in CPUs (rounded up), if one is set.
std::optional<int> CgroupCpuLimit();

}  // namespace kinfer
