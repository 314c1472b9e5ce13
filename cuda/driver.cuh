// rnnkern — the host side of the GPU backends: one layer's forward and BPTT as a
// sequence of the kernels of kernels.cuh. Included once per build, after the
// build has defined (in namespace rnnkern::RK_GPU_NS):
//   struct Runtime { static void* alloc(size_t); static void release(void*);
//                    static void to_device(void*, const void*, size_t);
//                    static void to_host(void*, const void*, size_t);
//                    static void copy(void*, const void*, size_t);   // device to device
//                    static void zero(void*, size_t); };
//   struct StreamScope { explicit StreamScope(uintptr_t stream); }
//                  (while it lives, this thread's launches, copies, allocations
//                  and releases are of that stream: LayerArgs::stream)
//   class Graph { void begin_capture(); void end_capture(); void instantiate();
//                 bool update(Graph& fresh); void replay(); }
//                  (the launches this thread makes between the first two are
//                  recorded, not run; replay runs them: a CUDA graph, or its
//                  emulation; update takes a same-shaped capture's arguments)
//   RK_LAUNCH(kind, grid_x, grid_y, block_x, block_y, smem_bytes, kernel, args...)
//   RK_LAUNCH_GRID(grid_x, grid_y, block_x, block_y, smem_bytes, kernel, arg)
//                  (a grid-cooperative launch: the whole grid resident at once)
//   RK_LAUNCH_CLUSTER(cluster, grid_x, grid_y, block_x, block_y, smem_bytes, kernel, arg)
//                  (thread-block clusters of `cluster` blocks along x)
//   Runtime::coresident_blocks(kernel, threads, smem): how many blocks of that
//                  kernel the device runs at once
//   Runtime::cluster_fits(kernel, cluster, threads, smem): whether one cluster of
//                  that many such blocks can run
//   Runtime::limits(): the current device's DeviceLimits (below)
// and it defines run_forward / run_backward and the backend's kernel-table entry
// (backend(), rnnkern/backend.h) calling them.
// No allocation inside the time loops: every buffer is made before them.
#pragma once
//
// The host side is three files, by phase: launch.cuh (buffers, plans, graphs,
// GEMM and persistent launches), forward.cuh (run_forward), backward.cuh
// (run_backward).

#include "launch.cuh"
#include "forward.cuh"
#include "backward.cuh"
