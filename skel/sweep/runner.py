"""Running a sweep: ``python -m skel sweep CONFIG`` and :func:`run_sweep` (notebook ``08_experiments``).

Points run one after the other in this process. Layout of the sweep folder ``OUT``::

    OUT/sweep.json                    the sweep as run (base, grids, point names in order)
    OUT/points/NAME/pretrain/         run_pretrain's folder (last.pt, best.pt, metrics.json)
    OUT/points/NAME/finetune-100pct/  run_finetune's folder, one per label fraction (and finetune_* value)
    OUT/points/NAME/result.json       the point's state: each stage's status, numbers or error + traceback
    OUT/points/NAME/log.txt           everything the point's runs printed
    OUT/results.json, results.csv     one row per fine-tune of every point (:data:`COLUMNS`)

Every file is written atomically, after each stage. Re-running the same command skips finished
stages, resumes interrupted ones from their ``last.pt``, and retries failed ones; a failure
(any exception) is recorded with its error and traceback and the sweep goes on with the next
point. A folder made with other settings is refused (names are not trusted: the point's
resolved settings are compared) before anything runs.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fnmatch
import io
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Iterator

from skel.sweep.grid import Point, Sweep, SweepError, expand, load_sweep, mask_collisions, point_summary
from skel.utils import atomic_write_json, atomic_write_text, repo_root

# results.csv columns (results.json rows also carry `traceback` and `grids`)
COLUMNS = ("point", "finetune", "status", "latent", "dataset", "seed", "preset", "window", "label_fraction",
           "mask_frames", "mask_joints", "latent_dim", "codebook_size", "decoder_dim", "decoder_depth", "epochs",
           "finetune_epochs", "loss_reduction", "vae_mode", "skip_empty_persons", "rotate", "top1", "top1_last", "top5", "top5_last", "val_acc", "best_epoch",
           "pretrain_time_s", "pretrain_best_val_loss", "pretrain_epoch", "latent_kl", "latent_perplexity",
           "latent_codes", "params", "gflops", "finetune_time_s", "error", "pretrain_dir", "finetune_dir")
# how much the latent is used, on the validation set, at the pre-training epoch a fine-tune starts
# from (its `checkpoint`, best or last): SkeletonMVAE's KL (nats per token) and SkeletonMVQVAE's
# codebook perplexity and codes used per batch. Read from the pre-training's metrics.json, so older
# sweep folders get them too. A collapsed latent (KL ~ 0, perplexity ~ 1) makes its ablation moot.
LATENT_STATS = {"latent_kl": "val_kl", "latent_perplexity": "val_perplexity", "latent_codes": "val_used_codes"}


def default_out(sweep: Sweep) -> Path:
    """``runs/sweeps/NAME`` under the repo root (git-ignored)."""
    return repo_root() / "runs" / "sweeps" / sweep.name


def select(points: list[Point], only: str | list[str] | None) -> list[Point]:
    """Points whose name matches one of ``only``'s shell patterns (comma list or list); all when None."""
    if not only:
        return list(points)
    patterns = [p.strip() for p in (only.split(",") if isinstance(only, str) else only) if p.strip()]
    chosen = [p for p in points if any(fnmatch.fnmatchcase(p.name, pat) for pat in patterns)]
    if not chosen:
        raise SweepError(f"--only {','.join(patterns)}: matches none of {', '.join(p.name for p in points)}")
    return chosen


def _state_path(out: Path, name: str) -> Path:
    return out / "points" / name / "result.json"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise SweepError(f"{path}: not valid JSON ({err}); delete it to redo that point") from None


def _read_state(out: Path, name: str) -> dict[str, Any] | None:
    """A point's ``result.json``, or None when nothing was recorded for it yet."""
    path = _state_path(out, name)
    return _read_json(path) if path.is_file() else None


def adopt_folders(out: Path, points: list[Point]) -> None:
    """Rename points to the existing folder that computed the same pre-training under another name
    (Table 3's ``vae-Mt0.4-Mj0.4-seed0`` is Table 1's ``ntu60-xsub-vae-seed0`` in a shared ``--out``)."""
    if not (out / "points").is_dir():
        return
    taken = {p.name for p in points}
    existing: dict[str, str] = {}
    for path in sorted((out / "points").glob("*/result.json")):
        identity = _read_json(path).get("identity")
        existing.setdefault(json.dumps(identity, sort_keys=True, default=str), path.parent.name)
    for p in points:
        folder = existing.get(p.key)
        if folder and folder != p.name and not (out / "points" / p.name).exists() and folder not in taken:
            taken.discard(p.name)
            taken.add(folder)
            p.name = folder


