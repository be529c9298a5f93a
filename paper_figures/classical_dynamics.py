"""The classical network beyond capacity: basins, temperature, the (α, T) phase diagram, spurious states.

    python paper_figures/classical_dynamics.py --out paper_figures/results   # the committed run
    python paper_figures/classical_dynamics.py --quick                        # a smoke run (seconds)

Every simulation stores random ±1 patterns with Hebb's rule unless named, through ``hk.descend``.

(3) ``classical_basins.png``: basin size against load per rule: the largest fraction of flipped bits
    from which a stored pattern is recalled (final overlap ≥ 0.95) in 90 % of the trials
    (``capacity.basin_radius``, sequential asynchronous sweeps, steps of 2.5 %), N = ``--basin-n``.
(4) ``classical_temperature.png``: overlap against temperature from Glauber dynamics started at a
    stored pattern: one pattern (load → 0) beside m = tanh(m/T), and α = 0.05 beside the
    replica-symmetric overlap of Amit, Gutfreund and Sompolinsky (``theory.ags_saddle``).
(5) ``classical_phase_diagram.png``: the mean overlap after Glauber dynamics from a stored pattern on
    a coarse (α, T) grid, with the AGS lines: retrieval states exist left of α_M(T), are the global
    minima left of α_c(T), and the network is paramagnetic above T_g = 1 + √α.
(6) ``classical_census.png``: what asynchronous dynamics from random starts end in (stored, reversed,
    odd mixture, spin glass: ``classical.census``) against load.

Writes the four figures, ``classical_dynamics.md`` (every number, the command and the git revision)
and ``classical_dynamics.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time

import torch

import hopfieldkit as hk
from hopfieldkit import capacity as K
from hopfieldkit import classical as C
from hopfieldkit import theory as T
from hopfieldkit.checkpoint import git_revision

HERE = pathlib.Path(__file__).resolve().parent
RULE_LABELS = {"hebbian": "Hebb", "storkey": "Storkey", "pseudo_inverse": "pseudo-inverse", "perceptron": "perceptron (sym.)"}


def basins(N, alphas, trials):
    out = {}
    for rule in K.RULES:
        out[rule] = []
        for a in alphas:
            P = max(1, round(a * N))
            b = K.basin_radius(rule, N, P, criterion="overlap", trials=trials, seed=7)
            out[rule].append({"alpha": P / N, "P": P, "radius": b.radius, "rates": b.rates})
        print(f"basins {rule:15s}: " + " ".join(f"{r['alpha']:.2f}:{r['radius']:.3f}" for r in out[rule]), flush=True)
    return out


def glauber_overlap(X, temp, trials, sweeps, seed):
    """Mean overlap with pattern 0 over the second half of ``sweeps`` Glauber sweeps from it."""
    E = hk.PairwiseEnergy(C.hebbian(X))
    start = X[:1].expand(trials, -1).clone()
    run = hk.descend(E, start, 1.0, method="glauber", steps=sweeps, trajectory=True, record=False,
                     options={"temperature": temp, "generator": torch.Generator().manual_seed(seed)})
    m = C.overlaps(run.trajectory[sweeps // 2 + 1:], X)[..., 0]          # [sweeps/2, trials]
    return float(m.mean()), float(m.mean(0).std() / math.sqrt(trials))


def temperature_curves(N, temps, trials, sweeps):
    out = {}
    for label, P in (("P = 1", 1), ("alpha = 0.05", round(0.05 * N))):
        X = C.random_patterns(P, N, seed=11)
        rows = []
        for k, t in enumerate(temps):
            m, se = glauber_overlap(X, t, trials, sweeps, seed=100 + k)
            rows.append({"T": t, "m": m, "stderr": se})
        out[label] = rows
        print(f"temperature {label}: " + " ".join(f"{r['T']:.2f}:{r['m']:.3f}" for r in rows), flush=True)
    return out


def phase_grid(N, alphas, temps, trials, sweeps):
    grid = []
    for i, a in enumerate(alphas):
        X = C.random_patterns(max(1, round(a * N)), N, seed=20 + i)
        grid.append([glauber_overlap(X, t, trials, sweeps, seed=1000 * i + j)[0] for j, t in enumerate(temps)])
        print(f"phase α={a:.3f}: " + " ".join(f"{m:.2f}" for m in grid[-1]), flush=True)
    return grid


def census_rows(N, alphas, starts):
    rows = []
    S = C.random_patterns(starts, N, seed=31)
    for i, a in enumerate(alphas):
        P = max(1, round(a * N))
        X = C.random_patterns(P, N, seed=40 + i)
        end = hk.descend(hk.PairwiseEnergy(C.hebbian(X)), S, 1.0, method="async", steps=200, record=False)
        c = C.census(end.xi, X, match=0.9)
        mix3 = [float(c.overlaps[k].abs().sort(descending=True).values[:3].mean())
                for k, kind in enumerate(c.kinds) if kind == "mixture" and len(c.members[k]) == 3]
        rows.append({"alpha": P / N, "P": P, **c.fractions(), "converged": float(end.converged.double().mean()),
                     "mixture3_overlap": sum(mix3) / len(mix3) if mix3 else None, "mixture3_count": len(mix3)})
        print(f"census α={P / N:.3f}: " + ", ".join(f"{k} {v:.2f}" for k, v in c.fractions().items()), flush=True)
    return rows


def ags_lines(temps):
    return {"T": temps, "alpha_M": [T.ags_retrieval_load(t, tol=2e-4) for t in temps],
            "alpha_c": [T.ags_global_load(t, tol=2e-4) for t in temps]}


def draw(res, out_dir):
    import matplotlib.pyplot as plt

    # (3) basins
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for rule, rows in res["basins"].items():
        ax.plot([r["alpha"] for r in rows], [r["radius"] for r in rows], "o-", label=RULE_LABELS[rule])
    ax.axvline(T.AGS_ALPHA_C, color="gray", ls=":", lw=1)
    ax.text(T.AGS_ALPHA_C, ax.get_ylim()[1], " 0.138", fontsize=7, color="gray", va="top")
    ax.set_xlabel("load α = P/N")
    ax.set_ylabel("basin radius (fraction of flipped bits)")
    ax.set_title(f"basins: recalled to overlap ≥ 0.95 in 90 % of trials, N = {res['settings']['basin_n']}", fontsize=9)
    ax.legend(fontsize=7)
    fig.savefig(out_dir / "classical_basins.png", dpi=120, bbox_inches="tight")
    plt.close(fig)

    # (4) temperature
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    grid = res["ags_m"]["T"]
    ax.plot(grid, [T.curie_weiss_overlap(t) for t in grid], color="tab:blue", label="m = tanh(m/T)")
    ax.plot(grid, res["ags_m"]["m"], color="tab:orange", label="AGS, α = 0.05")
    for (label, rows), c in zip(res["temperature"].items(), ("tab:blue", "tab:orange")):
        ax.errorbar([r["T"] for r in rows], [r["m"] for r in rows], yerr=[r["stderr"] for r in rows], fmt="o",
                    color=c, capsize=2, label=f"Glauber, {label.replace('alpha', 'α')}")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("overlap m with the start pattern")
    ax.set_title(f"overlap against temperature, N = {res['settings']['temp_n']}", fontsize=9)
    ax.legend(fontsize=7)
    fig.savefig(out_dir / "classical_temperature.png", dpi=120, bbox_inches="tight")
    plt.close(fig)

    # (5) phase diagram
    s = res["settings"]
    fig, ax = plt.subplots(figsize=(5.6, 4))
    a, t = s["phase_alphas"], s["phase_temps"]
    mesh = ax.pcolormesh(_edges(a), _edges(t), torch.tensor(res["phase"]).T.numpy(), vmin=0, vmax=1, cmap="viridis",
                         shading="flat")
    fig.colorbar(mesh, ax=ax, label="mean overlap after Glauber from a pattern")
    L = res["ags"]
    ax.plot(L["alpha_M"], L["T"], "w-", lw=1.5, label="α_M: retrieval states exist (AGS)")
    ax.plot(L["alpha_c"], L["T"], "w--", lw=1.5, label="α_c: retrieval global minimum (AGS)")
    aa = [max(a) * k / 100 for k in range(101)]
    ax.plot(aa, [T.paramagnetic_temperature(x) for x in aa], "w:", lw=1.5, label="T_g = 1 + √α (paramagnet above)")
    ax.set_xlim(_edges(a)[0], _edges(a)[-1])
    ax.set_ylim(_edges(t)[0], _edges(t)[-1])
    ax.set_xlabel("load α = P/N")
    ax.set_ylabel("temperature T")
    ax.set_title(f"(α, T) from simulation (N = {s['phase_n']}) beside the AGS lines", fontsize=9)
    ax.legend(fontsize=6, loc="upper right", framealpha=0.3)
    fig.savefig(out_dir / "classical_phase_diagram.png", dpi=120, bbox_inches="tight")
    plt.close(fig)

    # (6) census
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    rows = res["census"]
    labels = [f"{r['alpha']:.3f}" for r in rows]
    bottom = [0.0] * len(rows)
    for kind in ("stored", "reversed", "mixture", "spin glass"):
        vals = [r[kind] for r in rows]
        ax.bar(labels, vals, bottom=bottom, label=kind)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xlabel("load α = P/N")
    ax.set_ylabel("fraction of end states")
    ax.set_title(f"where {s['census_starts']} random starts end, N = {s['census_n']}", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    ax.tick_params(axis="x", labelsize=7)
    fig.savefig(out_dir / "classical_census.png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def _edges(centres):
    c = list(centres)
    mids = [(x + y) / 2 for x, y in zip(c, c[1:])]
    return [c[0] - (mids[0] - c[0])] + mids + [c[-1] + (c[-1] - mids[-1])]


def report(res, cmd, minutes, threads) -> str:
    s = res["settings"]
    lines = [f"# The classical network: basins, temperature, phase diagram, spurious states\n",
             f"Command: `{cmd}`  \nGit revision: `{res['revision']}`  \n{minutes:.1f} min on {threads} thread(s). "
             "Hebb's rule unless named; Glauber dynamics at temperature T start at a stored pattern.\n",
             f"## (3) Basin radius (largest flipped fraction recalled to overlap ≥ 0.95 in 90 % of "
             f"{s['basin_trials']} trials; N = {s['basin_n']}; nan: not even the uncorrupted pattern)\n",
             "| rule | " + " | ".join(f"α={r['alpha']:.2f}" for r in next(iter(res["basins"].values()))) + " |",
             "|---|" + "---|" * len(s["basin_alphas"])]
    for rule, rows in res["basins"].items():
        lines.append(f"| {RULE_LABELS[rule]} | " + " | ".join(f"{r['radius']:.3f}" for r in rows) + " |")
    lines += ["", f"## (4) Overlap against temperature (N = {s['temp_n']}, {s['temp_trials']} chains, "
              f"{s['sweeps']} sweeps, mean over the second half ± s.e. over chains)\n",
              "| T | P = 1 | m = tanh(m/T) | α = 0.05 | AGS m(0.05, T) |", "|---|---|---|---|---|"]
    one, five = res["temperature"]["P = 1"], res["temperature"]["alpha = 0.05"]
    for r1, r5 in zip(one, five):
        lines.append(f"| {r1['T']:.2f} | {r1['m']:.3f} ± {r1['stderr']:.3f} | {T.curie_weiss_overlap(r1['T']):.3f} | "
                     f"{r5['m']:.3f} ± {r5['stderr']:.3f} | {T.ags_saddle(0.05, r5['T']).m:.3f} |")
    lines += ["", f"## (5) Mean overlap after {s['sweeps']} Glauber sweeps from a pattern (N = {s['phase_n']}, "
              f"{s['phase_trials']} chains a cell) and the AGS lines\n",
              "| α \\ T | " + " | ".join(f"{t:.2f}" for t in s["phase_temps"]) + " |",
              "|---|" + "---|" * len(s["phase_temps"])]
    for a, row in zip(s["phase_alphas"], res["phase"]):
        lines.append(f"| {a:.3f} | " + " | ".join(f"{m:.2f}" for m in row) + " |")
    L = res["ags"]
    lines += ["", "AGS lines (replica-symmetric theory, `theory.ags_retrieval_load`, `theory.ags_global_load`):\n",
              "| T | α_M(T) | α_c(T) |", "|---|---|---|"]
    for t, am, ac in zip(L["T"], L["alpha_M"], L["alpha_c"]):
        lines.append(f"| {t:.3f} | {am:.4f} | {ac:.4f} |")
    lines += ["", f"## (6) Census of end states ({s['census_starts']} random starts, N = {s['census_n']}, "
              "sequential async, a state counts as a pattern or mixture at overlap ≥ 0.9)\n",
              "| α | P | stored | reversed | mixture | spin glass | converged | mean overlap of 3-mixtures (n) |",
              "|---|---|---|---|---|---|---|---|"]
    for r in res["census"]:
        mo = "—" if r["mixture3_overlap"] is None else f"{r['mixture3_overlap']:.3f} ({r['mixture3_count']})"
        lines.append(f"| {r['alpha']:.3f} | {r['P']} | {r['stored']:.2f} | {r['reversed']:.2f} | {r['mixture']:.2f} | "
                     f"{r['spin glass']:.2f} | {r['converged']:.2f} | {mo} |")
    lines += ["", f"Theory for a symmetric 3-mixture at large N: overlap {C.mixture_overlap(3):.3f} with each member.\n"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small N and few trials (a smoke run)")
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/paper_figures"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    torch.set_num_threads(args.threads)
    q = args.quick
    s = {"basin_n": 40 if q else 100, "basin_trials": 6 if q else 30,
         "basin_alphas": [0.05, 0.15] if q else [0.02, 0.05, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.4],
         "temp_n": 60 if q else 1000, "temp_trials": 4 if q else 16, "sweeps": 8 if q else 40,
         "temps": [0.4, 1.2] if q else [0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.05, 1.2, 1.4],
         "phase_n": 60 if q else 1000, "phase_trials": 2 if q else 4,
         "phase_alphas": [0.05, 0.15] if q else [0.01, 0.03, 0.05, 0.07, 0.09, 0.11, 0.13, 0.15, 0.17, 0.2],
         "phase_temps": [0.2, 1.0] if q else [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 1.05, 1.15],
         "census_n": 60 if q else 200, "census_starts": 20 if q else 300,
         "census_alphas": [0.02, 0.1] if q else [0.005, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.14, 0.2, 0.3]}
    ags_T = [0.05, 0.5, 0.95] if q else [0.002, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98]
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res = {"settings": s, "revision": git_revision(HERE)}
    res["basins"] = basins(s["basin_n"], s["basin_alphas"], s["basin_trials"])
    res["temperature"] = temperature_curves(s["temp_n"], s["temps"], s["temp_trials"], s["sweeps"])
    res["phase"] = phase_grid(s["phase_n"], s["phase_alphas"], s["phase_temps"], s["phase_trials"], s["sweeps"])
    res["ags"] = ags_lines(ags_T)
    m_T = [0.02 + (1.4 / (8 if q else 70)) * k for k in (range(9) if q else range(71))]
    res["ags_m"] = {"T": m_T, "m": [T.ags_saddle(0.05, t).m for t in m_T]}
    res["census"] = census_rows(s["census_n"], s["census_alphas"], s["census_starts"])
    import matplotlib

    matplotlib.use("Agg")   # a command-line run draws to files only
    draw(res, args.out)
    cmd = ("python paper_figures/classical_dynamics.py " + " ".join(argv)).strip()
    md = report(res, cmd, (time.perf_counter() - t0) / 60, args.threads)
    (args.out / "classical_dynamics.md").write_text(md)
    (args.out / "classical_dynamics.json").write_text(json.dumps(res, indent=1, default=float))
    print(md)
    return res


if __name__ == "__main__":
    main()
