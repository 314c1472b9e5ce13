// rnnkern — the one compatibility header the GPU kernels are written against.
//
// The kernels in cuda/*.cuh use only what this header defines, so the same
// source compiles twice:
//   * by nvcc (RNNKERN_GPU_EMU undefined): the macros are CUDA's own;
//   * by the host compiler (RNNKERN_GPU_EMU defined): the "cuda-emu" backend,
//     where a grid runs on the CPU (cuda/emu_runtime.h).
//
// What a kernel may use:
//   RK_TX RK_TY  RK_BX RK_BY  RK_BDX RK_BDY  RK_GDX RK_GDY   thread / block ids, sizes
//   RK_SYNC()        __syncthreads (block-cooperative launches only)
//   RK_GRID_SYNC()   a grid-wide barrier (grid-cooperative launches only)
//   RK_SMEM(T)       the block's dynamic shared memory as T* (size given at launch)
//   RK_UNROLL        before a loop of constant trip count over register arrays
//                    (fully unrolled, so the arrays stay in registers, not local memory)
//   RK_UNROLL_BY4    before a loop of run-time trip count: unrolled by four
//   rk_ldcg(p)       a global load that bypasses the SM's L1 (ld.global.cg): for
//                    data other blocks of a persistent launch wrote since a barrier
//   rk_load4(p)      four floats from a 16-byte aligned address as one load (F4)
// No warp shuffles, no atomics, no tensor-core instructions: the emulation would
// have to implement and test them too. Each kernel says in its comment which
// launch kind it needs: independent threads, block-cooperative, grid-cooperative.
#pragma once

#include <cstdint>

#include "rnnkern/common.h"

#if defined(RNNKERN_GPU_EMU)

#include "emu_runtime.h"

#define RK_GLOBAL inline
#define RK_DEV inline
#define RK_HD_INLINE inline
#define RK_TX (::rnnkern::emu::tls.tx)
#define RK_TY (::rnnkern::emu::tls.ty)
#define RK_BX (::rnnkern::emu::tls.bx)
#define RK_BY (::rnnkern::emu::tls.by)
#define RK_BDX (::rnnkern::emu::tls.bdx)
#define RK_BDY (::rnnkern::emu::tls.bdy)
#define RK_GDX (::rnnkern::emu::tls.gdx)
#define RK_GDY (::rnnkern::emu::tls.gdy)
#define RK_SYNC() ::rnnkern::emu::sync_block()
#define RK_GRID_SYNC() ::rnnkern::emu::sync_grid()
#define RK_SMEM(T) (reinterpret_cast<T*>(::rnnkern::emu::tls.smem))
#define RK_UNROLL _Pragma("GCC unroll 16")
#define RK_UNROLL_BY4 _Pragma("GCC unroll 4")

#include <cstring>

namespace rnnkern {
struct alignas(16) F4 {
  float x, y, z, w;
};
namespace {  // this build's own (the cuda build's are device functions)
inline float rk_ldcg(const float* p) { return *p; }
inline F4 rk_load4(const float* p) {
  F4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
}  // namespace
}  // namespace rnnkern

#else  // nvcc

#include <cooperative_groups.h>

#define RK_GLOBAL __global__
#define RK_DEV __device__ __forceinline__
#define RK_HD_INLINE __host__ __device__ __forceinline__
#define RK_TX ((int)threadIdx.x)
#define RK_TY ((int)threadIdx.y)
#define RK_BX ((int)blockIdx.x)
#define RK_BY ((int)blockIdx.y)
#define RK_BDX ((int)blockDim.x)
#define RK_BDY ((int)blockDim.y)
#define RK_GDX ((int)gridDim.x)
#define RK_GDY ((int)gridDim.y)
#define RK_SYNC() __syncthreads()
#define RK_GRID_SYNC() ::cooperative_groups::this_grid().sync()
#define RK_SMEM(T) (reinterpret_cast<T*>(rk_dynamic_smem))
#define RK_UNROLL _Pragma("unroll")
#define RK_UNROLL_BY4 _Pragma("unroll 4")
// One dynamic shared-memory symbol for every kernel (CUDA requires one name).
extern __shared__ float4 rk_dynamic_smem[];

namespace rnnkern {
struct alignas(16) F4 {
  float x, y, z, w;
};
__device__ __forceinline__ float rk_ldcg(const float* p) { return __ldcg(p); }
__device__ __forceinline__ F4 rk_load4(const float* p) { return *reinterpret_cast<const F4*>(p); }
}  // namespace rnnkern

#endif
