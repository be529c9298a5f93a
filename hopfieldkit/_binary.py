"""Binary dynamics for :func:`hopfieldkit.descend`: ``method="async" | "sync" | "glauber"``.

They run energies on ±1 states that offer ``sweep(s, beta, order, choose)`` (one asynchronous
pass, each neuron set by ``choose(Δ_i, s_i)`` from its energy gap Δ_i = E(s_i = −1) − E(s_i = +1))
and ``field_gaps(s, beta)`` (every Δ_i at once): :class:`~hopfieldkit.PairwiseEnergy` and the
binary :class:`~hopfieldkit.DenseAMEnergy`. One step is one sweep over all neurons.

- ``async``: s_i ← sign(Δ_i) (a tie keeps s_i), in the order 0 … N−1 (``order="sequential"``) or a
  fresh random permutation per sweep (``order="random"``, drawn from ``generator``). E never rises;
  a state has converged when a sweep changes nothing (a fixed point under single flips).
- ``sync``: s ← sign(Δ) for all neurons at once. No energy guarantee; a state whose sweep changes
  nothing has converged, one that returns to the state of two sweeps before is in a 2-cycle
  (``info["two_cycle"]``): both are frozen and reported, never a 2-cycle as converged.
- ``glauber``: at temperature T (``options["temperature"]``), s_i = +1 with probability
  1 / (1 + exp(−Δ_i / T)), in random order; stochastic, so it never "converges": it runs all steps,
  and with ``trajectory=True`` keeps every state.
"""
from __future__ import annotations

import torch

from .pairwise import check_binary, deterministic

BINARY_METHODS = ("async", "sync", "glauber")


def check_binary_energy(energy, method: str, xi: torch.Tensor) -> None:
    """The energy runs binary dynamics and ``xi`` holds ±1 states."""
    if not (getattr(energy, "binary", False) is True and callable(getattr(energy, "sweep", None))
            and callable(getattr(energy, "field_gaps", None))):
        raise ValueError(f"method={method!r} runs binary energies (±1 states with sweep and field_gaps: "
                         f"PairwiseEnergy, DenseAMEnergy(state='binary')); {type(energy).__name__} is not one")
    check_binary("xi", xi)


def run_binary(energy, s: torch.Tensor, beta, e0: torch.Tensor | None, *, method: str, steps: int, record: bool,
               keep_traj: bool, progress: bool, options: dict):
    from .descend import Descent

    N = s.shape[-1]
    gen, order, T = options.get("generator"), options.get("order", "sequential"), options.get("temperature")

    def perm():
        return torch.randperm(N, generator=gen) if order == "random" else None

    def glauber(gap, current):
        u = torch.rand(gap.shape, generator=gen, dtype=gap.dtype).to(gap.device)
        return torch.where(u < torch.sigmoid(gap / T), torch.ones_like(current), -torch.ones_like(current))

    batch = s.shape[:-1]
    converged = torch.zeros(batch, dtype=torch.bool, device=s.device)
    two_cycle = torch.zeros_like(converged)
    state_steps = torch.zeros(batch, dtype=torch.long, device=s.device)
    flips = torch.zeros(batch, dtype=s.dtype, device=s.device)
    energies = [e0] if record else None
    traj = [s] if keep_traj else None
    x, before, taken, stop = s, None, 0, f"reached steps={steps}"
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, desc=f"descend ({method})")
    for t in range(1, steps + 1):
        if method == "sync":
            new = deterministic(energy.field_gaps(x, beta), x)
        elif method == "async":
            new = energy.sweep(x, beta, perm())
        else:
            new = energy.sweep(x, beta, perm(), glauber)
        frozen = converged | two_cycle
        changed = (new != x).sum(-1)
        if method != "glauber":
            converged = converged | (~frozen & (changed == 0))
            if method == "sync" and before is not None:
                two_cycle = two_cycle | (~frozen & (changed > 0) & (new == before).all(-1))
            new = torch.where(frozen.unsqueeze(-1), x, new)
        flips = torch.where(frozen, flips, changed.to(s.dtype))
        state_steps = state_steps + (~frozen & (changed > 0))
        before, x, taken = x, new, t
        if record:
            energies.append(energy(x, beta))
        if keep_traj:
            traj.append(x)
        if bar is not None:
            bar.update(1)
        if method != "glauber" and bool((converged | two_cycle).all()):
            stop = None
            break
    if bar is not None:
        bar.close()
    n, c, k = converged.numel(), int(converged.sum()), int(two_cycle.sum())
    if method == "glauber":
        message = f"ran {taken} Glauber sweeps at T={T:g} (stochastic: nothing is judged converged)"
    else:
        parts = [f"{c} of {n} states at a fixed point"] + ([f"{k} in a 2-cycle"] if k else []) + ([stop] if stop else [])
        message = "; ".join(parts)
    info = {"order": order} if method != "sync" else {"two_cycle": two_cycle}
    if method == "glauber":
        info["temperature"] = T
    return Descent(xi=x, energies=None if energies is None else torch.stack(energies),
                   trajectory=None if traj is None else torch.stack(traj), converged=converged,
                   diverged=torch.zeros_like(converged), steps=taken, state_steps=state_steps, residual=flips,
                   method=method, message=message, info=info)
