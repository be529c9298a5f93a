"""ait: the Associative Transformer (Sun et al., arXiv 2309.12862), built on hopfieldkit.

The Hopfield read is :class:`hopfieldkit.LowRankPriorEnergy` descended with :func:`hopfieldkit.descend`,
and the bottleneck write is a top-k truncated posterior (:class:`hopfieldkit.bayes.TopK`): ait
re-implements neither.

    from ait import build, make_config, AiT, ViT
    model = build("ait-tiny", dict(image_size=28, channels=1, patch=4, num_classes=10))
    logits, balance_loss = model(images)

Models: ``ait-{tiny,small,medium,base}`` (preset ``"ait"``, the fixed default, or ``"paper"``, the
released code's behaviour with its exact parameter counts), ``vit-{...}`` and ``vit-{...}-cls``,
and the poster's baselines: :mod:`ait.coordination` (``coordination`` = TR+HSW, ``-ssw``, ``-tr``,
``-hc``, ``-str``, ``-d``, ``-h``, ``-dh``), :mod:`ait.set_transformer`, :mod:`ait.perceiver`
(each with a ``-tiny`` CPU size; every key: :func:`model_names`).
Training: ``python -m ait.train --help``. Data: :mod:`ait.data` (Triangle generator, MNIST-5k,
CIFAR-10 from a local folder).
"""
from . import data
from .model import (SIZES, AiT, AiTConfig, Block, GlobalWorkspace, PatchEmbed, ViT, build, count_parameters,
                    make_config, model_names)
from .coordination import Coordination, CoordinationConfig
from .perceiver import Perceiver, PerceiverConfig
from .set_transformer import SetTransformer, SetTransformerConfig

__all__ = ["AiT", "AiTConfig", "Block", "GlobalWorkspace", "PatchEmbed", "ViT", "SIZES", "build",
           "count_parameters", "make_config", "model_names", "data", "Coordination", "CoordinationConfig",
           "SetTransformer", "SetTransformerConfig", "Perceiver", "PerceiverConfig"]
