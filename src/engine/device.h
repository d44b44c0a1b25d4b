// Which processor runs the model: the CPU, or an NVIDIA GPU when this build has the CUDA
// backend (cmake --preset cuda). `auto` takes the GPU when there is one.
//
//   KINFER_ASSIGN_OR_RETURN(Device d, ParseDevice("auto"));
//   d = ResolveDevice(d);  // kCpu or kCuda
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/thread_pool.h"
#include "model/backend.h"
#include "model/model.h"

namespace kinfer::engine {

enum class Device { kAuto, kCpu, kCuda };

// "auto", "cpu" or "cuda".
Result<Device> ParseDevice(std::string_view name);
std::string_view DeviceName(Device d);

// Whether this build has the CUDA backend and the driver reports at least one GPU; when not,
// `why` (if given) says which.
bool CudaAvailable(std::string* why = nullptr);

// kAuto becomes kCuda when CudaAvailable(), else kCpu; the others stay.
Device ResolveDevice(Device d);

// The backend for a device. kCuda fails with a clear message on a build without CUDA, a machine
// without a GPU, or a model the CUDA backend does not compute (Gemma, Phi-3, mixtures of
// experts: model/cuda/support.h); kAuto takes the CPU for such a model. `gpu_memory_utilization` is
// the share of the GPU's memory this process may use for weights, activations and the KV cache
// together (vLLM's meaning).
Result<std::unique_ptr<model::Backend>> CreateBackend(const model::Model& model, Device device,
                                                      ThreadPool& pool,
                                                      double gpu_memory_utilization);

}  // namespace kinfer::engine
