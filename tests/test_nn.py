"""hopfieldkit.nn: the layers compute their equations (attention at one step, plain updates without
projections), masks and permutations change nothing they must not, energies never rise, the
implicit gradient equals the unrolled one at convergence (its memory, constant in the number of
steps, is measured by benchmarks/nn_layers.py and asserted in test_benchmarks.py)."""
import copy

import pytest
import torch
import torch.nn.functional as F

import hopfieldkit as hk
from hopfieldkit.nn import ConvergenceWarning, Hopfield, HopfieldLayer, HopfieldPooling

D64 = torch.float64


@pytest.fixture
def sets():
    """3 sets of up to 7 members in dim 16; set b has 7 − 2b real members, padding is huge."""
    g = torch.Generator().manual_seed(0)
    R = torch.randn(3, 5, 16, generator=g)
    Y = torch.randn(3, 7, 16, generator=g)
    mask = torch.arange(7) < (7 - 2 * torch.arange(3)).unsqueeze(1)
    Y = torch.where(mask.unsqueeze(-1), Y, torch.full_like(Y, 50.0))
    return R, Y, mask


def _mha(layer, R, Y, mask):
    """Multi-head attention written with the layer's own projections and torch's SDPA."""
    B, S, _ = R.shape
    split = lambda x: x.view(B, x.shape[1], layer.heads, -1).transpose(1, 2)
    q, k, v = split(layer.q_proj(R)), split(layer.k_proj(Y)), split(layer.v_proj(Y))
    z = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :], scale=layer.beta)
    return layer.out_proj(z.transpose(1, 2).reshape(B, S, -1))


@pytest.mark.parametrize("record", [False, True])
def test_one_step_with_projections_is_multi_head_attention(sets, record):
    R, Y, mask = sets
    torch.manual_seed(1)
    layer = Hopfield(16, heads=4, beta=0.7)
    out = layer(R, Y, mask=mask, return_association=record)
    out = out.output if record else out
    assert out.shape == (3, 5, 16)
    assert torch.allclose(out, _mha(layer, R, Y, mask), atol=1e-5)


def test_the_fused_read_equals_the_plain_read_with_gradients(sets):
    R, Y, mask = sets
    torch.manual_seed(2)
    layer = Hopfield(16, heads=2, steps=3, learn_beta=True).double()
    grads = []
    for record in (False, True):
        layer.zero_grad()
        out = layer(R.double(), Y.double(), mask=mask, return_association=record)
        out = out.output if record else out
        out.square().sum().backward()
        grads.append((out.detach(), [p.grad.clone() for p in layer.parameters()]))
    (o1, g1), (o2, g2) = grads
    assert torch.allclose(o1, o2, atol=1e-12)
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(g1, g2))


def test_without_projections_the_steps_are_plain_updates():
    g = torch.Generator().manual_seed(3)
    R, Y = torch.randn(2, 4, 6, generator=g, dtype=D64), torch.randn(2, 9, 6, generator=g, dtype=D64)
    V = torch.randn(2, 9, 3, generator=g, dtype=D64)
    beta = 1.3
    xi = R
    for s in range(1, 5):
        layer = Hopfield(6, project=False, steps=s, beta=beta, value_dim=3)
        plain = Hopfield(6, project=False, steps=s, beta=beta)
        xi = torch.softmax(beta * xi @ Y.transpose(1, 2), -1) @ Y           # s plain updates
        assert torch.allclose(plain(R, Y), xi, atol=1e-12), s
        before = R
        for _ in range(s - 1):
            before = torch.softmax(beta * before @ Y.transpose(1, 2), -1) @ Y
        read = torch.softmax(beta * before @ Y.transpose(1, 2), -1) @ V       # s − 1 updates, then the values
        assert torch.allclose(layer(R, Y, V), read, atol=1e-12), s


@pytest.mark.parametrize("steps", [1, 4])
def test_padded_members_change_nothing(sets, steps):
    R, Y, mask = sets
    torch.manual_seed(4)
    layer = Hopfield(16, heads=2, steps=steps)
    out = layer(R, Y, mask=mask)
    for b in range(3):
        alone = layer(R[b:b + 1], Y[b:b + 1, mask[b]])
        assert torch.allclose(out[b:b + 1], alone, atol=1e-5), b
    garbage = torch.where(mask.unsqueeze(-1), Y, -Y * 7)
    assert torch.allclose(layer(R, garbage, mask=mask), out, atol=1e-6)


def test_pooling_is_permutation_invariant_and_ignores_padding(sets):
    _, Y, mask = sets
    torch.manual_seed(5)
    pool = HopfieldPooling(16, queries=3, heads=2, steps=2)
    out = pool(Y, mask=mask)
    assert out.shape == (3, 3, 16)
    perm = torch.randperm(7)
    assert torch.allclose(pool(Y[:, perm], mask=mask[:, perm]), out, atol=1e-5)
    assert torch.allclose(pool(Y[2:3, :3]), out[2:3], atol=1e-5)     # set 2: its 3 real members alone


def test_the_energy_of_every_state_and_head_never_rises(sets):
    R, Y, mask = sets
    torch.manual_seed(6)
    layer = Hopfield(16, heads=4, steps=12, beta=2.0).double()
    a = layer(R.double(), Y.double(), mask=mask, return_association=True)
    assert a.energies.shape == (13, 3, 4, 5) and a.steps == 12
    rise = (a.energies[1:] - a.energies[:-1]).max()
    assert rise <= 1e-12, rise
    assert (a.energies[-1] < a.energies[0]).all()
    K = layer.project_stored(Y.double())
    E = hk.HopfieldEnergy(K[:, 1], mask)                                 # head 1 as a plain energy
    assert torch.allclose(a.energies[0, :, 1], E(layer.project_state(R.double())[:, 1].transpose(0, 1),
                                                  layer.beta).transpose(0, 1), atol=1e-12)


def test_until_convergence_the_count_is_reported_and_a_short_budget_warns(sets):
    R, Y, mask = sets
    torch.manual_seed(7)
    layer = Hopfield(16, heads=2, steps=None, beta=2.0, tol=1e-6)
    a = layer(R, Y, mask=mask, return_association=True)
    assert a.converged.all() and 2 <= a.steps <= 100
    assert a.state_steps.max() == a.steps and a.residual.max() < 1e-4
    short = Hopfield(16, heads=2, steps=None, beta=2.0, tol=1e-9, max_steps=1)
    short.load_state_dict(layer.state_dict())
    with pytest.warns(ConvergenceWarning, match="did not converge within max_steps=1"):
        b = short(R, Y, mask=mask, return_association=True)
    assert not b.converged.all()


def _pair(**kw):
    torch.manual_seed(8)
    implicit = Hopfield(8, heads=2, beta=2.0, steps=None, implicit=True, learn_beta=True, **kw).double()
    unrolled = copy.deepcopy(implicit)
    unrolled.implicit, unrolled.steps = False, 300
    return implicit, unrolled


def test_the_implicit_gradient_equals_the_unrolled_one_at_convergence():
    g = torch.Generator().manual_seed(9)
    R, Y = torch.randn(3, 4, 8, generator=g, dtype=D64), 2 * torch.randn(3, 6, 8, generator=g, dtype=D64)
    mask = torch.rand(3, 6, generator=g) > 0.2
    mask[:, 0] = True
    w = torch.randn(3, 4, 8, generator=g, dtype=D64)
    implicit, unrolled = _pair()
    for layer in (implicit, unrolled):
        (layer(R, Y, mask=mask) * w).sum().backward()
    for (name, p), q in zip(implicit.named_parameters(), unrolled.parameters()):
        if name.startswith("q_proj"):
            assert p.grad is None and q.grad.abs().max() < 1e-30    # ξ* forgets its start
            continue
        err = (p.grad - q.grad).abs().max() / q.grad.abs().max()
        assert err < 1e-6, (name, err)


@pytest.mark.parametrize("make", ["hopfield", "layer", "pooling"])
def test_gradients_reach_every_parameter(sets, make):
    R, Y, mask = sets
    torch.manual_seed(11)
    if make == "hopfield":
        m = Hopfield(16, heads=2, steps=2, learn_beta=True, dropout=0.1)
        out = m(R, Y, mask=mask)
    elif make == "layer":
        m = HopfieldLayer(16, patterns=5, heads=2, steps=3, learn_beta=True)
        out = m(R)
    else:
        m = HopfieldPooling(16, queries=2, heads=2, learn_beta=True)
        out = m(Y, mask=mask)
    out.square().mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_a_trained_layers_heads_go_to_the_attractor_tools():
    torch.manual_seed(12)
    layer = HopfieldLayer(8, patterns=4, heads=2, beta=8.0)
    E, beta = layer.energy(head=1)
    assert E.patterns.shape == (4, 4) and beta == 8.0
    with torch.no_grad():
        K = E.patterns
        fp = hk.fixed_points(E, beta, K + 0.01 * torch.randn_like(K))
    assert len(fp) >= 1 and set(fp.kinds) <= {"single", "metastable", "global"}
    assert (fp.grad_norms < 1e-4).all() and fp.weights.shape[1] == 4
    pool = HopfieldPooling(8, heads=2)
    Y = torch.randn(3, 5, 8)
    E, beta = pool.energy(Y, head=0)
    assert E.patterns.shape == (3, 5, 4) and len(hk.fixed_points(E, beta, torch.randn(6, 4))) == 3


