"""The Associative Transformer (AiT) and its workspace (``docs/ait.md``; equation by equation).

One AiT block (pre-norm; the feed-forward sub-layer is replaced by the Global Workspace Layer):

    x ← x + MHSA(LN_a(x))
    z = LN_z(MLP(LN_b(x)));  Z = z squashed to the pool of all B·N patches of the batch
    write: each of M low-rank priors γ ∈ R^{M×d_m} picks its top-k patches of the pool per head
           (a top-k truncated posterior, ``hopfieldkit.bayes.TopK``), γ̃ = LN_γ(γ + W_O concat_h G_h V_h)
    EMA:   γ ← normalise_rows(ρ γ + (1 − ρ) γ̃)                                  (ρ = 0.9)
    balance loss σ Σ_h (CV²(importance_h) + CV²(load_h)) over the pool          (σ = 1e-2)
    read:  ẑ = Hopfield descent on the low-rank prior energy, attractors Y = f_LT(γ)
           (``hopfieldkit.LowRankPriorEnergy`` + ``hopfieldkit.descend``)
    x ← x + ẑ + z

Presets (``AiTConfig.preset``):

- ``"paper"`` reproduces the released code: memory written in eval too, write path without gradient
  (γ̃ detached before the EMA), one Hopfield step at β = 1, the unused position embedding, CLS token
  and conv counted in the parameters (15,784,426 / 45,876,970 / 91,015,786 for small / medium /
  base on CIFAR-10).
- ``"ait"`` (default) fixes what ``docs/ait.md`` lists: the memory is frozen in
  ``eval()`` (a prediction does not depend on the other samples of its batch), the write path learns
  (the EMA'd priors keep the gradient of γ̃), ``hopfield_steps`` iterations with the energy recorded,
  no unused tensors.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, fields

import torch
from torch import nn

import hopfieldkit as hk
from hopfieldkit import bayes
from hopfieldkit.settings import check, setting

from ..data.common import InputSpec
from . import fused_read, fused_write
from .layers import POS_EMBEDDINGS, STEM_HELP, STEMS, FeedForward, SelfAttention, Tokens, check_patch, num_tokens

SIZES = {
    # tiny (CPU): fixed sincos position codes, which the tiny model needs to learn Triangle
    # (benchmarks/results/tuning.md)
    "tiny": dict(dim=64, depth=2, heads=4, dim_head=16, mlp_dim=128, num_priors=8, prior_dim=16, memory_heads=2,
                 bottleneck=32, pos_embedding="sincos"),
    "small": dict(dim=768, depth=2, heads=12, dim_head=64, mlp_dim=3072, num_priors=32, prior_dim=32,
                  memory_heads=8, bottleneck=512),
    "medium": dict(dim=768, depth=6, heads=12, dim_head=64, mlp_dim=3072, num_priors=32, prior_dim=32,
                   memory_heads=8, bottleneck=512),
    "base": dict(dim=768, depth=12, heads=12, dim_head=64, mlp_dim=3072, num_priors=32, prior_dim=32,
                 memory_heads=8, bottleneck=512),
}
PRESETS = {
    "ait": dict(preset="ait"),
    "paper": dict(preset="paper", freeze_memory_in_eval=False, learn_write=False, unused_tensors=True,
                  hopfield_steps=1, beta=1.0, pos_embedding="none"),
}
KNOCKOUTS = ("memory_mean", "memory_random", "no_hopfield", "dense_bottleneck")


@dataclass
class AiTConfig:
    """The architecture of AiT (and of ViT, its ``memory=False`` case). Every field is typed and
    range-checked on construction; :func:`make_config` fills sizes and presets."""

    patch: int = setting(4, "patch side in pixels", ge=1)
    pos_embedding: str = setting("none", "none (the paper: attention is blind to position, only the head "
                                 "sees it), learned, or sincos (fixed 2-D codes; the tiny default)", choices=POS_EMBEDDINGS)
    stem: str = setting("patch", STEM_HELP, choices=STEMS)
    # backbone
    dim: int = setting(768, "token width D", ge=1)
    depth: int = setting(2, "blocks", ge=1)
    heads: int = setting(12, "self-attention heads", ge=1)
    dim_head: int = setting(64, "width per self-attention head", ge=1)
    mlp_dim: int = setting(3072, "hidden width of the workspace / feed-forward MLP", ge=1)
    # global workspace
    num_priors: int = setting(32, "priors M in each workspace memory", ge=1)
    prior_dim: int = setting(32, "prior width d_m", ge=1)
    memory_heads: int = setting(8, "heads of the bottleneck write", ge=1)
    bottleneck: int = setting(512, "k: patches of the pool each prior selects", ge=1)
    beta: float = setting(1.0, "inverse temperature of the Hopfield read", gt=0)
    learn_beta: bool = setting(False, "learn log β by gradient")
    ema: float = setting(0.9, "EMA factor ρ of the memory write", ge=0, le=1)
    balance_weight: float = setting(1e-2, "σ, weight of the balance loss", ge=0)
    write_dropout: float = setting(0.1, "dropout on the written content", ge=0, lt=1)
    hopfield_steps: int = setting(1, "update steps of the Hopfield read", ge=1)
    # against the collapse of the memory (docs/ait.md, "What the memory does"); off = the paper
    read_radius: float = setting(0.0, "0: the paper's dot-product read; > 0: attractors scaled to this "
                                 "norm, a cosine read (sqrt(dim) is the norm of a LayerNorm'd token)", ge=0)
    write_centered: bool = setting(False, "the write reads the pool minus its mean (no common pull on the priors)")
    read_skip: bool = setting(True, "the block adds z beside the read (the paper); False: the read alone")
    # preset behaviour
    preset: str = setting("ait", "ait (fixed) or paper (the released code)", choices=tuple(PRESETS))
    freeze_memory_in_eval: bool = setting(True, "no memory writes in eval()")
    learn_write: bool = setting(True, "the write path gets gradients")
    unused_tensors: bool = setting(False, "build the released code's unused tensors (counted)")
    # ablations (the poster's ablation table; docs/ait.md says how each is read)
    self_attention: bool = setting(True, "self-attention sub-layer")
    hopfield: bool = setting(True, "False: a learned cross-attention reads the priors instead")
    balance_loss: bool = setting(True, "add the balance loss")
    bottleneck_on: bool = setting(True, "False: dense attention over the whole pool")
    memory: bool = setting(True, "False: the block is a plain ViT block (= ViT)")
    reset_memory_every: int = setting(0, "> 0: re-initialise the memory every that many training steps", ge=0)
    # data parallel: all-gather the pool across ranks, so the workspace sees the global batch and
    # every rank makes the identical write (the memory stays the same on every rank)
    gather_pool: bool = setting(True, "all-gather the pool across data-parallel ranks")

    def __post_init__(self):
        check(self)


def make_config(size: str = "tiny", preset: str = "ait", **overrides) -> AiTConfig:
    """A config from a size name (tiny / small / medium / base) and a preset (ait / paper)."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose from {sorted(SIZES)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose 'ait' or 'paper'")
    names = {f.name for f in fields(AiTConfig)}
    bad = set(overrides) - names
    if bad:
        raise ValueError(f"unknown config fields {sorted(bad)}; valid fields: {sorted(names)}")
    return AiTConfig(**{**SIZES[size], **PRESETS[preset], **overrides})


