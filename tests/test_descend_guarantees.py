"""descend never returns a wrong answer quietly: it converges where energies are differences of
large terms, whatever constant is added; per-state ODE steps; per-sample memories; divergence is
reported as divergence; options that do not apply are errors."""
import math
import warnings

import pytest
import torch

import hopfieldkit as hk

D64 = torch.float64


def _global_average_setup(n=200):
    """N = 20 patterns of norm 2 in d = 16, random starts: small β is the global-average regime."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(20, 16, generator=g, dtype=D64)
    X = 2 * X / X.norm(dim=-1, keepdim=True)
    return X, 2 * torch.randn(n, 16, generator=g, dtype=D64)


def _lse_energies(X):
    N = X.shape[0]
    plain = lambda x, b: -torch.logsumexp(b * x @ X.T, -1) / b + 0.5 * (x * x).sum(-1)       # noqa: E731
    cancel = lambda x, b: plain(x, b) + math.log(N) / b                                        # noqa: E731
    shifted = lambda x, b: plain(x, b) + math.log(N) / b + 1e3                                 # noqa: E731
    return {"HopfieldEnergy": hk.HopfieldEnergy(X), "lse": plain, "lse + log N/β": cancel,
            "lse + log N/β + 1e3": shifted}


@pytest.mark.parametrize("beta", [0.01, 0.1])
def test_armijo_converges_where_the_energy_is_a_difference_of_large_terms(beta):
    """At small β, E = −lse + β⁻¹ log N + … cancels two terms of size β⁻¹ log N (300 at β = 0.01):
    a rounding floor scaled by |E| rejected good steps (171/200 converged in 300 steps before). Now
    every form converges, to the same end points: a constant added changes nothing."""
    X, xi = _global_average_setup()
    ends = {}
    for name, energy in _lse_energies(X).items():
        run = hk.descend(energy, xi, beta, method="armijo", steps=300)
        assert int(run.converged.sum()) >= 198, (name, int(run.converged.sum()), run.message)
        assert not run.diverged.any() and run.monotone(), name
        ends[name] = run.xi
    for name, x in ends.items():
        assert torch.allclose(x, ends["lse"], atol=1e-8), name
    fixed = hk.descend(hk.HopfieldEnergy(X), xi, beta, method="update", steps=300)
    assert torch.allclose(ends["lse"], fixed.xi, atol=1e-8)


@pytest.mark.parametrize("beta", [1.0, 0.01])
def test_ode_converges_with_its_default_tolerances(beta):
    """Default rtol/atol follow tol (before: tol 1e-10 with atol 1e-8; 27/50 never converged at β = 1,
    0/50 at β = 0.01 with dt collapsing to 1e-11)."""
    X, xi = _global_average_setup(50)
    for name, energy in _lse_energies(X).items():
        run = hk.descend(energy, xi, beta, method="ode", steps=500)
        assert run.success, (name, int(run.converged.sum()), run.message)
        assert run.monotone() and not run.diverged.any(), name
        assert (run.residual <= 1e-10 * run.xi.norm(dim=-1).clamp_min(1)).all()


def test_ode_steps_of_one_state_do_not_depend_on_the_others():
    """Each state has its own step size: a stiff state beside an easy one leaves the easy one's
    steps (and times) exactly as when it runs alone."""
    k = torch.tensor([1.0, 400.0], dtype=D64)               # per-sample stiffness (states not independent)
    E = lambda x, b: 0.5 * (k * (x * x).sum(-1))            # noqa: E731
    x0 = torch.tensor([[1.0, -2.0], [1.0, 1.0]], dtype=D64)
    both = hk.descend(E, x0, 1.0, method="ode", steps=60, tol=0)
    k_alone = k[:1]
    alone = hk.descend(lambda x, b: 0.5 * (k_alone * (x * x).sum(-1)), x0[:1], 1.0, method="ode", steps=60, tol=0)
    assert torch.allclose(both.times[:, 0], alone.times[:, 0], rtol=1e-12)
    assert torch.allclose(both.xi[0], alone.xi[0], rtol=1e-10)
    assert both.times[-1, 0] > 5 * both.times[-1, 1]         # the easy state went much further in time
    assert int(both.info["rejected"][0]) == int(alone.info["rejected"][0])


def test_ode_step_underflow_is_reported():
    """A direction along which the energy rises: every step is rejected until it underflows."""
    class Uphill(hk.Energy):
        def forward(self, x, beta):
            return 0.5 * (x * x).sum(-1)

        def descent_direction(self, x, beta):
            return -x                                       # the flow climbs the energy

    run = hk.descend(Uphill(), torch.ones(3, 2, dtype=D64), 1.0, method="ode", steps=20)
    assert "underflow" in run.message
    assert run.info["underflow"].all() and not run.converged.any() and not run.diverged.any()
    assert run.monotone()


@pytest.mark.parametrize("method", ["gd", "armijo", "ode"])
@pytest.mark.parametrize("record", [False, True])
def test_energies_over_per_sample_memories_work_without_record(method, record):
    """A plain energy closing over one memory per sample [B, N, d]: validated on the whole batch,
    never on the first state alone (record=False said 'energy returned shape (8,)' before);
    results equal a loop over samples."""
    g = torch.Generator().manual_seed(1)
    mem = torch.randn(8, 5, 4, generator=g, dtype=D64)

    def energy_of(m):
        return lambda x, b: -torch.logsumexp(b * (m @ x.unsqueeze(-1)).squeeze(-1), -1) / b + 0.5 * (x * x).sum(-1)

    xi = torch.randn(8, 4, generator=g, dtype=D64)
    kw = dict(method=method, steps=200, record=record)
    if method == "gd":
        kw["step_size"] = 1.0
    run = hk.descend(energy_of(mem), xi, 2.0, **kw)
    for i in range(8):
        one = hk.descend(energy_of(mem[i:i + 1]), xi[i:i + 1], 2.0, **kw)
        assert torch.allclose(run.xi[i], one.xi[0], atol=1e-8), i
    assert run.success


def test_a_huge_gradient_step_diverges_and_says_so():
    X = torch.randn(6, 4, generator=torch.Generator().manual_seed(0), dtype=D64)
    E = hk.HopfieldEnergy(X)
    xi = torch.randn(4, 4, generator=torch.Generator().manual_seed(1), dtype=D64)
    with pytest.warns(hk.StepSizeWarning, match="above 2"):
        run = hk.descend(E, xi, 1.0, method="gd", step_size=1e6)
    assert run.diverged.all() and not run.converged.any() and not run.success
    assert "4 of 4 states diverged" in run.message and "all states converged" not in run.message
    assert torch.isfinite(run.xi).all()                        # frozen at the last finite state
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert hk.descend(E, xi, 1.0, method="gd", step_size=2.0, steps=20).monotone()   # at the limit: fine


def test_an_energy_that_turns_nan_mid_run_diverges():
    X = torch.randn(6, 4, generator=torch.Generator().manual_seed(0), dtype=D64)
    E = hk.HopfieldEnergy(X)
    start = 3 * torch.randn(5, 4, generator=torch.Generator().manual_seed(2), dtype=D64)

    def nan_near_origin(x, b):
        e = E(x, b)
        return torch.where(x.norm(dim=-1) < 2.0, torch.full_like(e, float("nan")), e)

    for method in ("gd", "ode"):
        run = hk.descend(nan_near_origin, start, 1.0, method=method, steps=300,
                         **({"step_size": 0.5} if method == "gd" else {}))
        assert run.diverged.any() and (run.converged | run.diverged).all(), method
        assert not (run.converged & run.diverged).any()
        assert "diverged" in run.message, (method, run.message)
        assert torch.isfinite(run.energies).all() and torch.isfinite(run.xi).all()   # NaN steps not taken
    # the line search never steps into the NaN region: those states do not converge, and it says why
    run = hk.descend(nan_near_origin, start, 1.0, method="armijo", steps=300)
    stuck = ~run.converged
    assert stuck.any()
    assert (run.info["nonfinite_trials"][stuck] > 0).all() and "non-finite trial energies" in run.message


def test_an_energy_unbounded_below_diverges():
    run = hk.descend(lambda x, b: -(x * x).sum(-1), torch.ones(4, 3, dtype=D64), 1.0, method="armijo", steps=3000)
    assert run.diverged.all() and not run.converged.any()
    assert "diverged" in run.message and "unbounded below" in run.message
    update_nan = hk.descend(_NaNAfter(3), torch.ones(2, 3, dtype=D64), 1.0, method="update", steps=10)
    assert update_nan.diverged.all() and update_nan.state_steps.max() == 3


class _NaNAfter(hk.Energy):
    """An update that returns NaN from its n-th call on."""

    def __init__(self, n):
        super().__init__()
        self.n, self.calls = n, 0

    def forward(self, x, beta):
        return (x * x).sum(-1)

    def update(self, x, beta):
        self.calls += 1
        return 0.5 * x if self.calls <= self.n else torch.full_like(x, float("nan"))


@pytest.mark.parametrize("kw, match", [
    ({"method": "update", "options": {"c": 0.1}}, r"options \['c'\] do not apply to method='update'"),
    ({"method": "gd", "options": {"rtol": 1e-3}}, r"options \['rtol'\] do not apply to method='gd'"),
    ({"method": "armijo", "options": {"atol": 1e-3}}, "do not apply to method='armijo'"),
    ({"method": "ode", "options": {"shrink": 0.5}}, "do not apply to method='ode'"),
    ({"method": "update", "step_size": 0.5}, "step_size does not apply to method='update'"),
    ({"step_size": 0.5}, r"step_size does not apply to method='update' \(chosen by method='auto'\)"),
    ({"method": "gd", "tau": 2.0}, "tau does not apply to method='gd'"),
    ({"method": "ode", "options": {"max_rejects": 0}}, r"options\['max_rejects'\] must be finite and > 0"),
    ({"record": 1}, "record must be True or False"),
])
def test_options_that_do_not_apply_are_errors(kw, match):
    X = torch.randn(6, 4, dtype=D64)
    with pytest.raises((ValueError, TypeError), match=match):
        hk.descend(hk.HopfieldEnergy(X), torch.randn(3, 4, dtype=D64), 1.0, **kw)


@pytest.mark.parametrize("energy", [
    lambda x, b: (x.detach() ** 2).sum(-1),
    lambda x, b: (x.long() ** 2).sum(-1).double(),
    lambda x, b: torch.tensor(x.detach().numpy() ** 2).sum(-1),
])
@pytest.mark.parametrize("method", ["gd", "armijo", "ode"])
def test_an_energy_without_a_graph_to_xi_is_named(energy, method):
    """Before: 'element 0 of tensors does not require grad', or a zero gradient read as convergence."""
    with pytest.raises(ValueError, match="not differentiable with respect to xi"):
        hk.descend(energy, torch.randn(3, 2, dtype=D64), 1.0, method=method, record=False)


def test_a_constant_changes_neither_steps_nor_ends_of_the_ode():
    X, xi = _global_average_setup(20)
    runs = [hk.descend(f, xi, 0.1, method="ode", steps=400) for f in list(_lse_energies(X).values())[1:]]
    assert len({r.steps for r in runs}) == 1
    assert all(torch.allclose(r.xi, runs[0].xi, atol=1e-9) for r in runs)
