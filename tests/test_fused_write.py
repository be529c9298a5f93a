"""The fused write (ait/models/fused_write.py) equals the plain write: values, random draws, every gradient."""
import contextlib

import pytest
import torch

from ait.data import InputSpec
from ait.models import AiT, fused_read, fused_write, make_config

INP = InputSpec(image_size=16, channels=1, num_classes=3)


def workspace(dtype=torch.float64, **kw):
    torch.manual_seed(0)
    ws = AiT(make_config("tiny", patch=4, **kw), INP).to(dtype).workspaces()[0]
    with torch.no_grad():  # LayerNorm away from its identity init, so its gradients are checked in earnest
        ws.norm_gamma.weight.normal_()
        ws.norm_gamma.bias.normal_()
    return ws


def both_paths(ws, Z, seed=5):
    """(new, aux, grads, RNG state after) from the fused and the plain path, same seed."""
    out = []
    wrt = [Z, ws.to_q.weight, ws.to_k.weight, ws.to_v.weight, ws.to_out.weight, ws.norm_gamma.weight,
           ws.norm_gamma.bias]
    g = torch.randn(ws.memory.shape, generator=torch.Generator().manual_seed(1), dtype=Z.dtype)
    for fused in (True, False):
        with contextlib.nullcontext() if fused else fused_write.disabled():
            torch.manual_seed(seed)
            new, aux, _ = ws.write(Z)
            grads = torch.autograd.grad((new * g).sum() + 3.0 * aux, wrt)
        out.append((new, aux, grads, torch.get_rng_state()))
    return out


@pytest.mark.parametrize("P,bottleneck,balance", [(40, 32, True), (300, 7, True), (20, 32, True), (64, 16, False)])
def test_fused_write_equals_the_plain_write_in_float64(P, bottleneck, balance):
    ws = workspace(bottleneck=bottleneck, balance_loss=balance).train()   # train: dropout on
    assert fused_write.applies(ws, torch.zeros(P, 64, dtype=torch.float64), False, False)
    Z = torch.randn(P, 64, dtype=torch.float64, requires_grad=True)
    (n1, a1, g1, r1), (n2, a2, g2, r2) = both_paths(ws, Z)
    assert torch.equal(n1, n2) and torch.equal(a1, a2)     # the same ops in the same order
    assert torch.equal(r1, r2)                             # the same draws for the dropout
    for name, a, b in zip(("Z", "W_Q", "W_K", "W_V", "W_O", "LN weight", "LN bias"), g1, g2):
        assert a.abs().max() > 0, name
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-14), (name, (a - b).abs().max())


def test_fused_write_equals_the_plain_write_in_float32():
    ws = workspace(torch.float32).train()
    Z = torch.randn(256, 64, requires_grad=True)
    (n1, a1, g1, _), (n2, a2, g2, _) = both_paths(ws, Z)
    assert torch.equal(n1, n2) and torch.equal(a1, a2)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6 * b.abs().max())


def test_fused_write_applies_only_where_it_is_equal():
    Z = torch.zeros(64, 64)
    ws = workspace(torch.float32).train()
    assert fused_write.applies(ws, Z, False, False)
    assert not fused_write.applies(ws, Z, True, False)          # dense gates (a knockout)
    assert not fused_write.applies(ws, Z, False, True)          # gates kept for a trace
    with torch.no_grad():
        assert not fused_write.applies(ws, Z, False, False)
    assert not fused_write.applies(ws.eval(), Z, False, False)
    for kw in (dict(bottleneck_on=False), dict(learn_write=False), dict(write_centered=True)):
        assert not fused_write.applies(workspace(torch.float32, **kw).train(), Z, False, False), kw
    assert not fused_write.applies(AiT(make_config("tiny", "paper", patch=4), INP).train().workspaces()[0], Z,
                                   False, False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not fused_write.applies(ws.train(), Z, False, False)
    with fused_write.disabled():
        assert not fused_write.applies(ws, Z, False, False)
    assert fused_write.applies(ws, Z, False, False)


def test_a_training_step_is_the_same_through_either_path():
    """Two AdamW steps of a whole AiT, fused write and read against plain: the same losses and
    parameters (float64)."""
    def run():
        torch.manual_seed(0)
        m = AiT(make_config("tiny", patch=4), INP).double().train()
        opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
        x, y = torch.rand(4, 1, 16, 16, dtype=torch.float64), torch.tensor([0, 1, 2, 0])
        losses = []
        for _ in range(2):
            logits, aux = m(x)
            loss = torch.nn.functional.cross_entropy(logits, y) + aux
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses, m.state_dict()
    l1, s1 = run()
    with fused_write.disabled(), fused_read.disabled():
        l2, s2 = run()
    assert l1 == pytest.approx(l2, rel=1e-12)
    for k in s1:
        assert torch.allclose(s1[k].double(), s2[k].double(), rtol=1e-9, atol=1e-12), k
