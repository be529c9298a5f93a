"""The fast paths of the descent give what the reference paths give (no timing here: benchmarks/)."""
import pytest
import torch

import hopfieldkit as hk
from hopfieldkit.energy import autodiff_grad
from torch.func import grad as func_grad

D64 = torch.float64


def _onednn_route(X, xi):
    from hopfieldkit._fast import policy

    return policy.hopfield_route(X, xi, 1.0) == "onednn"


def lse_energy(X):
    return lambda xi, beta: -torch.logsumexp(beta * xi @ X.T, -1) / beta + 0.5 * (xi * xi).sum(-1)


def test_plain_autograd_path_equals_torch_func_grad(gen):
    X, xi = torch.randn(50, 8, generator=gen, dtype=D64), torch.randn(7, 8, generator=gen, dtype=D64)
    E = hk.HopfieldEnergy(X)
    ref = func_grad(lambda x: E(x, 0.7).sum())(xi)
    fast = autodiff_grad(E, xi, 0.7)                     # a module with no tensor requiring grad
    assert fast.grad_fn is None and torch.allclose(fast, ref, atol=1e-12)
    assert torch.allclose(fast, E.grad(xi, 0.7), atol=1e-12)
    f = lse_energy(X)
    with torch.no_grad():
        assert torch.allclose(autodiff_grad(f, xi, 0.7), ref, atol=1e-12)


def test_gradient_stays_differentiable_when_something_requires_grad(gen):
    X = torch.randn(20, 4, generator=gen, dtype=D64, requires_grad=True)
    xi = torch.randn(3, 4, generator=gen, dtype=D64)
    for energy in (hk.HopfieldEnergy(X), lse_energy(X)):   # a module holding X, and a closure over X
        g = autodiff_grad(energy, xi, 1.3)
        (dX,) = torch.autograd.grad(g.square().sum(), X)
        ref = torch.autograd.grad(func_grad(lambda x: energy(x, 1.3).sum())(xi).square().sum(), X)[0]
        assert torch.allclose(dX, ref, atol=1e-12)
    beta = torch.tensor(0.9, dtype=D64, requires_grad=True)
    g = autodiff_grad(hk.HopfieldEnergy(X.detach()), xi, beta)
    assert g.requires_grad                                  # a learned β keeps the graph too


def test_descent_under_no_grad_equals_the_reference_and_keeps_nothing(gen):
    X, xi = torch.randn(64, 16, generator=gen), torch.randn(32, 16, generator=gen)
    f = lse_energy(X)
    ref = hk.descend(f, xi, 0.25, method="gd", step_size=1.0, steps=20, tol=0)
    with torch.no_grad():
        fast = hk.descend(f, xi, 0.25, method="gd", step_size=1.0, steps=20, tol=0, record=False)
    assert torch.allclose(fast.xi, ref.xi, atol=1e-6)
    assert torch.allclose(fast.xi, hk.descend(hk.HopfieldEnergy(X), xi, 0.25, method="update", steps=20, tol=0).xi,
                          atol=1e-5)                        # gd with step 1 on this energy is the update
    lean = hk.descend(hk.HopfieldEnergy(X), xi, 0.25, method="update", steps=200, tol=0, record=False)
    assert lean.energies is None and lean.trajectory is None and lean.xi.grad_fn is None  # nothing grows with steps


