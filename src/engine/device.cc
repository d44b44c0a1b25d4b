#include "engine/device.h"

#include "model/cpu_backend.h"
#ifdef KINFER_WITH_CUDA
#include "core/log.h"
#include "model/cuda/cuda_backend.h"
#include "model/cuda/support.h"
#endif

namespace kinfer::engine {

Result<Device> ParseDevice(std::string_view name) {
  if (name == "auto") return Device::kAuto;
  if (name == "cpu") return Device::kCpu;
  if (name == "cuda") return Device::kCuda;
  return InvalidArgumentError("unknown device '{}': expected auto, cpu or cuda", name);
}

std::string_view DeviceName(Device d) {
  switch (d) {
    case Device::kAuto:
      return "auto";
    case Device::kCpu:
      return "cpu";
    case Device::kCuda:
      return "cuda";
  }
  return "?";
}

bool CudaAvailable(std::string* why) {
#ifdef KINFER_WITH_CUDA
  std::string reason;
  const int n = model::cuda::DeviceCount(&reason);
  if (n > 0) return true;
  if (why) *why = reason;
  return false;
#else
  if (why)
    *why = "this kinfer was built without the CUDA backend (build it with cmake --preset cuda)";
  return false;
#endif
}

Device ResolveDevice(Device d) {
  if (d != Device::kAuto) return d;
  return CudaAvailable() ? Device::kCuda : Device::kCpu;
}

Result<std::unique_ptr<model::Backend>> CreateBackend(const model::Model& model, Device device,
                                                      ThreadPool& pool,
                                                      double gpu_memory_utilization) {
#ifdef KINFER_WITH_CUDA
  // `auto` picks the GPU only for a model the CUDA backend computes; --device cuda refuses one.
  const bool chosen = device == Device::kAuto;
  device = ResolveDevice(device);
  if (chosen && device == Device::kCuda) {
    if (Status s = model::cuda::CheckCudaSupport(model); !s.ok()) {
      KINFER_LOG_WARN("--device auto runs this model on the CPU: {}", s.message());
      device = Device::kCpu;
    }
  }
#else
  device = ResolveDevice(device);
#endif
  if (device == Device::kCpu) {
    return std::unique_ptr<model::Backend>(std::make_unique<model::CpuBackend>(model, pool));
  }
  if (!(gpu_memory_utilization > 0 && gpu_memory_utilization <= 1)) {
    return InvalidArgumentError("--gpu-memory-utilization must be in (0, 1], got {}",
                                gpu_memory_utilization);
  }
  std::string why;
  if (!CudaAvailable(&why)) return FailedPreconditionError("--device cuda: {}", why);
#ifdef KINFER_WITH_CUDA
  model::cuda::CudaBackendOptions o;
  o.gpu_memory_utilization = gpu_memory_utilization;
  return model::cuda::CreateCudaBackend(model, o);
#else
  return FailedPreconditionError("--device cuda: {}", why);
#endif
}

}  // namespace kinfer::engine
