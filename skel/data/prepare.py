"""``python -m skel prepare-ntu``: raw NTU ``.skeleton`` files -> a compact store
(:mod:`skel.data.store`), in parallel, honouring the official missing-skeleton lists.

Also :func:`benchmark` (files per CPU-second and per second of the whole command with 1 worker and
all cores, and of read + preprocess, against CTR-GCN's reading loop in the same run), run by
``python -m skel bench data`` and ``python -m skel.data.prepare --bench [--json FILE]``.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from skel.data.ntu import NAME_RE, SkeletonFormatError, parse_name, read_preprocessed

# the NTU120 list holds the NTU60 one and no other NTU60 name, so their union serves both
MISSING_LISTS = ("NTU_RGBD_samples_with_missing_skeletons.txt",
                 "NTU_RGBD120_samples_with_missing_skeletons.txt")
NTU60_MAX_SETUP, NTU60_MAX_ACTION = 17, 60


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raw", required=True, type=Path,
                        help="folder of raw .skeleton files (searched recursively)")
    parser.add_argument("--out", required=True, type=Path, help="output store folder")
    parser.add_argument("--dataset", choices=("ntu60", "ntu120"), default=None,
                        help="ntu60 keeps setups S001-S017 and actions A001-A060; default: ntu120 "
                             "if any file lies beyond those, else ntu60")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: all cores)")
    parser.add_argument("--check-all", action="store_true",
                        help="check every number of every file as a number (about a fifth slower); by "
                             "default the numbers the preprocessing does not use (depth, colour, "
                             "orientation, body info) are checked only for their characters and count")
    parser.add_argument("--missing", type=Path, default=None,
                        help="official list of samples with missing skeletons, skipped (it cannot be "
                             "shipped with skel). Default: NTU_RGBD_samples_with_missing_skeletons.txt "
                             "and/or NTU_RGBD120_samples_with_missing_skeletons.txt found inside "
                             "--raw; if none is found a warning is printed and every file is used")


def read_missing_list(path) -> set[str]:
    """Sample names in an official missing-skeleton list (header lines are skipped)."""
    text = Path(path).read_text(errors="replace")
    return {m.group(0) for m in NAME_RE.finditer(text)}


def _process(path: str, check_all: bool = False):
    """Worker: ``(name, frames or None, (file, line, reason) or None)``; frames ``(T, M, V, C)``
    in the store's layout, so the parent (the one serial step) only writes them."""
    name = Path(path).name.split(".")[0]
    try:
        return name, read_preprocessed(path, check_all), None
    except SkeletonFormatError as err:
        return name, None, (path, err.line, err.reason)
    except (ValueError, OSError) as err:
        return name, None, (path, None, str(err))


def collect_files(raw: Path, dataset: str | None, missing: set[str]) -> tuple[str, list[Path], int, list]:
    """-> (dataset, files to read (sorted by name), number skipped as missing, badly named files)."""
    files, bad = [], []
    for p in sorted(raw.rglob("*.skeleton"), key=lambda p: p.name):
        if NAME_RE.fullmatch(p.name.split(".")[0]) is None:
            bad.append((str(p), None, "file name is not SsssCcccPpppRrrrAaaa.skeleton"))
        else:
            files.append(p)
    infos = [parse_name(p.name) for p in files]
    if dataset is None:
        beyond = any(i["setup"] > NTU60_MAX_SETUP or i["action"] > NTU60_MAX_ACTION for i in infos)
        dataset = "ntu120" if beyond else "ntu60"
    if dataset == "ntu60":
        files = [p for p, i in zip(files, infos)
                 if i["setup"] <= NTU60_MAX_SETUP and i["action"] <= NTU60_MAX_ACTION]
    kept = [p for p in files if p.name.split(".")[0] not in missing]
    return dataset, kept, len(files) - len(kept), bad


