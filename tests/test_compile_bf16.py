"""The --compile and --bf16 paths, on CPU (CUDA is where they pay; the code path is the same)."""
import math

import pytest
import torch

from ait import train as T
from ait.data import InputSpec
from ait.models import build

DATA = InputSpec(image_size=16, channels=1, num_classes=3)


@pytest.mark.parametrize("name", ["ait-tiny", "vit-tiny", "coordination-tiny", "set-transformer-tiny",
                                  "perceiver-tiny"])
def test_models_compile_to_one_graph_and_match_eager(name):
    """fullgraph=True fails on any graph break (a host sync such as a NaN check, .item(), ...)."""
    torch.manual_seed(0)
    model = build(name, DATA, patch=4)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    x = torch.randn(4, 1, 16, 16)
    compiled(x)[0].sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    assert torch.allclose(compiled(x)[0], model(x)[0], atol=1e-5)


def test_bf16_autocast_training_runs_and_stays_close_to_float32(tmp_path):
    base = dict(data="mnist5k", max_steps=4, eval_every=4, batch_size=16, test_size=64, device="cpu")
    fp32 = T.train(T.TrainConfig(**base, out=str(tmp_path / "a")), progress=False)
    bf16 = T.train(T.TrainConfig(**base, out=str(tmp_path / "b"), bf16=True), progress=False)
    assert math.isfinite(bf16["loss"]) and abs(bf16["train_loss"] - fp32["train_loss"]) < 0.1


def test_compiling_leaves_the_argument_checks_on():
    import hopfieldkit as hk

    model = build("ait-tiny", DATA, patch=4)
    torch.compile(model, backend="aot_eager", fullgraph=True)(torch.randn(2, 1, 16, 16))
    E = hk.HopfieldEnergy(torch.randn(4, 3))
    with pytest.raises(ValueError, match="NaN"):
        E(torch.full((2, 3), float("nan")), 1.0)


def test_energy_fast_paths_compile_to_one_graph_under_no_grad():
    """Under no_grad the ET direction and the Hopfield update take their in-place / oneDNN paths
    eagerly; traced, they must fall back to plain ops without a graph break, and agree."""
    import hopfieldkit as hk

    torch.manual_seed(0)
    E = hk.EnergyTransformerEnergy(16, 2, 8, 24, w_std=0.3, mem_std=0.3)
    H = hk.HopfieldEnergy(torch.randn(40, 16))
    x = torch.randn(3, 5, 16)
    with torch.no_grad():
        d = torch.compile(E.grad_g_closed, backend="aot_eager", fullgraph=True)(x)
        assert torch.allclose(d, E.grad_g_closed(x), atol=1e-5)
        u = torch.compile(H.update, backend="aot_eager", fullgraph=True)(x, 0.5)
        assert torch.allclose(u, H.update(x, 0.5), atol=1e-5)
        e = torch.compile(H.forward, backend="aot_eager", fullgraph=True)(x, 0.5)
        assert torch.allclose(e, H(x, 0.5), atol=1e-5)


def test_a_compiled_model_does_not_recompile_on_every_call():
    """hk.unchecked() inside the workspace once counted its sessions while traced: dynamo guarded
    on the counter and recompiled each call until its limit, then ran eagerly."""
    torch.manual_seed(0)
    model = build("ait-tiny", DATA, patch=4)
    compiled = torch.compile(model, backend="aot_eager")
    x = torch.randn(4, 1, 16, 16)
    compiled(x)[0].sum().backward()
    with torch._dynamo.config.patch(error_on_recompile=True):
        for _ in range(3):
            compiled(x)[0].sum().backward()
