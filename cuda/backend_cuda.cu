// rnnkern — the cuda backend: cuda/kernels.cuh and cuda/driver.cuh compiled by
// nvcc. Every CUDA call is checked: a failure throws std::runtime_error with
// the operation and CUDA's error string (a RuntimeError in Python). Device
// memory comes from a pool: freed blocks are kept by size for the next call,
// released by free_pool() and at exit.
#define RK_GPU_NS gpu_cuda

#include <atomic>
#include <cctype>
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include "gpu_api.h"

namespace rnnkern {
namespace gpu_cuda {

// The errors that leave the CUDA context unusable ("sticky": every later call of
// the process returns them); any other failure is cleared and the next call runs.
inline bool sticky(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorHardwareStackError:
    case cudaErrorAssert:
    case cudaErrorECCUncorrectable:
      return true;
    default:
      return false;
  }
}

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(
        std::string("rnnkern cuda: ") + what + ": " + cudaGetErrorString(e) +
        (sticky(e) ? " -- the CUDA context of this process is lost (a sticky error): every "
                     "later CUDA call in it fails; restart the process"
                   : ""));
  }
}

// The stream this thread's launches, copies and pool traffic go to: the caller's
// (LayerArgs::stream, set by a StreamScope for the call; the legacy default stream
// otherwise), or a Graph's capture stream while it captures.
thread_local cudaStream_t launch_stream = nullptr;

// Device memory blocks kept for reuse, by the stream they were released on and
// their size. A block released on stream S is handed out again only on S: the
// work still queued there that used it runs before anything queued later on S,
// so no call waits on the host for it (what lets a call on device arrays return
// before its kernels finish). free_all synchronizes the device first.
class Pool {
 public:
  void* get(size_t bytes) {
    const auto key = std::make_pair(stream_key(), bytes);
    {
      std::lock_guard<std::mutex> g(m_);
      auto it = free_.find(key);
      if (it != free_.end()) {
        void* p = it->second;
        free_.erase(it);
        kept_ -= bytes;
        sizes_[p] = bytes;
        return p;
      }
    }
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {  // give the kept blocks back and try once more
      cudaGetLastError();
      free_all();
      e = cudaMalloc(&p, bytes);
    }
    check(e, "cudaMalloc");
    std::lock_guard<std::mutex> g(m_);
    sizes_[p] = bytes;
    return p;
  }
  void put(void* p) {
    std::lock_guard<std::mutex> g(m_);
    auto it = sizes_.find(p);
    const size_t bytes = it == sizes_.end() ? 0 : it->second;
    if (it != sizes_.end()) sizes_.erase(it);
    free_.emplace(std::make_pair(stream_key(), bytes), p);
    kept_ += bytes;
  }
  size_t kept() {
    std::lock_guard<std::mutex> g(m_);
    return kept_;
  }
  void free_all() {
    std::multimap<std::pair<uintptr_t, size_t>, void*> blocks;
    {
      std::lock_guard<std::mutex> g(m_);
      blocks.swap(free_);
      kept_ = 0;
    }
    if (blocks.empty()) return;
    cudaDeviceSynchronize();   // no queued work may still use a block
    for (auto& kv : blocks) cudaFree(kv.second);
  }
  ~Pool() { free_all(); }

 private:
  static uintptr_t stream_key() { return reinterpret_cast<uintptr_t>(launch_stream); }
  std::mutex m_;
  std::multimap<std::pair<uintptr_t, size_t>, void*> free_;
  std::map<void*, size_t> sizes_;
  size_t kept_ = 0;
};

Pool& pool() {
  static Pool p;
  return p;
}

// This thread's calls go to `stream` while one lives (LayerArgs::stream).
struct StreamScope {
  explicit StreamScope(uintptr_t stream) : prev_(launch_stream) {
    launch_stream = reinterpret_cast<cudaStream_t>(stream);
  }
  ~StreamScope() { launch_stream = prev_; }
  StreamScope(const StreamScope&) = delete;
  StreamScope& operator=(const StreamScope&) = delete;

 private:
  cudaStream_t prev_;
};

