"""AiT: parameter counts, the workspace layer's equations, presets, ablations, data, training and resume."""
import json

import numpy as np
import pytest
import torch

import hopfieldkit as hk
from hopfieldkit.runs import load_checkpoint
from ait import data as D
from ait import train as T
from ait.data import InputSpec
from ait.models import AiT, ViT, build, count_parameters, cv_squared, make_config

INP = InputSpec(image_size=16, channels=1, num_classes=3)


def tiny(**kw):
    torch.manual_seed(0)
    return AiT(make_config("tiny", patch=4, **kw), INP)


def paper_tiny():
    return AiT(make_config("tiny", "paper", patch=4), INP)


def traced(m, x):
    """The model's output and its workspace traces (one per layer)."""
    tr = []
    return m(x, trace=tr), tr


def test_paper_preset_parameter_counts_are_exact():
    with torch.device("meta"):
        got = [count_parameters(build(f"ait-{s}", preset="paper")) for s in ("small", "medium", "base")]
        assert got == [15_784_426, 45_876_970, 91_015_786]
        # the fixed preset has no unused tensors (109,056) and keeps the memory as a buffer (1,024 per block)
        assert count_parameters(build("ait-small")) == 15_784_426 - 109_056 - 2 * 1_024
        # ViT-Base: 85.13M with the CLS head (released vit_org.py); flat head + the unused position
        # embedding (65·768) and CLS token (768) = 85.71M, the paper's ViT-Base (docs/ait.md)
        assert count_parameters(build("vit-base-cls")) == 85_125_994
        assert count_parameters(build("vit-base")) + 65 * 768 + 768 == pytest.approx(85.71e6, abs=0.005e6)


def test_forward_shapes_and_loss():
    m = tiny()
    logits, aux = m(torch.rand(5, 1, 16, 16))
    assert logits.shape == (5, 3) and aux.shape == () and aux >= 0


def test_topk_gates_have_exactly_k_entries_summing_to_one():
    m = tiny(bottleneck=7)
    _, tr = traced(m, torch.rand(4, 1, 16, 16))
    assert len(tr) == 2
    for t in tr:
        G = t.gates                                         # [H_m, M, pool]
        assert G.shape == (2, 8, 4 * 16)
        assert ((G > 0).sum(-1) == 7).all()
        assert torch.allclose(G.sum(-1), torch.ones(2, 8))


def test_k_larger_than_the_pool_is_clamped_to_the_pool():
    m = tiny(bottleneck=10_000)
    _, tr = traced(m, torch.rand(2, 1, 16, 16))
    G = tr[0].gates
    assert ((G > 0).sum(-1) == 2 * 16).all()


def test_balance_loss_matches_a_direct_computation():
    m = tiny(bottleneck=5)
    (_, aux), tr = traced(m, torch.rand(3, 1, 16, 16))
    direct = 0.0
    for t in tr:
        for G in t.gates:
            imp, load = G.sum(0), (G > 0).float().sum(0)
            for v in (imp, load):
                mean = v.mean()
                var = ((v - mean) ** 2).sum() / (len(v) - 1)      # unbiased, as the released code
                direct += 1e-2 * var / (mean**2 + 1e-10)
    assert aux.item() == pytest.approx(float(direct), rel=1e-5)
    assert float(cv_squared(torch.ones(10))) == 0.0


