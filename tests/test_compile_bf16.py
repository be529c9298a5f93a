"""The --compile and --bf16 paths, on CPU (CUDA is where they pay; the code path is the same)."""
import math

import pytest
import torch

from ait import train as T
from ait.model import build

DATA = dict(image_size=16, channels=1, patch=4, num_classes=3)


@pytest.mark.parametrize("name", ["ait-tiny", "vit-tiny", "coordination-tiny", "set-transformer-tiny",
                                  "perceiver-tiny"])
def test_models_compile_to_one_graph_and_match_eager(name):
    """fullgraph=True fails on any graph break (a host sync such as a NaN check, .item(), ...)."""
    torch.manual_seed(0)
    model = build(name, DATA)
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

    model = build("ait-tiny", DATA)
    torch.compile(model, backend="aot_eager", fullgraph=True)(torch.randn(2, 1, 16, 16))
    E = hk.HopfieldEnergy(torch.randn(4, 3))
    with pytest.raises(ValueError, match="NaN"):
        E(torch.full((2, 3), float("nan")), 1.0)