// Host <-> device copies so far (the device paths make none: the tests check).
std::atomic<long> host_transfers{0};

// The value of key in a process-wide cache of device queries: looked up under m,
// made by make() outside it the first time (a race makes it twice: the same value).
template <class K, class V, class Make>
V cached_query(std::mutex& m, std::map<K, V>& cache, const K& key, Make make) {
  {
    std::lock_guard<std::mutex> g(m);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  V v;
  {
    // The first query may come while this thread captures a graph (a device array's
    // first launch inside rnnkern.graph): these calls are host-side queries and
    // attributes, not stream work, so the thread is relaxed for them and restored.
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    check(cudaThreadExchangeStreamCaptureMode(&mode), "cudaThreadExchangeStreamCaptureMode");
    struct Restore {
      cudaStreamCaptureMode& mode;
      ~Restore() { cudaThreadExchangeStreamCaptureMode(&mode); }
    } restore{mode};
    v = make();
  }
  std::lock_guard<std::mutex> g(m);
  return cache.emplace(key, v).first->second;
}

struct Runtime {
  static void* alloc(size_t bytes) { return pool().get(bytes); }
  static void release(void* p) { pool().put(p); }
  static void to_device(void* d, const void* h, size_t n) {
    host_transfers.fetch_add(1, std::memory_order_relaxed);
    check(cudaMemcpy(d, h, n, cudaMemcpyHostToDevice), "cudaMemcpy to the device");
  }
  static void to_host(void* h, const void* d, size_t n) {
    host_transfers.fetch_add(1, std::memory_order_relaxed);
    check(cudaMemcpy(h, d, n, cudaMemcpyDeviceToHost), "cudaMemcpy to the host");
  }
  // device-to-device copies and memsets are queued on the launch stream, in order
  // with the kernels (the call's synchronize, or a copy to the host, waits for them)
  static void copy(void* d, const void* s, size_t n) {
    check(cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToDevice, launch_stream),
          "cudaMemcpyAsync on the device");
  }
  static void zero(void* d, size_t n) {
    check(cudaMemsetAsync(d, 0, n, launch_stream), "cudaMemsetAsync");
  }
  // Blocks of `kernel` the device holds at once (0 where cooperative launches are
  // not supported), after allowing it `smem` bytes of dynamic shared memory;
  // asked once per device, kernel, block size and shared memory, then cached.
  static int coresident_blocks(const void* kernel, int threads, size_t smem) {
    const DeviceLimits lim = limits();
    if (!lim.cooperative) return 0;
    int dev = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    static std::mutex m;
    static std::map<std::tuple<int, const void*, int, size_t>, int> cache;
    return cached_query(m, cache, std::make_tuple(dev, kernel, threads, smem), [&] {
      int per_sm = 0;
      // the most any launch of this kernel may take, not this smem: a later call of
      // another size must not lower what an earlier (cached) one relies on
      check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 (int)lim.smem),
            "cudaFuncSetAttribute");
      check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem),
            "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
      return per_sm * lim.sms;
    });
  }
  // The current device's limits, asked once per device.
  static DeviceLimits limits() {
    int dev = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    static std::mutex m;
    static std::map<int, DeviceLimits> cache;
    return cached_query(m, cache, dev, [&] {
      int coop = 0, sms = 0, smem = 0, major = 0, cluster = 0;
      check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev),
            "cudaDeviceGetAttribute");
      check(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev),
            "cudaDeviceGetAttribute");
      check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev),
            "cudaDeviceGetAttribute");
      check(cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev),
            "cudaDeviceGetAttribute");
      check(cudaDeviceGetAttribute(&cluster, cudaDevAttrClusterLaunch, dev),
            "cudaDeviceGetAttribute");
      return DeviceLimits{sms, (size_t)smem, 256, coop != 0, major >= 8, cluster ? 16 : 0};
    });
  }
  // Whether one cluster of `cluster` blocks of `kernel` (`threads` threads, `smem`
  // bytes of dynamic shared memory each) can be resident: the occupancy API's
  // active clusters >= 1 (clusters over 8 blocks allowed on the kernel first);
  // asked once per device, kernel, size and shared memory, then cached.
  static bool cluster_fits(const void* kernel, int cluster, int threads, size_t smem) {
    const DeviceLimits lim = limits();
    if (cluster < 1 || cluster > lim.max_cluster || smem > lim.smem) return false;
    int dev = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    static std::mutex m;
    static std::map<std::tuple<int, const void*, int, int, size_t>, bool> cache;
    return cached_query(m, cache, std::make_tuple(dev, kernel, cluster, threads, smem), [&] {
      allow_cluster(kernel, cluster);
      check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 (int)lim.smem),
            "cudaFuncSetAttribute");
      cudaLaunchConfig_t cfg = {};
      cudaLaunchAttribute attr[1];
      cluster_config(cfg, attr, cluster, dim3((unsigned)cluster), dim3((unsigned)threads),
                     smem);
      int active = 0;
      const bool fits =
          cudaOccupancyMaxActiveClusters(&active, kernel, &cfg) == cudaSuccess && active >= 1;
      cudaGetLastError();   // a size the device refuses: not this thread's next error
      return fits;
    });
  }
  // A launch of `kernel` with more than 48 KiB of dynamic shared memory (R3's step):
  // the kernel allowed the device's most, once per device and kernel.
  static void allow_smem(const void* kernel) {
    const DeviceLimits lim = limits();
    int dev = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    static std::mutex m;
    static std::map<std::tuple<int, const void*>, bool> cache;
    cached_query(m, cache, std::make_tuple(dev, kernel), [&] {
      check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 (int)lim.smem),
            "cudaFuncSetAttribute");
      return true;
    });
  }
  // Clusters of more than 8 blocks (non-portable) allowed on kernel.
  static void allow_cluster(const void* kernel, int cluster) {
    if (cluster > 8)
      check(cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1),
            "cudaFuncSetAttribute (non-portable cluster size)");
  }
  // A launch configuration of clusters of `cluster` blocks along x, on the launch stream.
  static void cluster_config(cudaLaunchConfig_t& cfg, cudaLaunchAttribute* attr, int cluster,
                             dim3 grid, dim3 block, size_t smem) {
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = launch_stream;
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = (unsigned)cluster;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
  }
  // Launches kernel(args) in clusters of `cluster` blocks (cudaLaunchKernelExC).
  static void launch_cluster(const void* kernel, const char* name, int cluster, dim3 grid,
                             dim3 block, size_t smem, void** args) {
    allow_cluster(kernel, cluster);
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute attr[1];
    cluster_config(cfg, attr, cluster, grid, block, smem);
    check(cudaLaunchKernelExC(&cfg, kernel, args), name);
  }
  // Wait for this thread's launches (the plan tuner's timings).
  static void synchronize() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }
};


