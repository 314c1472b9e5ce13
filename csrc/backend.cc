// rnnkern — the backend table's lookup: the CPU rows (backend_cpu.cc, one per
// supported ISA of dispatch.cc's kCpuIsas) and the GPU backends' entries.
#include <stdexcept>
#include <string>

#include "rnnkern/backend.h"

namespace rnnkern {

const Backend& find_backend(const std::string& name) {
  if (name == "cuda-emu") return gpu_emu::backend();
  if (name == "cuda") return gpu_cuda::backend();
  if (const Backend* b = find_cpu_backend(name)) return *b;
  throw std::invalid_argument("rnnkern: backend '" + name + "' is not available here");
}

}  // namespace rnnkern
