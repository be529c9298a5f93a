"""The ET masked-completion example: it learns, resumes exactly, and refuses bad input clearly."""
import json

import pytest
import torch

import hopfieldkit as hk
from hopfieldkit.examples import et_completion as etc
from hopfieldkit.datasets import load_cifar10, make_bars
from hopfieldkit.runs import RunError, load_checkpoint


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("et_bars")
    cfg = etc.Config(data="bars", image_size=8, steps=700, eval_every=350, out=str(out), seed=0)
    last = etc.train(cfg, progress=False)
    return cfg, out, last


def test_short_training_beats_the_mean_patch_baseline(trained):
    cfg, out, last = trained
    assert last["mse"] < 0.6 * last["baseline_mse"], last
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [350, 700]
    assert all({"step", "split", "loss", "mse", "baseline_mse"} <= set(l) for l in lines)
    for name in ("last.pt", "config.json", "completion.png", "energy.png"):
        assert (out / name).exists()


def test_energy_never_increases_with_trained_weights(trained):
    cfg, out, _ = trained
    ck = load_checkpoint(out / "last.pt")
    model = etc.ETCompletion(etc.Config(**ck["config"]), 1, 8)
    model.load_state_dict(ck["model"])
    imgs = make_bars(16, seed=5)
    p = etc.patchify(imgs, 2)
    mask = etc.random_mask(16, p.shape[1], 0.5, torch.Generator().manual_seed(0))
    x = model.tokens_in(p, mask).detach()
    run = hk.et_block(model.energy, x, alpha=cfg.alpha, steps=3 * cfg.et_steps)
    assert run.monotone() and (run.energies[-1] < run.energies[0]).all()


def test_resume_equals_an_unbroken_run(tmp_path):
    base = dict(data="bars", image_size=8, dim=16, heads=2, head_dim=4, memories=16, et_steps=3, batch=16,
                steps=12, eval_every=5)
    etc.train(etc.Config(**base, out=str(tmp_path / "straight")), progress=False)
    broken = etc.Config(**base, out=str(tmp_path / "broken"))
    etc.train(broken, progress=False, stop_at=7)          # interrupted after step 7 (between evaluations)
    etc.train(broken, resume=True, progress=False)        # continued to step 12
    a = load_checkpoint(tmp_path / "straight" / "last.pt")
    b = load_checkpoint(tmp_path / "broken" / "last.pt")
    assert a["step"] == b["step"] == 12
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k in ("exp_avg", "exp_avg_sq"):
        assert all(torch.equal(a["optimizer"]["state"][i][k], b["optimizer"]["state"][i][k]) for i in a["optimizer"]["state"])


@pytest.mark.parametrize("kw, exc, match", [
    (dict(data="digits", patch=3), ValueError, "not divisible by the patch size 3"),
    (dict(data="cifar10"), ValueError, "needs --data-dir"),
    (dict(data="imagenet"), ValueError, "data: expected one of"),
    (dict(data="bars", pos_init="learned"), ValueError, "pos_init: expected one of"),
    (dict(data="bars", steps=0), ValueError, "steps: expected a value ≥ 1"),
    (dict(data="bars", mask_frac=1.5), ValueError, "mask_frac: expected a value < 1"),
])
def test_bad_config(kw, exc, match, tmp_path):
    with pytest.raises(exc, match=match):
        etc.train(etc.Config(**{"steps": 1, **kw}, out=str(tmp_path / "run")), progress=False)
    assert not (tmp_path / "run").exists()                   # refused before anything was written


def test_missing_cifar_folder_says_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        load_cifar10(tmp_path)


def test_patchify_roundtrip_and_layout():
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(etc.unpatchify(etc.patchify(x, 4), 4, 3, 8, 8), x)
    p = hk.patchify(x, 4)                                   # token 1 = top-right patch, (row, col, channel)
    assert p.shape == (2, 4, 48) and torch.equal(p[0, 1, :3], x[0, :, 0, 4])
    with pytest.raises(ValueError, match="not divisible by the patch size"):
        hk.patchify(x, 3)


def test_a_run_folder_is_refused_resumed_with_its_settings_and_errors_are_one_line(tmp_path, capsys):
    out = str(tmp_path / "r")
    base = ["--data", "bars", "--image-size", "8", "--dim", "8", "--heads", "2", "--head-dim", "4",
            "--memories", "8", "--et-steps", "2", "--batch", "8", "--steps", "4", "--eval-every", "2", "--out", out]
    etc.main(base + ["--stop-at", "2"])
    with pytest.raises(SystemExit) as exc:
        etc.main(base)                                      # the folder holds a run
    assert exc.value.code == 2 and "--resume" in capsys.readouterr().err
    last = etc.main(["--out", out, "--resume"])               # its own settings: to step 4
    assert last["step"] == 4 and load_checkpoint(tmp_path / "r" / "last.pt")["step"] == 4
    with pytest.raises(SystemExit):
        etc.main(["--out", out, "--resume", "--steps", "9"])
    with pytest.raises(SystemExit):
        etc.main(base[:-2] + ["--lr", "-1", "--out", str(tmp_path / "x")])
    assert "lr: expected a value > 0" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert etc.main(base + ["--overwrite"])["step"] == 4
