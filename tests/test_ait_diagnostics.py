"""Workspace diagnostics: knockouts do what they say, statistics are consistent, evaluate writes them."""
import json
import math

import pytest
import torch

from ait import KNOCKOUTS, knockout
from ait import train as T
from ait.data import InputSpec
from ait.diagnostics import trace, workspace_stats
from ait.models import AiT, make_config

INP = InputSpec(16, 1, 3)


def model(**kw):
    torch.manual_seed(0)
    m = AiT(make_config("tiny", patch=4, **kw), INP)
    m(torch.rand(8, 1, 16, 16))            # one training write, so the memory is not its init
    return m.eval()


def test_knockouts_do_what_they_say_and_restore_the_model():
    m = model()
    x = torch.rand(4, 1, 16, 16)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    base = m(x)[0]
    with knockout(m, "no_hopfield"):
        t = trace(m, x)
        assert all(torch.equal(w.out, torch.zeros_like(w.out)) and w.read is None for w in t)
    with knockout(m, "memory_mean"):
        t = trace(m, x)
        for ws, w in zip(m.workspaces(), t):
            mean = ws.read.f_LT(w.priors).mean(0)
            assert torch.allclose(w.out, mean.expand_as(w.out), atol=1e-6)
    with knockout(m, "memory_random", seed=3):
        for ws in m.workspaces():
            assert torch.allclose(ws.memory.norm(dim=-1), torch.ones(len(ws.memory)))
        assert not torch.equal(m.workspaces()[0].memory, before["blocks.0.gwl.memory"])
    with knockout(m, "dense_bottleneck"):
        t = trace(m, x)
        assert all(w.gates is not None and (w.gates > 0).all() for w in t)   # dense gates, written in eval
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())  # everything restored
    assert torch.equal(m(x)[0], base)
    with pytest.raises(ValueError, match="knockout must be one of"):
        with knockout(m, "all"):
            pass
    from ait.models import build
    with pytest.raises(TypeError, match="need an AiT"):
        with knockout(build("vit-tiny"), "no_hopfield"):
            pass


def test_workspace_statistics_are_in_range_and_measure_what_they_name():
    m = model()
    x = torch.rand(6, 1, 16, 16)
    stats = workspace_stats(m, x)
    assert len(stats) == 2
    for s in stats:
        assert 1 - 1e-5 <= s["effective_priors"] <= s["num_priors"] + 1e-5
        assert -1 <= s["prior_cosine_mean"] <= 1 and -1 <= s["attractor_cosine_mean"] <= 1
        assert 0 <= s["unselected_share"] <= 1 and s["read_spread_ratio"] >= 0
    # identical priors: cosine 1, a uniform softmax over them (M_eff = M), one read for every patch (spread 0)
    same = model()
    with torch.no_grad():
        for ws in same.workspaces():
            ws.memory.copy_(ws.memory[:1].expand_as(ws.memory))
    for s in workspace_stats(same, x):
        assert s["prior_cosine_mean"] == pytest.approx(1.0, abs=1e-5)
        assert s["effective_priors"] == pytest.approx(s["num_priors"], rel=1e-4)   # a uniform softmax
        assert s["read_spread_ratio"] == pytest.approx(0.0, abs=1e-5)              # every read is the same


def test_evaluate_writes_diagnostics_consistent_with_the_accuracy(tmp_path):
    from ait import evaluate as E

    T.train(T.TrainConfig(data="mnist5k", out=str(tmp_path), max_steps=30, eval_every=30, batch_size=32,
                          test_size=120, val_size=60, device="cpu"), progress=False)
    res = E.main([str(tmp_path), "--diagnostics"])
    d = json.loads((tmp_path / "diagnostics.json").read_text())
    assert d["accuracy"] == pytest.approx(res["acc"])
    assert d["checkpoint"] == "best.pt"   # beside the file, so the run folder can move
    assert set(d["knockouts"]) == set(KNOCKOUTS)
    for k, v in d["knockouts"].items():
        assert 0 <= v["acc"] <= 1 and v["delta"] == pytest.approx(v["acc"] - d["accuracy"]), k
    assert len(d["workspaces"]) == 2
    for w in d["workspaces"]:
        assert set(w) == {"num_priors", "prior_cosine_mean", "attractor_cosine_mean", "effective_priors",
                          "read_spread_ratio", "unselected_share"}
        assert 1 <= w["effective_priors"] <= w["num_priors"] and math.isfinite(w["read_spread_ratio"])
    # the diagnostics leave the checkpointed model's accuracy as it was
    assert E.main([str(tmp_path)])["acc"] == pytest.approx(res["acc"])
    assert json.loads((tmp_path / "eval.json").read_text())["checkpoint"] == "best.pt"
    E.main([str(tmp_path), "--out", str(tmp_path / "elsewhere")])   # written away from the run: its path
    assert json.loads((tmp_path / "elsewhere" / "eval.json").read_text())["checkpoint"] == str(tmp_path / "best.pt")


def test_sort_of_clevr_knockouts_are_given_per_question_family(tmp_path):
    from ait import evaluate as E

    T.train(T.TrainConfig(data="sort-of-clevr", out=str(tmp_path), max_steps=4, eval_every=4, batch_size=16,
                          train_size=120, test_size=120, val_size=2, device="cpu",
                          overrides={"stem": "conv"}), progress=False)
    res = E.main([str(tmp_path), "--diagnostics"])
    d = json.loads((tmp_path / "diagnostics.json").read_text())
    fams = {"nonrelational", "relational", "ternary"}
    assert set(d["accuracy_by_family"]) == fams
    assert d["accuracy_by_family"]["relational"] == pytest.approx(res["acc_relational"])
    for v in d["knockouts"].values():
        assert set(v["by_family"]) == fams
        for f, w in v["by_family"].items():
            assert w["delta"] == pytest.approx(w["acc"] - d["accuracy_by_family"][f])