def check_folders(out: Path, points: list[Point]) -> None:
    """Refuse point folders made with other settings (before anything runs)."""
    for p in points:
        path = _state_path(out, p.name)
        if not path.is_file():
            continue
        state = _read_json(path)
        if state.get("identity") != p.identity:
            old, new = state.get("identity") or {}, p.identity
            diff = _first_difference(old, new)
            raise SweepError(f"{path.parent} was made with other settings ({diff}); use another --out, "
                             f"or delete that folder to redo it")
        tags = {f.tag: f.identity for f in p.finetunes}
        for tag, fs in state.get("finetunes", {}).items():
            if tag in tags and fs.get("identity") != tags[tag]:
                diff = _first_difference(fs.get("identity") or {}, tags[tag])
                raise SweepError(f"{path.parent / tag} was made with other settings ({diff}); use another --out, "
                                 f"or delete that folder to redo it")


def _first_difference(old: Any, new: Any, prefix: str = "") -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new), key=str):
            if old.get(k) != new.get(k):
                return _first_difference(old.get(k), new.get(k), f"{prefix}{k}.")
    return f"{prefix.rstrip('.') or 'settings'}: {old!r} then, {new!r} now"


# ---- running ------------------------------------------------------------------------------------
class _Tee(io.TextIOBase):
    """Writes to a log file and, when ``echo`` is given, to it as well."""

    def __init__(self, log, echo):
        self.log, self.echo = log, echo

    def write(self, s: str) -> int:
        self.log.write(s)
        if self.echo is not None:
            self.echo.write(s)
        return len(s)

    def flush(self) -> None:
        self.log.flush()
        if self.echo is not None:
            self.echo.flush()


@contextlib.contextmanager
def _logged(path: Path, echo: bool) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as log, contextlib.redirect_stdout(_Tee(log, sys.stdout if echo else None)):
        yield


def _say(log: Path, text: str, echo: bool) -> None:
    """A stage message: always into the point's ``log.txt``, on stdout too when ``echo``."""
    with _logged(log, echo):
        print(text, flush=True)


def _failure(err: BaseException) -> dict[str, Any]:
    return {"status": "failed", "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}


def _cost(pretrain_dir: Path) -> dict[str, Any]:
    """Parameters and forward GFLOPs (one sample, masking included) of the pre-training model, on the CPU."""
    import torch

    from skel.models.cost import count_flops, count_parameters
    from skel.models.pretrain import build_pretrain_model
    from skel.train.checkpoint import load_checkpoint

    config = load_checkpoint(pretrain_dir / "last.pt", kind="pretrain")["model_config"]
    model = build_pretrain_model(**config).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, config["in_channels"], config["num_frames"], config["num_joints"], config["num_persons"],
                    generator=g)
    return {"params": count_parameters(model), "gflops": count_flops(model, x, generator=g) / 1e9}


