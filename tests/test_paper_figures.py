"""The figure scripts run end to end at their smallest setting and write what they promise."""
import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "paper_figures" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_metastable_beta_sweep_script(tmp_path):
    mod = _load("metastable_beta_sweep")
    png = mod.main(["--patterns", "30", "--betas", "4", "--out", str(tmp_path)])
    assert png.exists() and png.stat().st_size > 10_000
    md = (tmp_path / "metastable_beta_sweep.md").read_text()
    assert "Command: `python paper_figures/metastable_beta_sweep.py --patterns 30" in md
    assert "metastable" in md and "Git revision" in md
