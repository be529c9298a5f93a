"""The Hopfield energy of [R]: its closed forms against autodiff, the CCCP step, bounds, stability."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import hessian

import hopfieldkit as hk
from hopfieldkit import theory
from conftest import sphere_patterns


def test_energy_matches_direct_formula(gen):
    X = torch.randn(7, 5, generator=gen, dtype=torch.float64)
    xi = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    beta = 0.7
    M = X.norm(dim=-1).max()
    direct = torch.stack([
        -torch.log(torch.exp(beta * (X @ x)).sum()) / beta + 0.5 * x @ x + math.log(7) / beta + 0.5 * M**2
        for x in xi])
    assert torch.allclose(hk.HopfieldEnergy(X)(xi, beta), direct, atol=1e-12)


def test_T1_update_never_raises_energy(gen):
    for trial in range(50):
        N, d = torch.randint(2, 30, (2,), generator=gen).tolist()
        beta = float(10 ** (torch.rand(1, generator=gen) * 4 - 2))
        X = torch.randn(N, d, generator=gen, dtype=torch.float64) * float(torch.rand(1, generator=gen) * 3 + 0.1)
        E = hk.HopfieldEnergy(X)
        xi = torch.randn(8, d, generator=gen, dtype=torch.float64) * 2
        e = E(xi, beta)
        for _ in range(20):
            xi = E.update(xi, beta)
            e_new = E(xi, beta)
            assert (e_new <= e + 1e-12 * e.abs().clamp_min(1)).all(), (trial, beta)
            e = e_new


def test_T2_update_is_unit_gradient_step(gen):
    X = torch.randn(12, 6, generator=gen, dtype=torch.float64)
    E = hk.HopfieldEnergy(X)
    xi = torch.randn(10, 6, generator=gen, dtype=torch.float64)
    g = hk.autodiff_grad(E, xi, 1.3)
    assert torch.allclose(E.update(xi, 1.3), xi - g, atol=1e-10)
    assert torch.allclose(E.grad(xi, 1.3), g, atol=1e-12)
    one_gd = hk.descend(E, xi, 1.3, method="gd", step_size=1.0, steps=1, tol=0)
    assert torch.allclose(one_gd.xi, E.update(xi, 1.3), atol=1e-12)


def test_T3_sandwich_and_nonnegativity(gen):
    for _ in range(30):
        X = torch.randn(9, 4, generator=gen, dtype=torch.float64) * 2
        xi = torch.randn(50, 4, generator=gen, dtype=torch.float64) * 4
        beta = float(10 ** (torch.rand(1, generator=gen) * 4 - 2))
        e = hk.HopfieldEnergy(X)(xi, beta)
        lo, hi = theory.sandwich_bounds(X, xi, beta)
        tol = 1e-9 * e.abs().clamp_min(1)
        assert (e >= -tol).all()
        assert (lo <= e + tol).all() and (e <= hi + tol).all()


def test_T4_hull_upper_bound_along_iterates(gen):
    for _ in range(30):
        X = torch.randn(6, 5, generator=gen, dtype=torch.float64) * 1.5
        beta = float(10 ** (torch.rand(1, generator=gen) * 3 - 1.5))
        E = hk.HopfieldEnergy(X)
        bound = theory.hull_upper_bound(X, beta)
        p = torch.distributions.Dirichlet(torch.ones(6, dtype=torch.float64)).sample((40,))
        assert (E(p @ X, beta) <= bound + 1e-10).all()
        run = hk.descend(E, torch.randn(20, 5, generator=gen, dtype=torch.float64) * 5, beta, steps=20, tol=0)
        assert (run.energies[1:] <= bound + 1e-10).all()


def test_T5_hessian_and_jacobian_closed_forms(gen):
    X = torch.randn(8, 5, generator=gen, dtype=torch.float64)
    E = hk.HopfieldEnergy(X)
    for beta in (0.1, 1.0, 5.0):
        xi = torch.randn(5, generator=gen, dtype=torch.float64)
        H_auto = hessian(lambda x: E(x, beta))(xi)
        assert torch.allclose(E.hessian(xi, beta), H_auto, atol=1e-10)
        J = E.jacobian(xi, beta)
        assert torch.allclose(J, J.T, atol=1e-12)
        ev = torch.linalg.eigvalsh(J)
        assert ev.min() >= -1e-10
        assert ev.max() <= beta * torch.linalg.matrix_norm(X, ord=2) ** 2 / 2 + 1e-10
        J_auto = torch.func.jacrev(lambda x: E.update(x, beta))(xi)
        assert torch.allclose(J, J_auto, atol=1e-10)


def test_T15_update_equals_scaled_dot_product_attention(gen):
    X = torch.randn(20, 16, generator=gen, dtype=torch.float64)
    xi = torch.randn(3, 7, 16, generator=gen, dtype=torch.float64)
    beta = 0.37
    sdpa = F.scaled_dot_product_attention(xi, X.expand(3, 20, 16), X.expand(3, 20, 16), scale=beta)
    assert torch.allclose(hk.HopfieldEnergy(X).update(xi, beta), sdpa, atol=1e-12)


def test_tensor_beta_broadcasts_per_state(gen):
    X = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    E = hk.HopfieldEnergy(X)
    xi = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    betas = torch.tensor([0.5, 1.0, 4.0], dtype=torch.float64)
    together = E(xi, betas)
    apart = torch.stack([E(xi[i], float(betas[i])) for i in range(3)])
    assert torch.allclose(together, apart, atol=1e-12)
    assert torch.allclose(E.update(xi, betas), torch.stack([E.update(xi[i], float(betas[i])) for i in range(3)]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numerical_stability_large_beta_and_norms(dtype, gen):
    X = sphere_patterns(16, 32, 1e3, gen).to(dtype)
    E = hk.HopfieldEnergy(X)
    xi = (X[:4] + torch.randn(4, 32, generator=gen, dtype=torch.float64).to(dtype) * 50)
    for beta in (1e-4, 1.0, 1e4):
        e = E(xi, beta)
        g = hk.autodiff_grad(E, xi, beta)
        u = E.update(xi, beta)
        for t in (e, g, u):
            assert torch.isfinite(t).all(), (dtype, beta)
    # at β = 1e4 the noisy patterns are retrieved exactly
    assert torch.allclose(E.update(xi, 1e4), X[:4], rtol=1e-5, atol=1e-3 if dtype == torch.float32 else 1e-9)


def test_patterns_with_grad_receive_gradients(gen):
    X = torch.randn(5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    E = hk.HopfieldEnergy(X)
    E(torch.randn(2, 3, dtype=torch.float64), 1.0).sum().backward()
    assert X.grad is not None and torch.isfinite(X.grad).all()


def test_low_rank_prior_energy_on_a_sphere_is_a_cosine_read(gen):
    """radius=ρ: every attractor has norm ρ, the scores are ρ‖ξ‖cos(ξ, Y_i), and the update still
    never raises the energy; a radius that is not a positive number is refused by name."""
    E = hk.LowRankPriorEnergy(6, 3, 16, radius=4.0).double()
    Y, xi = E.patterns, torch.randn(5, 16, generator=gen, dtype=torch.float64)
    assert torch.allclose(Y.norm(dim=-1), torch.full((6,), 4.0, dtype=torch.float64))
    Yp = E.f_LT(E.priors)
    cos = torch.nn.functional.cosine_similarity(xi.unsqueeze(1), Yp.unsqueeze(0), dim=-1)
    assert torch.allclose(E.scores(xi), 4.0 * xi.norm(dim=-1, keepdim=True) * cos, atol=1e-12)
    run = hk.descend(E, xi, 0.5, method="update", steps=10, tol=0)
    assert run.monotone()
    assert torch.allclose(E.attractors(E.priors), Y)
    for bad in (0, -1.0, float("inf"), True, "8"):
        with pytest.raises(ValueError, match="radius must be a positive finite number"):
            hk.LowRankPriorEnergy(6, 3, 16, radius=bad)


def test_low_rank_prior_energy_is_hopfield_on_upscaled_priors():
    torch.manual_seed(0)
    E = hk.LowRankPriorEnergy(num_priors=10, rank=3, dim=16).double()
    Y = E.patterns
    assert Y.shape == (10, 16)
    assert torch.linalg.matrix_rank(Y - E.f_LT.bias) <= 3
    xi = torch.randn(4, 16, dtype=torch.float64)
    ref = hk.HopfieldEnergy(Y.detach())
    assert torch.allclose(E(xi, 1.0), ref(xi, 1.0), atol=1e-12)
    assert torch.allclose(E.update(xi, 1.0), ref.update(xi, 1.0), atol=1e-12)
    # gradients reach f_LT through a descent (AiT trains through the read)
    run = hk.descend(E, xi, 1.0, method="update", steps=3, tol=0, record=False)
    run.xi.sum().backward()
    assert E.f_LT.weight.grad is not None and E.f_LT.weight.grad.abs().sum() > 0
    # set_priors swaps in the memory of the current step
    new = torch.randn(10, 3, dtype=torch.float64)
    E.set_priors(new)
    assert torch.allclose(E.patterns, E.f_LT(new))
    with pytest.raises(ValueError, match="priors must have shape"):
        E.set_priors(torch.randn(9, 3, dtype=torch.float64))


def test_nested_sums_keep_every_part(gen):
    """((E + f) + E)(ξ) − 2E(ξ) = f(ξ): a plain-callable part of an inner sum was dropped before."""
    X = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    E = hk.HopfieldEnergy(X)
    lam = lambda x, b: (x ** 4).sum(-1)                       # noqa: E731
    xi = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    for S in ((E + lam) + E, E + (lam + E), hk.SumEnergy(hk.SumEnergy(lam, E), hk.SumEnergy(E))):
        assert torch.allclose(S(xi, 0.7) - 2 * E(xi, 0.7), lam(xi, 0.7), atol=1e-12)
        ref = torch.func.grad(lambda y: (2 * E(y, 0.7) + lam(y, 0.7)).sum())(xi)
        assert torch.allclose(S.grad(xi, 0.7), ref, atol=1e-12)
