// rnnkern — the one switch from a layer's runtime options to template
// parameters (flash-attention's static_switch.h): a kernel is written once
// against a CellKind K (K::cell, K::reset_after, K::training, K::gates,
// K::slots) and instantiated for every kind here, so no kernel writes the
// cell switch itself.
//
//   with_cell(cfg.cell, cfg.reset_after, [&](auto k) {
//     using K = decltype(k);
//     return panel_floats<K::gates>(H, H);
//   });
//   with_cell(cfg.cell, cfg.reset_after, training, [&](auto k) { ... });
//
// Every branch must return the same type. Host code (launch and dispatch);
// the per-cell math the kernels then call is cells.h.
#pragma once

#include "rnnkern/cells.h"

namespace rnnkern {

// A cell kind at compile time. reset_after is normalised to false for cells
// other than GRU, so those are instantiated once.
template <Cell C, bool RESET_AFTER = false, bool TRAINING = false>
struct CellKind {
  static constexpr Cell cell = C;
  static constexpr bool reset_after = C == Cell::GRU && RESET_AFTER;
  // training: the forward saves the activations of BPTT (slots and h_prev);
  // a forward-only distinction (kernels that do not read it get false)
  static constexpr bool training = TRAINING;
  static constexpr int gates = num_gates(C);
  static constexpr bool gru_reset_after = C == Cell::GRU && reset_after;
  static constexpr bool gru_reset_before = C == Cell::GRU && !reset_after;
  using slots = Slots<C, reset_after>;
};

namespace {

// f(CellKind<cell, reset_after>{}): training false (packing, sizes, backward).
template <class F>
decltype(auto) with_cell(Cell cell, bool reset_after, F&& f) {
  switch (cell) {
    case Cell::SimpleRNN: return f(CellKind<Cell::SimpleRNN>{});
    case Cell::LSTM: return f(CellKind<Cell::LSTM>{});
    default:
      if (reset_after) return f(CellKind<Cell::GRU, true>{});
      return f(CellKind<Cell::GRU, false>{});
  }
}

// f(CellKind<cell, reset_after, training>{}) (a forward: both are instantiated).
template <class F>
decltype(auto) with_cell(Cell cell, bool reset_after, bool training, F&& f) {
  return with_cell(cell, reset_after, [&](auto k) -> decltype(auto) {
    using K = decltype(k);
    if (training) return f(CellKind<K::cell, K::reset_after, true>{});
    return f(CellKind<K::cell, K::reset_after, false>{});
  });
}

}  // namespace
}  // namespace rnnkern
