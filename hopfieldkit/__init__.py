"""hopfieldkit: energy-based associative memory in PyTorch.

Energies are plain differentiable callables ``energy(xi, beta) -> Tensor`` (one value per state);
``descend`` runs them down; the attractor tools find, classify and test their fixed points; the
theory module holds the bounds of the papers as functions.

Energies
    HopfieldEnergy(patterns)            continuous modern Hopfield energy + CCCP update [R]
    LowRankPriorEnergy(M, r, D)         Hopfield energy with attractors f_LT(γ) (AiT)
    DenseAMEnergy(patterns, F, n)       dense associative memory (poly / rectified / exp) [KH16, D17]
    PairwiseEnergy(W, theta)            the classical Hopfield network −½ sᵀWs − θᵀs on ±1 states
    LagrangianEnergy(layers, synapses)  neurons from Lagrangians + interaction terms [KH21]
      Neurons (shape d or (C, H, W)), IdentityLagrangian, LogSumExpLagrangian, SoftmaxLagrangian,
      LayerNormLagrangian, ReLULagrangian, RectifiedPowerLagrangian, ExponentialLagrangian,
      SigmoidLagrangian, TanhLagrangian, SphericalLagrangian, DenseSynapse, ConvSynapse,
      HopfieldSynapse, BiasSynapse; ``E.terms(x, beta)``: E per neuron layer and per synapse
    EnergyTransformerEnergy(D, H, Y, K) the Energy Transformer energy [ET]; et_block(E, x, alpha, steps)
    Energy, SumEnergy                   base class; ``E1 + E2`` composes parts on one state

Ops
    lse_similarity(xi, patterns, beta)  β⁻¹ log Σ_i exp(β x_iᵀξ), one fused op with a cheap backward:
                                        build energies on it to make autodiff descent fast

Descent
    descend(energy, xi, beta, method="auto"|"update"|"gd"|"armijo"|"ode"|"async"|"sync"|"glauber")
                                        -> Descent
    (per state: converged, diverged, steps, residual; ``Descent.monotone()`` checks the energies)

Attractors
    fixed_points(energy, beta, inits) -> FixedPoints   (energy, gradient norm, Hessian /
                                                          Jacobian eigenvalues, stability, kind)
    classify(weights)                   single / metastable / global from softmax mass
    basins(energy, beta, inits)         fraction of starts ending at each attractor
    beta_sweep(patterns, betas, inits)  number and kind of fixed points against β

Layers (``hopfieldkit.nn``)
    Hopfield, HopfieldLayer, HopfieldPooling   trainable association, learned memory and set
                                                pooling with energy traces, convergence and implicit
                                                gradients

Classical memory (``hopfieldkit.classical``)
    hebbian, storkey, pseudo_inverse, perceptron (W from ±1 patterns), overlaps, census (stored /
    reversed / odd mixture / spin glass), mixture_overlap
    hopfieldkit.capacity: recall_rate, capacity_curve, largest_recalled, basin_radius under a stated Protocol
    (classical rules, dense AM, exponential DAM, the modern network), vectorised over trials

Theory (``hopfieldkit.theory``), symbolic checks (``hopfieldkit.symbolic``) and attention as
structural inference (``hopfieldkit.bayes``): see their docs.

Utilities
    save_atomic(obj, path)              checkpoints written atomically (temporary file + rename)
    sincos_2d(side, dim)                fixed 2-D sine-cosine position codes of patch tokens
    patchify(img, p), unpatchify(...)   images ↔ patch tokens [B, N, p·p·C] (one layout everywhere)
    hopfieldkit.datasets                MNIST-5k, digits, CIFAR from a local folder, bars (no download)
    hopfieldkit.bags                    multiple-instance data: MNIST bags, bit-pattern sets (padded, masked)
    hopfieldkit.stats                   mean ± sd (n) over seeds; Welch's t-test: beyond seed noise?
    hopfieldkit.runs, .settings         run folders (refuse / resume / atomic, weights-only checkpoints,
                                        metrics, log) and typed settings that generate CLI flags
    clear_caches()                      drop the packed copies and buffers kept between calls
    unchecked()                         a block without value (NaN/inf) checks and their host syncs:
                                        for hot loops inside models whose own loss is checked
    retain_freed_memory()               opt-in (process-wide, glibc): keep freed CPU buffers for
                                        reuse; the library itself changes nothing process-wide
    ``HOPFIELDKIT_ONEDNN=0`` in the environment turns off the oneDNN fast paths.
"""
from .energy import Energy, SumEnergy, autodiff_grad, has_update, event_dims_of
from .lse import lse_similarity
from .hopfield import HopfieldEnergy, LowRankPriorEnergy
from .dense import DenseAMEnergy
from .pairwise import PairwiseEnergy
from .lagrangian import (
    BiasSynapse,
    ConvSynapse,
    DenseSynapse,
    ExponentialLagrangian,
    HopfieldSynapse,
    IdentityLagrangian,
    Lagrangian,
    LagrangianEnergy,
    LayerNormLagrangian,
    LogSumExpLagrangian,
    Neurons,
    RectifiedPowerLagrangian,
    ReLULagrangian,
    SigmoidLagrangian,
    SoftmaxLagrangian,
    SphericalLagrangian,
    Synapse,
    TanhLagrangian,
)
from .descend import Descent, StepSizeWarning, descend
from ._fast import clear_caches, retain_freed_memory
from ._checks import unchecked
from .et import EnergyTransformerEnergy, MaskedETEnergy, et_block
from .attractors import BetaSweep, FixedPoints, basins, beta_sweep, classify, fixed_points, grid_starts
from . import theory
from . import classical
from . import capacity
from .checkpoint import save_atomic
from .positions import sincos_2d
from .patches import patchify, unpatchify
from . import bayes
from . import nn

__version__ = "0.1.0"

__all__ = [
    "Energy", "SumEnergy", "autodiff_grad", "has_update", "event_dims_of",
    "lse_similarity", "HopfieldEnergy", "LowRankPriorEnergy", "DenseAMEnergy", "PairwiseEnergy",
    "Lagrangian", "IdentityLagrangian", "LogSumExpLagrangian", "LayerNormLagrangian",
    "ReLULagrangian", "TanhLagrangian", "SphericalLagrangian", "SoftmaxLagrangian", "RectifiedPowerLagrangian",
    "ExponentialLagrangian", "SigmoidLagrangian", "Neurons", "Synapse", "DenseSynapse", "ConvSynapse", "HopfieldSynapse", "BiasSynapse", "LagrangianEnergy",
    "Descent", "StepSizeWarning", "descend", "clear_caches", "retain_freed_memory", "unchecked", "EnergyTransformerEnergy", "MaskedETEnergy", "et_block",
    "patchify", "unpatchify", "FixedPoints", "BetaSweep", "fixed_points", "classify", "basins", "beta_sweep", "grid_starts",
    "theory", "classical", "capacity", "bayes", "nn", "save_atomic", "sincos_2d",
]
