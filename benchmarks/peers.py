"""hopfieldkit's descent against eager torch, JAX (jit) and HAMUX, side by side in one run.

    python benchmarks/peers.py                       # N × d ∈ {1024×64, 16384×256, 65536×512}, B = 256
    python benchmarks/peers.py --sizes 4096x128 --repeats 3

The peers are optional and installed by nothing here; put them in a separate virtual environment
beside torch, e.g.::

    python3 -m venv /tmp/peers && /tmp/peers/bin/pip install torch==2.13.0 jax jaxlib hamux fastcore
    /tmp/peers/bin/pip install -e . --no-deps && /tmp/peers/bin/python benchmarks/peers.py

Without them the script times hopfieldkit against eager torch and says which peers were skipped.

Timed, per size, ``steps`` steps of one Hopfield update ξ ← Xᵀ softmax(β X ξ) on B states (float32):

- ``eager``: the hand-written torch loop (the baseline, ratio 1);
- ``update``: ``descend(HopfieldEnergy(X), method="update")`` (closed-form step);
- ``gd``: ``descend(HopfieldEnergy(X), method="gd", step_size=1)`` (its closed-form gradient);
- ``autodiff``: ``descend(f, method="gd", step_size=1)`` on a plain callable energy
  f(ξ) = −lse(β Xξ)/β + ½‖ξ‖² written with ``torch.logsumexp`` (gradient by autodiff; step 1 gives
  the same update); ``autodiff-op``: the same energy written with ``hk.lse_similarity``;
- ``jax``: the update loop under ``jax.jit`` (``lax.fori_loop``); ``jax-grad``: ``jax.grad`` of f, jitted;
- ``hamux``: a HAMUX two-layer HAM (identity visible layer, softmax(β) hidden layer, LinearSynapse
  W = Xᵀ), one jitted step of both layers with α = 1 — the same two B×N×d products per step;
- ``mkl-mm`` (``cublas-mm`` on a GPU): the two matrix products of the step alone through torch's
  default matmul;
  ``onednn-mm``: the same through oneDNN with X packed whole; ``onednn-blk``: packed in the blocks
  that the update uses (8192 patterns at B = 256). "% peak" is against the fastest of the three: the
  machine's matmul throughput on these shapes, measured in the same run.

Under each size a roofline line: max(FLOPs / the matmul peak above, bytes / the bandwidth of a
device-to-device copy measured in the same run), with X read by both products and ξ read and
written once (the least any implementation moves), and the update's time against it, in TFLOP/s and
GB/s. The ET block (``--et``) is timed against ``products``, the step's matrix products alone
through the same kernels (its roofline), and on the CPU against a jitted JAX version. On a GPU::

    python benchmarks/peers.py --device cuda --sizes 16384x256,65536x512,262144x512 --et 64,256,768,12,64,3072

Methods alternate inside each repeat; times are medians over the repeats, and each ratio is the
median over the repeats of the method's time over the baseline's in the same repeat (these machines
are noisy, with slow and fast phases that a ratio of medians would keep). Each timed call waits ``--settle`` seconds first: torch's
OpenMP threads and XLA's thread pool keep spinning for a while after their work, and on 2 cores a
spinning pool of one library slowed the next call of the other by up to 30 % (measured on the ET
block: JAX time / ours 0.73–0.82 back to back, 1.04–1.09 with a pause; 1.15 in separate processes).
A pause has its own cost: the first milliseconds after it run up to 3× slower (threads waking on
a virtual machine), so each method then runs once untimed before its timed call.
Nothing here is asserted in the tests.
"""
from __future__ import annotations

import argparse
import statistics

import torch

import hopfieldkit as hk
from hopfieldkit._fast import et_folded
from _timing import allocator_flag, apply_allocator, alternate, alternate_samples, hand_loop, paired_ratio   # benchmarks/_timing.py (this folder is on sys.path)


def sgemm_loop(X, xi, S, steps):
    XT = X.T
    for _ in range(steps):
        S = torch.mm(xi, XT, out=S)
        xi = S @ X
    return xi


