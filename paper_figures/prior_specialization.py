"""The poster's prior-specialization figure: which patch positions each learned prior selects.

    python paper_figures/prior_specialization.py            # from the small-scale AiT-tiny Triangle run
    python paper_figures/prior_specialization.py --full     # from the full-scale AiT-Small Triangle run

For 32 test images, the first workspace's top-k gates (head 1) are counted per prior and patch
position. Writes ``prior_specialization_<scale>.png`` and ``.md`` (for each prior, the share of its
selections that fall on its 4 most selected positions: 4/positions for a prior with no preference).
"""
from __future__ import annotations

import pathlib
import shutil
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import poster_runs as R  # noqa: E402

MODEL = {"small": "ait-tiny", "full": "ait-small"}


def main(argv: list[str] | None = None):
    argv, a, scale = R.parse(__doc__, argv)
    run = R.Run(MODEL[scale], "triangle")
    paths = R.ensure([run], scale, execute=not a.no_run, root=a.runs_root, extra=R.extra_args(a))
    R.require_some(paths, "prior specialization")
    import torch

    from ait import data as D
    from ait.evaluate import figures, load_run, workspace_input

    model, tc = load_run(paths[run])
    split = D.load(tc.data, "test", size=64, seed=tc.seed, image_size=tc.image_size)
    a.out.mkdir(parents=True, exist_ok=True)
    png = a.out / f"prior_specialization_{scale}.png"
    with tempfile.TemporaryDirectory() as tmp:
        figures(model, split, pathlib.Path(tmp), n=32)
        shutil.copy(pathlib.Path(tmp) / "priors.png", png)
    x, q, _ = split.batch(torch.arange(32))
    with torch.no_grad():
        ws, z = workspace_input(model, x, q)
        G = ws.gates(ws.memory, z.reshape(-1, z.shape[-1]))[0]               # head 1: [M, B·N]
    side = tc.image_size // model.cfg.patch
    counts = (G > 0).float().reshape(G.shape[0], len(x), -1)[:, :, : side * side].sum(1)  # [M, positions]
    share = counts.topk(4, -1).values.sum(-1) / counts.sum(-1).clamp_min(1)
    lines = ["| prior | selections | share on its 4 most selected positions | uniform share |", "|---|---|---|---|"]
    for m in range(len(share)):
        lines.append(f"| {m} | {int(counts[m].sum())} | {share[m]:.3f} | {4 / counts.shape[1]:.3f} |")
    print(R.write_table(a.out / f"prior_specialization_{scale}.md", "Prior specialization (poster figure)", lines, paths,
                        scale, argv, "prior_specialization.py", f"Figure: `{png.name}`."))
    return png


if __name__ == "__main__":
    main()
