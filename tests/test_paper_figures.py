"""The figure scripts run end to end at their smallest setting and write what they promise."""
import importlib.util
import json
import pathlib
import torch

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


def test_poster_table_scripts_run_end_to_end_and_refuse_missing_runs(tmp_path, monkeypatch):
    """Every poster table / figure script at its smallest setting (4 steps a run on a few hundred
    samples), then --no-run on an empty run folder: an error, never a number."""
    import pytest

    small = ["--runs-root", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--max-steps", "4", "--seeds", "2"]
    out = tmp_path / "out"
    R = _load("main_comparison").R
    few = ["--train-size", "300", "--test-size", "300", "--val-size", "6"]   # Sort-of-CLEVR: 10 + 6 scenes
    monkeypatch.setattr(R, "extra_args", lambda a, _full=R.extra_args: _full(a) + few)
    _load("main_comparison").main(small)
    md = (out / "main_comparison_small.md").read_text()
    for model in ("ait-tiny", "vit-tiny", "coordination-tiny", "perceiver-tiny", "set-transformer-tiny"):
        row = next(l for l in md.splitlines() if l.startswith(f"| {model} | not run | not run | "))  # no CIFAR given
        assert " ± " in row and "(n=2)" in row
    assert "Git revision" in md and "command.txt" in md and "seed noise, p = " in md
    for run in ("ait-tiny__triangle", "ait-tiny__triangle__seed1"):
        assert (tmp_path / "runs" / "small" / run / "command.txt").exists()
    assert "--seed 1" in (tmp_path / "runs" / "small" / "ait-tiny__triangle__seed1" / "command.txt").read_text()
    twin = json.loads((out / "main_comparison_small.json").read_text())
    cell = twin["cells"]["ait-tiny"]["triangle"]
    assert cell["seeds"] == [0, 1] and cell["acc"]["n"] == 2
    assert abs(cell["acc"]["mean"] - sum(cell["acc"]["values"]) / 2) < 1e-9
    assert f"{cell['acc']['mean']:.2f} ± {cell['acc']['sd']:.2f} (n=2)" in md
    _load("layer_efficiency").main(small + ["--no-run"])                          # reads the same runs
    assert "| 2 | ait-tiny |" in (out / "layer_efficiency_small.md").read_text()
    _load("ablation").main(small)
    md = (out / "ablation_small.md").read_text()
    assert "| w/o bottleneck |" in md and "| reset memory |" in md
    png = _load("sort_of_clevr").main(small)
    md = (out / "sort_of_clevr_small.md").read_text()
    assert png.exists() and "| ait-tiny |" in md
    assert "| chance: the best answer from the question alone | " in md and "(n=2)" in md.split("chance")[1]
    from ait.data.clevr import question_only_accuracy
    from ait.train import load_split, saved_config

    run0 = tmp_path / "runs" / "small" / "ait-tiny__sort-of-clevr"
    (q,) = _load("sort_of_clevr").question_only([run0, None])
    tc = saved_config(run0)
    test = load_split(tc, "test")
    ref = question_only_accuracy(load_split(tc, "train"), test)
    counts = torch.bincount(test.family, minlength=3).float()
    assert q["seed"] == 0 and q["acc_relational"] == ref["binary"] and q["acc_nonrelational"] == ref["unary"]
    overall = sum(ref[f] * counts[i] for i, f in enumerate(("unary", "binary", "ternary"))) / counts.sum()
    assert abs(q["acc"] - float(overall)) < 1e-6 and q["acc_average"] == (ref["binary"] + ref["unary"]) / 2
    _load("memory_study").main(small + ["--configs", "paper,read-alone-cosine"])
    md = (out / "memory_study_small.md").read_text()
    row = next(l for l in md.splitlines() if l.startswith("| read alone + cosine read + centred write |"))
    assert "(n=2)" in row and (" yes (" in row or " no (" in row)
    assert (tmp_path / "runs" / "small" / "ait-tiny__triangle__mem-read-alone-cosine" / "diagnostics.json").is_file()
    _load("fair_comparison").main(small + ["--data", "triangle", "--models", "ait-tiny,set-transformer-tiny"])
    md = (out / "fair_comparison_triangle.md").read_text()
    ait = next(l for l in md.splitlines() if l.startswith("| ait-tiny |"))
    st = next(l for l in md.splitlines() if l.startswith("| set-transformer-tiny |"))
    assert "(+0.0 %)" in ait and ait.count("**") == 2 and "memory_random" in ait and "(n=2)" in ait
    assert "seed noise" in st and "PMA decoder" in st
    assert (tmp_path / "runs" / "small" / "set-transformer-tiny__triangle__fair-lr0.001" / "command.txt").exists()
    png = _load("beta_reconstruction").main(small + ["--no-run"])
    md = (out / "beta_reconstruction_small.md").read_text()
    assert png.exists() and "| 0.05 | one step |" in md
    png = _load("prior_specialization").main(small + ["--no-run"])
    assert png.exists() and "| 0 |" in (out / "prior_specialization_small.md").read_text()
    empty = ["--runs-root", str(tmp_path / "none"), "--out", str(tmp_path / "o2"), "--no-run"]
    for name in ("main_comparison", "ablation", "sort_of_clevr", "beta_reconstruction"):
        with pytest.raises(FileNotFoundError, match="none of its runs exist"):
            _load(name).main(empty)
    assert not (tmp_path / "o2").exists() or not any((tmp_path / "o2").iterdir())


def test_small_beta_retrieves_identical_patches():
    """The poster's claim, as a property of the read: at β → 0 every patch maps to the mean of the
    priors; at large β patches stay distinct."""
    import torch
    import hopfieldkit as hk

    mod = _load("beta_reconstruction")
    torch.manual_seed(0)
    E = hk.LowRankPriorEnergy(8, 4, 16)
    E.set_priors(torch.randn(8, 4))
    z = torch.randn(40, 16)
    few = hk.descend(E, z, 0.001, method="update", steps=1, tol=0).xi
    many = hk.descend(E, z, 4.0, method="update", steps=1, tol=0).xi
    assert mod.distinct(few, tol=0.05) == 1 and mod.distinct(many) > 5


def test_readme_results_table_is_generated_from_the_committed_runs(tmp_path):
    mod = _load("readme_results")
    assert mod.main(["--check"]) == 0, "run python paper_figures/readme_results.py"
    run = tmp_path / "small" / "ait-tiny__triangle__memory"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text('{"step": 3, "acc": 0.5}\n{"step": 6, "acc": 0.625}\n')
    assert "ait-tiny [memory]" not in mod.render(mod.collect(tmp_path))      # one seed: no cell
    seed1 = tmp_path / "small" / "ait-tiny__triangle__memory__seed1"
    seed1.mkdir()
    (seed1 / "metrics.jsonl").write_text('{"step": 6, "acc": 0.375, "split": "test"}\n')
    assert "| ait-tiny [memory] | *small* | 50.00 ± 17.68 (n=2) † | — |" in mod.render(mod.collect(tmp_path))
    for r in (run, seed1):
        (r / "fingerprint.json").write_text("{}")
    assert "| ait-tiny [memory] | *small* | 50.00 ± 17.68 (n=2) | — |" in mod.render(mod.collect(tmp_path))
    assert "(no runs yet)" in mod.render(mod.collect(tmp_path / "nothing"))


def test_main_comparison_fills_the_cifar_columns_from_a_local_folder(tmp_path, fake_cifar):
    fake_cifar(tmp_path / "data", False)
    fake_cifar(tmp_path / "data", True)
    out = tmp_path / "out"
    _load("main_comparison").main(["--runs-root", str(tmp_path / "runs"), "--out", str(out), "--max-steps", "2", "--seeds", "1",
                                   "--data-dir", str(tmp_path / "data"), "--models", "ait-tiny,coordination-tiny"])
    md = (out / "main_comparison_small.md").read_text()
    for model in ("ait-tiny", "coordination-tiny"):
        row = next(l for l in md.splitlines() if l.startswith(f"| {model} |"))
        assert "not run" not in row and row.count("|") == 7        # CIFAR-10, CIFAR-100, Triangle, average
    assert "vit-tiny" not in md


def test_committed_runs_still_come_from_this_code():
    """Seed 0 of every committed configuration with a fingerprint gives the same first training steps
    with today's code (``python -m ait.stale`` checks every run; here the other seeds and the other
    learning rates of a configuration are left out: they run the same code): a change that moves a
    committed table's numbers fails here until its runs are made again."""
    from ait import stale

    seed0 = sorted(p for p in (ROOT / "paper_figures" / "results" / "runs").glob("*/*")
                   if (p / "fingerprint.json").is_file() and "__seed" not in p.name)
    assert seed0, "no committed run has a fingerprint"
    runs = {}
    for p in seed0:
        c = json.loads((p / "config.json").read_text())
        key = json.dumps([{k: v for k, v in c["train"].items() if k not in ("lr", "out")}, c["model"]], sort_keys=True)
        runs.setdefault(key, p)
    runs = list(runs.values())
    bad = [f"{v.run.name}: {v.status} {v.detail}" for v in map(stale.check, runs) if v.status != "current"]
    assert not bad, "retrain these runs (paper_figures/*.py --out paper_figures/results): " + "; ".join(bad)


def test_fair_comparison_matches_parameters_and_shares_the_other_tables_runs():
    """Every row of the fair comparison is within ±15 % of AiT-tiny's parameters on every data set,
    as ait.train builds the models (Triangle on the tiny recipe's 32-px canvas), has a position
    code, and at the recipe's lr AiT / ViT are the main comparison's own runs."""
    from ait import train as T
    from ait.models import count_parameters

    fc, mc = _load("fair_comparison"), _load("main_comparison")
    for data in fc.LRS:
        def model(m):
            c = T.TrainConfig(model=m, data=data, image_size=32 if data == "triangle" else None,
                              overrides=dict(fc.fields_of(m, data)))
            return T.model_for(T.resolve(c, 1000))
        counts = {m: count_parameters(model(m)) for m in fc.MODELS}
        for m, n in counts.items():
            assert abs(n - counts["ait-tiny"]) <= fc.PARAM_TOLERANCE * counts["ait-tiny"], (data, m, n)
            assert model(m).embed.pos is not None
    assert fc.run("ait-tiny", "triangle", 3e-3) in mc.configs(["ait-tiny"])
    assert fc.run("vit-tiny", "triangle", 3e-3) in mc.configs(["vit-tiny"])
    assert fc.run("coordination-tiny", "triangle", 1e-2).name == "coordination-tiny__triangle__fair-lr0.01"


def test_capacity_script_quick(tmp_path):
    mod = _load("capacity")
    md = mod.main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "capacity_curves.png").exists() and (tmp_path / "capacity_classical_to_modern.png").exists()
    assert "| 7 |" in md and "independent package" in md and "| dense-exp |" in md


