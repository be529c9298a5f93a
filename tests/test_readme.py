"""The README's quick start runs as written."""
import pathlib
import re


def test_readme_quick_start_runs(capsys):
    text = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    code = re.search(r"## Quick start.*?```python\n(.*?)```", text, re.S).group(1)
    exec(compile(code, "README quick start", "exec"), {})
    out = capsys.readouterr().out
    assert "converged=8/8" in out and "True" in out
