"""The ET masked-completion example: it learns, resumes exactly, and refuses bad input clearly."""
import json

import pytest
import torch

import hopfieldkit as hk
from hopfieldkit.examples import et_completion as etc
from hopfieldkit.examples.images import load_cifar10, make_bars


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
    ck = torch.load(out / "last.pt", weights_only=False)
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
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "broken" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 12
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k in ("exp_avg", "exp_avg_sq"):
        assert all(torch.equal(a["optimizer"]["state"][i][k], b["optimizer"]["state"][i][k]) for i in a["optimizer"]["state"])


@pytest.mark.parametrize("kw, exc, match", [
    (dict(data="digits", patch=3), ValueError, "not divisible by the patch size 3"),
    (dict(data="cifar10"), ValueError, "needs --data-dir"),
    (dict(data="imagenet"), ValueError, "--data must be"),
    (dict(data="bars", pos_init="learned"), ValueError, "pos_init must be"),
])
def test_bad_config(kw, exc, match, tmp_path):
    with pytest.raises(exc, match=match):
        etc.train(etc.Config(**kw, steps=1, out=str(tmp_path)), progress=False)


def test_missing_cifar_folder_says_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        load_cifar10(tmp_path)


def test_patchify_roundtrip():
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(etc.unpatchify(etc.patchify(x, 4), 4, 3, 8, 8), x)
