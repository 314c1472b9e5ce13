// rnnkern — the one kernel table. Every compiled backend (each CPU ISA, cuda-emu,
// cuda) fills one Backend; the bindings look backends up by name and run a
// layer's forward, BPTT and weight packing through it and nothing else. The
// memory a backend needs (the CPU's recycled workspace blocks, the GPU's
// device pool) and the packed weights belong to the backend, not the bindings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rnnkern/shapes.h"

namespace rnnkern {

struct CpuKernels;  // a CPU ISA's raw kernels (csrc/cpu/kernels.h)

// A forward's arrays (layouts: shapes.h): host memory, or, on a device backend
// with on_device set, that backend's device memory (then every pointer here is).
struct LayerArgs {
  const float* x = nullptr;                // [N,T,C]
  const float* W = nullptr;                // [C,G*H]
  const float* U = nullptr;                // [H,G*H]
  const float* b = nullptr;                // [G*H] or [2,G*H] (GRU reset_after), or null
  const float* h0 = nullptr;               // [N,H]
  const float* c0 = nullptr;               // [N,H] LSTM
  const uint8_t* mask = nullptr;           // [N,T] or null
  const float* input_masks = nullptr;      // [G,N,C] per-gate dropout, or null
  const float* recurrent_masks = nullptr;  // [G,N,H] per-gate dropout, or null
  float* y = nullptr;                      // [N,T,H] (return_sequences) or [N,H]
  float* hT = nullptr;                     // [N,H]
  float* cT = nullptr;                     // [N,H] LSTM
  bool on_device = false;
  // on_device only: the stream the call's work is queued on (a cudaStream_t as an
  // integer; 0 the legacy default stream). Device results are ready in that
  // stream's order: the call returns without waiting for them.
  uintptr_t stream = 0;
  // on_device only: a training forward's backward reads W and U from the caller's
  // arrays instead of copies, so the caller keeps them alive and unchanged until
  // the backward (rnnkern.torch: autograd's saved-tensor version check).
  bool weights_in_place = false;
  // on_device only: the weights in PyTorch's layout (rnnkern/_torch_layout.py): W
  // is weight_ih [G*H,C], U weight_hh [G*H,H], gate blocks in torch's order, b
  // bias_ih and b_hh bias_hh [G*H] (both or neither). The forward converts them to
  // the kernels' layout on the device (one pass each, every call: never stale).
  bool torch_layout = false;
  const float* b_hh = nullptr;
};

// A backward's arrays: the output gradients in, the input gradients out.
struct GradArgs {
  const float* dy = nullptr;   // like y
  const float* dhT = nullptr;  // [N,H]
  const float* dcT = nullptr;  // [N,H] LSTM
  float *dx = nullptr, *dW = nullptr, *dU = nullptr, *db = nullptr, *dh0 = nullptr,
        *dc0 = nullptr;        // db null without bias
  bool on_device = false;
  uintptr_t stream = 0;        // as LayerArgs::stream
  // the forward ran in torch_layout: dW, dU, db are written in PyTorch's layout
  // (d weight_ih, d weight_hh, d bias_ih) and db_hh gets d bias_hh
  float* db_hh = nullptr;
};

// Weights packed once for one backend's kernels, reused by its forward and
// backward while they are unchanged. cfg holds what they were packed for (cell,
// reset_after, H; C when W was packed).
struct Packed {
  std::string backend;
  RnnConfig cfg;
  bool has_kernel = false;  // W packed too
  virtual ~Packed() = default;
  virtual size_t nbytes() const = 0;
};

// What a training forward keeps for its backward. The arrays the backward reads
// again (x, W, U, mask, dropout masks) must stay alive and unchanged while it
// exists: the CPU workspace points at them (the GPU ones keep device copies).
struct Workspace {
  RnnConfig cfg;
  virtual ~Workspace() = default;
  virtual size_t nbytes() const = 0;   // memory it holds
};

struct Backend {
  const char* name;
  bool device;  // a GPU backend: it takes on_device arrays
  // One layer's forward (packed: from this backend's pack, or null); the workspace
  // comes back when cfg.training, else null.
  std::unique_ptr<Workspace> (*forward)(const Backend&, const RnnConfig&, const LayerArgs&,
                                        const Packed*);
  // Its BPTT, with cfg.threads replaced by `threads` (packed: as given to the forward).
  void (*backward)(const Backend&, const Workspace&, int threads, const GradArgs&,
                   const Packed*);
  // U (and W when not null) packed for this backend; null where it packs nothing.
  std::unique_ptr<Packed> (*pack)(const Backend&, const RnnConfig&, const float* U,
                                  const float* W);
  const CpuKernels* cpu;  // a CPU ISA's raw kernels (gemm, activate, peak); null otherwise
};

// The backend of that name: a CPU ISA compiled in and supported here, "cuda-emu",
// or "cuda" (always found: where no CUDA build, driver or device exists its
// entries throw std::runtime_error saying which). std::invalid_argument otherwise.
// (csrc/backend.cc)
const Backend& find_backend(const std::string& name);


// The table's CPU and GPU halves, for find_backend: a compiled, supported CPU ISA
// (else null; backend_cpu.cc, its rows made from dispatch.cc's kCpuIsas), and the GPU backends' entries (backend_emu.cc, backend_cuda.cu or
// its stub).
const Backend* find_cpu_backend(const std::string& isa);
namespace gpu_emu { const Backend& backend(); }
namespace gpu_cuda { const Backend& backend(); }

}  // namespace rnnkern
