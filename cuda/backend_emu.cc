// rnnkern — the cuda-emu backend: cuda/kernels.cuh and cuda/driver.cuh compiled
// by the host compiler, "device" memory is host memory, grids run as
// emu_runtime.h describes.
#define RNNKERN_GPU_EMU 1
#define RK_GPU_NS gpu_emu

#include <cstdlib>
#include <cstring>
#include <new>

#include "emu_runtime.h"

namespace rnnkern {
namespace gpu_emu {

struct Runtime {
  static void* alloc(size_t bytes) {
    void* p = std::malloc(bytes);
    if (!p) throw std::bad_alloc();
    return p;
  }
  static void release(void* p) { std::free(p); }
  static void to_device(void* d, const void* h, size_t n) { std::memcpy(d, h, n); }
  static void to_host(void* h, const void* d, size_t n) { std::memcpy(h, d, n); }
  static void zero(void* d, size_t n) { std::memset(d, 0, n); }
  // A grid launch runs one std::thread per CUDA thread: 16 blocks (1024 threads).
  static int coresident_blocks(const void*, int, size_t) { return 16; }
};

}  // namespace gpu_emu
}  // namespace rnnkern

#define RK_LAUNCH(kind, gx, gy, bx, by, smem, kernel, ...)                              \
  ::rnnkern::emu::launch(::rnnkern::emu::Launch::kind, ::rnnkern::emu::Dim{(gx), (gy)},  \
                         ::rnnkern::emu::Dim{(bx), (by)}, (smem),                        \
                         [&] { kernel(__VA_ARGS__); })

#define RK_LAUNCH_GRID(gx, gy, bx, by, smem, kernel, arg) \
  RK_LAUNCH(Grid, gx, gy, bx, by, smem, kernel, arg)

#include "driver.cuh"

namespace rnnkern {
namespace gpu_emu {

std::unique_ptr<GpuWorkspace> gpu_forward(const RnnConfig& cfg, const GpuForwardIn& in,
                                          const GpuForwardOut& out) {
  return run_forward(cfg, in, out);
}

void gpu_backward(const GpuWorkspace& ws, const GpuBackwardIn& in, const GpuBackwardOut& out) {
  run_backward(ws, in, out);
}

}  // namespace gpu_emu
}  // namespace rnnkern
