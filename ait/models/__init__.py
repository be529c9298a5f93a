"""The models, one file each, and the registry :func:`build` reads.

- :mod:`ait.models.ait`: the Associative Transformer, its workspace and configs (``ait-{size}``);
- :mod:`ait.models.vit`: the ViT baseline (``vit-{size}``, ``vit-{size}-cls``);
- :mod:`ait.models.coordination`: shared global workspace [GWS] (``coordination[-variant]``);
- :mod:`ait.models.set_transformer`, :mod:`ait.models.perceiver`;
- :mod:`ait.models.layers`: tokens (patch embedding, question token, position codes), attention, MLP;
- :mod:`ait.models.fused_write`, :mod:`ait.models.fused_read`: the workspace's write and its read
  (with the skip path) as one autograd node each in CPU training, tested equal to the plain path
  they stand in for; ``with fused_write.disabled(), fused_read.disabled():`` turns both off.

Every model takes an :class:`ait.data.InputSpec` (image size, channels, classes, question size) and
its own architecture config, and returns ``(logits, auxiliary loss)``.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Callable

from torch import nn

from ..data.common import InputSpec
from . import coordination, fused_read, fused_write, perceiver, set_transformer
from .ait import KNOCKOUTS, PRESETS, SIZES, AiT, AiTConfig, GlobalWorkspace, WorkspaceTrace, cv_squared, knockout, \
    make_config, memory_kept
from .coordination import Coordination, CoordinationConfig
from .layers import FeedForward, PatchEmbed, SelfAttention, Tokens, num_tokens
from .perceiver import Perceiver, PerceiverConfig
from .set_transformer import SetTransformer, SetTransformerConfig
from .vit import ViT

__all__ = ["build", "model_names", "count_parameters", "config_class", "AiT", "AiTConfig", "GlobalWorkspace",
           "WorkspaceTrace", "ViT", "Coordination", "CoordinationConfig", "Perceiver", "PerceiverConfig",
           "SetTransformer", "SetTransformerConfig", "SIZES", "PRESETS", "KNOCKOUTS", "make_config", "cv_squared",
           "knockout", "memory_kept", "PatchEmbed", "SelfAttention", "FeedForward", "Tokens", "num_tokens"]

DEFAULT_INPUTS = InputSpec(image_size=32, channels=3, num_classes=10)

# name → (config class, builder(inputs, preset, overrides) -> model)
_REGISTRY: dict[str, tuple[type, Callable]] = {}


def _register_ait_vit() -> None:
    for size in SIZES:
        _REGISTRY[f"ait-{size}"] = (AiTConfig, lambda i, p, o, s=size: AiT(make_config(s, p, **o), i))
        _REGISTRY[f"vit-{size}"] = (AiTConfig, lambda i, p, o, s=size: ViT(make_config(s, p, **o), i))
        _REGISTRY[f"vit-{size}-cls"] = (AiTConfig, lambda i, p, o, s=size: ViT(make_config(s, p, **o), i, head="cls"))


def _register_variants(module, cls, cfg_cls) -> None:
    for name, preset_fields in module.VARIANTS.items():
        _REGISTRY[name] = (cfg_cls, lambda i, p, o, f=preset_fields: cls(i, cfg_cls(**{**f, **o})))


_register_ait_vit()
_register_variants(coordination, Coordination, CoordinationConfig)
_register_variants(set_transformer, SetTransformer, SetTransformerConfig)
_register_variants(perceiver, Perceiver, PerceiverConfig)


def model_names() -> list[str]:
    """Every model key :func:`build` accepts."""
    return list(_REGISTRY)


def config_class(name: str) -> type:
    """The architecture config dataclass of a model key (its fields are what ``overrides`` may set)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose from {model_names()}")
    return _REGISTRY[name][0]


def build(name: str, inputs: InputSpec | None = None, preset: str = "ait", **overrides) -> nn.Module:
    """A model by key (:func:`model_names`) for ``inputs`` (default: 32×32 RGB, 10 classes).
    ``preset`` (ait / paper) applies to AiT and ViT; ``overrides`` set fields of the model's config
    (:func:`config_class`), e.g. ``patch=8`` or ``hopfield_steps=3``."""
    cfg_cls = config_class(name)
    if inputs is None:
        inputs = DEFAULT_INPUTS
    if not isinstance(inputs, InputSpec):
        raise TypeError(f"inputs must be an ait.data.InputSpec, got {type(inputs).__name__}")
    valid = {f.name for f in fields(cfg_cls)}
    bad = set(overrides) - valid
    if bad:
        raise ValueError(f"unknown config fields {sorted(bad)} for {name}; valid: {sorted(valid)}")
    if cfg_cls is not AiTConfig and preset != "ait":
        raise ValueError(f"preset {preset!r} applies to AiT and ViT only, not to {name}")
    return _REGISTRY[name][1](inputs, preset, overrides)


def count_parameters(model: nn.Module) -> int:
    """All parameters, trainable or not (the released code's count includes γ)."""
    return sum(p.numel() for p in model.parameters())