@pytest.mark.parametrize("bottleneck_on,centred", [(True, False), (False, False), (True, True)])
def test_write_equals_its_equations_computed_plainly(bottleneck_on, centred):
    """The write as associated for speed (scores without keys, values read from the k chosen patches,
    the balance loss by scatter) equals the equations written out: keys and values of every patch, the
    top-k masked softmax, G V, and the balance loss per head."""
    torch.manual_seed(0)
    ws = tiny(bottleneck_on=bottleneck_on, write_centered=centred).double().workspaces()[0].eval()  # eval: no dropout
    Z = torch.randn(40, 64, dtype=torch.float64, requires_grad=True)
    new, aux, G = ws.write(Z, keep_gates=True)
    H, dm, gamma = 2, 16, ws.memory.detach()
    q = ws.to_q(gamma).view(-1, H, dm).transpose(0, 1)
    k = ws.to_k(Z).view(40, H, dm).transpose(0, 1)
    v = ws.to_v(Z - Z.mean(0) if centred else Z).view(40, H, dm).transpose(0, 1)   # centred: the pool minus its mean
    s = q @ k.transpose(1, 2) / dm ** 0.5
    if bottleneck_on:
        keep = torch.zeros_like(s, dtype=torch.bool).scatter(-1, s.topk(32, -1).indices, True)
        s = s.masked_fill(~keep, float("-inf"))
    G_ref = torch.softmax(s, -1)
    O = (G_ref @ v).transpose(0, 1).reshape(8, -1)
    ref = ws.cfg.ema * gamma + (1 - ws.cfg.ema) * ws.norm_gamma(gamma + ws.to_out(O))
    ref = ref / ref.norm(dim=-1, keepdim=True)
    aux_ref = sum(1e-2 * (cv_squared(g.sum(0)) + cv_squared((g > 0).double().sum(0))) for g in G_ref)
    assert torch.allclose(G, G_ref.detach(), atol=1e-12)
    assert torch.allclose(new, ref, atol=1e-12) and torch.allclose(aux, aux_ref, atol=1e-12)
    wrt = (Z, ws.to_q.weight, ws.to_k.weight, ws.to_v.weight)
    grads = torch.autograd.grad((new.sum() + aux), wrt)
    refs = torch.autograd.grad((ref.sum() + aux_ref), wrt)
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(grads, refs))


def test_read_options_change_only_what_they_name():
    """read_skip=False: the workspace adds the read alone (the block's output is x + ẑ); read_radius:
    the attractors have that norm."""
    x = torch.rand(3, 1, 16, 16)
    for skip in (True, False):
        m = tiny(read_skip=skip).eval()
        ws = m.workspaces()[0]
        u = torch.randn(3, 16, 64)
        tr = []
        out, _ = ws(u, tr)
        z = ws.norm_z(ws.mlp(u))
        assert torch.allclose(out, tr[0].out + z if skip else tr[0].out, atol=1e-6)
    m = tiny(read_radius=8.0)
    m(x)
    for ws in m.workspaces():
        assert torch.allclose(ws.read.patterns.norm(dim=-1), torch.full((8,), 8.0), atol=1e-5)
    with pytest.raises(ValueError, match="read_radius"):
        make_config("tiny", read_radius=-1.0)


def test_ema_keeps_rows_unit_norm_and_memory_moves_only_in_training():
    m = tiny()
    before = [ws.memory.clone() for ws in m.workspaces()]
    m.train()
    m(torch.rand(4, 1, 16, 16))
    for ws, b in zip(m.workspaces(), before):
        assert torch.allclose(ws.memory.norm(dim=-1), torch.ones(8), atol=1e-6)
        assert not torch.allclose(ws.memory, b)
    frozen = [ws.memory.clone() for ws in m.workspaces()]
    m.eval()
    m(torch.rand(4, 1, 16, 16))
    assert all(torch.equal(ws.memory, f) for ws, f in zip(m.workspaces(), frozen))
    paper = paper_tiny()
    paper.eval()
    pb = paper.workspaces()[0].memory.clone()
    paper(torch.rand(4, 1, 16, 16))
    assert not torch.equal(paper.workspaces()[0].memory, pb), "the paper preset writes memory in eval"


def test_hopfield_energy_never_increases_over_read_steps():
    m = tiny(hopfield_steps=6)
    (logits, _), tr = traced(m, torch.rand(3, 1, 16, 16))
    for t in tr:
        run = t.read
        assert run.energies.shape == (7, 3, 16) and run.monotone()
        assert (run.energies[-1] <= run.energies[0]).all()


def test_eval_prediction_does_not_depend_on_the_rest_of_the_batch():
    torch.manual_seed(1)
    x = torch.rand(6, 1, 16, 16)
    m = tiny()
    m(x)                       # one training step's write, then evaluate
    m.eval()
    with torch.no_grad():
        alone = m(x[:1])[0]
        together = m(x)[0][:1]
        other = m(torch.cat([x[:1], torch.rand(5, 1, 16, 16)]))[0][:1]
    assert torch.allclose(alone, together, atol=1e-6) and torch.allclose(alone, other, atol=1e-6)
    # the released behaviour (paper preset) makes a prediction depend on the batch: documented
    torch.manual_seed(0)
    p = paper_tiny()
    p.eval()
    state = {k: v.clone() for k, v in p.state_dict().items()}
    with torch.no_grad():
        a = p(x[:1])[0]
        p.load_state_dict(state)                        # same memory before both calls
        b = p(torch.cat([x[:1], torch.rand(5, 1, 16, 16)]))[0][:1]
        p.load_state_dict(state)
        c = p(x[:1])[0]
    assert torch.allclose(a, c, atol=1e-6)              # same batch, same memory: same prediction
    assert not torch.allclose(a, b, atol=1e-6)          # other samples in the batch change it


