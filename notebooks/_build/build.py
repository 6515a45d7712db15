"""Build notebooks from their percent-format sources in this folder.

Each ``notebooks/_build/NN_name.py`` is a plain Python file split into cells by ``# %%`` lines
(``# %% [markdown]`` starts a markdown cell whose lines are ``# ``-commented; ``# %% tags=["a"]``
tags a code cell). This script writes ``notebooks/NN_name.ipynb`` WITHOUT outputs; execute it
afterwards to store outputs, or pass ``--execute`` to build and execute in one go:

    python notebooks/_build/build.py --execute 02_masking 03_latent_spaces 04_sttformer

``--execute`` runs the notebook in its own folder (as nbval does), without timing metadata, and
merges consecutive stream outputs: how ``print`` output is cut into chunks depends on the
kernel's flush timer, so without merging a re-execution on a busy machine is not byte-identical.
(``jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.record_timing=False``
gives the same outputs up to that chunking; nbval merges chunks before comparing.)

With no notebook name every source in this folder is built.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE.parent
CELL = re.compile(r"^# %%(?P<md> \[markdown\])?(?: tags=(?P<tags>\[.*\]))?\s*$")


def parse(source: str, path: Path) -> list[nbformat.NotebookNode]:
    cells: list[nbformat.NotebookNode] = []
    kind, tags, lines = None, [], []

    def flush():
        if kind is None:
            return
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in text.split("\n"))
            cell = nbformat.v4.new_markdown_cell(text)
        else:
            cell = nbformat.v4.new_code_cell(text)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for lineno, line in enumerate(source.split("\n"), 1):
        m = CELL.match(line)
        if m:
            flush()
            kind = "markdown" if m.group("md") else "code"
            try:
                tags = json.loads(m.group("tags")) if m.group("tags") else []
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{lineno}: bad tags {m.group('tags')!r}: {e}")
            lines = []
        elif kind is None:
            if line.strip():
                raise SystemExit(f"{path}:{lineno}: text before the first '# %%' cell marker")
        else:
            lines.append(line)
    flush()
    return cells


def merge_streams(outputs: list) -> list:
    """Consecutive ``stream`` outputs of the same name merged into one."""
    merged: list = []
    for out in outputs:
        if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1]["name"] == out["name"]):
            merged[-1]["text"] = "".join(merged[-1]["text"]) + "".join(out["text"])
        else:
            merged.append(out)
    return merged


def execute(path: Path) -> None:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = merge_streams(cell.outputs)
    path.write_text(nbformat.writes(nb) + "\n")


def build(name: str) -> Path:
    src = HERE / f"{name}.py"
    if not src.is_file():
        raise SystemExit(f"no source {src}")
    nb = nbformat.v4.new_notebook()
    nb.cells = parse(src.read_text(), src)
    # Stable cell ids: the same source gives a byte-identical notebook.
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i:03d}"
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    out = NOTEBOOKS / f"{name}.ipynb"
    nbformat.validate(nb)
    out.write_text(nbformat.writes(nb) + "\n")
    return out


def main(argv: list[str]) -> int:
    run = "--execute" in argv
    names = [a for a in argv if a != "--execute"] or sorted(p.stem for p in HERE.glob("[0-9][0-9]_*.py"))
    for name in names:
        out = build(name)
        if run:
            execute(out)
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