def run_point(point: Point, out: Path, verbose: bool = True) -> dict[str, Any]:
    """Run (or finish) one point; return its state (also in ``OUT/points/NAME/result.json``).

    Everything it prints (its stages and the runs' own output) goes to ``OUT/points/NAME/log.txt``,
    and to stdout as well when ``verbose``."""
    from skel.train.finetune import run_finetune
    from skel.train.pretrain import run_pretrain

    folder = out / "points" / point.name
    path = folder / "result.json"
    state = _read_json(path) if path.is_file() else {}
    state.update({"name": point.name, "latent": point.latent, "identity": point.identity,
                  "grids": _union(state.get("grids"), point.grids),
                  "axes": point.axes})
    state.setdefault("finetunes", {})
    atomic_write_json(path, state)
    log = folder / "log.txt"

    pre = state.get("pretrain") or {}
    if point.pretrain is not None and pre.get("status") != "done":
        pre_dir = folder / "pretrain"
        resume = (pre_dir / "last.pt").is_file()
        _say(log, f"  pre-training {point.name}" + (" (resuming)" if resume else ""), verbose)
        try:
            with _logged(log, verbose):
                res = run_pretrain({**point.pretrain, "out": str(pre_dir), "resume": resume})
            pre = {"status": "done", "dir": str(pre_dir), "best_epoch": res["best_epoch"],
                   "best_val_loss": res["best_val_loss"], "epochs": len(res["epochs"]),
                   "time_s": sum(r.get("epoch_time_s", 0.0) for r in res["epochs"]), "resumed": resume}
        except Exception as err:  # recorded; the sweep goes on
            pre = _failure(err)
            _say(log, f"  pre-training {point.name} FAILED: {pre['error']}", verbose)
        if pre["status"] == "done":
            try:
                pre.update(_cost(pre_dir))
            except Exception as err:  # the accuracy stands without the cost figures
                pre["cost_error"] = f"{type(err).__name__}: {err}"
        state["pretrain"] = pre
        atomic_write_json(path, state)

    for f in point.finetunes:
        fs = state["finetunes"].get(f.tag) or {}
        if fs.get("status") == "done":
            continue
        ft_dir = folder / f.tag
        fs = {"identity": f.identity, "label_fraction": f.config["label_fraction"], "dir": str(ft_dir)}
        if point.pretrain is not None and pre.get("status") != "done":
            fs.update({"status": "failed", "error": f"not run: the pre-training failed ({pre.get('error')})"})
        else:
            init = str(folder / "pretrain" / f"{f.checkpoint}.pt") if point.pretrain is not None else "none"
            resume = (ft_dir / "last.pt").is_file()
            _say(log, f"  fine-tuning {point.name}/{f.tag}" + (" (resuming)" if resume else ""), verbose)
            try:
                with _logged(log, verbose):
                    res = run_finetune({**f.config, "init": init, "out": str(ft_dir), "resume": resume})
                fs.update({"status": "done", "best_epoch": res["best_epoch"], "val_acc": res["best_val_acc"],
                           "test_best_val": _compact(res["test_best_val"]), "test_last": _compact(res["test_last"]),
                           "epochs": len(res["epochs"]),
                           "time_s": sum(r.get("epoch_time_s", 0.0) for r in res["epochs"]), "resumed": resume})
            except Exception as err:
                fs.update(_failure(err))
                _say(log, f"  fine-tuning {point.name}/{f.tag} FAILED: {fs['error']}", verbose)
        state["finetunes"][f.tag] = fs
        atomic_write_json(path, state)
    return state


def _union(old: list | None, new: list) -> list:
    """The grid assignments a point belongs to: those recorded before, then the new ones."""
    old = list(old or [])
    return old + [g for g in new if g not in old]


def record_grids(out: Path, point: Point, state: dict[str, Any]) -> None:
    """A finished point reached by another sweep (a shared ``--out``) also belongs to that sweep's
    grid: record it, so the table builder counts it there (Table 3's Mt = Mj = 0.4 cell is Table 5's
    K = 128 run)."""
    grids = _union(state.get("grids"), point.grids)
    if grids != state.get("grids"):
        state["grids"] = grids
        atomic_write_json(_state_path(out, point.name), state)


def _compact(test: dict[str, Any]) -> dict[str, Any]:
    """Test metrics without the confusion matrix (it stays in the fine-tune folder's metrics.json)."""
    return {k: test[k] for k in ("top1", "top5", "loss", "samples") if k in test}


def point_status(state: dict[str, Any] | None, point: Point | None = None) -> str:
    """``done`` | ``failed`` (some stage failed) | ``partial`` | ``pending`` (nothing recorded)."""
    if not state:
        return "pending"
    stages = [state.get("pretrain")] if state.get("latent") != "scratch" else []
    tags = [f.tag for f in point.finetunes] if point is not None else list(state.get("finetunes", {}))
    stages += [state.get("finetunes", {}).get(t) for t in tags]
    statuses = [s.get("status") if s else None for s in stages]
    if any(s == "failed" for s in statuses):
        return "failed"
    return "done" if all(s == "done" for s in statuses) else "partial"


