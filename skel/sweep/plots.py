"""Figures of the paper's tables (drawn in ``notebooks/08_experiments.ipynb``); each returns a
``matplotlib.figure.Figure``. Error bars are the spread over seeds (sample standard deviation);
the paper's number, where it gives one, is a black star."""

from __future__ import annotations

from typing import Any

import numpy as np

from skel.sweep.tables import MEAN, USE_LABELS, Table, label_of


def _errors(cells) -> list[float]:
    return [c.spread or 0.0 for c in cells]


def plot_accuracy(table: Table, title: str = ""):
    """Tables 1 and 2: bars per column (dataset / label fraction), one per model."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(table.columns) + 2.0), 3.2))
    width = 0.8 / max(len(table.rows), 1)
    x = np.arange(len(table.columns))
    for i, row in enumerate(table.rows):
        cells = [table.cell(row, c) for c in table.columns]
        means = [c.mean if c.mean is not None else np.nan for c in cells]
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, means, width, yerr=_errors(cells), capsize=2, label=" ".join(label_of(v) for v in row))
        papers = [c.paper if c.paper is not None else np.nan for c in cells]
        if not np.all(np.isnan(papers)):
            ax.plot(pos, papers, "k*", markersize=7, label="paper" if i == 0 else None)
    ax.set_xticks(x, [table.column_labels.get(c, label_of(c)) for c in table.columns])
    ax.set_ylabel("test top-1 (%)")
    ax.set_title(title or f"Table {table.number}")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def plot_mask_heatmap(table: Table, title: str = ""):
    """Table 3: accuracy over frame mask rate Mt (rows) x joint mask rate Mj (columns), one panel per model."""
    import matplotlib.pyplot as plt

    groups: dict[tuple, list[tuple]] = {}
    for row in table.rows:
        if row[-1] != MEAN:  # the margins are in the markdown table, not the map
            groups.setdefault(row[:-1], []).append(row)
    columns = [c for c in table.columns if c != MEAN]
    fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups), 2.9), squeeze=False)
    for ax, (group, rows) in zip(axes[0], groups.items()):
        grid = np.array([[table.cell(r, c).mean if table.cell(r, c).mean is not None else np.nan
                          for c in columns] for r in rows], dtype=float)
        im = ax.imshow(grid, cmap="viridis", aspect="auto")
        for i, r in enumerate(rows):
            for j, c in enumerate(columns):
                if not np.isnan(grid[i, j]):
                    star = "*" if table.cell(r, c).paper is not None else ""
                    ax.text(j, i, f"{grid[i, j]:.1f}{star}", ha="center", va="center", color="w", fontsize=8)
        ax.set_xticks(range(len(columns)), [label_of(c) for c in columns])
        ax.set_yticks(range(len(rows)), [label_of(r[-1]) for r in rows])
        ax.set_xlabel("joint mask rate Mj")
        ax.set_ylabel("frame mask rate Mt")
        ax.set_title(" ".join(label_of(v) for v in group))
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title or "Table 3: top-1 (%) vs mask rates (* the paper's best cell)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_axis(table: Table, title: str = ""):
    """Tables 4-7: accuracy vs the swept value, one line per model (log x for sizes spanning 4x or more);
    Tables 4 and 5 add a panel of the latent's use (KL, codebook perplexity, codes used) vs the same value."""
    import matplotlib.pyplot as plt

    use = [c for c in table.columns if c in USE_LABELS]
    panels = [[c for c in table.columns if c not in USE_LABELS]] + ([use] if use else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.0), squeeze=False)
    xs = [r[-1] for r in table.rows]
    for ax, columns in zip(axes[0], panels):
        for col in columns:
            cells = [table.cell(r, col) for r in table.rows]
            keep = [i for i, c in enumerate(cells) if c.mean is not None]
            ax.errorbar([xs[i] for i in keep], [cells[i].mean for i in keep], yerr=[_errors(cells)[i] for i in keep],
                        marker="o", capsize=2, label=USE_LABELS.get(col, label_of(col)))
            for x, c in zip(xs, cells):
                if c.paper is not None:
                    ax.plot([x], [c.paper], "k*", markersize=8)
        if xs and min(xs) > 0 and max(xs) / min(xs) >= 4:
            ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [label_of(x) for x in xs])
        ax.minorticks_off()
        ax.set_xlabel(table.row_header[-1])
        ax.legend(fontsize=7, frameon=False)
    axes[0][0].set_ylabel("test top-1 (%)")
    axes[0][0].set_title(title or f"Table {table.number}")
    if use:
        axes[0][1].set_title("the latent's use (validation, pre-training)")
    fig.tight_layout()
    return fig


def plot_cost(table: Table, title: str = ""):
    """Table 8: parameters, forward GFLOPs per sample and pre-training time per model."""
    import matplotlib.pyplot as plt

    panels: list[tuple[str, str]] = [("params_M", "parameters (M)"), ("gflops", "GFLOPs / sample"),
                                     ("time_s", "pre-training time (s)")]
    fig, axes = plt.subplots(1, 3, figsize=(9.0, 2.8))
    labels = [" ".join(label_of(v) for v in r) for r in table.rows]
    colors: list[Any] = [f"C{i}" for i in range(len(table.rows))]
    for ax, (col, name) in zip(axes, panels):
        cells = [table.cell(r, col) for r in table.rows]
        ax.bar(range(len(cells)), [c.mean if c.mean is not None else np.nan for c in cells], yerr=_errors(cells),
               capsize=2, color=colors)
        ax.set_xticks(range(len(cells)), labels, rotation=20, ha="right", fontsize=7)
        ax.set_title(name)
    fig.suptitle(title or "Table 8: cost of the three models", fontsize=9)
    fig.tight_layout()
    return fig


def plot_table(table: Table, title: str = ""):
    """The figure that fits ``table`` (by its number)."""
    if table.number in (1, 2):
        return plot_accuracy(table, title)
    if table.number == 3:
        return plot_mask_heatmap(table, title)
    if table.number == 8:
        return plot_cost(table, title)
    return plot_axis(table, title)
