"""The fused read (ait/models/fused_read.py) equals the plain read + skip: values and every gradient."""
import contextlib

import pytest
import torch

from ait.data import InputSpec
from ait.models import AiT, fused_read, make_config

INP = InputSpec(image_size=16, channels=1, num_classes=3)


def workspace(dtype=torch.float64, **kw):
    torch.manual_seed(0)
    return AiT(make_config("tiny", patch=4, **kw), INP).to(dtype).workspaces()[0].train()


def both_paths(ws, u):
    """(output, aux, grads) of the whole workspace from the fused and the plain read, same seed."""
    out = []
    wrt = [u] + [p for p in ws.parameters() if p.requires_grad]
    for fused in (True, False):
        with contextlib.nullcontext() if fused else fused_read.disabled():
            torch.manual_seed(5)
            ws.memory.copy_(torch.randn(ws.memory.shape, generator=torch.Generator().manual_seed(3), dtype=u.dtype))
            assert fused_read.applies(ws, u, False) == fused
            y, aux = ws(u)
            g = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=u.dtype)
            grads = torch.autograd.grad((y * g).sum() + aux, wrt, allow_unused=True)
        out.append((y, ws.memory.clone(), grads, ws.read.priors))
    return out, ["u"] + [n for n, p in ws.named_parameters() if p.requires_grad]


@pytest.mark.parametrize("kw", [{}, {"read_skip": False}, {"beta": 4.0}, {"learn_beta": True, "beta": 2.0},
                                {"num_priors": 20}])
def test_fused_read_equals_the_plain_read_in_float64(kw):
    ws = workspace(**kw)
    u = torch.randn(3, 16, 64, dtype=torch.float64, requires_grad=True)
    ((y1, m1, g1, p1), (y2, m2, g2, p2)), names = both_paths(ws, u)
    assert torch.allclose(y1, y2, rtol=1e-12, atol=1e-13) and torch.equal(m1, m2)
    assert not p1.requires_grad and torch.equal(p1, p2)      # no graph left on the module, either path
    checked = 0
    for name, a, b in zip(names, g1, g2):
        assert (a is None) == (b is None), name
        if a is None:
            continue
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12), (name, (a - b).abs().max())
        checked += a.abs().max() > 0
    read_params = {"u", "read.f_LT.weight", "read.f_LT.bias", "to_q.weight", "to_k.weight"} | (
        {"log_beta"} if kw.get("learn_beta") else set())
    nonzero = {n for n, a in zip(names, g1) if a is not None and a.abs().max() > 0}
    assert read_params <= nonzero, read_params - nonzero    # the read's gradients reach f_LT, β and the write


def test_fused_read_equals_the_plain_read_in_float32():
    ws = workspace(torch.float32)
    u = torch.randn(8, 64, 64, requires_grad=True)
    ((y1, _, g1, _), (y2, _, g2, _)), _ = both_paths(ws, u)
    assert torch.allclose(y1, y2, rtol=1e-5, atol=1e-5)
    for a, b in zip(g1, g2):
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * b.abs().max())


def test_fused_read_applies_only_where_it_is_equal():
    ws = workspace(torch.float32)
    z = torch.zeros(2, 16, 64)
    assert fused_read.applies(ws, z, False)
    assert not fused_read.applies(ws, z, True)                  # a trace wants the descent
    with torch.no_grad():
        assert not fused_read.applies(ws, z, False)
    assert not fused_read.applies(ws, z.to(torch.bfloat16), False)
    for kw in (dict(hopfield_steps=2), dict(read_radius=8.0), dict(hopfield=False)):
        assert not fused_read.applies(workspace(torch.float32, **kw), z, False), kw
    for ko in ("no_hopfield", "memory_mean", "memory_random", "dense_bottleneck"):
        ws.knockout = ko
        assert not fused_read.applies(ws, z, False), ko
    ws.knockout = None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not fused_read.applies(ws, z, False)
    with fused_read.disabled():
        assert not fused_read.applies(ws, z, False)
    assert fused_read.applies(ws, z, False)
