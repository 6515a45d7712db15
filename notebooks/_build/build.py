"""Notebooks and their percent-format sources, kept in step with jupytext.

Each ``notebooks/NN_name.ipynb`` is paired with the plain Python file
``notebooks/_build/NN_name.py`` in jupytext's ``py:percent`` format: cells start at ``# %%``
lines, ``# %% [markdown]`` starts a markdown cell whose lines are ``# ``-commented, and
``# %% tags=["parameters"]`` tags a cell. ``notebooks/jupytext.toml`` declares the pairing
(``formats = "ipynb,_build//py:percent"``, no metadata header in the sources), so JupyterLab
(with jupytext installed) and the ``jupytext`` command line know it too. The source is what a
reviewer reads; the notebook adds the stored outputs that nbval compares.

Workflow:

* Edit a source, then rebuild its notebook with stored outputs (seeded, byte-identical on
  re-execution)::

      python notebooks/_build/build.py --execute 05_pretraining

* Edited a notebook in JupyterLab? Write its cells back into the source, then rebuild::

      python notebooks/_build/build.py --from-ipynb 05_pretraining
      python notebooks/_build/build.py --execute 05_pretraining

  (``jupytext --sync notebooks/05_pretraining.ipynb`` does the first step too: it updates
  whichever of the pair is older from the newer one and keeps the notebook's outputs.
  JupyterLab with jupytext installed writes the source on every save.)

* Before committing, check that every notebook holds its source's cells (CI runs the same
  check in ``tests/test_notebook_sources.py``)::

      python notebooks/_build/build.py --check

Modes (with no NAME, every source in this folder):

``build.py [NAMES]``
    Source -> notebook. If the notebook's code cells (source and tags, in order) are those of
    the source, i.e. only markdown changed, its stored outputs, execution counts and
    ``language_info`` are kept: they are exactly what execution would store. Otherwise the
    notebook is written WITHOUT outputs (``--execute`` stores them). Cell ids are ``c000``,
    ``c001``, ... so the same source gives a byte-identical notebook.
``build.py --execute [NAMES]``
    Build, then run the notebook in its own folder (as nbval does), without timing metadata,
    merging consecutive stream outputs: how ``print`` output is cut into chunks depends on the
    kernel's flush timer, so without merging a re-execution on a busy machine is not
    byte-identical. (``jupyter nbconvert --to notebook --execute --inplace
    --ExecutePreprocessor.record_timing=False`` gives the same outputs up to that chunking; nbval
    merges chunks before comparing.)
``build.py --check [NAMES]``
    Exit 1 listing every notebook whose cells (type, source, tags) differ from its source, is
    missing, or has no source. Outputs, ids and other metadata are not compared.
``build.py --from-ipynb NAMES``
    Notebook -> source, in jupytext's canonical percent layout; only cell type, source and tags
    are carried over.
``build.py --format [NAMES]``
    Rewrite sources in jupytext's canonical layout (blank lines between cells); the cells they
    hold do not change. Round trips through a notebook then leave the source byte-identical.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import jupytext
import nbformat

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE.parent
FORMAT = "py:percent"
# No YAML header in the sources and only ``tags`` as cell metadata (as in notebooks/jupytext.toml).
TEXT_METADATA = {"notebook_metadata_filter": "-all", "cell_metadata_filter": "tags,-all"}
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def source_path(name: str) -> Path:
    return HERE / f"{name}.py"


def notebook_path(name: str) -> Path:
    return NOTEBOOKS / f"{name}.ipynb"


def all_names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("[0-9][0-9]_*.py"))


def _plain_cell(cell) -> nbformat.NotebookNode:
    """A new cell of the same type and source, with its ``tags`` as the only metadata."""
    if cell.cell_type == "markdown":
        new = nbformat.v4.new_markdown_cell(cell.source)
    elif cell.cell_type == "raw":
        new = nbformat.v4.new_raw_cell(cell.source)
    else:
        new = nbformat.v4.new_code_cell(cell.source)
    tags = list(cell.get("metadata", {}).get("tags", []))
    if tags:
        new.metadata["tags"] = tags
    return new


def read_source(name: str) -> list[nbformat.NotebookNode]:
    """The cells of ``_build/NAME.py`` (type, source, tags only), parsed by jupytext."""
    src = source_path(name)
    if not src.is_file():
        raise SystemExit(f"no source {src}")
    return [_plain_cell(c) for c in jupytext.read(src, fmt=FORMAT).cells]


def cell_keys(cells) -> list[tuple[str, str, tuple[str, ...]]]:
    """What --check compares: per cell its type, source and tags."""
    return [(c.cell_type, c.source, tuple(c.get("metadata", {}).get("tags", []))) for c in cells]


def _code_keys(cells) -> list[tuple[str, str, tuple[str, ...]]]:
    return [k for k in cell_keys(cells) if k[0] == "code"]


def source_text(cells) -> str:
    """``cells`` written as jupytext's canonical percent text (no header, tags only)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [_plain_cell(c) for c in cells]
    nb.metadata = {"jupytext": dict(TEXT_METADATA)}
    return jupytext.writes(nb, fmt=FORMAT)


def _write_notebook(nb: nbformat.NotebookNode, path: Path) -> None:
    nbformat.validate(nb)
    path.write_text(nbformat.writes(nb) + "\n")


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


