"""A CPU fast path for the two products of a Hopfield step, S = ξ Xᵀ and ξ' = P X.

On CPUs where MKL's sgemm is slow (measured here, an AMD EPYC: 107–172 GFLOP/s for these shapes),
oneDNN's linear kernel with the pattern matrix packed once into its blocked layout reaches
357–417 GFLOP/s, the level of XLA. torch ships the kernel (``torch.ops.mkldnn``) but uses it only
under torch.compile, so :class:`~hopfieldkit.HopfieldEnergy` (its update) and
:class:`~hopfieldkit.EnergyTransformerEnergy` (its descent direction) call it directly when they can:

- float32 tensors on the CPU, torch built with oneDNN (``torch.backends.mkldnn``), and at least
  :data:`MIN_PATTERN_ELEMENTS` pattern entries N·d (below, the plain matmul is as fast);
- no autograd graph needed (grad mode off, or neither ξ nor X requires grad): the kernel has no
  derivative, so training paths keep the plain matmul;
- not inside a torch.func transform or torch.compile tracing.

``HOPFIELDKIT_ONEDNN=0`` in the environment turns it off. A test checks it against the plain path.
"""
from __future__ import annotations

import os

import torch
from torch._C._functorch import is_functorch_wrapped_tensor

_ops = getattr(torch.ops, "mkldnn", None)


_works: bool | None = None  # the result of the one-time check below


def _smoke_test() -> bool:
    """Pack a small matrix and multiply: the kernels exist on this build and CPU, and agree with matmul."""
    try:
        g = torch.Generator().manual_seed(0)
        W, x = torch.randn(64, 32, generator=g), torch.randn(8, 32, generator=g)
        out = _ops._linear_pointwise(x, _ops._reorder_linear_weight(W, 8), None, "none", [], "")
        return bool(torch.allclose(out, x @ W.T, atol=1e-4))
    except (RuntimeError, AttributeError, NotImplementedError):
        return False


def available() -> bool:
    """True when torch's oneDNN linear kernels work here (checked once) and the fast path is not
    switched off with ``HOPFIELDKIT_ONEDNN=0``."""
    global _works
    if os.environ.get("HOPFIELDKIT_ONEDNN", "1") == "0" or not torch.backends.mkldnn.is_available():
        return False
    if _works is None:
        _works = _ops is not None and hasattr(_ops, "_linear_pointwise") and _smoke_test()
    return _works


# below this many pattern entries (N·d), per-call overheads eat the gain. Measured, B = 256, step
# time oneDNN / plain matmul: 0.6–1.2 at 1024×64 (noisy; median of runs ≈ 0.8), 0.7–0.85 at
# 2048×64, 0.56–0.71 at 4096×64, 0.34 at 16384×256, 0.41 at 65536×512
MIN_PATTERN_ELEMENTS = 1 << 15


def usable(X: torch.Tensor, xi: torch.Tensor, elements: int | None = None) -> bool:
    """Whether the products of ``xi`` [..., d] with ``X`` [N, d] may take the oneDNN path
    (``elements``: the size of the matrix to pack, when X is only one of its parts)."""
    if (X.numel() if elements is None else elements) < MIN_PATTERN_ELEMENTS:
        return False
    if X.device.type != "cpu" or X.dtype != torch.float32 or xi.dtype != torch.float32 or xi.device.type != "cpu":
        return False
    if torch.compiler.is_compiling() or is_functorch_wrapped_tensor(xi) or is_functorch_wrapped_tensor(X):
        return False
    if torch.is_grad_enabled() and (xi.requires_grad or X.requires_grad):
        return False
    return available()


CHUNK = 4096  # patterns per block: a [B, 4096] score block stays in cache (measured: 4096–8192 best)


class PackedMatrix:
    """W [K, D] packed once for oneDNN: ``times_t(x) = x Wᵀ`` and ``times(z) = z W`` for x [..., D], z [..., K]."""

    def __init__(self, W: torch.Tensor, batch: int):
        with torch.no_grad():
            self.K, self.D = W.shape
            Wd = W.detach()
            self.w = _ops._reorder_linear_weight(Wd.contiguous(), batch)
            self.wt = _ops._reorder_linear_weight(Wd.t().contiguous(), batch)

    def times_t(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.D).contiguous()
        return _ops._linear_pointwise(flat, self.w, None, "none", [], "").reshape(*x.shape[:-1], self.K)

    def times(self, z: torch.Tensor) -> torch.Tensor:
        flat = z.reshape(-1, self.K).contiguous()
        return _ops._linear_pointwise(flat, self.wt, None, "none", [], "").reshape(*z.shape[:-1], self.D)


class PackedPatterns:
    """X [N, d] packed for oneDNN in blocks of :data:`CHUNK` patterns (one :class:`PackedMatrix` each).

    ``step(q)`` returns softmax(q Xᵀ) X for q = βξ ([..., d]) block by block, never holding the whole
    [B, N] score matrix: per block, p_c = softmax(q X_cᵀ) (torch's softmax kernel, whose exp is fast
    also on underflowing inputs), its log-normaliser ℓ_c = max_j s_cj − log max_j p_cj, and y_c = p_c X_c;
    then ξ' = Σ_c softmax_c(ℓ)_c y_c, which is exactly softmax(q Xᵀ) X (a streaming softmax).
    """

    def __init__(self, X: torch.Tensor, batch: int, chunk: int = CHUNK):
        N = X.shape[0]
        if N <= 2 * chunk:
            chunk = N
        self.blocks = [PackedMatrix(X[i:i + chunk], batch) for i in range(0, N, chunk)]

    def step(self, q: torch.Tensor) -> torch.Tensor:
        """softmax(q Xᵀ) X for q of shape [..., d]."""
        if len(self.blocks) == 1:
            blk = self.blocks[0]
            return blk.times(torch.softmax(blk.times_t(q), dim=-1))
        ys, ells = [], []
        for blk in self.blocks:
            s = blk.times_t(q)
            p = torch.softmax(s, dim=-1)
            ells.append(s.amax(-1) - torch.log(p.amax(-1)))
            ys.append(blk.times(p))
        weights = torch.softmax(torch.stack(ells, -1), dim=-1)            # [..., blocks]
        return (weights.unsqueeze(-1) * torch.stack(ys, -2)).sum(-2)


def cached(owner: object, name: str, sources: tuple, build):
    """``build()`` (a packed matrix), kept in ``owner`` under ``name`` until one of the ``sources``
    tensors is replaced or written in place. The sources are kept alive with it, so their ids
    cannot be reused by fresh tensors (a fresh f_LT(γ) every call is never served a stale copy)."""
    key = tuple((id(t), t._version) for t in sources)
    store = owner.__dict__.setdefault("_packed_cache", {})   # name → (key, packed, sources)
    hit = store.get(name)
    if hit is None or hit[0] != key:
        hit = store[name] = (key, build(), sources)
    return hit[1]
