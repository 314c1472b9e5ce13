// rnnkern — a stand-alone run of the cuda-emu kernels for the sanitizer builds
// of CI (ThreadSanitizer over the block-cooperative kernels, whose emulated
// threads share memory and meet at barriers; AddressSanitizer over the
// indexing). No Python: every cell and GRU variant, with masks, go_backwards
// and dropout masks, forward and BPTT, at sizes spanning several tiles: on the
// per-step family twice (the second with the time loops captured as a graph and
// replayed), which must agree bitwise, and on the persistent family in four
// plans (three blocks as one cluster with k chunks of 7 and with h one chunk,
// pushed through distributed shared memory; with the grid's barrier; with no
// barrier but the step-tagged hand-off; the automatic partition), twice each
// (bitwise equal), each within float rounding of the per-step result; the
// per-step family on the tensor cores (R3, as graphs) likewise; precision
// bf16 on the per-step family and the tensor-core persistent one; every value
// finite. The comparison with the reference is the Python tests' job
// (test_cuda.py).
//
//   g++ -std=c++20 -O1 -g -fsanitize=thread -Icsrc/include -Icuda
//       tests/cpp/emu_selftest.cc cuda/backend_emu.cc cuda/emu_runtime.cc -o emu_selftest
// (one line; .ci/run builds it this way)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "emu_runtime.h"
#include "gpu_api.h"

using namespace rnnkern;

namespace {

struct Run {
  std::vector<float> y, hT, cT, dx, dW, dU, db, dh0, dc0;
};

Run run(const RnnConfig& cfg, bool masked, bool dropout, uint32_t seed) {
  const int64_t N = cfg.N, T = cfg.T, C = cfg.C, H = cfg.H, G = num_gates(cfg.cell);
  const int64_t GH = G * H;
  const bool two_bias = cfg.cell == Cell::GRU && cfg.reset_after;
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  auto fill = [&](size_t n) {
    std::vector<float> v(n);
    for (float& e : v) e = u(gen);
    return v;
  };
  std::vector<float> x = fill(N * T * C), W = fill(C * GH), U = fill(H * GH);
  std::vector<float> b = fill(two_bias ? 2 * GH : GH), h0 = fill(N * H), c0 = fill(N * H);
  std::vector<uint8_t> mask(N * T);
  for (auto& m : mask) m = (gen() % 3) != 0;
  std::vector<float> im(G * N * C), rm(G * N * H);
  for (float& m : im) m = (gen() % 5) ? 1.25f : 0.0f;
  for (float& m : rm) m = (gen() % 5) ? 1.25f : 0.0f;
  LayerArgs in;
  in.x = x.data();
  in.W = W.data();
  in.U = U.data();
  in.b = b.data();
  in.h0 = h0.data();
  in.c0 = cfg.cell == Cell::LSTM ? c0.data() : nullptr;
  in.mask = masked ? mask.data() : nullptr;
  in.input_masks = dropout ? im.data() : nullptr;
  in.recurrent_masks = dropout ? rm.data() : nullptr;
  Run r;
  r.y.resize(cfg.return_sequences ? N * T * H : N * H);
  r.hT.resize(N * H);
  r.cT.resize(N * H);
  in.y = r.y.data();
  in.hT = r.hT.data();
  in.cT = cfg.cell == Cell::LSTM ? r.cT.data() : nullptr;
  const Backend& be = gpu_emu::backend();
  auto ws = be.forward(be, cfg, in, nullptr);
  std::vector<float> dy = fill(r.y.size()), dhT = fill(N * H), dcT = fill(N * H);
  r.dx.resize(N * T * C);
  r.dW.resize(C * GH);
  r.dU.resize(H * GH);
  r.db.resize(b.size());
  r.dh0.resize(N * H);
  r.dc0.resize(N * H);
  GradArgs g;
  g.dy = dy.data();
  g.dhT = dhT.data();
  g.dcT = cfg.cell == Cell::LSTM ? dcT.data() : nullptr;
  g.dx = r.dx.data();
  g.dW = r.dW.data();
  g.dU = r.dU.data();
  g.db = r.db.data();
  g.dh0 = r.dh0.data();
  g.dc0 = cfg.cell == Cell::LSTM ? r.dc0.data() : nullptr;
  be.backward(be, *ws, 1, g, nullptr);
  return r;
}

bool same(const std::vector<float>& a, const std::vector<float>& b, const char* what,
          const char* name) {
  for (float v : a)
    if (!std::isfinite(v)) {
      std::printf("FAIL %s: %s has a non-finite value\n", what, name);
      return false;
    }
  if (a.size() != b.size() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) {
    std::printf("FAIL %s: %s differs between two identical runs\n", what, name);
    return false;
  }
  return true;
}

// a and b agree within tol: |a - b| <= tol (1 + |a|) everywhere; b is the run on
// `where`, a the per-step one
bool agree(const std::vector<float>& a, const std::vector<float>& b, const char* what,
           const char* name, float tol, const char* where) {
  if (a.size() != b.size()) {
    std::printf("FAIL %s: %s sizes differ\n", what, name);
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i)
    if (!(std::fabs(a[i] - b[i]) <= tol * (1.0f + std::fabs(a[i])))) {
      std::printf("FAIL %s: %s[%zu] = %g %s, %g per step\n", what, name, i, (double)b[i],
                  where, (double)a[i]);
      return false;
    }
  return true;
}

// to float rounding (1e-4), the persistent family against the per-step one
bool near(const std::vector<float>& a, const std::vector<float>& b, const char* what,
          const char* name) {
  return agree(a, b, what, name, 1e-4f, "on the persistent family");
}

// two precision-bf16 runs agree to a few bf16 roundings (1e-2: their products are
// exact, but an operand within float rounding of a bf16 tie may round either way)
bool near_bf16(const std::vector<float>& a, const std::vector<float>& b, const char* what,
               const char* name) {
  return agree(a, b, what, name, 1e-2f, "in bf16 on the tensor cores");
}

template <class F>
bool all_fields(const Run& a, const Run& b, const RnnConfig& cfg, const char* what, F cmp) {
  return cmp(a.y, b.y, what, "y") && cmp(a.hT, b.hT, what, "h_T") && cmp(a.dx, b.dx, what, "dx") &&
         cmp(a.dW, b.dW, what, "dW") && cmp(a.dU, b.dU, what, "dU") && cmp(a.db, b.db, what, "db") &&
         cmp(a.dh0, b.dh0, what, "dh0") &&
         (cfg.cell != Cell::LSTM || (cmp(a.cT, b.cT, what, "c_T") && cmp(a.dc0, b.dc0, what, "dc0")));
}

}  // namespace