def test_classical_dynamics_script_quick(tmp_path):
    res = _load("classical_dynamics").main(["--quick", "--out", str(tmp_path)])
    for name in ("basins", "temperature", "phase_diagram", "census"):
        assert (tmp_path / f"classical_{name}.png").exists(), name
    md = (tmp_path / "classical_dynamics.md").read_text()
    assert "## (5)" in md and "α_M(T)" in md and "spin glass" in md
    # low temperature keeps the start pattern, high temperature loses it
    low, high = res["temperature"]["P = 1"][0]["m"], res["temperature"]["P = 1"][-1]["m"]
    assert low > 0.9 > 0.5 > abs(high)
    assert json.loads((tmp_path / "classical_dynamics.json").read_text())["settings"]["basin_n"] == 40


def test_sort_of_clevr_conv_recipe_names_its_runs_and_gives_aits_knockouts_per_family(tmp_path, monkeypatch):
    import json

    mod = _load("sort_of_clevr")
    small = ["--max-steps", "2", "--eval-every", "2", "--train-size", "120", "--test-size", "120", "--val-size", "2"]
    monkeypatch.setattr(mod.R, "extra_args", lambda a: small)     # a few scenes: seconds, not minutes
    mod.main(["--runs-root", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--conv"])
    md = (tmp_path / "out" / "sort_of_clevr_conv.md").read_text()
    for model in ("ait-tiny", "vit-tiny", "coordination-tiny", "set-transformer-tiny"):
        assert f"| {model} | " in md and "(n=1)" in md
        cmd = (tmp_path / "runs" / "small" / f"{model}__sort-of-clevr__conv" / "command.txt").read_text()
        assert "--set stem=conv" in cmd and "--lr 0.001" in cmd and "--grad-clip 1.0" in cmd
        assert ("--set balance_loss=false" in cmd) == model.startswith("ait-")
        assert (tmp_path / "runs" / "small" / f"{model}__sort-of-clevr__conv" / "best.pt").exists()
    assert "| ↳ ait-tiny knockouts at the val-best checkpoint, Δ points relational / non-relational | memory_mean " in md
    ko = json.loads((tmp_path / "out" / "sort_of_clevr_conv.json").read_text())["cells"]["ait-tiny"]["knockouts"]
    d = json.loads((tmp_path / "runs" / "small" / "ait-tiny__sort-of-clevr__conv" / "diagnostics.json").read_text())
    assert ko["memory_random"]["relational"] == [100 * d["knockouts"]["memory_random"]["by_family"]["relational"]["delta"]]
    assert set(ko) == {"memory_mean", "memory_random", "no_hopfield", "dense_bottleneck"}
    assert "Coordination: learned positions, mean pooling" in md
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in md.splitlines() if line.startswith("| ")}
    assert rows["method"][5] == "relational vs vit-tiny"                  # each row against ViT, with the seed-noise test
    assert rows["vit-tiny"][5] == "—" and rows["ait-tiny"][5].endswith("(untested: n < 2)")
    assert len({line.count("|") for line in md.splitlines() if line.startswith("| ")}) == 1   # every row has every column
