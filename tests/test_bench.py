"""rnnkern-bench: options, the end-to-end run, JSON/compare/plot/peak, and the
check-before-time rule (a wrong implementation is reported WRONG and never timed).
Every run here is tiny (seconds in all)."""
import json
import os
import sys
import types

import numpy as np
import pytest

from rnnkern.bench import cli, impls, report, shapes, timing
from rnnkern.bench import main
from rnnkern.bench.runner import Config, run

TINY = ["--shapes", "5,2,3,4", "--reps", "2", "--warmup", "0", "--no-peak", "--no-progress"]


def _has(mod):
    import importlib.util
    return importlib.util.find_spec(mod) is not None


def _rk_backend():
    """One compiled rnnkern backend name (the widest), or skip."""
    names = impls.available_rnnkern_backends()
    if not names:
        pytest.skip("no compiled rnnkern backend")
    return names[-1]


def _cfg(argv):
    args = cli.build_parser().parse_args(argv)
    return cli.config_from_args(args, argv)


# --------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------

def test_custom_shapes_cells_modes():
    cfg = _cfg(["--shapes", "7,2,3,5", "100,1,32,128", "--cells", "lstm,rnn",
                "--modes", "train", "--threads", "2", "--reps", "4", "--backends", "reference"])
    assert [(s.T, s.N, s.C, s.H) for s in cfg.shapes] == [(7, 2, 3, 5), (100, 1, 32, 128)]
    assert cfg.cells == ("lstm", "simple_rnn")
    assert cfg.modes == ("training",)
    assert cfg.threads == 2 and cfg.reps == 4
    assert cfg.impls == ["rnnkern-reference"]


def test_default_and_quick_sets():
    cfg = _cfg([])
    assert [(s.name, s.T, s.N, s.C, s.H) for s in cfg.shapes] == [
        ("S1", 100, 1, 32, 128), ("S2", 100, 32, 64, 256), ("S3", 50, 64, 256, 512),
        ("S4", 30, 16, 10, 1000)]
    assert cfg.cells == ("simple_rnn", "lstm", "gru")
    assert cfg.modes == ("inference", "training")
    assert cfg.threads == 1 and cfg.reps is None
    q = _cfg(["--quick"])
    assert [s.name for s in q.shapes] == [s.name for s in shapes.QUICK]
    assert q.budget_s < cfg.budget_s and q.max_reps <= cfg.max_reps
    # --quick with explicit shapes keeps the shapes, still short budget
    q2 = _cfg(["--quick", "--shapes", "3,1,2,2"])
    assert [s.key() for s in q2.shapes] == [(3, 1, 2, 2)]


def test_sets_and_custom_shapes_mix():
    cfg = _cfg(["--shapes", "7,3,5,9", "quick", "--modes", "fwd", "--backends", "reference"])
    assert [s.key() for s in cfg.shapes] == [(7, 3, 5, 9), (20, 1, 16, 64), (20, 16, 32, 128)]
    assert cfg.modes == ("inference",)


def test_threads_all():
    import os
    assert _cfg(["--threads", "all"]).threads == (os.cpu_count() or 1)


def test_backends_option():
    b = _rk_backend()
    assert _cfg(["--backends", b]).impls == [f"rnnkern-{b}"]
    assert _cfg(["--backends", f"rnnkern-{b},{b}"]).impls == [f"rnnkern-{b}"]
    all_names = _cfg(["--backends", "all"]).impls
    assert all(f"rnnkern-{x}" in all_names for x in impls.available_rnnkern_backends())
    assert "rnnkern-reference" not in all_names          # too slow to time by default
    default = _cfg([]).impls
    assert "rnnkern-reference" not in default
    if _has("torch"):
        assert "torch" in default
        assert _cfg(["--backends", "pytorch"]).impls == ["torch"]


@pytest.mark.parametrize("argv", [
    ["--shapes", "1,2,3"], ["--shapes", "0,1,1,1"], ["--shapes", "nonsense"],
    ["--cells", "transformer"], ["--modes", "sideways"], ["--backends", "avx1024"],
    ["--threads", "-1"], ["--reps", "0"], ["--dropout", "1.0"], ["--dropout", "0"]])