def cv_squared(v: torch.Tensor) -> torch.Tensor:
    """CV²(v) = Var(v) / (mean(v)² + 1e-10) along the last axis, unbiased variance (as the released
    code); 0 for fewer than two entries."""
    n = v.shape[-1]
    if n < 2:
        return v.new_zeros(v.shape[:-1])
    mean = v.sum(-1, keepdim=True) / n          # two passes by hand: torch.var_mean is slower on these rows
    d = v - mean
    return (d * d).sum(-1) / (n - 1) / (mean.squeeze(-1) ** 2 + 1e-10)


def dense_gates(w: torch.Tensor, index: torch.Tensor | None, pool: int) -> torch.Tensor:
    """G ``[H_m, M, P]`` from the write's ``(w, index)`` (zero outside each prior's k patches); dense
    gates (``index`` None) pass through."""
    return w if index is None else w.new_zeros(*w.shape[:2], pool).scatter(-1, index, w)


def balance_loss(w: torch.Tensor, index: torch.Tensor | None, pool: int, weight: float) -> torch.Tensor:
    """σ Σ_h (CV²(importance_h) + CV²(load_h)): importance_hp = Σ_m G_hmp, load_hp = #{m : p chosen
    by prior m} (the patches with G_hmp > 0 of the dense posterior). ``w``/``index`` as
    :meth:`GlobalWorkspace.select` returns them."""
    if index is None:
        both = torch.stack((w.sum(1), (w > 0).to(w.dtype).sum(1)))               # [2, H, P]
    else:  # one scatter of (w, 1) over each head's M·k choices
        flat, src = index.flatten(1), w.flatten(1)                               # [H, M·k]
        both = w.new_zeros(2, w.shape[0], pool).scatter_add(
            -1, flat.expand(2, -1, -1), torch.stack((src, torch.ones_like(src))))
    return weight * cv_squared(both).sum()                                       # importance, load


