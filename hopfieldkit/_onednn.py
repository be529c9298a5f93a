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
import weakref

import torch
from torch._C import _functorch

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
    if os.environ.get("HOPFIELDKIT_ONEDNN", "1") == "0" or not torch.backends.mkldnn.is_available():
        return False
    if _works is None:
        _works = _ops is not None and hasattr(_ops, "_linear_pointwise") and _smoke_test()
    return _works


# below this many pattern entries (N·d), per-call overheads eat the gain. Measured, B = 256, step
# time oneDNN / plain matmul: 0.6–1.2 at 1024×64 (noisy; median of runs ≈ 0.8), 0.7–0.85 at
# 2048×64, 0.56–0.71 at 4096×64, 0.34 at 16384×256, 0.41 at 65536×512
MIN_PATTERN_ELEMENTS = 1 << 15


MIN_ROWS = 8   # fewer states (matrix-vector products): the plain path; packing is tuned per batch size


def cacheable(X: torch.Tensor) -> bool:
    """Whether a value computed from X may be kept: a plain tensor (no transform, no tracing) that
    needs no gradient here."""
    if torch.compiler.is_compiling() or _in_transform():   # (functorch-wrapped tensors exist only there)
        return False
    return not (torch.is_grad_enabled() and X.requires_grad)


def _in_transform() -> bool:
    """Inside a torch.func transform (grad, vmap, jvp): results computed there belong to it."""
    return _functorch.peek_interpreter_stack() is not None


def usable(X: torch.Tensor, xi: torch.Tensor, elements: int | None = None) -> bool:
    """Whether the products of ``xi`` [..., d] with ``X`` [N, d] may take the oneDNN path
    (``elements``: the size of the matrix to pack, when X is only one of its parts)."""
    if (X.numel() if elements is None else elements) < MIN_PATTERN_ELEMENTS:
        return False
    if xi.numel() < MIN_ROWS * xi.shape[-1]:
        return False
    if X.device.type != "cpu" or X.dtype != torch.float32 or xi.dtype != torch.float32 or xi.device.type != "cpu":
        return False
    if torch.compiler.is_compiling() or _in_transform():
        return False
    if torch.is_grad_enabled() and (xi.requires_grad or X.requires_grad):
        return False
    return available()


# Patterns per block: blocks of about BLOCK_BYTES of scores ([B, chunk] float32; 8192 patterns at
# B = 256), one block when N is at most twice that. Measured at B = 256, ms per step by chunk:
# 16384 × 256: 4096 → 14.3, one block → 12.4; 65536 × 512: 4096 → 135, 8192 → 128, 16384 → 126,
# one 64 MB block → 140; 32768 × 256: 8192 → 34, one 32 MB block → 45 (a buffer that size is
# mapped fresh, :mod:`._malloc`); 65536 × 128: 4096 → 34, 8192 → 32, one block → 53.
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
    each block's buffer is freed before the next is made, so the allocator reuses it (fresh 4 MB
    buffers cost page faults: 25 % of the step time, measured at N × d = 16384 × 256).
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
        instead of faulting in fresh pages (measured: 57k page faults, 85–240 ms of system time
        per step at 65536 × 512, more than the products themselves)."""
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


_shared: dict = {}   # (name, id) → (key, packed, weak references to the sources): cached(None, ...)


def packed_patterns(owner: object | None, X: torch.Tensor, xi: torch.Tensor) -> PackedPatterns:
    """X packed for states like ``xi`` [..., d], cached in ``owner``; packed anew when the batch
    grows past twice the one it was packed for (oneDNN's layout is chosen per batch size: 9 %
    slower at B = 256 when packed for B = 1, measured at 65536 × 512)."""
    rows = max(1, xi.numel() // X.shape[1])
    return cached(owner, "patterns", (X,), lambda: PackedPatterns(X, rows), fits=lambda p: rows <= 2 * p.batch)


def cached(owner: object | None, name: str, sources: tuple, build, fits=None):
    """``build()`` (a packed matrix), kept in ``owner`` under ``name`` until one of the ``sources``
    tensors is replaced or written in place (or ``fits(value)`` is False). The sources are kept alive with it, so their ids
    cannot be reused by fresh tensors (a fresh f_LT(γ) every call is never served a stale copy).

    ``owner=None`` (plain function calls): module-wide entries, one per name and first source, that
    hold the sources only weakly; an entry is dropped when its source is freed, so no user tensor
    is kept alive by it."""
    key = tuple((id(t), t._version) for t in sources)
    if owner is None:
        slot = (name, key[0][0])          # one entry per name and live source: energies that sum
        hit = _shared.get(slot)           # two lse_similarity terms do not evict each other
        if hit is None or hit[0] != key or any(r() is None for r in hit[2]) or (fits and not fits(hit[1])):
            def drop(_ref, slot=slot, key=key):
                if _shared.get(slot, (None,))[0] == key:
                    _shared.pop(slot, None)
            hit = _shared[slot] = (key, build(), tuple(weakref.ref(t, drop) for t in sources))
        return hit[1]
    store = owner.__dict__.setdefault("_packed_cache", {})   # name → (key, packed, sources)
    hit = store.get(name)
    if hit is None or hit[0] != key or (fits and not fits(hit[1])):
        hit = store[name] = (key, build(), sources)
    return hit[1]
