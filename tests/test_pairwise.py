"""The classical pairwise network and the binary dynamics of descend: E and its flip gaps by
enumeration, asynchronous sweeps never raise E and end at single-flip minima, synchronous runs
report 2-cycles, Glauber sweeps sample exp(-E/T) (checked against exact enumeration)."""
import itertools

import pytest
import torch

import hopfieldkit as hk

D64 = torch.float64


def _hebb(P, N, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, 2, (P, N), generator=g).to(D64) * 2 - 1
    W = X.T @ X / N
    W.fill_diagonal_(0)
    return X, W


def _all_states(N):
    return torch.tensor(list(itertools.product([-1.0, 1.0], repeat=N)), dtype=D64)


def test_energy_and_flip_gaps_match_their_definitions():
    g = torch.Generator().manual_seed(1)
    A = torch.randn(6, 6, generator=g, dtype=D64)
    W = A + A.T
    W.fill_diagonal_(0)
    theta = torch.randn(6, generator=g, dtype=D64)
    E = hk.PairwiseEnergy(W, theta)
    s = _all_states(6)
    assert torch.allclose(E(s), -0.5 * torch.einsum("bi,ij,bj->b", s, W, s) - s @ theta)
    gaps = E.field_gaps(s)
    for i in range(6):
        minus, plus = s.clone(), s.clone()
        minus[:, i], plus[:, i] = -1, 1
        assert torch.allclose(gaps[:, i], E(minus) - E(plus))


def test_bad_couplings_are_named():
    W = torch.randn(4, 4, dtype=D64)
    with pytest.raises(ValueError, match="symmetric"):
        hk.PairwiseEnergy(W)
    with pytest.raises(ValueError, match="zero diagonal"):
        hk.PairwiseEnergy(W + W.T)
    with pytest.raises(ValueError, match="square"):
        hk.PairwiseEnergy(torch.zeros(3, 4, dtype=D64))
    E = hk.PairwiseEnergy(W, symmetric=False)                         # an asymmetric rule, accepted
    assert E(torch.ones(2, 4, dtype=D64)).shape == (2,)
    with pytest.raises(ValueError, match="-1 and \\+1"):
        hk.descend(hk.PairwiseEnergy(torch.zeros(4, 4, dtype=D64)), torch.zeros(1, 4, dtype=D64), 1.0, method="async")


@pytest.mark.parametrize("order", ["sequential", "random"])
def test_async_sweeps_never_raise_the_energy_and_end_at_single_flip_minima(order):
    X, W = _hebb(30, 60)                                              # overloaded: many spurious minima
    E = hk.PairwiseEnergy(W)
    s0 = torch.randint(0, 2, (50, 60), generator=torch.Generator().manual_seed(2)).to(D64) * 2 - 1
    opts = {"order": order, "generator": torch.Generator().manual_seed(3)}
    run = hk.descend(E, s0, 1.0, method="async", steps=100, options=opts)
    assert run.monotone(rtol=0, atol=1e-12) and run.success and run.steps < 100
    assert (E.field_gaps(run.xi) * run.xi >= 0).all()                 # no single flip lowers E
    again = hk.descend(E, s0, 1.0, method="async", steps=100,
                       options={"order": order, "generator": torch.Generator().manual_seed(3)})
    assert torch.equal(again.xi, run.xi)                              # the generator makes it reproducible


def test_the_order_can_change_the_fixed_point_reached():
    X, W = _hebb(30, 60)
    E = hk.PairwiseEnergy(W)
    s0 = torch.randint(0, 2, (50, 60), generator=torch.Generator().manual_seed(2)).to(D64) * 2 - 1
    seq = hk.descend(E, s0, 1.0, method="async", steps=100).xi
    rnd = hk.descend(E, s0, 1.0, method="async", steps=100,
                     options={"order": "random", "generator": torch.Generator().manual_seed(4)}).xi
    assert not torch.equal(seq, rnd)


def test_sync_reports_two_cycles_and_never_calls_them_converged():
    W = torch.tensor([[0.0, -1.0], [-1.0, 0.0]], dtype=D64)         # s = (1, 1) ↔ (−1, −1)
    run = hk.descend(hk.PairwiseEnergy(W), torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=D64), 1.0,
                     method="sync", steps=20)
    assert run.info["two_cycle"].tolist() == [True, False]
    assert run.converged.tolist() == [False, True] and run.steps == 2 and "1 in a 2-cycle" in run.message


def test_glauber_samples_the_boltzmann_distribution_of_a_tiny_network():
    g = torch.Generator().manual_seed(5)
    A = torch.randn(4, 4, generator=g, dtype=D64) * 0.6
    W = A + A.T
    W.fill_diagonal_(0)
    theta = 0.3 * torch.randn(4, generator=g, dtype=D64)
    E, T = hk.PairwiseEnergy(W, theta), 1.3
    states = _all_states(4)
    exact = torch.softmax(-E(states) / T, 0)
    start = torch.ones(20000, 4, dtype=D64)
    run = hk.descend(E, start, 1.0, method="glauber", steps=30,
                     options={"temperature": T, "generator": torch.Generator().manual_seed(6)})
    code = ((run.xi > 0).long() * (2 ** torch.arange(3, -1, -1))).sum(-1)   # same order as _all_states
    empirical = torch.bincount(code, minlength=16).to(D64) / len(code)
    assert 0.5 * (empirical - exact).abs().sum() < 0.02                 # total variation
    assert not run.converged.any() and run.steps == 30


