// rnnkern — the CPU ISAs' table (kCpuIsas), their detection (once, cpuid), the
// fork guard and the thread-local scratch.
#include <pthread.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <algorithm>
#include <stdexcept>

#include "kernels.h"

namespace rnnkern {
namespace {

std::atomic<bool> g_forked_child{false};

void on_fork_child() { g_forked_child.store(true); }

bool always() { return true; }
#if defined(RNNKERN_HAVE_X86)
bool has_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
bool has_avx512() {
  return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}
#endif

}  // namespace

bool cpu_has_avx512_bf16() {
#if defined(RNNKERN_HAVE_X86)
  static const bool has = has_avx512() && __builtin_cpu_supports("avx512bf16");
  return has;
#else
  return false;
#endif
}

namespace {

// The one list of CPU ISAs: each compiled into this build, widest first, with
// its kernels (defined in its own translation unit, rnn_cpu_<isa>.cc) and its
// run-time check. Everything else that names them reads this table: cpu_isas(),
// the backend table's CPU rows (backend_cpu.cc), _core.cpu_isa_order() and
// through it rnnkern.backends, the tests and the benchmark.
struct CpuIsa {
  const CpuKernels* kernels;
  bool (*supported)();
};
const CpuIsa kCpuIsas[] = {
#if defined(RNNKERN_HAVE_X86)
    {&avx512::kKernels, has_avx512},
    {&avx2::kKernels, has_avx2},
#endif
    {&scalar::kKernels, always},
};

struct Detected {
  std::vector<std::string> compiled, names;
  std::vector<const CpuKernels*> kernels;
};

Detected detect() {
#if defined(RNNKERN_HAVE_X86)
  __builtin_cpu_init();
#endif
  pthread_atfork(nullptr, nullptr, on_fork_child);
  Detected d;
  for (const CpuIsa& e : kCpuIsas) {
    d.compiled.push_back(e.kernels->isa);
    if (!e.supported()) continue;
    d.names.push_back(e.kernels->isa);
    d.kernels.push_back(e.kernels);
  }
  return d;
}

const Detected& detected() {
  static const Detected d = detect();
  return d;
}

}  // namespace

const std::vector<std::string>& compiled_cpu_isas() { return detected().compiled; }
const std::vector<std::string>& cpu_isas() { return detected().names; }
const std::vector<const CpuKernels*>& cpu_isa_kernels() { return detected().kernels; }

bool in_forked_child() { return g_forked_child.load(); }

int cpu_threads(int requested) { return in_forked_child() ? 1 : std::max(1, requested); }

namespace {
struct ScratchBuf {
  float* ptr = nullptr;
  size_t cap = 0;  // floats
};
struct ScratchSet {
  ScratchBuf buf[kScratchSlots];
  size_t asked[kScratchSlots] = {};  // largest request per slot in this call, bytes
  size_t last_call = 0;              // sum of `asked` of the last finished call
  ~ScratchSet() {
    for (ScratchBuf& b : buf) std::free(b.ptr);
  }
};
thread_local ScratchSet t_scratch;
}  // namespace

float* scratch(int slot, size_t floats) {
  t_scratch.asked[slot] = std::max(t_scratch.asked[slot], floats * sizeof(float));
  ScratchBuf& b = t_scratch.buf[slot];
  if (floats > b.cap) {
    std::free(b.ptr);
    b.ptr = nullptr;
    b.cap = 0;
    const size_t bytes = ((std::max<size_t>(floats, 16) * sizeof(float)) + 63) / 64 * 64;
    b.ptr = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!b.ptr) throw std::bad_alloc();
    b.cap = bytes / sizeof(float);
  }
  return b.ptr;
}

void scratch_trim() {
  t_scratch.last_call = 0;
  for (size_t& a : t_scratch.asked) {
    t_scratch.last_call += a;
    a = 0;
  }
  for (ScratchBuf& b : t_scratch.buf)
    if (b.cap * sizeof(float) > kScratchKeepBytes) {
      std::free(b.ptr);
      b.ptr = nullptr;
      b.cap = 0;
    }
}

size_t scratch_last_call_bytes() { return t_scratch.last_call; }

size_t scratch_release() {
  size_t freed = 0;
  for (ScratchBuf& b : t_scratch.buf) {
    freed += b.cap * sizeof(float);
    std::free(b.ptr);
    b.ptr = nullptr;
    b.cap = 0;
  }
  return freed;
}

}  // namespace rnnkern