def test_bad_input_gets_a_named_error(sets):
    R, Y, mask = sets
    layer = Hopfield(16, heads=2)
    cases = [
        (lambda: layer(R[0], Y), ValueError, "state must have shape"),
        (lambda: layer(R, Y[..., :8]), ValueError, "stored must have shape"),
        (lambda: layer(R, Y, mask=mask[:, :5]), ValueError, "mask must have shape"),
        (lambda: layer(R, Y, mask=mask.float()), TypeError, "mask must be a bool"),
        (lambda: layer(R, Y, mask=torch.zeros(3, 7, dtype=torch.bool)), ValueError, "without any real member"),
        (lambda: layer(R.double(), Y.double()), TypeError, "dtype"),
        (lambda: layer(R, Y.double()), TypeError, "dtype"),
        (lambda: layer(R[:2], Y), ValueError, "batch"),
        (lambda: layer(R.masked_fill(R > 1, float("nan")), Y), ValueError, "state contains NaN"),
        (lambda: layer(R, Y, values=Y[:, :3]), ValueError, "values must have shape"),
        (lambda: Hopfield(16, beta=0.0), ValueError, "beta"),
        (lambda: Hopfield(16, beta=-1.0), ValueError, "beta"),
        (lambda: Hopfield(16, steps=0), ValueError, "steps"),
        (lambda: Hopfield(16, heads=3), ValueError, "divisible"),
        (lambda: Hopfield(16, heads=2, project=False), ValueError, "one head"),
        (lambda: Hopfield(16, implicit=True), ValueError, "steps=None"),
        (lambda: Hopfield(16, dropout=1.0), ValueError, "dropout"),
        (lambda: layer.energy(Y, head=2), ValueError, "head"),
    ]
    for call, err, match in cases:
        with pytest.raises(err, match=match):
            call()


def test_pooling_learns_the_bit_pattern_sets_and_weighs_the_signal():
    """The reference library's synthetic multiple-instance task: bags of 16 random 8-bit patterns,
    positive ones hold one of 2 implanted signals. Hopfield pooling learns it from 256 bags and puts
    the weight on the signal."""
    from torch import nn

    from hopfieldkit.bags import bit_pattern_bags

    torch.manual_seed(0)
    train, test = bit_pattern_bags(256, seed=0), bit_pattern_bags(256, seed=1)
    enc = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32))
    pool, head = HopfieldPooling(32, head_dim=16), nn.Linear(32, 1)
    opt = torch.optim.Adam([*enc.parameters(), *pool.parameters(), *head.parameters()], lr=3e-3)
    logits = lambda b: head(pool(enc(b.instances), b.mask)[:, 0]).squeeze(-1)
    accuracy = lambda: float(((logits(test) > 0).float() == test.labels).float().mean())
    with torch.no_grad():
        before = accuracy()
    for _ in range(150):
        b = train.subset(torch.randint(256, (32,)))
        loss = F.binary_cross_entropy_with_logits(logits(b), b.labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert before < 0.7 and accuracy() >= 0.95, (before, accuracy())
        pos = test.subset(test.labels.bool())
        w = pool(enc(pos.instances), pos.mask, return_association=True).weights[:, 0, 0]      # [B, 16]
        assert float((pos.instance_labels.gather(1, w.argmax(1, keepdim=True)) >= 0).float().mean()) >= 0.9


def test_the_energy_transformer_descends_its_energy_and_trains_every_parameter():
    from hopfieldkit.nn import EnergyTransformer
    from hopfieldkit.examples.et_completion import ETCompletion

    assert issubclass(ETCompletion, EnergyTransformer)              # the ET example is built on it
    torch.manual_seed(13)
    et = EnergyTransformer(8, 2, channels=1, dim=16, heads=2, head_dim=4, memories=12, steps=6, alpha=0.05,
                           w_std=0.1, mem_std=0.1)
    images = torch.rand(3, 1, 8, 8)
    mask = torch.rand(3, 16) < 0.5
    out, run = et(images, mask, record=True)
    assert out.shape == (3, 16, 4) and run.energies.shape == (7, 3) and run.monotone()
    out2, _ = et(hk.patchify(images, 2), mask)
    assert torch.allclose(out, out2)
    out.square().mean().backward()
    for name, p in et.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match="images must be"):
        et(torch.rand(3, 1, 9, 9))
    with pytest.raises(ValueError, match="mask must be a bool"):
        et(images, mask.float())
    with pytest.raises(ValueError, match="must divide"):
        EnergyTransformer(8, 3)