int main(int argc, char** argv) {
  int failures = 0, cases = 0;
  // argv[1] = "--batch19": only the variants with a batch of 19 (0: forward,
  // sequences; 1: go_backwards, dropout, the mma GEMMs) -- CI's ThreadSanitizer run,
  // where the races looked for do not depend on the batch (the AddressSanitizer
  // run, where the tails do, takes all four)
  const int variants = argc > 1 && std::strcmp(argv[1], "--batch19") == 0 ? 2 : 4;
  const Cell cells[] = {Cell::SimpleRNN, Cell::LSTM, Cell::GRU, Cell::GRU};
  for (int ci = 0; ci < 4; ++ci) {
    for (int variant = 0; variant < variants; ++variant) {   // 2, 3: a batch of 5
      RnnConfig cfg;
      cfg.cell = cells[ci];
      cfg.reset_after = ci != 3;
      cfg.go_backwards = variant % 2 == 1;
      cfg.return_sequences = variant % 2 == 0;
      cfg.training = true;
      cfg.N = variant < 2 ? 19 : 5;
      cfg.T = 3;
      cfg.C = 18;
      cfg.H = 33;
      const bool masked = true, dropout = variant % 2 == 1;
      const auto t0 = std::chrono::steady_clock::now();
      char what[96];
      std::snprintf(what, sizeof what, "cell %d reset_after %d variant %d", (int)cfg.cell,
                    (int)cfg.reset_after, variant);
      // the per-step family, then again with its time loops captured as a graph
      gpu_emu::set_plan("steps");
      const Run a = run(cfg, masked, dropout, 7u + ci);
      gpu_emu::set_graphs(true);
      const Run b = run(cfg, masked, dropout, 7u + ci);
      gpu_emu::set_graphs(false);
      bool ok = all_fields(a, b, cfg, what, same);
      // the persistent family: a forced partition as one cluster (the cluster's
      // barrier), the same with h one chunk (pushed into the blocks' shared memory
      // through rk_dsmem, not staged), with the grid's barrier, then the automatic one
      // (the step-tagged hand-off in ThreadSanitizer's run only: it changes the
      // synchronization, not the indexing AddressSanitizer checks)
      for (const char* plan : {"persistent:3,32,7", "persistent:3,32", "persistent:3,32,7,grid",
                               "persistent:3,32,7,flags", "persistent"}) {
        if (variants == 4 && std::strstr(plan, "flags")) continue;
        const long before = gpu_emu::persistent_count();
        const long clusters = gpu_emu::cluster_count();
        gpu_emu::set_plan(plan);
        const Run p = run(cfg, masked, dropout, 7u + ci);
        const Run p2 = run(cfg, masked, dropout, 7u + ci);
        if (gpu_emu::persistent_count() != before + 4) {
          std::printf("FAIL %s: plan %s did not run both loops persistent\n", what, plan);
          ok = false;
        }
        const bool grid = std::strstr(plan, "grid") || std::strstr(plan, "flags");
        if (std::strncmp(plan, "persistent:3,32", 15) == 0 && !grid &&
            gpu_emu::cluster_count() != clusters + 4) {
          std::printf("FAIL %s: plan %s did not run as one cluster\n", what, plan);
          ok = false;
        }
        ok = all_fields(p, p2, cfg, what, same) && all_fields(a, p, cfg, what, near) && ok;
      }
      gpu_emu::set_plan("auto");
      // the hoisted GEMMs on the tensor-core kernel (3xTF32, run lane by lane here),
      // and with them (the automatic plan, a batch of 19) the persistent family's
      // recurrent products: fp32 accuracy, so within float rounding of the SIMT
      // kernels' results; with
      // dropout (every per-gate, masked GEMM form), once a cell (the emulated warps
      // are slow, under ThreadSanitizer most of all)
      if (variant == 1) {
        const long before = gpu_emu::mma_gemm_count(-1);
        gpu_emu::set_gemm("mma");
        const Run m = run(cfg, masked, dropout, 7u + ci);
        gpu_emu::set_gemm("auto");
        if (gpu_emu::mma_gemm_count(-1) == before) {
          std::printf("FAIL %s: no GEMM ran on the mma kernel\n", what);
          ok = false;
        }
        ok = all_fields(a, m, cfg, what, near) && ok;
        // R3 (for LSTM and GRU reset_before, the two-phase form: the ring and the
        // pairs do not depend on the cell, and the reference tests cover every cell):
        // the per-step family with its product on the tensor cores (the forward
        // step's fragments, the backward's per-step GEMMs), its loops replayed as graphs
        // (its chunks staged by asynchronous copies: done at the wait, then as issued,
        // where ThreadSanitizer sees a stage rewritten while it is read)
        // (150 units: four k chunks, so the ring of three stages wraps: chunk 3 staged
        // where chunk 0 was read), against the FFMA step
        // (ThreadSanitizer's run: LSTM only, with no FFMA run, the races looked for
        // being the ring's and not the cell's; 18 s a run there)
        if (ci == 1 || (ci == 3 && variants == 4)) {
          RnnConfig wide = cfg;
          wide.H = 150;
          gpu_emu::set_plan("steps:mma");
          gpu_emu::set_graphs(true);
          const Run r3 = run(wide, masked, dropout, 7u + ci);
          gpu_emu::set_graphs(false);
          emu::set_cp_async_at_issue(true);
          const Run r3i = run(wide, masked, dropout, 7u + ci);
          emu::set_cp_async_at_issue(false);
          ok = all_fields(r3, r3i, wide, what, same) && ok;
          if (variants == 4) {
            gpu_emu::set_plan("steps:simt");
            const Run f3 = run(wide, masked, dropout, 7u + ci);
            ok = all_fields(f3, r3, wide, what, near) && ok;
          }
          // precision bf16's one product (no dropout masks) reads U as bf16 pairs of
          // rows (75 pair rows: chunks of 24, 24, 24 and 3): under ThreadSanitizer with
          // the copies as issued, bitwise those done at the wait; under AddressSanitizer
          // against the FFMA step (its staging's bounds)
          RnnConfig w16 = wide;
          w16.precision = Precision::BF16;
          gpu_emu::set_plan("steps:mma");
          const Run p16 = run(w16, masked, false, 7u + ci);
          if (variants == 2) {
            emu::set_cp_async_at_issue(true);
            const Run p16i = run(w16, masked, false, 7u + ci);
            emu::set_cp_async_at_issue(false);
            ok = all_fields(p16, p16i, w16, what, same) && ok;
          } else {
            gpu_emu::set_plan("steps:simt");
            const Run f16 = run(w16, masked, false, 7u + ci);
            ok = all_fields(f16, p16, w16, what, near_bf16) && ok;
          }
          gpu_emu::set_plan("auto");
        }
      }
      // precision bf16 (operands rounded as they are staged, read and stored: the
      // recurrence's staging, the backward's dG stores, the GEMMs' loads; one
      // tensor-core product): the per-step family against the persistent one on
      // the tensor cores, with dropout, for LSTM and GRU reset_before (its second
      // phase's r * h); a batch of 5, so AddressSanitizer's run only: the rounding
      // adds no synchronization for ThreadSanitizer to check, and the emulated
      // warps are slowest there
      if (variant == 3 && (ci == 1 || ci == 3)) {
        RnnConfig c16 = cfg;
        c16.precision = Precision::BF16;
        gpu_emu::set_plan("steps");
        const Run s16 = run(c16, masked, dropout, 7u + ci);
        gpu_emu::set_gemm("mma");
        gpu_emu::set_plan("persistent:mma");
        const Run m16 = run(c16, masked, dropout, 7u + ci);
        gpu_emu::set_gemm("auto");
        gpu_emu::set_plan("auto");
        ok = all_fields(s16, m16, c16, what, near_bf16) && ok;
      }
      std::printf("%s %s: %.1f s\n", ok ? "ok  " : "FAIL", what,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      failures += !ok;
      ++cases;
    }
  }
  if (gpu_emu::graph_count() == 0) {
    std::printf("FAIL: no time loop ran as a graph\n");
    ++failures;
  }
  if (gpu_emu::graph_update_count() == 0) {   // the same T again: the cached graph updated
    std::printf("FAIL: no cached graph was updated in place\n");
    ++failures;
  }
  // the fragment API: TF32 rounding (ties away from zero, Inf/NaN kept), one m16n8k8
  // mma against a double-precision product of the rounded operands, two shuffles
  {
    const float one = 1.0f, tie = 1.0f + std::ldexp(1.0f, -11), below = 1.0f + std::ldexp(1.0f, -12);
    const float up = 1.0f + std::ldexp(1.0f, -10), inf = INFINITY;
    const bool ok = emu::to_tf32(tie) == up && emu::to_tf32(-tie) == -up &&
                    emu::to_tf32(below) == one && emu::to_tf32(one) == one &&
                    emu::to_tf32(inf) == inf && std::isnan(emu::to_tf32(NAN));
    if (!ok) {
      std::printf("FAIL: TF32 rounding\n");
      ++failures;
    }
    std::mt19937 gen(3);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> A(128), B(64), C(128), D(128), S(32), A16(256), B16(128), D16(128);
    for (float& v : A) v = u(gen);
    for (float& v : B) v = u(gen);
    for (float& v : C) v = u(gen);
    for (float& v : A16) v = u(gen);
    for (float& v : B16) v = u(gen);
    gpu_emu::mma_probe_run(A.data(), B.data(), C.data(), D.data(), S.data(), A16.data(),
                           B16.data(), D16.data());
    double worst = 0.0;
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 8; ++j) {
        double ref = C[i * 8 + j], ref16 = C[i * 8 + j];
        for (int k = 0; k < 8; ++k)
          ref += (double)emu::to_tf32(A[i * 8 + k]) * (double)emu::to_tf32(B[k * 8 + j]);
        for (int k = 0; k < 16; ++k)
          ref16 += (double)emu::to_bf16(A16[i * 16 + k]) * (double)emu::to_bf16(B16[k * 8 + j]);
        worst = std::max(worst, std::fabs(ref - D[i * 8 + j]));
        worst = std::max(worst, std::fabs(ref16 - D16[i * 8 + j]));
      }
    bool shfl_ok = true;
    for (int l = 0; l < 32; ++l) shfl_ok = shfl_ok && S[l] == (float)(l ^ 1) + 100.0f * (float)(l ^ 16);
    if (!(worst < 1e-5) || !shfl_ok) {
      std::printf("FAIL: mma probe (max error %g), shuffles %s\n", worst, shfl_ok ? "ok" : "wrong");
      ++failures;
    }
    ++cases;
  }
  std::printf("cuda-emu selftest: %d cases, %d failed\n", cases, failures);
  return failures ? 1 : 0;
}
