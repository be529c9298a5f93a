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
    assert torch.allclose(hk.SoftmaxLagrangian(0.25).activation(x), torch.softmax(x / 0.25, -1))
    assert torch.allclose(hk.RectifiedPowerLagrangian(3.5).activation(x), torch.relu(x) ** 2.5)
    assert torch.allclose(hk.ExponentialLagrangian(0.7).activation(x), torch.exp(0.7 * x))
    assert torch.allclose(hk.SigmoidLagrangian(2.0).activation(x), torch.sigmoid(2.0 * x))
    ln = hk.LayerNormLagrangian(6, eps=1e-5, gamma=1.7).double()
    with torch.no_grad():
        ln.delta.copy_(torch.randn(6, generator=gen, dtype=torch.float64))
    ref = Fn.layer_norm(x, (6,), eps=1e-5) * 1.7 + ln.delta
    assert torch.allclose(ln.activation(x), ref, atol=1e-10)


@pytest.mark.parametrize("lag", [hk.IdentityLagrangian(), hk.LogSumExpLagrangian(1.5), hk.ReLULagrangian(),
                                 hk.TanhLagrangian(), hk.SphericalLagrangian(), hk.LayerNormLagrangian(5),
                                 hk.SoftmaxLagrangian(0.5), hk.RectifiedPowerLagrangian(3.0),
                                 hk.ExponentialLagrangian(0.5), hk.SigmoidLagrangian(2.0)])
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


def _conv_energy(gen, lag_hidden=None):
    """A feature map v [2, 6, 6] (identity neurons) and a hidden map h [3, 4, 4] joined by a 3x3
    convolution (HAMUX-style), with a bias current on v."""
    W = 0.3 * torch.randn(3, 2, 3, 3, generator=gen, dtype=torch.float64)
    return hk.LagrangianEnergy(
        {"v": hk.Neurons((2, 6, 6), hk.IdentityLagrangian()),
         "h": hk.Neurons((3, 4, 4), lag_hidden or hk.RectifiedPowerLagrangian(3.0), tau=0.5)},
        [(hk.ConvSynapse(W), ("v", "h"))]), W


def test_conv_synapse_gradients_are_the_convolution_and_its_transpose(gen):
    E, W = _conv_energy(gen)
    syn = E.synapses[0]
    gv = torch.randn(5, 2, 6, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    gh = torch.randn(5, 3, 4, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    dv, dh = torch.autograd.grad(syn(gv, gh).sum(), (gv, gh))
    assert torch.allclose(dv, -Fn.conv_transpose2d(gh, W), atol=1e-12)
    assert torch.allclose(dh, -Fn.conv2d(gv, W), atol=1e-12)
    with pytest.raises(ValueError, match="post layer must be"):
        syn(gv, gh[..., :3])


def test_shaped_neurons_split_join_and_descend_with_energy_falling_per_term(gen):
    E, _ = _conv_energy(gen, hk.SigmoidLagrangian(2.0))
    assert E.dim == 2 * 36 + 3 * 16
    x = torch.randn(4, E.dim, generator=gen, dtype=torch.float64)
    parts = E.split(x)
    assert parts["v"].shape == (4, 2, 6, 6) and parts["h"].shape == (4, 3, 4, 4)
    assert torch.equal(E.join(parts), x)
    terms = E.terms(x, 1.0)
    assert list(terms) == ["v", "h", "ConvSynapse(v, h)"]
    assert torch.allclose(sum(terms.values()), E(x, 1.0), atol=1e-12)
    run = hk.descend(E, x, 1.0, method="ode", steps=200, trajectory=True)
    assert run.monotone() and (run.energies[-1] < run.energies[0]).all()
    along = E.terms(run.trajectory, 1.0)                                 # [T + 1, 4] per term
    assert along["ConvSynapse(v, h)"].shape == run.energies.shape
    assert torch.allclose(sum(along.values()), run.energies, atol=1e-9)


def test_synapse_labels_are_numbered_when_they_repeat(gen):
    W = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    E = hk.LagrangianEnergy({"v": hk.Neurons(3, hk.TanhLagrangian())},
                            [(hk.DenseSynapse(W + W.T), ("v",)), (hk.DenseSynapse(W @ W.T), ("v",))])
    assert E.synapse_names() == ["DenseSynapse(v) #1", "DenseSynapse(v) #2"]


def test_shaped_neurons_reject_bad_shapes():
    with pytest.raises(ValueError, match="shape must be"):
        hk.Neurons((3, 0), hk.IdentityLagrangian())
    with pytest.raises(ValueError, match="n must be > 1"):
        hk.RectifiedPowerLagrangian(1.0)
    n = hk.Neurons((2, 3), hk.IdentityLagrangian())
    with pytest.raises(ValueError, match=r"\[\.\.\., 2, 3\]"):
        n.activation(torch.zeros(4, 6))
