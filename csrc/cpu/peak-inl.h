// rnnkern — this machine's fp32 FMA ceiling for one ISA, on one thread:
// 12 independent accumulator chains of Vec FMAs (more than latency x ports on
// current x86 cores), run for about `seconds`. rnnkern-bench --peak reports it
// so every kernel figure can be read as a fraction of the physical limit.
#pragma once

#include <chrono>

inline double peak_gflops(double seconds) {
  constexpr int kChains = 12;
  Vec acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = Vec(1.0f + 1e-3f * i);
  const Vec a(0.999999f), b(1e-7f);
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0.0;
  int64_t iters = 0;
  const int64_t batch = 1 << 16;
  do {
    for (int64_t it = 0; it < batch; ++it) {
      for (int i = 0; i < kChains; ++i) acc[i] = fmadd(acc[i], a, b);
    }
    iters += batch;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (elapsed < seconds);
  Vec sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = sum + acc[i];
  alignas(64) float out[Vec::W];
  sum.store(out);
  volatile float sink = out[0];
  (void)sink;
  return 2.0 * Vec::W * kChains * (double)iters / elapsed * 1e-9;
}
