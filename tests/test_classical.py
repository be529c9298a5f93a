"""Learning rules of the classical network: each rule's defining property, and the census of
fixed points (stored, reversed, odd mixtures with the overlaps of theory, spin glass)."""
import math

import pytest
import torch

import hopfieldkit as hk
from hopfieldkit import classical as C

D64 = torch.float64


def _stable(W, X):
    """Every bit of every pattern agrees with its local field (each pattern a fixed point)."""
    return bool((X * (X @ W.T) > 0).all())


def test_hebb_is_the_outer_product_rule_and_stores_a_few_patterns():
    X = C.random_patterns(3, 200, seed=0)
    W = C.hebbian(X)
    ref = sum(torch.outer(x, x) for x in X) / 200
    ref.fill_diagonal_(0)
    assert torch.allclose(W, ref) and _stable(W, X)


def test_storkey_follows_its_formula_and_beats_hebb_at_the_same_load():
    X = C.random_patterns(3, 6, seed=1)
    W = torch.zeros(6, 6, dtype=D64)
    for xi in X:                                           # the rule written with its explicit sums
        new = W.clone()
        for i in range(6):
            for j in range(6):
                h_ij = sum(W[i, k] * xi[k] for k in range(6) if k not in (i, j))
                h_ji = sum(W[j, k] * xi[k] for k in range(6) if k not in (i, j))
                new[i, j] = W[i, j] + (xi[i] * xi[j] - xi[i] * h_ji - h_ij * xi[j]) / 6
        W = new.fill_diagonal_(0)
    assert torch.allclose(C.storkey(X), W, atol=1e-12)
    X = C.random_patterns(20, 100, seed=2)                 # α = 0.2, above Hebb's 0.138
    unstable = lambda W: float((X * (X @ W.T) <= 0).to(D64).mean())
    assert unstable(C.storkey(X)) < 0.5 * unstable(C.hebbian(X))


def test_the_pseudo_inverse_rule_fixes_every_pattern_below_full_load():
    X = C.random_patterns(60, 100, seed=3)
    W = C.pseudo_inverse(X)
    assert _stable(W, X) and torch.allclose(W, W.T) and (W.diagonal() == 0).all()
    P = C.pseudo_inverse(X, zero_diagonal=False)
    assert torch.allclose(P @ X.T, X.T, atol=1e-10)        # a projection onto the patterns' span


def test_the_perceptron_rule_stabilises_every_pattern_with_its_margin():
    X = C.random_patterns(120, 100, seed=4)                 # α = 1.2 < Gardner's 2 (independent rows)
    W = C.perceptron(X, symmetric=False, max_epochs=3000)
    assert _stable(W, X) and (W.diagonal() == 0).all()
    Xs = C.random_patterns(30, 100, seed=5)
    Ws = C.perceptron(Xs, kappa=0.5)
    assert torch.allclose(Ws, Ws.T) and _stable(Ws, Xs)
    margin = Xs * (Xs @ Ws.T) / torch.linalg.vector_norm(Ws, dim=1)
    assert margin.min() > 0.5
    with pytest.warns(C.NotStoredWarning, match="not stable"):
        C.perceptron(C.random_patterns(300, 50, seed=6), max_epochs=5)


def test_census_names_stored_reversed_mixture_and_spin_glass_states():
    X = C.random_patterns(3, 501, seed=7)
    mix = torch.sign(X[0] + X[1] - X[2])
    rand = C.random_patterns(1, 501, seed=8)[0]
    c = C.census(torch.stack([X[1], -X[2], mix, rand]), X)
    assert c.kinds == ["stored", "reversed", "mixture", "spin glass"]
    assert c.members[0] == ((1, 1),) and c.members[1] == ((2, -1),)
    assert sorted(c.members[2]) == [(0, 1), (1, 1), (2, -1)]
    run = hk.descend(hk.PairwiseEnergy(C.hebbian(X)), mix.unsqueeze(0), 1.0, method="async")
    assert run.success and torch.equal(run.xi[0], mix)   # the 3-mixture is a fixed point at small load
    assert c.counts()["mixture"] == 1 and abs(sum(c.fractions().values()) - 1) < 1e-12