def test_write_path_learns_in_the_default_preset_only():
    for preset, learns in (("ait", True), ("paper", False)):
        torch.manual_seed(0)
        m = AiT(make_config("tiny", preset, patch=4), INP)
        logits, aux = m(torch.rand(4, 1, 16, 16))
        torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0])).backward()
        ws = m.workspaces()[0]
        got = ws.to_v.weight.grad is not None and ws.to_v.weight.grad.abs().sum() > 0
        assert got == learns, preset
        assert ws.read.f_LT.weight.grad.abs().sum() > 0   # f_LT learns through the Hopfield read in both


@pytest.mark.parametrize("kw", [dict(self_attention=False), dict(hopfield=False), dict(balance_loss=False),
                                dict(bottleneck_on=False), dict(memory=False), dict(reset_memory_every=1),
                                dict(learn_beta=True, hopfield_steps=3)])
def test_ablation_switches_run_and_train(kw):
    m = tiny(**kw)
    (logits, aux), tr = traced(m, torch.rand(4, 1, 16, 16))
    (torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0])) + aux).backward()
    if kw == dict(balance_loss=False) or kw == dict(memory=False):
        assert aux.item() == 0.0
    if kw == dict(bottleneck_on=False):
        assert (tr[0].gates > 0).all()
    if kw == dict(memory=False):
        assert count_parameters(m) == count_parameters(ViT(m.cfg, INP))


