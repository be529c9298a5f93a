"""Dense associative memories [KH16, D17]: asynchronous flips never raise E (T12), capacity (T11)."""
import math

import pytest
import torch

import hopfieldkit as hk
from hopfieldkit import theory


def _binary(n, d, gen):
    return torch.randint(0, 2, (n, d), generator=gen).double() * 2 - 1


@pytest.mark.parametrize("F, n", [("poly", 2), ("poly", 3), ("rectified", 3), ("rectified", 4), ("exp", 1)])
def test_T12_every_asynchronous_flip_does_not_raise_energy(F, n, gen):
    X = _binary(20, 24, gen)
    E = hk.DenseAMEnergy(X, F=F, n=n)
    s = _binary(16, 24, gen)
    beta = 0.2 if F == "exp" else 1.0
    for sweep in range(3):
        for i in range(24):
            before = E(s, beta)
            s = E.sweep(s, beta, order=torch.tensor([i]))
            after = E(s, beta)
            assert (after <= before + 1e-9 * before.abs().clamp_min(1)).all(), (F, n, sweep, i)


def test_exp_energy_matches_demircigil_form(gen):
    X = _binary(10, 12, gen)
    s = _binary(5, 12, gen)
    E = hk.DenseAMEnergy(X, F="exp")
    direct = -torch.exp(s @ X.T).sum(-1)  # E = −Σ_μ exp(x_μᵀσ), β = 1 ([D17]; blog Eq. 12)
    assert torch.allclose(E(s, 1.0), direct, rtol=1e-12)
    # the log-domain flip never overflows even where exp(x·σ) would
    big = _binary(5, 2000, gen)
    Eb = hk.DenseAMEnergy(big, F="exp")
    out = Eb.sweep(big[:2].clone(), 1.0)
    assert torch.equal(out, big[:2])


def test_update_is_sweep_and_descend_converges(gen):
    X = _binary(6, 40, gen)
    E = hk.DenseAMEnergy(X, F="poly", n=3)
    noisy = X.clone()
    flip = torch.rand(X.shape, generator=gen) < 0.15
    noisy[flip] *= -1
    run = hk.descend(E, noisy, 1.0, steps=10)
    assert run.method == "update" and run.success and run.monotone()
    assert torch.equal(run.xi, X)


def test_T11_monte_carlo_capacity_n3():
    """N = 30 neurons, n = 3: K_max = 30²/(2·3!!·ln 30) ≈ 44.1 ([KH16] Eq. 6). Perfect recall well
    below it, errors well above."""
    g = torch.Generator().manual_seed(7)
    d, n = 30, 3
    k_max = theory.krotov_capacity(d, n)
    assert k_max == pytest.approx(900 / (6 * math.log(30)))

    def recall(K):
        X = _binary(K, d, g)
        E = hk.DenseAMEnergy(X, F="poly", n=n)
        return (E.sweep(X, 1.0) == X).all(-1).double().mean().item()

    assert recall(int(k_max / 3)) == 1.0
    assert recall(int(k_max * 10)) < 0.5


@pytest.mark.parametrize("F, n", [("poly", 3), ("rectified", 2), ("exp", 1)])
def test_continuous_relaxation_descends(F, n, gen):
    X = _binary(5, 16, gen)
    E = hk.DenseAMEnergy(X, F=F, n=n, state="continuous")
    v0 = torch.randn(8, 16, generator=gen, dtype=torch.float64)
    run = hk.descend(E, v0, 0.5, steps=300)
    assert run.method == "armijo" and run.monotone()
    assert run.energies[-1].mean() < run.energies[0].mean()
    # sanity: the energy is bounded below by −β⁻¹ Σ F(β‖x‖₁) (|tanh| ≤ 1, leak ≥ 0)
    assert torch.isfinite(run.energies).all()