def onednn_loops(X, xi, steps):
    """The two products through oneDNN with packed weights (the best matmul torch has on this CPU):
    ``onednn-mm`` with X packed whole, ``onednn-blk`` in the blocks the update uses. {} without oneDNN."""
    from hopfieldkit._fast import onednn as _onednn
    if not _onednn.available():
        return {}
    whole = _onednn.PackedMatrix(X, xi.shape[0])
    blocks = _onednn.PackedPatterns(X, xi.shape[0]).blocks

    def mm():
        x = xi
        for _ in range(steps):
            x = whole.times(whole.times_t(x))
        return x

    def blk():
        x = xi
        for _ in range(steps):
            x = sum(b.times(b.times_t(x)) for b in blocks)
        return x
    return {"onednn-mm": mm, "onednn-blk": blk}


def lse_energy(X):
    def energy(xi, beta):
        return -torch.logsumexp(beta * xi @ X.T, -1) / beta + 0.5 * (xi * xi).sum(-1)
    return energy


def op_energy(X):
    """The same energy written with hopfieldkit's fused op (what a user building an energy would do)."""
    def energy(xi, beta):
        return -hk.lse_similarity(xi, X, beta) + 0.5 * (xi * xi).sum(-1)
    return energy


def jax_methods(X_np, xi_np, beta, steps):
    """{name: callable returning a finished array} for the JAX and HAMUX peers that import."""
    out, skipped = {}, []
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return out, ["jax", "jax-grad", "hamux"]
    X, xi0 = jnp.asarray(X_np), jnp.asarray(xi_np)

    @jax.jit
    def upd(xi):
        return jax.lax.fori_loop(0, steps, lambda _, x: jax.nn.softmax(beta * x @ X.T, -1) @ X, xi)

    def f(x):
        return (-jax.nn.logsumexp(beta * x @ X.T, -1) / beta + 0.5 * (x * x).sum(-1)).sum()

    g = jax.grad(f)

    @jax.jit
    def gd(xi):
        return jax.lax.fori_loop(0, steps, lambda _, x: x - g(x), xi)

    out["jax"] = lambda: upd(xi0).block_until_ready()
    out["jax-grad"] = lambda: gd(xi0).block_until_ready()
    try:
        import hamux as hmx
        from hamux.lagrangians import lagr_identity, lagr_softmax
    except ImportError:
        skipped.append("hamux")
        return out, skipped
    d, N = X.shape[1], X.shape[0]
    ham = hmx.HAM(neurons={"v": hmx.NeuronLayer(lagr_identity, (d,)),
                           "h": hmx.NeuronLayer(lambda x: lagr_softmax(x, beta=beta), (N,))},
                  hypersynapses={"s": hmx.LinearSynapse(W=X.T)}, connections=[(("v", "h"), "s")]).vectorize()
    xs0 = {"v": xi0, "h": jnp.zeros((xi0.shape[0], N), xi0.dtype)}

    @jax.jit
    def ham_steps(xs):
        def step(_, xs):
            grads = ham.dEdact(ham.activations(xs), xs)
            return {k: xs[k] - grads[k] for k in xs}
        return jax.lax.fori_loop(0, steps, step, xs)

    out["hamux"] = lambda: ham_steps(xs0)["v"].block_until_ready()
    return out, skipped


def et_jax(Wq, Wk, M, gamma, delta, eps, beta, alpha, steps):
    """A jitted JAX ET block x ← x − α ∂E/∂g (attention with the self-pair excluded + ½ReLU² memories)."""
    import jax
    import jax.numpy as jnp

    Wq, Wk, M, gamma, delta = (jnp.asarray(t) for t in (Wq, Wk, M, gamma, delta))

    def energy_g(g):
        K = jnp.einsum("hyd,bnd->bhny", Wk, g)
        Q = jnp.einsum("hyd,bnd->bhny", Wq, g)
        A = beta * K @ jnp.swapaxes(Q, -1, -2)
        n = g.shape[1]
        A = jnp.where(jnp.eye(n, dtype=bool), -jnp.inf, A)
        att = -(jax.nn.logsumexp(A, axis=-2) / beta).sum()
        hn = -0.5 * (jax.nn.relu(g @ M.T) ** 2).sum()
        return att + hn

    dE = jax.grad(energy_g)

    def ln(x):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return gamma * (x - mu) / jnp.sqrt(var + eps) + delta

    @jax.jit
    def block(x):
        return jax.lax.fori_loop(0, steps, lambda _, x: x - alpha * dE(ln(x)), x)
    return block