def point_line(state: dict[str, Any] | None, point: Point, index: int, total: int, seconds: float | None = None,
               skipped: bool = False) -> str:
    """One line summing up a point: ``[i/n] NAME: STATUS``, the test top-1 (best-validation epoch)
    of each fine-tune, the first error, and the wall time of this call, e.g.
    ``[3/18] vae-seed0: done  top-1 100pct 8.3 %, 50pct 0.0 %  4.1 s``."""
    state = state or {}
    parts = [f"[{index}/{total}] {point.name}: {point_status(state, point)}" + (", skipped" if skipped else "")]
    tops, errors = [], []
    pre = state.get("pretrain") or {}
    if pre.get("status") == "failed":
        errors.append(f"pre-training: {pre.get('error')}")
    for f in point.finetunes:
        fs = state.get("finetunes", {}).get(f.tag) or {}
        short = f.tag.removeprefix("finetune-")
        top1 = (fs.get("test_best_val") or {}).get("top1")
        if fs.get("status") == "done" and top1 is not None:
            tops.append(f"{short} {100 * top1:.1f} %")
        elif fs.get("status") == "failed":
            tops.append(f"{short} failed")
            if pre.get("status") != "failed":
                errors.append(f"{short}: {fs.get('error')}")
        else:
            tops.append(f"{short} -")
    parts.append("top-1 " + ", ".join(tops))
    if errors:
        error = " ".join(str(errors[0]).split())  # one line, however long the message
        parts.append(error if len(error) <= 160 else error[:157] + "...")
    if seconds is not None:
        parts.append(f"{seconds:.1f} s")
    return "  ".join(parts)


def latent_stats(pretrain_dir: Path, checkpoint: str = "best") -> dict[str, Any]:
    """:data:`LATENT_STATS` of the epoch whose checkpoint (``best`` or ``last``) a fine-tune starts
    from, with that epoch as ``pretrain_epoch``; ``{}`` when the pre-training left no metrics."""
    path = pretrain_dir / "metrics.json"
    if not path.is_file():
        return {}
    metrics = _read_json(path)
    epochs = metrics.get("epochs") or []
    if not epochs:
        return {}
    want = metrics.get("best_epoch") if checkpoint == "best" else epochs[-1].get("epoch")
    epoch = next((e for e in epochs if e.get("epoch") == want), None)
    if epoch is None:
        raise SweepError(f"{path}: no record of epoch {want} (the {checkpoint} checkpoint's); "
                         f"epochs recorded: {[e.get('epoch') for e in epochs]}")
    return {"pretrain_epoch": want, **{k: epoch.get(src) for k, src in LATENT_STATS.items()}}


def result_rows(state: dict[str, Any], pretrain_dir: Path | None = None) -> list[dict[str, Any]]:
    """One row per fine-tune of a point's state (:data:`COLUMNS`, plus ``traceback`` and ``grids``);
    the latent-use columns come from ``pretrain_dir`` (the point's pre-training folder) when given."""
    pre = state.get("pretrain") or {}
    axes = state.get("axes", {})
    rows = []
    stats: dict[str, dict[str, Any]] = {}  # checkpoint -> latent_stats: one read of metrics.json per point
    for tag, fs in state.get("finetunes", {}).items():
        failed = fs.get("status") != "done"
        best, last = fs.get("test_best_val") or {}, fs.get("test_last") or {}
        row = {
            "point": state["name"], "finetune": tag, "status": fs.get("status", "pending"), "latent": state["latent"],
            **{k: axes.get(k) for k in ("dataset", "seed", "preset", "window", "mask_frames", "mask_joints",
                                         "latent_dim", "codebook_size", "decoder_dim", "decoder_depth", "epochs",
                                         "finetune_epochs", "loss_reduction", "vae_mode", "skip_empty_persons",
                                         "rotate")},
            "label_fraction": fs.get("label_fraction"),
            "top1": best.get("top1"), "top1_last": last.get("top1"), "top5": best.get("top5"),
            "top5_last": last.get("top5"), "val_acc": fs.get("val_acc"), "best_epoch": fs.get("best_epoch"),
            "pretrain_time_s": pre.get("time_s"), "pretrain_best_val_loss": pre.get("best_val_loss"),
            "pretrain_epoch": None, **dict.fromkeys(LATENT_STATS),
            "params": pre.get("params"), "gflops": pre.get("gflops"), "finetune_time_s": fs.get("time_s"),
            "error": fs.get("error") if failed else None, "traceback": fs.get("traceback") if failed else None,
            "pretrain_dir": pre.get("dir"), "finetune_dir": fs.get("dir"), "grids": state.get("grids", []),
        }
        identity = fs.get("identity") or {}
        if identity.get("epochs") is not None:  # what this fine-tune ran: calls with other --set share a point
            row["finetune_epochs"] = identity["epochs"]
        if failed and pre.get("status") == "failed":
            row["traceback"] = pre.get("traceback")
        if pretrain_dir is not None and pre.get("status") == "done":
            checkpoint = (fs.get("identity") or {}).get("checkpoint", "best")
            if checkpoint not in stats:
                stats[checkpoint] = latent_stats(pretrain_dir, checkpoint)
            row.update(stats[checkpoint])
        rows.append(row)
    return rows