@pytest.mark.parametrize("call, exc, match", [
    (lambda: AiT(make_config("tiny", patch=4), InputSpec(30, 1, 3)), ValueError, "not divisible by the patch size"),
    (lambda: make_config("tiny", "released"), ValueError, "unknown preset"),
    (lambda: make_config("huge"), ValueError, "unknown size"),
    (lambda: make_config("tiny", bogus=1), ValueError, "unknown config fields"),
    (lambda: make_config("tiny", hopfield_steps="abc"), ValueError, "hopfield_steps: expected an integer"),
    (lambda: make_config("tiny", memory="maybe"), ValueError, "memory: expected true or false"),
    (lambda: make_config("tiny", dim=64.5), ValueError, "dim: expected an integer"),
    (lambda: make_config("tiny", beta=0), ValueError, "beta: expected a value > 0"),
    (lambda: build("resnet-tiny"), ValueError, "unknown model"),
    (lambda: build("ait-tiny", dict(image_size=28)), TypeError, "InputSpec"),
    (lambda: build("coordination-tiny", preset="paper"), ValueError, "AiT and ViT only"),
    (lambda: tiny()(torch.rand(2, 3, 16, 16)), ValueError, r"images must be \[B, 1, 16, 16\]"),
    (lambda: D.load("cifar10", "train"), ValueError, "--data-dir"),
    (lambda: D.load("imagenet", "train"), ValueError, "unknown data set"),
    (lambda: D.load("mnist5k", "dev"), ValueError, "split must be one of"),
    (lambda: D.load("mnist5k", "val", val_size=10_000), ValueError, "val_size must be between"),
    (lambda: InputSpec(0, 1, 3), ValueError, "image_size must be a positive int"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_missing_cifar_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        D.load("cifar10", "train", data_dir=str(tmp_path))


def test_triangle_generator_is_seeded_and_correct():
    from ait.data import triangle

    x1, y1 = D.make_triangles(40, seed=3)
    x2, y2 = D.make_triangles(40, seed=3)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert x1.shape == (40, 1, 64, 64) and set(x1.unique().tolist()) <= {0.0, 1.0}
    assert 10 < int(y1.sum()) < 30
    rng = np.random.default_rng(0)
    for label in (0, 1):
        for _ in range(50):
            P = triangle._triangle_vertices(rng, label, 64, 8.0, 0.1).astype(float)
            s = triangle._sides(P)
            assert s.min() >= 8.0
            spread = np.abs(s - s.mean()).max() / s.mean()
            assert (spread < 0.1) if label == 0 else (spread > 0.1)


@pytest.mark.parametrize("name, kw", [("mnist5k", {}), ("triangle", dict(size=300)),
                                      ("sort-of-clevr", dict(size=600))])
def test_validation_is_held_out_of_training_and_fixed_by_the_seed(name, kw):
    tr = D.load(name, "train", seed=0, **kw)
    va = D.load(name, "val", seed=0, **kw)
    va_again, va_other = D.load(name, "val", seed=0, **kw), D.load(name, "val", seed=1, **kw)
    assert torch.equal(va.images, va_again.images) and not torch.equal(va.images, va_other.images)
    flat = lambda s: {bytes((im * 255).round().to(torch.uint8).numpy().tobytes()) for im in s.images}
    assert not flat(tr) & flat(va), "a validation image is also a training image"
    assert len(va) > 0 and (name == "triangle" or len(tr) > len(va))   # Triangle: a generated set of its own


def test_short_training_run_beats_chance_and_writes_metrics(tmp_path):
    cfg = T.TrainConfig(data="mnist5k", out=str(tmp_path), max_steps=150, eval_every=75, device="cpu")
    last = T.train(cfg, progress=False)
    assert last["acc"] > 0.6 and last["val_acc"] > 0.6, last        # chance is 0.1
    lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(l["step"], l["split"]) for l in lines] == [(75, "val"), (75, "test"), (150, "val"), (150, "test")]
    assert all({"step", "split", "loss", "acc", "n"} <= set(l) for l in lines)
    assert lines[0]["n"] == 400 and lines[1]["n"] == 1000
    for name in ("last.pt", "best.pt", "config.json", "log.txt", "curve.png"):
        assert (tmp_path / name).exists(), name
    conf = json.loads((tmp_path / "config.json").read_text())
    assert conf["model"]["preset"] == "ait" and conf["model"]["patch"] == 4
    assert conf["inputs"] == {"image_size": 28, "channels": 1, "num_classes": 10, "question_dim": 0}
    assert {"command", "git_revision", "torch"} <= set(conf["provenance"])
    log = (tmp_path / "log.txt").read_text()
    assert "val acc" in log and "done: best val acc" in log


def test_the_cpu_default_learns_triangle(tmp_path):
    """``python -m ait.train`` with no options: tiny AiT, Triangle on a 32-px canvas, 1500 steps."""
    plan = T.parse_args(["--out", str(tmp_path), "--eval-every", "1500"])
    last = T.train(plan, progress=False)
    assert last["step"] == 1500 and last["acc"] > 0.85, last
    conf = json.loads((tmp_path / "config.json").read_text())
    assert conf["train"]["image_size"] == 32 and conf["model"]["pos_embedding"] == "sincos"


def test_evaluate_writes_accuracies_and_figures(tmp_path):
    from ait import evaluate as E

    T.train(T.TrainConfig(data="mnist5k", out=str(tmp_path), max_steps=30, eval_every=30, batch_size=32,
                          test_size=200, device="cpu"), progress=False)
    res = E.main([str(tmp_path), "--read-steps", "5", "--device", "cpu"])
    assert set(res["per_class"]) == {str(c) for c in range(10)}
    assert 0.0 <= res["acc"] <= 1.0 and res["read_energy_monotone"] is True and res["n"] == 200
    assert res["val"]["n"] == 400
    for name in ("eval.json", "priors.png", "energy.png", "attention.png"):
        assert (tmp_path / name).exists(), name
    with pytest.raises(SystemExit) as exc:
        E.main([str(tmp_path), "--checkpoint", "nope.pt"])
    assert exc.value.code == 2


def test_subsets_cover_every_class():
    split = D.load("mnist5k", "test", size=100)
    assert len(split) == 100 and set(split.labels.tolist()) == set(range(10))


@pytest.mark.parametrize("hundred", [False, True])
def test_cifar_from_a_local_folder_trains(tmp_path, hundred, fake_cifar):
    fake_cifar(tmp_path, hundred)
    name = "cifar100" if hundred else "cifar10"
    split = D.load(name, "train", data_dir=str(tmp_path))
    assert split.images.shape == ((18 if hundred else 90), 3, 32, 32)     # a tenth held out for validation
    assert len(D.load(name, "val", data_dir=str(tmp_path))) == (2 if hundred else 10)
    assert abs(split.images.mean().item()) < 0.5              # normalised with the set's own statistics
    cfg = T.TrainConfig(data=name, data_dir=str(tmp_path), max_steps=2, eval_every=2, batch_size=8,
                        out=str(tmp_path / "run"), device="cpu")
    last = T.train(cfg, progress=False)
    assert 0.0 <= last["acc"] <= 1.0


def test_augmentation_crops_and_flips():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    out = D.augment_crop_flip(x, g, pad=2)
    assert out.shape == x.shape
    assert not torch.equal(out, x)
    out2 = D.augment_crop_flip(x, torch.Generator().manual_seed(0), pad=2)
    assert torch.equal(out, out2)                               # seeded
    same = D.augment_crop_flip(x, torch.Generator().manual_seed(0), pad=0)
    assert all(torch.equal(same[b], x[b]) or torch.equal(same[b], x[b].flip(-1)) for b in range(2))


def test_real_cifar_images_from_foolbox_through_ait():
    from hopfieldkit.datasets import load_foolbox_images

    x, y = load_foolbox_images("cifar10")
    assert x.shape == (20, 3, 32, 32) and y[:4].tolist() == [3, 8, 8, 0]  # the official test set's first images
    torch.manual_seed(0)
    m = AiT(make_config("tiny"), InputSpec(32, 3, 10)).eval()
    logits, _ = m(x)
    assert logits.shape == (20, 10) and torch.isfinite(logits).all()


def test_fresh_triangle_batches_are_seeded_per_step_and_resume_exactly(tmp_path):
    a, ya = D.fresh_triangles(8, seed=0, step=3)
    b, yb = D.fresh_triangles(8, seed=0, step=3)
    c, _ = D.fresh_triangles(8, seed=0, step=4)
    assert torch.equal(a, b) and torch.equal(ya, yb) and not torch.equal(a, c)
    base = dict(data="triangle", max_steps=6, eval_every=3, batch_size=8, test_size=40, device="cpu",
                overrides={"bottleneck": 16})
    T.train(T.TrainConfig(**base, out=str(tmp_path / "a")), progress=False)
    cfg = T.TrainConfig(**base, out=str(tmp_path / "b"))
    T.train(cfg, progress=False, stop_at=4)
    T.train(cfg, resume=True, progress=False)
    sa = load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    sb = load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_position_codes():
    plain, pos = tiny(pos_embedding="none"), tiny(pos_embedding="learned")
    assert count_parameters(pos) - count_parameters(plain) == 16 * 64
    with torch.no_grad():  # a position-dependent embedding (a constant shift would vanish in the LayerNorms)
        pos.embed.pos.copy_(torch.randn_like(pos.embed.pos))
    x = torch.rand(2, 1, 16, 16)
    pos.load_state_dict({**plain.state_dict(), "embed.pos": pos.embed.pos.detach()}, strict=True)
    plain.eval(), pos.eval()
    assert not torch.allclose(plain(x)[0], pos(x)[0])
    sincos = tiny()                                          # the tiny default: fixed codes, a buffer
    assert sincos.cfg.pos_embedding == "sincos" and count_parameters(sincos) == count_parameters(plain)
    assert "embed.pos" in dict(sincos.named_buffers())
    assert torch.equal(sincos.embed.pos[0], hk.sincos_2d(4, 64))
    assert build("ait-tiny", preset="paper").cfg.pos_embedding == "none"
    with pytest.raises(ValueError, match="pos_embedding: expected one of"):
        tiny(pos_embedding="rope")
    with pytest.raises(ValueError, match="multiple of 4"):
        hk.sincos_2d(4, 30)
    with pytest.raises(ValueError, match="side must be a positive int"):
        hk.sincos_2d(0, 8)
    with pytest.raises(ValueError, match="unknown data set 'mnist'"):
        D.input_spec("mnist")
    from ait.evaluate import workspace_input
    with pytest.raises(TypeError, match="need an AiT"):
        workspace_input(build("vit-tiny"), torch.rand(1, 3, 32, 32))
