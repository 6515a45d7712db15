"""MSR Action3D (cross-subject) results of issue 4: the Table 1 + Table 2 sweeps and RESULTS.md tables.

    python scripts/msr_results.py run [--workers 2]   # the two sweeps, resumable (runs/sweeps/msr)
    python scripts/msr_results.py report              # ridge + tables -> RESULTS.md
    python scripts/msr_results.py commands            # the sweep commands ``run`` executes

``run`` is two calls of the sweep runner (``python -m skel sweep``, :mod:`skel.sweep`) into one
folder: ``notebooks/configs/sweeps/table1_small.yaml`` (3 latents x 3 seeds of pre-training, then
scratch / SkeletonMAE / MVAE / MVQVAE fine-tuned on 100 % of the labels) and ``table2_small.yaml``
(the same pre-trainings, adopted, fine-tuned on 10 %). Finished runs are skipped, interrupted ones
resumed from their ``last.pt``; the sweep files hold every setting.

``report`` aggregates the runs' ``metrics.json`` files (mean and sample std over the seeds present),
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
import sys
from pathlib import Path

import numpy as np
from _common import ROOT, replace_block, run_commands, shown
RUNS = ROOT / "runs" / "sweeps" / "msr"
RESULTS = ROOT / "RESULTS.md"
BEGIN, END = "<!-- msr:begin -->", "<!-- msr:end -->"
CONFIGS = [ROOT / "notebooks" / "configs" / "sweeps" / f"table{k}_small.yaml" for k in (1, 2)]

SEEDS = (0, 1, 2)
LATENTS = ("none", "vae", "vq")  # SkeletonMAE, SkeletonMVAE, SkeletonMVQVAE
NAMES = {"scratch": "scratch (no pre-training)", "none": "SkeletonMAE (latent none)",
         "vae": "SkeletonMVAE (latent vae)", "vq": "SkeletonMVQVAE (latent vq)"}
FRACTIONS = {"full": 1.0, "10pct": 0.1}
TAGS = {"full": "finetune-100pct", "10pct": "finetune-10pct"}  # the sweep's fine-tune folders


def run_dir(stage: str, init: str, seed: int, frac: str = "full") -> Path:
    """A run's folder in the sweep: ``points/<init>-seed<s>/pretrain`` or ``.../finetune-<pct>``."""
    point = RUNS / "points" / f"{init}-seed{seed}"
    return point / ("pretrain" if stage == "pretrain" else TAGS[frac])


def commands(workers: int) -> list[list[str]]:
    return [[sys.executable, "-m", "skel", "sweep", str(c), "--out", str(RUNS), "--workers", str(workers), "--quiet"]
            for c in CONFIGS]


def finished(out: Path) -> bool:
    """The run wrote its final summary (metrics.json is rewritten every epoch; the summary comes last)."""
    path = out / "metrics.json"
    if not path.exists():
        return False
    try:
        return "best_epoch" in json.loads(path.read_text())
    except json.JSONDecodeError:
        return False


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
    """``{"pretrain/<latent>/s<seed>" | "finetune/<init>/<frac>/s<seed>": metrics.json + time_s}`` of finished runs."""
    runs = {}
    keys = [(f"pretrain/{lat}/s{s}", run_dir("pretrain", lat, s)) for s in SEEDS for lat in LATENTS]
    keys += [(f"finetune/{init}/{frac}/s{s}", run_dir("finetune", init, s, frac))
             for s in SEEDS for init in ("scratch", *LATENTS) for frac in FRACTIONS]
    for key, out in keys:
        if finished(out):
            m = json.loads((out / "metrics.json").read_text())
            m["wall_s"] = sum(r.get("epoch_time_s", 0.0) for r in m["epochs"])  # training time, evaluation included
            runs[key] = m
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
              "| latent | seeds | train loss | val loss | val recon | extra | time per run (s) |",
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

    lines += ["", "### Training time per run (s, mean over the runs present; evaluation included)", "",
              "| run | labels | time (s) |", "|---|---|---|"]
    for frac, label in (("full", "100 %"), ("10pct", "10 %")):
        for init in ("scratch", *LATENTS):
            ms = [runs[k] for s in SEEDS if (k := f"finetune/{init}/{frac}/s{s}") in runs]
            lines.append(f"| fine-tune {init} | {label} | {_mean_wall(ms)} |")
    total = sum(m["wall_s"] or 0.0 for m in runs.values())
    sizes = next((m["samples"] for k, m in runs.items() if k.startswith("finetune/scratch/full")), None)
    sizes10 = next((m["samples"] for k, m in runs.items() if k.startswith("finetune/scratch/10pct")), None)
    expected = len(SEEDS) * (len(LATENTS) + (1 + len(LATENTS)) * len(FRACTIONS))
    lines += ["", f"Runs finished: {len(runs)} of {expected}; summed training time {total / 60:.1f} min "
              f"(two sweep workers side by side, one torch thread each).",
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
    replace_block(RESULTS, BEGIN, END, render(runs, ridge))
    print(f"wrote {RESULTS} ({len(runs)} runs)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the Table 1 and Table 2 sweeps (resumable)")
    r.add_argument("--workers", type=int, default=2, help="sweep workers side by side (default 2)")
    c = sub.add_parser("commands", help="print the sweep commands")
    c.add_argument("--workers", type=int, default=2)
    sub.add_parser("report", help="ridge baseline + tables into RESULTS.md")
    args = p.parse_args()
    if args.cmd == "run":
        return run_commands(commands(args.workers))
    if args.cmd == "commands":
        for argv in commands(args.workers):
            print(shlex.join(shown(argv)))
        return 0
    write_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