// The stream this thread captures graphs on and replays them from, made once
// per device, with two events that order a replay between the caller's stream's
// earlier and later work (no host synchronize).
struct CaptureStream {
  struct PerDevice {
    cudaStream_t stream = nullptr;
    cudaEvent_t before = nullptr, after = nullptr;
  };
  std::map<int, PerDevice> by_device;
  PerDevice& get() {
    int dev = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    PerDevice& d = by_device[dev];
    if (!d.stream) {
      check(cudaStreamCreateWithFlags(&d.stream, cudaStreamNonBlocking), "cudaStreamCreate");
      check(cudaEventCreateWithFlags(&d.before, cudaEventDisableTiming), "cudaEventCreate");
      check(cudaEventCreateWithFlags(&d.after, cudaEventDisableTiming), "cudaEventCreate");
    }
    return d;
  }
  ~CaptureStream() {
    for (auto& kv : by_device) {
      cudaEventDestroy(kv.second.before);
      cudaEventDestroy(kv.second.after);
      cudaStreamDestroy(kv.second.stream);
    }
  }
};
thread_local CaptureStream capture_stream;

// A CUDA graph of the launches this thread makes between begin_capture and
// end_capture; instantiate() makes it launchable, update() takes a later
// capture's kernel arguments into it when that capture has the same shape
// (cudaGraphExecUpdate: no new instantiation), replay() runs it.
class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  void begin_capture() {
    cudaStream_t st = capture_stream.get().stream;
    check(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    caller_ = launch_stream;
    launch_stream = st;
  }
  void end_capture() {
    launch_stream = caller_;
    check(cudaStreamEndCapture(capture_stream.get().stream, &graph_), "cudaStreamEndCapture");
  }
  void instantiate() { check(cudaGraphInstantiate(&exec_, graph_, 0), "cudaGraphInstantiate"); }
  bool update(const Graph& fresh) {
    if (!exec_ || !fresh.graph_) return false;
    cudaGraphExecUpdateResultInfo info;
    if (cudaGraphExecUpdate(exec_, fresh.graph_, &info) == cudaSuccess) return true;
    cudaGetLastError();  // a refused update is not an error: instantiate instead
    return false;
  }
  // on the capture stream, after the caller's stream's earlier work and before
  // its later work
  void replay() const {
    CaptureStream::PerDevice& d = capture_stream.get();
    check(cudaEventRecord(d.before, launch_stream), "cudaEventRecord");
    check(cudaStreamWaitEvent(d.stream, d.before, 0), "cudaStreamWaitEvent");
    check(cudaGraphLaunch(exec_, d.stream), "cudaGraphLaunch");
    check(cudaEventRecord(d.after, d.stream), "cudaEventRecord");
    check(cudaStreamWaitEvent(launch_stream, d.after, 0), "cudaStreamWaitEvent");
  }
  ~Graph() {
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
  }

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  cudaStream_t caller_ = nullptr;
};

