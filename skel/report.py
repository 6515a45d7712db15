"""Tables and figures for the experiment notebooks (``05``-``07``) and ``python -m skel run-all``.

The notebooks write small summary files into the run folder ``OUT``; :func:`collect_results`
reads them back and :func:`results_markdown` renders the comparison a reader came for:

* ``OUT/pretrain/summary.json``  (05): per latent, the final losses, time, perplexity and the
  model's resolved options (``model_config``: ``loss_reduction``, ``target``, ...);
* ``OUT/finetune/summary.json``  (06): per (init, label fraction), accuracy at the best
  validation epoch and at the last epoch;
* ``OUT/probe/summary.json``     (07): per init, linear-probe and kNN accuracy;
* ``OUT/cost.json``              (07): per model, parameters, FLOPs, pre-training time.

Plots return a ``matplotlib.figure.Figure``; the notebooks show them and :func:`save_figure`
writes PNGs. Feature maps use PCA computed in torch (:func:`pca_2d`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

MODEL_NAMES = {"none": "SkeletonMAE", "vae": "SkeletonMVAE", "vq": "SkeletonMVQVAE", "scratch": "scratch"}
# Reading order of the rows: the baseline first, then the paper's two models, then no pre-training.
MODEL_ORDER = ("none", "vae", "vq", "scratch")


# One colour per model in every figure skel draws (matplotlib's default cycle for the three
# pre-training latents, grey for the encoder trained without pre-training).
MODEL_COLORS = {"none": "C0", "vae": "C1", "vq": "C2", "scratch": "0.6"}
# For any other name: the rest of the default cycle, chosen from the name (the same every time).
_SPARE_COLORS = ("C3", "C4", "C5", "C6", "C7", "C8", "C9")


def model_color(key: str, taken: Iterable[str] = ()) -> str:
    """The colour of model ``key`` (``"vae"`` or its name ``"SkeletonMVAE"``) in every figure.

    A name not in :data:`MODEL_COLORS` gets a spare colour picked from a checksum of the name,
    the next free one if it is in ``taken`` (the colours already used in the figure).
    """
    by_name = {v: k for k, v in MODEL_NAMES.items()}
    key = by_name.get(key, key)
    if key in MODEL_COLORS:
        return MODEL_COLORS[key]
    import zlib

    taken = set(taken)
    start = zlib.crc32(str(key).encode()) % len(_SPARE_COLORS)
    spare = [_SPARE_COLORS[(start + i) % len(_SPARE_COLORS)] for i in range(len(_SPARE_COLORS))]
    return next((c for c in spare if c not in taken), spare[0])


def model_name(key: str) -> str:
    """``"vae"`` -> ``"SkeletonMVAE"``; ``"scratch"`` for the encoder trained without pre-training."""
    return MODEL_NAMES.get(key, key)


def fraction_label(fraction: float) -> str:
    """``0.05`` -> ``"5%"``, ``1.0`` -> ``"100%"``."""
    return f"{fraction * 100:g}%"


def fraction_tag(fraction: float) -> str:
    """A folder-safe tag: ``0.05`` -> ``"5pct"``, ``0.125`` -> ``"12.5pct"``."""
    return f"{fraction * 100:g}pct"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: Sequence[str] | None = None) -> str:
    """A GitHub markdown table. ``align`` per column: ``"l"`` or ``"r"`` (default: first l, rest r)."""
    header = [str(h) for h in header]
    rows = [[_cell(v) for v in row] for row in rows]
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"row {i} has {len(row)} cells, the header {len(header)}")
    align = list(align) if align else ["l"] + ["r"] * (len(header) - 1)
    rule = [":---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


# ---------------------------------------------------------------------------------------------
# Results files


def shipped_folder(name: str, what: str = "the figures show this run only") -> Path | None:
    """A finished run's small result files shipped with the repository: ``notebooks/assets/NAME``
    (``scripts/ship_results.py main-job`` writes ``notebooks/assets/main_job``) or an absolute path.

    None, after a one-line note naming the folder and ``what`` follows, when ``name`` is empty or
    the folder lacks ``finetune/summary.json`` (notebooks 06 and 07 draw it beside their own run).
    """
    from skel.utils import repo_root

    if not name:
        return None
    path = Path(name).expanduser()
    folder = path if path.is_absolute() else repo_root() / "notebooks" / "assets" / path
    if not (folder / "finetune" / "summary.json").is_file():
        print(f"note: no shipped results in {folder if path.is_absolute() else 'notebooks/assets/' + name} "
              f"(finetune/summary.json is missing): {what}")
        return None
    return folder


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def collect_results(out: str | Path) -> dict[str, Any]:
    """Everything the notebooks summarised in ``out``; a missing file gives an empty section."""
    out = Path(out)
    return {
        "out": str(out),
        "pretrain": _read_json(out / "pretrain" / "summary.json") or [],
        "finetune": _read_json(out / "finetune" / "summary.json") or [],
        "probe": _read_json(out / "probe" / "summary.json") or [],
        "cost": _read_json(out / "cost.json") or [],
    }


def _ordered(keys: Iterable[str]) -> list[str]:
    keys = list(dict.fromkeys(keys))
    return [k for k in MODEL_ORDER if k in keys] + [k for k in keys if k not in MODEL_ORDER]


def accuracy_table(finetune: list[dict], probe: list[dict] | None = None, key: str = "test_acc") -> str:
    """The paper's Tables 1-2 in one: test accuracy (%) per model and label fraction.

    ``finetune`` rows hold ``init`` (``none``/``vae``/``vq``/``scratch``), ``label_fraction``
    and ``key`` (a fraction in [0, 1]); ``probe`` rows add linear-probe and kNN columns.
    """
    fractions = sorted({r["label_fraction"] for r in finetune}, reverse=True)
    by = {(r["init"], r["label_fraction"]): r for r in finetune}
    probes = {r["init"]: r for r in (probe or [])}
    inits = _ordered([r["init"] for r in finetune] + list(probes))
    header = ["model"] + [f"fine-tune {fraction_label(f)}" for f in fractions]
    if probes:
        header += ["linear probe", "kNN"]
    rows = []
    for init in inits:
        row: list[Any] = [model_name(init)]
        row += [_pct(by.get((init, f), {}).get(key)) for f in fractions]
        if probes:
            p = probes.get(init, {})
            row += [_pct(p.get("linear_acc")), _pct(p.get("knn_acc"))]
        rows.append(row)
    return markdown_table(header, rows)


def _pct(v: float | None) -> float | None:
    return None if v is None else 100.0 * float(v)


def cost_table(cost: list[dict], times: bool = True) -> str:
    """Parameters (M), GFLOPs per sample and (``times``) pre-training time per model (the paper's Table 8)."""
    rows = []
    for r in sorted(cost, key=lambda r: _ordered([c["latent"] for c in cost]).index(r["latent"])):
        rows.append([
            model_name(r["latent"]),
            f"{r['params'] / 1e6:.3f}", f"{r['encoder_params'] / 1e6:.3f}",
            f"{r['gflops']:.3f}",
        ] + ([f"{r['pretrain_seconds']:.0f}" if r.get("pretrain_seconds") is not None else "-"] if times else []))
    header = ["model", "params (M)", "encoder params (M)", "GFLOPs / sample"] + (["pre-training (s)"] if times else [])
    return markdown_table(header, rows)


def results_markdown(results: dict[str, Any], times: bool = True) -> str:
    """The run's results as markdown: accuracy table, then cost; sections with no data say so.

    ``times=False`` leaves out the measured times (for stored notebook outputs, which must not vary).
    """
    parts = ["## Results", ""]
    if results.get("finetune"):
        which = ("at their best validation epoch" if results["finetune"][0].get("report_epoch", "best") == "best"
                 else "at their last epoch")
        parts += [f"Test accuracy (%), fine-tuned models {which}; "
                  "linear probe and kNN on frozen encoder features (scratch: a random encoder).", "",
                  accuracy_table(results["finetune"], results.get("probe")), ""]
    else:
        parts += ["(no fine-tuning results: notebook 06 has not run into this folder)", ""]
    if results.get("cost"):
        parts += ["Cost of the pre-training models (FLOPs of one forward pass on one sample).", "",
                  cost_table(results["cost"], times), ""]
    run = results.get("run")
    if run and times:
        p = run.get("parameters", {})
        shown = ", ".join(f"{k}={p[k]}" for k in ("dataset", "preset", "epochs", "finetune_epochs", "seed") if k in p)
        parts += [f"Run: {shown}; {run['total_seconds'] / 60:.1f} min in all."]
    return "\n".join(parts).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# Numbers behind the figures


def confusion_matrix(pred, target, num_classes: int):
    """``(K, K)`` int64 counts, row = true class, column = predicted class. ``pred, target: (N,)``."""
    import torch

    pred = torch.as_tensor(pred).long().reshape(-1)
    target = torch.as_tensor(target).long().reshape(-1)
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    index = target * num_classes + pred
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def pca_2d(features):
    """Project ``features: (N, D)`` onto their two leading principal axes -> ``(N, 2)`` float32.

    Centred, exact SVD in float64; each axis' sign is fixed so that its largest loading is
    positive (an SVD's signs are otherwise arbitrary, and the map would flip between machines).
    """
    import torch

    x = torch.as_tensor(features).double()
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"pca_2d expects (N >= 2, D) features, got {tuple(x.shape)}")
    x = x - x.mean(dim=0, keepdim=True)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    axes = vh[:2]  # (2, D)
    signs = torch.sign(axes.gather(1, axes.abs().argmax(dim=1, keepdim=True)))
    axes = axes * signs
    return (x @ axes.T).float()


