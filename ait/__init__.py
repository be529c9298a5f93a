"""ait: the Associative Transformer (Sun et al., arXiv 2309.12862), built on hopfieldkit.

The Hopfield read is :class:`hopfieldkit.LowRankPriorEnergy` descended with :func:`hopfieldkit.descend`,
and the bottleneck write is a top-k truncated posterior (:class:`hopfieldkit.bayes.TopK`): ait
re-implements neither.

    from ait import build, data
    model = build("ait-tiny", data.InputSpec(image_size=28, channels=1, num_classes=10), patch=4)
    logits, balance_loss = model(images)

Models (:mod:`ait.models`, one file each; every key: :func:`model_names`): ``ait-{tiny,small,medium,base}``
(preset ``"ait"``, the fixed default, or ``"paper"``, the released code's behaviour with its exact
parameter counts), ``vit-{...}`` and ``vit-{...}-cls``, and the poster's baselines ``coordination``
(``-ssw``, ``-tr``, ``-hc``, ``-str``, ``-d``, ``-h``, ``-dh``), ``set-transformer``, ``perceiver``
(each with a ``-tiny`` CPU size). Data (:mod:`ait.data`, one file per set): Triangle, Sort-of-CLEVR,
MNIST-5k, CIFAR-10/100 from a local folder. Training: ``python -m ait.train --help``; evaluation and
workspace diagnostics: ``python -m ait.evaluate RUN --diagnostics`` (:mod:`ait.diagnostics`).
"""
from . import data, models
from .data import InputSpec
from .models import (KNOCKOUTS, SIZES, AiT, AiTConfig, Coordination, CoordinationConfig, GlobalWorkspace, Perceiver,
                     PerceiverConfig, SetTransformer, SetTransformerConfig, ViT, WorkspaceTrace, build, config_class,
                     count_parameters, knockout, make_config, model_names)

__all__ = ["AiT", "AiTConfig", "GlobalWorkspace", "WorkspaceTrace", "ViT", "SIZES", "KNOCKOUTS", "build",
           "config_class", "count_parameters", "make_config", "model_names", "knockout", "data", "models",
           "InputSpec", "Coordination", "CoordinationConfig", "SetTransformer", "SetTransformerConfig", "Perceiver",
           "PerceiverConfig"]