def test_mixture_overlaps_are_those_of_theory():
    X = C.random_patterns(7, 40001, seed=9)
    for k in (3, 5, 7):
        m = C.overlaps(torch.sign(X[:k].sum(0)), X[:k])
        assert torch.allclose(m, torch.full((k,), C.mixture_overlap(k), dtype=D64), atol=0.015), k
    assert C.mixture_overlap(3) == 0.5 and C.mixture_overlap(5) == 3 / 8 and C.mixture_overlap(7) == 5 / 16


def test_rules_reject_non_binary_patterns():
    with pytest.raises(ValueError, match="-1 and \\+1"):
        C.hebbian(torch.rand(3, 10, dtype=D64))
    with pytest.raises(ValueError, match="kappa"):
        C.perceptron(C.random_patterns(2, 10), kappa=-1.0)


def test_gardner_alpha_is_its_integral():
    from scipy.integrate import quad
    from scipy.stats import norm

    from hopfieldkit import theory as T

    for kappa in (0.0, 0.5, 1.0, 2.0):
        integral = quad(lambda z: (z + kappa) ** 2 * norm.pdf(z), -kappa, float("inf"))[0]
        assert T.gardner_alpha(kappa) == pytest.approx(1 / integral, rel=1e-9)
    assert T.gardner_alpha(0.0) == 2.0


def test_hebb_bit_error_matches_simulation():
    from hopfieldkit import theory as T

    for alpha in (0.1, 0.2):
        N = 2000
        X = C.random_patterns(int(alpha * N), N, seed=10)
        unstable = float((X * (X @ C.hebbian(X).T) <= 0).to(D64).mean())
        assert unstable == pytest.approx(T.hebb_bit_error(alpha), rel=0.15), alpha
    assert T.hebb_bit_error(0.138) == pytest.approx(0.0036, abs=5e-5)
    assert T.hebb_capacity_all(100) < T.hebb_capacity_single(100) < T.ags_capacity(100) < T.storkey_capacity(100)


def test_glauber_overlap_at_small_load_follows_curie_weiss():
    """One stored pattern (α → 0): the overlap at temperature T solves m = tanh(m/T)."""
    from hopfieldkit import theory as T

    X = C.random_patterns(1, 200, seed=11)
    E = hk.PairwiseEnergy(C.hebbian(X))
    for temp in (0.5, 0.8, 1.5):
        run = hk.descend(E, X.expand(100, 200).clone(), 1.0, method="glauber", steps=40, trajectory=True,
                         options={"temperature": temp, "generator": torch.Generator().manual_seed(12)})
        m = float(C.overlaps(run.trajectory[20:], X)[..., 0].abs().mean())
        if temp < 1:
            assert m == pytest.approx(T.curie_weiss_overlap(temp), abs=0.03), temp
        else:   # paramagnet: m is Gaussian with variance T / (N (T − 1)), so E|m| = √(2/π) of its sd
            assert m == pytest.approx((2 / torch.pi * temp / (200 * (temp - 1))) ** 0.5, rel=0.15), temp
    m = T.curie_weiss_overlap(0.7)
    assert abs(m - math.tanh(m / 0.7)) < 1e-12 and T.curie_weiss_overlap(1.2) == 0.0


@pytest.mark.parametrize("rule", [C.hebbian, C.storkey, C.pseudo_inverse])
def test_rules_take_a_stack_of_pattern_sets(rule):
    X = torch.stack([C.random_patterns(6, 30, seed=k) for k in range(3)])
    W = rule(X)
    assert W.shape == (3, 30, 30)
    for k in range(3):
        assert torch.allclose(W[k], rule(X[k]), atol=1e-12)
