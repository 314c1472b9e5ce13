"""torch.nn.RNN / LSTM / GRU drop-ins running on rnnkern's kernels.

Same constructor, parameter names and shapes, initialisation, inputs (batched,
unbatched, ``batch_first``, initial states, ``PackedSequence``) and return values
as torch.nn's, so ``module.load_state_dict(torch_module.state_dict())`` gives
torch.nn's outputs and gradients, and the state_dict loads back into torch.nn.
Each layer and direction is one ``rnnkern::rnn_forward`` call (``_ops``), with
its BPTT as the autograd formula.

Left out: LSTM ``proj_size`` (the kernels have no projection; a clear error).
"""
from __future__ import annotations

import math
import numbers

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from ..options import RnnOptions
from . import _ops

_CELL = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "simple_rnn", "RNN_RELU": "simple_rnn"}
_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


class RNNBase(nn.Module):
    """torch.nn.RNNBase's interface on rnnkern's kernels; ``backend`` (keyword only)
    names the rnnkern backend for float32 CPU tensors (default "auto"; CUDA tensors
    run on "cuda", in place), and ``precision`` (keyword only) the arithmetic:
    None (default) follows torch.nn's rule for its cuDNN RNNs on the GPU backends
    (``torch.backends.cudnn.allow_tf32``: "tf32", else "fp32"; inside
    ``torch.autocast(dtype=torch.bfloat16)``: "bf16", with float32 states and
    outputs) and on the CPU "fp32", or inside ``torch.autocast("cpu",
    dtype=torch.bfloat16)`` "bf16" with bfloat16 outputs and states, as torch.nn's
    CPU RNNs return there; or one of rnnkern.options.PRECISIONS: "fp32", "tf32"
    (the GPU backends' tensor-core products take one TF32 product; the CPU runs
    fp32) or "bf16" (bfloat16 weights and every product's other operand, on every
    backend; vdpbf16ps where the CPU has AVX512_BF16; float32 results)."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, proj_size=0,
                 device=None, dtype=None, *, backend="auto", precision=None):
        super().__init__()
        if mode not in _CELL:
            raise ValueError(f"Unrecognized RNN mode: {mode}")
        if not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1 \
                or isinstance(dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name} should be of type int, got: {type(v).__name__}")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size != 0:
            raise ValueError("rnnkern.torch: proj_size is not supported (the kernels have "
                             "no output projection); use torch.nn.LSTM for proj_size > 0")
        from .. import backends as _bk
        _bk.get_backend(backend)   # a bad name fails here, listing the usable ones
        if precision is not None:
            RnnOptions(_CELL[mode], precision=precision)   # and a bad precision here
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = 0
        self.backend = backend
        self.precision = precision
        self._cell = _CELL[mode]
        self._activation = "relu" if mode == "RNN_RELU" else "tanh"
        num_directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        factory = {"device": device, "dtype": dtype}
        self._flat_weights_names = []
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_input = input_size if layer == 0 else hidden_size * num_directions
                suffix = "_reverse" if direction == 1 else ""
                shapes = [("weight_ih", (gate_size, layer_input)),
                          ("weight_hh", (gate_size, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                for name, shape in shapes:
                    pname = f"{name}_l{layer}{suffix}"
                    setattr(self, pname, nn.Parameter(torch.empty(shape, **factory)))
                    self._flat_weights_names.append(pname)
        self.reset_parameters()

    def reset_parameters(self):
        """torch.nn's initialisation: every weight and bias U(-1/sqrt(H), 1/sqrt(H))."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            nn.init.uniform_(w, -stdv, stdv)

    @property
    def all_weights(self):
        per = 4 if self.bias else 2
        names = self._flat_weights_names
        return [[getattr(self, n) for n in names[i:i + per]] for i in range(0, len(names), per)]

    @property
    def _flat_weights(self):
        params = self._parameters   # (getattr through Module.__getattr__ is slow)
        return [params[n] if n in params else getattr(self, n)
                for n in self._flat_weights_names]

    def flatten_parameters(self):
        """A no-op (torch.nn's compacts the weights for cuDNN; rnnkern converts
        them once per change instead)."""

    def extra_repr(self):
        s = "{input_size}, {hidden_size}"
        if self.num_layers != 1:
            s += ", num_layers={num_layers}"
        if self.bias is not True:
            s += ", bias={bias}"
        if self.batch_first is not False:
            s += ", batch_first={batch_first}"
        if self.dropout != 0:
            s += ", dropout={dropout}"
        if self.bidirectional is not False:
            s += ", bidirectional={bidirectional}"
        return s.format(**self.__dict__)

    # ---- forward -------------------------------------------------------------

    def _check_input(self, x, batched):
        expected = 3 if batched else 2
        if x.dim() != expected:
            raise ValueError(f"input must have {expected} dimensions, got {x.dim()}")
        if self.input_size != x.size(-1):
            raise RuntimeError(f"input.size(-1) must be equal to input_size. "
                               f"Expected {self.input_size}, got {x.size(-1)}")
        w = self.weight_ih_l0
        if x.dtype != w.dtype:
            raise ValueError(f"input must have the type {w.dtype}, got type {x.dtype}")

    def _check_state(self, hx, n, what):
        d = 2 if self.bidirectional else 1
        expected = (self.num_layers * d, n, self.hidden_size)
        if tuple(hx.shape) != expected:
            raise RuntimeError(f"Expected {what} size {expected}, got {list(hx.shape)}")

    def _run(self, x, mask, h0, c0):
        """x [N, T, C] (batch-major), mask None or [N, T] bool, h0/c0 [L*D, N, H]
        -> (y [N, T, D*H], h_n [L*D, N, H], c_n or None)."""
        lstm = self._cell == "lstm"
        d = 2 if self.bidirectional else 1
        params = self._flat_weights
        need_grad = torch.is_grad_enabled() and (
            x.requires_grad or h0.requires_grad or (c0 is not None and c0.requires_grad)
            or any(p.requires_grad for p in params))
        per = 4 if self.bias else 2
        hs, cs = [], []
        inp = x
        precision, out_dtype = self.precision, None
        if precision is None:   # torch.nn's rules (see the class docstring)
            if _ops.on_gpu_backend(self.backend, x.dtype, x.device):
                precision = _ops.torch_precision(x)
            elif _ops.autocast_bf16(x):   # as torch.nn's CPU RNNs: bfloat16 results
                precision, out_dtype = "bf16", torch.bfloat16
            else:
                precision = "fp32"
        # one options value a direction (made once per process: RnnOptions interns)
        options = [RnnOptions(self._cell, self._activation, go_backwards=direction == 1,
                              training=need_grad, precision=precision)
                   for direction in range(d)]
        for layer in range(self.num_layers):
            outs = []
            for direction in range(d):
                k = layer * d + direction
                w = params[k * per:(k + 1) * per]
                b_ih, b_hh = (w[2], w[3]) if self.bias else (None, None)
                y, h, c = _ops.run(
                    inp, w[0], w[1], b_ih, b_hh, h0[k], c0[k] if lstm else None, mask,
                    options[direction], self.backend)
                if direction == 1:
                    y = y.flip(1)   # the kernels return outputs in processing order
                outs.append(y)
                hs.append(h)
                if lstm:
                    cs.append(c)
            inp = outs[0] if d == 1 else torch.cat(outs, dim=2)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                inp = nn.functional.dropout(inp, self.dropout, training=True)
        if mask is not None:   # torch.nn's padded positions are zeros
            inp = inp * mask.unsqueeze(-1).to(inp.dtype)
        stack = (lambda ts: ts[0].unsqueeze(0)) if len(hs) == 1 else torch.stack
        h_n, c_n = stack(hs), (stack(cs) if lstm else None)
        if out_dtype is not None:
            inp, h_n = inp.to(out_dtype), h_n.to(out_dtype)
            c_n = c_n.to(out_dtype) if c_n is not None else None
        return inp, h_n, c_n

    def _autocast_input(self, t):
        """Inside torch.autocast, a lower-precision input (an autocast layer's output)
        comes in as float32, as torch.nn's RNNs take it there."""
        w = self.weight_ih_l0
        if t is not None and t.dtype != w.dtype and t.dtype in (torch.bfloat16, torch.float16) \
                and torch.is_autocast_enabled(t.device.type):
            return t.to(w.dtype)
        return t

    def forward(self, input, hx=None):
        lstm = self._cell == "lstm"
        packed = isinstance(input, PackedSequence)
        if packed:
            input = PackedSequence(self._autocast_input(input.data), input.batch_sizes,
                                   input.sorted_indices, input.unsorted_indices)
        else:
            input = self._autocast_input(input)
        mask = None
        if packed:
            padded, lengths = nn.utils.rnn.pad_packed_sequence(input, batch_first=True)
            x, batched = padded, True
            self._check_input(x, True)
            steps = torch.arange(x.shape[1]).unsqueeze(0)
            # (PackedSequence keeps its lengths on the host: N*T bytes go up once)
            mask = (steps < lengths.unsqueeze(1)).to(x.device, non_blocking=True)
        else:
            if input.dim() not in (2, 3):
                raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, "
                                 f"got {input.dim()}D instead")
            batched = input.dim() == 3
            self._check_input(input, batched)
            x = input if batched else input.unsqueeze(0 if self.batch_first else 1)
            if not self.batch_first:
                x = x.transpose(0, 1)
        x = x.contiguous()
        n = x.shape[0]
        d = 2 if self.bidirectional else 1
        if hx is None:
            zeros = x.new_zeros((self.num_layers * d, n, self.hidden_size))
            h0, c0 = zeros, (zeros if lstm else None)
        else:
            if lstm:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise RuntimeError("LSTM: hx must be a tuple (h_0, c_0)")
                h0, c0 = hx
            else:
                if isinstance(hx, (tuple, list)):
                    raise RuntimeError(f"{type(self).__name__}: hx must be a tensor, "
                                       "not a tuple")
                h0, c0 = hx, None
            if not batched:
                for t in (h0, c0):
                    if t is not None and t.dim() != 2:
                        raise RuntimeError(f"For unbatched 2-D input, hx and cx should also be "
                                           f"2-D but got ({t.dim()}-D) tensor")
                h0 = h0.unsqueeze(1)
                c0 = c0.unsqueeze(1) if c0 is not None else None
            # (with a PackedSequence the states come in the caller's batch order, as
            # torch.nn takes them: the padded batch below is in that order too)
            self._check_state(h0, n, "hidden")
            if c0 is not None:
                self._check_state(c0, n, "cell")
        y, h_n, c_n = self._run(x, mask, h0, c0)
        if packed:
            sorted_idx = input.sorted_indices
            ys = y if sorted_idx is None else y.index_select(0, sorted_idx)
            ls = lengths if sorted_idx is None else lengths.index_select(0, sorted_idx.cpu())
            data = nn.utils.rnn.pack_padded_sequence(ys, ls, batch_first=True).data
            out = PackedSequence(data, input.batch_sizes, input.sorted_indices,
                                 input.unsorted_indices)
        else:
            out = y if self.batch_first else y.transpose(0, 1)
            if not batched:
                out = out.squeeze(0 if self.batch_first else 1)
                h_n = h_n.squeeze(1)
                c_n = c_n.squeeze(1) if c_n is not None else None
        return (out, (h_n, c_n)) if lstm else (out, h_n)


class RNN(RNNBase):
    """torch.nn.RNN on rnnkern's kernels: ``RNN(input_size, hidden_size, num_layers=1,
    nonlinearity='tanh', bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, device=None, dtype=None, *, backend='auto', precision=None)``."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self.nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self.nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self.nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif self.nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. "
                             "Select from 'tanh' or 'relu'.")
        nonlinearity = self.nonlinearity
        super().__init__(mode, *args, **kwargs)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """torch.nn.LSTM on rnnkern's kernels: ``LSTM(input_size, hidden_size,
    num_layers=1, bias=True, batch_first=False, dropout=0.0, bidirectional=False,
    proj_size=0, device=None, dtype=None, *, backend='auto', precision=None)``;
    proj_size must be 0."""

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    """torch.nn.GRU on rnnkern's kernels: ``GRU(input_size, hidden_size, num_layers=1,
    bias=True, batch_first=False, dropout=0.0, bidirectional=False, device=None,
    dtype=None, *, backend='auto', precision=None)``."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)