def test_onednn_update_equals_the_plain_update(gen, monkeypatch):
    from hopfieldkit._fast import onednn as _onednn

    monkeypatch.setattr(_onednn, "MIN_PATTERN_ELEMENTS", 0)   # small sizes take the plain path otherwise

    X = torch.randn(300, 24, generator=gen)
    E = hk.HopfieldEnergy(X)
    beta = torch.rand(4, 5, generator=gen) + 0.5              # per-state β
    xi = torch.randn(4, 5, 24, generator=gen)
    assert _onednn_route(X, xi) == _onednn.available()
    fast = E.update(xi, beta)
    monkeypatch.setenv("HOPFIELDKIT_ONEDNN", "0")
    assert not _onednn_route(X, xi)
    plain = E.update(xi, beta)
    assert torch.allclose(fast, plain, atol=1e-5)
    ref = torch.softmax(beta.unsqueeze(-1) * (xi.double() @ X.double().T), -1) @ X.double()
    assert torch.allclose(fast.double(), ref, atol=1e-5)
    monkeypatch.setenv("HOPFIELDKIT_ONEDNN", "1")
    with torch.no_grad():
        X.mul_(-1.5)                                       # written in place: the packed copy is renewed
    ref = torch.softmax(beta.unsqueeze(-1) * (xi @ X.T), -1) @ X
    assert torch.allclose(E.update(xi, beta), ref, atol=1e-5)
    one = torch.randn(24, generator=gen)                   # another batch size, one unbatched state
    assert torch.allclose(E.update(one, 1.0), torch.softmax(X @ one, -1) @ X, atol=1e-5)


def test_training_paths_keep_the_differentiable_update(gen):
    from hopfieldkit._fast import onednn as _onednn

    X = torch.randn(40, 8, generator=gen, requires_grad=True)
    xi = torch.randn(3, 8, generator=gen)
    assert not _onednn_route(X, xi)
    out = hk.HopfieldEnergy(X).update(xi, 1.0)
    (gX,) = torch.autograd.grad(out.sum(), X)
    assert gX.abs().sum() > 0
    assert not _onednn_route(X.detach().double(), xi.double())   # float64 keeps the plain matmul


def test_packed_patterns_are_never_stale_for_fresh_pattern_tensors(gen, monkeypatch):
    """LowRankPriorEnergy makes its patterns f_LT(γ) anew on every call; memory reuse must not
    let an old packed copy answer for new contents."""
    from hopfieldkit._fast import onednn as _onednn

    monkeypatch.setattr(_onednn, "MIN_PATTERN_ELEMENTS", 0)
    E = hk.LowRankPriorEnergy(6, 3, 16)
    xi = torch.randn(4, 16, generator=gen)
    with torch.no_grad():
        for _ in range(3):
            E.set_priors(torch.randn(6, 3, generator=gen))
            Y = E.patterns
            assert torch.allclose(E.update(xi, 2.0), torch.softmax(2.0 * xi @ Y.T, -1) @ Y, atol=1e-5)


def test_blockwise_streaming_softmax_is_exact(gen):
    from hopfieldkit._fast import onednn as _onednn

    if not _onednn.available():
        import pytest
        pytest.skip("torch without oneDNN")
    X = torch.randn(300, 16, generator=gen)
    xi = torch.randn(9, 16, generator=gen)
    packed = _onednn.PackedPatterns(X, 9, chunk=64)          # 5 blocks, the last one partial
    assert len(packed.blocks) == 5
    for beta in (0.01, 1.0, 50.0):                           # near-uniform to one-hot weights
        q = beta * xi
        ref = torch.softmax(q.double() @ X.double().T, -1) @ X.double()
        assert torch.allclose(packed.step(q).double(), ref, atol=2e-5), beta


def test_small_pattern_sets_keep_the_plain_path():
    from hopfieldkit._fast import onednn as _onednn

    assert not _onednn_route(torch.randn(128, 64), torch.randn(8, 64))
    assert _onednn_route(torch.randn(1024, 64), torch.randn(8, 64)) == _onednn.available()


def test_few_pattern_update_equals_the_plain_update_with_its_gradients(gen):
    """The pattern-major update of a memory of a few patterns (taken with and without a graph)
    gives the plain expression's values and gradients; it is chosen only where it applies."""
    from hopfieldkit._fast import few_patterns, policy

    torch.manual_seed(0)                                    # f_LT's initialisation
    for dtype, tol, rtol in ((torch.float64, 1e-12, 1e-12), (torch.float32, 1e-5, 1e-5)):
        E = hk.LowRankPriorEnergy(8, 4, 16).to(dtype)
        gamma = torch.randn(8, 4, generator=gen, dtype=dtype, requires_grad=True)
        E.set_priors(gamma)
        xi = torch.randn(4, 300, 16, generator=gen, dtype=dtype, requires_grad=True)
        assert policy.hopfield_route(E.patterns, xi, 0.7) == "few"
        out = E.update(xi, 0.7)
        Y = E.f_LT(gamma)
        ref = torch.softmax(0.7 * xi @ Y.T, -1) @ Y
        assert torch.allclose(out, ref, atol=tol)
        wrt = (xi, gamma, E.f_LT.weight)
        g = torch.randn(ref.shape, generator=gen, dtype=dtype)
        for a, b in zip(torch.autograd.grad((out * g).sum(), wrt), torch.autograd.grad((ref * g).sum(), wrt)):
            assert (a - b).norm() <= rtol * b.norm()           # sums over 1,200 states: relative to their size
        with torch.no_grad():
            assert torch.allclose(E.update(xi, 1.0), torch.softmax(xi @ Y.T, -1) @ Y, atol=tol)
    X = torch.randn(8, 16, generator=gen)
    many = torch.randn(few_patterns.MIN_ROWS, 16, generator=gen)
    assert policy.hopfield_route(X, many, 1.0) == "few"
    assert policy.hopfield_route(X, many[:-1], 1.0) == "plain"                      # too few states
    assert policy.hopfield_route(torch.randn(few_patterns.MAX_PATTERNS, 16), many, 1.0) == "plain"
    assert policy.hopfield_route(X, many, torch.rand(few_patterns.MIN_ROWS, 1) + 0.5) == "plain"  # β per state
    assert policy.hopfield_route(X, many, 1.0, torch.ones(8, dtype=torch.bool)) == "plain"       # a mask


def _small_et(gen, monkeypatch):
    """A small ET energy and token states, with the oneDNN path on at any size."""
    from hopfieldkit._fast import onednn as _onednn

    monkeypatch.setattr(_onednn, "MIN_PATTERN_ELEMENTS", 0)
    torch.manual_seed(0)
    return hk.EnergyTransformerEnergy(16, 2, 8, 24, w_std=0.3, mem_std=0.3), torch.randn(3, 5, 16, generator=gen)


def test_et_descent_direction_fast_path_equals_autodiff(gen, monkeypatch):
    E, x = _small_et(gen, monkeypatch)
    with torch.no_grad():
        fast = E.descent_direction(x)
    ref = E.grad_g(x)                                        # torch.func autodiff, the reference
    assert torch.allclose(fast, ref, atol=1e-5)
    with torch.no_grad():
        E.Wq.mul_(2.0)                                       # in place: the packed [Wk; Wq] is renewed
        E.hn.memories.mul_(0.5) if hasattr(E.hn, "memories") else None
        fast = E.descent_direction(x)
    assert torch.allclose(fast, E.grad_g(x), atol=1e-5)
    mask = torch.tensor([True, True, False, True, True])
    with torch.no_grad():
        assert torch.allclose(E.descent_direction(x, mask=mask), E.grad_g(x, mask=mask), atol=1e-5)


