"""HopfieldEnergy with a memory per sample [B, N, d] and a mask [B, N]: everything equals a loop
over samples, each with its real patterns only."""
import pytest
import torch
from torch.func import hessian

import hopfieldkit as hk

D64 = torch.float64


@pytest.fixture
def bags():
    """4 memories of up to 7 patterns in d = 5; sample b has 7 − b real ones, the rest padding."""
    g = torch.Generator().manual_seed(3)
    X = torch.randn(4, 7, 5, generator=g, dtype=D64) * 1.5
    mask = torch.arange(7).unsqueeze(0) < (7 - torch.arange(4)).unsqueeze(1)
    X = torch.where(mask.unsqueeze(-1), X, torch.full_like(X, 100.0))     # padding that would dominate
    xi = torch.randn(4, 5, generator=g, dtype=D64)
    return X, mask, xi


def _alone(X, mask, b):
    return hk.HopfieldEnergy(X[b][mask[b]])


@pytest.mark.parametrize("beta", [0.3, 2.0])
def test_energy_update_gradient_hessian_equal_a_loop(bags, beta):
    X, mask, xi = bags
    E = hk.HopfieldEnergy(X, mask)
    e, u, g, H, J = E(xi, beta), E.update(xi, beta), E.grad(xi, beta), E.hessian(xi, beta), E.jacobian(xi, beta)
    w = E.weights(xi, beta)
    assert (w[~mask] == 0).all()                                  # padded patterns get no weight
    for b in range(4):
        one, x = _alone(X, mask, b), xi[b:b + 1]
        assert torch.allclose(e[b], one(x, beta)[0], atol=1e-12)
        assert torch.allclose(u[b], one.update(x, beta)[0], atol=1e-12)
        assert torch.allclose(g[b], one.grad(x, beta)[0], atol=1e-12)
        assert torch.allclose(H[b], one.hessian(x, beta)[0], atol=1e-12)
        assert torch.allclose(J[b], one.jacobian(x, beta)[0], atol=1e-12)
        assert torch.allclose(H[b], hessian(lambda y: one(y, beta))(xi[b]), atol=1e-9)
    assert E.counts().tolist() == [7, 6, 5, 4]
    assert torch.allclose(E.max_norm(), torch.stack([_alone(X, mask, b).max_norm() for b in range(4)]))


def test_states_broadcast_against_the_memory(bags):
    """[n, B, d] states against a [B, N, d] memory (n starts per sample)."""
    X, mask, xi = bags
    E = hk.HopfieldEnergy(X, mask)
    starts = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0), dtype=D64)
    out = E.update(starts, 1.0)
    for b in range(4):
        assert torch.allclose(out[:, b], _alone(X, mask, b).update(starts[:, b], 1.0), atol=1e-12)


@pytest.mark.parametrize("method", ["update", "gd", "armijo", "ode"])
def test_descent_is_monotone_and_equals_a_loop(bags, method):
    X, mask, xi = bags
    E = hk.HopfieldEnergy(X, mask)
    kw = {"step_size": 1.0} if method == "gd" else {}
    run = hk.descend(E, xi * 3, 1.5, method=method, steps=400, **kw)
    assert run.monotone() and run.success
    for b in range(4):
        one = hk.descend(_alone(X, mask, b), xi[b:b + 1] * 3, 1.5, method=method, steps=400, **kw)
        assert torch.allclose(run.xi[b], one.xi[0], atol=1e-8), b
    lean = hk.descend(E, xi * 3, 1.5, method=method, steps=400, record=False, **kw)
    assert torch.allclose(lean.xi, run.xi, atol=1e-10)


def test_fixed_points_per_sample_equal_a_loop(bags):
    X, mask, _ = bags
    E = hk.HopfieldEnergy(X, mask)
    starts = torch.randn(40, 5, generator=torch.Generator().manual_seed(5), dtype=D64) * 2
    per = hk.fixed_points(E, 3.0, starts)
    assert isinstance(per, list) and len(per) == 4
    for b in range(4):
        ref = hk.fixed_points(_alone(X, mask, b), 3.0, starts)
        assert len(per[b]) == len(ref) and per[b].kinds == ref.kinds
        assert torch.allclose(per[b].points, ref.points, atol=1e-7)
        assert torch.equal(per[b].stable, ref.stable) and torch.equal(per[b].counts, ref.counts)


