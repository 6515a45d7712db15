"""``python -m skel run-all``: execute the notebook series into one run folder with papermill.

The notebooks are the experiment: ``01..04`` derive the pieces, ``05`` pre-trains the three
models, ``06`` fine-tunes them (and a scratch encoder) on all / 10% / 5% of the labels, ``07``
compares them (linear probe, kNN, feature map, cost). Each executed notebook is saved into
``OUT/notebooks/``; they chain through files in ``OUT`` (05 writes checkpoints, 06 reads them).
At the end the results table (:func:`skel.report.collect_results`) is printed and written to
``OUT/results.md`` and ``OUT/results.json``.

Parameters reach a notebook only if its ``parameters`` cell declares them; every value is
checked against the declared type before anything runs, and inside each notebook
:func:`notebook_parameters` refuses names it does not declare (papermill itself only warns).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import re
import sys
import time
import types
from pathlib import Path
from typing import Any, Iterable

from skel.utils import atomic_write_json, atomic_write_text, repo_root

# Parameters every notebook receives when it declares them; the rest go to the experiment
# notebooks only, so that the derivation notebooks (01-04) keep their own small settings.
SHARED_PARAMETERS = ("dataset", "data_dir", "out", "seed", "device")
EXPERIMENT_NOTEBOOKS = ("05", "06", "07")
RUN_MARKER = "run.json"  # written first into every run-all folder
# Every parameter the experiment notebooks 05-07 declare (a test checks it against them). One
# config file serves all three (`papermill -f notebooks/configs/ntu60-xsub.yaml`): a notebook
# ignores its siblings' names and refuses any other.
EXPERIMENT_PARAMETERS = frozenset({
    "dataset", "data_dir", "dataset_options", "out", "preset", "latents", "seed", "device", "threads",
    "num_workers", "batch_size",
    "epochs", "lr", "window", "mask_frames", "mask_joints", "max_samples", "model_options", "train",  # 05
    "shipped",  # 05: a finished run's metrics drawn beside this one
    "lr_steps", "finetune_lr_steps",
    "finetune_epochs", "finetune_lr", "label_fractions", "checkpoint", "scratch", "report_epoch",  # 06
    "probe_epochs", "knn_k", "map_samples", "figures_dir",  # 07
})

# run-all's own defaults on the synthetic set: larger than the notebooks' CI-scale defaults and
# chosen (docs/deviations.md, "The main job's defaults") to finish in under 15 minutes on an idle
# 2-core CPU: a tiny encoder, 24-frame windows, 30 pre-training epochs, the semi-supervised
# fractions (where pre-training matters most), two threads, `skip_empty_persons` (a third of the
# cost saved: 9 of the 12 classes have one actor) and the motion target (`target: motion`, MAMP's
# choice): with the paper's coordinate target, pre-training at this scale moved 10%-label accuracy
# by about 2 points; with motion, by about 9. Any of them: -p NAME=VALUE.
RUNALL_DEFAULTS: dict[str, Any] = {"dataset": "synthetic", "seed": 0}
SYNTHETIC_DEFAULTS: dict[str, Any] = {
    "dataset_options": {"num_per_class": 40},
    "preset": "tiny",
    "window": 24,
    "batch_size": 16,
    "threads": 2,
    "epochs": 30,
    "model_options": {"skip_empty_persons": True, "target": "motion"},
    "finetune_epochs": 50,
    "finetune_lr": 1.0e-3,
    "label_fractions": [0.1, 0.05],
    "report_epoch": "last",
    "map_samples": 480,
}


def notebook_dir() -> Path:
    return repo_root() / "notebooks"


def list_notebooks(folder: Path | None = None) -> list[Path]:
    """The numbered notebooks ``NN_name.ipynb`` of ``folder`` in reading order.

    Raises ``ValueError`` when two notebooks share a number (the order would be ambiguous).
    """
    folder = notebook_dir() if folder is None else Path(folder)
    found = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if p.is_file())
    numbers = [p.name[:2] for p in found]
    dupes = sorted({n for n in numbers if numbers.count(n) > 1})
    if dupes:
        raise ValueError(f"{folder}: several notebooks numbered {', '.join(dupes)}; numbers give the order and must be unique")
    return found


def select_notebooks(spec: str | None, notebooks: list[Path]) -> list[Path]:
    """Pick notebooks by number: ``None`` = all, ``"05-07"``, ``"5,6,7"``, ``"07"``."""
    if not spec:
        return list(notebooks)
    by_number = {int(p.name[:2]): p for p in notebooks}
    wanted: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d{1,2})(?:-(\d{1,2}))?", part)
        if not m:
            raise ValueError(f"--notebooks: {part!r} is not a number or a range like 05-07")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if hi < lo:
            raise ValueError(f"--notebooks: range {part!r} runs backwards")
        # a range takes the notebooks that exist in it; a single number must exist
        in_range = [n for n in range(lo, hi + 1) if n in by_number] if m.group(2) else [lo]
        if not in_range or any(n not in by_number for n in in_range):
            have = ", ".join(f"{n:02d}" for n in sorted(by_number))
            raise ValueError(f"--notebooks: no notebook numbered {part} (have {have})")
        wanted.extend(in_range)
    return [by_number[n] for n in sorted(set(wanted))]


# ---------------------------------------------------------------------------------------------
# Typed notebook parameters


def _type_name(annotation: Any) -> str:
    """``int`` -> ``"int"``, ``list[str]`` -> ``"list[str]"``, ``str | None`` -> ``"str | None"``."""
    if isinstance(annotation, str):
        return annotation.strip()
    if type(annotation) is type:
        return annotation.__name__
    return repr(annotation).replace("typing.", "")


def check_value(name: str, value: Any, type_name: str) -> Any:
    """Return ``value`` checked (and widened: int -> float) against a declared type name.

    Understood: ``int``, ``float``, ``str``, ``bool``, ``list[T]``, ``dict`` and ``T | None``. A
    string given for a list or dict type is read as YAML (``-p latents "[none, vae]"`` reaches a
    notebook as a string). An empty or unknown type name accepts anything. Raises ``TypeError`` naming the
    parameter, the expected type and what came.
    """
    type_name = _type_name(type_name)
    if type_name in ("", "None", "Any"):
        return value
    options = [t.strip() for t in type_name.split("|")]
    if "None" in options:
        if value is None:
            return None
        options = [t for t in options if t != "None"]
    errors = []
    for option in options:
        try:
            return _check_one(name, value, option)
        except TypeError as err:
            errors.append(str(err))
    if len(errors) == 1:
        raise TypeError(errors[0])
    raise TypeError(f"parameter {name!r}: expected {type_name}, got {type(value).__name__} {value!r}")


def _check_one(name: str, value: Any, t: str) -> Any:
    bad = TypeError(f"parameter {name!r}: expected {t}, got {type(value).__name__} {value!r}")
    if t == "bool":
        if isinstance(value, bool):
            return value
        raise bad
    if t == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if t == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad
    if t == "str":
        if isinstance(value, str):
            return value
        raise bad
    m = re.fullmatch(r"(list|dict)(?:\[(.+)\])?", t)
    if m:
        container = list if m.group(1) == "list" else dict
        if isinstance(value, str):
            import yaml

            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                raise bad from None
        if container is dict:
            if not isinstance(value, dict):
                raise bad
            return dict(value)
        if not isinstance(value, (list, tuple)):
            raise bad
        return [check_value(f"{name}[{i}]", v, m.group(2) or "") for i, v in enumerate(value)]
    return value  # a type this checker does not know: the notebook's own code will judge


_UNKNOWN_NAMES_CHECKED = False


def notebook_parameters(namespace: dict[str, Any], siblings: Iterable[str] = ()) -> dict[str, Any]:
    """Check a notebook's parameters; call it in the cell right after the ``parameters`` cell.

    ``namespace`` is the notebook's ``globals()``. The ``parameters`` cell declares each
    parameter with a type annotation (``epochs: int = 3``); papermill then injects plain
    assignments. Returns ``{name: value}`` for the declared names, values type-checked
    (ints widened to float where float is declared, list strings parsed). Raises ``NameError``
    for a name that was injected but is neither declared nor in ``siblings`` (names that sibling
    notebooks declare, accepted and ignored so one config file serves them all; papermill itself
    only warns about unknown names), and
    ``TypeError`` for a value of the wrong type. The unknown-name check runs on the first call
    in a kernel (papermill and nbval start a fresh one), so re-running the cell in an
    interactive session that already holds other variables does not complain.
    """
    global _UNKNOWN_NAMES_CHECKED
    siblings = set(siblings)
    declared = dict(namespace.get("__annotations__", {}))
    if not declared:
        raise ValueError("no annotated parameters found: the parameters cell declares them as `name: type = default`")
    if not _UNKNOWN_NAMES_CHECKED:
        _UNKNOWN_NAMES_CHECKED = True
        hidden: set[str] = set()
        get_ipython = namespace.get("get_ipython")
        if callable(get_ipython) and get_ipython() is not None:
            hidden = set(get_ipython().user_ns_hidden)
        plain = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)
        unknown = sorted(
            k for k, v in namespace.items()
            if not k.startswith("_") and k not in hidden and k not in declared and k not in siblings
            and not isinstance(v, plain)
        )
        if unknown:
            import difflib

            hints = []
            for k in unknown:
                close = difflib.get_close_matches(k, list(declared), n=1)
                hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise NameError(f"unknown notebook parameter {', '.join(hints)}; this notebook takes: {', '.join(declared)}")
    return {k: check_value(k, namespace[k], _type_name(t)) for k, t in declared.items()}


def experiment_parameters(namespace: dict[str, Any]) -> dict[str, Any]:
    """:func:`notebook_parameters` for notebooks 05-07, whose siblings' names are accepted.

    Call it first thing after the ``parameters`` cell (before other imports, which would look
    like injected names): ``P = experiment_parameters(globals())``.
    """
    return notebook_parameters(namespace, siblings=EXPERIMENT_PARAMETERS)


def run_folder(out: str | None) -> Path:
    """A notebook's run folder: ``""``/``None`` -> ``runs/notebooks`` under the repo root; a
    relative path is taken from the repo root too (never from the kernel's current folder, which
    differs between papermill, nbval and Jupyter)."""
    root = repo_root()
    if not out:
        return root / "runs" / "notebooks"
    path = Path(out).expanduser()
    return (path if path.is_absolute() else root / path).resolve()


def require(path: Path, made_by: str) -> Path:
    """``path`` if it exists, else ``FileNotFoundError`` naming the file and the notebook that makes it."""
    if not Path(path).exists():
        raise FileNotFoundError(f"missing {path}: run {made_by} first with the same `out`")
    return Path(path)


# ---------------------------------------------------------------------------------------------
# The command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", help="dataset name (see `python -m skel inspect`); default synthetic")
    parser.add_argument("--data-dir", help="where the dataset lives (not needed for synthetic)")
    parser.add_argument("--out", help="run folder (default runs/<dataset>-<time> under the repo root)")
    parser.add_argument("--preset", help="encoder/decoder size: tiny, small or paper")
    parser.add_argument("--epochs", type=int, help="pre-training epochs (synthetic default 30)")
    parser.add_argument("--finetune-epochs", type=int, help="fine-tuning epochs (synthetic default 50)")
    parser.add_argument("--batch-size", type=int, help="batch size (pre-training and fine-tuning)")
    parser.add_argument("--lr", type=float, help="pre-training learning rate (default: the paper's per latent)")
    parser.add_argument("--seed", type=int, help="one seed for the whole run (default 0)")
    parser.add_argument("--device", help="auto, cpu or cuda (default auto: cuda when available)")
    parser.add_argument("--latents", help="comma list of latents to pre-train: none,vae,vq")
    parser.add_argument("--label-fractions", help="comma list of label fractions to fine-tune on (synthetic default 0.1,0.05; paper 1.0,0.1,0.05)")
    parser.add_argument("--notebooks", help="which notebooks, by number: 05-07 or 1,5,6 (default all)")
    parser.add_argument("--config", help="YAML file of notebook parameters (as for `papermill -f`), e.g. notebooks/configs/ntu60-xsub.yaml")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="any notebook parameter, VALUE read as YAML (repeatable): -p mask_frames=0.5")
    parser.add_argument("--readme-figures", action="store_true",
                        help="also write the key figures into the repo's figures/ (only for the README run)")
    parser.add_argument("--quiet", action="store_true", help="do not stream cell output (papermill --log-output)")


def _parse_list(text: str, cast, option: str) -> list:
    try:
        return [cast(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{option}: expected a comma list, got {text!r}") from None


def gather_parameters(args: argparse.Namespace) -> tuple[dict[str, Any], set[str]]:
    """Merge run-all defaults < ``--config`` < named options < ``-p``.

    Returns ``(params, strict)``: ``strict`` are the names the user set that some selected
    notebook must declare (a config file's experiment keys are exempt: the file serves 05-07).
    """
    import yaml

    params = dict(RUNALL_DEFAULTS)
    user: dict[str, Any] = {}
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise ValueError(f"--config: no such file {path}")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"--config {path}: not valid YAML: {err}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"--config {path}: expected a mapping of parameter: value, got {type(loaded).__name__}")
        user.update(loaded)
    # a config file serves all experiment notebooks: its keys may belong to notebooks not selected
    tolerated = {k for k in user if k in EXPERIMENT_PARAMETERS}
    named = {
        "dataset": args.dataset, "data_dir": args.data_dir, "preset": args.preset, "epochs": args.epochs,
        "finetune_epochs": args.finetune_epochs, "batch_size": args.batch_size, "lr": args.lr,
        "seed": args.seed, "device": args.device,
    }
    explicit = {k for k, v in named.items() if v is not None}
    user.update({k: v for k, v in named.items() if v is not None})
    if args.latents:
        user["latents"] = _parse_list(args.latents, str, "--latents")
        explicit.add("latents")
    if args.label_fractions:
        user["label_fractions"] = _parse_list(args.label_fractions, float, "--label-fractions")
        explicit.add("label_fractions")
    for item in args.param:
        name, sep, raw = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name.isidentifier():
            raise ValueError(f"-p {item!r}: expected NAME=VALUE")
        user[name] = yaml.safe_load(raw) if raw.strip() else ""
        explicit.add(name)
    if args.readme_figures:
        user["figures_dir"] = str(repo_root() / "figures")
        explicit.add("figures_dir")
    if user.get("dataset", params["dataset"]) == "synthetic":
        params.update(SYNTHETIC_DEFAULTS)
    params.update(user)
    strict = {k for k in user if k not in tolerated or k in explicit}
    return params, strict


def check_dataset(name: str) -> None:
    from skel.data import DATASETS

    if name not in DATASETS:
        raise ValueError(f"--dataset: unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def check_out(out: Path) -> None:
    """Refuse a run folder that would dirty the checkout, is a file, or holds something else.

    An existing folder is accepted when empty or when it is an earlier run-all folder (it holds
    ``run.json``): the notebooks then redo their own parts (each clears the files it writes).
    """
    root = repo_root().resolve()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    if out == root or (root in out.parents and (root / "runs") not in [out, *out.parents]):
        raise ValueError(f"--out {out}: inside the checkout but not under runs/ (git-ignored); "
                         f"use runs/NAME or a folder outside the repo")
    if out == root / "runs":
        raise ValueError(f"--out {out}: give the run its own folder, e.g. runs/NAME")
    if out.is_dir() and any(out.iterdir()) and not (out / RUN_MARKER).is_file():
        raise ValueError(f"--out {out}: exists, is not empty and is not a run-all folder (no {RUN_MARKER}); "
                         f"choose a new folder")


def plan(notebooks: list[Path], params: dict[str, Any], user_set: set[str]) -> list[tuple[Path, dict[str, Any]]]:
    """For each notebook the parameters it will receive, type-checked against its declarations.

    A name the user set that none of the selected notebooks declares is an error.
    """
    import papermill

    steps = []
    declared_any: set[str] = set()
    for nb in notebooks:
        declared = papermill.inspect_notebook(str(nb))
        declared_any |= set(declared)
        experiment = nb.name[:2] in EXPERIMENT_NOTEBOOKS
        given = {}
        for k, v in params.items():
            if k in declared and (experiment or k in SHARED_PARAMETERS):
                given[k] = check_value(f"{nb.name}:{k}", v, declared[k]["inferred_type_name"])
        steps.append((nb, given))
    unknown = sorted(user_set - declared_any)
    if unknown:
        raise ValueError(
            f"parameter(s) {', '.join(unknown)} not declared by any selected notebook; "
            f"they take: {', '.join(sorted(declared_any))}"
        )
    return steps


def main(args: argparse.Namespace) -> int:
    try:
        params, user_set = gather_parameters(args)
        check_dataset(params["dataset"])
        if args.out:
            out = Path(args.out).expanduser().resolve()
        else:
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            out = repo_root() / "runs" / f"{params['dataset']}-{stamp}"
        check_out(out)
        params["out"] = str(out)
        notebooks = select_notebooks(args.notebooks, list_notebooks())
        if not notebooks:
            raise ValueError(f"no notebooks found in {notebook_dir()}")
        steps = plan(notebooks, params, user_set)
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    import logging

    import papermill
    from papermill.exceptions import PapermillExecutionError

    if not args.quiet:  # papermill streams cell output through its logger (as `papermill --log-output`)
        pm_log = logging.getLogger("papermill")
        if not any(getattr(h, "skel_runall", False) for h in pm_log.handlers):
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(logging.Formatter("%(message)s"))
            handler.skel_runall = True
            pm_log.addHandler(handler)
        pm_log.setLevel(logging.INFO)

    from skel.report import collect_results, results_markdown

    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / RUN_MARKER, {
        "started": _dt.datetime.now().isoformat(timespec="seconds"),
        "notebooks": [nb.name for nb, _ in steps],
        "parameters": params,
    })
    print(f"run-all: {len(steps)} notebooks into {out}", flush=True)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    for i, (nb, given) in enumerate(steps, 1):
        shown = ", ".join(f"{k}={v!r}" for k, v in given.items() if k != "out")
        print(f"[{i}/{len(steps)}] {nb.name}  {shown}", flush=True)
        t0 = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(nb), str(out / "notebooks" / nb.name), parameters=given, kernel_name="python3",
                progress_bar=False, log_output=not args.quiet, cwd=str(nb.parent),
            )
        except PapermillExecutionError as err:
            print(f"error: {nb.name} failed in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
                  f"  the executed notebook is {out / 'notebooks' / nb.name}", file=sys.stderr)
            return 1
        timings[nb.name] = round(time.perf_counter() - t0, 1)
        print(f"[{i}/{len(steps)}] {nb.name} done in {timings[nb.name]:.0f} s", flush=True)
    total = round(time.perf_counter() - start, 1)

    results = collect_results(out)
    results["run"] = {
        "parameters": params,
        "notebook_seconds": timings,
        "total_seconds": total,
    }
    text = results_markdown(results)
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "results.md", text)
    print()
    print(text)
    print(f"run-all: done in {total / 60:.1f} min; {out / 'results.md'}")
    return 0
