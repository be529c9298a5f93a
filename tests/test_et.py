"""Energy Transformer energy: formulas against a loop-based evaluation, gradients, masking, descent."""
import math

import pytest
import torch

import hopfieldkit as hk

D64 = torch.float64


def make(hn="relu", exclude_self=True, seed=0, D=6, H=2, Y=3, K=5):
    torch.manual_seed(seed)
    E = hk.EnergyTransformerEnergy(D, H, Y, K, hn=hn, exclude_self=exclude_self, beta_hn=0.7,
                                   w_std=0.4, mem_std=0.4).double()
    with torch.no_grad():
        E.ln.gamma.fill_(1.3)
        E.ln.delta.copy_(torch.randn(D, dtype=D64) * 0.1)
    return E


def loop_energy(E, x, beta, mask=None):
    """The formulas of the ET energy (hopfieldkit/et.py) written out with Python loops over plain floats (one sample x [N, D])."""
    x = x.tolist()
    Wq, Wk, mem = E.Wq.tolist(), E.Wk.tolist(), E.memories.tolist()
    gamma, delta, eps = E.ln_gamma.item(), E.ln_delta.tolist(), E.eps
    N, D = len(x), len(x[0])
    g = []
    for A in range(N):
        mu = sum(x[A]) / D
        var = sum((v - mu) ** 2 for v in x[A]) / D
        g.append([gamma * (x[A][j] - mu) / math.sqrt(var + eps) + delta[j] for j in range(D)])
    on = [True] * N if mask is None else [bool(m) for m in mask]
    dot = lambda a, b: sum(u * v for u, v in zip(a, b))
    e_att = 0.0
    for h in range(E.heads):
        K = [[dot(Wk[h][a], g[B]) for a in range(E.head_dim)] for B in range(N)]
        Q = [[dot(Wq[h][a], g[C]) for a in range(E.head_dim)] for C in range(N)]
        for C in range(N):
            if not on[C]:
                continue
            terms = [beta * dot(K[B], Q[C]) for B in range(N) if on[B] and not (E.exclude_self and B == C)]
            if terms:
                e_att -= math.log(sum(math.exp(t) for t in terms)) / beta
    e_hn = 0.0
    for B in range(N):
        if not on[B]:
            continue
        z = [dot(m, g[B]) for m in mem]
        if E.hn_kind == "relu":
            e_hn -= 0.5 * sum(max(v, 0.0) ** 2 for v in z)
        else:
            e_hn -= math.log(sum(math.exp(E.beta_hn * v) for v in z)) / E.beta_hn
    return e_att + e_hn


@pytest.mark.parametrize("hn", ["relu", "softmax"])
@pytest.mark.parametrize("exclude_self", [True, False])
def test_energy_equals_loop_evaluation(hn, exclude_self):
    E = make(hn, exclude_self)
    x = torch.randn(2, 4, 6, dtype=D64)
    beta = 1 / math.sqrt(3)
    got = E(x)
    for s in range(2):
        assert got[s].item() == pytest.approx(loop_energy(E, x[s], beta), rel=1e-10, abs=1e-10)
    mask = torch.tensor([True, False, True, True])
    assert E(x[0], 0.9, mask).item() == pytest.approx(loop_energy(E, x[0], 0.9, mask), rel=1e-10)


def test_attributes_and_default_beta():
    E = make()
    assert E.Wq.shape == (2, 3, 6) and E.Wk.shape == (2, 3, 6) and E.memories.shape == (5, 6)
    assert E.ln_gamma.shape == () and E.ln_delta.shape == (6,) and E.eps == 1e-5
    x = torch.randn(3, 6, dtype=D64)
    assert torch.allclose(E(x), E(x, 1 / math.sqrt(3)))
    per_head = E(x, torch.tensor([0.5, 2.0], dtype=D64))
    assert per_head.shape == () and not torch.allclose(per_head, E(x, 0.5))


def test_activation_is_the_layernorm_lagrangian_gradient():
    E = make()
    x = torch.randn(3, 4, 6, dtype=D64)
    assert torch.allclose(E.activation(x), E.ln.activation(x), atol=1e-12)


@pytest.mark.parametrize("hn", ["relu", "softmax"])
def test_closed_form_gradients_match_autodiff(hn):
    E = make(hn)
    x = torch.randn(2, 5, 6, dtype=D64)
    assert torch.allclose(E.grad_g(x), E.grad_g_closed(x), atol=1e-12)
    mask = torch.tensor([True, True, False, True, False])
    assert torch.allclose(E.grad_g(x, mask=mask), E.grad_g_closed(x, mask=mask), atol=1e-12)


def test_gradient_wrt_x_is_the_chain_rule_through_layernorm():
    E = make()
    x = torch.randn(4, 6, dtype=D64)
    dx = hk.autodiff_grad(E, x, None)
    gE = E.grad_g(x)
    # vjp composition: ∂E/∂x_A = J_LN(x_A)ᵀ ∂E/∂g_A, with J from torch.func on one token
    J = torch.stack([torch.func.jacrev(lambda t: E.activation(t))(x[a]) for a in range(4)])
    assert torch.allclose(dx, torch.einsum("aij,ai->aj", J, gE), atol=1e-12)
    # and the layer-norm Hessian is symmetric PSD, so −∂E/∂g is a descent direction for E(x)
    H = E.ln.hessian(x)
    assert torch.linalg.eigvalsh(H).min() > -1e-10
    assert (dx * gE).sum() >= 0


