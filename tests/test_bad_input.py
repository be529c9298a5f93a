"""Bad input gives a clear ValueError/TypeError naming the argument, never a deep torch trace."""
import pytest
import torch

import hopfieldkit as hk

X = torch.randn(6, 4, dtype=torch.float64)
E = hk.HopfieldEnergy(X)
xi = torch.randn(3, 4, dtype=torch.float64)


@pytest.mark.parametrize("patterns, exc, match", [
    (torch.randn(6), ValueError, r"patterns must have at least 2 dimension\(s\)"),
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
    ({"method": "armijo", "options": {"c": 2.0}}, ValueError, "0 < c < 0.5"),
    ({"method": "ode", "options": {"foo": 1}}, ValueError, "do not apply to method='ode'"),
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
        hk.DenseAMEnergy(torch.ones(2, 3)).sweep(torch.zeros(1, 3))


from hopfieldkit import theory as T  # noqa: E402

P = torch.randn(5, 4, dtype=torch.float64)
q = torch.randn(4, dtype=torch.float64)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: T.storage_capacity(1.0, 3, 1, 0.001), ValueError, "d must be an integer >= 2"),
    (lambda: T.storage_capacity(1.0, 3, 20, 2.0), ValueError, r"p must be a probability in \(0, 1\]"),
    (lambda: T.storage_capacity(1.0, -3, 20, 0.1), ValueError, "K must be a positive finite number"),
    (lambda: T.storage_capacity_corollary(1.0, 3, 1.5, 0.1), ValueError, "d must be an integer >= 2"),
    (lambda: T.well_separated_threshold(1, 1.0, 1.0), ValueError, "N must be an integer >= 2"),
    (lambda: T.well_separated_threshold(5, 1.0, 0.0), ValueError, "M must be a positive finite number"),
    (lambda: T.sphere_radius(0, 1.0, 1.0), ValueError, "N must be an integer >= 1"),
    (lambda: T.retrieval_error_bound(P, 10, q, q, 1.0), ValueError, r"i must be a pattern index in \[0, 5\)"),
    (lambda: T.jacobian_mean_bound(P, 1.5, q, q, 1.0), ValueError, "i must be a pattern index"),
    (lambda: T.fixed_point_error_bound(P, -6, 1.0), ValueError, "i must be a pattern index"),
    (lambda: T.retrieval_error_bound(P, 0, torch.randn(3, dtype=torch.float64), q, 1.0), ValueError,
     r"xi must have shape \[\.\.\., 4\]"),
    (lambda: T.retrieval_error_bound(P, 0, q, torch.randn(3, dtype=torch.float64), 1.0), ValueError,
     r"x_star must have shape \[\.\.\., 4\]"),
    (lambda: T.query_separation(P, torch.randn(3, dtype=torch.float64)), ValueError, r"xi must have shape \[\.\.\., 4\]"),
    (lambda: T.query_separation(P[:1], q), ValueError, "at least 2 patterns"),
    (lambda: T.in_sphere(P, 7, q, 1.0), ValueError, "i must be a pattern index"),
    (lambda: T.sandwich_bounds(P, torch.randn(2, 3, dtype=torch.float64), 1.0), ValueError, "xi must have shape"),
    (lambda: T.separation(P[:1]), ValueError, "at least 2 patterns"),
    (lambda: T.metastable_conditions(P, [0, 9], 1.0), ValueError, "cluster must be a pattern index"),
    (lambda: T.metastable_conditions(P, [0, 0], 1.0), ValueError, "must not repeat"),
    (lambda: T.metastable_conditions(P, 3, 1.0), TypeError, "cluster must be a list"),
    (lambda: T.simplex_beta_c(1, 1.0), ValueError, "N must be an integer >= 2"),
    (lambda: T.simplex_beta_c(3, -1.0), ValueError, "r must be a positive finite number"),
    (lambda: T.krotov_capacity(100, 1), ValueError, "n must be an integer >= 2"),
    (lambda: T.demircigil_alpha(0.7), ValueError, r"rho must be a number in \[0, 0.5\)"),
    (lambda: T.mass_count(torch.ones(3), 0.0), ValueError, r"mass must be a number in \(0, 1\]"),
    (lambda: T.mass_count([0.5, 0.5]), TypeError, "weights must be a torch.Tensor"),
    (lambda: T.is_well_separated(P, torch.ones(2)), ValueError, "beta must be one positive number"),
    (lambda: T.hull_upper_bound(torch.randn(4), 1.0), ValueError, "patterns must have 2 dimensions"),
])
def test_theory_functions_name_their_bad_arguments(call, exc, match):
    """Before: ZeroDivisionError, 'math domain error', a bare IndexError, torch shape errors."""
    with pytest.raises(exc, match=match):
        call()


def test_a_beta_tensor_of_the_wrong_shape_is_named():
    with pytest.raises(ValueError, match=r"beta has shape \(3,\).*batch shape \(4,\)"):
        E(torch.randn(4, 4, dtype=torch.float64), torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"beta has shape \(2, 1\)"):
        hk.lse_similarity(torch.randn(4, 4, dtype=torch.float64), X, torch.ones(2, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"beta has shape \(5,\)"):
        hk.DenseAMEnergy(torch.ones(3, 4, dtype=torch.float64))(torch.ones(2, 4, dtype=torch.float64),
                                                                   torch.ones(5, dtype=torch.float64))


@pytest.mark.parametrize("call, exc, match", [
    (lambda: hk.grid_starts(q, q[:3], q, 5), ValueError, "a, b, c must be states of one shape"),
    (lambda: hk.grid_starts(q, q, q, 0), ValueError, "n must be finite and > 0"),
    (lambda: hk.grid_starts(q.reshape(2, 2), q, q), ValueError, "a must have 1 dimensions"),
    (lambda: hk.beta_sweep(P, [], 10), ValueError, "betas must be a non-empty list"),
    (lambda: hk.beta_sweep(P, [1.0, float("nan")], 10), ValueError, "positive finite numbers"),
    (lambda: hk.beta_sweep(P, [1.0], 0), ValueError, "inits must be finite and > 0"),
    (lambda: hk.beta_sweep(P, [1.0], "10"), TypeError, "inits must be a number of random starts"),
    (lambda: hk.et_block(hk.HopfieldEnergy(P), torch.randn(2, 3, 4)), TypeError, "energy must be an EnergyTransformerEnergy"),
    (lambda: hk.et_block(hk.EnergyTransformerEnergy(4, 1, 2, 3), torch.randn(2, 3, 4), steps=-1), ValueError,
     "steps must be finite and >= 0"),
])
def test_attractor_and_et_helpers_name_their_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