def et_products(E, x0, steps):
    """The ET step's matrix products alone, through the kernels ``et_block`` uses (the folded front
    product g ↦ [K | βQ | ξg], the back product to ∂E/∂g, the three attention bmm): the time a step
    cannot go below without faster products, its roofline."""
    B, N, D = x0.shape
    H, Y = E.heads, E.head_dim
    f = et_folded.folded(E, None, x0)
    g = x0.reshape(B * N, D)
    gen = torch.Generator(device=x0.device).manual_seed(1)
    K, Q = (torch.randn(B * H, N, Y, generator=gen, device=x0.device) for _ in range(2))

    def run():
        for _ in range(steps):
            out = f.front(g)
            A = torch.bmm(K, Q.transpose(1, 2))
            torch.bmm(A.transpose(1, 2), K), torch.bmm(A, Q)
            out = f.back(out)
        return out
    return run


def et_flops(B, N, D, H, Y, K) -> float:
    """FLOPs of one ET step's products: K, Q and the memory scores, the product back, 3 bmm."""
    return 2 * B * N * D * 2 * H * Y * 2 + 2 * B * N * D * K * 2 + 3 * 2 * B * H * N * N * Y


def et_main(a, dev, sync) -> None:
    """ET descent: ``et_block`` (closed-form ∂E/∂g) against its products alone and a jitted JAX block."""
    B, N, D, H, Y, K = (int(v) for v in a.et.split(","))
    g = torch.Generator().manual_seed(0)
    E = hk.EnergyTransformerEnergy(D, H, Y, K, w_std=0.05, mem_std=0.05).to(dev)
    x0 = torch.randn(B, N, D, generator=g).to(dev)
    steps, alpha, beta = 12, 0.1, 1.0 / Y ** 0.5
    runs = {"et_block": lambda: hk.et_block(E, x0, alpha=alpha, steps=steps, record=False).xi,
            "products": et_products(E, x0, steps)}
    if dev.type == "cpu":
        try:
            blk = et_jax(*(t.detach().numpy() for t in (E.Wq, E.Wk, E.memories, E.ln_gamma, E.ln_delta)),
                         E.eps, beta, alpha, steps)
            import jax.numpy as jnp
            xj = jnp.asarray(x0.numpy())
            runs["jax"] = lambda: blk(xj).block_until_ready()
        except ImportError:
            print("ET: jax not importable, skipped")
    samples = alternate_samples(runs, a.repeats, sync=sync, settle=a.settle)
    flops = et_flops(B, N, D, H, Y, K) * steps
    print(f"ET block, B × N × D = {B} × {N} × {D}, H = {H}, Y = {Y}, K = {K}, {steps} steps of α = {alpha} "
          f"(ratio: time / et_block's in the same repeat, median; products: the step's matrix products alone, "
          f"its roofline):")
    for name, ts in samples.items():
        t = statistics.median(ts)
        print(f"{name:>10} {1e3 * t / steps:>9.3f} ms/step {flops / t / 1e9:>9.1f} GFLOP/s "
              f"{paired_ratio(samples, name, 'et_block'):>7.3f}")
    if "jax" in runs:
        import numpy as np
        err = float(np.abs(np.asarray(runs["jax"]()) - runs["et_block"]().numpy()).max())
        print(f"{'':>10} max |et_block - jax| = {err:.2e}")


def copy_bandwidth(dev, sync, megabytes: int) -> float:
    """Bytes per second of a device-to-device copy (read + write), the memory roof."""
    n = megabytes * (1 << 20) // 4
    src, dst = torch.ones(n, device=dev), torch.empty(n, device=dev)
    t = alternate({"copy": lambda: dst.copy_(src)}, 5, sync=sync)["copy"]
    return 2 * 4 * n / t


