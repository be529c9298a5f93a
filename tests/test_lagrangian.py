"""Lagrangian building blocks [KH21]: activations, PSD Hessians, Lyapunov dynamics (T13, T14)."""
import pytest
import torch
import torch.nn.functional as Fn

import hopfieldkit as hk


def test_activations_are_the_known_nonlinearities(gen):
    x = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    assert torch.allclose(hk.IdentityLagrangian().activation(x), x)
    assert torch.allclose(hk.LogSumExpLagrangian(2.0).activation(x), torch.softmax(2.0 * x, -1))
    assert torch.allclose(hk.ReLULagrangian().activation(x), torch.relu(x))
    assert torch.allclose(hk.TanhLagrangian().activation(x), torch.tanh(x))
    assert torch.allclose(hk.SphericalLagrangian().activation(x), x / x.norm(dim=-1, keepdim=True))
    ln = hk.LayerNormLagrangian(6, eps=1e-5, gamma=1.7).double()
    with torch.no_grad():
        ln.delta.copy_(torch.randn(6, generator=gen, dtype=torch.float64))
    ref = Fn.layer_norm(x, (6,), eps=1e-5) * 1.7 + ln.delta
    assert torch.allclose(ln.activation(x), ref, atol=1e-10)


@pytest.mark.parametrize("lag", [hk.IdentityLagrangian(), hk.LogSumExpLagrangian(1.5), hk.ReLULagrangian(),
                                 hk.TanhLagrangian(), hk.SphericalLagrangian(), hk.LayerNormLagrangian(5)])
def test_lagrangian_hessians_are_psd(lag, gen):
    x = torch.randn(10, 5, generator=gen, dtype=torch.float64)
    H = lag.double().hessian(x)
    assert H.shape == (10, 5, 5)
    assert torch.allclose(H, H.transpose(-1, -2), atol=1e-10)
    assert torch.linalg.eigvalsh(H).min() > -1e-9


def _model_b(X, beta=1.0, tau_h=1.0):
    N, d = X.shape
    return hk.LagrangianEnergy(
        {"v": hk.Neurons(d, hk.IdentityLagrangian()),
         "h": hk.Neurons(N, hk.LogSumExpLagrangian(beta), tau=tau_h)},
        [(hk.DenseSynapse(X), ("h", "v"))])


def test_T14_model_B_is_the_modern_hopfield_energy(gen):
    X = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    E = _model_b(X)
    H = hk.HopfieldEnergy(X)
    v = torch.randn(20, 4, generator=gen, dtype=torch.float64) * 2
    state = E.join({"v": v, "h": v @ X.T})  # hidden neurons at equilibrium, h = X v
    diff = E(state, 1.0) - H(v, 1.0)
    assert torch.allclose(diff, diff[0].expand_as(diff), atol=1e-10)


def test_T13_model_B_euler_with_dt_tau_is_the_ramsauer_update(gen):
    X = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    E = _model_b(X)
    v = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    state = E.join({"v": v, "h": v @ X.T})
    step = state - 1.0 * E.descent_direction(state, 1.0)  # dt = τ_f = 1
    assert torch.allclose(E.split(step)["v"], hk.HopfieldEnergy(X).update(v, 1.0), atol=1e-12)


def _model_a(X):
    N, d = X.shape
    return hk.LagrangianEnergy(
        {"v": hk.Neurons(d, hk.TanhLagrangian()), "h": hk.Neurons(N, hk.ReLULagrangian(), tau=0.2)},
        [(hk.DenseSynapse(X), ("h", "v"))])


def _model_c(X):
    N, d = X.shape
    return hk.LagrangianEnergy(
        {"v": hk.Neurons(d, hk.SphericalLagrangian()), "h": hk.Neurons(N, hk.LogSumExpLagrangian(2.0), tau=0.5)},
        [(hk.DenseSynapse(X), ("h", "v"))])


@pytest.mark.parametrize("build", [_model_a, _model_b, _model_c])
def test_T13_energy_decreases_along_the_dynamics(build, gen):
    X = torch.randn(6, 5, generator=gen, dtype=torch.float64) / 2
    E = build(X)
    x0 = torch.randn(8, E.dim, generator=gen, dtype=torch.float64)
    # small explicit Euler steps: non-increasing up to O(dt²)
    run = hk.descend(E, x0, 1.0, method="gd", step_size=1e-3, steps=300, tol=0)
    assert run.monotone(rtol=1e-6, atol=1e-6)
    assert (run.energies[-1] < run.energies[0]).all()
    # the adaptive integrator is monotone outright
    ode = hk.descend(E, x0, 1.0, method="ode", steps=100, tol=0, options={"t_max": 5.0})
    assert ode.monotone()


def test_descent_direction_is_dE_dg(gen):
    X = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    E = _model_a(X)
    x = torch.randn(2, E.dim, generator=gen, dtype=torch.float64)
    # ∂E/∂x = H_L ∂E/∂g (chain rule through g = ∂L/∂x)
    gx = hk.autodiff_grad(E, x, 1.0)
    dg = E.grad_g(x, 1.0)
    parts = E.split(x)
    Hv = E.layers["v"].lagrangian.hessian(parts["v"])
    Hh = E.layers["h"].lagrangian.hessian(parts["h"])
    dgv, dgh = torch.split(dg, [3, 4], -1)
    expect = torch.cat([(Hv @ dgv.unsqueeze(-1)).squeeze(-1), (Hh @ dgh.unsqueeze(-1)).squeeze(-1)], -1)
    assert torch.allclose(gx, expect, atol=1e-10)


def test_hopfield_synapse_and_sum_energy(gen):
    mem = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    E = hk.LagrangianEnergy({"x": hk.Neurons(4, hk.LayerNormLagrangian(4))},
                            [(hk.HopfieldSynapse(mem, "relu2"), ("x",)), (hk.HopfieldSynapse(mem, "lse"), "x")]).double()
    x0 = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    run = hk.descend(E, x0, 1.0, method="ode", steps=60, tol=0)
    assert run.monotone() and (run.energies[-1] < run.energies[0]).all()
    # SumEnergy composes parts on one state
    quad = lambda x, b: 0.5 * (x * x).sum(-1)
    H = hk.HopfieldEnergy(mem)
    S = H + quad
    assert torch.allclose(S(x0, 1.0), H(x0, 1.0) + quad(x0, 1.0))