def test_continuous_relaxation_retrieves_memory(gen):
    X = _binary(4, 32, gen)
    E = hk.DenseAMEnergy(X, F="rectified", n=3, state="continuous")
    v0 = 0.3 * X[:2] + 0.2 * torch.randn(2, 32, generator=gen, dtype=torch.float64)
    run = hk.descend(E, v0, 0.1, steps=500)
    assert torch.equal(torch.sign(run.xi), X[:2])


def test_exponential_energy_overflow_is_named_never_converged():
    """N = 200 ±1 patterns in d = 100, float32: at a stored pattern βz = 100 > 88.7 and e^{βz} is
    not representable. Checked calls raise; inside descend the −inf ends the state as diverged
    (before: E = −inf reported as converged)."""
    g = torch.Generator().manual_seed(0)
    P = (torch.randint(0, 2, (200, 100), generator=g) * 2 - 1).float()
    E = hk.DenseAMEnergy(P, F="exp")
    with pytest.raises(ValueError, match="overflows torch.float32.*F='lse'"):
        E(P[:2], 1.0)
    noisy = P[:8].clone()
    noisy[:, :30] *= -1                                     # βz = 40 at the start: finite
    run = hk.descend(E, noisy, 1.0, method="update", steps=5)
    assert run.diverged.all() and not run.converged.any() and "diverged" in run.message
    assert torch.isfinite(run.energies).all()
    log_form = hk.descend(hk.DenseAMEnergy(P, F="lse"), noisy, 1.0, method="update", steps=5)
    assert log_form.success and torch.equal(log_form.xi, P[:8])


def test_log_form_has_the_minima_and_the_update_of_the_exponential_energy(gen):
    X = _binary(30, 20, gen)
    s = _binary(64, 20, gen)
    exp_, lse_ = hk.DenseAMEnergy(X.double(), F="exp"), hk.DenseAMEnergy(X.double(), F="lse")
    beta = 0.3
    assert torch.allclose(lse_(s, beta), -torch.log(-beta * exp_(s, beta)) / beta, atol=1e-10)
    assert torch.equal(exp_.sweep(s, beta), lse_.sweep(s, beta))
    fe = hk.fixed_points(exp_, beta, s)
    fl = hk.fixed_points(lse_, beta, s)
    assert torch.equal(fe.points, fl.points) and torch.equal(fe.stable, fl.stable)


@pytest.mark.parametrize("F, n", [("poly", 3), ("lse", 2), ("rectified", 4)])
def test_a_stack_of_memories_runs_like_each_memory_alone(F, n, gen):
    """patterns [T, K, d] with states [T, d] (one memory per trial, as the capacity harness runs
    them): energy, flip gaps, sweeps and descend equal the T memories one by one."""
    T, K, d = 5, 7, 12
    X = torch.randint(0, 2, (T, K, d), generator=gen).to(torch.float64) * 2 - 1
    s = torch.randint(0, 2, (T, d), generator=gen).to(torch.float64) * 2 - 1
    stack = hk.DenseAMEnergy(X, F=F, n=n)
    alone = [hk.DenseAMEnergy(X[t], F=F, n=n) for t in range(T)]
    assert torch.allclose(stack(s, 1.0), torch.stack([E(s[t], 1.0) for t, E in enumerate(alone)]))
    assert torch.allclose(stack.field_gaps(s, 1.0), torch.stack([E.field_gaps(s[t], 1.0) for t, E in enumerate(alone)]))
    order = torch.randperm(d, generator=gen)
    assert torch.equal(stack.sweep(s, 1.0, order), torch.stack([E.sweep(s[t], 1.0, order) for t, E in enumerate(alone)]))
    run = hk.descend(stack, s, 1.0, method="async", steps=30, record=False)
    each = [hk.descend(E, s[t:t + 1], 1.0, method="async", steps=30, record=False) for t, E in enumerate(alone)]
    assert torch.equal(run.xi, torch.cat([r.xi for r in each]))
    assert torch.equal(run.converged, torch.cat([r.converged for r in each]))
    with pytest.raises(ValueError, match="one memory"):
        hk.fixed_points(stack, 1.0, s)
