// rnnkern — CUDA device discovery. cudart is linked statically, so this runs
// (and reports "unavailable") on machines with no driver.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <string>

#include "cuda_info.h"

namespace rnnkern {

CudaStatus cuda_query() {
  CudaStatus s;
  s.built = true;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error
    // the runtime says "insufficient driver" when there is none at all: say which
    void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (!driver) {
      s.reason = "no NVIDIA driver here (libcuda.so.1 not found); the cuda backend needs one "
                 "of CUDA " + std::to_string(CUDART_VERSION / 1000) + "'s generation";
      return s;
    }
    dlclose(driver);
    int version = 0;
    cudaDriverGetVersion(&version);
    cudaGetLastError();
    s.reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(err) +
               " (driver supports CUDA " + std::to_string(version / 1000) + "." +
               std::to_string(version % 1000 / 10) + ", rnnkern was built with CUDA " +
               std::to_string(CUDART_VERSION / 1000) + "." +
               std::to_string(CUDART_VERSION % 1000 / 10) + ")";
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