# ---------------------------------------------------------------------------------------------
# Figures


def plot_curves(histories: dict[str, list[dict]], keys: Sequence[str], title: str = "", logy: bool = False):
    """One panel per metric in ``keys``, one line per run. ``histories[name]`` are epoch rows
    (``{"epoch": 1, "train_loss": ...}``) as in ``metrics.json``; a run without a key is skipped.

    Each model keeps its colour (:func:`model_color`) in every panel, also one where only some
    models have the metric (the VAE's KL); one legend for the figure names every model drawn."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8), squeeze=False, layout="constrained")
    names = _ordered(histories)
    colors: dict[str, str] = {}
    for name in names:
        colors[name] = model_color(name, taken=colors.values())
    handles: dict[str, Any] = {}
    for ax, key in zip(axes[0], keys):
        for name in names:
            rows = histories[name]
            pts = [(r["epoch"], r[key]) for r in rows if r.get(key) is not None and np.isfinite(r[key])]
            if pts:
                (line,) = ax.plot(*zip(*pts), marker="o", ms=3, color=colors[name], label=model_name(name))
                handles.setdefault(name, line)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        if logy:
            ax.set_yscale("log")
    if handles:
        drawn = [n for n in names if n in handles]
        fig.legend([handles[n] for n in drawn], [model_name(n) for n in drawn], loc="outside right upper",
                   fontsize=7, frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def plot_accuracy_bars(finetune: list[dict], key: str = "test_acc", title: str = ""):
    """Grouped bars: test accuracy (%) per label fraction (groups) and model (bars)."""
    import matplotlib.pyplot as plt

    fractions = sorted({r["label_fraction"] for r in finetune}, reverse=True)
    inits = _ordered([r["init"] for r in finetune])
    by = {(r["init"], r["label_fraction"]): r[key] for r in finetune}
    width = 0.8 / len(inits)
    used: list[str] = []
    fig, ax = plt.subplots(figsize=(1.2 + 1.3 * len(fractions), 2.8))
    for i, init in enumerate(inits):
        xs = [j + (i - (len(inits) - 1) / 2) * width for j in range(len(fractions))]
        ys = [100 * by.get((init, f), np.nan) for f in fractions]
        used.append(model_color(init, taken=used))
        ax.bar(xs, ys, width, label=model_name(init), color=used[-1])
    ax.set_xticks(range(len(fractions)), [f"{fraction_label(f)} labels" for f in fractions])
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7, loc="lower right")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_confusion(cm, class_names: Sequence[str] | None = None, title: str = ""):
    """Row-normalised confusion matrix (``cm: (K, K)`` counts, rows = true class)."""
    import matplotlib.pyplot as plt

    cm = np.asarray(cm, dtype=np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    k = cm.shape[0]
    size = min(2.5 + 0.25 * k, 8)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if class_names is not None and k <= 30:
        ax.set_xticks(range(k), [str(c)[:14] for c in class_names], rotation=90, fontsize=6)
        ax.set_yticks(range(k), [str(c)[:14] for c in class_names], fontsize=6)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_feature_maps(maps: dict[str, tuple[Any, Any]], class_names: Sequence[str] | None = None, title: str = ""):
    """One scatter per model: ``maps[name] = (xy (N, 2), labels (N,))``, points coloured by class."""
    import matplotlib.pyplot as plt

    n = len(maps)
    fig, axes = plt.subplots(1, n, figsize=(2.8 * n, 2.9), squeeze=False)
    cmap = plt.get_cmap("tab20" if class_names is None or len(class_names) > 10 else "tab10")
    for ax, (name, (xy, labels)) in zip(axes[0], maps.items()):
        xy = np.asarray(xy)
        labels = np.asarray(labels)
        ax.scatter(xy[:, 0], xy[:, 1], c=labels % cmap.N, cmap=cmap, vmin=0, vmax=cmap.N - 1, s=6)
        ax.set_title(model_name(name))
        ax.set_xticks([])
        ax.set_yticks([])
    if class_names is not None and len(class_names) <= 12:
        handles = [plt.Line2D([], [], ls="", marker="o", ms=4, color=cmap(i % cmap.N)) for i in range(len(class_names))]
        fig.legend(handles, [str(c)[:16] for c in class_names], loc="center right", fontsize=6, frameon=False)
        fig.subplots_adjust(right=0.82)
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(top=0.8)
    return fig


def save_figure(fig, name: str, folders: Iterable[str | Path]) -> list[Path]:
    """Write ``fig`` as ``NAME.png`` into each folder (created); return the paths written."""
    from skel.utils import atomic_write_bytes
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=100, metadata={"Software": None})
    written = []
    for folder in folders:
        path = Path(folder) / f"{name}.png"
        atomic_write_bytes(path, buf.getvalue())
        written.append(path)
    return written