def test_masked_tokens_do_not_affect_the_others():
    E = make()
    x = torch.randn(5, 6, dtype=D64)
    mask = torch.tensor([True, True, False, True, False])
    y = x.clone()
    y[2] = torch.randn(6, dtype=D64) * 5
    y[4] = torch.randn(6, dtype=D64) * 5
    assert torch.allclose(E(x, None, mask), E(y, None, mask), atol=1e-12)
    assert torch.allclose(E(x, None, mask), E(x[mask]), atol=1e-12)  # = the energy of the kept tokens alone
    assert not torch.allclose(E(x), E(y))
    g = E.grad_g(x, mask=mask)
    assert torch.all(g[~mask] == 0)


@pytest.mark.parametrize("hn", ["relu", "softmax"])
def test_energy_never_increases_along_the_block_random_weights(hn):
    for seed in range(5):
        E = make(hn, seed=seed)
        x = torch.randn(3, 7, 6, dtype=D64) * 2
        for alpha in (0.01, 0.1, 0.3):
            run = hk.et_block(E, x, alpha=alpha, steps=40)
            assert run.energies.shape == (41, 3)
            assert run.monotone(), (seed, alpha)
            assert (run.energies[-1] < run.energies[0]).all()
        ode = hk.et_block(E, x, alpha=0.1, steps=40, method="ode")
        assert ode.monotone()


def test_hopfield_terms_alone_decrease_for_every_step_size():
    """E^HN is concave in g and LN is a monotone map: any α lowers it (module docstring, fact (i))."""
    for hn in ("relu", "softmax"):
        E = make(hn)
        with torch.no_grad():
            E.Wq.zero_()
            E.Wk.zero_()  # attention energy now constant
        x = torch.randn(8, 5, 6, dtype=D64)
        for alpha in (1.0, 100.0, 1e4):
            assert hk.et_block(E, x, alpha=alpha, steps=20).monotone(), (hn, alpha)


def test_attention_energy_monotone_in_the_documented_range():
    """Attention alone needs α·γ/σ ≤ 1 (fact (ii)); tokens of scale σ = 0.01 need α ≤ 0.01."""
    torch.manual_seed(0)
    E = hk.EnergyTransformerEnergy(16, 2, 4, torch.zeros(1, 16), w_std=0.1).double()
    for sigma in (1.0, 0.01):
        x = torch.randn(16, 8, 16, dtype=D64) * sigma
        run = hk.et_block(E, x, alpha=1.0 * sigma / E.ln_gamma.item(), steps=30)
        assert run.monotone(), sigma


def test_block_with_mask_and_paper_size_init():
    E = hk.EnergyTransformerEnergy(16, 4, 8, 32)  # the paper's initialisation scales
    x = torch.randn(2, 9, 16)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[:, -2:] = False
    run = hk.et_block(E, x, alpha=0.1, steps=12, mask=mask, trajectory=True)
    assert run.monotone()
    assert torch.equal(run.xi[:, -2:], x[:, -2:])  # masked tokens receive no update


@pytest.mark.parametrize("call, exc, match", [
    (lambda E: E(torch.randn(3, 5, dtype=D64)), ValueError, r"x must have shape \[..., N, 6\]"),
    (lambda E: E(torch.randn(6, dtype=D64)), ValueError, "at least 2 dimension"),
    (lambda E: E(torch.randn(3, 6, dtype=D64), 0.0), ValueError, "beta must be positive"),
    (lambda E: E(torch.randn(3, 6, dtype=D64), -1.0), ValueError, "beta must be positive"),
    (lambda E: E(torch.randn(3, 6, dtype=D64), torch.ones(3, dtype=D64)), ValueError, "one per head"),
    (lambda E: E(torch.randn(3, 6, dtype=D64), None, torch.ones(4, dtype=torch.bool)), ValueError, "one flag per token"),
    (lambda E: hk.et_block(E, torch.randn(3, 6, dtype=D64), alpha=0.0), ValueError, "alpha must be finite and > 0"),
    (lambda E: hk.et_block(E, torch.randn(3, 6, dtype=D64), alpha=-0.1), ValueError, "alpha must be finite and > 0"),
    (lambda E: hk.EnergyTransformerEnergy.from_weights(torch.randn(2, 3, 6), torch.randn(3, 2, 6), torch.randn(4, 6)),
     ValueError, "H·Y mismatch"),
    (lambda E: hk.EnergyTransformerEnergy(6, 2, 3, torch.randn(4, 5)), ValueError, r"memories must have shape \[K, 6\]"),
    (lambda E: hk.EnergyTransformerEnergy(6, 2, 3, 4, hn="gelu"), ValueError, "hn must be"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call(make())


def test_in_the_full_energy_the_hopfield_part_alone_can_rise():
    """Fact (i) holds for an energy of Hopfield terms alone; in the full energy the step follows the
    gradient of the sum, and the Hopfield part rises on some steps while the total falls. The
    module docstring says so (it used to claim the Hopfield terms fall for every α)."""
    torch.manual_seed(0)
    E = hk.EnergyTransformerEnergy(32, 4, 8, 64, w_std=0.5, mem_std=0.5).double()
    x = torch.randn(8, 16, 32, dtype=D64)
    run = hk.et_block(E, x, alpha=0.1, steps=40, trajectory=True)
    assert run.monotone()
    hn = E.hopfield_energy(E.activation(run.trajectory))
    rose = (hn[1:] - hn[:-1]) > 1e-9 * hn[:-1].abs()
    assert rose.any()
    import hopfieldkit.et as et_module
    doc = " ".join(et_module.__doc__.split())
    assert "the Hopfield part alone can rise while the total falls" in doc
    assert "decreases for EVERY α" not in doc
