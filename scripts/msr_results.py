"""MSR Action3D (cross-subject) results of issue 4: pre-training + fine-tuning grid and RESULTS.md tables.

    python scripts/msr_results.py run [--workers 2] [--stop-at 03:45]   # the grid, resumable
    python scripts/msr_results.py report                                 # ridge + tables -> RESULTS.md

``run`` calls ``python -m skel pretrain|finetune`` for every cell of the grid (3 latents x 3 seeds
of pre-training; 4 inits x {100 %, 10 %} labels x 3 seeds of fine-tuning), seed-major so that an
interrupted grid still holds whole seeds. A run whose ``metrics.json`` holds its final summary is
skipped; one with a ``last.pt`` but no summary is continued with ``--resume``. Each job's command,
wall time and log go to ``runs/msr/<job>/`` (``command.txt``, ``wall.json``) and ``runs/msr/logs/``.

``report`` aggregates the ``metrics.json`` files (mean and sample std over the seeds present),
computes the ridge baseline (root-centred joints resampled to 32 frames, closed form, fitted on the
networks' training indices, lambda chosen on their validation indices; never the test set) and rewrites the
block between ``<!-- msr:begin -->`` and ``<!-- msr:end -->`` in ``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "msr"
RESULTS = ROOT / "RESULTS.md"
BEGIN, END = "<!-- msr:begin -->", "<!-- msr:end -->"

SEEDS = (0, 1, 2)
LATENTS = ("none", "vae", "vq")  # SkeletonMAE, SkeletonMVAE, SkeletonMVQVAE
NAMES = {"scratch": "scratch (no pre-training)", "none": "SkeletonMAE (latent none)",
         "vae": "SkeletonMVAE (latent vae)", "vq": "SkeletonMVQVAE (latent vq)"}
FRACTIONS = {"full": 1.0, "10pct": 0.1}
THREADS = 1  # per job; ``--workers`` jobs run side by side on the 2 cores

COMMON = ["--dataset", "msr-action3d", "--preset", "small", "--window", "24", "--threads", str(THREADS),
          "--device", "cpu", "--no-progress"]
PRETRAIN = ["--epochs", "5", "--batch-size", "16", "--lr-steps"]  # no lr step in 5 epochs; lr = recipe (1e-3, vq 1e-2)
FINETUNE = {
    "full": ["--epochs", "8", "--batch-size", "16", "--lr", "1e-3", "--lr-steps", "6"],
    "10pct": ["--epochs", "30", "--batch-size", "10", "--lr", "1e-3", "--lr-steps", "24"],
}


# ---- the grid ---------------------------------------------------------------------------------
@dataclass
class Job:
    name: str  # folder under runs/msr
    argv: list[str]
    needs: list[str] = field(default_factory=list)

    @property
    def out(self) -> Path:
        return RUNS / self.name


def grid() -> list[Job]:
    """Every run, seed-major: a seed's pre-training and its eight fine-tunings before the next seed."""
    jobs: list[Job] = []
    py = [sys.executable, "-m", "skel"]
    for seed in SEEDS:
        jobs.append(_finetune(py, "scratch", "full", seed))
        for latent in LATENTS:
            name = f"pretrain/{latent}/s{seed}"
            jobs.append(Job(name, py + ["pretrain", *COMMON, "--latent", latent, "--seed", str(seed),
                                        "--out", str(RUNS / name), *PRETRAIN]))
        jobs.append(_finetune(py, "scratch", "10pct", seed))
        for latent in LATENTS:
            for frac in FRACTIONS:
                jobs.append(_finetune(py, latent, frac, seed))
    return jobs


