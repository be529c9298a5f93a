"""hopfieldkit.bayes: attention as structural inference, checked against brute force and the standard layers."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import hopfieldkit as hk
from hopfieldkit import bayes as B

D64 = torch.float64


def rnd(*shape, gen):
    return torch.randn(*shape, generator=gen, dtype=D64)


PRIORS = {
    "none": lambda m, n, gen: None,
    "causal": lambda m, n, gen: B.priors.causal(m, n, dtype=D64),
    "alibi": lambda m, n, gen: B.priors.alibi(m, n, 0.7, dtype=D64),
    "geometric": lambda m, n, gen: B.priors.geometric(m, n, 0.4, dtype=D64),
    "tensor": lambda m, n, gen: rnd(m, n, gen=gen),
    "padding": lambda m, n, gen: B.priors.padding(torch.arange(n) == n - 1, dtype=D64) if n > 1 else None,
}


@pytest.mark.parametrize("constraint", ["row", "column"])
@pytest.mark.parametrize("prior", list(PRIORS))
@pytest.mark.parametrize("potential", ["dot", "gaussian", "additive"])
def test_brute_force_marginals_evidence_entropy_and_outputs(constraint, prior, potential, gen):
    for m, n in [(1, 3), (2, 3), (3, 3), (4, 2), (3, 4)]:
        if constraint == "column" and prior in ("causal", "geometric") and m > n:
            continue  # a causal prior leaves some keys with no admissible slot when m > n... skip shapes that forbid
        q, k, v = rnd(m, 3, gen=gen), rnd(n, 3, gen=gen), rnd(n, 2, gen=gen)
        lp = PRIORS[prior](m, n, gen)
        if lp is not None and torch.isneginf(lp).all(dim=-1 if constraint == "row" else -2).any():
            continue
        w = rnd(3, gen=gen) if potential == "additive" else None
        kw = dict(constraint=constraint, log_prior=lp, potential=potential, sigma=0.8, w=w)
        post = B.posterior(q, k, **kw)
        bf = B.brute_force(q, k, **kw)
        assert torch.allclose(post.marginals, bf.marginals, atol=1e-12)
        assert torch.allclose(post.log_evidence, bf.log_evidence, atol=1e-10)
        assert torch.allclose(post.entropy, bf.entropy, atol=1e-10)
        out = B.attention(q, k, v, **kw)
        assert torch.allclose(out, bf.expectation(lambda E: E @ v), atol=1e-12)
        # the probability of each structure
        assert torch.allclose(torch.exp(post.log_prob(bf.structures)), bf.probs, atol=1e-12)


def test_brute_force_multihop_with_independent_hops(gen):
    n = 3
    q, k, v = rnd(n, 2, gen=gen), rnd(n, 2, gen=gen), rnd(n, 2, gen=gen)
    bf = B.brute_force(q, k, log_prior=B.priors.alibi(n, n, 0.3, dtype=D64))
    # E[(E⁰ + E¹ + E¹E²) v]/3 with E¹, E² independent draws from the posterior
    exp = torch.zeros(n, 2, dtype=D64)
    for (p1, E1), (p2, E2) in itertools.product(zip(bf.probs, bf.structures), repeat=2):
        exp += p1 * p2 * (v + E1 @ v + E1 @ E2 @ v) / 3
    out = B.attention(q, k, v, log_prior=B.priors.alibi(n, n, 0.3, dtype=D64), value_fn="multihop(2)")
    assert torch.allclose(out, exp, atol=1e-12)
    A = B.posterior(q, k, log_prior=B.priors.alibi(n, n, 0.3, dtype=D64)).marginals
    assert torch.allclose(out, (v + A @ v + A @ A @ v) / 3, atol=1e-12)


def test_self_and_cross_attention_equal_sdpa_with_masks(gen):
    q, k, v = rnd(2, 3, 5, 4, gen=gen), rnd(2, 3, 6, 4, gen=gen), rnd(2, 3, 6, 3, gen=gen)
    assert torch.allclose(B.attention(q, k, v), F.scaled_dot_product_attention(q, k, v), atol=1e-12)
    bool_mask = torch.rand(5, 6, generator=gen) > 0.3
    bool_mask[:, 0] = True
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=bool_mask)
    assert torch.allclose(B.attention(q, k, v, log_prior=B.priors.from_mask(bool_mask, dtype=D64)), ref, atol=1e-12)
    float_mask = rnd(5, 6, gen=gen)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=float_mask)
    assert torch.allclose(B.attention(q, k, v, log_prior=float_mask), ref, atol=1e-12)
    qs = rnd(2, 3, 6, 4, gen=gen)
    ref = F.scaled_dot_product_attention(qs, k, v, is_causal=True)
    assert torch.allclose(B.attention(qs, k, v, log_prior=B.priors.causal(6, dtype=D64)), ref, atol=1e-12)
    ref = F.scaled_dot_product_attention(q, k, v, scale=0.3)
    assert torch.allclose(B.attention(q, k, v, scale=0.3), ref, atol=1e-12)


def _copy_mha(mha: torch.nn.MultiheadAttention, mod: B.StructuralAttention):
    E = mha.embed_dim
    with torch.no_grad():
        if mha._qkv_same_embed_dim:
            Wq, Wk, Wv = mha.in_proj_weight.split(E)
        else:
            Wq, Wk, Wv = mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight
        bq, bk, bv = mha.in_proj_bias.split(E)
        for lin, W, b in ((mod.to_q, Wq, bq), (mod.to_k, Wk, bk), (mod.to_v, Wv, bv)):
            lin.weight.copy_(W)
            lin.bias.copy_(b)
        mod.to_out.weight.copy_(mha.out_proj.weight)
        mod.to_out.bias.copy_(mha.out_proj.bias)


def test_multihead_module_equals_torch_multihead_attention(gen):
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True).double().eval()
    mod = B.self_attention(8, 2).double()
    _copy_mha(mha, mod)
    x = rnd(3, 5, 8, gen=gen)
    pad = torch.zeros(3, 5, dtype=torch.bool)
    pad[0, -2:] = True
    mask = torch.rand(5, 5, generator=gen) > 0.2
    mask.fill_diagonal_(True)
    ref, _ = mha(x, x, x, key_padding_mask=pad, attn_mask=~mask, need_weights=False)  # torch: True = blocked
    out = mod(x, key_padding_mask=pad, attn_mask=mask)
    assert torch.allclose(out, ref, atol=1e-12)
    causal = B.self_attention(8, 2, causal=True).double()
    _copy_mha(mha, causal)
    ref, _ = mha(x, x, x, attn_mask=torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=D64),
                 need_weights=False)
    assert torch.allclose(causal(x), ref, atol=1e-12)


def test_cross_attention_equals_torch(gen):
    torch.manual_seed(1)
    mha = torch.nn.MultiheadAttention(8, 4, kdim=6, vdim=6, batch_first=True).double().eval()
    mod = B.cross_attention(8, 6, 4).double()
    _copy_mha(mha, mod)
    x, ctx = rnd(2, 3, 8, gen=gen), rnd(2, 7, 6, gen=gen)
    ref, _ = mha(x, ctx, ctx, need_weights=False)
    assert torch.allclose(mod(x, ctx), ref, atol=1e-12)


def test_inducing_point_attention_equals_sdpa(gen):
    torch.manual_seed(2)
    ipa = B.InducingPointAttention(6, num_latents=4, heads=2).double()
    x = rnd(3, 9, 6, gen=gen)
    a = ipa.attend
    lat = ipa.latents.expand(3, -1, -1)
    split = lambda t: t.reshape(3, -1, 2, 3).transpose(1, 2)
    ref = F.scaled_dot_product_attention(split(a.to_q(lat)), split(a.to_k(x)), split(a.to_v(x)))
    ref = a.to_out(ref.transpose(1, 2).reshape(3, 4, 6))
    out = ipa(x)
    assert out.shape == (3, 4, 6) and torch.allclose(out, ref, atol=1e-12)


def _gmm_loglik(x, mu, sigma):
    # log Σ_i (1/m) N(x_j; μ_i, σ²I), summed over j
    d = x.shape[-1]
    sq = torch.cdist(x, mu) ** 2
    return (torch.logsumexp(-sq / (2 * sigma**2), -1) - math.log(mu.shape[0])
            - 0.5 * d * math.log(2 * math.pi * sigma**2)).sum()


def test_slot_attention_is_gmm_em_and_likelihood_never_decreases(gen):
    x = torch.cat([rnd(20, 2, gen=gen) * 0.3 + c for c in (torch.tensor([3.0, 0]), torch.tensor([-3.0, 1]),
                                                           torch.tensor([0.0, -3]))]).to(D64)
    slots0 = rnd(3, 2, gen=gen)
    mod = B.SlotAttentionEM(2, 3, iters=15, sigma=0.7).double()
    trace = mod(x, slots=slots0, return_trace=True)
    # the reference slot-attention loop (no GRU, no MLP, no LayerNorm, no epsilon)
    s = slots0.clone()
    ll = []
    for _ in range(15):
        ll.append(_gmm_loglik(x, s, 0.7))
        logits = -torch.cdist(s, x) ** 2 / (2 * 0.7**2)       # [slots, inputs]
        attn = torch.softmax(logits, dim=0)                  # softmax over slots
        attn = attn / attn.sum(dim=1, keepdim=True)          # weighted mean over inputs
        s = attn @ x
    assert torch.allclose(trace.q, s, atol=1e-10)
    ll = torch.stack(ll)
    assert (ll[1:] >= ll[:-1] - 1e-9).all()
    # the posterior's log-evidence is the mixture log-likelihood up to a constant
    diff = trace.log_evidence - ll
    assert torch.allclose(diff, diff[0].expand_as(diff), atol=1e-9)


def test_hopfield_as_em_equals_cccp_iterates(gen):
    X = rnd(10, 6, gen=gen)
    xi = rnd(4, 6, gen=gen)
    E = hk.HopfieldEnergy(X)
    ref = xi
    for t in range(1, 6):
        ref = E.update(ref, 2.5)
        assert torch.allclose(B.hopfield_attention(xi, X, 2.5, iters=t), ref, atol=1e-12)
    # the same as a gaussian potential with σ² = 1/β and prior log π_j = ½β‖x_j‖² (the mixture of [R] A.1.9)
    lp = 0.5 * 2.5 * (X * X).sum(-1)
    alt = B.attention(xi, X, X, potential="gaussian", sigma=2.5 ** -0.5, log_prior=lp, m_step="mean", iters=5)
    assert torch.allclose(alt, ref, atol=1e-10)


def test_topk_hard_and_workspace(gen):
    q, k, v = rnd(5, 4, gen=gen), rnd(8, 4, gen=gen), rnd(8, 3, gen=gen)
    post = B.posterior(q, k)
    W = B.TopK(3).weights(post)
    assert ((W > 0).sum(-1) == 3).all() and torch.allclose(W.sum(-1), torch.ones(5, dtype=D64))
    idx = post.logits.topk(3, -1).indices
    ref = torch.zeros_like(W).scatter_(-1, idx, torch.softmax(post.logits.gather(-1, idx), -1))
    assert torch.allclose(W, ref, atol=1e-12)
    W_raw = B.TopK(3, renormalize=False).weights(post)
    assert torch.allclose(W_raw.sum(-1), post.marginals.gather(-1, idx).sum(-1))
    for mode, dense in ((B.TopK(3), W), (B.TopK(3, renormalize=False), W_raw)):   # the sparse form
        w, index = mode.select(post)
        assert w.shape == index.shape == (5, 3)
        assert torch.allclose(torch.zeros_like(dense).scatter(-1, index, w), dense, atol=1e-12)
    hard = B.attention(q, k, v, inference="map")
    assert torch.allclose(hard, v[post.logits.argmax(-1)])
    assert torch.allclose(B.workspace_write(q, k, 3), W @ k, atol=1e-12)
    assert torch.allclose(B.workspace_broadcast(k, q), F.scaled_dot_product_attention(k, q, q), atol=1e-12)
    mod = B.topk_attention(4, 2, heads=2).double()
    assert mod(rnd(2, 5, 4, gen=gen)).shape == (2, 5, 4)


def test_learned_bias_prior(gen):
    torch.manual_seed(0)
    mod = B.StructuralAttention(4, 2, learned_bias=(5, 5)).double()
    plain = B.StructuralAttention(4, 2).double()
    plain.load_state_dict({k: v for k, v in mod.state_dict().items() if not k.startswith("bias_prior")})
    x = rnd(2, 5, 4, gen=gen)
    assert torch.allclose(mod(x), plain(x), atol=1e-12)  # zero bias = uniform prior
    mod(x).square().sum().backward()
    assert mod.bias_prior.bias.grad.abs().sum() > 0
    with torch.no_grad():
        mod.bias_prior.bias.copy_(B.priors.causal(5, dtype=D64).clamp_min(-1e4))
    causal = B.StructuralAttention(4, 2, causal=True).double()
    causal.load_state_dict(plain.state_dict())
    assert torch.allclose(mod(x), causal(x), atol=1e-10)


def test_map_gradients_pass_straight_through(gen):
    q = rnd(3, 4, gen=gen).requires_grad_()
    k, v = rnd(5, 4, gen=gen), rnd(5, 2, gen=gen)
    g_map = torch.autograd.grad(B.attention(q, k, v, inference="map").sum(), q)[0]
    g_marg = torch.autograd.grad(B.attention(q, k, v).sum(), q)[0]
    assert torch.allclose(g_map, g_marg)


def test_free_energy_is_minimised_by_the_marginals(gen):
    q, k = rnd(3, 4, gen=gen), rnd(5, 4, gen=gen)
    for constraint in ("row", "column"):
        post = B.posterior(q, k, constraint=constraint, log_prior=rnd(3, 5, gen=gen))
        F0 = post.free_energy()
        assert torch.allclose(F0, -post.log_evidence, atol=1e-12)
        axis = post.axis
        for _ in range(200):
            noise = torch.distributions.Dirichlet(torch.ones(5 if axis == -1 else 3, dtype=D64)).sample(
                (3,) if axis == -1 else (5,))
            noise = noise if axis == -1 else noise.T
            t = float(torch.rand(1, generator=gen))
            qd = (1 - t) * post.marginals + t * noise
            assert post.free_energy(qd) >= F0 - 1e-12


def test_sparsemax_and_topk_from_the_free_energy(gen):
    from scipy.optimize import minimize

    s = rnd(6, gen=gen) * 2
    # replace −H(q) by ½‖q‖²: the minimiser on the simplex is sparsemax
    obj = lambda q: -(q @ s.numpy()) + 0.5 * (q @ q)
    res = minimize(obj, torch.full((6,), 1 / 6).numpy(), method="SLSQP", bounds=[(0, 1)] * 6,
                   constraints=[{"type": "eq", "fun": lambda q: q.sum() - 1}], options={"ftol": 1e-14})
    sp = B.sparsemax(s)
    assert torch.allclose(sp, torch.tensor(res.x, dtype=D64), atol=1e-6)
    assert (sp == 0).any() and sp.sum().item() == pytest.approx(1.0)
    # restricting the support to the top k: the minimiser of F on that face is the renormalised softmax
    post = B.posterior(rnd(1, 3, gen=gen), rnd(6, 3, gen=gen))
    Wk = B.TopK(2).weights(post)
    support = Wk[0] > 0
    best = None
    for t in torch.linspace(0.001, 0.999, 999, dtype=D64):
        qd = torch.zeros(1, 6, dtype=D64)
        qd[0, support] = torch.stack([t, 1 - t])
        f = post.free_energy(qd)
        best = f if best is None else torch.minimum(best, f)
    assert post.free_energy(Wk) <= best + 1e-9
    assert post.free_energy(Wk) >= post.free_energy() - 1e-12


def test_gradients_flow_in_every_mode(gen):
    q, k, v = rnd(3, 4, gen=gen).requires_grad_(), rnd(4, 4, gen=gen).requires_grad_(), rnd(4, 2, gen=gen).requires_grad_()
    for inf in ("marginal", "topk(2)", "topk(2, renormalize=False)"):
        assert torch.autograd.gradcheck(lambda a, b, c: B.attention(a, b, c, inference=inf), (q, k, v))
    assert torch.autograd.gradcheck(lambda a, b, c: B.attention(a, b, c, constraint="column", potential="gaussian"), (q, k, v))
    assert torch.autograd.gradcheck(lambda a, b: B.attention(a, b, b, m_step="mean", iters=3), (q, k))
    qs = rnd(4, 4, gen=gen).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b, c: B.attention(a, b, c, value_fn="multihop(2)"), (qs, k, v))

    def sampled(a, b, c):
        return B.attention(a, b, c, inference=B.Sample(0.5, generator=torch.Generator().manual_seed(3)))
    assert torch.autograd.gradcheck(sampled, (q, k, v))
    for inf in ("map", B.Sample(0.5, hard=True, generator=torch.Generator().manual_seed(0))):
        g = torch.autograd.grad(B.attention(q, k, v, inference=inf).sum(), (q, k, v))
        assert all(torch.isfinite(t).all() and t.abs().sum() > 0 for t in g)


def test_structure_samples_match_marginals():
    gen = torch.Generator().manual_seed(0)
    post = B.posterior(rnd(2, 3, gen=gen), rnd(4, 3, gen=gen))
    samples = post.sample(20000, generator=gen)
    assert samples.shape == (20000, 2, 4) and torch.equal(samples.sum(-1), torch.ones(20000, 2, dtype=D64))
    assert torch.allclose(samples.mean(0), post.marginals, atol=0.015)
    assert torch.equal(post.map(), F.one_hot(post.logits.argmax(-1), 4).to(D64))


def test_expanding_attention_grows_its_window_towards_older_relevant_keys():
    """Relevant keys at distances 3..25 (the newest three are noise): the attention's mean distance
    exceeds the prior mean, so the window grows; it stops once the two agree."""
    gen = torch.Generator().manual_seed(0)
    n, d = 60, 8
    u = rnd(d, gen=gen)
    u = u / u.norm()
    keys = rnd(n, d, gen=gen) * 0.5
    keys[n - 1 - 25: n - 3] = u + 0.05 * rnd(23, d, gen=gen)
    res = B.expanding_attention((3.0 * u).unsqueeze(0), keys, keys, scale=1.0)
    first, final = int(res.windows[0][0]), int(res.window[0])
    assert first == 4 and final >= 10, (first, final)
    assert res.iters < 50, "the window must stop growing"
    assert all(int(b[0]) >= int(a[0]) for a, b in zip(res.windows, res.windows[1:]))
    assert (res.weights[0, : n - 1 - final] == 0).all()
    assert res.weights[0, n - 1 - 25: n - 3].sum() > 0.9
    # the stopping rule: the attention's mean distance no longer exceeds the prior mean (1 − p̂)/p̂
    p_hat = res.alpha[0] / (res.alpha[0] + res.beta[0])
    mean_d = (res.weights[0] * torch.arange(n - 1, -1, -1, dtype=D64)).sum()
    assert mean_d < 2 * (1 - p_hat) / p_hat
    # a query that matches only the newest key keeps its initial window
    keys2 = rnd(n, d, gen=gen) * 0.3
    keys2[-1] = u
    near = B.expanding_attention((3.0 * u).unsqueeze(0), keys2, keys2, scale=1.0)
    assert int(near.window[0]) == int(near.windows[0][0]) and int(near.weights[0].argmax()) == n - 1


def test_predictive_coding_free_energy_decreases_and_attention_is_precision(gen):
    y = torch.cat([rnd(6, 3, gen=gen) * 0.2 + 2, rnd(6, 3, gen=gen) * 0.2 - 2])
    W = rnd(2, 3, gen=gen)
    E = B.PredictiveCodingEnergy(y, W, precision=torch.tensor([1.0, 2.0, 0.5], dtype=D64))
    x0 = rnd(2, 2, gen=gen)
    run = hk.descend(E, x0, 1.0, method="armijo", steps=200)
    assert run.monotone() and run.energies[-1] < run.energies[0] - 1.0
    x = run.xi
    q = E.attention(x)
    assert torch.allclose(E.free_energy(x, q), E(x, 1.0), atol=1e-10)
    for _ in range(50):
        noise = torch.distributions.Dirichlet(torch.ones(2, dtype=D64)).sample((12,))
        assert E.free_energy(x, 0.5 * q + 0.5 * noise) >= E(x, 1.0) - 1e-12
    # the gradient is the attention-weighted, precision-weighted error: −Σ_i q_ij Π ε_ij Wᵀ + λ x_j
    xg = rnd(2, 2, gen=gen)
    eps = E.errors(xg)
    closed = -torch.einsum("mnd,mnd->nd", E.precisions(xg), eps) @ W.T + E.weight_decay * xg
    assert torch.allclose(hk.autodiff_grad(E, xg, 1.0), closed, atol=1e-10)


@pytest.mark.parametrize("call, exc, match", [
    (lambda g: B.attention(rnd(2, 3, gen=g), rnd(4, 5, gen=g), rnd(4, 2, gen=g)), ValueError, "share their last dimension"),
    (lambda g: B.attention(rnd(2, 3, gen=g), rnd(4, 3, gen=g), rnd(5, 2, gen=g)), ValueError, "same number of keys"),
    (lambda g: B.attention(rnd(2, 3, gen=g), rnd(4, 3, gen=g), rnd(4, 2, gen=g), inference="topk(5)"), ValueError, "larger than the number of keys"),
    (lambda g: B.attention(rnd(2, 3, gen=g), rnd(4, 3, gen=g), rnd(4, 2, gen=g),
                           log_prior=torch.tensor([[0.0] * 4, [float("-inf")] * 4], dtype=D64)), ValueError, "forbids every parent of query 1"),
    (lambda g: B.attention(rnd(2, 3, gen=g), rnd(4, 3, gen=g), rnd(4, 2, gen=g), potential="gaussian", sigma=-1.0), ValueError, "sigma must be positive"),
    (lambda g: B.attention(rnd(2, 3, gen=g), rnd(4, 3, gen=g), rnd(4, 2, gen=g), inference="topk"), ValueError, "inference must be"),
    (lambda g: B.attention(rnd(2, 3, gen=g), rnd(4, 3, gen=g), rnd(4, 2, gen=g), value_fn="multihop(2)"), ValueError, "multihop needs as many queries as keys"),
    (lambda g: B.attention(rnd(2, 3, gen=g), rnd(4, 3, gen=g), rnd(4, 2, gen=g), iters=3), ValueError, "iters > 1 needs an m_step"),
    (lambda g: B.attention(rnd(2, 3, gen=g), rnd(4, 3, gen=g), rnd(4, 2, gen=g), log_prior=torch.zeros(3, 4, dtype=D64)), ValueError, "does not broadcast"),
    (lambda g: B.attention(rnd(2, 3, gen=g), rnd(4, 3, gen=g).float(), rnd(4, 2, gen=g)), TypeError, "dtype"),
    (lambda g: B.attention(rnd(2, 3, gen=g), rnd(4, 3, gen=g), rnd(4, 2, gen=g), potential="additive"), ValueError, "needs w"),
    (lambda g: B.attention(torch.tensor([[float("nan")] * 3]), rnd(4, 3, gen=g).float(), rnd(4, 2, gen=g).float()), ValueError, "q contains NaN"),
    (lambda g: B.StructuralAttention(10, 3), ValueError, "not divisible by heads"),
    (lambda g: B.em(rnd(2, 3, gen=g), rnd(4, 3, gen=g), rnd(4, 2, gen=g), iters=2), ValueError, "v must have the queries' width"),
])
def test_bad_input(call, exc, match, gen):
    with pytest.raises(exc, match=match):
        call(gen)
