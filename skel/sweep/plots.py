"""Figures of the paper's tables (drawn in ``notebooks/08_experiments.ipynb``); each returns a
``matplotlib.figure.Figure``.

* Error bars are the spread over seeds, the sample standard deviation the tables print after
  ``±``, clipped to what the quantity can take: an accuracy bar stops at 0 and 100 %, a time or
  a KL at 0 (:func:`error_bars`). Each figure says so in its title.
* The paper's number, where it gives one for that cell, is a black star; Table 3's heat map frames
  the paper's best cell (Mt = Mj = 0.4, :data:`skel.paper_numbers.ABLATION_BEST`) on any dataset.
* ``chance``: the accuracy of guessing, 100 / number of classes (:func:`chance_top1`), drawn as a
  dashed line on accuracy axes; below it a model has learnt nothing usable.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from skel import paper_numbers as paper
from skel.report import model_color
from skel.sweep.tables import LATENT_ORDER, MEAN, USE_LABELS, Cell, Table, label_of

SPREAD = "bars: ± sample std over seeds, clipped at 0"


def num_classes(dataset: str) -> int | None:
    """Classes of a dataset of :data:`skel.data.DATASETS` (None for a name it does not know)."""
    from skel.data.others import MSR_CLASSES, NW_UCLA_CLASSES, SBU_CLASSES, UTK_CLASSES
    from skel.data.synthetic import CLASS_NAMES

    known = {"synthetic": len(CLASS_NAMES), "msr-action3d": len(MSR_CLASSES), "nw-ucla": len(NW_UCLA_CLASSES),
             "utkinect": len(UTK_CLASSES), "sbu": len(SBU_CLASSES)}
    if dataset in known:
        return known[dataset]
    if dataset.startswith("ntu60"):
        return 60
    if dataset.startswith("ntu120"):
        return 120
    return None


def chance_top1(datasets: str | Sequence[str]) -> float | None:
    """Top-1 (%) of guessing one class, 100 / classes; for several datasets only when they agree."""
    counts = {num_classes(d) for d in ([datasets] if isinstance(datasets, str) else datasets)}
    return 100.0 / counts.pop() if len(counts) == 1 and None not in counts else None


def error_bars(cells: Sequence[Cell], low: float | None = 0.0, high: float | None = None) -> np.ndarray:
    """``(2, n)`` lower and upper bar lengths: the sample std (0 below two seeds), each side cut so
    that the bar stays within ``[low, high]`` (None: no bound on that side)."""
    bars = np.zeros((2, len(cells)))
    for i, c in enumerate(cells):
        spread, mean = c.spread or 0.0, c.mean
        if mean is None:
            continue
        bars[0, i] = spread if low is None else max(0.0, min(spread, mean - low))
        bars[1, i] = spread if high is None else max(0.0, min(spread, high - mean))
    return bars


def _chance_line(ax, chance: float | None) -> None:
    if chance is not None:
        ax.axhline(chance, color="k", ls="--", lw=1, label=f"chance {chance:.1f}%")


def plot_accuracy(table: Table, title: str = "", chance: float | None = None):
    """Tables 1 and 2: bars per column (dataset / label fraction), one per model."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(table.columns) + 2.0), 3.2))
    width = 0.8 / max(len(table.rows), 1)
    x = np.arange(len(table.columns))
    for i, row in enumerate(table.rows):
        cells = [table.cell(row, c) for c in table.columns]
        means = [c.mean if c.mean is not None else np.nan for c in cells]
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, means, width, yerr=error_bars(cells, 0.0, 100.0), capsize=2,
               label=" ".join(label_of(v) for v in row), color=model_color(row[-1]))
        papers = [c.paper if c.paper is not None else np.nan for c in cells]
        if not np.all(np.isnan(papers)):
            ax.plot(pos, papers, "k*", markersize=7, label="paper" if i == 0 else None)
    _chance_line(ax, chance)
    ax.set_xticks(x, [table.column_labels.get(c, label_of(c)) for c in table.columns])
    ax.set_ylabel("test top-1 (%)")
    ax.set_title((title or f"Table {table.number}") + f"\n{SPREAD}", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def plot_mask_heatmap(table: Table, title: str = "", chance: float | None = None):
    """Table 3: mean top-1 over frame mask rate Mt (rows) x joint mask rate Mj (columns), one panel
    per model, each cell's spread over seeds under its mean; a red frame on the paper's best cell
    (Mt = Mj = 0.4) where the grid has it, a star after a value the paper gives (NTU-60 x-sub only)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    groups: dict[tuple, list[tuple]] = {}
    for row in table.rows:
        if row[-1] != MEAN:  # the margins are in the markdown table, not the map
            groups.setdefault(row[:-1], []).append(row)
    columns = [c for c in table.columns if c != MEAN]
    fig, axes = plt.subplots(1, len(groups), figsize=(3.4 * len(groups), 3.0), squeeze=False)
    framed = False
    for ax, (group, rows) in zip(axes[0], groups.items()):
        grid = np.array([[table.cell(r, c).mean if table.cell(r, c).mean is not None else np.nan
                          for c in columns] for r in rows], dtype=float)
        im = ax.imshow(grid, cmap="viridis", aspect="auto")
        lo, hi = (np.nanmin(grid), np.nanmax(grid)) if np.isfinite(grid).any() else (0.0, 1.0)
        for i, r in enumerate(rows):
            for j, c in enumerate(columns):
                if not np.isnan(grid[i, j]):
                    cell = table.cell(r, c)
                    star = "*" if cell.paper is not None else ""
                    spread = f"\n± {cell.spread:.1f}" if cell.spread is not None else ""  # the noise, in sight
                    light = hi > lo and (grid[i, j] - lo) / (hi - lo) > 0.6  # viridis turns yellow: dark text
                    ax.text(j, i, f"{grid[i, j]:.1f}{star}{spread}", ha="center", va="center", fontsize=7,
                            color="k" if light else "w")
        best = paper.ABLATION_BEST["mask"].get(group[-1])
        if best is not None:
            (mt, mj), _ = best
            i = next((k for k, r in enumerate(rows) if r[-1] == mt), None)
            j = next((k for k, c in enumerate(columns) if c == mj), None)
            if i is not None and j is not None:
                ax.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, edgecolor="red", lw=2))
                framed = True
        ax.set_xticks(range(len(columns)), [label_of(c) for c in columns])
        ax.set_yticks(range(len(rows)), [label_of(r[-1]) for r in rows])
        ax.set_xlabel("joint mask rate Mj")
        ax.set_ylabel("frame mask rate Mt")
        ax.set_title(" ".join(label_of(v) for v in group), fontsize=9)
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label("top-1 (%)" + (f"; chance {chance:.1f}" if chance is not None else ""), fontsize=7)
    what = "mean ± sample std over seeds" + ("; red frame: the paper's best cell, Mt = Mj = 0.4" if framed else "")
    fig.suptitle((title or "Table 3: top-1 (%) vs mask rates") + f"\n({what})", fontsize=9)
    fig.tight_layout()
    return fig


def plot_axis(table: Table, title: str = "", chance: float | None = None):
    """Tables 4-7: accuracy vs the swept value, one line per model (log x for sizes spanning 4x or more);
    Tables 4 and 5 add a panel of the latent's use (KL, codebook perplexity, codes used) vs the same value."""
    import matplotlib.pyplot as plt

    use = [c for c in table.columns if c in USE_LABELS]
    panels = [[c for c in table.columns if c not in USE_LABELS]] + ([use] if use else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.1), squeeze=False)
    xs = [r[-1] for r in table.rows]
    for k, (ax, columns) in enumerate(zip(axes[0], panels)):
        for col in columns:
            cells = [table.cell(r, col) for r in table.rows]
            keep = [i for i, c in enumerate(cells) if c.mean is not None]
            bars = error_bars(cells, 0.0, 100.0 if k == 0 else None)[:, keep]
            ax.errorbar([xs[i] for i in keep], [cells[i].mean for i in keep], yerr=bars, marker="o", capsize=2,
                        label=USE_LABELS.get(col, label_of(col)),
                        color=model_color(col) if col in LATENT_ORDER else None)
            for x, c in zip(xs, cells):
                if c.paper is not None:
                    ax.plot([x], [c.paper], "k*", markersize=8)
        if k == 0:
            _chance_line(ax, chance)
        if xs and min(xs) > 0 and max(xs) / min(xs) >= 4:
            ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [label_of(x) for x in xs])
        ax.minorticks_off()
        ax.set_xlabel(table.row_header[-1])
        ax.legend(fontsize=7, frameon=False)
    axes[0][0].set_ylabel("test top-1 (%)")
    axes[0][0].set_title((title or f"Table {table.number}") + f"\n{SPREAD}", fontsize=9)
    if use:
        axes[0][1].set_title("the latent's use (validation, pre-training)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_cost(table: Table, title: str = ""):
    """Table 8: parameters, forward GFLOPs per sample and pre-training time per model (only the
    time varies over seeds: its bars are the spread, clipped at 0)."""
    import matplotlib.pyplot as plt

    panels: list[tuple[str, str]] = [("params_M", "parameters (M)"), ("gflops", "GFLOPs / sample"),
                                     ("time_s", "pre-training time (s)")]
    fig, axes = plt.subplots(1, 3, figsize=(9.0, 2.9))
    labels = [" ".join(label_of(v) for v in r) for r in table.rows]
    colors: list[Any] = [model_color(r[-1]) for r in table.rows]
    for ax, (col, name) in zip(axes, panels):
        cells = [table.cell(r, col) for r in table.rows]
        spread = any(c.spread for c in cells)  # parameters and FLOPs: one value per model, no bar
        ax.bar(range(len(cells)), [c.mean if c.mean is not None else np.nan for c in cells],
               yerr=error_bars(cells, 0.0) if spread else None, capsize=2, color=colors)
        ax.set_xticks(range(len(cells)), labels, rotation=20, ha="right", fontsize=7)
        ax.set_title(name, fontsize=9)
    fig.suptitle((title or "Table 8: cost of the three models")
                 + "\n(error bars on the time: ± sample std over seeds, clipped at 0)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_table(table: Table, title: str = "", chance: float | None = None):
    """The figure that fits ``table`` (by its number); ``chance``: top-1 (%) of guessing, or None."""
    if table.number in (1, 2):
        return plot_accuracy(table, title, chance)
    if table.number == 3:
        return plot_mask_heatmap(table, title, chance)
    if table.number == 8:
        return plot_cost(table, title)
    return plot_axis(table, title, chance)


def plot_variants(rows: list[dict], metric: str = "best", fields: Sequence[str] | None = None,
                  title: str = "", chance: float | None = None):
    """:func:`skel.sweep.tables.variants_table` as bars: one group per model x variant, one bar per
    label fraction (mean top-1 over seeds, clipped std bars), the chance line across."""
    import matplotlib.pyplot as plt

    from skel.sweep.tables import VARIANT_FIELDS, _sort_key, _value

    fields = VARIANT_FIELDS if fields is None else fields
    selected = [r for r in rows if r.get("latent") in LATENT_ORDER and r.get("label_fraction") is not None]
    varied = [f for f in fields if len({str(r.get(f)) for r in selected}) > 1]
    fractions = sorted({r["label_fraction"] for r in selected}, reverse=True)
    groups: dict[tuple, dict[float, Cell]] = {}
    for r in selected:
        key = (r["latent"], tuple(r.get(f) for f in varied))
        cell = groups.setdefault(key, {}).setdefault(r["label_fraction"], Cell())
        v = _value(r, metric)
        if r["status"] == "done" and v is not None:
            cell.values.append(v)
    keys = sorted(groups, key=lambda k: (LATENT_ORDER.index(k[0]), tuple(_sort_key(v) for v in k[1])))
    # horizontal bars, first variant on top: the variant names are long
    fig, ax = plt.subplots(figsize=(8.0, 0.8 + 0.3 * len(keys) * max(len(fractions), 1)))
    height = 0.8 / max(len(fractions), 1)
    y = np.arange(len(keys))[::-1]
    for i, f in enumerate(fractions):
        cells = [groups[k].get(f, Cell()) for k in keys]
        ax.barh(y + 0.4 - height * (i + 0.5), [c.mean if c.mean is not None else np.nan for c in cells], height,
                xerr=error_bars(cells, 0.0, 100.0), capsize=2, label=f"{f * 100:g} % labels",
                color=[model_color(k[0]) for k in keys], alpha=1.0 - 0.45 * i, edgecolor="k", linewidth=0.3)
    if chance is not None:
        ax.axvline(chance, color="k", ls="--", lw=1, label=f"chance {chance:.1f}%")
    names = [label_of(lat) + ": "
             + (", ".join(f"{f} {label_of(v)}" for f, v in zip(varied, var) if v is not None) or "-")
             for lat, var in keys]
    ax.set_yticks(y, names, fontsize=7)
    ax.set_xlabel(f"test top-1 (%, {'best-validation' if metric == 'best' else 'last'} epoch)")
    ax.set_title((title or "variants of each model") + f"; {SPREAD}", fontsize=9)
    from matplotlib.patches import Patch

    # the bars take their model's colour; the shade tells the label fraction
    handles = [Patch(facecolor="grey", alpha=1.0 - 0.45 * i, edgecolor="k", linewidth=0.3,
                     label=f"{f * 100:g} % labels") for i, f in enumerate(fractions)]
    handles += [h for h in ax.get_legend_handles_labels()[0] if h.get_label().startswith("chance")]
    ax.legend(handles=handles, fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig
