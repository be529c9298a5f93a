"""Learning rules of the classical network: each rule's defining property, and the census of
fixed points (stored, reversed, odd mixtures with the overlaps of theory, spin glass)."""
import warnings

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
