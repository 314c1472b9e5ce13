// rnnkern — what the bindings call of the GPU backends (cuda and cuda-emu).
// Plain C++: no CUDA header, so the bindings compile without the toolkit.
// Host arrays in and out; the device copies live in the workspace.
#pragma once

#include <memory>
#include <string>

#include "rnnkern/shapes.h"

namespace rnnkern {

struct GpuForwardIn {
  const float* x = nullptr;         // [N,T,C]
  const float* W = nullptr;         // [C,G*H]
  const float* U = nullptr;         // [H,G*H]
  const float* b = nullptr;         // [G*H] or [2,G*H] (GRU reset_after), or null
  const float* h0 = nullptr;        // [N,H]
  const float* c0 = nullptr;        // [N,H] LSTM
  const uint8_t* mask = nullptr;    // [N,T] or null
  const float* input_masks = nullptr;      // [G,N,C] or null
  const float* recurrent_masks = nullptr;  // [G,N,H] or null
};

struct GpuForwardOut {
  float* y = nullptr;    // [N,T,H] or [N,H]
  float* hT = nullptr;   // [N,H]
  float* cT = nullptr;   // [N,H] LSTM
};

struct GpuBackwardIn {
  const float* dy = nullptr;   // like y
  const float* dhT = nullptr;  // [N,H]
  const float* dcT = nullptr;  // [N,H] LSTM
};

struct GpuBackwardOut {
  float *dx = nullptr, *dW = nullptr, *dU = nullptr, *db = nullptr, *dh0 = nullptr,
        *dc0 = nullptr;
};

// What a training forward keeps on the device (opaque here).
struct GpuWorkspace {
  virtual ~GpuWorkspace() = default;
};

namespace gpu_emu {
std::unique_ptr<GpuWorkspace> gpu_forward(const RnnConfig&, const GpuForwardIn&,
                                          const GpuForwardOut&);
void gpu_backward(const GpuWorkspace&, const GpuBackwardIn&, const GpuBackwardOut&);
long persistent_count();   // forwards run by the small-batch persistent kernel so far
}  // namespace gpu_emu

namespace gpu_cuda {
// Throw std::runtime_error naming the reason where no CUDA build or device exists.
std::unique_ptr<GpuWorkspace> gpu_forward(const RnnConfig&, const GpuForwardIn&,
                                          const GpuForwardOut&);
void gpu_backward(const GpuWorkspace&, const GpuBackwardIn&, const GpuBackwardOut&);
long persistent_count();
// Device memory kept for reuse (the pool), in bytes, and freeing it.
size_t pool_bytes();
void free_pool();
}  // namespace gpu_cuda

}  // namespace rnnkern
