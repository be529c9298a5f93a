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
    direct = torch.linalg.eigvals(hk.HopfieldEnergy(X).jacobian(fp.points, 1.5)).abs().sort(-1, descending=True).values
    assert torch.allclose(fp.jacobian_eigvals, direct, atol=1e-10)     # (reported from 1 − eig ∇²E)
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


@pytest.fixture(scope="module")
def digits_norm4(digits):
    X, _ = digits
    X = X[:100]
    return 4 * X / X.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize("beta, expected", [(5.0, 94), (20.0, 100)])
def test_float32_finds_the_fixed_points_float64_finds(digits_norm4, beta, expected):
    """The merge tolerance follows the residuals and the Hessian: in float32 it was 1.38 for digits
    of norm 4 (√eps·1000·‖ξ‖), more than the distance between the closest digits' fixed points."""
    X = digits_norm4
    f64 = hk.fixed_points(hk.HopfieldEnergy(X), beta, X)
    f32 = hk.fixed_points(hk.HopfieldEnergy(X.float()), beta, X.float())
    assert len(f64) == len(f32) == expected
    D = torch.cdist(f32.points.double(), f64.points)
    assert D.min(1).values.max() < 1e-2 and D.min(0).values.max() < 1e-2   # one to one
    assert (f32.info["merge_tol"] < 1e-2).all()


def test_two_distinct_fixed_points_never_merge():
    """Two stored patterns 0.05 apart, each its own attractor at large β, in float32 (the old
    tolerance, 1.38, merged them)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(16, generator=g)
    a = 4 * a / a.norm()
    b = a + 0.05 * torch.nn.functional.normalize(torch.randn(16, generator=g), dim=0)
    b = 4 * b / b.norm()                                   # equal norms: each is its own attractor
    X = torch.stack([a, b, -a])
    starts = torch.cat([X[:2] + 1e-3 * torch.randn(2, 16, generator=g) for _ in range(5)])
    fp = hk.fixed_points(hk.HopfieldEnergy(X), 1e4, starts)
    assert len(fp) == 2 and fp.stable.all() and fp.kinds == ["single", "single"]
    assert torch.cdist(fp.points, X[:2]).min(1).values.max() < 1e-3


def test_binary_fixed_points_are_tested_by_single_flips(gen):
    """A binary dense AM: stored patterns are fixed points of the sweep and no single flip lowers
    their energy (before, the continuous Hessian on ±1 states called every pattern unstable)."""
    P = torch.randint(0, 2, (5, 30), generator=gen).double() * 2 - 1
    E = hk.DenseAMEnergy(P, F="poly", n=3)
    fp = hk.fixed_points(E, 1.0, P.clone())
    assert len(fp) == 5 and fp.stable.all() and fp.binary
    assert fp.hessian_eigvals is None and fp.flip_gaps.shape == (5, 30) and (fp.flip_gaps > 0).all()
    i0 = int(fp.labels[0])
    by_hand = torch.stack([E(P[0] * torch.where(torch.arange(30) == i, -1.0, 1.0).double(), 1.0)
                           for i in range(30)]) - E(P[0], 1.0)
    assert torch.allclose(fp.flip_gaps[i0], by_hand.sort().values)
    assert sorted(fp.labels.tolist()) == list(range(5))        # each start is its own pattern
    assert "min flip dE" in fp.summary()
    near = P.clone()
    near[:, :2] *= -1                                          # two flips away: the sweep repairs them
    repaired = hk.fixed_points(E, 1.0, near)
    assert len(repaired) == 5 and torch.cdist(repaired.points, fp.points).min(1).values.max() == 0
    with pytest.raises(ValueError, match="only -1 and \\+1"):
        hk.fixed_points(E, 1.0, P * 0.5)


@pytest.mark.parametrize("inits, match", [
    (torch.zeros(0, 6, dtype=torch.float64), "at least one start"),
    (torch.zeros(3, 5, dtype=torch.float64), r"inits must have shape \[n, 6\]"),
    (torch.zeros(3, 6, 2, dtype=torch.float64), r"inits must have shape \[n, d\]"),
])
def test_bad_starts_are_named(inits, match):
    X = torch.randn(4, 6, dtype=torch.float64)
    with pytest.raises(ValueError, match=match):
        hk.fixed_points(hk.HopfieldEnergy(X), 1.0, inits)


def test_bad_fixed_point_options_are_named():
    X = torch.randn(4, 6, dtype=torch.float64)
    E, s = hk.HopfieldEnergy(X), torch.randn(3, 6, dtype=torch.float64)
    with pytest.raises(ValueError, match="mass must be a number in"):
        hk.fixed_points(E, 1.0, s, mass=1.5)
    with pytest.raises(ValueError, match="beta must be one positive number"):
        hk.fixed_points(E, torch.ones(3, dtype=torch.float64), s)
    with pytest.raises(ValueError, match="merge_tol must be finite and > 0"):
        hk.fixed_points(E, 1.0, s, merge_tol=-1.0)


def test_the_pattern_gap_follows_the_patterns(gen):
    """The merge clamp (a quarter of the smallest pattern distance) is kept between calls on one
    energy, and recomputed when its patterns change in place."""
    from hopfieldkit.attractors import _pattern_gap

    X = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    E = hk.HopfieldEnergy(X)
    first = _pattern_gap(E)
    assert first == pytest.approx(float(torch.pdist(X).min()), rel=1e-12)
    with torch.no_grad():
        E.patterns[1] = E.patterns[0] + 1e-3
    assert _pattern_gap(E) == pytest.approx(1e-3 * 2.0, rel=1e-6)
    E.patterns.data[1] = E.patterns[0] + 1e-2          # a write no version counter sees
    assert _pattern_gap(E) == pytest.approx(1e-2 * 2.0, rel=1e-6)


def _greedy_reference(points, ok, radius):
    """The merge rule point by point: i joins its nearest earlier representative j when
    ‖p_i − p_j‖ ≤ r_i + r_j (the first of equally near ones), else becomes one."""
    labels = torch.full((points.shape[0],), -1, dtype=torch.long)
    reps = []
    for i in range(points.shape[0]):
        if not bool(ok[i]):
            continue
        if reps:
            dist = (points[reps] - points[i]).norm(dim=-1)
            j = int(dist.argmin())
            if float(dist[j]) <= float(radius[i] + radius[reps[j]]):
                labels[i] = j
                continue
        reps.append(i)
        labels[i] = len(reps) - 1
    return torch.tensor(reps, dtype=torch.long), labels


def test_the_merge_of_end_points_is_the_greedy_rule():
    from hopfieldkit.attractors import _greedy

    g = torch.Generator().manual_seed(0)
    for trial in range(120):
        n, d = int(torch.randint(1, 60, (1,), generator=g)), int(torch.randint(1, 5, (1,), generator=g))
        P = torch.randn(n, d, generator=g, dtype=torch.float64)
        if trial % 3 == 0:
            P = torch.round(2 * P) / 2                      # repeated points and equal distances
        ok = torch.rand(n, generator=g) > 0.2
        radius = torch.rand(n, generator=g, dtype=torch.float64) * float(torch.rand(1, generator=g))
        reps, labels = _greedy(P, ok, radius)
        want_reps, want_labels = _greedy_reference(P, ok, radius)
        assert torch.equal(reps, want_reps) and torch.equal(labels, want_labels)