def _finetune(py: list[str], init: str, frac: str, seed: int, recipe: list[str] | None = None,
              folder: str = "finetune") -> Job:
    name = f"{folder}/{init}/{frac}/s{seed}"
    needs = [] if init == "scratch" else [f"pretrain/{init}/s{seed}"]
    init_arg = "none" if init == "scratch" else str(RUNS / needs[0] / "last.pt")
    # --latent none: the classifier has no latent; every init gets the same explicit --lr
    argv = py + ["finetune", *COMMON, "--latent", "none", "--seed", str(seed), "--out", str(RUNS / name),
                 "--init", init_arg, "--label-fraction", str(FRACTIONS[frac]), *(recipe or FINETUNE[frac])]
    return Job(name, argv, needs)


# The first lever tried (seed 0 only, run beside the grid): three times the fine-tuning epochs.
LONG_FINETUNE = ["--epochs", "24", "--batch-size", "16", "--lr", "1e-3", "--lr-steps", "18"]


def levers() -> list[Job]:
    py = [sys.executable, "-m", "skel"]
    return [_finetune(py, init, "full", 0, LONG_FINETUNE, folder="finetune-24ep") for init in ("scratch", "none")]


def finished(out: Path) -> bool:
    """The run wrote its final summary (metrics.json is rewritten every epoch; the summary comes last)."""
    path = out / "metrics.json"
    if not path.exists():
        return False
    try:
        return "best_epoch" in json.loads(path.read_text())
    except json.JSONDecodeError:
        return False


def run_grid(workers: int, stop_at: dt.datetime | None, jobs: list[Job]) -> int:
    (RUNS / "logs").mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    state = {j.name: ("done" if finished(j.out) else "todo") for j in jobs}
    for n in {n for j in jobs for n in j.needs} - state.keys():  # prerequisites outside this job list
        state[n] = "done" if finished(RUNS / n) else "failed"
    failures: list[str] = []

    def next_job() -> Job | None:
        """The first runnable job; None when nothing is left that could ever run."""
        while True:
            with lock:
                if stop_at is not None and dt.datetime.now(dt.timezone.utc) >= stop_at:
                    return None
                pending = [j for j in jobs if state[j.name] == "todo"]
                for j in pending:
                    if all(state[n] == "done" for n in j.needs):
                        state[j.name] = "running"
                        return j
                blocked_forever = all(any(state[n] == "failed" for n in j.needs) for j in pending)
                if not pending or (blocked_forever and "running" not in state.values()):
                    return None
            time.sleep(5)

    def worker() -> None:
        while (job := next_job()) is not None:
            argv = list(job.argv)
            if (job.out / "last.pt").exists():
                argv.append("--resume")
            job.out.mkdir(parents=True, exist_ok=True)
            (job.out / "command.txt").write_text(shlex.join(_shown(argv)) + "\n")
            log = RUNS / "logs" / (job.name.replace("/", "_") + ".log")
            print(f"[{_now()}] start {job.name}", flush=True)
            t0 = time.time()
            env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": str(THREADS)}
            with open(log, "a") as fh:
                rc = subprocess.call(argv, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env=env)
            wall = time.time() - t0
            ok = rc == 0 and finished(job.out)
            if ok:
                walls = job.out / "wall.json"
                prior = json.loads(walls.read_text())["wall_s"] if walls.exists() else 0.0
                walls.write_text(json.dumps({"wall_s": prior + wall, "workers": workers, "threads": THREADS}))
            with lock:
                state[job.name] = "done" if ok else "failed"
                if not ok:
                    failures.append(job.name)
            print(f"[{_now()}] {'done' if ok else f'FAILED rc={rc}'} {job.name} ({wall:.0f} s)", flush=True)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    left = [n for n, s in state.items() if s == "todo"]
    print(f"[{_now()}] grid: {sum(s == 'done' for s in state.values())} done, {len(failures)} failed "
          f"({', '.join(failures) or '-'}), {len(left)} not started", flush=True)
    return 1 if failures else 0


def _shown(argv: list[str]) -> list[str]:
    """The command as a user would type it from the repository root."""
    shown = ["python" if a == sys.executable else a for a in argv]
    return [str(Path(a).relative_to(ROOT)) if a.startswith(str(ROOT)) else a for a in shown]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%H:%M:%S")