def load_results(out: str | Path) -> list[dict[str, Any]]:
    """The rows of a sweep folder (finished, failed and partial points), in the sweep's point order.

    Read from the points' ``result.json`` files; a folder without them (the small result files a
    sweep ships, as in ``notebooks/assets/sweeps/NAME/``) is read from its ``results.json``."""
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"no sweep folder {out}: run `python -m skel sweep CONFIG --out {out}` first")
    if not any((out / "points").glob("*/result.json")) and (out / "results.json").is_file():
        rows = _read_json(out / "results.json")
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "point" in r for r in rows):
            raise SweepError(f"{out / 'results.json'}: expected a list of result rows (write_results' format)")
        return rows
    names: list[str] = []
    if (out / "sweep.json").is_file():
        names = [p["name"] for p in _read_json(out / "sweep.json")["points"]]
    names += sorted(p.parent.name for p in (out / "points").glob("*/result.json") if p.parent.name not in names)
    rows = []
    for name in names:
        path = _state_path(out, name)
        if path.is_file():
            rows += result_rows(_read_json(path), path.parent / "pretrain")
    return rows


def write_results(out: Path) -> list[dict[str, Any]]:
    """Rewrite ``results.json`` and ``results.csv`` from the points' ``result.json`` files."""
    rows = load_results(out)
    atomic_write_json(out / "results.json", rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "results.csv", buf.getvalue())
    return rows


def _resolve(sweep: Sweep, out: Path, only: str | list[str] | None) -> tuple[list[Point], list[Point]]:
    """``(points, chosen)``: the sweep's points named as the folder already has them, and those
    ``only`` selects; a folder made with other settings is refused here, before anything runs, and
    frame mask rates that mask alike are warned about."""
    points = expand(sweep)
    adopt_folders(out, points)
    chosen = select(points, only)
    check_folders(out, points)
    for warning in mask_collisions(chosen):
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    return points, chosen


def run_sweep(config: str | Path | Sweep, out: str | Path | None = None,
              overrides: dict[str, Any] | list[str] | None = None, only: str | list[str] | None = None,
              dry_run: bool = False, verbose: bool = True) -> list[dict[str, Any]]:
    """Run every point of a sweep file (finished ones skipped, interrupted ones resumed); return
    :func:`load_results` rows. ``dry_run``: list the points and their status, run nothing, return [].

    ``config``: a sweep YAML path or a :class:`Sweep`; ``overrides``: as ``--set`` (a dict or
    ``["key=value"]``); ``only``: shell patterns of point names; ``verbose``: echo the runs' own
    output (it always goes to each point's ``log.txt``); either way each point ends with one
    :func:`point_line` (name, status, top-1 per fine-tune, time). Raises :class:`SweepError` for a
    bad file or a folder made with other settings, before anything runs.
    """
    if isinstance(config, Sweep):
        if overrides:
            raise SweepError("overrides apply when reading a sweep file; pass the path, or edit the Sweep")
        sweep = config
    else:
        sweep = load_sweep(config, overrides)
    out = Path(out) if out else default_out(sweep)
    points, chosen = _resolve(sweep, out, only)
    states = {p.name: _read_state(out, p.name) for p in chosen}
    if dry_run:
        print(f"sweep {sweep.name}: {len(chosen)} of {len(points)} points into {out}")
        for p in chosen:
            what = ("pre-train + " if p.pretrain is not None else "no pre-training, ") + ", ".join(f.tag for f in p.finetunes)
            print(f"  {p.name:<40s} {point_status(states[p.name], p):<8s} {what}")
        return []
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "sweep.json", {**sweep.to_dict(), "points": point_summary(points)})
    print(f"sweep {sweep.name}: {len(chosen)} points into {out}", flush=True)
    for i, p in enumerate(chosen, 1):
        status = point_status(states[p.name], p)
        if status == "done":
            record_grids(out, p, states[p.name])
            print(point_line(states[p.name], p, i, len(chosen), skipped=True), flush=True)
            continue
        if verbose:  # a header above the runs' own output
            print(f"[{i}/{len(chosen)}] {p.name}" + ("" if status == "pending" else f" ({status} before)"), flush=True)
        start = time.perf_counter()
        state = run_point(p, out, verbose)
        write_results(out)
        print(point_line(state, p, i, len(chosen), time.perf_counter() - start), flush=True)
    return write_results(out)


