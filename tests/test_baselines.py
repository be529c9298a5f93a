"""The baselines of the AiT poster: Coordination (and variants), Set Transformer, Perceiver."""
import json

import pytest
import torch

from ait import train as T
from ait.data import InputSpec
from ait.models import build, count_parameters, model_names
from ait.models.coordination import SharedWorkspace, strided_mask

CIFAR10 = InputSpec(image_size=32, channels=3, num_classes=10)
GRAY16 = InputSpec(image_size=16, channels=1, num_classes=3)
TINY = ["coordination-tiny", "set-transformer-tiny", "perceiver-tiny"]


@pytest.mark.parametrize("name, poster", [("coordination", 2.2), ("coordination-d", 2.2), ("coordination-h", 8.4),
                                          ("coordination-dh", 16.6), ("set-transformer", 2.2), ("perceiver", 44.9)])
def test_parameter_counts_match_the_poster_within_5_percent(name, poster):
    n = count_parameters(build(name, CIFAR10)) / 1e6
    assert abs(n - poster) / poster < 0.05, (name, n, poster)


def test_every_name_builds_and_unknown_names_are_refused():
    assert {"coordination-ssw", "coordination-str", "coordination-tr", "coordination-hc"} <= set(model_names())
    with pytest.raises(ValueError, match="unknown model 'perceiver-huge'"):
        build("perceiver-huge", CIFAR10)
    with pytest.raises(ValueError, match="unknown config fields \\['slotz'\\]"):
        build("coordination-tiny", CIFAR10, slotz=3)
    with pytest.raises(ValueError, match="workspace must be"):
        build("coordination-tiny", CIFAR10, workspace="medium")


def test_hard_write_keeps_topk_probabilities_without_renormalising():
    torch.manual_seed(0)
    ws = SharedWorkspace(dim=16, heads=2, topk=3, memory_mlp_dim=8)
    x, m = torch.randn(4, 10, 16), torch.randn(4, 5, 16)
    _, A = ws.attend(m, x, 3)
    _, full = ws.attend(m, x, None)
    assert ((A > 0).sum(-1) == 3).all()
    assert torch.allclose(A[A > 0], full[A > 0])                 # the softmax was taken first
    assert (A.sum(-1) < 1).all() and torch.allclose(full.sum(-1), torch.ones(4, 2, 5))
    kept = full.topk(3, -1).values.sum(-1)
    assert torch.allclose(A.sum(-1), kept)


def test_the_write_selects_within_each_sample():
    """Coordination's competition is per sample: one sample's tokens never change another's memory."""
    torch.manual_seed(0)
    model = build("coordination-tiny", CIFAR10).eval()
    x = torch.randn(3, 3, 32, 32)
    y = x.clone()
    y[1:] = torch.randn(2, 3, 32, 32)
    assert torch.allclose(model(x)[0][0], model(y)[0][0], atol=1e-6)


def test_strided_mask_reaches_every_pair_in_two_hops():
    for n in (5, 16, 65):
        M = strided_mask(n).float()
        assert M.diagonal().all()
        assert ((M @ M) > 0).all()
        assert M.mean() < 0.7 or n < 10                           # and it is sparse


def test_set_transformer_ignores_the_order_of_the_patches():
    torch.manual_seed(0)
    model = build("set-transformer-tiny", GRAY16).eval()
    x = torch.randn(2, 1, 16, 16)
    blocks = x.reshape(2, 1, 4, 4, 4, 4).permute(0, 1, 2, 4, 3, 5).reshape(2, 1, 16, 4, 4)
    perm = torch.randperm(16)
    shuffled = blocks[:, :, perm].reshape(2, 1, 4, 4, 4, 4).permute(0, 1, 2, 4, 3, 5).reshape(2, 1, 16, 16)
    assert not torch.equal(shuffled, x)
    assert torch.allclose(model(x)[0], model(shuffled)[0], atol=1e-5)
    pos = build("set-transformer-tiny", GRAY16, pos_embedding="learned")
    with torch.no_grad():
        pos.embed.pos.normal_()
    assert not torch.allclose(pos.eval()(x)[0], pos(shuffled)[0], atol=1e-5)


def test_perceiver_shares_weights_after_the_first_iteration():
    two = build("perceiver-tiny", CIFAR10, iterations=2)
    eight = build("perceiver-tiny", CIFAR10, iterations=8)
    assert count_parameters(two) == count_parameters(eight)
    assert count_parameters(build("perceiver-tiny", CIFAR10, iterations=1)) < count_parameters(two)


@pytest.mark.parametrize("data", ["triangle", "sort-of-clevr", "mnist5k", "cifar10", "cifar100"])
@pytest.mark.parametrize("name", TINY)
def test_every_baseline_trains_on_every_dataset(tmp_path, fake_cifar, name, data):
    kw = {}
    if data.startswith("cifar"):
        fake_cifar(tmp_path, data == "cifar100")
        kw["data_dir"] = str(tmp_path)
    cfg = T.TrainConfig(model=name, data=data, out=str(tmp_path / "run"), max_steps=3, eval_every=3,
                        batch_size=8, test_size=40, train_size=40, device="cpu", **kw)
    last = T.train(cfg, progress=False)
    assert 0.0 <= last["acc"] <= 1.0 and last["loss"] == last["loss"]
    conf = json.loads((tmp_path / "run" / "config.json").read_text())
    assert conf["train"]["model"] == name and "dim" in conf["model"] and conf["inputs"]["num_classes"] > 1


