// rnnkern — ISA detection (once, cpuid) and the kernel table.
#include <pthread.h>

#include <atomic>
#include <stdexcept>

#include "kernels.h"

namespace rnnkern {
namespace {

std::atomic<bool> g_forked_child{false};

void on_fork_child() { g_forked_child.store(true); }

struct Entry {
  const CpuKernels* kernels;
  bool (*supported)();
};

bool always() { return true; }

// Widest first.
const Entry kTable[] = {
    {&scalar::kKernels, always},
};

std::vector<std::string> detect() {
  pthread_atfork(nullptr, nullptr, on_fork_child);
  std::vector<std::string> out;
  for (const Entry& e : kTable)
    if (e.supported()) out.push_back(e.kernels->isa);
  return out;
}

}  // namespace

const std::vector<std::string>& cpu_isas() {
  static const std::vector<std::string> isas = detect();
  return isas;
}

const CpuKernels& cpu_kernels(const std::string& isa) {
  for (const Entry& e : kTable)
    if (isa == e.kernels->isa && e.supported()) return *e.kernels;
  throw std::invalid_argument("rnnkern: CPU ISA '" + isa + "' is not available here");
}

bool in_forked_child() { return g_forked_child.load(); }

}  // namespace rnnkern
