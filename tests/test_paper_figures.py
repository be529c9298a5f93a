"""The figure scripts run end to end at their smallest setting and write what they promise."""
import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "paper_figures" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_metastable_beta_sweep_script(tmp_path):
    mod = _load("metastable_beta_sweep")
    png = mod.main(["--patterns", "30", "--betas", "4", "--out", str(tmp_path)])
    assert png.exists() and png.stat().st_size > 10_000
    md = (tmp_path / "metastable_beta_sweep.md").read_text()
    assert "Command: `python paper_figures/metastable_beta_sweep.py --patterns 30" in md
    assert "metastable" in md and "Git revision" in md


def test_multihop_toy_script(tmp_path):
    mod = _load("multihop_toy")
    png = mod.main(["--steps", "40", "--seeds", "1", "--evals", "4", "--out", str(tmp_path)])
    assert png.exists()
    md = (tmp_path / "multihop_toy.md").read_text()
    for name in ("one-layer", "multihop", "two-layer"):
        assert f"| {name} |" in md
    import json
    data = json.loads((tmp_path / "multihop_toy.json").read_text())
    assert len(data["curves"]["multihop"][0]) == 5


def test_multihop_task_is_the_chain_sum():
    mod = _load("multihop_toy")
    task = mod.AutoRegressionTask(0)
    import torch
    X, y = task.sample(4, torch.Generator().manual_seed(0))
    assert X.shape == (4, 5, 3) and y.shape == (4, 1)
    assert torch.allclose(X[:, 1] , X[:, 0] @ task.A + 1, atol=0.1)
    assert torch.allclose(y[:, 0], task.w * X[:, :3, -1].sum(1), rtol=1e-5)


def test_learning_curves_from_runs_and_refusal_without_metrics(tmp_path):
    import pytest
    from ait import train as T

    for model in ("ait-tiny", "vit-tiny"):
        T.train(T.TrainConfig(model=model, data="mnist5k", max_steps=6, eval_every=3, batch_size=16, train_size=200,
                              test_size=100, out=str(tmp_path / model), device="cpu"), progress=False)
    mod = _load("learning_curves")
    png = mod.main([str(tmp_path / "ait-tiny"), str(tmp_path / "vit-tiny"), "--out", str(tmp_path / "curves")])
    assert png.exists()
    md = (tmp_path / "curves.md").read_text()
    assert "| ait-tiny | ait | mnist5k | 6 |" in md and "| vit-tiny |" in md
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a finished ait.train run"):
        mod.main([str(tmp_path / "empty"), "--out", str(tmp_path / "x")])