def build(name: str) -> tuple[Path, bool]:
    """Write ``NAME.ipynb`` from its source; return its path and whether outputs were kept."""
    nb = nbformat.v4.new_notebook()
    nb.cells = read_source(name)
    # Stable cell ids: the same source gives a byte-identical notebook.
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i:03d}"
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    out = notebook_path(name)
    kept = False
    if out.is_file():
        old = nbformat.read(out, as_version=4)
        old_code = [c for c in old.cells if c.cell_type == "code"]
        if _code_keys(old.cells) == _code_keys(nb.cells) and any(c.get("outputs") for c in old_code):
            # Only markdown changed: the stored outputs are what execution would store.
            for cell, before in zip((c for c in nb.cells if c.cell_type == "code"), old_code):
                cell.outputs = copy.deepcopy(before.outputs)
                cell.execution_count = before.execution_count
            if "language_info" in old.metadata:
                nb.metadata["language_info"] = copy.deepcopy(old.metadata["language_info"])
            kept = True
    _write_notebook(nb, out)
    return out, kept


def check(names: list[str] | None = None) -> list[str]:
    """One line per notebook that disagrees with its source (empty: all agree)."""
    problems = []
    if names is None:
        names = all_names()
        for nb_path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
            if not source_path(nb_path.stem).is_file():
                problems.append(f"{nb_path.relative_to(NOTEBOOKS.parent)}: no source "
                                f"{source_path(nb_path.stem).relative_to(NOTEBOOKS.parent)} "
                                f"(build.py --from-ipynb {nb_path.stem})")
    for name in names:
        nb_path, src = notebook_path(name), source_path(name)
        rel = nb_path.relative_to(NOTEBOOKS.parent)
        if not src.is_file():
            problems.append(f"{rel}: no source {src.relative_to(NOTEBOOKS.parent)}")
            continue
        if not nb_path.is_file():
            problems.append(f"{rel}: missing (build.py --execute {name})")
            continue
        want = cell_keys(read_source(name))
        have = cell_keys(nbformat.read(nb_path, as_version=4).cells)
        if want == have:
            continue
        i = next((i for i, (a, b) in enumerate(zip(want, have)) if a != b), min(len(want), len(have)))
        if i < min(len(want), len(have)):
            what = [f for f, a, b in zip(("type", "source", "tags"), want[i], have[i]) if a != b]
            detail = f"cell {i} differs in {', '.join(what)}"
        else:
            detail = f"{len(have)} cells, the source has {len(want)}"
        problems.append(f"{rel}: {detail} from {src.relative_to(NOTEBOOKS.parent)} "
                        f"(rebuild: build.py --execute {name}; or keep the notebook's: build.py --from-ipynb {name})")
    return problems


def from_ipynb(name: str) -> Path:
    """Write ``_build/NAME.py`` from the cells of ``NAME.ipynb`` (type, source, tags)."""
    nb_path = notebook_path(name)
    if not nb_path.is_file():
        raise SystemExit(f"no notebook {nb_path}")
    cells = nbformat.read(nb_path, as_version=4).cells
    text = source_text(cells)
    src = source_path(name)
    src.write_text(text)
    if cell_keys(read_source(name)) != cell_keys(cells):
        raise SystemExit(f"{src}: jupytext did not read back the notebook's cells (a cell jupytext cannot "
                         "represent in the percent format?)")
    return src


def format_source(name: str) -> bool:
    """Rewrite ``_build/NAME.py`` in jupytext's canonical layout; True if it changed."""
    src = source_path(name)
    cells = read_source(name)
    text = source_text(cells)
    if text == src.read_text():
        return False
    src.write_text(text)
    if cell_keys(read_source(name)) != cell_keys(cells):
        raise SystemExit(f"{src}: formatting changed its cells")
    return True


USAGE = "usage: build.py [--execute | --check | --from-ipynb | --format] [NAMES]"


def main(argv: list[str]) -> int:
    modes = [a for a in argv if a.startswith("-")]
    # NN_name, NN_name.ipynb or a path to either
    names = [Path(a).name.removesuffix(".ipynb").removesuffix(".py") for a in argv if not a.startswith("-")]
    unknown = set(modes) - {"--execute", "--check", "--from-ipynb", "--format", "--help", "-h"}
    if unknown or len(modes) > 1:
        print(USAGE, file=sys.stderr)
        return 2
    mode = modes[0] if modes else None
    if mode in ("--help", "-h"):
        print(__doc__)
        return 0
    if mode == "--check":
        problems = check(names or None)
        for line in problems:
            print(line)
        if problems:
            print(f"{len(problems)} notebook(s) disagree with their source", file=sys.stderr)
            return 1
        print(f"{len(names or all_names())} notebooks agree with their sources")
        return 0
    if mode == "--from-ipynb":
        if not names:
            print("--from-ipynb needs notebook names (NN_name)", file=sys.stderr)
            return 2
        for name in names:
            print(from_ipynb(name))
        return 0
    names = names or all_names()
    if mode == "--format":
        for name in names:
            print(f"{source_path(name)}: {'reformatted' if format_source(name) else 'unchanged'}")
        return 0
    for name in names:
        out, kept = build(name)
        if mode == "--execute":
            execute(out)
        elif not kept:
            print(f"{out}: written without outputs; store them with build.py --execute {name}")
            continue
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
