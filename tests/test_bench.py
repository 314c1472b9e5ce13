"""rnnkern-bench: options, the check-before-time failure path, JSON, compare,
plot and peak. Tiny shapes and 1-2 repetitions: these test the tool, not speed."""
import json

import numpy as np
import pytest

from rnnkern import bench
from rnnkern.bench import cli, impls as I, shapes

COMPILED = [b for b in __import__("rnnkern").backends() if b != "reference"]
TINY = ["--shapes", "3,2,4,5", "--reps", "2", "--warmup", "0", "--no-peak", "--no-progress"]


def run_main(argv, capsys):
    rc = bench.main(argv)
    out = capsys.readouterr().out
    return rc, out


def test_default_shapes_are_the_issue_set():
    got = [(s.name, s.T, s.N, s.C, s.H) for s in shapes.resolve(["default"])]
    assert got == [("S1", 100, 1, 32, 128), ("S2", 100, 32, 64, 256),
                   ("S3", 50, 64, 256, 512), ("S4", 30, 16, 10, 1000)]


def test_deepbench_shapes_filtered_by_size():
    db = shapes.resolve(["deepbench"], max_gflop=4.0)
    assert db, "deepbench filter left no shapes"
    for s in db:
        for cell in (s.cells or ("simple_rnn", "lstm", "gru")):
            for mode in (s.modes or ("inference", "training")):
                assert shapes.case_flops(cell, mode, s.T, s.N, s.C, s.H) <= 4e9 * 1.0001


def test_flop_formula():
    # forward 2*T*N*G*H*(C+H); training 3x
    assert shapes.case_flops("lstm", "inference", 10, 2, 3, 4) == 2 * 10 * 2 * 4 * 4 * (3 + 4)
    assert shapes.case_flops("gru", "training", 10, 2, 3, 4) == 3 * 2 * 10 * 2 * 3 * 4 * (3 + 4)


def test_parse_options():
    p = cli.build_parser()
    args = p.parse_args(["--shapes", "7,3,5,9", "quick", "--cells", "lstm,gru", "--modes", "fwd",
                         "--threads", "2", "--reps", "4", "--backends", "torch"])
    cfg = cli.config_from_args(args, [])
    assert [(s.T, s.N, s.C, s.H) for s in cfg.shapes] == [(7, 3, 5, 9), (20, 1, 16, 64),
                                                          (20, 16, 32, 128)]
    assert tuple(cfg.cells) == ("lstm", "gru")
    assert tuple(cfg.modes) == ("inference",)
    assert cfg.threads == 2 and cfg.reps == 4
    assert cfg.impls == ["torch"]
    quick = cli.config_from_args(p.parse_args(["--quick"]), [])
    assert [s.name for s in quick.shapes] == ["Q1", "Q2"]


@pytest.mark.parametrize("bad", [["--cells", "tcn"], ["--modes", "sideways"],
                                 ["--shapes", "1,2,3"], ["--backends", "nosuch"],
                                 ["--reps", "0"]])
def test_bad_options_are_usage_errors(bad, capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(bad + ["--no-peak"])
    assert e.value.code == 2


@pytest.mark.skipif(not COMPILED, reason="compiled extension not built")
def test_run_json_and_compare(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    be = COMPILED[-1]
    argv = TINY + ["--cells", "lstm,gru", "--backends", f"{be},scalar"]
    rc, out = run_main(argv + ["--json", str(a)], capsys)
    assert rc == 0, out
    assert "ok" in out
    rc, _ = run_main(argv + ["--json", str(b)], capsys)
    assert rc == 0
    data = json.loads(a.read_text())
    assert data["machine"]["threads"] == 1
    rows = data["results"]
    assert {r["cell"] for r in rows} == {"lstm", "gru"}
    assert {r["mode"] for r in rows} == {"inference", "training"}
    for r in rows:
        assert r["status"] == "ok" and r["reps"] == 2 and r["median_ms"] > 0
    rc, out = run_main(["--compare", str(a), str(b)], capsys)
    assert rc == 0 and "lstm" in out and "gru" in out


@pytest.mark.skipif(not COMPILED, reason="compiled extension not built")
def test_wrong_implementation_is_reported_and_not_timed(tmp_path, capsys):
    """Check, then time: an implementation whose output is off is WRONG, is
    never timed, and makes the run exit 1; the others are still timed."""
    calls = {"n": 0}

    def wrong_factory():
        good = I.rnnkern_impl("scalar")

        def prepare(cell, mode, inp):
            p = good.prepare(cell, mode, inp)

            def fn():
                calls["n"] += 1
                return p.fn()

            def collect(ret):
                got = dict(p.collect(ret))
                got["y"] = np.asarray(got["y"]) * 1.01  # a 1% error: must be caught
                return got
            return I.Prepared(fn, collect)
        return I.Impl("wrong", "test", prepare)

    I.register("wrong", wrong_factory)
    try:
        out_json = tmp_path / "w.json"
        rc, out = run_main(TINY + ["--cells", "gru", "--modes", "inference",
                                   "--backends", "scalar,wrong", "--json", str(out_json)],
                           capsys)
    finally:
        I.unregister("wrong")
    assert rc == 1
    assert "WRONG" in out
    assert calls["n"] == 1, "the wrong implementation was timed (called after its check)"
    rows = {r["impl"]: r for r in json.loads(out_json.read_text())["results"]}
    assert rows["wrong"]["status"] == "WRONG" and rows["wrong"].get("median_ms") is None
    assert rows["rnnkern-scalar"]["status"] == "ok" and rows["rnnkern-scalar"]["reps"] == 2


def test_torch_and_keras_columns(capsys):
    pytest.importorskip("torch")
    if not COMPILED:
        pytest.skip("compiled extension not built")
    names = ["torch"] + (["keras"] if I.keras_status()[0] else [])
    rc, out = run_main(TINY + ["--cells", "lstm", "--backends", ",".join(["scalar"] + names)],
                       capsys)
    assert rc == 0, out  # exit 1 would mean WRONG or ERROR
    table = out.split("median ms per implementation")[1]
    for n in names:
        assert n in table.splitlines()[1], f"no {n} column"


def test_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("torch")
    if not COMPILED:
        pytest.skip("compiled extension not built")
    png = tmp_path / "p.png"
    rc, out = run_main(TINY + ["--cells", "simple_rnn", "--backends", "scalar,torch",
                               "--plot", str(png)], capsys)
    assert rc == 0, out
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.skipif(not COMPILED, reason="compiled extension not built")
def test_peak(capsys):
    rc, out = run_main(["--peak", "--peak-seconds", "0.05"], capsys)
    assert rc == 0
    assert "avx512" in out and "avx2" in out
    from rnnkern import _core
    for isa in ("avx512", "avx2"):
        if isa in _core.cpu_isas():
            line = [ln for ln in out.splitlines() if ln.strip().startswith(isa)][0]
            assert float(line.split()[1]) > 1.0


def test_list(capsys):
    rc, out = run_main(["--list", "--no-peak"], capsys)
    assert rc == 0 and "S4" in out and "implementations:" in out
