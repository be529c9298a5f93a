"""The theorems of [R] held against numerics (T6–T10), and the capacity formulas (T10, T11)."""
import math

import pytest
import sympy as sp
import torch

import hopfieldkit as hk
from hopfieldkit import theory
from conftest import simplex_patterns, sphere_patterns


def _limit(E, xi, beta, steps=500):
    return hk.descend(E, xi, beta, method="update", steps=steps, record=False).xi


def test_T6_lemma_A3_unique_global_fixed_point(gen):
    for _ in range(10):
        X = torch.randn(8, 6, generator=gen, dtype=torch.float64)
        m_max = float((X - X.mean(0)).norm(dim=-1).max())
        beta = 0.9 / m_max**2
        assert theory.global_contraction(X, beta)
        E = hk.HopfieldEnergy(X)
        ends = _limit(E, torch.randn(16, 6, generator=gen, dtype=torch.float64) * 10, beta)
        assert torch.cdist(ends, ends).max() < 1e-8


def test_T7_well_separated_bounds_hold(gen):
    checked = 0
    for trial in range(40):
        d = int(torch.randint(10, 40, (1,), generator=gen))
        N = int(torch.randint(2, 12, (1,), generator=gen))
        beta = float(10 ** (torch.rand(1, generator=gen) * 1.5 - 0.5))
        X = sphere_patterns(N, d, float(torch.rand(1, generator=gen) * 4 + 2), gen)
        ok = theory.is_well_separated(X, beta)
        E = hk.HopfieldEnergy(X)
        M = float(theory.max_norm(X))
        r = theory.sphere_radius(N, beta, M)
        for i in torch.nonzero(ok).flatten().tolist():
            u = torch.randn(d, generator=gen, dtype=torch.float64)
            xi = X[i] + u / u.norm() * r * float(torch.rand(1, generator=gen))
            x_star = _limit(E, xi, beta)
            assert (x_star - X[i]).norm() <= r * (1 + 1e-9), "Lemma A7: the limit lies in S_i"
            f = E.update(xi, beta)
            eq7 = theory.jacobian_mean_bound(X, i, xi, x_star, beta)
            assert (f - x_star).norm() <= eq7 * (xi - x_star).norm() + 1e-12, "Thm 4, Eqs. 6-7"
            eq8 = theory.retrieval_error_bound(X, i, xi, x_star, beta)
            assert (f - X[i]).norm() <= eq8 + 1e-12, "Thm 5, Eq. 8"
            lim = 1 / (2 * beta * M)
            if (X[i] - x_star).norm() <= lim and (X[i] - xi).norm() <= lim:
                assert (X[i] - x_star).norm() <= theory.fixed_point_error_bound(X, i, beta) + 1e-12, "Eq. 9"
            checked += 1
    assert checked >= 20, "too few well-separated patterns: the test setup is too weak"


def test_T8_lemma_A12_limit_near_cluster_mean(gen):
    d = 50
    center = torch.randn(d, generator=gen, dtype=torch.float64)
    center = 4 * center / center.norm()
    cluster = center + 0.005 * torch.randn(3, d, generator=gen, dtype=torch.float64)
    others = sphere_patterns(5, d, 4.0, gen)
    X = torch.cat([cluster, others])
    E = hk.HopfieldEnergy(X)
    for beta in (100.0, 300.0):
        cond = theory.metastable_conditions(X, [0, 1, 2], beta)
        assert cond.holds, "test setup must satisfy Lemma A12's conditions"
        start = cond.center + torch.randn(d, generator=gen, dtype=torch.float64) * cond.radius / (4 * math.sqrt(d))
        end = _limit(E, start, beta)
        assert (end - cond.center).norm() <= cond.radius


def test_T9_simplex_critical_beta():
    N, r = 6, 2.0
    X = simplex_patterns(N, r)
    beta_c = theory.simplex_beta_c(N, r)
    assert beta_c == pytest.approx(1.25)
    E = hk.HopfieldEnergy(X)
    g = torch.Generator().manual_seed(0)
    start = torch.randn(8, N, generator=g, dtype=torch.float64)
    start = 0.01 * start / start.norm(dim=-1, keepdim=True)
    for f in (0.5, 0.95):
        end = _limit(E, start, f * beta_c, steps=3000)
        assert end.norm(dim=-1).max() < 1e-6, f
    for f in (1.05, 2.0):
        end = _limit(E, start, f * beta_c, steps=3000)
        assert end.norm(dim=-1).min() > r / 2, f


def test_T10_storage_capacity_values():
    assert theory.storage_capacity(1, 3, 20, 0.001).c == pytest.approx(3.1546, abs=1e-4)
    assert theory.storage_capacity(1, 1, 75, 0.001).c == pytest.approx(1.3718, abs=2e-4)
    assert theory.storage_capacity_corollary(1, 3, 20, 0.001) == pytest.approx(3.1444, abs=1e-4)
    assert theory.storage_capacity_corollary(1, 1, 75, 0.001) == pytest.approx(1.2585, abs=1e-4)
    cap = theory.storage_capacity(1, 3, 20, 0.001)
    assert cap.condition and cap.n_min == pytest.approx(math.sqrt(0.001) * cap.c ** (19 / 4))
    x = sp.Rational(3, 2)
    assert sp.N(sp.LambertW(x) * sp.exp(sp.LambertW(x)) - x, 30) == pytest.approx(0, abs=1e-25)


def test_T11_krotov_capacity_values():
    assert [round(theory.krotov_capacity(100, n), 1) for n in (2, 3, 4)] == [10.9, 361.9, 7238.2]
    assert theory.demircigil_alpha(0.0) == pytest.approx(math.log(2) / 2)
    assert theory.demircigil_alpha(0.2) < theory.demircigil_alpha(0.1)


def test_separation_definition(gen):
    X = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    delta = theory.separation(X)
    for i in range(5):
        others = max(float(X[i] @ X[j]) for j in range(5) if j != i)
        assert float(delta[i]) == pytest.approx(float(X[i] @ X[i]) - others)
    # equal norms: Δ_i = ½ min_j ‖x_i − x_j‖²
    Y = sphere_patterns(6, 4, 2.0, gen)
    half = 0.5 * torch.cdist(Y, Y).fill_diagonal_(float("inf")).min(-1).values ** 2
    assert torch.allclose(theory.separation(Y), half, atol=1e-12)


def test_mass_count():
    w = torch.tensor([[0.95, 0.05, 0.0], [0.5, 0.45, 0.05], [1 / 3, 1 / 3, 1 / 3]], dtype=torch.float64)
    assert theory.mass_count(w, 0.9).tolist() == [1, 2, 3]
