// rnnkern — CUDA device discovery. cudart is linked statically, so this runs
// (and reports "unavailable") on machines with no driver.
#include <cuda_runtime.h>

#include "cuda_info.h"

namespace rnnkern {

CudaStatus cuda_query() {
  CudaStatus s;
  s.built = true;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    s.reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error
    return s;
  }
  if (count == 0) {
    s.reason = "no CUDA device";
    return s;
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) s.reason = prop.name;
  s.available = true;
  return s;
}

}  // namespace rnnkern
