// rnnkern — what the GPU backends (cuda and cuda-emu) offer beyond their
// kernel-table entry (rnnkern/backend.h): graphs, device memory, the pool.
// Plain C++: no CUDA header, so the bindings compile without the toolkit.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rnnkern/backend.h"

namespace rnnkern {

enum CopyKind : int { kToDevice = 0, kToHost = 1, kDeviceToDevice = 2 };

// A sequence of elementwise steps over arrays of one length (gpu elementwise_program):
// step k is arrays[out[k]][e] = op[k](arrays[a[k]][e], b[k] < 0 ? s0[k] :
// arrays[b[k]][e]), ops as `elementwise`'s.
struct EwSteps {
  std::vector<float*> arrays;
  std::vector<int> op, out, a, b;
  std::vector<float> s0, s1;
};

// What the persistent family's plans are made from, per device (cached by the
// cuda runtime): SMs, the shared memory one block may take (opt-in), the
// threads a block of the persistent kernels, cooperative launch support.
struct DeviceLimits {
  int sms = 0;
  size_t smem = 0;
  int threads = 0;
  bool cooperative = false;
  bool tensor_cores = false;   // mma.sync m16n8k8 TF32 (compute capability 8.0 and up)
  int max_cluster = 0;         // the most blocks a thread-block cluster may have (16 on
                               // sm_90 and up: 8 portable, more where the kernel and
                               // device allow; 0: no cluster launches)
};

// What each GPU backend defines, in its namespace (gpu_emu, gpu_cuda).
#define RNNKERN_GPU_BACKEND_API                                                          \
  /* the layer's forward and BPTT are the backend's kernel-table entry (backend(), */   \
  /* rnnkern/backend.h); the cuda one throws std::runtime_error naming the reason */    \
  /* where no CUDA build, driver or device exists */                                    \
  /* time loops (forward or backward) the persistent family has run so far */          \
  long persistent_count();                                                              \
  /* of those, the loops launched as one thread-block cluster (plan ",cluster") */     \
  long cluster_count();                                                                 \
  /* of those, the loops whose exchange (h forward, dG backward) stayed in shared */  \
  /* memory (pushed by each block into every block's next staging buffer) */           \
  long push_count();                                                                    \
  /* of those, the loops run with the step-tagged hand-off (plan ",flags") */           \
  long flag_count();                                                                    \
  /* the time-loop family: "auto", "steps", "persistent" or */                          \
  /* "persistent:BLOCKS,THREADS[,KC]" with ",mma"/",simt", ",cluster"/",grid"/",flags" */ \
  /* and */                                                                             \
  /* ",staged" */                                                                       \
  /* (std::invalid_argument otherwise); */                                              \
  /* RNNKERN_FORCE_PLAN sets it at first use */                                         \
  void set_plan(const std::string& plan);                                               \
  std::string plan();                                                                   \
  /* whether the per-step loops run captured as a graph (default off), and how */       \
  /* many loops have so far */                                                          \
  void set_graphs(bool on);                                                             \
  bool graphs();                                                                        \
  long graph_count();                                                                   \
  /* of those, the loops that updated a cached graph rather than instantiating one */  \
  long graph_update_count();                                                            \
  /* drop every thread's cached graphs (the next loop of each length instantiates) */  \
  void clear_graphs();                                                                  \
  /* the hoisted GEMMs' kernel: "auto" (tensor cores in fp32 accuracy, 3xTF32, on a */ \
  /* device whose fragment API passes its probe; else the SIMT kernel), "simt", */      \
  /* "mma", "mma:TILE" (plan.h parse_gemm; std::invalid_argument otherwise); */         \
  /* RNNKERN_GEMM sets it at first use; and how many GEMMs ran on the tensor cores */  \
  /* (tile: with that C tile, an index of plan.h's kGemmTiles; -1: any) */               \
  void set_gemm(const std::string& kind);                                               \
  std::string gemm_kind();                                                              \
  long mma_gemm_count(int tile);                                                        \
  /* plan tuning: "off" (default), "quick" or "full" (RNNKERN_TUNE at first use; */    \
  /* std::invalid_argument otherwise); time loops tuned so far; the tuned plans, */    \
  /* "KEY -> persistent:BLOCKS,THREADS,KC" or "KEY -> steps" each, and the hoisted */   \
  /* GEMMs' tuned tiles, "KEY -> mma:TILE"; forgetting them */                          \
  void set_tune(const std::string& mode);                                               \
  std::string tune();                                                                   \
  long tuning_count();                                                                  \
  std::vector<std::string> tuned_plans();                                               \
  void clear_tuned();                                                                   \
  /* plans tuned earlier (a cache file's lines, "KEY -> persistent:B,T,KC"; blank */    \
  /* and '#' lines skipped): used for their keys instead of tuning, where they still */ \
  /* fit; std::invalid_argument naming source and line for anything else */           \
  void load_tuned(const std::vector<std::string>& lines, const std::string& source);   \
  /* what tuned plans are valid for: the device's name, compute capability and */      \
  /* driver ("cuda-emu" on the emulation) */                                           \
  std::string device_key();                                                             \
  /* loops whose graph update the runtime refused, instantiated anew instead */         \
  long graph_reinstantiation_count();                                                   \
  /* device memory the caller keeps arrays in (DeviceArray): allocation (from the */    \
  /* pool on cuda), release, copies (kind: CopyKind), and whether [p, p+bytes) is */    \
  /* memory this backend's kernels can read and write (cuda-emu: inside one live */     \
  /* allocation of its own; cuda: device or managed memory of the current device) */    \
  void* device_alloc(size_t bytes);                                                     \
  void device_free(void* p);                                                            \
  void device_copy(void* dst, const void* src, size_t bytes, int kind);                 \
  bool device_accessible(const void* p, size_t bytes);                                  \
  /* the tensor-core fragment API's probe (cuda/kernels.cuh mma_probe): one TF32 */    \
  /* m16n8k8 mma D = C + A B (A [16,8], B [8,8], C, D [16,8]), one BF16 m16n8k16 */    \
  /* mma D16 = C + A16 B16 (A16 [16,16], B16 [16,8]) and two warp shuffles into */      \
  /* shfl [32], on host arrays */                                                       \
  void mma_probe_run(const float* A, const float* B, const float* C, float* D,          \
                     float* shfl, const float* A16, const float* B16, float* D16);     \
  /* the cost model's micro-benchmarks (cuda/launch.cuh micro_bench) */                 \
  double micro_bench(const std::string& what, int arg, int iters);                      \
  /* the device this thread's calls run on (cuda-emu: 0) */                             \
  int device_ordinal();                                                                 \
  /* copies between the host and the device so far (the layer calls' uploads and */    \
  /* downloads of host arrays, and device_copy's to or from the host) */                \
  long host_transfer_count();                                                           \
  /* the optimizers' updates on device arrays (rnnkern/_device_math.py): out[e] = */    \
  /* op(a[e], b ? b[e] : s0) for e < n, op a kernels.cuh EwiseOp (one correctly */      \
  /* rounded float32 operation an element: bitwise NumPy's), queued on stream; and */   \
  /* the sum of a[e]^2 in double, in a fixed order (waits for the stream) */            \
  void elementwise(int op, int64_t n, float* out, const float* a, const float* b,       \
                   float s0, float s1, uintptr_t stream);                               \
  double sum_squares(int64_t n, const float* a, uintptr_t stream);                     \
  /* the steps one after the other for each element, in one launch (bitwise the */     \
  /* same as one elementwise call each); std::invalid_argument past the limits */      \
  /* (max_program_steps(), max_program_arrays()) */                                    \
  void elementwise_program(int64_t n, const EwSteps& steps, uintptr_t stream);          \
  int max_program_steps();                                                              \
  int max_program_arrays();

namespace gpu_emu {
RNNKERN_GPU_BACKEND_API
}  // namespace gpu_emu

// The same API as one table of functions per GPU backend (gpu_runtime), as the
// kernel table is for the layer calls: the bindings look a backend's up by name
// instead of choosing between the two namespaces at every call.
struct GpuRuntime {
  const char* name;   // "cuda-emu" or "cuda"
  long (*persistent_count)();
  long (*cluster_count)();
  long (*push_count)();
  long (*flag_count)();
  void (*set_plan)(const std::string& plan);
  std::string (*plan)();
  void (*set_graphs)(bool on);
  bool (*graphs)();
  long (*graph_count)();
  long (*graph_update_count)();
  void (*clear_graphs)();
  void (*set_gemm)(const std::string& kind);
  std::string (*gemm_kind)();
  long (*mma_gemm_count)(int tile);
  long (*graph_reinstantiation_count)();
  void (*set_tune)(const std::string& mode);
  std::string (*tune)();
  long (*tuning_count)();
  std::vector<std::string> (*tuned_plans)();
  void (*clear_tuned)();
  void (*load_tuned)(const std::vector<std::string>& lines, const std::string& source);
  std::string (*device_key)();
  void* (*device_alloc)(size_t bytes);
  void (*device_free)(void* p);
  void (*device_copy)(void* dst, const void* src, size_t bytes, int kind);
  bool (*device_accessible)(const void* p, size_t bytes);
  double (*micro_bench)(const std::string& what, int arg, int iters);
  void (*mma_probe_run)(const float* A, const float* B, const float* C, float* D, float* shfl,
                        const float* A16, const float* B16, float* D16);
  int (*device_ordinal)();
  long (*host_transfer_count)();
  void (*elementwise)(int op, int64_t n, float* out, const float* a, const float* b,
                      float s0, float s1, uintptr_t stream);
  double (*sum_squares)(int64_t n, const float* a, uintptr_t stream);
  void (*elementwise_program)(int64_t n, const EwSteps& steps, uintptr_t stream);
  int (*max_program_steps)();
  int (*max_program_arrays)();
};

namespace gpu_cuda {
RNNKERN_GPU_BACKEND_API
// Wait for the work queued on a stream (a cudaStream_t as an integer).
void stream_synchronize(uintptr_t stream);
// Device memory kept for reuse (the pool), in bytes, and freeing it.
size_t pool_bytes();
void free_pool();
}  // namespace gpu_cuda

// The table of "cuda-emu" (emu true) or "cuda" (csrc/bindings/gpu_bindings.cc).
const GpuRuntime& gpu_runtime(bool emu);

}  // namespace rnnkern