def prepare(raw, out, dataset: str | None = None, workers: int = 1, missing_list=None,
            progress: bool = True, check_all: bool = False) -> dict:
    """Read, preprocess and store every file; returns the manifest (with ``bad_files``).
    ``check_all``: see :func:`skel.data.ntu.read_preprocessed`."""
    from tqdm.auto import tqdm

    from skel.data.store import StoreWriter

    raw, out = Path(raw), Path(out)
    if not raw.is_dir():
        raise ValueError(f"--raw {raw}: not a folder; expected the folder of .skeleton files")
    lists = [Path(missing_list)] if missing_list is not None else None
    if lists is None:
        lists = [p for fname in MISSING_LISTS for p in sorted(raw.rglob(fname))]
    missing: set[str] = set()
    for lst in lists:
        if not lst.is_file():
            raise ValueError(f"--missing {lst}: not found; expected an official missing-skeleton list")
        missing |= read_missing_list(lst)
    dataset, files, skipped, bad = collect_files(raw, dataset, missing)
    if not lists:
        warnings.warn(f"no missing-skeleton list given or found in {raw}: every file is used "
                      "(pass --missing NTU_RGBD_samples_with_missing_skeletons.txt)", stacklevel=2)
    if not files:
        raise ValueError(f"--raw {raw}: no .skeleton files to read for {dataset}")
    chunk = max(1, min(64, len(files) // (4 * max(1, workers))))
    with StoreWriter(out, dataset) as writer:
        pool = mp.get_context("spawn" if sys.platform == "darwin" else "fork").Pool(workers) \
            if workers > 1 else None
        try:
            task = functools.partial(_process, check_all=check_all)
            paths = map(str, files)
            results = pool.imap(task, paths, chunksize=chunk) if pool else map(task, paths)
            for name, frames, err in tqdm(results, total=len(files), desc="prepare-ntu",
                                          unit="file", disable=not progress):
                if err is not None:
                    bad.append(err)
                    continue
                info = parse_name(name)
                # a (C, T, V, M) view: the writer's transpose back to frames copies nothing
                writer.add(name, frames.transpose(3, 0, 2, 1), info["setup"], info["camera"],
                           info["performer"], info["replication"], info["action"] - 1)
        finally:
            if pool is not None:
                pool.terminate()
        return writer.close(
            skipped_missing=skipped, missing_lists=[str(p) for p in lists],
            bad_files=[{"file": f, "line": line, "reason": r} for f, line, r in bad],
        )


def main(args: argparse.Namespace) -> int:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            manifest = prepare(args.raw, args.out, args.dataset, args.workers, args.missing,
                               check_all=args.check_all)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    print(f"{manifest['dataset']}: {manifest['num_samples']} samples, {manifest['num_frames']} frames "
          f"written to {args.out} ({manifest['skipped_missing']} skipped as missing skeletons)")
    bad = manifest["bad_files"]
    if bad:
        print(f"{len(bad)} bad file(s), not written:", file=sys.stderr)
        for b in bad:
            where = f" line {b['line']}" if b["line"] is not None else ""
            print(f"  {b['file']}{where}: {b['reason']}", file=sys.stderr)
        return 1
    return 0


def _ctrgcn_reader(path: str) -> dict:
    """Benchmark baseline: the reading loop of CTR-GCN's ``get_raw_skes_data.py``
    (``get_raw_bodies_data``), re-implemented from its description: ``readlines``, then per line
    ``strip``/``split``; per joint line x, y, z and colorX, colorY through ``np.array(..., float32)``;
    each body's arrays grown by ``np.vstack`` frame by frame; motion when there are several IDs."""
    with open(path) as f:
        lines = f.readlines()
    num_frames, line, valid, bodies = int(lines[0].strip("\r\n")), 1, -1, {}
    for _ in range(num_frames):
        num_bodies = int(lines[line].strip("\r\n"))
        line += 1
        if num_bodies == 0:
            continue
        valid += 1
        joints = np.zeros((num_bodies, 25, 3), dtype=np.float32)
        colors = np.zeros((num_bodies, 25, 2), dtype=np.float32)
        for b in range(num_bodies):
            body_id = lines[line].strip("\r\n").split()[0]
            num_joints = int(lines[line + 1].strip("\r\n"))
            line += 2
            for j in range(num_joints):
                fields = lines[line].strip("\r\n").split()
                joints[b, j] = np.array(fields[:3], dtype=np.float32)
                colors[b, j] = np.array(fields[5:7], dtype=np.float32)
                line += 1
            if body_id not in bodies:
                bodies[body_id] = {"joints": joints[b], "colors": colors[b, None], "interval": [valid]}
            else:
                body = bodies[body_id]
                body["joints"] = np.vstack((body["joints"], joints[b]))
                body["colors"] = np.vstack((body["colors"], colors[b, None]))
                body["interval"].append(body["interval"][-1] + 1)
    if len(bodies) > 1:
        for body in bodies.values():
            body["motion"] = np.sum(np.var(body["joints"], axis=0))
    return bodies


def _split_float_reader(path: str) -> dict:
    """Benchmark baseline, leaner than CTR-GCN's loop: per line ``split()`` and ``float()`` of the
    same five fields (x, y, z, colorX, colorY), lists per body turned into arrays once."""
    with open(path) as f:
        lines = f.readlines()
    num_frames, line, bodies = int(lines[0]), 1, {}
    for _ in range(num_frames):
        num_bodies = int(lines[line])
        line += 1
        for _ in range(num_bodies):
            body = bodies.setdefault(lines[line].split()[0], ([], []))
            num_joints = int(lines[line + 1])
            line += 2
            for fields in map(str.split, lines[line:line + num_joints]):
                body[0].append((float(fields[0]), float(fields[1]), float(fields[2])))
                body[1].append((float(fields[5]), float(fields[6])))
            line += num_joints
    return {k: (np.array(xyz, dtype=np.float32).reshape(-1, 25, 3),
                np.array(col, dtype=np.float32).reshape(-1, 25, 2)) for k, (xyz, col) in bodies.items()}


def _copies(sources: list[Path], n_files: int, folder: Path) -> list[str]:
    """``n_files`` copies of ``sources`` in turn under new names (performer and replication
    varied), so nothing is cached by name; returns their paths."""
    paths = []
    for k in range(n_files):
        src = sources[k % len(sources)]
        info = parse_name(src.name)
        dst = folder / (f"S{info['setup']:03d}C{info['camera']:03d}P{100 + k % 900:03d}"
                        f"R{k // 900 + 1:03d}A{info['action']:03d}.skeleton")
        shutil.copyfile(src, dst)
        paths.append(str(dst))
    return paths


def _read_used(path: str):
    """:func:`read_preprocessed` as ``prepare-ntu`` calls it by default (checking the numbers it
    uses)."""
    return read_preprocessed(path, check_all=False)


def _run_readers(fn, paths: list[str]) -> tuple[float, float]:
    """(files per CPU-second, files per second) of ``fn`` over ``paths`` in this process."""
    c0, t0 = time.process_time(), time.perf_counter()
    for p in paths:
        fn(p)
    return len(paths) / (time.process_time() - c0), len(paths) / (time.perf_counter() - t0)


def _run_prepare(raw: Path, out: Path, workers: int) -> tuple[float, float]:
    """(files per CPU-second, files per second) of the whole ``prepare-ntu`` (read, preprocess,
    store) on ``raw``; CPU time of this process and of the worker processes it ended."""
    c0, t0 = time.process_time(), time.perf_counter()
    kids0 = os.times()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (no missing-skeleton list in the copies)
        manifest = prepare(raw, out, workers=workers, progress=False)
    wall = time.perf_counter() - t0
    kids1 = os.times()
    cpu = time.process_time() - c0 + (kids1.children_user - kids0.children_user) \
        + (kids1.children_system - kids0.children_system)
    n = manifest["num_samples"]
    if manifest["bad_files"]:
        raise RuntimeError(f"benchmark copies reported bad files: {manifest['bad_files'][:3]}")
    return n / cpu, n / wall


def benchmark(n_files: int = 200, workers: int | None = None, raw_dir=None, rounds: int = 5) -> dict:
    """Files per second of ``prepare-ntu`` against CTR-GCN's reading loop, in the same run.

    Copies the ``.skeleton`` files of ``raw_dir`` (default: the shared NTU samples) ``n_files``
    times in all under new names into a temporary folder, then takes ``rounds`` rounds, each
    measuring in turn (the order reversed every other round, so that a machine busy with other
    work weighs on all alike):

    * ``ctrgcn_reader``: CTR-GCN's reading loop (:func:`_ctrgcn_reader`, one core) and a leaner
      split + float reader (:func:`_split_float_reader`);
    * ``read_preprocess``: our read + preprocess of each file (:func:`read_preprocessed` as
      ``prepare-ntu`` calls it), one core, and ``read_preprocess_check_all`` the same checking
      every number (``--check-all``);
    * ``prepare``: the whole command (read, preprocess, store) with 1 worker (in this process)
      and with ``workers`` worker processes (default: all cores; one thread each).

    ``files_per_cpu_s_*`` are files per CPU-second (per core; the fair figure on a shared
    machine), ``files_per_s_*`` by wall clock. Every figure is the median over the rounds;
    ``speedup_over_*`` is the median of the rounds' ratios (ours, 1 worker, files per CPU-second,
    over the baseline's), ``scaling_<N>_workers`` the median of the rounds' wall-clock ratios of
    N workers over 1, ``per_core_efficiency_<N>_workers`` that of their files per CPU-second
    (the pool's and the writing parent's cost), ``cores_used_*`` the CPU-seconds per second a run
    got (on a machine busy with other work, N workers get fewer than N cores, and the wall-clock
    scaling shows the machine, not the program). ``per_round`` keeps every round's figures.
    """
    from skel.utils import shared_data_dir

    if raw_dir is None:
        root = shared_data_dir()
        if root is None:
            raise FileNotFoundError("benchmark needs the real NTU samples (shared/data is absent)")
        raw_dir = root / "ntu_raw_samples" / "LevelCA"
    sources = sorted(Path(raw_dir).glob("*.skeleton"))
    if not sources:
        raise FileNotFoundError(f"{raw_dir}: no .skeleton files to benchmark on")
    workers = workers or os.cpu_count() or 1
    many = f"{workers}_workers"
    runs = {"ctrgcn_reader": lambda: _run_readers(_ctrgcn_reader, paths),
            "split_float_reader": lambda: _run_readers(_split_float_reader, paths),
            "read_preprocess": lambda: _run_readers(_read_used, paths),
            "read_preprocess_check_all": lambda: _run_readers(read_preprocessed, paths),
            "1_worker": lambda: _run_prepare(raw, Path(tmp) / "out1", 1),
            many: lambda: _run_prepare(raw, Path(tmp) / "outN", workers)}
    per_round: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        raw.mkdir()
        paths = _copies(sources, n_files, raw)
        for r in range(rounds):
            for label in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
                for name, value in zip(_names(label), runs[label]()):
                    per_round.setdefault(name, []).append(value)
    rate = {name: np.array(v) for name, v in per_round.items()}
    result = {"n_files": n_files, "source_files": len(sources), "cpu_count": os.cpu_count(),
              "workers": workers, "threads_per_worker": 1, "rounds": rounds}
    result.update({name: float(np.median(v)) for name, v in rate.items()})
    ours = rate["files_per_cpu_s_1_worker"]
    for base in ("ctrgcn_reader", "split_float_reader"):
        result[f"speedup_over_{base}"] = float(np.median(ours / rate[f"{base}_files_per_cpu_s"]))
    result["read_preprocess_speedup_over_ctrgcn_reader"] = float(np.median(
        rate["read_preprocess_files_per_cpu_s"] / rate["ctrgcn_reader_files_per_cpu_s"]))
    result[f"scaling_{many}"] = float(np.median(rate[f"files_per_s_{many}"] / rate["files_per_s_1_worker"]))
    result[f"per_core_efficiency_{many}"] = float(np.median(
        rate[f"files_per_cpu_s_{many}"] / rate["files_per_cpu_s_1_worker"]))
    for label in ("1_worker", many):  # CPU-seconds per second: the cores a run actually got
        result[f"cores_used_{label}"] = float(np.median(
            rate[f"files_per_s_{label}"] / rate[f"files_per_cpu_s_{label}"]))
    result["per_round"] = {name: [round(x, 1) for x in v] for name, v in per_round.items()}
    return result


def _names(label: str) -> tuple[str, str]:
    """The (per CPU-second, per second) figure names of a benchmark run."""
    if label.endswith(("worker", "workers")):
        return f"files_per_cpu_s_{label}", f"files_per_s_{label}"
    return f"{label}_files_per_cpu_s", f"{label}_files_per_s"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m skel.data.prepare")
    parser.add_argument("--bench", action="store_true", help="print the files/s benchmark and exit")
    parser.add_argument("--n-files", type=int, default=200)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    opts, rest = parser.parse_known_args()
    if opts.bench:
        from skel.utils import atomic_write_json

        figures = benchmark(opts.n_files, opts.workers, rounds=opts.rounds)
        print(f"prepare-ntu benchmark: {figures['n_files']} files (copies of {figures['source_files']} "
              f"real samples), {figures['cpu_count']} cores, {figures['workers']} workers of "
              f"{figures['threads_per_worker']} thread; medians of {figures['rounds']} rounds")
        for key, value in figures.items():
            if key != "per_round":
                print(f"{key}: {value:.1f}" if isinstance(value, float) else f"{key}: {value}")
        if opts.json is not None:
            atomic_write_json(opts.json, figures)
        raise SystemExit(0)
    full = argparse.ArgumentParser(prog="python -m skel.data.prepare")
    add_arguments(full)
    raise SystemExit(main(full.parse_args(rest)))
