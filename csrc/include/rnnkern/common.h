// rnnkern — common macros. Plain header: no intrinsics, no CUDA headers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

// Functions of the shared cell math are callable from host and device code.
#if defined(__CUDACC__)
#define RNNKERN_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__)
// Host: the cell math sits in the fused step's inner epilogue; an out-of-line
// call there (vectors passed through memory) cost ~10% of a step.
#define RNNKERN_HD inline __attribute__((always_inline))
#else
#define RNNKERN_HD inline
#endif

// For the CPU kernels' small hot helpers (vector math, the pointwise step).
#if defined(__GNUC__)
#define RNNKERN_INLINE inline __attribute__((always_inline))
#define RNNKERN_LAMBDA_INLINE __attribute__((always_inline))
#else
#define RNNKERN_INLINE inline
#define RNNKERN_LAMBDA_INLINE
#endif
