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
//   RK_CLUSTER_SYNC() the thread-block cluster's barrier (cluster launches only;
//                    barrier.cluster arrive.release + wait.acquire: what a thread of
//                    the cluster wrote before it, to global or shared memory, is
//                    seen by the others after it; sm_90 and up)
//   rk_cluster_rank() this block's rank in its cluster (0 outside a cluster launch)
//   rk_cluster_size() the blocks of its cluster (1 outside a cluster launch, and
//                    on devices before sm_90)
//   rk_dsmem(p, rank) distributed shared memory: the address that p, a pointer
//                    into this block's RK_SMEM, has in the shared memory of the
//                    cluster's block `rank` (read and written like p; the owner
//                    must not exit while others use it: a cluster barrier first)
//   RK_SMEM(T)       the block's dynamic shared memory as T* (size given at launch)
//   RK_UNROLL        before a loop of constant trip count over register arrays
//                    (fully unrolled, so the arrays stay in registers, not local memory)
//   RK_UNROLL_BY4    before a loop of run-time trip count: unrolled by four
//   rk_ldcg(p)       a global load that bypasses the SM's L1 (ld.global.cg): for
//                    data other blocks of a persistent launch wrote since a barrier
//   rk_load4(p)      four floats from a 16-byte aligned address as one load (F4)
//   rk_ldcg_i(p)     rk_ldcg of an int
//   rk_clock()       this SM's cycle counter (clock64); the emulation: nanoseconds of
//                    a steady clock (the micro-benchmarks' timer: meaningful on a device)
//   rk_st_release(p, v)  *p = v with release semantics at device scope
//                    (st.release.gpu; the emulation: a std::atomic_ref release store)
//   rk_ld_acquire(p) *p with acquire semantics at device scope (ld.acquire.gpu)
//   rk_pause()       a spin-wait's pause (the emulation yields its thread)
//   rk_cp_async4(dst, src)   an asynchronous copy of one float from global memory
//                    (src) into this block's shared memory (dst): cp.async.ca.shared.
//                    global, 4 bytes; dst holds it only once a wait covers its group
//   rk_cp_async16(dst, src)  ... of four floats, both addresses 16-byte aligned
//                    (cp.async.cg: 16 bytes, past the SM's L1)
//   rk_cp_async_commit() closes this thread's group of the copies issued since the
//                    last commit (cp.async.commit_group; a group may be empty)
//   rk_cp_async_wait<N>() waits until at most N of this thread's committed groups,
//                    the newest, are still in flight (cp.async.wait_group N); other
//                    threads see the copies after a block barrier that follows. The
//                    emulation performs a thread's copies only here (a group's source
//                    read then, its destination written then), so a kernel that reads
//                    a copy before waiting for it reads what was there before, as
//                    a device may; copies never waited for are dropped at the
//                    thread's end (sm_80 and up)
//   rk_fence()       __threadfence(): this thread's earlier writes (and those it saw
//                    through a block barrier) ordered before its later ones, device-wide
//                    (the emulation: nothing; its block barrier already orders them)
// Warp level (block-cooperative or grid-cooperative launches, whole warps of 32;
// a thread's lane is its linear id in the block mod 32):
//   rk_lane()        this thread's lane
//   rk_warp_sync()   __syncwarp(): the warp's threads meet
//   rk_shfl_xor(v, m) the value v of lane (lane ^ m)
//   rk_to_tf32(x)    x rounded to TF32 (cvt.rna.tf32.f32: 10 mantissa bits,
//                    ties away from zero; the emulation does the same bit arithmetic)
//   rk_mma_tf32(d, a, b)  d[4] += A B, one mma.sync.aligned.m16n8k8.row.col.f32.
//                    tf32.tf32.f32 of the warp: for lane l, g = l/4, t = l%4,
//                    a[r] = A(g + 8*(r%2), t + 4*(r/2)), b[r] = B(t + 4*r, g),
//                    d[r] = D(g + 8*(r/2), 2*t + r%2) (A 16x8, B 8x8, D 16x8);
//                    A and B enter as TF32 (their low 13 bits ignored)
//   rk_pack_bf16(lo, hi) two bfloat16 values as one 32-bit register (lo in the
//                    low half): the top 16 bits of each float, so lo and hi must
//                    be bfloat16 values already (rk_to_bf16's, or zero)
//   rk_mma_bf16(d, a, b)  d[4] += A B, one mma.sync.aligned.m16n8k16.row.col.f32.
//                    bf16.bf16.f32 of the warp (twice the k of rk_mma_tf32 for the
//                    same issue slot): a[4] and b[2] registers of rk_pack_bf16
//                    pairs of consecutive k; for lane l, g = l/4, t = l%4,
//                    a[r] = A(g + 8*(r%2), 2t + 8*(r/2) + {0, 1}),
//                    b[r] = B(2t + 8*r + {0, 1}, g), d as rk_mma_tf32's (A 16x16,
//                    B 16x8, D 16x8)
//   rk_bits(x)       the 32 bits of x as an unsigned integer (__float_as_uint):
//                    two bfloat16 values a word staged through float memory (R3's
//                    packed U) read back as an rk_mma_bf16 register
//   rk_to_bf16(x)    x rounded to bfloat16 (8 mantissa bits, to nearest, ties to
//                    even; Inf and NaN returned as they are), as a float: the
//                    weights of precision bf16 (the same bit arithmetic both sides)
// Arithmetic rounded once, never contracted into a multiply-add with a neighbour
// (what makes a sequence of them NumPy's float32 results, bitwise):
//   rk_add_rn(x, y) rk_sub_rn(x, y) rk_mul_rn(x, y) rk_div_rn(x, y) rk_sqrt_rn(x)
//                    __fadd_rn, __fsub_rn, __fmul_rn, __fdiv_rn, __fsqrt_rn on the
//                    device; the emulation's IEEE float operations (the emulation
//                    is built for baseline x86-64: no FMA instruction to contract to)
// Launch kinds: independent threads, block-cooperative, grid-cooperative (the whole
// grid resident, RK_GRID_SYNC) and cluster (RK_LAUNCH_CLUSTER: blocks in clusters,
// each cluster resident, RK_CLUSTER_SYNC; no grid barrier).
// No read-modify-write atomics yet: the emulation would have to implement and test
// them too (the release/acquire flags above are plain stores and loads). Each
// kernel says in its comment which launch kind it needs: independent threads,
// block-cooperative, grid-cooperative.
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
#define RK_CLUSTER_SYNC() ::rnnkern::emu::sync_cluster()
#define RK_SMEM(T) (reinterpret_cast<T*>(::rnnkern::emu::tls.smem))
#define RK_UNROLL _Pragma("GCC unroll 16")
#define RK_UNROLL_BY4 _Pragma("GCC unroll 4")

