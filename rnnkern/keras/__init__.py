"""rnnkern as Keras 3's recurrent layers: ``rnnkern.keras.SimpleRNN``, ``LSTM``,
``GRU`` take exactly ``keras.layers.*``'s arguments and weights (they are those
classes, with the sequence loop replaced) and run forward and BPTT on rnnkern's
kernels, gradients flowing through the Keras backend's autograd. So
``keras.layers.Bidirectional(rnnkern.keras.LSTM(64))``, ``model.fit``, saving and
loading all work as with Keras' own layers.

Served: the torch backend (``KERAS_BACKEND=torch``), on the CPU float32 or float64
and on a CUDA device float32 (rnnkern's ``cuda`` backend, the tensors in place, the
kernels on torch's current stream), the
activations rnnkern's kernels implement (tanh, relu, sigmoid, hard_sigmoid,
linear), masks, go_backwards, initial and stateful states, use_bias, GRU
reset_after True and False, dropout and recurrent_dropout (Keras' own masks, applied
inside the kernels). Anything else -- another Keras backend, another activation,
another dtype -- runs
Keras' own loop, with a warning (once per layer class and reason) saying why.

Two attributes of each layer pick how rnnkern runs it: ``rnnkern_backend`` (a name
of ``rnnkern.backends()``, default "auto": the widest CPU ISA for CPU tensors,
``cuda`` for CUDA tensors; "cuda-emu" runs CPU tensors through the device path)
and ``rnnkern_precision`` ("fp32", the default, as Keras' own loop on the torch
backend computes; "tf32"; "bf16" -- ``rnnkern.options.PRECISIONS``).

Needs Keras 3 and PyTorch (``pip install "rnnkern[keras]"``).
"""
try:
    import keras  # noqa: F401
except ImportError as e:   # pragma: no cover - depends on the environment
    raise ImportError("rnnkern.keras needs Keras 3: pip install keras") from e

from .layers import GRU, LSTM, SimpleRNN, unsupported_reason  # noqa: E402

__all__ = ["GRU", "LSTM", "SimpleRNN", "unsupported_reason"]
