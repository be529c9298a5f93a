"""Range of ET step sizes α for which the discrete block x ← x − α ∂E/∂g never raises the energy.

In continuous time dE/dt = −(∂E/∂g)ᵀ ∇²L (∂E/∂g) ≤ 0 because the layer-norm Lagrangian's Hessian is
PSD (γ ≥ 0). A discrete step adds a second-order term: E(x − αd) = E − α dᵀ∇²L d + ½α² dᵀ∇²_x(E∘g) d + …,
so the decrease holds for α below a threshold set by the curvature of E∘g, which grows with the
weights' scale and with 1/σ of the tokens. This script measures it: for each weight setting and α it
runs the block from random token states (float64) and reports the fraction of samples whose energy
ever rose (by more than 1000 ulps) and the largest relative rise.

    python paper_figures/et_step_size.py                      # random weights at three scales
    python paper_figures/et_step_size.py --checkpoint runs/et/last.pt   # add trained weights
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import torch

import hopfieldkit as hk
from hopfieldkit.checkpoint import git_revision

HERE = pathlib.Path(__file__).resolve().parent
ALPHAS = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0]


def _rose(e: torch.Tensor) -> torch.Tensor:
    """[steps, samples] relative rises of an energy trace above 1000 ulps."""
    rise = (e[1:] - e[:-1]) / e[:-1].abs().clamp_min(1.0)
    return rise > 1e3 * torch.finfo(e.dtype).eps


def study(E: hk.EnergyTransformerEnergy, alphas, samples: int, tokens: int, steps: int, seed: int,
          x_scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, tokens, E.dim, generator=g, dtype=torch.float64) * x_scale
    rows = []
    for a in alphas:
        run = hk.et_block(E, x, alpha=a, steps=steps, trajectory=True)
        e = run.energies.detach()
        rise = (e[1:] - e[:-1]) / e[:-1].abs().clamp_min(1.0)
        hn = E.hopfield_energy(E.activation(run.trajectory.detach()))        # the Hopfield part alone
        hn_up = _rose(hn) & ~_rose(e)                                        # it rose, the total did not
        rows.append({"alpha": a, "frac_rose": float(_rose(e).any(0).double().mean()),
                     "max_rel_rise": float(rise.max().clamp_min(0)), "drop": float((e[0] - e[-1]).mean()),
                     "hn_rose": int(hn_up.sum()), "step_samples": hn_up.numel()})
    return rows


def main(argv: list[str] | None = None) -> pathlib.Path:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--head-dim", type=int, default=8)
    ap.add_argument("--memories", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--checkpoint", type=pathlib.Path, default=None, help="an et_completion last.pt")
    ap.add_argument("--out", type=pathlib.Path, default=HERE.parent / "runs" / "paper_figures",
                    help="output folder (default runs/paper_figures, untracked; --out paper_figures/results "
                         "updates the committed result)")
    args = ap.parse_args(argv)
    settings = {}  # name -> (energy, token scale σ)
    for w, m, xs in ((0.002, 0.02, 1.0), (0.1, 0.1, 1.0), (0.5, 0.5, 1.0), (0.1, 0.1, 0.01),
                     (0.1, None, 1.0), (0.1, None, 0.01), (0.5, None, 0.01), (0.0, 0.1, 1.0), (0.0, 0.5, 0.01)):
        torch.manual_seed(0)
        mem = torch.zeros(1, args.dim) if m is None else args.memories
        part = "attention only" if m is None else "Hopfield only" if w == 0 else f"ξ {m}"
        name = f"W {w}, " + part + (f" {m}" if part == "Hopfield only" else "") + f", tokens σ={xs}"
        settings[name] = (hk.EnergyTransformerEnergy(args.dim, args.heads, args.head_dim, mem,
                                                     w_std=w, mem_std=m or 0.0).double(), xs)
    if args.checkpoint is not None:
        ck = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
        c = ck["config"]
        E = hk.EnergyTransformerEnergy(c["dim"], c["heads"], c["head_dim"], c["memories"], hn=c["hn"]).double()
        E.load_state_dict({k[len("energy."):]: v for k, v in ck["model"].items() if k.startswith("energy.")})
        settings[f"trained ({args.checkpoint}), tokens σ=1.0"] = (E, 1.0)
    table = ["| weights | α | samples whose energy rose | largest relative rise | mean energy drop | "
             "steps where E^HN rose, E did not |", "|---|---|---|---|---|---|"]
    limits, hn_counts = {}, [0, 0]
    for name, (E, xs) in settings.items():
        rows = study(E, ALPHAS, args.samples, args.tokens, args.steps, seed=1, x_scale=xs)
        ok = [r["alpha"] for r in rows if r["frac_rose"] == 0]
        limits[name] = max(ok) if ok else None
        for r in rows:
            table.append(f"| {name} | {r['alpha']} | {r['frac_rose']:.0%} | {r['max_rel_rise']:.2e} | {r['drop']:.4g} | "
                         f"{r['hn_rose']} / {r['step_samples']} |")
            if "only" not in name and r["frac_rose"] == 0:
                hn_counts[0] += r["hn_rose"]
                hn_counts[1] += r["step_samples"]
        print(f"{name}: monotone for every sample up to α = {limits[name]}", flush=True)
    rev = git_revision(HERE)
    cmd = "python paper_figures/et_step_size.py " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    md = args.out / "et_step_size.md"
    md.write_text(
        f"# ET block: monotone step sizes\n\nCommand: `{cmd.strip()}`  \nGit revision: `{rev}`  \n"
        f"D = {args.dim}, H = {args.heads}, Y = {args.head_dim}, K = {args.memories} (ReLU² memories), "
        f"{args.tokens} tokens, {args.samples} random token states N(0, 1), {args.steps} steps, float64.\n\n"
        + "\n".join(f"- {n}: monotone for every sample up to α = {a}" for n, a in limits.items())
        + "\n\nReading: an energy of Hopfield terms alone is concave in g, and LN = ∇L is a monotone map, so its "
        "descent lowers it for every α (the 'Hopfield only' rows). In the full energy the step follows the "
        "gradient of the sum, and the Hopfield part alone rose on "
        f"{hn_counts[0]} of {hn_counts[1]} step-samples of the monotone full-energy runs above while the total fell. "
        "The attention energy is not concave, and it rises once the effective step in "
        "g-space, α·γ/σ (the LN Jacobian's eigenvalues are γ/σ), exceeds about 3 (here: α ≤ 3 at σ = 1, α ≤ 0.03 at σ = 0.01).\n\n" + "\n".join(table) + "\n")
    print(md.read_text())
    return md


if __name__ == "__main__":
    main()
