"""Every numeric tolerance of the test suite, in one table.

A value v passes against reference r when |v - r| <= atol + rtol * |r|
(elementwise), the same rule as numpy.testing.assert_allclose.
"""
import numpy as np

TOL = {
    # float32 kernels against the float64 reference, forward values
    "forward_f32": dict(atol=2e-5, rtol=2e-4),
    # float32 kernels against the float64 reference, gradients (BPTT sums T terms)
    "backward_f32": dict(atol=1e-4, rtol=1e-3),
    # one step of cells.h instantiated with plain float (libm nonlinearities, no sums
    # over time) against the float64 reference: a few ulp of values of order 1
    # (measured at most 1.5e-7)
    "cell_step_f32": dict(atol=5e-7, rtol=5e-6),
    # gradients of saturated cells (tests/test_fuzz.py's amplitude-30 cases), float32
    # against float64, normwise per array: the derivatives come from the outputs as
    # Keras' and torch's do (1 - y^2, y (1 - y)), and where y is within 1e-4 of its
    # bound one float32 ulp of y is ~1e-3 of the derivative; sums of terms of size
    # ~30 cancel to values of order 1 besides
    "backward_saturated_f32": dict(atol=1e-4, rtol=3e-3),
    # ... and their forward values, normwise: a pre-activation is a sum of terms of
    # ~amp^2 = 900 (one float32 ulp: 6e-5) that may cancel to a value near 0
    "forward_saturated_f32": dict(atol=1e-4, rtol=1e-4),
    # float32 reference against float64 reference
    "reference_f32": dict(atol=2e-5, rtol=2e-4),
    # float64 reference gradients against float64 central finite differences
    "gradcheck_f64": dict(atol=1e-7, rtol=1e-5),
    # the same computation, two ways, both float64 (e.g. layer vs ops)
    "exact_f64": dict(atol=1e-12, rtol=1e-10),
    # Keras 3 (float32) against rnnkern
    "keras_f32": dict(atol=1e-5, rtol=1e-4),
    # rnnkern.torch against torch.nn (both float32, other summation orders), outputs
    "torch_f32": dict(atol=1e-5, rtol=1e-4),
    # ... and autograd gradients (sums over T and the batch, through stacked layers)
    "torch_grad_f32": dict(atol=5e-5, rtol=5e-4),
    # a few epochs of training, rnnkern against Keras (float32 sums in other orders)
    "training_f32": dict(atol=2e-5, rtol=2e-3),
    # optimizer updates and slots, rnnkern against Keras (float32, a few ulp per step)
    "optimizer_f32": dict(atol=1e-7, rtol=1e-6),
    # the same, normwise (|a - d|_max <= rtol |d|_max per array): the fuzzed
    # optimizers (tests/test_fuzz.py), whose drawn gradient scales (1e-3..1e3) make
    # slots that cancel -- m = b1 m + (1 - b1) g of terms ~1e2 summing to ~1 -- where
    # Keras' torch backend rounds once (torch's add with alpha is a fused
    # multiply-add) and NumPy twice: one ulp of the terms, not of the result
    "optimizer_norm_f32": dict(atol=0.0, rtol=1e-6),
    # learning rate schedules (~0.1) against Keras: float32 scalar math; near the
    # cosine's zero one ulp of cos (6e-8) times lr / 2 is absolute, not relative
    "schedule_f32": dict(atol=1e-8, rtol=1e-6),
    # loss values, rnnkern against Keras (float32, same formulas, other summation order)
    "loss_f32": dict(atol=1e-7, rtol=1e-6),
    # loss gradients (entries up to ~0.5), rnnkern against torch autograd through the
    # Keras loss (float32; softmax / normalisation backward cancels to ~1 ulp of 0.5)
    "loss_grad_f32": dict(atol=1e-7, rtol=1e-5),
    # loss values of the fuzzed losses (tests/test_fuzz.py): drawn sample weights up to
    # 2 make the weighted terms up to twice the value, and one-sample batches leave
    # nothing to average: one or two ulp of those terms (measured 1.76e-7 at 1.1)
    "loss_norm_f32": dict(atol=3e-7, rtol=2e-6),
    # ... normwise, for the fuzzed losses (tests/test_fuzz.py): drawn weights up to
    # 2 and batches of 1 make intermediate values ~1 (p - 1 of the softmax) whose
    # ulp (1.2e-7) stays in a gradient entry of 0.3
    "loss_grad_norm_f32": dict(atol=3e-7, rtol=1e-5),
    # fit with the recurrent layers' updates on the device against the same fit
    # updating on the host (tests/test_device_updates.py): bitwise but for clipnorm
    # and global_clipnorm, whose sums of squares the device adds in double where
    # NumPy adds float32 pairwise (measured at most 3.0e-8 on weights of ~0.5 after
    # four steps, cuda-emu)
    "device_update_f32": dict(atol=1e-7, rtol=1e-6),
    # metric results, rnnkern against Keras (float32 running totals, same order of updates)
    "metric_f32": dict(atol=1e-7, rtol=1e-6),
    # the GPU's two time-loop families (persistent, per step) against each other: the
    # same float32 math, the recurrent sums in other orders (measured <= 2e-6 relative
    # on the H200 at S1-DB1024, bench/results/gpu-h200-2026-12-04)
    "gpu_families_f32": dict(atol=1e-5, rtol=1e-4),
    # precision="tf32" on the tensor-core GEMMs (one TF32 product, unit roundoff
    # 2^-11) against the float64 reference: measured normwise 1.9e-4..5.7e-4 on every
    # output and gradient (bench/results/precision-error-emu-2026-12-04.txt);
    # elementwise, forward values and gradients
    "forward_tf32": dict(atol=2e-3, rtol=1e-2),
    "backward_tf32": dict(atol=5e-3, rtol=2e-2),
    # precision="bf16" (bfloat16 products, unit roundoff 2^-8) against the fp32
    # result: measured normwise 1.9e-3..6.1e-3 against float64 on the GPU backends
    # (bench/results/precision-error-emu-2026-12-06.txt); elementwise, forward values
    "forward_bf16": dict(atol=2e-2, rtol=5e-2),
    # precision="bf16" on the CPU and GPU backends against the reference's emulation
    # of the same rounding (float64, tests/test_bf16.py, tests/test_cuda.py): the sums differ at float32's
    # level, and a float32 value within an ulp of a bf16 rounding boundary rounds
    # the other way than its float64 twin (one operand, often a pre-activation
    # gradient, off by 2^-8 of itself). Measured over test_bf16's grid (every ISA,
    # AMD EPYC): at most 2.0e-6 on values, 1.0e-3 on gradients (dW), 26% of this
    # bound; the reference with only the weights rounded misses it 5-12x
    "bf16_emulated": dict(atol=1e-3, rtol=4e-3),
    # the same comparison normwise, for sizes where such a flipped operand feeds a
    # long column of products (C = 70: one dG value 2^-8 off moved a dW column by
    # 7e-3, 2.7% of its smallest entries): one bf16 ulp of the largest value
    # (measured at most 9.2e-4, every ISA, AMD EPYC)
    "bf16_emulated_norm": dict(atol=0.0, rtol=4e-3),
    # precision="bf16" against the exact float64 result, normwise (max error over
    # max value per array): the bound for bf16 products
    "bf16_vs_exact_norm": dict(atol=0.0, rtol=1e-2),
}


def assert_close_normwise(actual, desired, kind, what=""):
    """Assert max|actual - desired| <= atol + rtol * max|desired| with TOL[kind]
    (one bound for the whole array); report the max error."""
    tol = TOL[kind]
    a = np.asarray(actual, dtype=np.float64)
    d = np.asarray(desired, dtype=np.float64)
    assert a.shape == d.shape, f"{what}: shape {a.shape} != {d.shape}"
    err = float(np.max(np.abs(a - d))) if a.size else 0.0
    bound = tol["atol"] + tol["rtol"] * (float(np.max(np.abs(d))) if d.size else 0.0)
    assert err <= bound, f"{what} ({kind}): max error {err:.3g} > {bound:.3g}"
    return err


def assert_close(actual, desired, kind, what=""):
    """Assert |actual - desired| <= atol + rtol*|desired| with TOL[kind]; report the max error."""
    tol = TOL[kind]
    a = np.asarray(actual, dtype=np.float64)
    d = np.asarray(desired, dtype=np.float64)
    assert a.shape == d.shape, f"{what}: shape {a.shape} != {d.shape}"
    np.testing.assert_allclose(a, d, err_msg=f"{what} ({kind})", **tol)
    return float(np.max(np.abs(a - d))) if a.size else 0.0
