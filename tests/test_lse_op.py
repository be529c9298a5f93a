"""hk.lse_similarity: the fused op equals the plain composition in value and derivatives of every
order, on each of its paths (plain CPU kernels, oneDNN in one block, oneDNN in several blocks)."""
import pytest
import torch
from torch.func import grad as func_grad, hessian

import hopfieldkit as hk
from hopfieldkit._fast import cache as _cache
from hopfieldkit._fast import onednn as _onednn

D64 = torch.float64


def plain(xi, X, beta):
    """β⁻¹ log Σ exp(β Xᵀξ) in plain torch ops (β a float or [..., 1])."""
    return (torch.logsumexp(beta * (xi @ X.T), -1, keepdim=True) / beta).squeeze(-1)


@pytest.fixture(params=["plain", "onednn", "onednn-blocks"])
def path(request, monkeypatch):
    """Which kernels the op runs: float64 (plain), float32 through oneDNN in one or in 4 blocks."""
    if request.param != "plain":
        if not _onednn.available():
            pytest.skip("torch without oneDNN")
        monkeypatch.setattr(_onednn, "MIN_PATTERN_ELEMENTS", 0)
        monkeypatch.setattr(_onednn, "MIN_ROWS", 1)
        if request.param == "onednn-blocks":
            monkeypatch.setattr(_onednn, "CHUNK", 16)
    return request.param


def data(gen, path, N=70, d=6, batch=(4, 3)):
    dtype = D64 if path == "plain" else torch.float32
    X = torch.randn(N, d, generator=gen, dtype=dtype)
    xi = torch.randn(*batch, d, generator=gen, dtype=dtype)
    return X, xi, (1e-12 if dtype == D64 else 2e-5)


def test_value_and_gradients_equal_the_plain_composition(gen, path):
    X, xi, tol = data(gen, path)
    X.requires_grad_(True)
    xi.requires_grad_(True)
    for beta in (0.05, 1.0, 8.0):
        out, ref = hk.lse_similarity(xi, X, beta), plain(xi, X, beta)
        assert out.shape == (4, 3) and torch.allclose(out, ref, atol=tol, rtol=tol)
        w = torch.randn(4, 3, generator=gen, dtype=X.dtype)
        got = torch.autograd.grad(out, (xi, X), w)
        want = torch.autograd.grad(ref, (xi, X), w)
        for a, b in zip(got, want):
            assert torch.allclose(a, b, atol=10 * tol, rtol=10 * tol)
        (g_xi,) = torch.autograd.grad(hk.lse_similarity(xi, X.detach(), beta).sum(), xi)   # ξ only: block path
        assert torch.allclose(g_xi, torch.softmax(beta * xi @ X.T, -1) @ X, atol=10 * tol)


def test_second_derivatives_equal_the_closed_form_hessian(gen, path):
    X, xi, tol = data(gen, path, batch=(2,))
    x = xi.clone().requires_grad_(True)
    beta = 1.7
    (g,) = torch.autograd.grad(hk.lse_similarity(x, X, beta).sum(), x, create_graph=True)
    H = torch.stack([torch.autograd.grad(g[:, k].sum(), x, retain_graph=True)[0] for k in range(X.shape[1])], -1)
    p = torch.softmax(beta * xi @ X.T, -1)
    mean = p @ X
    want = beta * (torch.einsum("bn,nd,ne->bde", p, X, X) - mean[:, :, None] * mean[:, None, :])   # β Var_p[x]
    assert torch.allclose(H, want, atol=50 * tol)


def test_torch_func_transforms_see_the_plain_ops(gen, path):
    X, xi, tol = data(gen, path, batch=(3,))
    g = func_grad(lambda x: hk.lse_similarity(x, X, 0.9).sum())(xi)
    assert torch.allclose(g, torch.softmax(0.9 * xi @ X.T, -1) @ X, atol=10 * tol)
    H = hessian(lambda x: hk.lse_similarity(x, X, 0.9))(xi[0])
    assert torch.allclose(H, hk.HopfieldEnergy(X).jacobian(xi[0], 0.9), atol=50 * tol)


def test_per_state_and_learned_beta(gen, path):
    X, xi, tol = data(gen, path)
    beta = torch.rand(4, 3, generator=gen, dtype=X.dtype) + 0.5
    assert torch.allclose(hk.lse_similarity(xi, X, beta), plain(xi, X, beta[..., None]), atol=tol, rtol=tol)
    b = beta.clone().requires_grad_(True)                  # β requiring grad: the plain composition
    (db,) = torch.autograd.grad(hk.lse_similarity(xi, X, b).sum(), b)
    b2 = beta.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(plain(xi, X, b2[..., None]).sum(), b2)
    assert torch.allclose(db, want, atol=10 * tol)


