"""``python -m skel run-all``: argument checks, notebook order, typed papermill parameters, and the
harness end to end on a tiny stand-in notebook; plus the report helpers the notebooks use."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import yaml

import skel.runall as runall
from skel.report import (accuracy_table, confusion_matrix, fraction_label, fraction_tag, markdown_table, pca_2d,
                         results_markdown)
from skel.utils import repo_root

NOTEBOOKS = repo_root() / "notebooks"
CONFIGS = sorted((NOTEBOOKS / "configs").glob("*.yaml"))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    runall.add_arguments(parser)
    return parser.parse_args(argv)


def make_notebook(path: Path, params: str, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


# ---- the notebook list ----------------------------------------------------------------------
def test_experiment_notebooks_are_listed_in_order():
    names = [p.name for p in runall.list_notebooks()]
    numbers = [int(n[:2]) for n in names]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert {"05_pretraining.ipynb", "06_finetuning.ipynb", "07_results.ipynb"} <= set(names)
    assert names.index("05_pretraining.ipynb") < names.index("06_finetuning.ipynb") < names.index("07_results.ipynb")


def test_duplicate_numbers_and_selection(tmp_path):
    for name in ("01_a", "02_b", "05_c", "07_d"):
        make_notebook(tmp_path / f"{name}.ipynb", "x: int = 1", "")
    found = runall.list_notebooks(tmp_path)
    assert [p.stem for p in found] == ["01_a", "02_b", "05_c", "07_d"]
    assert [p.stem for p in runall.select_notebooks("05-07", found)] == ["05_c", "07_d"]
    assert [p.stem for p in runall.select_notebooks("7,1", found)] == ["01_a", "07_d"]
    assert runall.select_notebooks(None, found) == found
    with pytest.raises(ValueError, match="no notebook numbered 03 "):
        runall.select_notebooks("03", found)
    with pytest.raises(ValueError, match="runs backwards"):
        runall.select_notebooks("07-05", found)
    make_notebook(tmp_path / "02_other.ipynb", "x: int = 1", "")
    with pytest.raises(ValueError, match="several notebooks numbered 02"):
        runall.list_notebooks(tmp_path)


# ---- argument validation --------------------------------------------------------------------
def test_unknown_dataset_fails_before_running(tmp_path, capsys):
    assert runall.main(parse(["--dataset", "ntu61", "--out", str(tmp_path / "r")])) == 2
    err = capsys.readouterr().err
    assert "ntu61" in err and "synthetic" in err and "ntu60-xsub" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("where", ["repo", "notebooks", "runs", "file", "foreign"])
def test_bad_out_is_refused(tmp_path, capsys, where):
    out = {"repo": repo_root(), "notebooks": repo_root() / "notebooks" / "run", "runs": repo_root() / "runs",
           "file": tmp_path / "a_file", "foreign": tmp_path / "full"}[where]
    if where == "file":
        out.write_text("x")
    if where == "foreign":
        (out / "keep.txt").parent.mkdir()
        (out / "keep.txt").write_text("not a run")
    assert runall.main(parse(["--out", str(out), "--notebooks", "07"])) == 2
    assert "--out" in capsys.readouterr().err
    if where == "foreign":
        assert (out / "keep.txt").read_text() == "not a run"


def test_check_out_accepts_new_empty_and_earlier_run_folders(tmp_path):
    runall.check_out(tmp_path / "new")
    runall.check_out(tmp_path)  # empty
    (tmp_path / "x.txt").write_text("")
    (tmp_path / runall.RUN_MARKER).write_text("{}")
    runall.check_out(tmp_path)
    runall.check_out(repo_root() / "runs" / "some-run")


def test_unknown_and_mistyped_parameters_fail_before_running(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert runall.main(parse(["--out", out, "-p", "epohcs=3"])) == 2
    assert "epohcs" in capsys.readouterr().err
    assert runall.main(parse(["--out", out, "-p", "epochs=three"])) == 2
    err = capsys.readouterr().err
    assert "epochs" in err and "int" in err
    assert runall.main(parse(["--out", out, "-p", "noequals"])) == 2
    assert not Path(out).exists()


def test_gather_parameters_precedence(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 7\nlr: 1.0e-3\nlatents: [vae]\n")
    params, user = runall.gather_parameters(parse(["--config", str(cfg), "--epochs", "9", "-p", "lr=0.5",
                                                   "--label-fractions", "1,0.1"]))
    assert params["epochs"] == 9 and params["lr"] == 0.5 and params["latents"] == ["vae"]
    assert params["label_fractions"] == [1.0, 0.1]
    assert user == {"epochs", "lr", "label_fractions"}  # latents came from the config file only
    synthetic, _ = runall.gather_parameters(parse([]))
    assert synthetic["dataset_options"] == runall.SYNTHETIC_DEFAULTS["dataset_options"]
    ntu, _ = runall.gather_parameters(parse(["--dataset", "ntu60-xsub"]))
    assert not set(runall.SYNTHETIC_DEFAULTS) & set(ntu)  # the synthetic tuning never reaches NTU
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="mapping"):
        runall.gather_parameters(parse(["--config", str(bad)]))


# ---- typed parameters -----------------------------------------------------------------------
def test_check_value_types():
    assert runall.check_value("x", 3, "float") == 3.0 and isinstance(runall.check_value("x", 3, "float"), float)
    assert runall.check_value("x", None, "int | None") is None
    assert runall.check_value("x", "[none, vq]", "list[str]") == ["none", "vq"]
    assert runall.check_value("x", "{num_per_class: 4}", "dict") == {"num_per_class": 4}
    for value, type_name in ((True, "int"), ("3", "int"), ("1e-3", "float"), ([1, "a"], "list[int]"), (1, "str"),
                             ("yes", "bool"), (None, "int"), ([1], "dict")):
        with pytest.raises(TypeError, match="parameter 'x"):
            runall.check_value("x", value, type_name)


def test_notebook_parameters_refuses_unknown_names(monkeypatch):
    ns = {"__annotations__": {"epochs": int, "lr": float | None, "latents": list[str]},
          "epochs": 3, "lr": 1, "latents": ["vae"], "epohcs": 5, "json": json}
    monkeypatch.setattr(runall, "_UNKNOWN_NAMES_CHECKED", False)
    with pytest.raises(NameError, match="'epohcs' \\(did you mean 'epochs'\\?\\)"):
        runall.notebook_parameters(dict(ns))
    monkeypatch.setattr(runall, "_UNKNOWN_NAMES_CHECKED", False)
    got = runall.notebook_parameters(dict(ns), siblings={"epohcs"})
    assert got == {"epochs": 3, "lr": 1.0, "latents": ["vae"]}
    with pytest.raises(TypeError, match="parameter 'epochs': expected int"):
        runall.notebook_parameters({**ns, "epochs": "3"})


def test_experiment_parameters_match_the_notebooks():
    import papermill

    declared = {}
    for name in runall.EXPERIMENT_NOTEBOOKS:
        (nb,) = NOTEBOOKS.glob(f"{name}_*.ipynb")
        params = papermill.inspect_notebook(str(nb))
        assert params, f"{nb.name} has no parameters cell"
        for k, p in params.items():
            assert p["inferred_type_name"] not in ("None", ""), f"{nb.name}: parameter {k} has no type annotation"
            declared.setdefault(k, p["inferred_type_name"])
    assert set(declared) == set(runall.EXPERIMENT_PARAMETERS)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_full_scale_configs_type_check_against_the_notebooks(path):
    import papermill

    values = yaml.safe_load(path.read_text())
    assert values["dataset"] == path.stem and values["preset"] == "paper"
    assert values["epochs"] == 200 and values["finetune_epochs"] == 200 and values["batch_size"] == 64
    assert values["label_fractions"] == [1.0, 0.1, 0.05] and values["latents"] == ["none", "vae", "vq"]
    assert set(values) <= runall.EXPERIMENT_PARAMETERS
    for name in runall.EXPERIMENT_NOTEBOOKS:
        (nb,) = NOTEBOOKS.glob(f"{name}_*.ipynb")
        for k, p in papermill.inspect_notebook(str(nb)).items():
            if k in values:
                runall.check_value(k, values[k], p["inferred_type_name"])


def test_plan_routes_parameters(tmp_path):
    a = make_notebook(tmp_path / "01_data.ipynb", 'seed: int = 0\nepochs: int = 1\nout: str = ""', "")
    b = make_notebook(tmp_path / "05_pre.ipynb", 'seed: int = 0\nepochs: int = 1\nlr: float = 0.0', "")
    steps = runall.plan([a, b], {"seed": 3, "epochs": 9, "lr": 1, "out": "/x"}, {"epochs", "lr"})
    assert steps[0][1] == {"seed": 3, "out": "/x"}  # derivation notebooks keep their own epochs
    assert steps[1][1] == {"seed": 3, "epochs": 9, "lr": 1.0}
    with pytest.raises(TypeError, match="05_pre.ipynb:epochs"):
        runall.plan([a, b], {"epochs": "x"}, {"epochs"})
    with pytest.raises(ValueError, match="mask_frames"):
        runall.plan([a, b], {"mask_frames": 0.5}, {"mask_frames"})


# ---- through papermill ----------------------------------------------------------------------
CHECK_CELL = ("from skel.runall import notebook_parameters\n"
              "P = notebook_parameters(globals())\n"
              "print(sorted(P.items()))")


@pytest.mark.slow
def test_papermill_misspelt_or_mistyped_parameter_fails_loudly(tmp_path):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    nb = make_notebook(tmp_path / "nb.ipynb", "epochs: int = 3  # CI scale\nlr: float = 1.0e-3", CHECK_CELL)
    with pytest.raises(PapermillExecutionError) as err:
        papermill.execute_notebook(str(nb), str(tmp_path / "o1.ipynb"), parameters={"epohcs": 5},
                                   kernel_name="python3", progress_bar=False)
    assert err.value.ename == "NameError" and "epohcs" in err.value.evalue and "epochs" in err.value.evalue
    with pytest.raises(PapermillExecutionError) as err:
        papermill.execute_notebook(str(nb), str(tmp_path / "o2.ipynb"), parameters={"epochs": "many"},
                                   kernel_name="python3", progress_bar=False)
    assert err.value.ename == "TypeError" and "epochs" in err.value.evalue


@pytest.mark.slow
def test_run_all_end_to_end_on_a_stand_in_notebook(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "notebooks"
    body = ("from pathlib import Path\nfrom skel.utils import atomic_write_json\n" + CHECK_CELL + "\n"
            "atomic_write_json(Path(out) / 'finetune' / 'summary.json', "
            "[{'init': 'vae', 'label_fraction': 1.0, 'test_acc': epochs / 10}, "
            "{'init': 'scratch', 'label_fraction': 1.0, 'test_acc': 0.25}])")
    make_notebook(folder / "05_stand_in.ipynb", 'dataset: str = "synthetic"\nout: str = ""\nepochs: int = 1', body)
    monkeypatch.setattr(runall, "notebook_dir", lambda: folder)
    out = tmp_path / "run"
    assert runall.main(parse(["--out", str(out), "--epochs", "7", "--quiet"])) == 0
    printed = capsys.readouterr().out
    assert (out / "notebooks" / "05_stand_in.ipynb").is_file()
    assert json.loads((out / runall.RUN_MARKER).read_text())["parameters"]["epochs"] == 7
    results = json.loads((out / "results.json").read_text())
    assert results["finetune"][0]["test_acc"] == 0.7
    assert results["run"]["notebook_seconds"]["05_stand_in.ipynb"] > 0
    table_line = "| SkeletonMVAE | 70.0 |"
    assert table_line in (out / "results.md").read_text() and table_line in printed
    # a failing notebook: exit status 1 and the executed notebook named
    make_notebook(folder / "06_fails.ipynb", "x: int = 1", "raise RuntimeError('boom')")
    assert runall.main(parse(["--out", str(out), "--quiet"])) == 1
    assert "06_fails.ipynb failed" in capsys.readouterr().err


# ---- report helpers -------------------------------------------------------------------------
def test_markdown_table_and_labels():
    text = markdown_table(["model", "acc"], [["a", 12.345], ["b", None]])
    assert text.splitlines() == ["| model | acc |", "| :--- | ---: |", "| a | 12.3 |", "| b | - |"]
    with pytest.raises(ValueError, match="row 0 has 1 cells"):
        markdown_table(["a", "b"], [["x"]])
    assert fraction_label(0.05) == "5%" and fraction_tag(1.0) == "100pct" and fraction_tag(0.125) == "12.5pct"


def test_accuracy_table_layout():
    rows = [{"init": i, "label_fraction": f, "test_acc": a}
            for i, f, a in [("scratch", 1.0, 0.5), ("vae", 1.0, 0.8), ("vae", 0.1, 0.6), ("none", 0.1, 0.55)]]
    text = accuracy_table(rows, [{"init": "vae", "linear_acc": 0.7, "knn_acc": 0.65}])
    lines = text.splitlines()
    assert lines[0] == "| model | fine-tune 100% | fine-tune 10% | linear probe | kNN |"
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| SkeletonMAE", "| SkeletonMVAE", "| scratch"]
    assert lines[3] == "| SkeletonMVAE | 80.0 | 60.0 | 70.0 | 65.0 |"
    assert lines[4] == "| scratch | 50.0 | - | - | - |"
    assert "no fine-tuning results" in results_markdown({"finetune": [], "cost": []})


def test_confusion_matrix_counts():
    pred = torch.tensor([0, 1, 1, 2, 2, 2])
    true = torch.tensor([0, 1, 2, 2, 2, 0])
    cm = confusion_matrix(pred, true, 3)
    expected = np.zeros((3, 3), dtype=np.int64)
    for p, t in zip(pred.tolist(), true.tolist()):
        expected[t, p] += 1
    assert cm.tolist() == expected.tolist()


def test_pca_2d_matches_numpy_and_is_sign_stable():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6)) @ np.diag([5.0, 3.0, 1.0, 0.5, 0.2, 0.1]) + 2.0
    got = pca_2d(torch.from_numpy(x)).double().numpy()
    centred = x - x.mean(0)
    evals, evecs = np.linalg.eigh(centred.T @ centred)  # ascending
    ref = centred @ evecs[:, ::-1][:, :2]
    for k in range(2):  # equal up to each axis' sign
        assert np.allclose(np.abs(got[:, k]), np.abs(ref[:, k]), atol=1e-4)
    assert np.allclose(got.var(0), ref.var(0), rtol=1e-4)
    flipped = pca_2d(torch.from_numpy(-x)).double().numpy()
    assert np.allclose(flipped, -got, atol=1e-4)  # loadings keep their signs, projections flip
    assert np.allclose(pca_2d(torch.from_numpy(x[:, [1, 0, 2, 3, 4, 5]])).numpy(), got, atol=1e-4)
