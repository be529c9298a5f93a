"""hopfieldkit.nn.Hopfield against a hand-written multi-head attention, and implicit-gradient memory.

    python benchmarks/nn_layers.py                       # CPU defaults
    python benchmarks/nn_layers.py --device cuda --batch 64 --tokens 256 --dim 512

Part 1: a training step (forward + backward) of ``Hopfield(dim, heads, steps=1)`` and of the same
projections with softmax(QKᵀ/√d)V written out in eager torch, alternating in each repeat; the
ratio is the hand-written step's time over the layer's, median over repeats (> 1: the layer is
faster). One step with projections is that attention, so the two compute the same numbers.
Part 2: bytes the autograd graph saves for an association of 10 and of 100 steps, unrolled and
implicit (``steps=None, implicit=True``): the implicit one is constant in the steps.
"""
from __future__ import annotations

import argparse
import warnings

import torch
from torch import nn

import hopfieldkit as hk
from _timing import alternate_samples, paired_ratio   # benchmarks/_timing.py (this folder is on sys.path)


class HandMHA(nn.Module):
    """Multi-head attention in plain eager torch: the baseline."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, R: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        B, S, D = R.shape
        split = lambda x: x.view(B, x.shape[1], self.heads, -1).transpose(1, 2)
        q, k, v = split(self.q(R)), split(self.k(Y)), split(self.v(Y))
        w = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
        return self.o((w @ v).transpose(1, 2).reshape(B, S, D))


def saved_bytes(fn) -> int:
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total[0]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=64, help="states S = stored N")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    layer = hk.nn.Hopfield(args.dim, heads=args.heads).to(dev)
    hand = HandMHA(args.dim, args.heads).to(dev)
    for a, b in zip((hand.q, hand.k, hand.v, hand.o), (layer.q_proj, layer.k_proj, layer.v_proj, layer.out_proj)):
        a.load_state_dict(b.state_dict())
    R = torch.randn(args.batch, args.tokens, args.dim, device=dev)
    Y = torch.randn(args.batch, args.tokens, args.dim, device=dev)
    with torch.no_grad():
        err = float((layer(R, Y) - hand(R, Y)).abs().max())

    def step(m):
        def run():
            m.zero_grad(set_to_none=True)
            m(R, Y).square().mean().backward()
        return run

    print(f"device {dev}, torch {torch.__version__}, threads {torch.get_num_threads()}; batch {args.batch}, "
          f"{args.tokens} states x {args.tokens} stored, dim {args.dim}, {args.heads} heads, {args.repeats} repeats")
    samples = alternate_samples({"hopfield": step(layer), "hand": step(hand)}, args.repeats, sync=sync)
    ratio = paired_ratio(samples, "hand", "hopfield")
    ms = {k: 1e3 * sorted(v)[len(v) // 2] for k, v in samples.items()}
    print(f"one step (forward + backward): Hopfield {ms['hopfield']:.3f} ms, hand-written MHA {ms['hand']:.3f} ms; "
          f"hand / Hopfield = {ratio:.2f}x (median of paired repeats); max |difference| = {err:.2e}")

    q, k, v = (torch.randn(args.batch, args.heads, args.tokens, args.dim // args.heads, device=dev,
                           requires_grad=True) for _ in range(3))
    beta = 0.5 / (args.dim // args.heads) ** 0.5

    def assoc(implicit: bool, n: int):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hk.nn.ConvergenceWarning)
            if implicit:   # tol 1e-30 is never met: exactly n updates
                return hk.nn.associate(q, k, v, beta, steps=None, tol=1e-30, max_steps=n, implicit=True)
            return hk.nn.associate(q, k, v, beta, steps=n + 1)

    mem = {(imp, n): saved_bytes(lambda: assoc(imp, n)) for imp in (False, True) for n in (10, 100)}
    for imp in (False, True):
        print(f"saved by autograd, {'implicit' if imp else 'unrolled'}: 10 steps {mem[imp, 10] / 2**20:.2f} MiB, "
              f"100 steps {mem[imp, 100] / 2**20:.2f} MiB")
    return {"ratio": ratio, "err": err, "memory": mem}


if __name__ == "__main__":
    main()
