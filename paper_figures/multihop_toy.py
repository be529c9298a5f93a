"""The Multihop toy experiment of Singh & Buckley [SB], regenerated from code.

Task (after the authors' auto-regression toy): sequences of length 5 and width 3. Positions 0–2
form a chain x_i = x_{i−1} A + noise (x_0 ~ N(1, 10²), A ~ 10·N(0, 1)); positions 3–4 are
distractors ~ N(1, 10²). The target y = w · Σ_{i<3} x_i[−1] is read out at the last position (a
distractor), so the model must gather the chain from a token that is not part of it.

Models (no positional encodings, value width 1 at the last layer):
  one-layer   softmax self-attention,                      out = A V
  multihop    one layer whose value function sums paths,  out = (I + A + A²) V / 3   (hopfieldkit.bayes)
  two-layer   two self-attention layers with a residual

Trained with Adam (lr 1e-2), batch 200, on fresh samples; the curve is the validation MSE divided
by the target variance (1.0 = predicting the mean), median and range over seeds.

    python paper_figures/multihop_toy.py               # 5 seeds × 6000 steps, ~2-3 minutes on CPU
    python paper_figures/multihop_toy.py --steps 200 --seeds 1    # smoke test
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import torch
from torch import nn

from hopfieldkit import bayes as B
from hopfieldkit.checkpoint import git_revision

HERE = pathlib.Path(__file__).resolve().parent


class AutoRegressionTask:
    """Seeded generator of the chain-sum regression task (module docstring)."""

    def __init__(self, seed: int, length: int = 5, dim: int = 3, chain: int = 3, a_scale: float = 10.0):
        g = torch.Generator().manual_seed(seed)
        self.A = torch.randn(dim, dim, generator=g) * a_scale
        self.w = float(torch.rand(1, generator=g)) * 10
        self.length, self.dim, self.chain = length, dim, chain

    def sample(self, batch: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = [1 + 10 * torch.randn(batch, 1, self.dim, generator=gen)]
        for _ in range(self.chain - 1):
            x.append(x[-1] @ self.A + 1 + 0.01 * torch.randn(batch, 1, self.dim, generator=gen))
        distract = 1 + 10 * torch.randn(batch, self.length - self.chain, self.dim, generator=gen)
        y = self.w * sum(t[:, 0, -1] for t in x)
        return torch.cat(x + [distract], 1), y[:, None]


class AttentionLayer(nn.Module):
    def __init__(self, dim: int, out: int, value_fn: str = "linear"):
        super().__init__()
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, out, bias=False)
        self.value_fn = value_fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return B.attention(self.q(x), self.k(x), self.v(x), value_fn=self.value_fn)


class OneLayer(nn.Module):
    def __init__(self, dim: int, value_fn: str = "linear"):
        super().__init__()
        self.attn = AttentionLayer(dim, 1, value_fn)

    def forward(self, x):
        return self.attn(x)[:, -1]


class TwoLayer(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.l1, self.l2 = AttentionLayer(dim, dim), AttentionLayer(dim, 1)

    def forward(self, x):
        return self.l2(x + self.l1(x))[:, -1]


MODELS = {"one-layer": lambda d: OneLayer(d), "multihop": lambda d: OneLayer(d, "multihop(2)"),
          "two-layer": lambda d: TwoLayer(d)}


def train(name: str, task: AutoRegressionTask, steps: int, seed: int, lr: float, evals: int) -> list[float]:
    torch.manual_seed(seed)
    model = MODELS[name](task.dim)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(1000 + seed)
    Xv, yv = task.sample(2000, torch.Generator().manual_seed(10_000 + seed))
    var = float(yv.var())
    every = max(1, steps // evals)
    curve = []
    for step in range(steps + 1):
        if step % every == 0 or step == steps:
            with torch.no_grad():
                curve.append(float(((model(Xv) - yv) ** 2).mean()) / var)
        if step == steps:
            break
        X, y = task.sample(200, gen)
        loss = ((model(X) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return curve


def main(argv: list[str] | None = None) -> pathlib.Path:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--evals", type=int, default=30, help="validation points per curve")
    ap.add_argument("--out", type=pathlib.Path, default=HERE.parent / "runs" / "paper_figures",
                    help="output folder (default runs/paper_figures, untracked; --out paper_figures/results "
                         "updates the committed result)")
    args = ap.parse_args(argv)
    import matplotlib.pyplot as plt

    t0 = time.time()
    curves = {name: [] for name in MODELS}
    for seed in range(args.seeds):
        task = AutoRegressionTask(seed)
        for name in MODELS:
            curves[name].append(train(name, task, args.steps, seed, args.lr, args.evals))
        print(f"seed {seed}: " + ", ".join(f"{n} {c[-1][-1]:.3f}" for n, c in curves.items()), flush=True)
    steps_axis = torch.linspace(0, args.steps, len(next(iter(curves.values()))[0]))

    fig, ax = plt.subplots(figsize=(6.5, 4))
    colors = {"one-layer": "tab:red", "multihop": "tab:blue", "two-layer": "tab:green"}
    summary = {}
    for name, cs in curves.items():
        c = torch.tensor(cs)
        med = c.median(0).values
        ax.plot(steps_axis, med, color=colors[name], label=name)
        ax.fill_between(steps_axis, c.min(0).values, c.max(0).values, color=colors[name], alpha=0.15)
        final = c[:, -1]
        summary[name] = {"median": float(final.median()), "min": float(final.min()), "max": float(final.max()),
                         "solved": int((final < 0.2).sum())}
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("validation MSE / Var(y)")
    ax.set_title(f"Multihop toy (length 5, width 3): median and range over {args.seeds} seeds")
    ax.legend()
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / "multihop_toy.png"
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)

    rev = git_revision(HERE)
    cmd = "python paper_figures/multihop_toy.py " + " ".join(argv if argv is not None else sys.argv[1:])
    rows = "\n".join(f"| {n} | {s['median']:.4f} | {s['min']:.4f} – {s['max']:.4f} | {s['solved']}/{args.seeds} |"
                     for n, s in summary.items())
    md = args.out / "multihop_toy.md"
    md.write_text(
        f"# Multihop toy experiment\n\nCommand: `{cmd.strip()}`  \nGit revision: `{rev}`  \n"
        f"{args.seeds} seeds × {args.steps} steps, Adam lr {args.lr}, batch 200; CPU, "
        f"torch {torch.__version__}, {time.time() - t0:.0f} s.\n\n"
        f"Final validation MSE / Var(y) (1.0 = predicting the mean):\n\n"
        f"| model | median | range over seeds | seeds solved (< 0.2) |\n|---|---|---|---|\n{rows}\n")
    (args.out / "multihop_toy.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                            "curves": curves, "summary": summary}))
    print(md.read_text())
    return png


if __name__ == "__main__":
    import matplotlib

    matplotlib.use("Agg")   # a command-line run draws to files only
    main()
