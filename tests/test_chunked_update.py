"""The recorded ``update`` descent in chunks (hopfieldkit._fast.chunked_update) equals the plain loop."""
import itertools

import pytest
import torch

import hopfieldkit as hk
from hopfieldkit._fast import chunked_update, onednn, policy, stream

D64 = torch.float64


def _runs(monkeypatch, energy, xi, beta, **kw):
    """(chunked result, plain result, whether the chunked route ran)."""
    calls = []
    real = chunked_update.run
    monkeypatch.setattr(chunked_update, "run", lambda *a, **k: calls.append(1) or real(*a, **k))
    fast = hk.descend(energy, xi, beta, method="update", **kw)
    with monkeypatch.context() as m:
        m.setattr(policy, "chunked_update", lambda *a, **k: False)
        plain = hk.descend(energy, xi, beta, method="update", **kw)
    return fast, plain, bool(calls)


def _assert_same(a, b, atol):
    assert a.steps == b.steps and a.message == b.message and a.method == b.method
    for name in ("converged", "diverged", "state_steps"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    for name in ("xi", "energies", "trajectory", "residual"):
        x, y = getattr(a, name), getattr(b, name)
        if y is None:
            assert x is None, name
            continue
        assert x.shape == y.shape, name
        assert torch.allclose(x, y, rtol=atol, atol=atol, equal_nan=True), (name, (x - y).abs().max())


CASES = list(itertools.product((0.0, None, 1e-6), (None, 3), (1, 5, 37), (False, True), (True, False)))


@pytest.mark.parametrize("N", [20, 300])          # short rows (exp by hand) and the softmax kernel
def test_chunked_update_equals_the_plain_loop(monkeypatch, N):
    g = torch.Generator().manual_seed(N)
    X = torch.randn(N, 16, generator=g, dtype=D64)
    xi = torch.randn(2, 3, 16, generator=g, dtype=D64)     # a batch of two axes
    for tol, every, steps, traj, record in CASES:
        fast, plain, ran = _runs(monkeypatch, hk.HopfieldEnergy(X), xi, 0.9, tol=tol, check_every=every,
                                 steps=steps, trajectory=traj, record=record)
        assert ran == (record or traj or tol != 0.0)          # the bare map (nothing judged) stays as it is
        _assert_same(fast, plain, 1e-10)
        assert fast.monotone() if record else fast.energies is None
    # the early stop at the exact step: states converge at different steps, the last one decides
    fast, plain, _ = _runs(monkeypatch, hk.HopfieldEnergy(X), xi, 0.9, steps=200)
    assert fast.success and len(set(fast.state_steps.flatten().tolist())) > 1
    assert fast.energies.shape[0] == fast.steps + 1 == plain.steps + 1


def test_chunked_update_on_per_sample_masked_memories_and_tensor_beta(monkeypatch):
    g = torch.Generator().manual_seed(1)
    X = torch.randn(6, 10, 4, generator=g, dtype=D64)
    mask = torch.rand(6, 10, generator=g) > 0.3
    mask[:, 0] = True
    beta = torch.linspace(0.5, 4.0, 6, dtype=D64)
    xi = torch.randn(6, 4, generator=g, dtype=D64)
    for tol, record in itertools.product((0.0, None), (True, False)):
        fast, plain, ran = _runs(monkeypatch, hk.HopfieldEnergy(X, mask), xi, beta, steps=30, tol=tol,
                                 trajectory=True, record=record)
        assert ran
        _assert_same(fast, plain, 1e-10)


def test_chunked_update_freezes_diverging_states_where_the_plain_loop_does(monkeypatch):
    """Patterns so long that β·x·x overflows at the first update: the energy there is not finite,
    so each state is frozen at its start and flagged, never counted as converged."""
    g = torch.Generator().manual_seed(2)
    X = torch.randn(5, 4, generator=g) * 3e18
    xi = torch.randn(7, 4, generator=g) * 1e-19
    fast, plain, ran = _runs(monkeypatch, hk.HopfieldEnergy(X), xi, 100.0, steps=10)
    assert ran
    _assert_same(fast, plain, 1e-6)
    assert fast.diverged.all() and not fast.converged.any()
    assert torch.equal(fast.xi, xi) and (fast.state_steps == 0).all()
    # unrecorded: the residual alone judges, as in the plain loop
    fast, plain, ran = _runs(monkeypatch, hk.HopfieldEnergy(X), xi, 100.0, steps=10, record=False)
    assert ran
    _assert_same(fast, plain, 1e-6)
    assert not fast.converged.any()


def test_chunked_update_float32_through_onednn_equals_the_plain_loop(monkeypatch):
    g = torch.Generator().manual_seed(3)
    X = torch.randn(1024, 64, generator=g)
    xi = torch.randn(256, 64, generator=g)
    fast, plain, ran = _runs(monkeypatch, hk.HopfieldEnergy(X), xi, 0.125, steps=6, tol=0.0)
    assert ran
    step = chunked_update.stepper(hk.HopfieldEnergy(X), xi, 0.125)
    assert (step.packed is not None) == onednn.applies(X, xi)
    _assert_same(fast, plain, 1e-4)


def test_own_updates_and_graphs_keep_the_plain_loop(monkeypatch):
    g = torch.Generator().manual_seed(4)
    X = torch.randn(12, 5, generator=g, dtype=D64)

    class Damped(hk.HopfieldEnergy):
        def update(self, xi, beta):
            return 0.5 * (xi + super().update(xi, beta))

    xi = torch.randn(3, 5, generator=g, dtype=D64)
    _, _, ran = _runs(monkeypatch, Damped(X), xi, 1.0, steps=5)
    assert not ran
    leaf = xi.clone().requires_grad_(True)
    fast, _, ran = _runs(monkeypatch, hk.HopfieldEnergy(X), leaf, 1.0, steps=5, tol=0.0)
    assert not ran
    (grad,) = torch.autograd.grad(fast.energies[-1].sum(), leaf)    # gradients flow through the steps
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    with torch.no_grad():
        _, _, ran = _runs(monkeypatch, hk.HopfieldEnergy(X.clone().requires_grad_(True)), xi, 1.0, steps=5)
    assert ran


@pytest.mark.parametrize("route", ["plain", "few", "stream", "onednn"])
def test_update_and_energy_equals_the_update_and_the_energy(monkeypatch, route):
    g = torch.Generator().manual_seed(5)
    N, rows = {"plain": (40, 8), "few": (9, 1100), "stream": (300, 64), "onednn": (4096, 64)}[route]
    dtype = torch.float32 if route == "onednn" else D64
    X = torch.randn(N, 8, generator=g, dtype=dtype)
    xi = torch.randn(rows, 8, generator=g, dtype=dtype)
    if route == "stream":
        monkeypatch.setattr(stream, "STREAM_BYTES", 4096)
    E = hk.HopfieldEnergy(X)
    if route == "onednn" and not onednn.available():
        pytest.skip("oneDNN kernels unavailable here")
    assert policy.hopfield_route(X, xi, 0.7) == route
    new, e = E.update_and_energy(xi, 0.7)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert torch.allclose(new, E.update(xi, 0.7), atol=tol)
    assert torch.allclose(e, E(xi, 0.7), atol=tol, rtol=tol)


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 2e-5), (D64, 1e-10)])
def test_short_rows_skip_the_shift_only_where_no_score_leaves_exps_range(monkeypatch, dtype, atol):
    """Short rows without the max shift (Σ e^s, its log per chunk) where |β| M max(M, ‖ξ₀‖) is
    small, the shifted step elsewhere (large β, a far start, huge or tiny patterns): both equal the
    plain loop."""
    g = torch.Generator().manual_seed(5)
    X = torch.randn(20, 16, generator=g, dtype=dtype) / 4            # M ≈ 1.3
    xi = torch.randn(50, 16, generator=g, dtype=dtype) / 4
    bound = chunked_update.UNSHIFTED_BOUND[dtype]
    for beta, start, scale, unshifted in ((1.0, 1.0, 1.0, True), (8.0, 1.0, 1.0, True),
                                          (bound, 1.0, 1.0, False), (1.0, 1e3 * bound, 1.0, False),
                                          (1.0, 1.0, 1e-30 if dtype == torch.float32 else 1e-280, False),
                                          (1e-36, 1.0, 1e18, dtype == D64)):
        energy, x0 = hk.HopfieldEnergy(X * scale), xi * start * scale
        assert chunked_update.stepper(energy, x0, beta).unshifted == unshifted, (beta, start, scale)
        fast, plain, ran = _runs(monkeypatch, energy, x0, beta, steps=40, tol=0.0)
        assert ran and fast.energies.isfinite().all()
        _assert_same(fast, plain, atol * max(1.0, float(plain.energies.abs().max())))
        fast, plain, ran = _runs(monkeypatch, energy, x0, beta, steps=40, record=False)   # judged by the residual
        assert ran
        _assert_same(fast, plain, atol * max(1.0, float(plain.xi.abs().max())))
    with pytest.raises(AssertionError):   # the test can tell: the unshifted sum is not ℓ
        monkeypatch.setattr(chunked_update.SharedMemoryStep, "energies",
                            lambda self, s, aux, n: n.square().mul(0.5).add(torch.stack(aux).reshape(len(aux), -1),
                                                                             alpha=-1.0 / self.beta).add(self.const))
        fast, plain, _ = _runs(monkeypatch, hk.HopfieldEnergy(X), xi, 1.0, steps=40, tol=0.0)
        _assert_same(fast, plain, atol)
