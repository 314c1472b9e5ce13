"""Type stub of rnnkern._core, the compiled extension (csrc/bindings/: module.cc
registers bind_layer.cc, bind_ops.cc, gpu_bindings.cc and, as the ``testing``
submodule, bind_testing.cc). Shapes use the legend of rnnkern._common: T steps,
N batch, C input features, H units, G gates. Arrays are converted to C-contiguous
float32 (masks: uint8) where a NumPy array is taken. tests/test_core_stub.py
checks that this file names exactly what the module defines."""
import types
from typing import Any, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

_F32 = npt.NDArray[np.float32]
_ArrayLike = npt.ArrayLike

# ----------------------------------------------------------------- the kernel table
# (bind_layer.cc)

class Backend:
    """One backend of the kernel table (a CPU ISA, cuda-emu, cuda), resolved once by
    backend(name); forward and pack take it in place of the name."""
    @property
    def name(self) -> str: ...
    @property
    def device(self) -> bool: ...

class Workspace:
    """What a training forward keeps for BPTT (opaque)."""
    @property
    def batch(self) -> int: ...
    @property
    def timesteps(self) -> int: ...
    @property
    def input_size(self) -> int: ...
    @property
    def units(self) -> int: ...
    @property
    def cell(self) -> str: ...
    @property
    def backend(self) -> str: ...
    @property
    def nbytes(self) -> int: ...

class PackedWeights:
    """A layer's kernels packed for one backend (see pack)."""
    @property
    def isa(self) -> str: ...
    @property
    def cell(self) -> str: ...
    @property
    def units(self) -> int: ...
    @property
    def nbytes(self) -> int: ...

def backend(name: str) -> Backend:
    """The kernel table's backend of that name (ValueError if it is not available here)."""

def cpu_isas() -> list[str]:
    """CPU ISAs compiled in and supported here, widest first."""

def cpu_isa_order() -> list[str]:
    """CPU ISAs compiled into this build, widest first (csrc/cpu/dispatch.cc's table)."""

def cuda_status() -> tuple[bool, bool, str]:
    """(built, available, reason)."""

class Options:
    """A layer call's options parsed once for the kernels (rnnkern.options.RnnOptions.core)."""
    def __init__(self, cell: str, activation: str, recurrent_activation: str,
                 reset_after: bool, go_backwards: bool, return_sequences: bool,
                 training: bool, precision: str) -> None: ...
    @property
    def cell(self) -> str: ...
    @property
    def activation(self) -> str: ...
    @property
    def recurrent_activation(self) -> str: ...
    @property
    def reset_after(self) -> bool: ...
    @property
    def go_backwards(self) -> bool: ...
    @property
    def return_sequences(self) -> bool: ...
    @property
    def training(self) -> bool: ...
    @property
    def precision(self) -> str: ...

def forward(backend: Union[str, Backend], options: Options, x: _ArrayLike, kernel: _ArrayLike,
            recurrent_kernel: _ArrayLike, bias: Optional[_ArrayLike], h0: _ArrayLike,
            c0: Optional[_ArrayLike], mask: Optional[_ArrayLike], threads: int,
            packed: Optional[PackedWeights] = None, input_masks: Optional[_ArrayLike] = None,
            recurrent_masks: Optional[_ArrayLike] = None,
            ) -> tuple[_F32, _F32, Optional[_F32], Optional[Workspace]]:
    """One layer's forward: (y [N,T,H] or [N,H], h_T [N,H], c_T [N,H] (lstm) or None,
    the workspace (training) or None). input_masks [G,N,C], recurrent_masks [G,N,H]."""

def backward(workspace: Workspace, dy: _ArrayLike, dh_T: _ArrayLike,
             dc_T: Optional[_ArrayLike], threads: int = 1,
             ) -> tuple[_F32, _F32, _F32, Optional[_F32], _F32, Optional[_F32]]:
    """BPTT of a forward's workspace: (dx, dW, dU, db or None, dh0, dc0 or None)."""

def pack(backend: Union[str, Backend], cell: str, reset_after: bool,
         recurrent_kernel: _ArrayLike, kernel: Optional[_ArrayLike] = None,
         ) -> Optional[PackedWeights]:
    """U (and W) packed once for the backend's kernels; None where it packs nothing."""

# a device argument: (address, shape, typestr) of C-contiguous device memory, or None
_DeviceArg = Optional[tuple[int, tuple[int, ...], str]]

def device_forward_dims(options: Options, args: Sequence[_DeviceArg],
                        torch_layout: bool = False) -> tuple[int, int, int, int]:
    """(N, T, C, H) of a device forward's 9 arguments (x, kernel, recurrent_kernel, bias,
    h0, c0, mask, input_masks, recurrent_masks; torch_layout: forward_device's 10),
    checked by the host forward's rules."""

def forward_device(backend: str, options: Options, args: Sequence[_DeviceArg], y: int,
                   h_T: int, c_T: int, stream: int = 0, weights_in_place: bool = False,
                   torch_layout: bool = False) -> Optional[Workspace]:
    """Forward on a GPU backend's device arrays (outputs by address, c_T 0 but for lstm),
    queued on ``stream``; ``weights_in_place``: the backward reads the caller's weights;
    ``torch_layout``: args are (x, weight_ih, weight_hh, bias_ih, h0, c0, mask,
    input_masks, recurrent_masks, bias_hh), PyTorch's layout."""

def backward_device(workspace: Workspace, dy: _DeviceArg, dh_T: _DeviceArg,
                    dc_T: _DeviceArg, dx: int, dW: int, dU: int, db: int, dh0: int,
                    dc0: int, stream: int = 0, db_hh: int = 0) -> None:
    """BPTT on a GPU backend's device arrays: the gradients in as device arguments, the
    results by address (0: absent), queued on ``stream``; after a torch_layout forward
    in PyTorch's layout, db_hh the d bias_hh."""