def test_graphs_alive_at_once_keep_their_own_weights(gen, path):
    """The kept softmax weights come from a pool: a second forward before the first backward
    must not overwrite the first one's, and a second backward (retain_graph) recomputes them."""
    X, xi, tol = data(gen, path)
    a = xi.clone().requires_grad_(True)
    b = (2 * xi).clone().requires_grad_(True)
    ea, eb = hk.lse_similarity(a, X, 1.5), hk.lse_similarity(b, X, 1.5)
    (gb,) = torch.autograd.grad(eb.sum(), b)
    (ga,) = torch.autograd.grad(ea.sum(), a, retain_graph=True)
    (ga2,) = torch.autograd.grad(ea.sum(), a)
    for g, x in ((ga, xi), (gb, 2 * xi), (ga2, xi)):
        assert torch.allclose(g, torch.softmax(1.5 * x @ X.T, -1) @ X, atol=10 * tol)


def test_hopfield_energy_is_built_on_it(gen, path):
    X, xi, tol = data(gen, path)
    E = hk.HopfieldEnergy(X)
    ref = -plain(xi, X, 0.8) + 0.5 * (xi * xi).sum(-1) + torch.log(torch.tensor(70.0, dtype=X.dtype)) / 0.8 \
        + 0.5 * (X * X).sum(-1).max()
    assert torch.allclose(E(xi, 0.8), ref, atol=10 * tol, rtol=tol)
    assert torch.allclose(hk.autodiff_grad(E, xi, 0.8), E.grad(xi, 0.8), atol=10 * tol)


def test_bad_input_is_named():
    X = torch.randn(10, 4)
    with pytest.raises(ValueError, match="xi"):
        hk.lse_similarity(torch.randn(3, 5), X, 1.0)
    with pytest.raises(ValueError, match="patterns"):
        hk.lse_similarity(torch.randn(3, 4), torch.randn(10), 1.0)
    with pytest.raises(ValueError, match="patterns contains NaN"):
        hk.lse_similarity(torch.randn(3, 4), torch.full((10, 4), float("nan")), 1.0)
    with pytest.raises(ValueError, match="beta"):
        hk.lse_similarity(torch.randn(3, 4), X, -1.0)
    with pytest.raises(TypeError, match="dtype"):
        hk.lse_similarity(torch.randn(3, 4, dtype=D64), X, 1.0)


def test_all_finite_finds_nan_and_inf_anywhere():
    from hopfieldkit._checks import all_finite

    x = torch.randn(100, 7)
    assert all_finite(x) and all_finite(torch.tensor(3.0))
    for v in (float("nan"), float("inf"), -float("inf")):
        for idx in ((0, 0), (57, 3), (99, 6)):
            y = x.clone()
            y[idx] = v
            assert not all_finite(y), (v, idx)
    assert not all_finite(torch.tensor([1.0, float("nan")], dtype=torch.float16))
    assert all_finite(torch.arange(5))


def test_plain_calls_pack_each_pattern_matrix_once_and_keep_none_alive(gen, monkeypatch):
    """Two lse_similarity terms in one energy do not evict each other's packed copy, an in-place
    change repacks, and the module-wide cache lets go when the patterns are freed."""
    import gc

    if not _onednn.available():
        pytest.skip("torch without oneDNN")
    monkeypatch.setattr(_onednn, "MIN_PATTERN_ELEMENTS", 0)
    built, original = [], _onednn.PackedPatterns

    class Counted(original):
        def __init__(self, *a, **k):
            built.append(1)
            super().__init__(*a, **k)

    monkeypatch.setattr(_onednn, "PackedPatterns", Counted)
    X1, X2 = torch.randn(30, 6, generator=gen), torch.randn(20, 6, generator=gen)
    xi = torch.randn(16, 6, generator=gen)
    with torch.no_grad():
        for _ in range(3):
            e = hk.lse_similarity(xi, X1, 1.0) + hk.lse_similarity(xi, X2, 1.0)
        assert len(built) == 2
        assert torch.allclose(e, plain(xi, X1, 1.0) + plain(xi, X2, 1.0), atol=1e-5)
        X1.mul_(2.0)                                           # in place: packed anew, never stale
        assert torch.allclose(hk.lse_similarity(xi, X1, 1.0), plain(xi, X1, 1.0), atol=1e-5)
        assert len(built) == 3
    n = len(_cache._shared)
    del X1, X2
    gc.collect()
    assert len(_cache._shared) == n - 2
