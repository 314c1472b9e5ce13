// rnnkern — what the bindings call of the GPU backends (cuda and cuda-emu).
// Plain C++: no CUDA header, so the bindings compile without the toolkit.
// Host arrays in and out, or the backend's own device memory where the call
// says on_device (then nothing crosses to the host); the device copies a
// backward needs live in the workspace.
#pragma once

#include <cstdint>
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
  bool on_device = false;  // every pointer of the call (GpuForwardOut too) is device memory
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
  bool on_device = false;      // every pointer of the call (GpuBackwardOut too) is device memory
};

struct GpuBackwardOut {
  float *dx = nullptr, *dW = nullptr, *dU = nullptr, *db = nullptr, *dh0 = nullptr,
        *dc0 = nullptr;
};

// What a training forward keeps on the device (opaque here).
struct GpuWorkspace {
  virtual ~GpuWorkspace() = default;
};

enum CopyKind : int { kToDevice = 0, kToHost = 1, kDeviceToDevice = 2 };

// What each GPU backend defines, in its namespace (gpu_emu, gpu_cuda).
#define RNNKERN_GPU_BACKEND_API                                                          \
  /* one layer's forward (a workspace back when cfg.training) and its BPTT; the */      \
  /* cuda backend throws std::runtime_error naming the reason where no CUDA build, */   \
  /* driver or device exists */                                                         \
  std::unique_ptr<GpuWorkspace> gpu_forward(const RnnConfig&, const GpuForwardIn&,      \
                                            const GpuForwardOut&);                      \
  void gpu_backward(const GpuWorkspace&, const GpuBackwardIn&, const GpuBackwardOut&);  \
  /* forwards run by the small-batch persistent kernel so far */                        \
  long persistent_count();                                                              \
  /* whether the per-step loops run captured as a graph (default off), and how */       \
  /* many loops have so far */                                                          \
  void set_graphs(bool on);                                                             \
  bool graphs();                                                                        \
  long graph_count();                                                                   \
  /* device memory the caller keeps arrays in (DeviceArray): allocation (from the */    \
  /* pool on cuda), release, copies (kind: CopyKind), and whether [p, p+bytes) is */    \
  /* memory this backend's kernels can read and write (cuda-emu: inside one live */     \
  /* allocation of its own; cuda: device or managed memory of the current device) */    \
  void* device_alloc(size_t bytes);                                                     \
  void device_free(void* p);                                                            \
  void device_copy(void* dst, const void* src, size_t bytes, int kind);                 \
  bool device_accessible(const void* p, size_t bytes);                                  \
  /* the device this thread's calls run on (cuda-emu: 0) */                             \
  int device_ordinal();

namespace gpu_emu {
RNNKERN_GPU_BACKEND_API
}  // namespace gpu_emu

namespace gpu_cuda {
RNNKERN_GPU_BACKEND_API
// Wait for the work queued on a stream (a cudaStream_t as an integer).
void stream_synchronize(uintptr_t stream);
// Device memory kept for reuse (the pool), in bytes, and freeing it.
size_t pool_bytes();
void free_pool();
}  // namespace gpu_cuda

}  // namespace rnnkern