# ---- command line -------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="sweep YAML file, e.g. notebooks/configs/sweeps/table3_small.yaml")
    parser.add_argument("--out", default=None, help="sweep folder (default runs/sweeps/NAME under the repo root)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a base key, or replace a grid axis with a list (VALUE read as YAML; "
                             "repeatable): --set data_dir=/data/ntu --set 'seed=[0, 1]'")
    parser.add_argument("--only", default=None, metavar="PATTERNS",
                        help="run only points whose name matches one of these shell patterns (comma list): 'vae-*'")
    parser.add_argument("--dry-run", action="store_true", help="list the points and their status, run nothing")
    parser.add_argument("--quiet", action="store_true",
                        help="one line per point; the runs' own output goes to each point's log.txt only")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="run the points in N child processes side by side (each takes every N-th point, "
                             "one after the other; set threads so that N x threads fits the cores); default 1")


def partition(points: list[Point], workers: int) -> list[list[str]]:
    """Point names dealt round-robin to ``workers`` lists (the sweep's order within each), empty lists dropped."""
    if workers < 1:
        raise SweepError(f"--workers {workers}: expected 1 or more")
    return [names for names in ([p.name for p in points[k::workers]] for k in range(workers)) if names]


def run_parallel(args: argparse.Namespace, sweep: Sweep, out: Path) -> None:
    """``--workers N``: the chosen points dealt to N ``python -m skel sweep ... --only NAMES`` children.

    Finished points are skipped here (their grid recorded, as a single process would) and only the
    others are dealt out, so a resumed sweep keeps every worker busy. Each child skips, resumes and
    records its own points exactly as a single process would; points never share a folder, and
    ``results.json`` is rebuilt from the points' own files, so children do not overwrite each
    other's results. Each child's output goes to ``OUT/worker-K.log``.
    """
    import subprocess

    _, chosen = _resolve(sweep, out, args.only)  # a bad folder is refused once, before any child starts
    states = {p.name: _read_state(out, p.name) for p in chosen}
    done = {p.name for p in chosen if point_status(states[p.name], p) == "done"}
    groups = partition([p for p in chosen if p.name not in done], args.workers)  # refuses --workers 0 before any write
    for p in chosen:
        if p.name in done:
            record_grids(out, p, states[p.name])
    print(f"sweep {sweep.name}: {len(done)} of {len(chosen)} points done, skipped", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    procs = []
    for k, names in enumerate(groups):
        argv = [sys.executable, "-m", "skel", "sweep", str(args.config), "--out", str(out), "--only", ",".join(names),
                "--quiet", *(a for kv in args.overrides for a in ("--set", kv))]
        log = open(out / f"worker-{k}.log", "a", encoding="utf-8")
        print(f"worker {k}: {len(names)} points ({', '.join(names)}); log {out / f'worker-{k}.log'}", flush=True)
        procs.append((subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT), log))
    for proc, log in procs:
        proc.wait()
        log.close()


def main(args: argparse.Namespace) -> int:
    """Exit code 0: every point done; 1: some failed (recorded in results.json); 2: bad sweep file."""
    from skel.sweep.tables import tables_markdown

    try:
        sweep = load_sweep(args.config, args.overrides)
        out = Path(args.out) if args.out else default_out(sweep)
        if args.workers != 1 and not args.dry_run:
            run_parallel(args, sweep, out)
            rows = write_results(out)  # as run_sweep returns: every row in the folder
        else:
            rows = run_sweep(sweep, out, None, args.only, args.dry_run, verbose=not args.quiet)
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.dry_run:
        return 0
    failed = [r for r in rows if r["status"] != "done"]
    print()
    print(tables_markdown(rows))
    for r in failed:
        print(f"failed: {r['point']}/{r['finetune']}: {r['error']}", file=sys.stderr)
    done = len(rows) - len(failed)
    print(f"sweep: {done} of {len(rows)} fine-tunes done; {out / 'results.csv'}")
    return 1 if failed else 0
