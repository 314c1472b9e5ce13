// rnnkern — the cuda-emu backend: cuda/kernels.cuh and cuda/driver.cuh compiled
// by the host compiler, "device" memory is host memory, grids run as
// emu_runtime.h describes.
#define RNNKERN_GPU_EMU 1
#define RK_GPU_NS gpu_emu

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>

#include "emu_runtime.h"
#include "gpu_api.h"

namespace rnnkern {
namespace gpu_emu {

// The live allocations of the emulated device, so that device_accessible can
// tell its memory from any other pointer a caller hands in.
class Allocations {
 public:
  void* add(size_t bytes) {
    void* p = std::malloc(bytes ? bytes : 1);
    if (!p) throw std::bad_alloc();
    std::lock_guard<std::mutex> g(m_);
    live_[static_cast<const char*>(p)] = bytes;
    return p;
  }
  void remove(void* p) {
    {
      std::lock_guard<std::mutex> g(m_);
      live_.erase(static_cast<const char*>(p));
    }
    std::free(p);
  }
  size_t count() {
    std::lock_guard<std::mutex> g(m_);
    return live_.size();
  }
  bool contains(const void* p, size_t bytes) {
    const char* c = static_cast<const char*>(p);
    std::lock_guard<std::mutex> g(m_);
    auto it = live_.upper_bound(c);
    if (it == live_.begin()) return false;
    --it;
    return c >= it->first && c + bytes <= it->first + it->second;
  }

 private:
  std::mutex m_;
  std::map<const char*, size_t> live_;
};

Allocations& allocations() {
  static Allocations a;
  return a;
}

// Host <-> device copies so far: the emulation counts what a GPU would transfer,
// so the tests can check that the device paths make none.
std::atomic<long> host_transfers{0};

// The emulation has one implicit stream: every launch runs to completion in order.
struct StreamScope {
  explicit StreamScope(uintptr_t) {}
  ~StreamScope() {}
  StreamScope(const StreamScope&) = delete;
  StreamScope& operator=(const StreamScope&) = delete;
};

struct Runtime {
  static void* alloc(size_t bytes) { return allocations().add(bytes); }
  static void release(void* p) { allocations().remove(p); }
  static void to_device(void* d, const void* h, size_t n) {
    host_transfers.fetch_add(1, std::memory_order_relaxed);
    std::memcpy(d, h, n);
  }
  static void to_host(void* h, const void* d, size_t n) {
    host_transfers.fetch_add(1, std::memory_order_relaxed);
    std::memcpy(h, d, n);
  }
  static void copy(void* d, const void* s, size_t n) { std::memcpy(d, s, n); }
  static void zero(void* d, size_t n) { std::memset(d, 0, n); }
  // A grid launch runs one std::thread per CUDA thread: 16 blocks (1024 threads).
  static int coresident_blocks(const void*, int, size_t) { return 16; }
  // The emulated device: four SMs, an H200's shared memory a block, and blocks
  // of 32 threads for the persistent family (a grid is one OS thread each);
  // clusters of up to 8 blocks (the portable size).
  // No tensor cores: the hoisted GEMMs run on the SIMT kernel unless a test forces
  // the mma one (set_gemm("mma")), which the emulation runs lane by lane.
  static DeviceLimits limits() { return DeviceLimits{4, 227 * 1024, 32, true, false, 8}; }
  // Whether a cluster of `cluster` blocks of `threads` threads and `smem` bytes each
  // can run (the emulation runs one cluster at a time: any that the limits allow).
  static bool cluster_fits(const void*, int cluster, int, size_t smem) {
    return cluster >= 1 && cluster <= limits().max_cluster && smem <= limits().smem;
  }
  static void synchronize() {}   // launches run to completion before they return
};

using Graph = emu::Graph;

}  // namespace gpu_emu
}  // namespace rnnkern

#define RK_LAUNCH(kind, gx, gy, bx, by, smem, kernel, ...)                              \
  ::rnnkern::emu::launch(::rnnkern::emu::Launch::kind, ::rnnkern::emu::Dim{(gx), (gy)},  \
                         ::rnnkern::emu::Dim{(bx), (by)}, (smem),                        \
                         ::rnnkern::emu::bind_kernel(                            \
                             [](auto... rk_a) { kernel(rk_a...); }, __VA_ARGS__))

// The emulator's blocks take any shared memory: nothing to allow.
#define RK_ALLOW_SMEM(smem, kernel) ((void)(smem))

#define RK_LAUNCH_GRID(gx, gy, bx, by, smem, kernel, arg) \
  RK_LAUNCH(Grid, gx, gy, bx, by, smem, kernel, arg)

#define RK_LAUNCH_CLUSTER(cs, gx, gy, bx, by, smem, kernel, arg)                          \
  ::rnnkern::emu::launch(::rnnkern::emu::Launch::Cluster, ::rnnkern::emu::Dim{(gx), (gy)}, \
                         ::rnnkern::emu::Dim{(bx), (by)}, (smem),                          \
                         ::rnnkern::emu::bind_kernel([](auto rk_a) { kernel(rk_a); }, (arg)), \
                         (cs))

#include "driver.cuh"

namespace rnnkern {
namespace gpu_emu {

namespace {
std::unique_ptr<Workspace> forward(const Backend&, const RnnConfig& cfg, const LayerArgs& a,
                                   const Packed*) {
  return run_forward(cfg, a);
}
void backward(const Backend&, const Workspace& ws, int, const GradArgs& g, const Packed*) {
  run_backward(ws, g);
}
const Backend kBackend = {"cuda-emu", true, forward, backward, nullptr, nullptr};
}  // namespace

const Backend& backend() { return kBackend; }

void* device_alloc(size_t bytes) { return Runtime::alloc(bytes); }
void device_free(void* p) { Runtime::release(p); }
void device_copy(void* dst, const void* src, size_t bytes, int kind) {
  if (kind != kDeviceToDevice) host_transfers.fetch_add(1, std::memory_order_relaxed);
  std::memcpy(dst, src, bytes);
}
long host_transfer_count() { return host_transfers.load(); }
bool device_accessible(const void* p, size_t bytes) { return allocations().contains(p, bytes); }
// The emulated device's live allocations (the tests' leak check after a failure).
size_t live_allocations() { return allocations().count(); }
int device_ordinal() { return 0; }
std::string device_key() { return "cuda-emu"; }
void elementwise(int op, int64_t n, float* out, const float* a, const float* b, float s0,
                 float s1, uintptr_t stream) {
  StreamScope scope(stream);
  elementwise_run(op, n, out, a, b, s0, s1);
}
double sum_squares(int64_t n, const float* a, uintptr_t stream) {
  StreamScope scope(stream);
  return sum_squares_run(n, a);
}
void elementwise_program(int64_t n, const EwSteps& steps, uintptr_t stream) {
  StreamScope scope(stream);
  elementwise_program_run(n, steps);
}
int max_program_steps() { return kEwProgSteps; }
int max_program_arrays() { return kEwProgArrays; }

}  // namespace gpu_emu
}  // namespace rnnkern
