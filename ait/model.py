"""The Associative Transformer (AiT) and its ViT baseline (``docs/ait.md``; equation by equation).

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

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

import hopfieldkit as hk
from hopfieldkit import bayes

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


@dataclass
class AiTConfig:
    """Every field can be overridden; :func:`make_config` fills sizes and presets."""

    # data
    image_size: int = 32
    channels: int = 3
    patch: int = 4
    num_classes: int = 10
    question_dim: int = 0           # > 0: a question vector enters as one extra token (Sort-of-CLEVR)
    pos_embedding: str = "none"     # "none" (the paper: attention is blind to position, which only the
                                    # head sees), "learned", or "sincos" (fixed 2-D codes; the tiny default)
    # backbone
    dim: int = 768
    depth: int = 2
    heads: int = 12
    dim_head: int = 64
    mlp_dim: int = 3072
    # global workspace
    num_priors: int = 32
    prior_dim: int = 32
    memory_heads: int = 8
    bottleneck: int = 512
    beta: float = 1.0
    learn_beta: bool = False
    ema: float = 0.9
    balance_weight: float = 1e-2
    write_dropout: float = 0.1
    hopfield_steps: int = 1
    # preset behaviour
    preset: str = "ait"
    freeze_memory_in_eval: bool = True
    learn_write: bool = True
    unused_tensors: bool = False
    # ablations (the poster's ablation table; docs/ait.md says how each is read)
    self_attention: bool = True
    hopfield: bool = True           # False: a learned cross-attention reads the priors instead
    balance_loss: bool = True
    bottleneck_on: bool = True      # False: dense attention over the whole pool
    memory: bool = True             # False: the block is a plain ViT block (= ViT)
    reset_memory_every: int = 0     # > 0: re-initialise the memory every that many training steps
    # data parallel: all-gather the pool across ranks, so the workspace sees the global batch and
    # every rank makes the identical write (the memory stays the same on every rank)
    gather_pool: bool = True

    def __post_init__(self):
        if isinstance(self.pos_embedding, bool):  # True / False from older configs and --set
            self.pos_embedding = "learned" if self.pos_embedding else "none"
        if self.pos_embedding not in ("none", "learned", "sincos"):
            raise ValueError(f"pos_embedding must be 'none', 'learned' or 'sincos', got {self.pos_embedding!r}")

    @property
    def tokens(self) -> int:
        """Tokens per sample: the patches, plus the question token when there is one."""
        return (self.image_size // self.patch) ** 2 + (1 if self.question_dim else 0)


def make_config(size: str = "tiny", preset: str = "ait", **overrides) -> AiTConfig:
    """A config from a size name (tiny / small / medium / base) and a preset (ait / paper)."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose from {sorted(SIZES)}")
    if preset not in ("ait", "paper"):
        raise ValueError(f"unknown preset {preset!r}; choose 'ait' or 'paper'")
    pres = dict(preset=preset)
    if preset == "paper":
        pres.update(freeze_memory_in_eval=False, learn_write=False, unused_tensors=True, hopfield_steps=1, beta=1.0,
                    pos_embedding="none")
    fields = set(AiTConfig.__dataclass_fields__)
    bad = set(overrides) - fields
    if bad:
        raise ValueError(f"unknown config fields {sorted(bad)}; valid fields: {sorted(fields)}")
    cfg = AiTConfig(**{**SIZES[size], **pres, **overrides})
    if cfg.image_size % cfg.patch:
        raise ValueError(f"image size {cfg.image_size} is not divisible by the patch size {cfg.patch}")
    return cfg


