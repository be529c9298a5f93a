"""The README's quick start runs as written."""
import pathlib
import re


def _run_readme_block(heading: str, capsys) -> str:
    """Execute the first ```python block after ``## heading`` in README.md; return what it printed."""
    text = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    code = re.search(rf"## {re.escape(heading)}.*?```python\n(.*?)```", text, re.S).group(1)
    exec(compile(code, f"README {heading}", "exec"), {})
    return capsys.readouterr().out


def test_readme_quick_start_runs(capsys):
    out = _run_readme_block("Quick start", capsys)
    assert "converged=8/8" in out and "True" in out


def test_ci_runs_exactly_the_readme_setup_commands():
    root = pathlib.Path(__file__).parents[1]
    text = (root / "README.md").read_text()
    setup = re.search(r"## Set-up(.*?)## Quick start", text, re.S).group(1)
    commands = re.findall(r"```bash\n(.*?)\n```", setup, re.S)
    assert len(commands) == 2, "README's set-up has exactly two commands: install, then test"
    ci = [line for line in (root / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    for cmd in commands:
        assert cmd.strip() in ci, f"{cmd!r} is not run verbatim by .ci/run"


def test_readme_parameter_table_matches_the_code():
    import torch

    from ait.models import build, count_parameters

    text = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    rows = re.findall(r"^\| (small|medium|base) \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \|$", text, re.M)
    assert len(rows) == 3
    with torch.device("meta"):
        for size, *nums in rows:
            got = [count_parameters(build(f"ait-{size}", preset="paper")), count_parameters(build(f"ait-{size}")),
                   count_parameters(build(f"vit-{size}")), count_parameters(build(f"vit-{size}-cls"))]
            assert [int(n.replace(",", "")) for n in nums] == got, size


def test_readme_baseline_table_matches_the_code():
    import torch

    from ait.models import build, count_parameters

    text = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    rows = re.findall(r"^\| `([a-z-]+)` \| [^|]+ \| ([\d,]+) \| [^|]+ \|$", text, re.M)
    assert len(rows) == 13
    with torch.device("meta"):
        for name, n in rows:
            got = count_parameters(build(name))
            assert int(n.replace(",", "")) == got, name


def test_the_repo_cites_no_file_outside_it():
    """Code and docs point to the repo's own docs, never to the specification files it was built
    from (users of the repo never see them)."""
    import re

    root = pathlib.Path(__file__).resolve().parents[1]
    offenders = []
    for path in root.rglob("*"):
        if path.suffix not in (".py", ".md", ".ipynb", ".toml", ".txt") or ".venv" in path.parts or ".git" in path.parts:
            continue
        text = path.read_text(errors="ignore")
        for m in re.finditer(r"SPEC_[A-Z]+\.md|SPEC_(HOPFIELD|AIT|DATA|ET|NN|BAYES|CLASSICAL)\b|\.\./shared", text):
            offenders.append(f"{path.relative_to(root)}: {m.group(0)}")
    assert not offenders, offenders


def test_readme_gpu_commands_start_on_the_cpu(tmp_path, fake_cifar):
    """Each poster-scale ``ait.train`` command of the README runs one step of batch 2 on the CPU
    (the real model sizes; CIFAR from a fake folder in the real layout)."""
    import shlex

    from ait import train as T

    text = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    block = text.split("<!-- gpu-runs:begin -->")[1].split("<!-- gpu-runs:end -->")[0]
    lines = [ln.split("#")[0] for ln in block.splitlines() if "-m ait.train" in ln]
    assert len(lines) >= 6
    fake_cifar(tmp_path), fake_cifar(tmp_path, hundred=True)
    small = ["--max-steps", "1", "--eval-every", "1", "--batch-size", "2", "--eval-batch-size", "2",
             "--train-size", "60", "--test-size", "4", "--val-size", "2", "--warmup-steps", "0"]
    for i, line in enumerate(lines):
        argv = shlex.split(line)[3:]                       # after ".venv/bin/python -m ait.train"
        argv = ["cpu" if a == "cuda" else str(tmp_path) if a == "~/data" else a for a in argv]
        argv[argv.index("--out") + 1] = str(tmp_path / f"run{i}")
        T.main([*argv, *small])
        assert (tmp_path / f"run{i}" / "last.pt").exists(), line


def test_readme_layers_example_runs(capsys):
    out = _run_readme_block("Hopfield layers in a model", capsys)
    assert "torch.Size([4, 8, 4, 5]) 3" in out and "True" in out and "torch.Size([8, 2, 64])" in out


def test_readme_classical_example_runs(capsys):
    out = _run_readme_block("Classical memory", capsys)
    assert "10 of 10 states at a fixed point True 1.0" in out and "'stored': 10" in out
