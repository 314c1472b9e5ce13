// rnnkern — the cuda backend's entry points in a build without nvcc: each says why.
#include <stdexcept>

#include "gpu_api.h"

namespace rnnkern {
namespace gpu_cuda {

namespace {
[[noreturn]] void unavailable() {
  throw std::runtime_error(
      "rnnkern cuda: built without CUDA (nvcc not found or RNNKERN_CUDA=OFF)");
}
}  // namespace

std::unique_ptr<GpuWorkspace> gpu_forward(const RnnConfig&, const GpuForwardIn&,
                                          const GpuForwardOut&) {
  unavailable();
}
void gpu_backward(const GpuWorkspace&, const GpuBackwardIn&, const GpuBackwardOut&) {
  unavailable();
}
size_t pool_bytes() { return 0; }
long persistent_count() { return 0; }
void free_pool() {}
void stream_synchronize(uintptr_t) { unavailable(); }
void set_graphs(bool) {}
bool graphs() { return false; }
long graph_count() { return 0; }
void* device_alloc(size_t) { unavailable(); }
void device_free(void*) {}
void device_copy(void*, const void*, size_t, int) { unavailable(); }
bool device_accessible(const void*, size_t) { return false; }
int device_ordinal() { return 0; }

}  // namespace gpu_cuda
}  // namespace rnnkern