def last_call_scratch_bytes() -> int:
    """Temporary memory (bytes) the calling thread's last forward or backward used."""

# ----------------------------------------------------------------- layer and adapter helpers
# (bind_ops.cc)

def embedding_grad(ids: _ArrayLike, dy: _ArrayLike, vocab: int) -> _F32:
    """dE [vocab, dim]: the rows of dy summed by id."""

def same_bytes(a: Any, b: Any) -> bool:
    """Whether two C-contiguous buffers hold the same bytes."""

# ----------------------------------------------------------------- the GPU backends
# (gpu_bindings.cc; device: "cuda-emu" or "cuda")

class DeviceArray:
    """Memory on a GPU backend's device, float32 or uint8, C-contiguous."""
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def dtype(self) -> np.dtype[Any]: ...
    @property
    def device(self) -> str: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def __cuda_array_interface__(self) -> dict[str, Any]: ...
    def __dlpack__(self, **kwargs: Any) -> Any: ...
    def __dlpack_device__(self) -> tuple[int, int]: ...
    def numpy(self) -> npt.NDArray[Any]: ...

def device_empty(device: str, shape: Any, dtype: str = "float32") -> DeviceArray: ...
def device_array(device: str, array: npt.NDArray[Any]) -> DeviceArray: ...
def device_accessible(device: str, address: int, nbytes: int) -> bool: ...
def gpu_elementwise(op: int, n: int, out: DeviceArray, out_offset: int,
                    a: Optional[DeviceArray], a_offset: int, b: Optional[DeviceArray],
                    b_offset: int, s0: float = 0.0, s1: float = 0.0) -> None: ...
def gpu_sum_squares(n: int, a: DeviceArray, a_offset: int) -> float: ...
def gpu_elementwise_program(n: int, arrays: list[tuple[DeviceArray, int]],
                            steps: list[tuple[int, int, int, int, float, float]]) -> None: ...
def gpu_program_limits(device: str) -> tuple[int, int]: ...
def gpu_download(a: DeviceArray, a_offset: int, n: int) -> npt.NDArray[np.float32]: ...
def dlpack_view(capsule: Any) -> tuple[int, tuple[int, ...], Optional[tuple[int, ...]],
                                       tuple[int, int, int], tuple[int, int]]: ...
def cuda_stream_synchronize(stream: int) -> None: ...
def cuda_pool_bytes() -> int: ...
def cuda_free_pool() -> None: ...
def release_memory() -> dict[str, int]: ...
def gpu_persistent_launches(device: str) -> int: ...
def gpu_cluster_launches(device: str) -> int: ...
def gpu_onchip_exchanges(device: str) -> int: ...
def gpu_set_plan(device: str, plan: str) -> None: ...
def gpu_plan(device: str) -> str: ...
def gpu_host_transfers(device: str) -> int: ...
def gpu_set_tune(device: str, mode: str) -> None: ...
def gpu_tune(device: str) -> str: ...
def gpu_tunings(device: str) -> int: ...
def gpu_tuned_plans(device: str) -> list[str]: ...
def gpu_clear_tuned(device: str) -> None: ...
def gpu_load_tuned(device: str, lines: list[str], source: str) -> None: ...
def gpu_device_key(device: str) -> str: ...
def gpu_clear_graphs() -> None: ...
def gpu_set_gemm(device: str, kind: str) -> None: ...
def gpu_gemm(device: str) -> str: ...
def gpu_mma_gemms(device: str) -> int: ...
def gpu_mma_probe(
    device: str, A: npt.ArrayLike, B: npt.ArrayLike, C: npt.ArrayLike, A16: npt.ArrayLike,
    B16: npt.ArrayLike
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]: ...
def gpu_micro(device: str, what: str, arg: int = 1, iters: int = 1000) -> float: ...
def gpu_graph_reinstantiations(device: str) -> int: ...
def gpu_set_graphs(on: bool) -> None: ...
def gpu_graphs() -> bool: ...
def gpu_graph_replays(device: str) -> int: ...
def gpu_graph_updates(device: str) -> int: ...

# ----------------------------------------------------------------- _core.testing
# (bind_testing.cc: for the tests and the benchmark, not the layers' API)

class _Testing(types.ModuleType):
    def gemm(self, isa: str, a: _ArrayLike, b: _ArrayLike, trans_a: bool = False,
             trans_b: bool = False, threads: int = 1) -> _F32:
        """C = op(a) op(b) with the ISA's packed SGEMM."""
    def activate(self, isa: str, activation: str, x: _ArrayLike) -> _F32:
        """y = activation(x) with the ISA's vectorised nonlinearity."""
    def emu_fail_launch_after(self, n: int) -> None: ...
    def emu_live_allocations(self) -> int: ...
    def peak_gflops(self, isa: str, seconds: float = 0.3) -> float:
        """fp32 FMA throughput of one ISA on one thread (GFLOP/s)."""
    def cell_step_float(self, cell: str, activation: str, recurrent_activation: str,
                        reset_after: bool, pre: _ArrayLike, h_prev: _ArrayLike,
                        c_prev: Optional[_ArrayLike] = None, rec: Optional[_ArrayLike] = None,
                        rhu: Optional[_ArrayLike] = None, dh: Optional[_ArrayLike] = None,
                        dc: Optional[_ArrayLike] = None, drh: Optional[_ArrayLike] = None,
                        mask: Optional[_ArrayLike] = None, seen: Optional[_ArrayLike] = None,
                        ) -> dict[str, _F32]:
        """One step of cells.h's float instantiation, elementwise over n units."""

testing: _Testing
