"""oneDNN products for the CPU: S = ξ Xᵀ and ξ' = P X with X packed once into oneDNN's blocked layout.

On CPUs where MKL's sgemm is slow for these shapes, oneDNN's linear kernel on a packed matrix is
2–3× faster (``benchmarks/peers.py`` measures both; ``benchmarks/results/tuning.md`` keeps the
measurements behind the constants here). torch ships the kernel (``torch.ops.mkldnn``) but uses
it only under torch.compile, so the Hopfield energies and the ET descent direction call it
directly where :mod:`.policy` lets them. It has no derivative: only graph-free paths use it.

:func:`applies` holds the conditions that are about this kernel (float32 on the CPU, sizes at
which packing pays, kernels that pass a one-time check); :func:`available` the check itself.
``HOPFIELDKIT_ONEDNN=0`` in the environment turns the kernels off.
"""
from __future__ import annotations

import os

import torch

_ops = getattr(torch.ops, "mkldnn", None)


_works: bool | None = None  # the result of the one-time check below


def _smoke_test() -> bool:
    """Pack a small matrix and multiply: the kernels exist on this build and CPU, and agree with matmul."""
    try:
        g = torch.Generator().manual_seed(0)
        W, x = torch.randn(64, 32, generator=g), torch.randn(8, 32, generator=g)
        out = _ops._linear_pointwise(x, _ops._reorder_linear_weight(W, 8), None, "none", [], "")
        s = 3 * torch.randn(4, 8, 64, generator=g)
        ref0, ref1 = torch.softmax(s, -1), torch.softmax(s, -2)
        s1 = s.clone()
        return (bool(torch.allclose(out, x @ W.T, atol=1e-4))
                and bool(torch.allclose(_softmax_(s, -1, False, out=s), ref0))
                and bool(torch.allclose(_softmax_(s1, -2, False, out=s1), ref1)))
    except (RuntimeError, AttributeError, NotImplementedError):
        return False


def available() -> bool:
    """True when torch's oneDNN linear kernels work here (checked once) and the fast path is not
    switched off with ``HOPFIELDKIT_ONEDNN=0``."""
    global _works
    if os.environ.get("HOPFIELDKIT_ONEDNN", "1") == "0":
        return False
    if _works is None:
        _works = (torch.backends.mkldnn.is_available() and _ops is not None
                  and hasattr(_ops, "_linear_pointwise") and _smoke_test())
    return _works


# Below this many pattern entries (N·d) per-call overheads eat the gain of packing.
MIN_PATTERN_ELEMENTS = 1 << 15

MIN_ROWS = 8   # fewer states (matrix-vector products): the plain path; packing is tuned per batch size


def applies(X: torch.Tensor, xi: torch.Tensor, elements: int | None = None) -> bool:
    """Whether the products of ``xi`` [..., d] with ``X`` [N, d] suit the kernel (``elements``: the
    size of the matrix to pack, when X is only one of its parts). The graph and tracing conditions
    are :mod:`.policy`'s."""
    if (X.numel() if elements is None else elements) < MIN_PATTERN_ELEMENTS:
        return False
    if xi.numel() < MIN_ROWS * xi.shape[-1]:
        return False
    if X.device.type != "cpu" or X.dtype != torch.float32 or xi.dtype != torch.float32 or xi.device.type != "cpu":
        return False
    return available()


# Patterns per block: blocks of about BLOCK_BYTES of scores ([B, chunk] float32; 8192 patterns at
# B = 256), one block when N is at most twice that: big enough to run at the kernel's speed, small
# enough that a block's buffer is reused from the heap rather than mapped fresh.
BLOCK_BYTES = 8 << 20
CHUNK: int | None = None   # a fixed number of patterns per block instead (tests)


