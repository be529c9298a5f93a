"""descend(): monotone energies for every method, batching, convergence, differentiability."""
import copy
import pathlib

import pytest
import torch

import hopfieldkit as hk

METHODS = ["update", "armijo", "ode", "gd"]


def _run(E, xi, beta, method, **kw):
    if method == "gd":
        kw.setdefault("step_size", 0.5)
    return hk.descend(E, xi, beta, method=method, **kw)


@pytest.mark.parametrize("method", METHODS)
def test_energy_never_increases_random_patterns(method, gen):
    for beta in (0.1, 1.0, 8.0):
        X = torch.randn(15, 10, generator=gen, dtype=torch.float64)
        xi = torch.randn(32, 10, generator=gen, dtype=torch.float64) * 3
        run = _run(hk.HopfieldEnergy(X), xi, beta, method, steps=200)
        assert run.energies.shape == (run.steps + 1, 32)
        assert run.monotone()
        assert (run.energies[1:] <= run.energies[:-1] + 1e-12 * run.energies[:-1].abs().clamp_min(1)).all()
        assert run.energies[-1].sum() < run.energies[0].sum()


@pytest.mark.parametrize("method", ["update", "armijo", "ode"])
def test_energy_never_increases_on_digits(method, digits):
    X, _ = digits
    patterns, queries = X[:100], X[100:140] + 0.3 * torch.randn(40, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    run = hk.descend(hk.HopfieldEnergy(patterns), queries, 0.5, method=method, steps=100)
    assert run.monotone()
    assert run.energies[-1].mean() < run.energies[0].mean()


def test_auto_picks_update_then_armijo(gen):
    X = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    assert hk.descend(hk.HopfieldEnergy(X), X[:2] + 0.1, 1.0).method == "update"
    plain = lambda x, b: 0.5 * (x * x).sum(-1) + (x ** 4).sum(-1)
    run = hk.descend(plain, torch.ones(3, 2, dtype=torch.float64), 1.0)
    assert run.method == "armijo" and run.success
    assert run.xi.abs().max() < 1e-6


def test_fixed_points_of_update_are_stationary(gen):
    X = torch.randn(10, 6, generator=gen, dtype=torch.float64)
    E = hk.HopfieldEnergy(X)
    run = hk.descend(E, torch.randn(20, 6, generator=gen, dtype=torch.float64), 2.0, steps=1000)
    assert run.success
    assert torch.allclose(E.update(run.xi, 2.0), run.xi, atol=1e-9)
    assert hk.autodiff_grad(E, run.xi, 2.0).norm(dim=-1).max() < 1e-9


def test_per_state_convergence_and_freezing(gen):
    X = torch.randn(6, 4, generator=gen, dtype=torch.float64) * 3
    E = hk.HopfieldEnergy(X)
    xi = torch.cat([X[:1].clone(), torch.randn(3, 4, generator=gen, dtype=torch.float64)])
    run = hk.descend(E, xi, 50.0, steps=500)
    assert run.success
    assert run.state_steps[0] <= run.state_steps[1:].max()
    # a frozen state no longer moves: its recorded energy is constant after it converged
    k = int(run.state_steps[0])
    assert torch.all(run.energies[k:, 0] == run.energies[k, 0])


def test_batch_shapes_and_trajectory(gen):
    X = torch.randn(5, 3, generator=gen)
    xi = torch.randn(2, 4, 3, generator=gen)
    run = hk.descend(hk.HopfieldEnergy(X), xi, 1.0, steps=7, tol=0, trajectory=True)
    assert run.xi.shape == (2, 4, 3) and run.xi.dtype == torch.float32
    assert run.energies.shape == (8, 2, 4)
    assert run.trajectory.shape == (8, 2, 4, 3)
    assert run.converged.shape == (2, 4) and run.steps == 7
    assert torch.equal(run.trajectory[-1], run.xi)


def test_plot_energy_curves(gen):
    X = torch.randn(5, 3, generator=gen)
    run = hk.descend(hk.HopfieldEnergy(X), torch.randn(4, 3, generator=gen), 1.0, method="ode")
    ax = run.plot()
    assert ax.get_xlabel() == "time" and len(ax.lines) == 4 and "monotone=True" in ax.get_title()


def test_record_false_keeps_no_history(gen):
    X = torch.randn(5, 3, generator=gen)
    run = hk.descend(hk.HopfieldEnergy(X), torch.randn(4, 3, generator=gen), 1.0, record=False)
    assert run.energies is None and run.trajectory is None
    with pytest.raises(ValueError, match="record=True"):
        run.monotone()


def test_event_dims_two_energy(gen):
    """A state of shape [T, D] (e.g. tokens): energies per sample, descend handles it."""
    W = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    A = W @ W.T + torch.eye(4, dtype=torch.float64)

    class Tokens(hk.Energy):
        event_dims = 2

        def forward(self, x, beta):
            return 0.5 * torch.einsum("...td,de,...te->...", x, A, x) + beta * (x.sum(-2) ** 2).sum(-1)

    x0 = torch.randn(3, 5, 4, generator=gen, dtype=torch.float64)
    run = hk.descend(Tokens(), x0, 0.1, method="armijo", steps=500)
    assert run.energies.shape[1:] == (3,)
    assert run.monotone() and run.success
    assert run.xi.abs().max() < 1e-6


def test_gradients_flow_through_unrolled_steps(gen):
    X = torch.randn(6, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    xi = torch.randn(3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    for method in ("update", "gd", "armijo"):
        run = hk.descend(hk.HopfieldEnergy(X), xi, 1.0, method=method, steps=3, tol=0, record=False)
        gX, gxi = torch.autograd.grad(run.xi.square().sum(), (X, xi))
        assert gX.abs().sum() > 0 and torch.isfinite(gX).all(), method
        assert torch.isfinite(gxi).all()
    # check the unrolled update against finite differences
    def f(Xp):
        return hk.descend(hk.HopfieldEnergy(Xp), xi.detach(), 1.0, method="update", steps=3, tol=0,
                          record=False).xi.square().sum()
    assert torch.autograd.gradcheck(f, (X,))


def test_ode_follows_the_gradient_flow(gen):
    """For E = ½ξᵀAξ the flow is ξ(t) = exp(−At/τ)ξ0: compare at the solver's times."""
    A = torch.diag(torch.tensor([1.0, 3.0], dtype=torch.float64))
    E = lambda x, b: 0.5 * ((x @ A) * x).sum(-1)
    x0 = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    run = hk.descend(E, x0, 1.0, method="ode", steps=40, tau=2.0, trajectory=True, tol=0,
                     options={"rtol": 1e-9, "atol": 1e-12})
    t = run.times                                        # [steps + 1, states]: each state's time
    assert t.shape == (run.steps + 1, 1)
    exact = x0 * torch.exp(-torch.diag(A) * t / 2.0)
    assert torch.allclose(run.trajectory[:, 0], exact, atol=1e-7)
    assert run.monotone()


def test_armijo_every_accepted_step_lowers_energy(gen):
    # a stiff energy where a fixed step of 1 diverges; armijo must still decrease
    E = lambda x, b: 50.0 * (x[..., 0] ** 2) + 0.01 * (x[..., 1] ** 2)
    x0 = torch.tensor([[1.0, 1.0]] * 4, dtype=torch.float64)
    run = hk.descend(E, x0, 1.0, method="armijo", steps=50, tol=0)
    assert (run.energies[1:] < run.energies[:-1]).all()


@pytest.mark.parametrize("method", ["update", "armijo"])
def test_float32_and_float64(method, gen):
    X = torch.randn(8, 5, generator=gen)
    for dtype in (torch.float32, torch.float64):
        run = hk.descend(hk.HopfieldEnergy(X.to(dtype)), X[:3].to(dtype) + 0.1, 4.0, method=method)
        assert run.xi.dtype == dtype and run.monotone() and run.success


def test_progress_bar_runs(gen, capsys):
    X = torch.randn(8, 5, generator=gen)
    run = hk.descend(hk.HopfieldEnergy(X), X[:3] + 0.1, 4.0, progress=True)
    assert run.success


def test_save_atomic_replaces_whole_files(tmp_path):
    path = tmp_path / "ck.pt"
    hk.save_atomic({"a": torch.ones(3)}, path)
    hk.save_atomic({"a": torch.zeros(3)}, path)
    assert torch.equal(torch.load(path)["a"], torch.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temporary file left behind


def test_git_revision(tmp_path):
    from hopfieldkit.checkpoint import git_revision

    rev = git_revision(pathlib.Path(__file__).parent)
    assert rev == "unknown" or (4 <= len(rev) <= 40 and all(c in "0123456789abcdef" for c in rev))
    assert git_revision(tmp_path) == "unknown"  # not a git checkout


def test_per_state_finiteness_flags_nan_and_both_infinities_only():
    """The lean path's divergence test: NaN, +inf and −inf are caught; huge finite states are not."""
    from hopfieldkit._methods import _finite

    t = torch.ones(5, 3, 4)
    t[1, 0, 0], t[2, 2, 3], t[3, 1, 1] = float("nan"), float("inf"), -float("inf")
    t[4] = torch.finfo(t.dtype).max                       # finite, but its plain sum overflows
    assert _finite(t, 1).tolist() == [[True] * 3, [False, True, True], [True, True, False],
                                      [True, False, True], [True] * 3]
    assert _finite(t, 2).tolist() == [True, False, False, False, True]


def test_lean_update_result_is_judged_when_read_and_refuses_changed_states():
    """A lean update run (tol=0, nothing recorded) computes its residual and flags on first read:
    the same values a judged run reports; a NaN state is flagged diverged; states changed in place
    before the read are refused, never judged on other numbers."""
    g = torch.Generator().manual_seed(3)
    E = hk.HopfieldEnergy(torch.randn(6, 5, generator=g, dtype=torch.float64))
    xi = torch.randn(4, 5, generator=g, dtype=torch.float64)
    lean = hk.descend(E, xi, 2.0, method="update", steps=3, tol=0, record=False)
    full = hk.descend(E, xi, 2.0, method="update", steps=3, tol=0, record=True)
    assert "_judge" in lean.__dict__                     # nothing judged yet
    assert torch.allclose(lean.residual, full.residual, atol=1e-14)
    assert lean.state_steps.tolist() == [3] * 4 and not lean.converged.any() and not lean.diverged.any()
    assert lean.message == "reached steps=3"
    bad = hk.descend(_NanAfterOne(), xi, 1.0, method="update", steps=1, tol=0, record=False)
    assert bad.diverged.tolist() == [True, False, False, False] and "1 of 4 states diverged" in bad.message
    changed = hk.descend(E, xi, 2.0, method="update", steps=1, tol=0, record=False)
    changed.xi.mul_(2)
    with pytest.raises(RuntimeError, match="modified in place"):
        changed.residual
    kept = copy.deepcopy(hk.descend(E, xi, 2.0, method="update", steps=3, tol=0, record=False))
    assert torch.equal(kept.residual, lean.residual)     # a copy holds the judged values


class _NanAfterOne:
    """An energy whose update sends state 0 to NaN (its value is never needed by the lean path)."""

    def __call__(self, xi, beta):
        return (xi ** 2).sum(-1)

    def update(self, xi, beta):
        out = xi * 0.5
        out[0] = float("nan")
        return out


def test_unchecked_skips_value_checks_only_inside_its_block():
    """hk.unchecked(): a NaN state is refused by descend outside the block; inside it the value scan
    is skipped and the run itself flags the state diverged (never converged)."""
    E = hk.HopfieldEnergy(torch.randn(4, 3, generator=torch.Generator().manual_seed(0)))
    xi = torch.ones(2, 3)
    xi[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        hk.descend(E, xi, 1.0, method="update", steps=1, tol=0, record=False)
    with hk.unchecked():
        run = hk.descend(E, xi, 1.0, method="update", steps=1, tol=0, record=False)
    assert run.diverged.tolist() == [True, False] and not run.converged.any()
    with pytest.raises(ValueError, match="NaN"):                  # the block restored the checks
        hk.descend(E, xi, 1.0, method="update", steps=1, tol=0, record=False)


class _PlainUpdate(torch.nn.Module):
    """A Hopfield energy written with plain matmuls, which autocast runs in bfloat16."""

    def __init__(self, X):
        super().__init__()
        self.X = X

    def forward(self, xi, beta):
        return -torch.logsumexp(beta * xi @ self.X.T, -1) / beta + 0.5 * (xi * xi).sum(-1)

    def update(self, xi, beta):
        return torch.softmax(beta * xi @ self.X.T, -1) @ self.X


@pytest.mark.parametrize("method", ["update", "gd"])
@pytest.mark.parametrize("record", [True, False])
def test_autocast_keeps_the_state_dtype(method, record):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 16, generator=g)
    xi = X[:5] + 0.1 * torch.randn(5, 16, generator=g)
    E = _PlainUpdate(X)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert E.update(xi, 1.0).dtype == torch.bfloat16          # the case being handled
        run = hk.descend(E, xi, 1.0, method=method, steps=5, tol=0, record=record)
    assert run.xi.dtype == torch.float32
    ref = hk.descend(E, xi, 1.0, method=method, steps=5, tol=0, record=record)
    assert (run.xi - ref.xi).abs().max() < 0.1                    # bfloat16 products, same descent
    assert not run.diverged.any()
    with pytest.raises(ValueError, match="must return a tensor like xi"):   # other dtypes still refused
        hk.descend(type("Half", (_PlainUpdate,), {"update": lambda self, x, b: super(type(self), self).update(x, b).half()})(X),
                   xi, 1.0, method="update", steps=2)
