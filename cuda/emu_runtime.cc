// rnnkern — cuda-emu: running a grid on the CPU (see emu_runtime.h).
#include "emu_runtime.h"

#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

namespace rnnkern {
namespace emu {

thread_local ThreadState tls;

void sync_block() {
  if (!tls.block) throw std::logic_error("rnnkern cuda-emu: RK_SYNC in a launch without blocks");
  tls.block->arrive_and_wait();
}

void sync_grid() {
  if (!tls.grid) throw std::logic_error("rnnkern cuda-emu: RK_GRID_SYNC outside a grid launch");
  tls.grid->arrive_and_wait();
}

namespace {

// The smem buffer: float4-aligned like CUDA's dynamic shared memory.
std::unique_ptr<float[]> smem_buffer(size_t bytes) {
  return std::unique_ptr<float[]>(new float[(bytes + 15) / 16 * 4 + 4]());
}

void set_ids(ThreadState& s, Dim grid, Dim block, int b, int t) {
  s.bdx = block.x;
  s.bdy = block.y;
  s.gdx = grid.x;
  s.gdy = grid.y;
  s.bx = b % grid.x;
  s.by = b / grid.x;
  s.tx = t % block.x;
  s.ty = t / block.x;
}

}  // namespace

void launch(Launch kind, Dim grid, Dim block, size_t smem_bytes,
            const std::function<void()>& body) {
  const int nb = grid.x * grid.y, nt = block.x * block.y;
  if (nb <= 0 || nt <= 0) return;
  const ThreadState saved = tls;
  if (kind == Launch::Independent) {
    auto smem = smem_buffer(smem_bytes);
    for (int b = 0; b < nb; ++b) {
      for (int t = 0; t < nt; ++t) {
        set_ids(tls, grid, block, b, t);
        tls.smem = smem.get();
        tls.block = nullptr;
        tls.grid = nullptr;
        body();
      }
    }
    tls = saved;
    return;
  }
  if (kind == Launch::Block) {
    auto smem = smem_buffer(smem_bytes);
    Barrier bar(nt);
    std::vector<std::thread> threads;
    threads.reserve(nt);
    for (int t = 0; t < nt; ++t) {
      threads.emplace_back([&, t] {
        for (int b = 0; b < nb; ++b) {
          set_ids(tls, grid, block, b, t);
          tls.smem = smem.get();
          tls.block = &bar;
          tls.grid = nullptr;
          body();
          bar.arrive_and_wait();  // the block is done before the next reuses smem
        }
      });
    }
    for (auto& th : threads) th.join();
    return;
  }
  // Grid: everything alive at once.
  std::vector<std::unique_ptr<float[]>> smem;
  std::vector<std::unique_ptr<Barrier>> bars;
  for (int b = 0; b < nb; ++b) {
    smem.push_back(smem_buffer(smem_bytes));
    bars.emplace_back(new Barrier(nt));
  }
  Barrier grid_bar(nb * nt);
  std::vector<std::thread> threads;
  threads.reserve((size_t)nb * nt);
  for (int b = 0; b < nb; ++b) {
    for (int t = 0; t < nt; ++t) {
      threads.emplace_back([&, b, t] {
        set_ids(tls, grid, block, b, t);
        tls.smem = smem[b].get();
        tls.block = bars[b].get();
        tls.grid = &grid_bar;
        body();
      });
    }
  }
  for (auto& th : threads) th.join();
}

}  // namespace emu
}  // namespace rnnkern