def chunk_for(batch: int, itemsize: int = 4) -> int:
    """Patterns per block for states of ``batch`` rows."""
    if CHUNK is not None:
        return CHUNK
    return max(1024, BLOCK_BYTES // (itemsize * max(1, batch)))


class Product:
    """x ↦ x Wᵀ (optionally ReLU(x Wᵀ), fused) for a fixed W [K, D] and x [..., D]: through oneDNN
    with W packed once for about ``batch`` rows when ``packed``, else a plain matmul (the same
    numbers up to rounding; any dtype and device)."""

    def __init__(self, W: torch.Tensor, batch: int, packed: bool = True):
        with torch.no_grad():
            self.K, self.D = W.shape
            self.W = W.detach()
            self.w = _ops._reorder_linear_weight(self.W.contiguous(), batch) if packed else None

    def __call__(self, x: torch.Tensor, relu: bool = False) -> torch.Tensor:
        flat = x.reshape(-1, self.D)
        if self.w is None:
            y = flat @ self.W.transpose(0, 1)
            y = y.relu_() if relu else y
        else:
            y = _ops._linear_pointwise(flat.contiguous(), self.w, None, "relu" if relu else "none", [], "")
        return y.reshape(*x.shape[:-1], self.K)


class PackedMatrix:
    """W [K, D] packed once for oneDNN: ``times_t(x) = x Wᵀ`` and ``times(z) = z W`` for x [..., D], z [..., K]."""

    def __init__(self, W: torch.Tensor, batch: int):
        self.K, self.D = W.shape
        self.times_t = Product(W, batch)
        self.times = Product(W.detach().t(), batch)


_softmax_ = torch.ops.aten._softmax.out   # softmax written over its input: no fresh [B, chunk] buffer


def softmax_inplace(s: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """s ← softmax(s) along ``dim``, in place (torch's softmax kernel: its exp stays fast on
    underflowing inputs, unlike ``torch.exp`` through MKL here). Returns s. Where the one-time check
    of :func:`available` did not pass (or the fast paths are off), a copy of the plain softmax."""
    if torch.compiler.is_compiling() or not available():   # (compiled code fuses it anyway)
        return s.copy_(torch.softmax(s, dim))
    return _softmax_(s, dim, False, out=s)


def softmax_lse(s: torch.Tensor, out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(softmax(s), log Σ_j exp(s_j) [..., 1]) along the last axis from the softmax kernel alone:
    ℓ = max_j s_j − log max_j p_j (exact: p at the arg-max is exp(max − ℓ), never underflowing).
    The softmax is written over s (a fresh score buffer), or into ``out``."""
    m = s.amax(-1, keepdim=True)
    p = softmax_inplace(s) if out is None else _softmax_(s, -1, False, out=out)
    return p, m - torch.log(p.amax(-1, keepdim=True))


class PackedPatterns:
    """X [N, d] packed for oneDNN in blocks of :func:`chunk_for` patterns (one :class:`PackedMatrix` each).

    For q = βξ ([..., d]) and block c with scores s_c = q X_cᵀ: p_c = softmax(s_c), its
    log-normaliser ℓ_c = log Σ_j exp(s_cj) = max_j s_cj − log max_j p_cj, and y_c = p_c X_c. Then
    lse(s) = log Σ_c exp(ℓ_c) and softmax(s) X = Σ_c exp(ℓ_c − lse) y_c, accumulated block by block
    (a streaming softmax, as in flash attention): the whole [B, N] score matrix is never held, and
    each block's buffer is freed before the next is made, so the allocator reuses it instead of
    faulting in fresh pages.
    """

    def __init__(self, X: torch.Tensor, batch: int, chunk: int | None = None):
        N = X.shape[0]
        self.batch = batch
        chunk = chunk_for(batch, X.element_size()) if chunk is None else chunk
        if N <= 2 * chunk:
            chunk = N
        self.blocks = [PackedMatrix(X[i:i + chunk], batch) for i in range(0, N, chunk)]
        self._pool: list[list[torch.Tensor]] = []      # buffers for kept softmax weights, see lse

    def _block_softmax(self, blk: PackedMatrix, q: torch.Tensor, out: torch.Tensor | None = None):
        """(p_c, ℓ_c [..., 1]) for one block; p_c is written over the scores, or into ``out``."""
        return softmax_lse(blk.times_t(q), out)

    def step(self, q: torch.Tensor) -> torch.Tensor:
        """softmax(q Xᵀ) X for q of shape [..., d]."""
        if len(self.blocks) == 1:
            blk = self.blocks[0]
            return blk.times(softmax_inplace(blk.times_t(q)))
        acc = lse = None
        for blk in self.blocks:
            p, ell = self._block_softmax(blk, q)
            y = blk.times(p)
            del p
            acc, lse = _merge(acc, lse, y, ell)
            del y
        return acc

    def lse(self, q: torch.Tensor, keep: bool = False):
        """log Σ_i exp(q x_i), shape [..., 1]; with ``keep``, also the blocks' softmax weights, as
        a :class:`Kept` for :meth:`weighted_sum` (the backward pass of the lse). Their buffers come
        from a pool that :meth:`release` refills, so repeated forward/backward passes reuse memory
        instead of faulting in fresh pages (the pool holds one set: the memory of one p; see
        :func:`hopfieldkit.clear_caches`)."""
        total, kept = None, Kept(self._take(q) if keep else None)
        for i, blk in enumerate(self.blocks):
            p, ell = self._block_softmax(blk, q, kept.buffers[i] if keep else None)
            total = ell if total is None else torch.logaddexp(total, ell)
            if keep:
                kept.blocks.append((p, ell))
            del p
        return (total, kept) if keep else total

    def _take(self, q: torch.Tensor) -> list[torch.Tensor]:
        """One buffer per block for the softmax weights of states like q: from the pool, or new."""
        batch_shape = q.shape[:-1]
        rows = batch_shape.numel()
        for i, bufs in enumerate(self._pool):
            if bufs[0].shape[0] == rows and bufs[0].dtype == q.dtype:
                return [b.view(*batch_shape, b.shape[1]) for b in self._pool.pop(i)]
        return [torch.empty(*batch_shape, blk.K, dtype=q.dtype) for blk in self.blocks]

    def release(self, kept: "Kept") -> None:
        """Return the buffers of ``kept`` to the pool (one set is kept: the memory of one p)."""
        if kept.buffers is not None:
            self._pool[:] = [[b.reshape(-1, b.shape[-1]) for b in kept.buffers]]
        kept.buffers, kept.blocks = None, []

    def weighted_sum(self, kept, lse: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """Σ_c g·exp(ℓ_c − lse) p_c X_c = g · softmax(q Xᵀ) X from the blocks kept by :meth:`lse`
        (g: per-state factors [..., 1], or None for 1)."""
        if len(self.blocks) == 1:                    # one block: its ℓ is the lse, the weight 1
            y = self.blocks[0].times(kept.blocks[0][0])
            return y if g is None else y.mul_(g)
        acc = None
        for blk, (p, ell) in zip(self.blocks, kept.blocks):
            w = torch.exp(ell - lse)
            if g is not None:
                w = w * g
            acc = blk.times(p).mul_(w) if acc is None else acc.addcmul_(blk.times(p), w)
        return acc


class Kept:
    """Softmax weights kept by :meth:`PackedPatterns.lse`: ``blocks`` = [(p_c, ℓ_c)], in ``buffers``."""

    def __init__(self, buffers):
        self.buffers, self.blocks = buffers, []


def _merge(acc, lse, y, ell):
    """Streaming softmax: fold block (y_c, ℓ_c) into the running (Σ weighted y, lse)."""
    if acc is None:
        return y, ell
    new = torch.logaddexp(lse, ell)
    acc.mul_(torch.exp(lse - new)).addcmul_(y, torch.exp(ell - new))
    return acc, new