void require_device() {
  int count = 0;
  check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  if (count == 0) throw std::runtime_error("rnnkern cuda: no CUDA device");
}

size_t pool_bytes() { return pool().kept(); }
void free_pool() { pool().free_all(); }

}  // namespace gpu_cuda
}  // namespace rnnkern

#define RK_LAUNCH(kind, gx, gy, bx, by, smem, kernel, ...)                              \
  do {                                                                                  \
    kernel<<<dim3((unsigned)(gx), (unsigned)(gy)), dim3((unsigned)(bx), (unsigned)(by)), \
             (smem), ::rnnkern::gpu_cuda::launch_stream>>>(__VA_ARGS__);                \
    ::rnnkern::gpu_cuda::check(cudaGetLastError(), "launch " #kernel);                  \
  } while (0)

// Before a launch of `kernel` with more than the default 48 KiB of dynamic shared
// memory (R3's step): the kernel allowed the device's most.
#define RK_ALLOW_SMEM(smem, kernel)                                                      \
  do {                                                                                  \
    if ((smem) > 48 * 1024) ::rnnkern::gpu_cuda::Runtime::allow_smem((const void*)&kernel); \
  } while (0)

#define RK_LAUNCH_GRID(gx, gy, bx, by, smem, kernel, arg)                               \
  do {                                                                                  \
    auto rk_arg = (arg);                                                                \
    void* rk_args[] = {&rk_arg};                                                        \
    ::rnnkern::gpu_cuda::check(                                                         \
        cudaLaunchCooperativeKernel((const void*)&kernel, dim3((unsigned)(gx), (unsigned)(gy)), \
                                    dim3((unsigned)(bx), (unsigned)(by)), rk_args, (smem), \
                                    ::rnnkern::gpu_cuda::launch_stream),                 \
        "cudaLaunchCooperativeKernel " #kernel);                                        \
  } while (0)

#define RK_LAUNCH_CLUSTER(cs, gx, gy, bx, by, smem, kernel, arg)                         \
  do {                                                                                  \
    auto rk_arg = (arg);                                                                \
    void* rk_args[] = {&rk_arg};                                                        \
    ::rnnkern::gpu_cuda::Runtime::launch_cluster(                                       \
        (const void*)&kernel, "cudaLaunchKernelExC (cluster) " #kernel, (cs),            \
        dim3((unsigned)(gx), (unsigned)(gy)), dim3((unsigned)(bx), (unsigned)(by)), (smem), \
        rk_args);                                                                       \
  } while (0)

#include "driver.cuh"

namespace rnnkern {
namespace gpu_cuda {

namespace {
// A call on host arrays returns when its results are on the host (a synchronize);
// one on device arrays queues its work on the caller's stream and returns (its
// results are ready in that stream's order, as a PyTorch operation's are).
std::unique_ptr<Workspace> forward(const Backend&, const RnnConfig& cfg, const LayerArgs& a,
                                   const Packed*) {
  require_device();
  StreamScope scope(a.on_device ? a.stream : 0);
  auto ws = run_forward(cfg, a);
  if (!a.on_device) check(cudaDeviceSynchronize(), "forward");
  return ws;
}
void backward(const Backend&, const Workspace& ws, int, const GradArgs& g, const Packed*) {
  require_device();
  const uintptr_t stream = g.on_device ? g.stream : 0;
  const auto& gw = static_cast<const GpuWorkspaceImpl&>(ws);
  if (gw.stream != stream)   // the forward's work, queued on another stream, first
    check(cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(gw.stream)),
          "cudaStreamSynchronize (the forward's stream)");
  gw.stream = stream;
  StreamScope scope(stream);
  run_backward(ws, g);
  if (!g.on_device) check(cudaDeviceSynchronize(), "backward");
}
const Backend kBackend = {"cuda", true, forward, backward, nullptr, nullptr};
}  // namespace

const Backend& backend() { return kBackend; }

void* device_alloc(size_t bytes) {
  require_device();
  return Runtime::alloc(bytes ? bytes : 1);
}
void device_free(void* p) { Runtime::release(p); }
long host_transfer_count() { return host_transfers.load(); }
void device_copy(void* dst, const void* src, size_t bytes, int kind) {
  if (kind != kDeviceToDevice) host_transfers.fetch_add(1, std::memory_order_relaxed);
  const cudaMemcpyKind k = kind == kToDevice ? cudaMemcpyHostToDevice
                           : kind == kToHost ? cudaMemcpyDeviceToHost
                                             : cudaMemcpyDeviceToDevice;
  check(cudaMemcpy(dst, src, bytes, k), "cudaMemcpy of a device array");
}
void elementwise(int op, int64_t n, float* out, const float* a, const float* b, float s0,
                 float s1, uintptr_t stream) {
  require_device();
  StreamScope scope(stream);
  elementwise_run(op, n, out, a, b, s0, s1);
}
double sum_squares(int64_t n, const float* a, uintptr_t stream) {
  require_device();
  StreamScope scope(stream);
  return sum_squares_run(n, a);   // (its download waits for the stream's work)
}
void elementwise_program(int64_t n, const EwSteps& steps, uintptr_t stream) {
  require_device();
  StreamScope scope(stream);
  elementwise_program_run(n, steps);
}
int max_program_steps() { return kEwProgSteps; }
int max_program_arrays() { return kEwProgArrays; }
void stream_synchronize(uintptr_t stream) {
  check(cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
}

int device_ordinal() {
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  return dev;
}

std::string device_key() {
  const int dev = device_ordinal();
  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties");
  int driver = 0;
  check(cudaDriverGetVersion(&driver), "cudaDriverGetVersion");
  std::string name;
  for (const char* c = prop.name; *c; ++c)
    name += (std::isalnum((unsigned char)*c) || *c == '-' || *c == '.') ? *c : '_';
  return name + "-sm" + std::to_string(prop.major) + std::to_string(prop.minor) + "-driver" +
         std::to_string(driver);
}

bool device_accessible(const void* p, size_t bytes) {
  if (!p) return false;
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  const char* last = static_cast<const char*>(p) + (bytes ? bytes - 1 : 0);
  for (const void* q : {p, static_cast<const void*>(last)}) {
    cudaPointerAttributes a{};
    if (cudaPointerGetAttributes(&a, q) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    if (a.type != cudaMemoryTypeManaged && !(a.type == cudaMemoryTypeDevice && a.device == dev))
      return false;
  }
  return true;
}

}  // namespace gpu_cuda
}  // namespace rnnkern