# ----------------------------------------------------------------------------------------------
# Pieces
# ----------------------------------------------------------------------------------------------
class PatchEmbed(nn.Module):
    """E = LN_D(Linear(LN_{p²C}(patches))), patches flattened in (p1, p2, c) order (§1.2)."""

    def __init__(self, cfg: AiTConfig):
        super().__init__()
        pd = cfg.patch * cfg.patch * cfg.channels
        self.patch = cfg.patch
        self.net = nn.Sequential(nn.LayerNorm(pd), nn.Linear(pd, cfg.dim), nn.LayerNorm(cfg.dim))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        B, C, H, W = img.shape
        p = self.patch
        if H % p or W % p:
            raise ValueError(f"image size {H}×{W} is not divisible by the patch size {p}")
        x = img.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1).reshape(B, (H // p) * (W // p), p * p * C)
        return self.net(x)


class SelfAttention(nn.Module):
    """Pre-norm multi-head self-attention: qkv without bias, output projection with bias."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.heads, self.dim_head = heads, dim_head
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = nn.Linear(heads * dim_head, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask``: optional ``[N, N]`` bool, True where a query may attend to a key."""
        B, N, _ = x.shape
        q, k, v = self.to_qkv(self.norm(x)).reshape(B, N, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.to_out(out.transpose(1, 2).reshape(B, N, self.heads * self.dim_head))


def cv_squared(v: torch.Tensor) -> torch.Tensor:
    """CV²(v) = Var(v) / (mean(v)² + 1e-10), unbiased variance (as the released code)."""
    if v.numel() < 2:
        return v.new_zeros(())
    return v.var() / (v.mean() ** 2 + 1e-10)


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
        self.read = hk.LowRankPriorEnergy(cfg.num_priors, dm, D)      # holds f_LT: d_m → D
        if cfg.learn_beta:
            self.log_beta = nn.Parameter(torch.tensor(math.log(cfg.beta)))
        if not cfg.hopfield:
            self.cross = bayes.cross_attention(D, D, heads=4)
        self.last_read: hk.Descent | None = None
        self.last_gates: torch.Tensor | None = None
        self.record_energy = False

    @property
    def beta(self) -> float | torch.Tensor:
        return self.log_beta.exp() if self.cfg.learn_beta else self.cfg.beta

    def reset_memory(self) -> None:
        with torch.no_grad():
            self.memory.copy_(torch.randn_like(self.memory))

    def gates(self, gamma: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
        """G ``[H_m, M, P]``: per head, each prior's top-k truncated posterior over the pool (or dense)."""
        cfg = self.cfg
        P, dm, Hm = Z.shape[0], cfg.prior_dim, cfg.memory_heads
        q = self.to_q(gamma).view(-1, Hm, dm).transpose(0, 1)          # [H, M, d]
        k = self.to_k(Z).view(P, Hm, dm).transpose(0, 1)               # [H, P, d]
        post = bayes.posterior(q, k, scale=dm ** -0.5)
        if cfg.bottleneck_on:
            return bayes.TopK(min(cfg.bottleneck, P)).weights(post)    # softmax over the k kept logits
        return post.marginals

    def write(self, Z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(new priors γ^{t+1} ``[M, d_m]``, balance loss)."""
        cfg = self.cfg
        gamma = self.memory.detach().clone()  # the EMA below overwrites the memory in place (docs/ait.md)
        G = self.gates(gamma, Z)
        self.last_gates = G.detach()
        v = self.to_v(Z).view(Z.shape[0], cfg.memory_heads, cfg.prior_dim).transpose(0, 1)  # [H, P, d]
        O = (G @ v).transpose(0, 1).reshape(gamma.shape[0], -1)                              # [M, H·d]
        g_tilde = self.norm_gamma(gamma + self.drop(self.to_out(O)))
        if not cfg.learn_write:
            g_tilde = g_tilde.detach()
        new = cfg.ema * gamma + (1 - cfg.ema) * g_tilde
        new = new / new.norm(dim=-1, keepdim=True)
        aux = G.new_zeros(())
        if cfg.balance_loss:
            for h in range(G.shape[0]):
                aux = aux + cfg.balance_weight * (cv_squared(G[h].sum(0)) + cv_squared((G[h] > 0).to(G.dtype).sum(0)))
        return new, aux

    def pool(self, z: torch.Tensor) -> torch.Tensor:
        """The squashed pool ``[B·N, D]``; under torch.distributed (with ``gather_pool``) the pools of all
        ranks, concatenated in rank order, with gradients flowing back to each rank's patches."""
        Z = z.reshape(-1, z.shape[-1])
        dist = torch.distributed
        if self.cfg.gather_pool and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            from torch.distributed._functional_collectives import all_gather_single_autograd

            Z = all_gather_single_autograd(Z, gather_dim=0, group=dist.group.WORLD)
        return Z

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        B, N, D = u.shape
        z = self.norm_z(self.mlp(u))
        if self.training or not cfg.freeze_memory_in_eval:
            gamma, aux = self.write(self.pool(z))
            with torch.no_grad():
                self.memory.copy_(gamma.detach())
        else:
            gamma, aux = self.memory.detach(), z.new_zeros(())
        self.read.set_priors(gamma)
        if cfg.hopfield:
            run = hk.descend(self.read, z, self.beta, method="update", steps=cfg.hopfield_steps, tol=0,
                             record=self.record_energy)
            self.last_read = run
            z_hat = run.xi
        else:
            Y = self.read.patterns.unsqueeze(0).expand(B, -1, -1)
            z_hat = self.cross(z, Y)
        return z_hat + z, aux


class FeedForward(nn.Module):
    """The ViT feed-forward sub-layer (pre-norm MLP)."""

    def __init__(self, dim: int, mlp_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x):
        return self.net(x)


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

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.attn is not None:
            x = x + self.attn(x)
        if self.cfg.memory:
            g, aux = self.gwl(self.norm_b(x))
            return x + g, aux
        return x + self.ff(x), x.new_zeros(())


class Inputs(nn.Module):
    """Patch embedding, the question token (Linear question_dim → D) when the task has one, and the
    position code (``cfg.pos_embedding``) added to the tokens."""

    def __init__(self, cfg: AiTConfig):
        super().__init__()
        self.cfg = cfg
        self.patches = PatchEmbed(cfg)
        self.question = nn.Linear(cfg.question_dim, cfg.dim) if cfg.question_dim else None
        if cfg.pos_embedding == "none":
            self.pos = None
        elif cfg.pos_embedding == "learned":
            self.pos = nn.Parameter(torch.randn(1, cfg.tokens, cfg.dim) * 0.02)
        elif cfg.pos_embedding == "sincos":  # a buffer: fixed, not a parameter; the question token gets none
            codes = hk.sincos_2d(cfg.image_size // cfg.patch, cfg.dim)
            codes = torch.cat([codes, codes.new_zeros(cfg.tokens - len(codes), cfg.dim)])
            self.register_buffer("pos", codes.unsqueeze(0))

    def forward(self, img: torch.Tensor, question: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.cfg
        if img.dim() != 4 or img.shape[1] != cfg.channels or img.shape[-1] != cfg.image_size:
            raise ValueError(f"images must be [B, {cfg.channels}, {cfg.image_size}, {cfg.image_size}], got {tuple(img.shape)}")
        x = self.patches(img)
        if self.question is None:
            if question is not None:
                raise ValueError("this model takes no question (question_dim = 0)")
        else:
            if question is None or question.shape != (img.shape[0], cfg.question_dim):
                raise ValueError(f"question must be [B, {cfg.question_dim}], got "
                                 f"{None if question is None else tuple(question.shape)}")
            x = torch.cat([x, self.question(question).unsqueeze(1)], 1)
        return x if self.pos is None else x + self.pos


class AiT(nn.Module):
    """Patch embedding → L AiT blocks → flattened-token head (LN over N·D, then Linear). Returns
    ``(logits, balance loss)``; the training loss is CE + balance loss."""

    def __init__(self, cfg: AiTConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = Inputs(cfg)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.depth)])
        flat = cfg.tokens * cfg.dim
        self.head = nn.Sequential(nn.LayerNorm(flat), nn.Linear(flat, cfg.num_classes))
        if cfg.unused_tensors:  # built, never used, counted: as the released code (§1.2)
            self.pos_embedding = nn.Parameter(torch.randn(1, cfg.tokens + 1, cfg.dim))
            self.cls_token = nn.Parameter(torch.randn(1, 1, cfg.dim))
            self.conv = nn.Conv2d(3, cfg.dim, 5, 4, 1)
        self._steps = 0

    def forward(self, img: torch.Tensor, question: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embed(img, question)
        if self.training and self.cfg.reset_memory_every:
            self._steps += 1
            if self._steps % self.cfg.reset_memory_every == 0:
                self.reset_memory()
        aux = x.new_zeros(())
        for blk in self.blocks:
            x, a = blk(x)
            aux = aux + a
        return self.head(x.flatten(1)), aux

    def reset_memory(self) -> None:
        for blk in self.blocks:
            if self.cfg.memory:
                blk.gwl.reset_memory()

    def workspaces(self) -> list[GlobalWorkspace]:
        return [blk.gwl for blk in self.blocks if self.cfg.memory]


class ViT(nn.Module):
    """The ViT baseline with the same recipe: pre-norm blocks with a feed-forward sub-layer and
    either AiT's flattened head (``head="flat"``) or a CLS token + position embedding + LN(D) head."""

    def __init__(self, cfg: AiTConfig, head: str = "flat"):
        super().__init__()
        if head not in ("flat", "cls"):
            raise ValueError(f"head must be 'flat' or 'cls', got {head!r}")
        self.cfg, self.head_kind = replace(cfg, memory=False), head
        self.embed = Inputs(cfg)
        self.blocks = nn.ModuleList([Block(self.cfg) for _ in range(cfg.depth)])
        if head == "cls":
            self.pos_embedding = nn.Parameter(torch.randn(1, cfg.tokens + 1, cfg.dim) * 0.02)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
            self.head = nn.Sequential(nn.LayerNorm(cfg.dim), nn.Linear(cfg.dim, cfg.num_classes))
        else:
            flat = cfg.tokens * cfg.dim
            self.head = nn.Sequential(nn.LayerNorm(flat), nn.Linear(flat, cfg.num_classes))

    def forward(self, img: torch.Tensor, question: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embed(img, question)
        if self.head_kind == "cls":
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embedding
        for blk in self.blocks:
            x, _ = blk(x)
        out = self.head(x[:, 0] if self.head_kind == "cls" else x.flatten(1))
        return out, out.new_zeros(())


def count_parameters(model: nn.Module) -> int:
    """All parameters, trainable or not (the released code's count includes γ)."""
    return sum(p.numel() for p in model.parameters())


def build(name: str, data_overrides: dict | None = None, preset: str = "ait", **overrides) -> nn.Module:
    """A model by key: ``ait-tiny``, ``ait-small``, ``ait-medium``, ``ait-base``, ``vit-tiny``, ...,
    ``vit-small-cls`` (CLS head), and the baselines (:func:`model_names`): ``coordination[-variant]``,
    ``set-transformer``, ``perceiver`` (each also ``-tiny``). ``data_overrides`` sets image size,
    channels, patch, classes and question size; ``overrides`` sets fields of the model's config."""
    baseline = _baseline(name)
    if baseline is not None:
        cls, cfg_cls, fields = baseline
        data = AiTConfig(**(data_overrides or {}))
        bad = set(overrides) - set(cfg_cls.__dataclass_fields__)
        if bad:
            raise ValueError(f"unknown config fields {sorted(bad)} for {name}; valid: {sorted(cfg_cls.__dataclass_fields__)}")
        return cls(data, cfg_cls(**{**fields, **overrides}))
    parts = name.split("-")
    if len(parts) < 2 or parts[0] not in ("ait", "vit") or parts[1] not in SIZES or parts[2:] not in ([], ["cls"]):
        raise ValueError(f"unknown model {name!r}; choose from {model_names()}")
    cfg = make_config(parts[1], preset, **{**(data_overrides or {}), **overrides})
    if parts[0] == "ait":
        return AiT(cfg)
    return ViT(cfg, head="cls" if parts[2:] == ["cls"] else "flat")


def _baseline(name: str):
    """(model class, config class, preset fields) of a baseline name, or None."""
    from . import coordination, perceiver, set_transformer
    for mod, cls, cfg_cls in ((coordination, coordination.Coordination, coordination.CoordinationConfig),
                              (set_transformer, set_transformer.SetTransformer, set_transformer.SetTransformerConfig),
                              (perceiver, perceiver.Perceiver, perceiver.PerceiverConfig)):
        if name in mod.VARIANTS:
            return cls, cfg_cls, mod.VARIANTS[name]
    return None


def model_names() -> list[str]:
    """Every model key :func:`build` accepts."""
    from . import coordination, perceiver, set_transformer
    names = [f"{kind}-{size}" for kind in ("ait", "vit") for size in SIZES] + [f"vit-{s}-cls" for s in SIZES]
    return names + [*coordination.VARIANTS, *set_transformer.VARIANTS, *perceiver.VARIANTS]
