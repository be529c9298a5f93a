"""The benchmark scripts run end to end on a tiny size (their numbers are not asserted: no timing
in tests), and what they check of themselves holds."""
import re
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))


def test_peers_runs_and_agrees_with_eager(bench_path, capsys):
    import peers

    peers.main(["--sizes", "1024x16", "--steps", "2", "--repeats", "1", "--settle", "0",
                "--et", "2,8,16,2,4,16", "--glibc-defaults"])   # the test process's allocator is left alone
    out = capsys.readouterr().out
    err = float(re.search(r"max \|hopfieldkit - eager\| = (\S+)", out).group(1))
    assert err < 1e-5, out                                   # every descend method gave the eager result
    assert "roofline" in out and re.search(r"update at \d+\.\d+× it", out), out
    assert re.search(r"products\s+\d+\.\d+ ms/step", out), out


def test_train_throughput_counts_flops(bench_path, capsys):
    import train_throughput

    train_throughput.main(["--batch", "4", "--repeats", "1", "--pools", "256", "--batches", "1,2", "--glibc-defaults"])
    out = capsys.readouterr().out
    rows = {m.group(1): float(m.group(2)) for m in re.finditer(r"^\s+(AiT|ViT|plain)\s.*?\s(\d+\.\d+)\s+n/a", out, re.M)}
    assert set(rows) == {"AiT", "ViT", "plain"} and all(v > 0 for v in rows.values()), out   # GFLOP per step
    assert rows["AiT"] == rows["plain"], out                  # the fused write and read do the same products
    assert re.search(r"fused write and read: .* = \d+\.\d+ \(quartiles", out), out
    parts = re.findall(r"^\s+(write|read|MLP) .*?(\d+\.\d+) ms\s+(\d+\.\d+) %", out, re.M)
    assert [p[0] for p in parts] == ["write", "read", "MLP", "read"] and all(float(p[1]) > 0 for p in parts), out
    by_batch = re.findall(r"^\s+(\d+)\s+(\d+\.\d+)\s+(\d+\.\d+)\s+(-?\d+\.\d+)\s+(\d+\.\d+)$", out, re.M)
    assert [int(b[0]) for b in by_batch] == [1, 2], out
    assert all(abs(float(m) - float(v) - float(d)) < 0.02 for _, v, m, d, _ in by_batch), out


def test_ode_tolerance_table_runs(bench_path, capsys):
    import ode_tolerances

    table = ode_tolerances.main(["--betas", "1", "--steps", "400", "--starts", "4"])
    assert table.count("\n") == 3 and "(default)" in table


def test_nn_layers_benchmark_matches_attention_and_measures_implicit_memory(bench_path, capsys):
    import nn_layers

    res = nn_layers.main(["--batch", "2", "--tokens", "8", "--dim", "16", "--heads", "2", "--repeats", "2"])
    assert res["err"] < 1e-5 and res["ratio"] > 0
    mem = res["memory"]
    assert mem[True, 10] == mem[True, 100] > 0                 # implicit: constant in the steps
    assert mem[False, 100] > 8 * mem[False, 10] and mem[False, 10] > mem[True, 10]
    assert "hand / Hopfield" in capsys.readouterr().out


def test_analysis_benchmark_runs_and_does_the_same_work_as_its_peers(bench_path, capsys):
    import analysis

    rows = analysis.main(["--dtypes", "float64", "--repeats", "1", "--settle", "0", "--glibc-defaults",
                          "--only", "fixed_points,basins,capacity"])
    assert [r[1].split()[0] for r in rows] == ["fixed_points"] * 3 + ["basins"] + ["capacity"] * 2
    for _, name, (ours, direct) in rows:
        assert ours == direct, name            # fixed points found / recall rate: hk and plain torch agree
    assert "hk/torch" in capsys.readouterr().out
