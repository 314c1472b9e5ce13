// rnnkern — CUDA discovery when the extension was built without nvcc.
#include "cuda_info.h"

namespace rnnkern {
CudaStatus cuda_query() {
  CudaStatus s;
  s.reason = "built without CUDA (nvcc not found or RNNKERN_CUDA=OFF)";
  return s;
}
}  // namespace rnnkern
