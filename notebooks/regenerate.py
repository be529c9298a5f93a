"""Re-execute the notebooks in place, so the committed copies show their outputs and figures.

    python notebooks/regenerate.py                            # every notebook here
    python notebooks/regenerate.py 05_classical_memory.ipynb  # some of them

Each notebook runs top to bottom in a fresh kernel of this Python, at the sizes written in it (the
same run the test suite repeats). The notebook's metadata records a hash of its code cells
(``hopfieldkit.source_sha256``): ``tests/test_notebooks.py`` fails when code changed after the
outputs were made, so stale figures cannot be committed unnoticed.
"""
from __future__ import annotations

import argparse
import hashlib
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def source_hash(nb) -> str:
    """sha256 of the code cells' sources, in order (outputs and markdown excluded)."""
    h = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            h.update(cell.source.encode())
            h.update(b"\0")
    return h.hexdigest()


def run(path: pathlib.Path, timeout: int = 1200):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="notebook file names in notebooks/ (default: all)")
    args = ap.parse_args(argv)
    import nbformat

    paths = [HERE / n for n in args.names] if args.names else sorted(HERE.glob("*.ipynb"))
    for path in paths:
        if not path.is_file():
            sys.exit(f"no notebook {path}")
        t0 = time.perf_counter()
        nb = run(path)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
        if errors:
            sys.exit(f"{path.name}: a cell raised {errors[0].get('ename')}: {errors[0].get('evalue')}; not written")
        nb.metadata.setdefault("hopfieldkit", {})["source_sha256"] = source_hash(nb)
        tmp = path.with_suffix(".ipynb.tmp")
        nbformat.write(nb, tmp)
        tmp.replace(path)                       # atomic: an interrupted run leaves the old copy
        print(f"{path.name}: executed in {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