def test_the_streaming_path_handles_memories_and_masks(bags, monkeypatch):
    """Blocks of patterns with a running softmax (any dtype, per-sample memories, masks) equal the
    plain expressions; blocks that are all padding add nothing."""
    from hopfieldkit._fast import stream

    X, mask, xi = bags
    E = hk.HopfieldEnergy(X, mask)
    with torch.no_grad():
        plain_u, plain_e = E.update(xi, 0.7), E(xi, 0.7)
        monkeypatch.setattr(stream, "STREAM_BYTES", 8)             # stream everything, 256 patterns a block...
        monkeypatch.setattr(stream, "block_size", lambda X, xi: 2)  # ...here 2, so blocks 3 of sample 3 are padding
        assert stream.applies(X, xi)
        assert torch.allclose(E.update(xi, 0.7), plain_u, atol=1e-12)
        assert torch.allclose(E(xi, 0.7), plain_e, atol=1e-12)
        shared = hk.HopfieldEnergy(X[0])
        assert torch.allclose(shared.update(xi, 0.7), torch.softmax(0.7 * xi @ X[0].T, -1) @ X[0], atol=1e-12)


@pytest.mark.parametrize("mask, exc, match", [
    (torch.ones(4, 7), TypeError, "mask must be a bool tensor"),
    (torch.ones(4, 6, dtype=torch.bool), ValueError, r"mask must have shape \(4, 7\)"),
    (torch.zeros(4, 7, dtype=torch.bool), ValueError, "without any real pattern"),
])
def test_bad_masks_are_named(bags, mask, exc, match):
    X, _, _ = bags
    with pytest.raises(exc, match=match):
        hk.HopfieldEnergy(X, mask)


def test_states_that_do_not_broadcast_against_the_memory_are_named(bags):
    X, mask, _ = bags
    with pytest.raises(ValueError, match=r"xi has batch shape \(3,\) but the memory has batch shape \(4,\)"):
        hk.HopfieldEnergy(X, mask)(torch.randn(3, 5, dtype=D64), 1.0)


@pytest.mark.parametrize("stream", [False, True])
def test_a_memory_shared_by_the_rows_of_a_batch_entry_equals_its_broadcast_copy(bags, stream, monkeypatch):
    """Memory [B, H, 1, N, d] with states [B, H, S, d] (the heads of a layer) is one batched product;
    it equals the same memory copied out to [B, H, S, N, d], with masks, gradients and streaming."""
    from hopfieldkit._fast import stream as _stream

    if stream:
        monkeypatch.setattr(_stream, "STREAM_BYTES", 64)        # stream in blocks of patterns
    X, mask, _ = bags                                          # [4, 7, 5], mask [4, 7]
    g = torch.Generator().manual_seed(5)
    X = X.reshape(2, 2, 1, 7, 5)
    mask = mask.reshape(2, 2, 1, 7)
    xi = torch.randn(2, 2, 3, 5, generator=g, dtype=D64)
    shared = hk.HopfieldEnergy(X, mask)
    copied = hk.HopfieldEnergy(X.expand(2, 2, 3, 7, 5).contiguous(), mask.expand(2, 2, 3, 7).contiguous())
    with torch.no_grad():
        assert torch.allclose(shared(xi, 0.7), copied(xi, 0.7), atol=1e-12)
        assert torch.allclose(shared.update(xi, 0.7), copied.update(xi, 0.7), atol=1e-12)
    assert torch.allclose(shared.jacobian(xi, 0.7), copied.jacobian(xi, 0.7), atol=1e-12)
    Xg = X.clone().requires_grad_()
    (hk.HopfieldEnergy(Xg, mask).update(xi, 0.7) ** 2).sum().backward()
    Xc = X.clone().requires_grad_()
    (hk.HopfieldEnergy(Xc.expand(2, 2, 3, 7, 5), mask.expand(2, 2, 3, 7)).update(xi, 0.7) ** 2).sum().backward()
    assert torch.allclose(Xg.grad, Xc.grad, atol=1e-12)


def test_jacobian_vector_and_a_learned_beta_with_padding(bags):
    """J v equals the Jacobian matrix times v, padding included; a β that requires grad gets a
    finite gradient through masked patterns (the mask is applied after the product with β)."""
    X, mask, xi = bags
    E = hk.HopfieldEnergy(X, mask)
    v = torch.randn(xi.shape, generator=torch.Generator().manual_seed(7), dtype=D64)
    J = E.jacobian(xi, 0.9)
    assert torch.allclose(E.jacobian_vector(xi, v, 0.9), (J @ v.unsqueeze(-1)).squeeze(-1), atol=1e-12)
    beta = torch.full((4,), 0.9, dtype=D64, requires_grad=True)
    (E(xi, beta).sum() + E.update(xi, beta).sum()).backward()
    assert torch.isfinite(beta.grad).all() and (beta.grad != 0).all()
