"""Every notebook holds the cells of its jupytext source (``build.py --check``), and the
source <-> notebook conversion of ``notebooks/_build/build.py`` round-trips.

Fails when a source in ``notebooks/_build/`` was edited without rebuilding its notebook
(``python notebooks/_build/build.py --execute NAME``), or a notebook without writing its cells
back (``python notebooks/_build/build.py --from-ipynb NAME``).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD_PY = ROOT / "notebooks" / "_build" / "build.py"


def _load_build():
    spec = importlib.util.spec_from_file_location("skel_notebook_build", BUILD_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build = _load_build()
NAMES = build.all_names()


def test_there_are_sources():
    assert len(NAMES) >= 8, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_notebook_cells_match_their_source(name):
    problems = build.check([name])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", NAMES)
def test_source_is_in_jupytexts_canonical_layout(name, tmp_path, monkeypatch):
    # writing the notebook back must give the committed source byte for byte (blank lines between
    # cells included: jupytext puts two after a cell that ends in a def, one otherwise), so a
    # student's round trip through JupyterLab shows only what they changed
    here = tmp_path / "notebooks" / "_build"
    here.mkdir(parents=True)
    shutil.copy(build.notebook_path(name), tmp_path / "notebooks" / f"{name}.ipynb")
    monkeypatch.setattr(build, "HERE", here)
    monkeypatch.setattr(build, "NOTEBOOKS", tmp_path / "notebooks")
    (here / f"{name}.py").write_text("")
    build.from_ipynb(name)
    assert (here / f"{name}.py").read_text() == (ROOT / "notebooks" / "_build" / f"{name}.py").read_text(), \
        f"rewrite the source in canonical layout: python notebooks/_build/build.py --from-ipynb {name}"


def test_every_notebook_has_a_source():
    orphans = [p for p in build.check() if "no source" in p]
    assert not orphans, "\n".join(orphans)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A copy of one source and its notebook, with build.py pointed at it."""
    here = tmp_path / "notebooks" / "_build"
    here.mkdir(parents=True)
    name = "02_masking"
    shutil.copy(build.source_path(name), here / f"{name}.py")
    shutil.copy(build.notebook_path(name), tmp_path / "notebooks" / f"{name}.ipynb")
    monkeypatch.setattr(build, "HERE", here)
    monkeypatch.setattr(build, "NOTEBOOKS", tmp_path / "notebooks")
    return name


def test_check_reports_a_one_character_change(sandbox):
    src = build.source_path(sandbox)
    assert build.check() == []
    text = src.read_text()
    i = text.index("import torch")
    src.write_text(text[:i] + "import  torch" + text[i + len("import torch"):])
    (problem,) = build.check()
    assert problem.startswith(f"notebooks/{sandbox}.ipynb: cell ") and "differs in source" in problem
    assert build.main(["--check"]) == 1


def test_a_changed_tag_and_a_missing_notebook_are_reported(sandbox):
    src = build.source_path(sandbox)
    src.write_text(src.read_text().replace('# %% tags=["parameters"]', "# %%", 1))
    assert "differs in tags" in build.check()[0]
    build.notebook_path(sandbox).unlink()
    assert "missing" in build.check()[0]


def test_markdown_edit_keeps_outputs_code_edit_drops_them(sandbox):
    nb_path, src = build.notebook_path(sandbox), build.source_path(sandbox)
    before = nbformat.read(nb_path, as_version=4)
    assert any(c.get("outputs") for c in before.cells)
    build.build(sandbox)  # nothing changed: byte-identical
    assert nbformat.read(nb_path, as_version=4) == before
    src.write_text(src.read_text().replace("# %% [markdown]\n# #", "# %% [markdown]\n# # (edited)", 1))
    _, kept = build.build(sandbox)
    after = nbformat.read(nb_path, as_version=4)
    assert kept and after.cells[0].source.startswith("# (edited)")
    assert [c.get("outputs") for c in after.cells] == [c.get("outputs") for c in before.cells]
    src.write_text(src.read_text().replace("import torch", "import torch  # edited", 1))
    _, kept = build.build(sandbox)
    assert not kept
    assert not any(c.get("outputs") for c in nbformat.read(nb_path, as_version=4).cells)
    assert build.check() == []


def test_from_ipynb_writes_back_an_edited_notebook(sandbox):
    nb_path, src = build.notebook_path(sandbox), build.source_path(sandbox)
    original = src.read_text()
    build.from_ipynb(sandbox)  # the committed source is in jupytext's canonical layout
    assert src.read_text() == original
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[1].source += "\n# a line added in JupyterLab"
    nb.cells.insert(2, nbformat.v4.new_markdown_cell("A new *markdown* cell."))
    nb.metadata["jupytext"] = {"notebook_metadata_filter": "-all", "cell_metadata_filter": "tags,-all"}
    nbformat.write(nb, nb_path)
    assert len(build.check()) == 1
    build.from_ipynb(sandbox)
    assert build.check() == []
    assert "# a line added in JupyterLab\n\n# %% [markdown]\n# A new *markdown* cell.\n" in src.read_text()
    assert not src.read_text().startswith("# ---")  # no jupytext header
