"""How descend(method="ode")'s error tolerances decide whether, and how fast, states converge.

    python benchmarks/ode_tolerances.py            # the table in benchmarks/results/tuning.md

N = 20 patterns of norm 2 in d = 16 (Hopfield energy), 50 random starts, the default convergence
tolerance (1e-10 in float64, 1e-5 in float32), up to 3000 solver steps. Each cell: the solver steps
until every state converged, or "k/50" states converged when it ran out; rejected tries in brackets.
Counts, not times: the same on every machine.
"""
from __future__ import annotations

import argparse

import torch

import hopfieldkit as hk
from hopfieldkit.descend import DEFAULT_TOL


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--betas", default="0.01,1,4,20")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--starts", type=int, default=50)
    args = ap.parse_args(argv)
    betas = [float(b) for b in args.betas.split(",")]
    columns = [("tol/10, tol/10", 0.1, 0.1), ("10·tol, tol/10 (default)", 10.0, 0.1),
               ("100·tol, tol/10", 100.0, 0.1), ("1000·tol, tol/10", 1000.0, 0.1), ("1e-6, 1e-8 (the old defaults)", None, None)]
    rows = ["| dtype | β | " + " | ".join(c[0] for c in columns) + " |", "|---|---|" + "---|" * len(columns)]
    for dtype in (torch.float64, torch.float32):
        g = torch.Generator().manual_seed(0)
        X = torch.randn(20, 16, generator=g, dtype=torch.float64)
        X = (2 * X / X.norm(dim=-1, keepdim=True)).to(dtype)
        xi = (2 * torch.randn(args.starts, 16, generator=g, dtype=torch.float64)).to(dtype)
        E, tol = hk.HopfieldEnergy(X), DEFAULT_TOL[dtype]
        for beta in betas:
            cells = []
            for _, r, a in columns:
                opts = {"rtol": 1e-6, "atol": 1e-8} if r is None else {"rtol": r * tol, "atol": a * tol}
                run = hk.descend(E, xi, beta, method="ode", steps=args.steps, options=opts)
                n = int(run.converged.sum())
                done = f"{run.steps}" if n == args.starts else f"{n}/{args.starts}"
                cells.append(f"{done} ({int(run.info['rejected'].sum())})")
            rows.append(f"| {str(dtype).replace('torch.', '')} | {beta:g} | " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    table = "\n".join(rows)
    print(table)
    return table


if __name__ == "__main__":
    main()