def test_dense_am_with_n2_has_the_dynamics_of_the_hebbian_pairwise_network():
    """E_dense = −Σ_μ (x_μᵀs)² = 2N·E_pair + const for Hebb's W: the same async end points."""
    X, W = _hebb(5, 40, seed=7)
    s0 = torch.randint(0, 2, (64, 40), generator=torch.Generator().manual_seed(8)).to(D64) * 2 - 1
    a = hk.descend(hk.PairwiseEnergy(W), s0, 1.0, method="async", steps=50)
    b = hk.descend(hk.DenseAMEnergy(X, F="poly", n=2), s0, 1.0, method="async", steps=50)
    assert torch.equal(a.xi, b.xi) and a.success and b.success
    c = hk.descend(hk.DenseAMEnergy(X, F="poly", n=3), s0, 1.0, method="glauber", steps=3,
                   options={"temperature": 0.5})
    assert c.xi.abs().eq(1).all()


def test_binary_method_options_are_checked():
    E = hk.PairwiseEnergy(torch.zeros(3, 3, dtype=D64))
    s = torch.ones(2, 3, dtype=D64)
    with pytest.raises(ValueError, match="temperature"):
        hk.descend(E, s, 1.0, method="glauber")
    with pytest.raises(ValueError, match="order"):
        hk.descend(E, s, 1.0, method="async", options={"order": "backwards"})
    with pytest.raises(ValueError, match="step_size"):
        hk.descend(E, s, 1.0, method="async", step_size=0.1)
    with pytest.raises(ValueError, match="binary energies"):
        hk.descend(hk.HopfieldEnergy(torch.randn(4, 3, dtype=D64)), s, 1.0, method="sync")


def test_a_stack_of_networks_runs_like_each_network_alone():
    Ws = torch.stack([_hebb(8, 40, seed=k)[1] for k in range(3)])          # [3, 40, 40]
    s0 = torch.randint(0, 2, (3, 5, 40), generator=torch.Generator().manual_seed(9)).to(D64) * 2 - 1
    E = hk.PairwiseEnergy(Ws.unsqueeze(1))                                   # [3, 1, 40, 40]: 5 states each
    run = hk.descend(E, s0, 1.0, method="async", steps=30)
    for k in range(3):
        alone = hk.descend(hk.PairwiseEnergy(Ws[k]), s0[k], 1.0, method="async", steps=30)
        n = alone.energies.shape[0]                                          # the stack runs until all stop
        assert torch.equal(run.xi[k], alone.xi) and torch.allclose(run.energies[:n, k], alone.energies)
    one_each = hk.PairwiseEnergy(Ws)                                         # [3, 40, 40] with states [3, 40]
    assert torch.allclose(one_each(s0[:, 0]), torch.stack([hk.PairwiseEnergy(Ws[k])(s0[k, 0]) for k in range(3)]))
    sync = hk.descend(E, s0, 1.0, method="sync", steps=30)
    assert sync.xi.shape == s0.shape


def _reference_sweep(W, theta, s, order):
    """One asynchronous sweep with the full field recomputed for every neuron (no incremental field)."""
    s = s.clone()
    for i in order:
        h = (W[i] * s).sum(-1) + theta[i]                      # h_i = Σ_j W_ij s_j + θ_i
        s[..., i] = torch.where(h == 0, s[..., i], torch.sign(h))
    return s


@pytest.mark.parametrize("symmetric", [True, False])
def test_a_sweep_equals_the_rule_applied_neuron_by_neuron(symmetric):
    """The incremental sweep (W's columns kept as contiguous rows) is the asynchronous rule itself,
    for a W symmetric only to rounding, an asymmetric W, thresholds and a random order; and a W
    changed in place is used as changed."""
    g = torch.Generator().manual_seed(7)
    N = 24
    A = torch.randn(N, N, generator=g, dtype=D64)
    W = 0.5 * (A + A.T) if symmetric else A
    W.fill_diagonal_(0)
    if symmetric:
        W = W + 1e-14 * torch.randn(N, N, generator=g, dtype=D64) * (1 - torch.eye(N, dtype=D64))
    theta = 0.3 * torch.randn(N, generator=g, dtype=D64)
    E = hk.PairwiseEnergy(W.clone(), theta, symmetric=symmetric)
    s = torch.randint(0, 2, (9, N), generator=g).to(D64) * 2 - 1
    order = torch.randperm(N, generator=g)
    for _ in range(2):
        want = _reference_sweep(E.W, theta, s, order.tolist())
        assert torch.equal(E.sweep(s, 1.0, order), want)
        assert torch.equal(E.sweep(s, 1.0), _reference_sweep(E.W, theta, s, range(N)))
        with torch.no_grad():
            E.W.mul_(-1.0)                 # the kept columns must follow