@pytest.mark.parametrize("name", TINY)
def test_every_baseline_learns_mnist(tmp_path, name):
    last = T.train(T.TrainConfig(model=name, data="mnist5k", out=str(tmp_path), max_steps=150,
                                 eval_every=150, device="cpu"), progress=False)
    assert last["acc"] > 0.22, last             # chance 0.1; measured 0.46 / 0.31 / 0.44 (no positions in the set model)


@pytest.mark.parametrize("variant", ["coordination", "coordination-ssw", "coordination-tr", "coordination-hc",
                                     "coordination-str", "coordination-d", "coordination-h", "coordination-dh"])
def test_coordination_variants_run_forward_and_backward(variant):
    from ait.models.coordination import VARIANTS

    torch.manual_seed(0)
    small = dict(dim=32, heads=4, mlp_dim=32, slots=4, topk=5, memory_mlp_dim=32)
    model = build("coordination-tiny", CIFAR10, **{**small, "depth": 4, **VARIANTS[variant]})
    logits, aux = model(torch.randn(2, 3, 32, 32))
    logits.sum().backward()
    assert logits.shape == (2, 10) and aux == 0
    assert [n for n, p in model.named_parameters() if p.grad is None] == []       # no dead parameters
    layers = 1 if VARIANTS[variant].get("shared", True) else VARIANTS[variant].get("depth", 4)
    assert len(model.layers) == layers
    assert (model.memory_init is None) == (VARIANTS[variant].get("workspace") == "none")


@pytest.mark.parametrize("name", TINY)
def test_no_dead_parameters(name):
    torch.manual_seed(0)
    model = build(name, InputSpec(32, 3, 10, question_dim=18))
    model(torch.randn(2, 3, 32, 32), torch.randn(2, 18))[0].sum().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


@pytest.mark.parametrize("name", ["coordination-tiny", "perceiver-tiny"])
def test_position_code_and_flat_head_are_what_make_a_model_see_where_patches_are(name):
    """Without a position code and with the mean head, shuffling the patches of an image leaves the
    logits unchanged (the model sees a set); the sincos code or the flat head (Coordination: over its
    tokens) make them change. The flat head reads N·D (Perceiver: latents·dim) entries."""
    import hopfieldkit as hk

    torch.manual_seed(0)
    img = torch.rand(2, 1, 16, 16)
    p = 4
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(1))
    shuffled = hk.unpatchify(hk.patchify(img, p)[:, perm], p, 1, 16, 16)

    def moved(**kw):
        torch.manual_seed(0)
        m = build(name, GRAY16, patch=p, **kw).eval()
        with torch.no_grad():
            return (m(img)[0] - m(shuffled)[0]).abs().max().item()

    assert moved(pos_embedding="none", head="mean") < 1e-5
    assert moved(pos_embedding="sincos", head="mean") > 1e-3
    if name == "coordination-tiny":
        assert moved(pos_embedding="none", head="flat") > 1e-3
    m = build(name, GRAY16, patch=p, head="flat")
    width = (16 if name == "coordination-tiny" else m.cfg.latents) * 64
    assert m.head[0].normalized_shape == (width,)
    with pytest.raises(ValueError, match="head"):
        build(name, GRAY16, head="cls")


@pytest.mark.parametrize("name", ["ait-tiny", "vit-tiny", *TINY])
def test_conv_stem_gives_every_model_the_tokens_of_the_patch_embedding(name):
    """stem="conv": the same number of tokens (question token included) and a trainable stem."""
    from ait.models.layers import ConvStem

    qa = InputSpec(image_size=30, channels=3, num_classes=4, question_dim=5)
    torch.manual_seed(0)
    x, q = torch.rand(2, 3, 30, 30), torch.rand(2, 5)
    patch, conv = build(name, qa, patch=5), build(name, qa, patch=5, stem="conv")
    assert isinstance(conv.embed.patches, ConvStem)
    assert conv.embed(x, q).shape == patch.embed(x, q).shape == (2, 37, patch.embed(x, q).shape[-1])
    logits, aux = conv(x, q)
    (logits.sum() + aux).backward()
    assert all(p.grad is not None for p in conv.embed.patches.parameters())
    with pytest.raises(ValueError, match="stem"):
        build(name, qa, patch=5, stem="resnet")


@pytest.mark.parametrize("image,patch,halvings", [(75, 15, 4), (75, 5, 2), (32, 4, 2), (30, 5, 2), (16, 1, 0), (64, 32, 5)])
def test_conv_stem_halves_while_the_map_covers_the_grid_then_pools_to_it(image, patch, halvings):
    from ait.models.layers import ConvStem

    stem = ConvStem(3, image, patch, 8)
    convs = [m for m in stem.convs if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride[0] for c in convs] == ([2] * halvings or [1])
    assert stem(torch.rand(1, 3, image, image)).shape == (1, (image // patch) ** 2, 8)
