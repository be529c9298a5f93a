"""hopfieldkit.bayes: attention as structural inference [SB].

Attention weights are posterior marginals over a latent adjacency structure (which key is the
parent of each query); the attention output is the posterior expectation of the value function.
Every mechanism is a choice of constraint, prior, potential, inference mode, value function and
iterations:

    posterior(q, k, constraint="row", log_prior=None, potential="dot", scale=None) -> Posterior
        .marginals [..., m, n], .log_evidence, .entropy, .free_energy(q), .map(), .sample(n)
    attention(q, k, v, ..., inference="marginal", value_fn="linear", iters=1, m_step=None)
    em(q, k, v, iters, m_step="mean", ...) -> EMTrace (queries and log-evidence per iteration)
    StructuralAttention(dim, heads, ...)         multi-head module
    priors: causal, padding, from_mask, alibi, geometric, LearnedBias
    inference modes: Marginal, MAP, TopK(k, renormalize), Sample(tau, hard); value fns: Linear, Multihop(K)

Special cases (each tested equal to the standard layer): self_attention, cross_attention,
hard_attention, topk_attention, multihop_attention, InducingPointAttention (Perceiver / Set
Transformer), SlotAttentionEM (slot attention without its GRU), hopfield_attention (the modern
Hopfield update as EM), workspace_write / workspace_broadcast [GWS], expanding_attention.
Also: brute_force / structures (exact posterior by enumeration), sparsemax, and
PredictiveCodingEnergy (attention as inferred precision; descend it with hopfieldkit.descend).
"""
from . import priors
from .attention import (EMTrace, InducingPointAttention, SlotAttentionEM, StructuralAttention, attention,
                        cross_attention, em, hard_attention, hopfield_attention, mean_m_step, multihop_attention,
                        self_attention, topk_attention, workspace_broadcast, workspace_write)
from .enumerate import BruteForce, brute_force, structures
from .expanding import ExpandingResult, expanding_attention
from .posterior import (MAP, Linear, Marginal, Multihop, Posterior, Sample, TopK, parse_inference,
                        parse_value_fn, posterior, potential_scores)
from .predictive_coding import PredictiveCodingEnergy
from .sparse import sparsemax

__all__ = [
    "priors", "posterior", "Posterior", "potential_scores", "attention", "em", "EMTrace", "mean_m_step",
    "StructuralAttention", "Marginal", "MAP", "TopK", "Sample", "Linear", "Multihop", "parse_inference",
    "parse_value_fn", "self_attention", "cross_attention", "hard_attention", "topk_attention",
    "multihop_attention", "InducingPointAttention", "SlotAttentionEM", "hopfield_attention",
    "workspace_write", "workspace_broadcast", "expanding_attention", "ExpandingResult", "brute_force",
    "structures", "BruteForce", "PredictiveCodingEnergy", "sparsemax",
]