def test_bad_options_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "rnnkern-bench" in capsys.readouterr().err


def test_list_default(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "implementations:" in out and "S4" in out and "T=30 N=16 C=10 H=1000" in out


def test_list_does_not_run(capsys):
    assert main(["--list", "--shapes", "4,1,2,3", "--cells", "gru", "--backends",
                 "reference"]) == 0
    out = capsys.readouterr().out
    assert "rnnkern-reference" in out and "gru" in out and "inference,training" in out


# --------------------------------------------------------------------------
# Shapes and FLOPs
# --------------------------------------------------------------------------

def test_flops():
    assert shapes.forward_flops("lstm", 10, 2, 3, 4) == 2 * 10 * 2 * 4 * 4 * (3 + 4)
    assert shapes.case_flops("gru", "training", 10, 2, 3, 4) == \
        3 * shapes.forward_flops("gru", 10, 2, 3, 4)
    assert shapes.forward_flops("simple_rnn", 1, 1, 1, 1) == 4


def test_deepbench_set():
    db = shapes.deepbench()
    assert 5 <= len(db) < shapes.all_deepbench_count()
    for s in db:
        assert s.C == s.H                       # DeepBench feeds input size = hidden size
        assert len(s.cells) == 1 and len(s.modes) == 1
        gf = shapes.case_flops(s.cells[0], s.modes[0], s.T, s.N, s.C, s.H) / 1e9
        assert gf <= shapes.DEEPBENCH_MAX_GFLOP[s.modes[0]]
    # problems quoted from DeepBench's rnn_problems.h
    keys = {(s.H, s.N, s.T, s.cells[0], s.modes[0]) for s in db}
    assert (512, 16, 25, "lstm", "training") in keys
    assert (32, 1, 672, "simple_rnn", "inference") in keys
    assert len(shapes.deepbench(max_gflop=1e9)) > len(db)
    small = shapes.resolve(["deepbench"], max_gflop=4.0)
    assert 0 < len(small) < len(db)
    for s in small:
        assert shapes.case_flops(s.cells[0], s.modes[0], s.T, s.N, s.C, s.H) <= 4e9
    cfg = _cfg(["--shapes", "deepbench", "--list"])
    assert len(cfg.shapes) == len(db)


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------

def test_interleaved_rotation_and_reps():
    calls = []
    fns = {n: (lambda n=n: calls.append(n)) for n in "ABC"}
    t = timing.time_interleaved(fns, reps=3, warmup=1)
    assert calls[:3] == ["A", "B", "C"]                      # warm-up
    assert calls[3:] == list("ABC" "BCA" "CAB")               # rotating rounds
    assert all(t[n]["reps"] == 3 for n in "ABC")
    assert t["A"]["min_ms"] <= t["A"]["median_ms"] <= t["A"]["max_ms"]


def test_settling_precedes_every_timed_call(monkeypatch):
    """settle_s: before each timed call an untimed pause and an untimed call of the
    same implementation (not before warm-ups), so a thread pool left spinning by
    one implementation is not billed to the next and the timed one finds its own
    threads awake; the runner settles only with more than one thread."""
    from rnnkern.bench import runner
    events = []
    monkeypatch.setattr(timing.time, "sleep", lambda s: events.append(("sleep", s)))
    fns = {n: (lambda n=n: events.append(n)) for n in "AB"}
    t = timing.time_interleaved(fns, reps=2, warmup=1, settle_s=0.02)
    pause = ("sleep", 0.02)
    assert events == ["A", "B",                                   # warm-up
                      pause, "A", "A", pause, "B", "B",           # round 1
                      pause, "B", "B", pause, "A", "A"]           # round 2, rotated
    assert t["A"]["reps"] == t["B"]["reps"] == 2
    assert runner.settle_for(1) == 0.0 and runner.settle_for(2) == timing.SETTLE_S > 0


def test_adaptive_reps_clamped():
    import time
    fns = {"fast": lambda: None, "slow": lambda: time.sleep(0.02)}
    t = timing.time_interleaved(fns, budget_s=0.03, min_reps=3, max_reps=7)
    assert t["fast"]["reps"] == 7 and t["slow"]["reps"] == 3


def test_thread_control_sets_and_restores():
    import rnnkern
    from rnnkern import backends as bk
    before, omp = bk._num_threads, os.environ.get("OMP_NUM_THREADS")
    with timing.ThreadControl(1) as tc:
        assert rnnkern.get_num_threads() == 1
        assert tc.applied["rnnkern"] == 1
    with timing.ThreadControl(2):
        # at most 2, with rnnkern's own policy below that (as torch.set_num_threads)
        assert rnnkern.get_num_threads() == 2
        assert bk._threads_for("simple_rnn", 1, 32, 128) == 1      # S1: a tiny step
        assert bk._threads_for("lstm", 32, 64, 256) == 2
    assert bk._num_threads == before and os.environ.get("OMP_NUM_THREADS") == omp
    with pytest.raises(ValueError):
        timing.parse_threads("zero")


# --------------------------------------------------------------------------
# Implementations agree with the reference (weight conversion is right)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_torch_impl_passes_check(cell):
    pytest.importorskip("torch")
    inp = impls.make_inputs(cell, 6, 3, 4, 5)
    ref = impls.reference_results(inp)
    for mode in ("inference", "training"):
        p = impls.torch_impl().prepare(cell, mode, inp)
        ok, errs, bad = impls.check(p.collect(p.fn()), ref, mode)
        assert ok, (mode, errs)


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_adapter_impls_pass_check(cell):
    """The rnnkern.torch and rnnkern.keras rows compute what the kernels do."""
    pytest.importorskip("torch")
    inp = impls.make_inputs(cell, 6, 3, 4, 5)
    ref = impls.reference_results(inp)
    factories = [impls.rnnkern_torch_impl]
    if impls.keras_status()[0]:
        factories.append(impls.rnnkern_keras_impl)
    for make in factories:
        for mode in ("inference", "training"):
            p = make().prepare(cell, mode, inp)
            ok, errs, bad = impls.check(p.collect(p.fn()), ref, mode)
            assert ok, (make.__name__, mode, errs)


def test_adapter_columns(capsys):
    pytest.importorskip("torch")
    if not impls.keras_status()[0]:
        pytest.skip("keras unavailable on the torch backend")
    b = _rk_backend()
    assert main(TINY + ["--cells", "lstm", "--backends",
                        f"{b},rnnkern.torch,torch,rnnkern.keras,keras"]) == 0
    out = capsys.readouterr().out
    header = out.split("median ms per implementation")[1].splitlines()[1].split()
    assert header == ["case", f"rnnkern-{b}", "rnnkern.torch", "torch", "rnnkern.keras",
                      "keras"]
    assert "rnnkern.torch" in impls.default_impl_names()


def test_gate_reorder_roundtrip():
    m = np.arange(2 * 12).reshape(2, 12)
    for cell in ("simple_rnn", "lstm", "gru"):
        mm = m[:, : 4 * shapes.GATES[cell]] if cell != "lstm" else np.arange(2 * 16).reshape(2, 16)
        t = impls.keras_to_torch_cols(mm, cell)
        np.testing.assert_array_equal(impls.torch_to_keras_cols(t, cell), mm)
    g = np.array([0, 0, 1, 1, 2, 2])                          # Keras z z r r h h
    np.testing.assert_array_equal(impls.keras_to_torch_cols(g, "gru"), [1, 1, 0, 0, 2, 2])


def test_keras_skipped_when_imported_with_other_backend(monkeypatch):
    fake = types.ModuleType("keras")
    fake.backend = types.SimpleNamespace(backend=lambda: "jax")
    monkeypatch.setitem(sys.modules, "keras", fake)
    ok, why = impls.keras_status()
    assert not ok and "jax" in why
    im, why = impls.make_impl("keras")
    assert im is None and "KERAS_BACKEND=torch" in why


# --------------------------------------------------------------------------
# End to end: table, JSON, compare, plot, peak
# --------------------------------------------------------------------------

def test_end_to_end_json_compare(tmp_path, capsys):
    b = _rk_backend()
    names = [b] + (["torch"] if _has("torch") else [])
    a_json, b_json = tmp_path / "a.json", tmp_path / "b.json"
    for path in (a_json, b_json):
        rc = main(TINY + ["--backends", ",".join(names), "--json", str(path)])
        assert rc == 0
    out = capsys.readouterr().out
    assert f"rnnkern-{b}" in out and "median ms" in out and "GFLOP/s" in out
    res = json.loads(a_json.read_text())
    assert res["schema"] == report.SCHEMA
    assert res["machine"]["threads"] == 1 and res["machine"]["cpu"]
    assert res["machine"]["versions"]["numpy"] == np.__version__
    rows = res["results"]
    assert len(rows) == 3 * 2 * len(names)                    # cells x modes x impls
    for r in rows:
        assert r["status"] == "ok" and r["reps"] == 2
        assert r["min_ms"] <= r["median_ms"] <= r["max_ms"]
        assert r["flops"] == shapes.case_flops(r["cell"], r["mode"], 5, 2, 3, 4)
        if "torch" in names:
            assert r["speedup_vs_torch"] > 0
        if r["kind"] == "rnnkern" and b != "reference":
            # memory: training keeps a workspace; every call reports its temporaries
            assert r["temp_mb"] > 0
            assert ((r["workspace_mb"] or 0) > 0) == (r["mode"] == "training")
    assert "tmp MB" in out
    assert main(["--compare", str(a_json), str(b_json)]) == 0
    out = capsys.readouterr().out
    assert "B/A" in out and "geometric mean" in out and f"rnnkern-{b}" in out


def test_keras_column(capsys):
    pytest.importorskip("torch")
    if not impls.keras_status()[0]:
        pytest.skip("keras unavailable on the torch backend")
    b = _rk_backend()
    assert main(TINY + ["--cells", "gru", "--backends", f"{b},torch,keras"]) == 0  # 0: none WRONG
    out = capsys.readouterr().out
    header = out.split("median ms per implementation")[1].splitlines()[1].split()
    assert header == ["case", f"rnnkern-{b}", "torch", "keras"]


def test_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("torch")
    b = _rk_backend()
    j, png = tmp_path / "r.json", tmp_path / "r.png"
    assert main(TINY + ["--cells", "lstm", "--backends", f"{b},torch", "--json", str(j)]) == 0
    assert main(["--from-json", str(j), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "saved" in capsys.readouterr().out


def test_peak(monkeypatch, capsys):
    from rnnkern import _core
    if hasattr(_core.testing, "peak_gflops") and set(_core.cpu_isas()) & {"avx2", "avx512"}:
        peak, note = timing.measure_peak(0.05)
        assert peak and all(v > 0 for v in peak.values()) and note == ""
        assert main(["--peak", "--peak-seconds", "0.05", "--peak-gemm", "96"]) == 0
        text = capsys.readouterr().out
        assert "GFLOP/s per core" in text
        # the SGEMM ceiling: ours and NumPy's BLAS, each with a positive rate
        rows = [ln.split() for ln in text.splitlines() if ln.strip().startswith(
            ("rnnkern-avx", "numpy"))]
        assert any(r[0].startswith("rnnkern-") for r in rows) and any(r[0] == "numpy" for r in rows)
        assert all(float(r[-3]) > 0 for r in rows)
    # without the kernel: n/a, and % of peak left blank
    monkeypatch.delattr(_core.testing, "peak_gflops", raising=False)
    peak, note = timing.measure_peak(0.05)
    assert peak == {} and note.startswith("n/a")
    assert main(["--peak"]) == 0
    assert "n/a" in capsys.readouterr().out


# --------------------------------------------------------------------------
# Check, then time: the failure path
# --------------------------------------------------------------------------

def _counting(name, transform=None, raise_exc=False):
    """An implementation built on the reference; transform() corrupts its outputs."""
    calls = {"n": 0}

    def factory():
        good = impls.rnnkern_impl("reference")

        def prepare(cell, mode, inp):
            p = good.prepare(cell, mode, inp)

            def fn():
                calls["n"] += 1
                if raise_exc:
                    raise RuntimeError("kernel exploded")
                return p.fn()

            def collect(ret):
                got = p.collect(ret)
                return transform(got) if transform else got

            return impls.Prepared(fn, collect)

        return impls.Impl(name, "test", prepare)

    return factory, calls


@pytest.fixture
def registry():
    added = []

    def add(name, factory):
        impls.register(name, factory)
        added.append(name)

    yield add
    for n in added:
        impls.unregister(n)


def test_wrong_impl_reported_and_not_timed(registry, capsys, tmp_path):
    def corrupt(got):      # a 1% error in dx: forward is right, the gradient is not
        got = dict(got)
        if "dx" in got:
            got["dx"] = got["dx"] * 1.01
        return got

    wrong, wcalls = _counting("wrong-dx", corrupt)
    good, gcalls = _counting("good-ref")
    registry("wrong-dx", wrong)
    registry("good-ref", good)
    j = tmp_path / "w.json"
    rc = main(TINY + ["--cells", "lstm", "--backends", "wrong-dx,good-ref", "--json", str(j)])
    assert rc == 1                                 # a WRONG implementation fails the run
    out = capsys.readouterr().out
    assert "WRONG dx" in out
    rows = {(r["impl"], r["mode"]): r for r in json.loads(j.read_text())["results"]}
    inf, tr = rows[("wrong-dx", "inference")], rows[("wrong-dx", "training")]
    assert inf["status"] == "ok" and inf["reps"] == 2          # y is right: timed
    assert tr["status"] == "WRONG" and tr["failed"] == "dx"
    assert tr["median_ms"] is None and tr["reps"] == 0 and tr["gflops"] is None
    assert 5e-3 < tr["errors"]["dx"] < 2e-2
    # calls: inference check + 2 reps; training: the check call only
    assert wcalls["n"] == 1 + 2 + 1
    assert gcalls["n"] == (1 + 2) * 2
    assert rows[("good-ref", "training")]["status"] == "ok"


def test_raising_impl_is_error_not_timed(registry):
    boom, calls = _counting("boom", raise_exc=True)
    registry("boom", boom)
    cfg = Config(shapes=shapes.resolve(["4,1,2,3"]), cells=("gru",), modes=("inference",),
                 impls=["boom"], reps=2, warmup=0, peak=False, progress=False)
    res = run(cfg)
    (row,) = res["results"]
    assert row["status"] == "ERROR" and "kernel exploded" in row["note"]
    assert row["median_ms"] is None and calls["n"] == 1


def test_check_rule():
    r = {"y": np.ones((2, 3, 4))}
    ok, errs, bad = impls.check({"y": np.ones((2, 3, 4)) * (1 + 1e-6)}, r, "inference")
    assert ok and errs["y"] < 1e-5
    ok, errs, bad = impls.check({"y": np.ones((2, 3, 4)) * 1.01}, r, "inference")
    assert not ok and bad == "y"
    ok, errs, bad = impls.check({"y": np.full((2, 3, 4), np.nan)}, r, "inference")
    assert not ok
    ok, errs, bad = impls.check({"y": np.ones((2, 4, 3))}, r, "inference")
    assert not ok                                   # wrong shape is wrong


def test_profile_driver_runs(capsys):
    """bench/profile.py (the driver PROFILE.md's figures come from) on tiny shapes."""
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parent.parent / "bench" / "profile.py"
    spec = importlib.util.spec_from_file_location("rnnkern_profile_driver", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for cell, mode in [("lstm", "inference"), ("gru", "training")]:
        assert mod.main(["5,3,4,8", cell, mode, "--calls", "2"]) == 0
        out = capsys.readouterr().out
        assert f"{cell} {mode}" in out and "2 calls" in out and "GFLOP/s" in out


def test_gpu_bench_dry_run(tmp_path):
    """bench/gpu_bench.py (the GPU machine's benchmark, run by bench/gpu.sh) end to end
    on cuda-emu and CPU torch at S1's tiny stand-in: every row timed in every column
    (automatic plan, per-step family, both recurrent products, tuned, tf32, bf16,
    torch.nn, rnnkern.torch), the plans checked to agree, the files written -- so a
    device session does not find the script broken."""
    pytest.importorskip("torch")
    import pathlib
    import subprocess
    import rnnkern
    script = pathlib.Path(__file__).resolve().parent.parent / "bench" / "gpu_bench.py"
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(rnnkern.__file__)))
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(script), "--dry-run", "--no-profile", "--shapes",
                        "S1", "--budget", "0.01", "--out", str(out)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rows = json.loads((out / "gpu_bench.json").read_text())["rows"]
    assert [(x["cell"], x["mode"]) for x in rows] == [
        (c, m) for c in ("simple_rnn", "lstm", "gru") for m in ("inference", "training")]
    for x in rows:
        assert x["auto_vs_steps"] <= 1e-3
        assert x["rnnkern_bf16_ms"] > 0 and x["bf16_target"] is None   # S1: no bf16 target
        assert x["rnnkern_torch_ms"] > 0 and x["mma_ms"] is not None
    table = (out / "gpu_bench.txt").read_text()
    assert "rnnkern tf32 / bf16 ms" in table and table.count("| S1 |") == 6


def test_gpu_micro_dry_run(tmp_path, capsys):
    """bench/gpu_micro.py (the cost model's parameters on a device) on cuda-emu with
    tiny counts: every benchmark row runs and the table is written."""
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parent.parent / "bench" / "gpu_micro.py"
    spec = importlib.util.spec_from_file_location("rnnkern_gpu_micro", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--dry-run", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "gpu_micro.txt").read_text()
    for what in mod.UNITS:
        assert f"| {what} |" in text
    assert len(text.strip().splitlines()) == 3 + len(mod.rows(True, 4))
    assert "not run" not in text   # cuda-emu runs every row, clusters included


def test_predict_calls_covers_every_plain_row(capsys, monkeypatch):
    """bench/predict_calls.py (bench/GPU.md's predicted table): a line for every plain
    row of the last device run; each precision's prediction no slower than the
    measured fp32 call it starts from, bf16's no slower than tf32's and tf32's than
    fp32's (fewer products, faster GEMMs); S1's batch of 1 keeps FFMA, so only its
    small GEMMs change (well under 0.05 ms a call)."""
    import importlib.util
    import json
    import pathlib
    bench = pathlib.Path(__file__).resolve().parent.parent / "bench"
    spec = importlib.util.spec_from_file_location("rnnkern_predict_calls",
                                                  bench / "predict_calls.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    run = bench / "results" / "gpu-h200-2026-12-04" / "run5"
    rows = [r for r in json.loads((run / "gpu_bench.json").read_text())["rows"]
            if r["variant"] == "plain"]
    assert len(rows) == 30   # 5 shapes x 3 cells x inference, training
    for r in rows:
        fp32, tf32, bf16 = (mod.predict(r, p) for p in ("fp32", "tf32", "bf16"))
        assert bf16 <= tf32 <= fp32 <= r["rnnkern_ms"], r
        if r["shape"] == "S1":
            assert r["rnnkern_ms"] - bf16 < 0.05, r
    monkeypatch.setattr("sys.argv", ["predict_calls.py", "--run", str(run)])
    assert mod.main() == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(rows) + 2   # the header, the rule, a line a row
    assert all(line.startswith(f"| {r['shape']} | {r['cell']} | {r['mode']} |")
               for line, r in zip(lines[2:], rows))


# --------------------------------------------------------------------------
# Dropout rows
# --------------------------------------------------------------------------

def test_dropout_rows(capsys, tmp_path):
    """--dropout adds a checked, timed '+drop' row next to every rnnkern row in
    training (none in inference), and reports its cost against that row."""
    be = _rk_backend()
    j = tmp_path / "d.json"
    assert _cfg(TINY + ["--backends", f"{be},reference", "--dropout", "0.2"]).impls == [
        f"rnnkern-{be}", f"rnnkern-{be}+drop0.2", "rnnkern-reference",
        "rnnkern-reference+drop0.2"]
    rc = main(TINY + ["--backends", be, "--dropout", "0.2", "--json", str(j)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "dropout cost" in out and f"rnnkern-{be}+drop0.2" in out
    res = json.loads(j.read_text())
    assert res["config"]["dropout"] == 0.2
    drop = [r for r in res["results"] if r["impl"].endswith("+drop0.2")]
    assert {r["mode"] for r in drop} == {"training"} and len(drop) == 3
    for r in drop:
        assert r["status"] == "ok" and r["reps"] == 2 and r["vs_no_dropout"] > 0


def test_bf16_rows(capsys, tmp_path):
    """--bf16 adds a '+bf16' sibling after every rnnkern CPU kernel row (none for
    the reference), checked against the float64 reference within bf16's bound,
    timed beside its fp32 row and reported with its speed-up; the best-peer
    comparison stays fp32 against fp32."""
    be = _rk_backend()
    j = tmp_path / "b.json"
    assert _cfg(TINY + ["--backends", f"{be},reference", "--bf16"]).impls == [
        f"rnnkern-{be}", f"rnnkern-{be}+bf16", "rnnkern-reference"]
    rc = main(TINY + ["--backends", be, "--bf16", "--json", str(j)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "precision bf16" in out and f"rnnkern-{be}+bf16" in out
    res = json.loads(j.read_text())
    rows = [r for r in res["results"] if r["impl"].endswith("+bf16")]
    assert len(rows) == 6   # 3 cells x 2 modes
    for r in rows:
        assert r["status"] == "ok" and r["bf16_speedup"] > 0
        assert 1e-5 < r["max_err"] <= impls.CHECK_TOL_BF16["dx"]   # bf16's error, in bound
    fake = {"results": [dict(r, status="ok") for r in res["results"]] + [
        dict(rows[0], impl="torch", kind="torch", median_ms=1e9)]}
    assert all(b["rnnkern"] == f"rnnkern-{be}" for b in report.best_peer_rows(fake))


def test_dropout_masks_follow_keras_rules():
    inp = impls.make_inputs("gru", 3, 50, 20, 30, seed=1)
    im, rm = impls.dropout_masks(inp, 0.25)
    assert im.shape == (3, 50, 20) and rm.shape == (3, 50, 30)
    assert set(np.unique(rm).tolist()) == {0.0, np.float32(1 / 0.75)}
    assert not np.array_equal(rm[0], rm[1])                  # one mask per gate
    assert impls.dropout_masks(inp, 0.25)[1] is rm             # fixed for these inputs
    im1, _ = impls.dropout_masks(impls.make_inputs("simple_rnn", 3, 5, 2, 4), 0.5)
    assert im1.shape == (1, 5, 2)


def test_dropout_row_ignoring_its_masks_is_wrong(registry):
    """Check, then time, for the dropout rows too: a '+drop' implementation that runs
    without its masks fails the check against the reference with the masks."""
    plain = impls.rnnkern_impl("reference")
    registry("nomask+drop0.3", lambda: impls.Impl("nomask+drop0.3", "test", plain.prepare,
                                                  dropout=0.3, modes=("training",)))
    cfg = Config(shapes=shapes.resolve(["6,3,4,5"]), cells=("lstm",),
                 modes=("inference", "training"), impls=["rnnkern-reference", "nomask+drop0.3"],
                 reps=2, warmup=0, peak=False, progress=False)
    rows = {(r["impl"], r["mode"]): r for r in run(cfg)["results"]}
    assert ("nomask+drop0.3", "inference") not in rows
    bad = rows[("nomask+drop0.3", "training")]
    assert bad["status"] == "WRONG" and bad["median_ms"] is None
    assert rows[("rnnkern-reference", "training")]["status"] == "ok"


def test_fit_workloads(tmp_path, capsys):
    """--fit --quick: every peer present trains the same epoch to rnnkern's loss
    (checked before timing), the table and JSON carry the speed-ups."""
    peers = ["rnnkern"] + [p for p, mod in (("torch-loop", "torch"), ("keras-torch", "keras"))
                           if _has(mod)]
    js = tmp_path / "fit.json"
    rc = main(["--fit", "--quick", "--reps", "1", "--backends", ",".join(peers),
               "--json", str(js)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "rnnkern-bench --fit" in out and "forecaster" in out and "classifier" in out
    res = json.loads(js.read_text())
    for name in ("forecaster", "classifier"):
        w = res["workloads"][name]
        assert set(w["median_s"]) == set(peers), w["status"]
        for p in peers[1:]:
            assert abs(w["loss_after_epoch"][p] - w["loss_after_epoch"]["rnnkern"]) <= \
                res["loss_rtol"] * w["loss_after_epoch"]["rnnkern"]
            assert w["speedup_of_rnnkern"][p] > 0
    with pytest.raises(SystemExit, match="--backends takes"):
        main(["--fit", "--quick", "--backends", "rnnkern,avx512"])


def test_fit_wrong_peer_is_not_timed(monkeypatch, capsys):
    """A peer whose loss after the epoch differs is reported WRONG and not timed."""
    pytest.importorskip("torch")
    from rnnkern.bench import fit
    real = fit._TorchLoop.final_loss
    monkeypatch.setattr(fit._TorchLoop, "final_loss", lambda self: real(self) * 1.01)
    res = fit.run(workloads=("forecaster",), reps=1, samples=64,
                  impls=("rnnkern", "torch-loop"))
    w = res["workloads"]["forecaster"]
    assert w["status"]["torch-loop"].startswith("WRONG") and "torch-loop" not in w["median_s"]


def test_cuda_adapter_columns_are_named_and_explained():
    """rnnkern.torch-cuda beside torch-cuda (cuDNN), each in TF32 (torch's default)
    and strict fp32: selectable by name, and where no GPU is, unavailable with the
    reason instead of a failure."""
    for name in impls.CUDA_ADAPTER_NAMES:
        assert impls.resolve_impl_names(name) == [name]
        impl, why = impls.make_impl(name)
        if impls.torch_cuda_available():   # pragma: no cover - needs a GPU
            assert impl is not None and impl.name == name
        else:
            assert impl is None and "CUDA" in why


def test_self_timed_callables_report_their_own_time():
    """A worker's callable returns timing.SelfTimed: its seconds, not the wall time
    around the call (which includes the pipe's round trip), are what is timed."""
    import time
    fns = {"worker": lambda: (time.sleep(0.01), timing.SelfTimed(0.002))[1]}
    t = timing.time_interleaved(fns, reps=3, warmup=1)
    assert t["worker"]["times_ms"] == [2.0, 2.0, 2.0]


def test_best_peer_table():
    """The best peer of each case is the fastest other library's row (never an
    rnnkern adapter), against rnnkern's fastest kernel row; the summary counts
    the cases ahead and their geometric mean."""
    def row(impl, kind, ms, cell="lstm"):
        return {"shape": "S", "T": 1, "N": 1, "C": 1, "H": 1, "cell": cell,
                "mode": "training", "impl": impl, "kind": kind, "status": "ok",
                "median_ms": ms, "min_ms": ms, "max_ms": ms, "reps": 3}
    res = {"results": [row("rnnkern-avx2", "rnnkern", 2.0), row("rnnkern-avx512", "rnnkern", 1.0),
                       row("rnnkern.torch", "torch", 0.5), row("torch", "torch", 3.0),
                       row("keras-tf", "keras", 2.0),
                       row("rnnkern-avx512", "rnnkern", 4.0, "gru"),
                       row("torch", "torch", 2.0, "gru")]}
    best = report.best_peer_rows(res)
    assert [(b["peer"], b["rnnkern"], b["speedup"]) for b in best] == [
        ("keras-tf", "rnnkern-avx512", 2.0), ("torch", "rnnkern-avx512", 0.5)]
    text = report.format_results(res)
    assert "rnnkern ahead of the best peer in 1 of 2 cases; geometric mean 1.00x" in text


def test_keras_tf_column(capsys):
    """Keras 3 on TensorFlow in its worker process, checked like every column
    (skipped where tensorflow is not installed: the bench-tf extra)."""
    if not impls.tensorflow_installed():
        ok, why = impls.make_impl("keras-tf")
        assert ok is None and "tensorflow not installed" in why
        pytest.skip("tensorflow not installed")
    b = _rk_backend()
    assert main(TINY + ["--cells", "lstm", "--backends", f"{b},keras-tf"]) == 0
    out = capsys.readouterr().out
    header = out.split("median ms per implementation")[1].splitlines()[1].split()
    assert header == ["case", f"rnnkern-{b}", "keras-tf"]
    assert "ERROR" not in out       # (main returned 0: nothing WRONG)
    assert "against the best peer of each case" in out