#include <bit>
#include <cmath>
#include <cstring>

namespace rnnkern {
struct alignas(16) F4 {
  float x, y, z, w;
};
namespace {  // this build's own (the cuda build's are device functions)
inline int rk_lane() { return ::rnnkern::emu::lane(); }
inline void rk_warp_sync() { ::rnnkern::emu::warp_sync(); }
inline float rk_shfl_xor(float v, int mask) { return ::rnnkern::emu::shfl_xor(v, mask); }
inline float rk_to_tf32(float x) { return ::rnnkern::emu::to_tf32(x); }
inline float rk_to_bf16(float x) { return ::rnnkern::emu::to_bf16(x); }
inline float rk_add_rn(float x, float y) { return x + y; }
inline float rk_sub_rn(float x, float y) { return x - y; }
inline float rk_mul_rn(float x, float y) { return x * y; }
inline float rk_div_rn(float x, float y) { return x / y; }
inline float rk_sqrt_rn(float x) { return std::sqrt(x); }
inline void rk_mma_tf32(float* d, const float* a, const float* b) {
  ::rnnkern::emu::mma_tf32(d, a, b);
}
inline uint32_t rk_pack_bf16(float lo, float hi) { return ::rnnkern::emu::pack_bf16(lo, hi); }
inline uint32_t rk_bits(float x) { return std::bit_cast<uint32_t>(x); }
inline void rk_mma_bf16(float* d, const uint32_t* a, const uint32_t* b) {
  ::rnnkern::emu::mma_bf16(d, a, b);
}
inline float rk_ldcg(const float* p) { return *p; }
inline int rk_ldcg_i(const int* p) { return *p; }
inline long long rk_clock() { return ::rnnkern::emu::clock_ns(); }
inline void rk_st_release(int* p, int v) { ::rnnkern::emu::store_release(p, v); }
inline int rk_ld_acquire(const int* p) { return ::rnnkern::emu::load_acquire(p); }
inline void rk_pause() { ::rnnkern::emu::pause(); }
// (the emulation's threads of a block meet at a barrier that orders their writes
// before the release store that follows it; ThreadSanitizer knows no fences)
inline void rk_fence() {}
inline int rk_cluster_rank() { return ::rnnkern::emu::cluster_rank(); }
inline int rk_cluster_size() { return ::rnnkern::emu::cluster_size(); }
template <class T>
inline T* rk_dsmem(T* p, int rank) {
  return static_cast<T*>(::rnnkern::emu::dsmem(p, rank));
}
inline void rk_cp_async4(float* dst, const float* src) { ::rnnkern::emu::cp_async(dst, src, 4); }
inline void rk_cp_async16(float* dst, const float* src) { ::rnnkern::emu::cp_async(dst, src, 16); }
inline void rk_cp_async_commit() { ::rnnkern::emu::cp_async_commit(); }
template <int N>
inline void rk_cp_async_wait() {
  ::rnnkern::emu::cp_async_wait(N);
}
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
#define RK_CLUSTER_SYNC() ::rnnkern::rk_cluster_sync()
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
__device__ __forceinline__ int rk_ldcg_i(const int* p) { return __ldcg(p); }
__device__ __forceinline__ long long rk_clock() { return clock64(); }
__device__ __forceinline__ void rk_st_release(int* p, int v) {
  asm volatile("st.release.gpu.global.s32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ int rk_ld_acquire(const int* p) {
  int v;
  asm volatile("ld.acquire.gpu.global.s32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ void rk_pause() {}
__device__ __forceinline__ void rk_fence() { __threadfence(); }
// The cluster primitives exist from sm_90; a kernel built for an older device
// that reaches one traps (the plans launch clusters only where the device has them).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ __forceinline__ void rk_cluster_sync() { ::cooperative_groups::this_cluster().sync(); }
__device__ __forceinline__ int rk_cluster_rank() {
  return (int)::cooperative_groups::this_cluster().block_rank();
}
__device__ __forceinline__ int rk_cluster_size() {
  return (int)::cooperative_groups::this_cluster().num_blocks();
}
template <class T>
__device__ __forceinline__ T* rk_dsmem(T* p, int rank) {
  return ::cooperative_groups::this_cluster().map_shared_rank(p, rank);
}
#else
__device__ __forceinline__ void rk_cluster_sync() { __trap(); }
__device__ __forceinline__ int rk_cluster_rank() { return 0; }
__device__ __forceinline__ int rk_cluster_size() { return 1; }
template <class T>
__device__ __forceinline__ T* rk_dsmem(T* p, int) {
  __trap();
  return p;
}
#endif
__device__ __forceinline__ int rk_lane() {
  return (int)((threadIdx.y * blockDim.x + threadIdx.x) % 32u);
}
__device__ __forceinline__ void rk_warp_sync() { __syncwarp(); }
__device__ __forceinline__ float rk_shfl_xor(float v, int mask) {
  return __shfl_xor_sync(0xffffffffu, v, mask);
}
__device__ __forceinline__ float rk_to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return __uint_as_float(r);
}
__device__ __forceinline__ float rk_add_rn(float x, float y) { return __fadd_rn(x, y); }
__device__ __forceinline__ float rk_sub_rn(float x, float y) { return __fsub_rn(x, y); }
__device__ __forceinline__ float rk_mul_rn(float x, float y) { return __fmul_rn(x, y); }
__device__ __forceinline__ float rk_div_rn(float x, float y) { return __fdiv_rn(x, y); }
__device__ __forceinline__ float rk_sqrt_rn(float x) { return __fsqrt_rn(x); }
__device__ __forceinline__ float rk_to_bf16(float x) {
  const uint32_t u = __float_as_uint(x);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;
  return __uint_as_float((u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u);
}
__device__ __forceinline__ void rk_mma_tf32(float* d, const float* a, const float* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(__float_as_uint(a[0])), "r"(__float_as_uint(a[1])), "r"(__float_as_uint(a[2])),
        "r"(__float_as_uint(a[3])), "r"(__float_as_uint(b[0])), "r"(__float_as_uint(b[1])));
}
__device__ __forceinline__ uint32_t rk_bits(float x) { return __float_as_uint(x); }
__device__ __forceinline__ uint32_t rk_pack_bf16(float lo, float hi) {
  return __byte_perm(__float_as_uint(lo), __float_as_uint(hi), 0x7632);
}
__device__ __forceinline__ void rk_mma_bf16(float* d, const uint32_t* a, const uint32_t* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
__device__ __forceinline__ F4 rk_load4(const float* p) { return *reinterpret_cast<const F4*>(p); }
__device__ __forceinline__ void rk_cp_async4(float* dst, const float* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(
                   (uint32_t)__cvta_generic_to_shared(dst)),
               "l"(src)
               : "memory");
}
__device__ __forceinline__ void rk_cp_async16(float* dst, const float* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(
                   (uint32_t)__cvta_generic_to_shared(dst)),
               "l"(src)
               : "memory");
}
__device__ __forceinline__ void rk_cp_async_commit() {
  asm volatile("cp.async.commit_group;" ::: "memory");
}
template <int N>
__device__ __forceinline__ void rk_cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}
}  // namespace rnnkern

#endif