@pytest.mark.parametrize("hn,dtype", [("relu", torch.float32), ("softmax", torch.float32), ("relu", torch.float64)])
def test_et_graph_free_direction_follows_beta_and_weights(gen, monkeypatch, hn, dtype):
    """The graph-free path folds β and the signs into its weights: a new β (float, per-head tensor,
    the same tensor changed in place) or new weights must never be served a stale fold."""
    from hopfieldkit._fast import onednn as _onednn

    monkeypatch.setattr(_onednn, "MIN_PATTERN_ELEMENTS", 0)
    torch.manual_seed(0)
    E = hk.EnergyTransformerEnergy(16, 2, 8, 24, hn=hn, beta_hn=0.7, w_std=0.3, mem_std=0.3).to(dtype)
    x = torch.randn(3, 5, 16, generator=gen, dtype=dtype)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    b = torch.tensor([0.5, 2.0], dtype=dtype)
    for beta in (None, 0.3, 0.9, b, b):
        with torch.no_grad():
            fast = E.descent_direction(x, beta)
        assert torch.allclose(fast, E.grad_g(x, beta), atol=tol), beta
        if beta is b:
            with torch.no_grad():
                b.mul_(1.5)                                  # in place: the fold must follow
    with torch.no_grad():
        E.memories.mul_(-1.0)
        E.Wk.add_(0.1)
        fast = E.descent_direction(x, 0.9)
    assert torch.allclose(fast, E.grad_g(x, 0.9), atol=tol)
    for shape in ((2, 3, 5, 16), (4, 1, 16)):               # two batch axes; one token (no admissible key)
        xs = torch.randn(*shape, generator=gen, dtype=dtype)
        with torch.no_grad():
            fast = E.descent_direction(xs, 0.9)
        assert fast.shape == xs.shape and torch.allclose(fast, E.grad_g(xs, 0.9), atol=tol), shape


def test_without_working_onednn_kernels_the_plain_path_runs(gen, monkeypatch):
    from hopfieldkit._fast import onednn as _onednn

    import os

    if os.environ.get("HOPFIELDKIT_ONEDNN", "1") != "0":
        assert _onednn._smoke_test() == _onednn.available()
    monkeypatch.setattr(_onednn, "_works", False)            # as on a build or CPU where the kernels fail
    X, xi = torch.randn(4096, 64, generator=gen), torch.randn(5, 64, generator=gen)
    assert not _onednn_route(X, xi)
    with torch.no_grad():
        out = hk.HopfieldEnergy(X).update(xi, 0.3)
    assert torch.allclose(out, torch.softmax(0.3 * xi @ X.T, -1) @ X, atol=1e-5)


def test_plain_callables_get_graph_free_gradients_only_when_nothing_needs_a_graph(gen):
    """descend decides once, by one run on one state, whether a plain callable's gradients must
    stay differentiable: a closure over a tensor that requires grad keeps the graph."""
    X = torch.randn(40, 6, generator=gen, dtype=D64)
    xi = torch.randn(5, 6, generator=gen, dtype=D64)
    free = hk.descend(lse_energy(X), xi, 0.7, method="gd", step_size=1.0, steps=5, tol=0, record=False)
    assert free.xi.grad_fn is None                      # grad mode on, but nothing requires grad
    Xg = X.clone().requires_grad_(True)
    kept = hk.descend(lse_energy(Xg), xi, 0.7, method="gd", step_size=1.0, steps=5, tol=0, record=False)
    assert torch.allclose(kept.xi, free.xi, atol=1e-12)
    (dX,) = torch.autograd.grad(kept.xi.sum(), Xg)
    Xr = X.clone().requires_grad_(True)
    ref = xi
    for _ in range(5):
        ref = torch.softmax(0.7 * ref @ Xr.T, -1) @ Xr   # gd with step 1 on this energy is the update
    (want,) = torch.autograd.grad(ref.sum(), Xr)
    assert torch.allclose(dX, want, atol=1e-10)


def test_an_update_that_returns_the_wrong_shape_is_named(gen):
    import pytest

    class Bad(hk.HopfieldEnergy):
        def update(self, xi, beta):
            return xi[..., :-1]

    with pytest.raises(ValueError, match="Bad.update"):
        hk.descend(Bad(torch.randn(8, 3, generator=gen)), torch.randn(4, 3, generator=gen), 1.0,
                   method="update", record=False)