@dataclass
class WorkspaceTrace:
    """What one workspace did in one forward pass (collected only when a trace list is passed)."""

    z: torch.Tensor            # [B, N, D] the read's input (the squashed patch representations)
    priors: torch.Tensor       # [M, d_m] the priors the read used
    gates: torch.Tensor | None  # [H_m, M, P] the write's gates over the pool (None: no write this pass)
    read: hk.Descent | None    # the Hopfield read (None when it was skipped or replaced)
    out: torch.Tensor          # [B, N, D] ẑ, the read's output


class GlobalWorkspace(nn.Module):
    """The Global Workspace Layer (§1.4–1.11): MLP, squash, bottleneck write, EMA, balance loss, Hopfield read."""

    def __init__(self, cfg: AiTConfig):
        super().__init__()
        self.cfg = cfg
        D, dm, Hm = cfg.dim, cfg.prior_dim, cfg.memory_heads
        self.mlp = nn.Sequential(nn.Linear(D, cfg.mlp_dim), nn.GELU(), nn.Linear(cfg.mlp_dim, D))
        self.norm_z = nn.LayerNorm(D)
        self.to_q = nn.Linear(dm, Hm * dm, bias=False)
        self.to_k = nn.Linear(D, Hm * dm, bias=False)
        self.to_v = nn.Linear(D, Hm * dm, bias=False)
        self.to_out = nn.Linear(Hm * dm, dm, bias=False)
        self.norm_gamma = nn.LayerNorm(dm, eps=1e-6)
        self.drop = nn.Dropout(cfg.write_dropout)
        init = torch.randn(cfg.num_priors, dm)
        if cfg.preset == "paper":  # a Parameter without grad in the released code (counted: 1,024 at M = d_m = 32)
            self.memory = nn.Parameter(init, requires_grad=False)
        else:
            self.register_buffer("memory", init)
        self.read = hk.LowRankPriorEnergy(cfg.num_priors, dm, D,     # holds f_LT: d_m → D
                                          radius=cfg.read_radius or None)
        if cfg.learn_beta:
            self.log_beta = nn.Parameter(torch.tensor(math.log(cfg.beta)))
        if not cfg.hopfield:
            self.cross = bayes.cross_attention(D, D, heads=4)
        self.knockout: str | None = None   # set by :func:`knockout` for diagnostics only

    @property
    def beta(self) -> float | torch.Tensor:
        return self.log_beta.exp() if self.cfg.learn_beta else self.cfg.beta

    def reset_memory(self) -> None:
        with torch.no_grad():
            self.memory.copy_(torch.randn_like(self.memory))

    def _queries(self, gamma: torch.Tensor) -> torch.Tensor:
        """c_hm = (W_Q,h γ_m)ᵀ W_K,h / √d_m ``[H_m, M, D]``: the score of patch p is c_hm · Z_p."""
        cfg = self.cfg
        dm, Hm = cfg.prior_dim, cfg.memory_heads
        q = self.to_q(gamma * dm ** -0.5).view(-1, Hm, dm).transpose(0, 1)     # [H, M, d]
        return q @ self.to_k.weight.view(Hm, dm, -1)                            # [H, M, D]

    def scores(self, gamma: torch.Tensor, Z: torch.Tensor) -> bayes.Posterior:
        """The write's posterior over the pool, per head: logits ``[H_m, M, P]`` of
        s_hmp = (W_Q,h γ_m)·(W_K,h Z_p)/√d_m − log P. Computed as c_hm · Z_p (:meth:`_queries`): the
        same product, associated so that the P × H_m·d_m keys are never built (M·H_m ≪ P)."""
        P = Z.shape[0]
        c = self._queries(gamma)
        s = (c.reshape(-1, Z.shape[1]) @ Z.T).view(*c.shape[:2], P)             # [H, M, P]
        return bayes.Posterior(s - math.log(P), "row")

    def select(self, gamma: torch.Tensor, Z: torch.Tensor, dense: bool = False):
        """The write's gates in the form the write reads: ``(w, index)`` with w, index ``[H_m, M, k]``
        (each prior's top-k truncated posterior, ``hopfieldkit.bayes.TopK``), or ``(G, None)`` with the
        dense posterior G ``[H_m, M, P]`` (``bottleneck_on=False`` or ``dense``)."""
        w, index, _ = self._select(gamma, Z, dense)
        return w, index

    def _select(self, gamma: torch.Tensor, Z: torch.Tensor, dense: bool):
        """:meth:`select` and, for top-k gates, the chosen rows Z[index] ``[H_m, M, k, D]``.

        The top k of each prior's posterior (``hopfieldkit.bayes.TopK``, renormalised) are chosen
        from the scores computed without a graph; their logits are then recomputed from the k rows,
        s_hmk = c_hm · Z[index_hmk], and w = softmax_k(s) (the uniform prior's −log P cancels). The
        same numbers, but the gradient reaches Z through one gather of the H_m·M·k chosen rows,
        not through the dense ``[H_m·M, P]`` score matrix."""
        if not self.cfg.bottleneck_on or dense:
            return self.scores(gamma, Z).marginals, None, None
        k = min(self.cfg.bottleneck, Z.shape[0])
        c = self._queries(gamma)                                                 # [H, M, D]
        with torch.no_grad():
            index = (c.detach().reshape(-1, Z.shape[1]) @ Z.detach().T).topk(k, dim=-1, sorted=False).indices
        index = index.view(*c.shape[:2], k)                                      # [H, M, k]
        rows = Z.index_select(0, index.flatten()).view(*index.shape, -1)         # [H, M, k, D]
        s = (rows @ c.unsqueeze(-1)).squeeze(-1)                                 # [H, M, k]
        return torch.softmax(s, dim=-1), index, rows

    def gates(self, gamma: torch.Tensor, Z: torch.Tensor, dense: bool = False) -> torch.Tensor:
        """G ``[H_m, M, P]``: per head, each prior's gates over the pool (zero outside its top k)."""
        return dense_gates(*self.select(gamma, Z, dense), Z.shape[0])

    def write(self, Z: torch.Tensor, dense: bool = False, keep_gates: bool = False):
        """(new priors γ^{t+1} ``[M, d_m]``, balance loss, gates ``[H_m, M, P]`` or None unless
        ``keep_gates``). The content each prior reads, O_hm = Σ_p G_hmp W_V,h Z_p, is taken as
        W_V,h (Σ_p G_hmp Z_p), which with top-k gates sums only the k chosen rows."""
        if fused_write.applies(self, Z, dense, keep_gates):  # the same numbers, one autograd node
            return (*fused_write.write(self, Z), None)
        cfg = self.cfg
        P, dm, Hm = Z.shape[0], cfg.prior_dim, cfg.memory_heads
        gamma = self.memory.detach().clone()  # the EMA below overwrites the memory in place (docs/ait.md)
        w, index, rows = self._select(gamma, Z, dense)
        read = w @ Z if rows is None else (w.unsqueeze(-2) @ rows).squeeze(-2)   # [H, M, D]
        if cfg.write_centered:  # Σ_p G_hmp (Z_p − Z̄) = Σ_p G_hmp Z_p − Z̄, the gates summing to 1
            read = read - Z.mean(0)
        O = (read @ self.to_v.weight.view(Hm, dm, -1).transpose(1, 2))           # [H, M, d]
        O = O.transpose(0, 1).reshape(gamma.shape[0], -1)                        # [M, H·d]
        g_tilde = self.norm_gamma(gamma + self.drop(self.to_out(O)))
        if not cfg.learn_write:
            g_tilde = g_tilde.detach()
        new = cfg.ema * gamma + (1 - cfg.ema) * g_tilde
        new = new / new.norm(dim=-1, keepdim=True)
        aux = balance_loss(w, index, P, cfg.balance_weight) if cfg.balance_loss else w.new_zeros(())
        return new, aux, dense_gates(w, index, P).detach() if keep_gates else None

    def pool(self, z: torch.Tensor) -> torch.Tensor:
        """The squashed pool ``[B·N, D]``; under torch.distributed (with ``gather_pool``) the pools of all
        ranks, concatenated in rank order, with gradients flowing back to each rank's patches."""
        Z = z.reshape(-1, z.shape[-1])
        dist = torch.distributed
        if self.cfg.gather_pool and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            from torch.distributed._functional_collectives import all_gather_single_autograd

            Z = all_gather_single_autograd(Z, gather_dim=0, group=dist.group.WORLD)
        return Z

    def hopfield_read(self, z: torch.Tensor, record: bool = False) -> hk.Descent:
        """The read: ``hopfield_steps`` CCCP updates ẑ ← Yᵀ softmax(β Y ẑ) from ẑ = z on the energy of
        the priors last set (``self.read.set_priors``), by ``hopfieldkit.descend``; ``.xi`` is ẑ."""
        return hk.descend(self.read, z, self.beta, method="update", steps=self.cfg.hopfield_steps, tol=0, record=record)

    def forward(self, u: torch.Tensor, trace: list | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(ẑ + z, or ẑ alone without ``read_skip``; balance loss); with ``trace`` (a list) a :class:`WorkspaceTrace` is appended to it."""
        cfg = self.cfg
        B, N, D = u.shape
        z = self.norm_z(self.mlp(u))
        ko = self.knockout
        G = None
        if self.training or not cfg.freeze_memory_in_eval or ko == "dense_bottleneck":
            gamma, aux, G = self.write(self.pool(z), dense=ko == "dense_bottleneck", keep_gates=trace is not None)
            with torch.no_grad():
                self.memory.copy_(gamma.detach())
        else:
            gamma, aux = self.memory.detach(), z.new_zeros(())
        # the model's own activations: no value scans (and host syncs) inside the step; a non-finite
        # value shows in the loss, which ait.train checks
        with hk.unchecked():
            self.read.set_priors(gamma)
            run = None
            if fused_read.applies(self, z, trace is not None):  # the same numbers, one autograd node
                out = fused_read.read(self, z, gamma)
            else:
                if ko == "no_hopfield":
                    z_hat = torch.zeros_like(z)
                elif ko == "memory_mean":
                    z_hat = self.read.patterns.mean(0).expand_as(z)
                elif cfg.hopfield:
                    run = self.hopfield_read(z, record=trace is not None)
                    z_hat = run.xi
                else:
                    Y = self.read.patterns.unsqueeze(0).expand(B, -1, -1)
                    z_hat = self.cross(z, Y)
                out = z_hat + z if cfg.read_skip else z_hat
            if gamma.requires_grad:  # keep no step's graph on the module (and a steady state for torch.compile)
                self.read.set_priors(gamma.detach())
        if trace is not None:
            trace.append(WorkspaceTrace(z.detach(), gamma.detach(), G, run, z_hat.detach()))
        return out, aux


class Block(nn.Module):
    """x ← x + MHSA(LN_a(x)); x ← x + GWL(LN_b(x)) (or a ViT feed-forward when ``memory=False``)."""

    def __init__(self, cfg: AiTConfig):
        super().__init__()
        self.cfg = cfg
        self.attn = SelfAttention(cfg.dim, cfg.heads, cfg.dim_head) if cfg.self_attention else None
        if cfg.memory:
            self.norm_b = nn.LayerNorm(cfg.dim)
            self.gwl = GlobalWorkspace(cfg)
        else:
            self.ff = FeedForward(cfg.dim, cfg.mlp_dim)

    def forward(self, x: torch.Tensor, trace: list | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.attn is not None:
            x = x + self.attn(x)
        if self.cfg.memory:
            g, aux = self.gwl(self.norm_b(x), trace)
            return x + g, aux
        return x + self.ff(x), x.new_zeros(())


class AiT(nn.Module):
    """Tokens → L AiT blocks → flattened-token head (LN over N·D, then Linear). Returns
    ``(logits, balance loss)``; the training loss is CE + balance loss. ``trace=[]`` collects one
    :class:`WorkspaceTrace` per workspace (the diagnostics read them; nothing is kept on the modules)."""

    def __init__(self, cfg: AiTConfig, inputs: InputSpec):
        super().__init__()
        check_patch(inputs, cfg.patch)
        self.cfg, self.inputs = cfg, inputs
        self.embed = Tokens(inputs, cfg.dim, cfg.patch, cfg.pos_embedding, cfg.stem)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.depth)])
        flat = num_tokens(inputs, cfg.patch) * cfg.dim
        self.head = nn.Sequential(nn.LayerNorm(flat), nn.Linear(flat, inputs.num_classes))
        if cfg.unused_tensors:  # built, never used, counted: as the released code (§1.2)
            self.pos_embedding = nn.Parameter(torch.randn(1, num_tokens(inputs, cfg.patch) + 1, cfg.dim))
            self.cls_token = nn.Parameter(torch.randn(1, 1, cfg.dim))
            self.conv = nn.Conv2d(3, cfg.dim, 5, 4, 1)
        # training steps taken (for reset_memory_every): a buffer, so checkpoints carry it
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, img: torch.Tensor, question: torch.Tensor | None = None,
                trace: list | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embed(img, question)
        if self.training and self.cfg.reset_memory_every:
            self.steps += 1
            if int(self.steps) % self.cfg.reset_memory_every == 0:
                self.reset_memory()
        aux = x.new_zeros(())
        for blk in self.blocks:
            x, a = blk(x, trace)
            aux = aux + a
        return self.head(x.flatten(1)), aux

    def reset_memory(self) -> None:
        for ws in self.workspaces():
            ws.reset_memory()

    def workspaces(self) -> list[GlobalWorkspace]:
        return [blk.gwl for blk in self.blocks if self.cfg.memory]


@contextlib.contextmanager
def memory_kept(model: nn.Module):
    """Within the block the workspaces may write their memories (training, or the ``paper`` preset in
    evaluation); afterwards every memory γ and the read's priors are back as they were. A model
    without workspaces passes through unchanged."""
    spaces = model.workspaces() if isinstance(model, AiT) else []
    saved = [(ws.memory.detach().clone(), ws.read.priors.detach().clone()) for ws in spaces]
    try:
        yield model
    finally:
        with torch.no_grad():
            for ws, (m, r) in zip(spaces, saved):
                ws.memory.copy_(m)
                ws.read.set_priors(r)


@contextlib.contextmanager
def knockout(model: AiT, kind: str | None, seed: int = 0):
    """Within the block, every workspace of ``model`` runs with a knockout (restored afterwards):

    - ``memory_mean``: every read returns the mean of the attractors, mean_m f_LT(γ_m);
    - ``memory_random``: the priors are replaced by random unit vectors (seeded);
    - ``no_hopfield``: the read is skipped (ẑ = 0, the block adds z alone);
    - ``dense_bottleneck``: top-k off; the memory is written during evaluation with dense
      attention over each batch's pool (in the ``ait`` preset the memory is otherwise frozen in eval).
    """
    if kind is not None and kind not in KNOCKOUTS:
        raise ValueError(f"knockout must be one of {KNOCKOUTS} or None, got {kind!r}")
    if not isinstance(model, AiT) or not model.cfg.memory:
        raise TypeError(f"knockouts need an AiT with its workspace (memory=True), got {type(model).__name__}")
    with memory_kept(model):
        try:
            for ws in model.workspaces():
                ws.knockout = kind
            if kind == "memory_random":
                g = torch.Generator().manual_seed(seed)
                with torch.no_grad():
                    for ws in model.workspaces():
                        r = torch.randn(ws.memory.shape, generator=g)
                        ws.memory.copy_((r / r.norm(dim=-1, keepdim=True)).to(ws.memory))
            yield model
        finally:
            for ws in model.workspaces():
                ws.knockout = None
