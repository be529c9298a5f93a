"""Fixed points, their kind and stability, basins and the β sweep."""
import pytest
import torch

import hopfieldkit as hk
from conftest import simplex_patterns


@pytest.fixture(scope="module")
def digit_patterns(digits):
    X, y = digits
    X = X - X.mean(0)
    X = 4 * X / X.norm(dim=-1, keepdim=True)  # centred, equal norms
    P, labels = X[:100], y[:100]
    g = torch.Generator().manual_seed(0)
    q = P.clone()
    q[torch.rand(P.shape, generator=g) < 0.25] = 0.0  # a quarter of the pixels blanked
    return P, labels, q


def test_large_beta_retrieves_corrupted_digits_exactly(digit_patterns):
    P, _, q = digit_patterns
    run = hk.descend(hk.HopfieldEnergy(P), q, 50.0)
    assert run.success
    assert (run.xi - P).norm(dim=-1).max() < 1e-6


def test_metastable_states_on_digits_fall_as_beta_grows(digit_patterns):
    P, labels, q = digit_patterns
    E = hk.HopfieldEnergy(P)
    small = hk.fixed_points(E, 0.5, q, steps=3000)
    meta = [i for i, k in enumerate(small.kinds) if k == "metastable"]
    assert len(meta) >= 2
    for i in meta:  # a mixture: several patterns share the softmax mass
        assert 1 < int(small.support[i]) <= 50
        assert small.weights[i].max() < 0.9
    counts = [hk.fixed_points(E, b, q, steps=3000).count("metastable") for b in (1.0, 2.0, 5.0, 50.0)]
    assert counts[0] > 0 and counts[-1] == 0
    assert all(a >= b for a, b in zip(counts, counts[1:])), counts
    tiny = hk.fixed_points(E, 0.05, q)
    assert len(tiny) == 1 and tiny.kinds == ["global"]


def test_beta_sweep_phases_on_clustered_patterns():
    g = torch.Generator().manual_seed(0)
    d = 16
    C = torch.randn(3, d, generator=g, dtype=torch.float64)
    C = 3 * C / C.norm(dim=-1, keepdim=True)
    X = (C[:, None, :] + 0.35 * torch.randn(3, 4, d, generator=g, dtype=torch.float64)).reshape(12, d)
    sw = hk.beta_sweep(X, [0.02, 1.0, 100.0], 200)
    assert sw.counts["global"].tolist() == [1, 0, 0]
    assert sw.counts["metastable"][1] >= 2 and sw.counts["metastable"][2] == 0
    assert sw.counts["single"][2] >= 8
    assert "metastable" in sw.table()
    ax = sw.plot()
    assert ax.get_xlabel() == "β"


def test_stability_hessian_matches_update_jacobian(gen):
    """Hopfield: ∇²E = I − J, so Hessian PD ⇔ spectral radius of J < 1."""
    X = torch.randn(8, 5, generator=gen, dtype=torch.float64)
    fp = hk.fixed_points(hk.HopfieldEnergy(X), 1.5, torch.randn(64, 5, generator=gen, dtype=torch.float64) * 2)
    assert len(fp) >= 2 and fp.grad_norms.max() < 1e-8
    rho = fp.jacobian_eigvals[:, 0]
    assert torch.equal(fp.stable, rho < 1 - 1e-6)
    assert torch.allclose(fp.hessian_eigvals.min(-1).values, 1 - rho, atol=1e-8)
    assert fp.counts.sum() == 64 and float(fp.fractions.sum()) == pytest.approx(1.0)
    assert (fp.energies[1:] >= fp.energies[:-1]).all()
    assert "kind" in fp.summary()


def test_unstable_fixed_point_is_detected():
    """Above β_c the centre of a regular simplex is still a fixed point, but a saddle/maximum."""
    X = simplex_patterns(6, 2.0)
    beta = 2.0 * hk.theory.simplex_beta_c(6, 2.0)
    fp = hk.fixed_points(hk.HopfieldEnergy(X), beta, torch.zeros(1, 6, dtype=torch.float64))
    assert len(fp) == 1 and fp.points.norm() < 1e-12
    assert not bool(fp.stable[0]) and fp.hessian_eigvals[0, 0] < 0
    assert fp.kinds == ["global"]
    below = hk.fixed_points(hk.HopfieldEnergy(X), 0.5 * beta / 2.0, torch.zeros(1, 6, dtype=torch.float64))
    assert bool(below.stable[0])


def test_generic_energy_fixed_points(gen):
    """Energies without a closed form: autodiff Hessian, kind '-'."""
    E = lambda x, b: ((x * x - 1.0) ** 2).sum(-1)  # minima at (±1, ±1), saddles and a max elsewhere
    fp = hk.fixed_points(E, 1.0, torch.randn(200, 2, generator=gen, dtype=torch.float64))
    assert fp.count(stable_only=True) == 4
    assert set(fp.kinds) == {"-"}
    assert torch.allclose(fp.points[fp.stable].abs(), torch.ones(4, 2, dtype=torch.float64), atol=1e-6)


def test_basins_on_a_grid(gen):
    X = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-2.0, -2.0]], dtype=torch.float64)
    states, U, V = hk.grid_starts(X[0], X[1], X[2], n=21)
    assert states.shape == (441, 2) and U.shape == (21, 21)
    res = hk.basins(hk.HopfieldEnergy(X), 4.0, states)
    assert res.count(stable_only=True) == 3 and res.labels.shape == (441,) and (res.labels >= 0).all()
    assert float(res.fractions.sum()) == pytest.approx(1.0)
    # the unstable fixed points (saddles hit from symmetric grid points) have tiny basins
    assert float(res.fractions[~res.stable].sum()) < 0.05
    # each pattern lies in a basin of its own
    at = lambda s: int(res.labels[int((states - s).norm(dim=-1).argmin())])
    assert len({at(X[0]), at(X[1]), at(X[2])}) == 3
    ax = res.plot_basins(U, V)
    assert "3 attractors" in ax.get_title()
    with pytest.raises(ValueError, match="labels has 441 entries"):
        res.plot_basins(U[:3], V[:3])


def test_classify():
    w = torch.tensor([[0.97, 0.01, 0.01, 0.01], [0.5, 0.45, 0.03, 0.02], [0.25] * 4], dtype=torch.float64)
    kinds, k = hk.classify(w)
    assert kinds == ["single", "metastable", "global"] and k.tolist() == [1, 2, 4]
