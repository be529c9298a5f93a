"""hopfieldkit.nn: trainable associative-memory layers (``torch.nn.Module``, batch-first).

Layers
    Hopfield(dim, heads=1, steps=1, ...)     state patterns [B, S, dim] associate with stored
                                             patterns [B, N, dim] (a set per sample, a mask [B, N]);
                                             s steps ξ ← softmax(β ξKᵀ)K in the key space, then the
                                             read softmax(β ξKᵀ)V; one step = multi-head attention
    HopfieldLayer(dim, patterns=M, ...)      the stored patterns and values are parameters (a learned
                                             memory of M slots); forward(state [B, S, dim])
    HopfieldPooling(dim, queries=1, ...)     learned state patterns pool a set: forward(stored, mask)
                                             → [B, queries, dim], permutation invariant

Each forward takes ``return_association=True`` for an :class:`Association`: the read's weights,
the energy E(ξ_t) of every state and head after each step, and the step count (``steps=None``
updates until convergence). ``layer.energy(stored, head=h)`` gives one head's
:class:`~hopfieldkit.HopfieldEnergy` and β for :func:`hopfieldkit.fixed_points` and
:func:`hopfieldkit.classify`. ``implicit=True`` differentiates through the fixed point
(memory constant in the number of steps).

Models
    EnergyTransformer(image_size, patch, ...)  patch embedding → one ET block run by descend → readout

Functions
    associate(queries, keys, values, beta, ...)   the association of per-head tensors [B, H, ·, d]
"""
from .association import Association, ConvergenceWarning, associate
from .energy_transformer import EnergyTransformer
from .layers import HeadEnergy, Hopfield, HopfieldLayer, HopfieldPooling

__all__ = ["Hopfield", "HopfieldLayer", "HopfieldPooling", "EnergyTransformer", "Association", "HeadEnergy", "ConvergenceWarning",
           "associate"]