@torch.no_grad()  # inference, as the jitted peers: no graph is kept
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1024x64,16384x256,65536x512", help="comma-separated N x d ('': only the ET block)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=None, help="steps per run (default: by size)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--settle", type=float, default=0.1,
                    help="seconds of pause before each timed call, so the previous method's spinning "
                         "threads (OpenMP, XLA's pool) have gone idle and do not steal the cores")
    ap.add_argument("--et", default="32,64,128,4,32,512", help="ET block size B,N,D,H,Y,K ('' to skip)")
    allocator_flag(ap)
    a = ap.parse_args(argv)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {dev}, float32, B = {a.batch}")
    print(apply_allocator(a))
    bw = copy_bandwidth(dev, sync, 256 if dev.type == "cuda" else 64)
    mm_name = "mkl-mm" if dev.type == "cpu" else "cublas-mm"
    print(f"{'N x d':>12} {'steps':>5} {'method':>11} {'ms/step':>9} {'GFLOP/s':>9} {'% peak':>8} {'ratio':>7}")
    reported_skip = False
    for size in filter(None, a.sizes.split(",")):
        N, d = (int(v) for v in size.lower().split("x"))
        g = torch.Generator().manual_seed(0)
        X = torch.randn(N, d, generator=g).to(dev)
        xi0 = torch.randn(a.batch, d, generator=g).to(dev)
        beta = d ** -0.5
        # about 3e10 FLOPs a run on the CPU; a GPU's 40 TFLOP/s would make that a millisecond, where a
        # call's fixed costs dominate, so it gets 50× the work
        budget = 3e10 if dev.type == "cpu" else 1.5e12
        steps = min(50, a.steps or max(2, int(budget / (4 * a.batch * N * d))))
        E, f, f_op = hk.HopfieldEnergy(X), lse_energy(X), op_energy(X)
        S = torch.empty(a.batch, N, device=dev)
        runs = {
            "eager": lambda: hand_loop(X, xi0, beta, steps),
            "update": lambda: hk.descend(E, xi0, beta, method="update", steps=steps, tol=0, record=False).xi,
            "gd": lambda: hk.descend(E, xi0, beta, method="gd", step_size=1.0, steps=steps, tol=0, record=False).xi,
            "autodiff": lambda: hk.descend(f, xi0, beta, method="gd", step_size=1.0, steps=steps, tol=0,
                                           record=False).xi,
            "autodiff-op": lambda: hk.descend(f_op, xi0, beta, method="gd", step_size=1.0, steps=steps, tol=0,
                                              record=False).xi,
            mm_name: lambda: sgemm_loop(X, xi0, S, steps),
        }
        if dev.type == "cpu":
            runs.update(onednn_loops(X, xi0, steps))
        if dev.type == "cpu":
            peers, skipped = jax_methods(X.numpy(), xi0.numpy(), beta, steps)
            runs.update(peers)
            if skipped and not reported_skip:
                print(f"peers skipped (not importable): {', '.join(skipped)}")
                reported_skip = True
        samples = alternate_samples(runs, a.repeats, sync=sync, settle=a.settle)
        times = {k: statistics.median(v) for k, v in samples.items()}
        flops = 4.0 * a.batch * N * d * steps
        peak = max(flops / times[k] for k in (mm_name, "onednn-mm", "onednn-blk") if k in times)
        for name, t in times.items():
            print(f"{size:>12} {steps:>5} {name:>11} {1e3 * t / steps:>9.3f} {flops / t / 1e9:>9.1f} "
                  f"{100 * flops / t / peak:>7.0f}% {paired_ratio(samples, name, 'eager'):>7.3f}")
        moved = 4.0 * (2 * N * d + 2 * a.batch * d) * steps    # X read by both products, ξ in and out
        roof = max(flops / peak, moved / bw)
        print(f"{'':>12} roofline max(FLOPs / matmul peak, bytes / copy bandwidth {bw / 1e9:.0f} GB/s) = "
              f"{1e3 * roof / steps:.3f} ms/step; update at {times['update'] / roof:.2f}× it "
              f"({flops / times['update'] / 1e12:.3f} TFLOP/s, {moved / times['update'] / 1e9:.1f} GB/s)")
        ref = hand_loop(X, xi0, beta, steps)
        err = max((runs[m]() - ref).abs().max().item() for m in ("update", "gd", "autodiff", "autodiff-op"))
        print(f"{'':>12} max |hopfieldkit - eager| = {err:.2e}")
    if a.et:
        et_main(a, dev, sync)


if __name__ == "__main__":
    main()
