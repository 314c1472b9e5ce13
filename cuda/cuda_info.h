// rnnkern — whether the CUDA backend was compiled in and a device is usable.
// Plain header (no CUDA includes): the bindings call it in every build.
#pragma once

#include <string>

namespace rnnkern {
struct CudaStatus {
  bool built = false;      // compiled with nvcc
  bool available = false;  // a device answered
  std::string reason;      // why not, or the device's name
};
CudaStatus cuda_query();
}  // namespace rnnkern
