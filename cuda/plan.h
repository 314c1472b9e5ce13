// rnnkern — the GPU time-loop plan a caller may force (set_plan,
// RNNKERN_FORCE_PLAN): parsed here, plain C++, for the cuda, cuda-emu and stub
// builds alike.
#pragma once

#include <stdexcept>
#include <string>

namespace rnnkern {

struct PlanChoice {
  enum Kind { Auto, Steps, Persistent } kind = Auto;
  int blocks = 0, threads = 0, kc = 0;   // 0: chosen
  // the recurrent product of either family: chosen (the tensor cores where the
  // device's pass the fragment probe and the batch fills half an mma tile), FFMA
  // (simt) or the tensor cores (mma)
  enum Product { AnyProduct, Simt, Mma } product = AnyProduct;
  // the step's barrier where the grid is more than one block: chosen (a thread-block
  // cluster's, the grid being one cluster, where the device launches clusters of that
  // many blocks; else the grid's), the grid's (grid), the cluster's (cluster), or none:
  // a step-tagged hand-off instead (flags; SeqPlan::flags), grid-cooperative
  enum Barrier { AnyBarrier, GridBarrier, ClusterBarrier, FlagHandoff } barrier = AnyBarrier;
  // the exchanged rows (h forward, dG backward) staged from memory every step
  // (staged) even where the grid is one block or one cluster and they are one chunk,
  // whose blocks otherwise write them into each other's shared memory
  // (SeqPlan::push): the comparison the probe times
  bool staged = false;
};
// "auto", "steps[:mma|:simt]" (the per-step family, its product chosen, on the tensor
// cores: R3, or on FFMA), or
// "persistent[:[BLOCKS,THREADS[,KC]][,mma|,simt][,cluster|,grid|,flags][,staged]]"
// ("persistent:mma" alone: the automatic partition with the tensor-core product;
// the words in any order, each kind at most once).
inline PlanChoice parse_plan(const std::string& text) {
  PlanChoice c;
  if (text.empty() || text == "auto") return c;
  if (text == "steps" || text == "steps:mma" || text == "steps:simt") {
    c.kind = PlanChoice::Steps;
    if (text != "steps") c.product = text == "steps:mma" ? PlanChoice::Mma : PlanChoice::Simt;
    return c;
  }
  const std::string head = "persistent";
  const std::string form =
      "'persistent[:BLOCKS,THREADS[,KC]][,mma|,simt][,cluster|,grid|,flags][,staged]'";
  if (text.compare(0, head.size(), head) != 0)
    throw std::invalid_argument("plan must be 'auto', 'steps[:mma|:simt]', 'persistent' or " +
                                form + ", got '" + text + "'");
  c.kind = PlanChoice::Persistent;
  if (text.size() == head.size()) return c;
  size_t i = head.size();
  if (text[i] != ':') throw std::invalid_argument("plan: expected ':' after 'persistent' in '" + text + "'");
  std::string rest = text.substr(i + 1);
  // the words, last, in any order: the product, the barrier, "staged" (each once)
  bool words = false;
  for (;;) {
    const size_t comma = rest.rfind(',');
    if (comma == 0) break;   // ",word" with nothing before it: malformed, below
    const std::string w = comma == std::string::npos ? rest : rest.substr(comma + 1);
    auto once = [&](bool taken, const char* what) {
      if (taken) throw std::invalid_argument("plan: " + std::string(what) + " in '" + text + "'");
    };
    if (w == "mma" || w == "simt") {
      once(c.product != PlanChoice::AnyProduct, "two products");
      c.product = w == "mma" ? PlanChoice::Mma : PlanChoice::Simt;
    } else if (w == "cluster" || w == "grid" || w == "flags") {
      once(c.barrier != PlanChoice::AnyBarrier, "two barriers");
      c.barrier = w == "cluster" ? PlanChoice::ClusterBarrier
                  : w == "grid"  ? PlanChoice::GridBarrier
                                 : PlanChoice::FlagHandoff;
    } else if (w == "staged") {
      once(c.staged, "'staged' twice");
      c.staged = true;
    } else {
      break;
    }
    rest = comma == std::string::npos ? std::string() : rest.substr(0, comma);
    words = true;
  }
  if (rest.empty()) {
    if (!words)
      throw std::invalid_argument("plan: expected " + form + ", got '" + text + "'");
    return c;
  }
  int v[3] = {0, 0, 0}, count = 0;
  i = 0;
  for (bool done = false; !done;) {
    size_t j = i;
    while (j < rest.size() && rest[j] >= '0' && rest[j] <= '9') ++j;
    if (j == i || j - i > 6 || count == 3)
      throw std::invalid_argument("plan: expected " + form + ", got '" + text + "'");
    v[count++] = std::stoi(rest.substr(i, j - i));
    done = j == rest.size();
    if (!done && rest[j] != ',') throw std::invalid_argument("plan: bad separator in '" + text + "'");
    i = j + 1;
  }
  if (count < 2 || v[0] < 1 || v[1] < 1 || v[1] > 1024)
    throw std::invalid_argument("plan: " + form + " needs BLOCKS >= 1 and "
                                "1 <= THREADS <= 1024, got '" + text + "'");
  c.blocks = v[0];
  c.threads = v[1];
  c.kc = v[2];
  return c;
}

// The hoisted GEMMs' kernel (set_gemm, RNNKERN_GEMM): "auto" (the tensor cores
// where the device's fragments pass the probe, else SIMT), "simt", "mma" (the
// tensor cores, the C tile chosen), or "mma:TILE" (the tensor cores with that C
// tile, rows x columns: kGemmTiles, kernels.cuh's GemmTile in the same order).
inline constexpr const char* kGemmTiles[] = {"32x64", "64x64", "128x64", "128x128"};
inline constexpr int kGemmTileCount = 4;
struct GemmChoice {
  enum Kind { Auto, Simt, Mma } kind = Auto;
  int tile = -1;   // an index of kGemmTiles, or -1: chosen (Mma only)
};
inline std::string gemm_text(const GemmChoice& c) {
  if (c.kind != GemmChoice::Mma) return c.kind == GemmChoice::Auto ? "auto" : "simt";
  return c.tile < 0 ? "mma" : std::string("mma:") + kGemmTiles[c.tile];
}
// A tile's index from its name ("128x64"), or -1.
inline int gemm_tile_index(const std::string& name) {
  for (int t = 0; t < kGemmTileCount; ++t)
    if (name == kGemmTiles[t]) return t;
  return -1;
}
// The tiles' names for an error message: "32x64, 64x64, 128x64, 128x128".
inline std::string gemm_tile_names() {
  std::string names;
  for (int t = 0; t < kGemmTileCount; ++t) names += std::string(t ? ", " : "") + kGemmTiles[t];
  return names;
}
inline GemmChoice parse_gemm(const std::string& text) {
  GemmChoice c;
  if (text == "auto") return c;
  if (text == "simt" || text == "mma") {
    c.kind = text == "simt" ? GemmChoice::Simt : GemmChoice::Mma;
    return c;
  }
  if (text.compare(0, 4, "mma:") == 0) {
    c.kind = GemmChoice::Mma;
    c.tile = gemm_tile_index(text.substr(4));
    if (c.tile >= 0) return c;
  }
  throw std::invalid_argument("gemm must be 'auto', 'simt', 'mma' or 'mma:TILE' (TILE one of " +
                              gemm_tile_names() + "), got '" + text + "'");
}

// Whether the automatic plan is timed on first use (set_tune, RNNKERN_TUNE): off
// (the default: the analytic partition, the same in every process), quick (the
// analytic partition and its neighbours, a few steps each, within ~50 ms), full
// (a wider sweep of blocks and threads, more steps, best of three).
enum class TuneMode : int { Off = 0, Quick = 1, Full = 2 };
inline TuneMode parse_tune(const std::string& text) {
  if (text.empty() || text == "off") return TuneMode::Off;
  if (text == "quick") return TuneMode::Quick;
  if (text == "full") return TuneMode::Full;
  throw std::invalid_argument("tune must be 'off', 'quick' or 'full', got '" + text + "'");
}
inline const char* tune_name(TuneMode m) {
  return m == TuneMode::Off ? "off" : m == TuneMode::Quick ? "quick" : "full";
}
}  // namespace rnnkern
