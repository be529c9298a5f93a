"""Bad input gives a clear ValueError/TypeError naming the argument, never a deep torch trace."""
import pytest
import torch

import hopfieldkit as hk

X = torch.randn(6, 4, dtype=torch.float64)
E = hk.HopfieldEnergy(X)
xi = torch.randn(3, 4, dtype=torch.float64)


@pytest.mark.parametrize("patterns, exc, match", [
    (torch.randn(6), ValueError, "patterns must have 2 dimensions"),
    (torch.randint(0, 3, (6, 4)), TypeError, "patterns must have a floating dtype"),
    (torch.tensor([[1.0, float("nan")]]), ValueError, "patterns contains NaN"),
    (torch.tensor([[1.0, float("inf")]]), ValueError, "patterns contains inf"),
    ([[1.0, 2.0]], TypeError, "patterns must be a torch.Tensor"),
    (torch.zeros(0, 4), ValueError, "N, d >= 1"),
])
def test_bad_patterns(patterns, exc, match):
    with pytest.raises(exc, match=match):
        hk.HopfieldEnergy(patterns)


@pytest.mark.parametrize("state, exc, match", [
    (torch.randn(3, 5, dtype=torch.float64), ValueError, r"xi must have shape \[..., 4\]"),
    (torch.randn(3, 4, dtype=torch.float32), TypeError, "xi has dtype torch.float32 but patterns"),
    (torch.tensor([[1.0, float("nan"), 0, 0]], dtype=torch.float64), ValueError, "xi contains NaN"),
    (torch.tensor([[1.0, float("inf"), 0, 0]], dtype=torch.float64), ValueError, "xi contains inf"),
    (torch.empty(3, 4, dtype=torch.float64, device="meta"), ValueError, "xi is on device meta"),
    (torch.tensor(1.0, dtype=torch.float64), ValueError, "xi must have at least 1 dimension"),
])
def test_bad_states(state, exc, match):
    with pytest.raises(exc, match=match):
        E(state, 1.0)
    with pytest.raises(exc, match=match):
        hk.descend(E, state, 1.0)


@pytest.mark.parametrize("beta, exc, match", [
    (0.0, ValueError, "beta must be a positive finite number"),
    (-1.0, ValueError, "beta must be a positive finite number"),
    (float("inf"), ValueError, "beta must be a positive finite number"),
    (float("nan"), ValueError, "beta must be a positive finite number"),
    (torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64), ValueError, "beta must be positive"),
    ("1", TypeError, "beta must be a positive float"),
    (True, TypeError, "beta must be a positive number"),
])
def test_bad_beta(beta, exc, match):
    with pytest.raises(exc, match=match):
        E(xi, beta)
    with pytest.raises(exc, match=match):
        hk.descend(E, xi, beta)


@pytest.mark.parametrize("kw, exc, match", [
    ({"method": "newton"}, ValueError, "method must be one of"),
    ({"steps": -1}, ValueError, "steps must be finite and >= 0"),
    ({"steps": 2.5}, TypeError, "steps must be an integer"),
    ({"step_size": 0.0}, ValueError, "step_size must be finite and > 0"),
    ({"tol": -1e-3}, ValueError, "tol must be finite and >= 0"),
    ({"tau": 0}, ValueError, "tau must be finite and > 0"),
    ({"method": "armijo", "options": {"c": 2.0}}, ValueError, "0 < c < 1"),
    ({"method": "ode", "options": {"foo": 1}}, ValueError, "unknown options"),
])
def test_bad_descend_options(kw, exc, match):
    with pytest.raises(exc, match=match):
        hk.descend(E, xi, 1.0, **kw)


def test_energy_with_wrong_output_shape():
    with pytest.raises(ValueError, match=r"energy returned shape \(\) .* expected one energy per state, shape \(3,\)"):
        hk.descend(lambda x, b: (x * x).sum(), xi, 1.0)
    with pytest.raises(TypeError, match="energy must return a torch.Tensor"):
        hk.descend(lambda x, b: 1.0, xi, 1.0)
    with pytest.raises(TypeError, match="energy must be callable"):
        hk.descend("not an energy", xi, 1.0)


def test_failing_user_energy_is_wrapped():
    W = torch.randn(5, 5)  # float32 against float64 states: torch would raise deep inside
    with pytest.raises(ValueError, match="energy\\(xi, beta\\) failed for xi of shape"):
        hk.descend(lambda x, b: (x @ W).sum(-1), torch.randn(3, 5, dtype=torch.float64), 1.0)


def test_update_method_without_update():
    with pytest.raises(ValueError, match="method='update' needs an energy with a closed-form update"):
        hk.descend(lambda x, b: (x * x).sum(-1), xi, 1.0, method="update")


def test_nonfinite_initial_energy():
    with pytest.raises(ValueError, match="energy is not finite at the initial states"):
        hk.descend(lambda x, b: torch.log(x[..., 0]), -torch.ones(2, 3, dtype=torch.float64), 1.0)


def test_other_constructors():
    with pytest.raises(ValueError, match="F must be one of"):
        hk.DenseAMEnergy(torch.ones(2, 3), F="cubic")
    with pytest.raises(ValueError, match="n must be a positive int"):
        hk.DenseAMEnergy(torch.ones(2, 3), F="poly", n=0)
    with pytest.raises(ValueError, match="num_priors must be a positive int"):
        hk.LowRankPriorEnergy(0, 3, 8)
    with pytest.raises(TypeError, match="lagrangian must be a Lagrangian"):
        hk.Neurons(3, lambda x: x)
    with pytest.raises(ValueError, match="names layer 'h'"):
        hk.LagrangianEnergy({"v": hk.Neurons(3, hk.IdentityLagrangian())},
                            [(hk.DenseSynapse(torch.eye(3)), ("v", "h"))])
    with pytest.raises(ValueError, match="sigma must contain only -1 and \\+1"):
        hk.DenseAMEnergy(torch.ones(2, 3)).async_sweep(torch.zeros(1, 3))