MEMORY_SCRIPT = """
import resource, sys, torch, hopfieldkit as hk
torch.manual_seed(0)
X, xi = torch.randn(2048, 256), torch.randn(256, 256)
E = hk.HopfieldEnergy(X)
f = lambda x, b: -hk.lse_similarity(x, X, b) + 0.5 * (x * x).sum(-1)
g = lambda x, b: -torch.logsumexp(b * x @ X.T, -1) / b + 0.5 * (x * x).sum(-1)
runs = [(E, "update"), (E, "gd"), (E, "armijo"), (f, "gd"), (g, "gd")]
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # MiB (Linux: KiB)
for energy, method in runs:
    hk.descend(energy, xi, 0.05, method=method, steps=10, tol=0, record=False)
before = peak()
for energy, method in runs:
    hk.descend(energy, xi, 0.05, method=method, steps=300, tol=0, record=False)
print(peak() - before)
"""


def test_memory_does_not_grow_with_steps_without_record():
    """record=False with nothing requiring grad: 300 steps peak where 10 steps did (a state or
    graph kept per step would add ≥ 256 KiB a step, ≥ 75 MiB in all). Own process: a clean peak."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip().splitlines()[-1]) < 24.0, out.stdout


FAULT_SCRIPT = """
import resource, sys, torch
import hopfieldkit as hk
from hopfieldkit._fast import malloc
def faults_per_round():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        bufs = [torch.empty(1 << 20).fill_(1.0) for _ in range(4)]   # 4 x 4 MB alive at once, as in a step
        del bufs
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20
X = torch.randn(4096, 64)
hk.descend(hk.HopfieldEnergy(X), torch.randn(64, 64), 1.0, steps=5)
hk.descend(lambda x, b: (x * x).sum(-1), torch.randn(64, 64), 1.0, method="armijo", steps=5)
untouched = not malloc.retained()                                     # ordinary calls change nothing
applied = hk.retain_freed_memory() if sys.argv[1] == "opt-in" else False
faults_per_round()                                                    # the heap grows once
print(untouched, applied, faults_per_round())
"""


def test_the_allocator_is_changed_only_on_request_and_then_reuses_freed_buffers():
    """descend leaves the process's allocator alone; hk.retain_freed_memory() (glibc) then keeps
    freed buffers for reuse: 16 MB of buffers alive at once and freed cost 0 page faults a round
    after it (under glibc's defaults they are trimmed off the heap in most runs and faulted in
    again; whether depends on the heap's layout, so only the opt-in side is asserted)."""
    import subprocess
    import sys

    import pytest

    outs = {}
    for mode in ("default", "opt-in"):
        out = subprocess.run([sys.executable, "-c", FAULT_SCRIPT, mode], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        outs[mode] = out.stdout.split()
    assert outs["default"][0] == "True" and outs["opt-in"][0] == "True"   # descend did not call mallopt
    if outs["opt-in"][1] != "True":
        pytest.skip("not glibc: the allocator is left alone")
    assert float(outs["opt-in"][2]) < 64, outs


def test_et_direction_keeps_the_graph_when_only_one_weight_is_trained(gen, monkeypatch):
    """W^K frozen, W^Q trained: the [W^K; W^Q] product must stay differentiable (not packed)."""
    from hopfieldkit._fast import onednn as _onednn

    monkeypatch.setattr(_onednn, "MIN_PATTERN_ELEMENTS", 0)
    torch.manual_seed(0)
    E = hk.EnergyTransformerEnergy(16, 2, 8, 24, w_std=0.3, mem_std=0.3)
    for p in E.parameters():
        p.requires_grad_(False)
    E.Wq.requires_grad_(True)                                # the only tensor that needs a gradient
    x = torch.randn(3, 5, 16, generator=gen)
    (got,) = torch.autograd.grad(E.descent_direction(x).square().sum(), E.Wq)
    (want,) = torch.autograd.grad(E.grad_g(x).square().sum(), E.Wq)
    assert torch.allclose(got, want, atol=1e-4)


def test_sum_energy_gradient_uses_closed_forms_and_keeps_graphs_of_closures(gen):
    """E = Hopfield + a plain callable: ∂E/∂ξ = the Hopfield closed form + autodiff of the rest,
    equal to autodiff of the sum; a closure over a trained tensor keeps its gradient."""
    X = torch.randn(30, 5, generator=gen, dtype=D64)
    xi = torch.randn(4, 5, generator=gen, dtype=D64)
    w = torch.tensor(0.3, dtype=D64, requires_grad=True)
    calls = []

    class Counted(hk.HopfieldEnergy):
        def grad(self, xi, beta):
            calls.append(1)
            return super().grad(xi, beta)

    S = Counted(X) + (lambda x, b: w * (x ** 4).sum(-1))
    g = S.grad(xi, 0.7)
    assert calls == [1]                                     # the closed form was used
    assert torch.allclose(g, func_grad(lambda x: S(x, 0.7).sum())(xi), atol=1e-12)
    (dw,) = torch.autograd.grad(g.sum(), w)                 # the closure's graph was kept
    assert torch.allclose(dw, (4 * xi ** 3).sum(), atol=1e-10)
    with torch.no_grad():                                   # and dropped when nothing needs it
        assert hk.autodiff_grad(S, xi, 0.7).grad_fn is None
    only = hk.SumEnergy(lambda x, b: w * (x ** 4).sum(-1))  # no closed form: one autodiff pass
    g = only.grad(xi, 0.7)
    assert torch.allclose(g, 4 * w.detach() * xi ** 3, atol=1e-12)
    (dw,) = torch.autograd.grad(g.sum(), w)                 # the closure is seen through the sum
    assert torch.allclose(dw, (4 * xi ** 3).sum(), atol=1e-10)


def test_a_write_through_data_never_serves_a_stale_packed_copy(gen, monkeypatch):
    """``X.data`` writes move no version counter: the cached packed copy (and M²) are checked
    against a fingerprint of the contents, outside descend on every call and once per descend."""
    from hopfieldkit._fast import onednn as _onednn

    if not _onednn.available():
        pytest.skip("torch without oneDNN")
    monkeypatch.setattr(_onednn, "MIN_PATTERN_ELEMENTS", 0)
    X = torch.randn(300, 24, generator=gen)
    E = hk.HopfieldEnergy(X)
    xi = torch.randn(16, 24, generator=gen)
    plain = lambda Y: torch.softmax(0.5 * xi @ Y.T, -1) @ Y              # noqa: E731
    with torch.no_grad():
        assert torch.allclose(E.update(xi, 0.5), plain(X), atol=1e-5)     # packed now
        version = X._version
        X.data.mul_(-2.0)                                                # invisible to the version counter
        X.data[[0, 1]] = X.data[[1, 0]].clone()
        assert X._version == version
        assert torch.allclose(E.update(xi, 0.5), plain(X), atol=1e-5)
        assert torch.allclose(E(xi, 0.5), hk.HopfieldEnergy(X.clone())(xi, 0.5), atol=1e-5)   # M² too
        run = hk.descend(E, xi, 0.5, steps=3, tol=0, record=False)
        X.data.add_(0.25)
        ref = xi
        for _ in range(3):
            ref = torch.softmax(0.5 * ref @ X.T, -1) @ X
        assert torch.allclose(hk.descend(E, xi, 0.5, steps=3, tol=0, record=False).xi, ref, atol=1e-5)
        assert not torch.allclose(run.xi, ref, atol=1e-3)
        Y = torch.randn(200, 24, generator=gen)                         # module-wide entries (plain calls)
        hk.lse_similarity(xi, Y, 1.0)
        Y.data.mul_(3.0)
        assert torch.allclose(hk.lse_similarity(xi, Y, 1.0), torch.logsumexp(xi @ Y.T, -1), atol=1e-4)


def test_the_folded_et_weights_follow_a_write_through_data(gen, monkeypatch):
    E, x = _small_et(gen, monkeypatch)
    with torch.no_grad():
        E.descent_direction(x)
        E.Wq.data.mul_(-1.5)
        E.memories.data.add_(0.1)
        got = E.descent_direction(x)
    assert torch.allclose(got, E.grad_g(x), atol=1e-4)


def test_caches_are_bounded_and_can_be_cleared(gen, monkeypatch):
    from hopfieldkit._fast import cache, onednn as _onednn

    if not _onednn.available():
        pytest.skip("torch without oneDNN")
    monkeypatch.setattr(_onednn, "MIN_PATTERN_ELEMENTS", 0)
    xi = torch.randn(16, 8, generator=gen)
    keep = [torch.randn(50, 8, generator=gen) for _ in range(cache.MAX_SHARED + 4)]
    with torch.no_grad():
        for Y in keep:
            hk.lse_similarity(xi, Y, 1.0)
        assert len(cache._shared) <= cache.MAX_SHARED
        E = hk.HopfieldEnergy(keep[0])
        E.update(xi, 1.0)
        assert "_fast_cache" in E.__dict__
        hk.clear_caches()
        assert len(cache._shared) == 0 and "_fast_cache" not in E.__dict__
        assert torch.allclose(E.update(xi, 1.0), torch.softmax(xi @ keep[0].T, -1) @ keep[0], atol=1e-5)


STREAM_SCRIPT = """
import resource, sys, torch, hopfieldkit as hk
N, d, B = 200_000, 16, 256
g = torch.Generator().manual_seed(0)
X = torch.randn(N, d, generator=g, dtype=torch.float64)
xi = torch.randn(B, d, generator=g, dtype=torch.float64)
E = hk.HopfieldEnergy(X)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
with torch.no_grad():
    u, e = E.update(xi, 0.5), E(xi, 0.5)
rise = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
ref_u = torch.softmax(0.5 * xi[:8] @ X.T, -1) @ X
ref_e = hk.HopfieldEnergy(X)(xi[:8], 0.5)
print(rise, float((u[:8] - ref_u).abs().max()), float((e[:8] - ref_e).abs().max()))
"""


def test_float64_updates_stream_their_scores():
    """float64, N = 200 000, B = 256: the whole score matrix is 410 MB (and the softmax as much
    again); the update and energy stream it in blocks (peak rise well under it). Own process."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", STREAM_SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rise, err_u, err_e = map(float, out.stdout.split())
    assert rise < 160, rise
    assert err_u < 1e-12 and err_e < 1e-10


def test_second_moment_as_one_product_equals_the_plain_jacobian(gen):
    """The Hopfield Jacobian of many states over one memory (one product with the outer products
    kept per energy) equals the plain expression; it is chosen only where it applies, and kept
    outer products follow the patterns when they change."""
    from hopfieldkit._fast import policy, second_moment

    X = torch.randn(30, 6, generator=gen, dtype=torch.float64)
    E = hk.HopfieldEnergy(X)
    xi = torch.randn(40, 6, generator=gen, dtype=torch.float64)

    def plain(E, xi, beta):
        p = torch.softmax(beta * xi @ E.patterns.T, -1)
        m = p @ E.patterns
        second = torch.einsum("kn,ni,nj->kij", p, E.patterns, E.patterns)
        return beta * (second - m[:, :, None] * m[:, None, :])

    p = torch.softmax(xi @ X.T, -1)
    assert policy.second_moment(p, X, None)
    assert not policy.second_moment(p[:6], X, None)                       # K ≤ d: the plain product
    assert not policy.second_moment(p, X, torch.ones(30, dtype=torch.bool))
    assert not policy.second_moment(p.requires_grad_(True), X, None)      # a graph: plain ops
    assert torch.allclose(E.jacobian(xi, 1.7), plain(E, xi, 1.7), atol=1e-12)
    with torch.no_grad():
        E.patterns.mul_(0.5)
    assert torch.allclose(E.jacobian(xi, 1.7), plain(E, xi, 1.7), atol=1e-12)
    big = torch.randn(second_moment.MAX_OUTER // 36 + 1, 6, dtype=torch.float64)
    assert not policy.second_moment(torch.softmax(torch.randn(40, big.shape[0], dtype=torch.float64), -1), big, None)
