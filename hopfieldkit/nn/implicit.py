"""Backward through a fixed point by implicit differentiation (deep-equilibrium style).

At a fixed point ξ* = f(ξ*) of the update f(ξ) = softmax(β ξKᵀ)K, a loss ℓ(ξ*) has

    dℓ/dθ = (∂f/∂θ)ᵀ u,    (I − J)ᵀ u = ∂ℓ/∂ξ*,    J = ∂f/∂ξ = β Kᵀ(diag p − ppᵀ)K

for every θ that f depends on (the keys, β). J is symmetric and positive semi-definite, and
I − J = ∇²E is positive definite at a stable fixed point (a minimum of the energy), so u comes
from conjugate gradients with J applied matrix-free (:meth:`HopfieldEnergy.jacobian_vector`).
The forward steps run without a graph; one step f(ξ*) is recorded and its incoming gradient
replaced by u, so memory is that of one step whatever the number of steps.

ξ* does not depend on where the descent started (only on which basin it started in), so the
states' own inputs (the query projection) get no gradient through an implicit association.
"""
from __future__ import annotations

import torch

from ..hopfield import HopfieldEnergy

CG_TOL = {torch.float64: 1e-12, torch.float32: 1e-6}


def attach_fixed_point(energy: HopfieldEnergy, xi_star: torch.Tensor, beta) -> torch.Tensor:
    """f(ξ*) with the graph of one step, whose gradient is the implicit one."""
    xi_star = xi_star.detach()
    z = energy.update(xi_star, beta)
    if not z.requires_grad:
        return z
    b = beta.detach() if isinstance(beta, torch.Tensor) else beta
    fixed = HopfieldEnergy(energy.patterns.detach(), energy.mask)
    with torch.no_grad():
        p = fixed.weights(xi_star, b)

    def adjoint(grad: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return solve_adjoint(lambda v: fixed.jacobian_vector(xi_star, v, b, weights=p), grad)

    z.register_hook(adjoint)
    return z


def solve_adjoint(jv, g: torch.Tensor, tol: float | None = None, max_iter: int | None = None) -> torch.Tensor:
    """u with (I − J)u = g for every state (last axis) by conjugate gradients; J symmetric PSD.

    Stops when ‖g − (I − J)u‖ ≤ tol·‖g‖ for every state; an indefinite system (a state not at a
    stable fixed point) or no convergence within ``max_iter`` (default 2d + 10) is an error."""
    tol = CG_TOL.get(g.dtype, 1e-4) if tol is None else tol
    max_iter = 2 * g.shape[-1] + 10 if max_iter is None else max_iter
    u = torch.zeros_like(g)
    r = g.clone()
    d = r.clone()
    rs = (r * r).sum(-1, keepdim=True)
    target = tol * tol * rs
    for _ in range(max_iter):
        active = rs > target
        if not bool(active.any()):
            return u
        Ad = d - jv(d)
        curv = (d * Ad).sum(-1, keepdim=True)
        if bool((active & (curv <= 0)).any()):
            raise RuntimeError("implicit differentiation needs I - J positive definite (a stable fixed point, "
                               "a minimum of the energy), but a state sits where it is not; use implicit=False "
                               "(unrolled steps) or a smaller beta")
        alpha = torch.where(active, rs / torch.where(active, curv, torch.ones_like(curv)), torch.zeros_like(rs))
        u = u + alpha * d
        r = r - alpha * Ad
        rs_new = (r * r).sum(-1, keepdim=True)
        d = r + torch.where(active, rs_new / torch.where(active, rs, torch.ones_like(rs)), torch.zeros_like(rs)) * d
        rs = rs_new
    if bool((rs > target).any()):
        raise RuntimeError(f"implicit differentiation: conjugate gradients did not reach tol={tol:g} within "
                           f"{max_iter} iterations (I - J is nearly singular: a state near a saddle or a "
                           "metastable plateau); use implicit=False or a smaller beta")
    return u