# ---- ridge baseline ---------------------------------------------------------------------------
RIDGE_FRAMES = 32
RIDGE_LAMBDAS = tuple(10.0 ** k for k in range(-3, 5))


def ridge_features(data) -> np.ndarray:
    """``(N, 3 * 32 * V)``: joints minus the centre joint of the same frame, linearly resampled to 32 frames."""
    from skel.data.feeder import resize_time

    centre = data.layout.center
    rows = []
    for i in range(len(data)):
        x, _ = data[i]  # (C, T, V, M), M = 1 on MSR
        x = x[..., 0] - x[:, :, centre:centre + 1, 0]
        rows.append(resize_time(x.astype(np.float64), 0, x.shape[1], RIDGE_FRAMES).ravel())
    return np.stack(rows)


def ridge_fit(X: np.ndarray, y: np.ndarray, lam: float, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form ridge on one-hot targets with an unpenalised bias (centred features)."""
    mu = X.mean(0)
    Xc = X - mu
    Y = np.eye(num_classes)[y]
    W = np.linalg.solve(Xc.T @ Xc + lam * np.eye(X.shape[1]), Xc.T @ (Y - Y.mean(0)))
    b = Y.mean(0) - mu @ W
    return W, b


def ridge_results() -> dict[str, list[dict[str, float]]]:
    """Per label fraction, one entry per seed: the same labelled subset and validation carve-out as
    the fine-tuning runs (``skel.train.loop.prepare_splits``: subset seed + 2, carve seed + 3)."""
    from skel.data import load_dataset
    from skel.data.feeder import carve_validation, stratified_subset

    train, test = load_dataset("msr-action3d", "train"), load_dataset("msr-action3d", "test")
    Xtr, Xte, K = ridge_features(train), ridge_features(test), train.num_classes
    out: dict[str, list[dict[str, float]]] = {}
    for frac, f in FRACTIONS.items():
        rows = []
        for seed in SEEDS:
            pool = np.arange(len(train))
            if f < 1.0:
                pool = pool[stratified_subset(train.labels[pool], f, seed + 2)]
            tr, va = carve_validation(train.labels[pool], 0.1, seed + 3)
            tr, va = pool[tr], pool[va]
            val_acc = {}
            for lam in RIDGE_LAMBDAS:
                W, b = ridge_fit(Xtr[tr], train.labels[tr], lam, K)
                val_acc[lam] = float(((Xtr[va] @ W + b).argmax(1) == train.labels[va]).mean())
            lam = max(RIDGE_LAMBDAS, key=lambda k: (val_acc[k], k))  # ties: the stronger regulariser
            W, b = ridge_fit(Xtr[tr], train.labels[tr], lam, K)  # the networks' training set, no refit
            acc = float(((Xte @ W + b).argmax(1) == test.labels).mean())
            rows.append({"seed": seed, "lambda": lam, "val_acc": val_acc[lam], "test_acc": acc,
                         "train": len(tr), "val": len(va)})
        out[frac] = rows
    return out


# ---- report -----------------------------------------------------------------------------------
def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    v = np.asarray(values) * 100
    spread = f" ± {v.std(ddof=1):.1f}" if len(v) > 1 else ""
    return f"{v.mean():.1f}{spread}"


def collect() -> dict:
    runs = {}
    for job in grid() + levers():
        if finished(job.out):
            m = json.loads((job.out / "metrics.json").read_text())
            wall = job.out / "wall.json"
            m["wall_s"] = json.loads(wall.read_text())["wall_s"] if wall.exists() else None
            runs[job.name] = m
    return runs


def render(runs: dict, ridge: dict) -> str:
    lines = ["### Test accuracy (%), MSR Action3D cross-subject, mean ± std over seeds", "",
             "| init | labels | seeds | test, best-validation epoch | test, last epoch | best validation acc | "
             "train acc, last epoch | best epoch (mean) |",
             "|---|---|---|---|---|---|---|---|"]
    for frac, label in (("full", "100 %"), ("10pct", "10 %")):
        r = ridge[frac]
        lines.append(f"| ridge baseline (32 frames, closed form) | {label} | {len(r)} | "
                     f"{_ms([x['test_acc'] for x in r])} | - | {_ms([x['val_acc'] for x in r])} | - | "
                     "λ = " + ", ".join(f"{x['lambda']:g}" for x in r) + " |")
        for init in ("scratch", *LATENTS):
            ms = [runs[k] for s in SEEDS if (k := f"finetune/{init}/{frac}/s{s}") in runs]
            best = [m["test_best_val"]["top1"] for m in ms]
            last = [m["test_last"]["top1"] for m in ms]
            val = [m["best_val_acc"] for m in ms]
            train = [m["epochs"][-1]["train_acc"] for m in ms]
            ep = f"{np.mean([m['best_epoch'] for m in ms]):.1f}" if ms else "-"
            lines.append(f"| {NAMES[init]} | {label} | {len(ms)} | {_ms(best)} | {_ms(last)} | {_ms(val)} | "
                         f"{_ms(train)} | {ep} |")
    lines += ["", "Per seed (test accuracy %, best-validation epoch / last epoch):", "",
              "| init | labels | " + " | ".join(f"seed {s}" for s in SEEDS) + " |",
              "|---|---|" + "---|" * len(SEEDS)]
    for frac, label in (("full", "100 %"), ("10pct", "10 %")):
        cells = [f"{x['test_acc'] * 100:.1f}" for x in ridge[frac]]
        lines.append(f"| ridge | {label} | " + " | ".join(cells) + " |")
        for init in ("scratch", *LATENTS):
            cells = []
            for s in SEEDS:
                m = runs.get(f"finetune/{init}/{frac}/s{s}")
                cells.append(f"{m['test_best_val']['top1'] * 100:.1f} / {m['test_last']['top1'] * 100:.1f}"
                             if m else "not run")
            lines.append(f"| {NAMES[init]} | {label} | " + " | ".join(cells) + " |")

    lines += ["", "### Pre-training (last epoch; the fine-tuning starts from `last.pt`)", "",
              "| latent | seeds | train loss | val loss | val recon | extra | wall time per run (s) |",
              "|---|---|---|---|---|---|---|"]
    for latent in LATENTS:
        ms = [runs[k] for s in SEEDS if (k := f"pretrain/{latent}/s{s}") in runs]
        last = [m["epochs"][-1] for m in ms]
        extra = "-"
        if latent == "vae" and last:
            extra = f"val KL {np.mean([r['val_kl'] for r in last]):.3g}"
        if latent == "vq" and last:
            key = next((k for k in ("val_perplexity", "train_perplexity") if k in last[0]), None)
            extra = f"{key.replace('_', ' ')} {np.mean([r[key] for r in last]):.1f}" if key else "-"
        lines.append(f"| {latent} | {len(ms)} | {_mean(last, 'train_loss')} | {_mean(last, 'val_loss')} | "
                     f"{_mean(last, 'val_recon')} | {extra} | {_mean_wall(ms)} |")

    lines += ["", "### Wall time per run (s, mean over the runs present)", "",
              "| run | labels | wall (s) |", "|---|---|---|"]
    for frac, label in (("full", "100 %"), ("10pct", "10 %")):
        for init in ("scratch", *LATENTS):
            ms = [runs[k] for s in SEEDS if (k := f"finetune/{init}/{frac}/s{s}") in runs]
            lines.append(f"| fine-tune {init} | {label} | {_mean_wall(ms)} |")
    lever_rows = [(j.name, runs.get(j.name), runs.get(j.name.replace("finetune-24ep", "finetune"))) for j in levers()]
    if any(long is not None for _, long, _ in lever_rows):
        lines += ["", "### Lever: 24 fine-tuning epochs instead of 8 (seed 0, 100 % labels, lr x0.1 after epoch 18)", "",
                  "| init | 8 epochs: test best-val / last | 24 epochs: test best-val / last | 24 epochs: best val acc "
                  "(epoch) | 24 epochs: train acc, last | wall (s) |", "|---|---|---|---|---|---|"]
        for name, long, short in lever_rows:
            init = name.split("/")[1]
            if long is None:
                lines.append(f"| {NAMES[init]} | - | not run | - | - | - |")
                continue
            pair = (lambda m: f"{m['test_best_val']['top1'] * 100:.1f} / {m['test_last']['top1'] * 100:.1f}"
                    if m else "-")
            lines.append(f"| {NAMES[init]} | {pair(short)} | {pair(long)} | {long['best_val_acc'] * 100:.1f} "
                         f"({long['best_epoch']}) | {long['epochs'][-1]['train_acc'] * 100:.1f} | "
                         f"{_mean_wall([long])} |")
    total = sum(m["wall_s"] or 0.0 for k, m in runs.items() if not k.startswith("finetune-24ep"))
    sizes = next((m["samples"] for k, m in runs.items() if k.startswith("finetune/scratch/full")), None)
    sizes10 = next((m["samples"] for k, m in runs.items() if k.startswith("finetune/scratch/10pct")), None)
    lines += ["", f"Grid runs finished: {sum(not k.startswith('finetune-24ep') for k in runs)} of {len(grid())}; summed wall time {total / 60:.1f} min "
              f"(jobs ran two at a time, one torch thread each).",
              f"Samples (train / validation / test): 100 % labels {_sizes(sizes)}; 10 % labels {_sizes(sizes10)}.",
              f"Generated by `python scripts/msr_results.py report` on {platform.node() or 'this machine'} "
              f"({os.cpu_count()} CPUs), {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC."]
    return "\n".join(lines)


def _mean(rows: list[dict], key: str) -> str:
    vals = [r[key] for r in rows if key in r]
    return f"{np.mean(vals):.4g}" if vals else "-"


def _mean_wall(ms: list[dict]) -> str:
    walls = [m["wall_s"] for m in ms if m.get("wall_s")]
    return f"{np.mean(walls):.0f}" if walls else "-"


def _sizes(s: dict | None) -> str:
    return f"{s['train']} / {s['val']} / {s['test']}" if s else "-"


def write_report() -> None:
    runs, ridge = collect(), ridge_results()
    (RUNS).mkdir(parents=True, exist_ok=True)
    (RUNS / "ridge.json").write_text(json.dumps(ridge, indent=1))
    block = f"{BEGIN}\n{render(runs, ridge)}\n{END}"
    text = RESULTS.read_text() if RESULTS.exists() else f"# Results\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{RESULTS}: no '{BEGIN}' ... '{END}' block to replace")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    from skel.utils import atomic_write_text

    atomic_write_text(RESULTS, head + block + tail)
    print(f"wrote {RESULTS} ({len(runs)} runs)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the grid (resumable)")
    r.add_argument("--workers", type=int, default=2, help="jobs side by side (default 2)")
    r.add_argument("--stop-at", default=None, metavar="HH:MM", help="UTC time after which no job starts")
    r.add_argument("--levers", action="store_true", help="run the lever runs (24-epoch fine-tuning) instead")
    sub.add_parser("report", help="ridge baseline + tables into RESULTS.md")
    sub.add_parser("commands", help="print the grid's commands")
    args = p.parse_args()
    if args.cmd == "run":
        stop = None
        if args.stop_at:
            h, m = map(int, args.stop_at.split(":"))
            now = dt.datetime.now(dt.timezone.utc)
            stop = now.replace(hour=h, minute=m, second=0, microsecond=0)
        return run_grid(args.workers, stop, levers() if args.levers else grid())
    if args.cmd == "commands":
        for j in grid() + levers():
            print(shlex.join(_shown(j.argv)))
        return 0
    write_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
