"""The paper's Tables 1-8 from a sweep's result rows (:func:`skel.sweep.runner.load_results`),
with the paper's numbers beside ours (:mod:`skel.paper_numbers`); drawn in ``notebooks/08_experiments.ipynb``.

A cell is the mean over seeds of the fine-tuned test top-1 (%), ``± `` the sample standard
deviation (n - 1 in the denominator) when there are two seeds or more; ``[paper X]`` where the
paper gives that cell. Which rows a table takes:

* **Table 1**: all labels (``label_fraction`` 1); rows = model (SkeletonMAE, MVAE, MVQVAE,
  scratch), columns = dataset.
* **Table 2**: fewer labels (``label_fraction`` < 1); columns = dataset x fraction; each cell also
  shows its gain over SkeletonMAE in the same column.
* **Tables 3-7**: all labels; rows = the swept value(s), columns = Mj (Table 3) or the model.
  Table 3 also has margins (:data:`MEAN`): a column of each Mt row's mean over Mj and a row of
  each Mj column's mean over Mt, averaged per seed first so their spread is over seeds too, and
  its note names each seed's best cell: at a few seeds the margins say more than one cell does.
* **Tables 4 and 5** also show how much the latent is used (:data:`LATENT_USE`): SkeletonMVAE's
  validation KL, SkeletonMVQVAE's codebook perplexity and codes used per batch, at the pre-training
  checkpoint the fine-tune started from (mean ± spread over seeds). A latent dimension or a
  codebook size can only matter when the latent is used: the paper's tables do not show these.
* **Table 8**: per model, parameters, forward GFLOPs per sample and pre-training time, and their
  change relative to SkeletonMAE beside the paper's.

A result belongs to a table when the grid that produced it varied none of the ablation axes
(:data:`AXES`) other than the table's own: a Table 5 sweep's ``K: 32`` point stays out of Table 3
even when both live in one sweep folder. Any other key the grid varied (``lr``, ``epochs``, ...)
must be the same within a cell, else :class:`~skel.sweep.grid.SweepError` asks for ``where``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from skel import paper_numbers as paper
from skel.report import markdown_table, model_name
from skel.sweep.grid import SweepError

MEAN = "mean"  # Table 3's margin row and column
AXES = ("mask_frames", "mask_joints", "latent_dim", "codebook_size", "decoder_dim", "decoder_depth")
OUTER = ("latent", "seed", "dataset", "label_fraction")
LATENT_ORDER = ("none", "vae", "vq", "scratch")
TITLES = {
    1: "Fine-tuning top-1 (%) with all labels",
    2: "Semi-supervised fine-tuning top-1 (%)",
    3: "Mask rates: frames Mt (rows) x joints Mj (columns), top-1 (%)",
    4: "Latent dimension of SkeletonMVAE, top-1 (%)",
    5: "Codebook size K of SkeletonMVQVAE, top-1 (%)",
    6: "Decoder embedding dimension, top-1 (%)",
    7: "Decoder depth (blocks + final linear layer), top-1 (%)",
    8: "Parameters, FLOPs and pre-training time",
}
TABLE_AXES = {3: ("mask_frames", "mask_joints"), 4: ("latent_dim",), 5: ("codebook_size",), 6: ("decoder_dim",),
              7: ("decoder_depth",)}
# the latent-use columns of Tables 4 and 5 (result columns, see skel.sweep.runner.LATENT_STATS)
LATENT_USE = {4: ("latent_kl",), 5: ("latent_perplexity", "latent_codes")}
USE_LABELS = {"latent_kl": "val KL (nats / token with mean, / sample with sum)", "latent_perplexity": "val codebook perplexity",
              "latent_codes": "val codes used / batch"}
USE_FMT = {"latent_kl": ".3g", "latent_perplexity": ".2f", "latent_codes": ".1f"}  # a KL can be 0.0005
AXIS_LABELS = {"mask_frames": "Mt", "mask_joints": "Mj", "latent_dim": "latent dim", "codebook_size": "K",
               "decoder_dim": "decoder dim", "decoder_depth": "decoder depth", "dataset": "dataset", "latent": "model"}


@dataclass
class Cell:
    """The values (one per seed) of one table cell, the failures, and the paper's number if any."""

    values: list[float] = field(default_factory=list)
    failed: int = 0
    paper: float | None = None
    fmt: str = ".1f"
    note: str = ""  # e.g. the gain over SkeletonMAE
    seeds: list[Any] = field(default_factory=list)  # the seed of each value, where the table records it

    @property
    def mean(self) -> float | None:
        return sum(self.values) / len(self.values) if self.values else None

    @property
    def spread(self) -> float | None:
        """Sample standard deviation over seeds (None below two values)."""
        if len(self.values) < 2:
            return None
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / (len(self.values) - 1))

    def text(self) -> str:
        if not self.values:
            text = f"failed ({self.failed})" if self.failed else "—"
        else:
            text = f"{self.mean:{self.fmt}}"
            if self.spread is not None:
                text += f" ± {self.spread:{self.fmt.lstrip('+')}}"
            if self.note:
                text += f" ({self.note})"
            if self.failed:
                text += f" ({self.failed} failed)"
        if self.paper is not None:
            text += f" [paper {self.paper:{self.fmt}}]"
        return text


@dataclass
class Table:
    """One table: ``cells[(row, column)]``; ``row`` is a tuple of values under ``row_header``."""

    number: int
    title: str
    row_header: list[str]
    columns: list[Any]
    rows: list[tuple]
    cells: dict[tuple[tuple, Any], Cell]
    note: str = ""
    column_labels: dict[Any, str] = field(default_factory=dict)

    def cell(self, row: tuple | Any, column: Any) -> Cell:
        return self.cells.get((row if isinstance(row, tuple) else (row,), column), Cell())

    def markdown(self) -> str:
        header = self.row_header + [self.column_labels.get(c, label_of(c)) for c in self.columns]
        body = [[label_of(v) for v in row] + [self.cell(row, c).text() for c in self.columns] for row in self.rows]
        lines = [f"**Table {self.number}.** {self.title}", "", markdown_table(header, body)]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)


def label_of(v: Any) -> str:
    if isinstance(v, str) and v in LATENT_ORDER:
        return model_name(v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _sort_key(v: Any) -> tuple:
    if isinstance(v, str) and v in LATENT_ORDER:
        return (0, LATENT_ORDER.index(v), "")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (1, float(v), "")
    if isinstance(v, str) and v in paper.BENCHMARKS:
        return (2, paper.BENCHMARKS.index(v), v)
    return (3, 0, str(v))


# ---- selecting rows -----------------------------------------------------------------------------
def _qualifying(row: dict[str, Any], axes: Sequence[str]) -> dict[str, Any] | None:
    """The first grid assignment of ``row`` that varies no ablation axis outside ``axes`` (None: none)."""
    grids = row.get("grids") or [{}]
    for a in grids:
        if not (set(a) & set(AXES)) - set(axes):
            return a
    return None


def _where(row: dict[str, Any], where: dict[str, Any]) -> bool:
    for k, v in where.items():
        if row.get(k) == v:
            continue
        if not any(a.get(k) == v for a in row.get("grids") or []):
            return False
    return True


def _select(rows, axes, where, keep: Callable[[dict], bool]) -> list[tuple[dict, dict]]:
    out = []
    for r in rows:
        a = _qualifying(r, axes)
        if a is not None and keep(r) and _where(r, where or {}):
            out.append((r, a))
    return out


def _value(row: dict[str, Any], metric: str) -> float | None:
    """Test top-1 (%) at the ``best``-validation or ``last`` epoch; any other ``metric`` is a result column."""
    if metric not in ("best", "last"):
        return row.get(metric)
    v = row.get("top1" if metric == "best" else "top1_last")
    return None if v is None else 100.0 * v


def _pivot(number: int, selected, row_fields: list[str], column: Callable[[dict], Any], metric: str,
           paper_of: Callable[[dict], float | None] | None = None, fmt: str = ".1f") -> Table:
    """Group ``selected`` (row, assignment) pairs into cells; check other varied keys agree per cell."""
    datasets = sorted({r["dataset"] for r, _ in selected}, key=_sort_key)
    fields = (["dataset"] if len(datasets) > 1 and "dataset" not in row_fields and number not in (1, 2) else []) + row_fields
    cells: dict[tuple[tuple, Any], Cell] = {}
    extras: dict[tuple[tuple, Any], set] = {}
    for r, a in selected:
        key = (tuple(r[f] for f in fields), column(r))
        cell = cells.setdefault(key, Cell(fmt=fmt))
        v = _value(r, metric)
        if r["status"] != "done":
            cell.failed += 1
        elif v is not None:  # a finished run without the value (a latent-use column of an old folder): blank
            cell.values.append(v)
            cell.seeds.append(r["seed"])
        if paper_of is not None and cell.paper is None:
            cell.paper = paper_of(r)
        other = {k: v for k, v in a.items() if k not in AXES and k not in OUTER}
        extras.setdefault(key, set()).add(json.dumps(other, sort_keys=True, default=str))
    for key, seen in extras.items():
        if len(seen) > 1:
            varied = sorted({k for s in seen for k in json.loads(s)})
            raise SweepError(f"Table {number}: the cell {key} mixes results that differ in {', '.join(varied)}; "
                             f"pick one with where={{{varied[0]!r}: VALUE}}")
    rows = sorted({k[0] for k in cells}, key=lambda t: tuple(_sort_key(v) for v in t))
    columns = sorted({k[1] for k in cells}, key=_sort_key)
    return Table(number, TITLES[number], [AXIS_LABELS.get(f, f) for f in fields], columns, rows, cells,
                 paper.paper_note(number))


# ---- the tables ---------------------------------------------------------------------------------
def table1(rows: list[dict], metric: str = "best", where: dict | None = None) -> Table | None:
    """Rows: model; columns: dataset; all labels."""
    sel = _select(rows, (), where, lambda r: r["label_fraction"] == 1.0)
    if not sel:
        return None
    return _pivot(1, sel, ["latent"], lambda r: r["dataset"], metric,
                  lambda r: paper.paper_accuracy(1, r["latent"], r["dataset"]))


def table2(rows: list[dict], metric: str = "best", where: dict | None = None) -> Table | None:
    """Rows: model; columns: (dataset, label fraction) for fractions < 1; gain over SkeletonMAE in each cell."""
    sel = _select(rows, (), where, lambda r: r["label_fraction"] < 1.0)
    if not sel:
        return None
    t = _pivot(2, sel, ["latent"], lambda r: (r["dataset"], r["label_fraction"]), metric)
    t.columns = sorted(t.columns, key=lambda c: (_sort_key(c[0]), -c[1]))
    t.column_labels = {c: f"{c[0]} {c[1] * 100:g}%" for c in t.columns}
    for c in t.columns:
        base = t.cell(("none",), c).mean
        for row in t.rows:
            cell = t.cell(row, c)
            if base is not None and cell.mean is not None and row[-1] != "none":
                cell.note = f"{cell.mean - base:+.1f}"
    return t


def _ablation(number: int, rows: list[dict], metric: str, where: dict | None, latents: Sequence[str]) -> Table | None:
    axes = TABLE_AXES[number]
    sel = _select(rows, axes, where, lambda r: r["label_fraction"] == 1.0 and r["latent"] in latents)
    # a model swept at one setting only says nothing here (its default, from another table): leave it out
    swept = {lat for lat in latents if len({tuple(r[ax] for ax in axes) for r, _ in sel if r["latent"] == lat}) > 1}
    sel = [(r, a) for r, a in sel if r["latent"] in swept]
    if not sel:
        return None

    def paper_of(r):
        return paper.paper_accuracy(number, r["latent"], r["dataset"], **{ax: r[ax] for ax in axes})

    if number == 3:
        t = _pivot(3, sel, ["latent", "mask_frames"], lambda r: r["mask_joints"], metric, paper_of)
        _add_mask_margins(t)
        return t
    t = _pivot(number, sel, [axes[0]], lambda r: r["latent"], metric, paper_of)
    for key in LATENT_USE.get(number, ()):
        if any(r.get(key) is not None for r, _ in sel):  # sweep folders from before these columns lack them
            use = _pivot(number, sel, [axes[0]], lambda r, key=key: key, key, fmt=USE_FMT[key])
            t.cells.update(use.cells)
            t.columns.append(key)
            t.column_labels[key] = USE_LABELS[key]
    return t


def _add_mask_margins(t: Table) -> None:
    """Table 3's margins, per model (and dataset): for each seed that has every cell of a row (column),
    the row's mean over Mj (the column's mean over Mt), then mean ± spread over those seeds; the
    corner is each complete seed's mean over all cells. The note names each complete seed's best
    cell and ranks the least masking (the paper's best) among that seed's cells."""
    value: dict[tuple, dict[Any, float]] = {}  # (row, column) -> seed -> that seed's mean in the cell
    for key, cell in t.cells.items():
        by_seed: dict[Any, list[float]] = {}
        for s, v in zip(cell.seeds, cell.values):
            by_seed.setdefault(s, []).append(v)
        value[key] = {s: sum(vs) / len(vs) for s, vs in by_seed.items()}

    def complete(keys: list[tuple]) -> list:
        """The seeds that have a value in every one of ``keys``, in order."""
        return sorted(set.intersection(*(set(value.get(k, {})) for k in keys)), key=_sort_key)

    def margin(keys: list[tuple]) -> Cell:
        return Cell([sum(value[k][s] for k in keys) / len(keys) for s in complete(keys)])

    groups: dict[tuple, list[tuple]] = {}
    for row in t.rows:
        groups.setdefault(row[:-1], []).append(row)
    best, ranks = [], []
    for group, rows in groups.items():
        for row in rows:
            t.cells[(row, MEAN)] = margin([(row, c) for c in t.columns])
        for c in t.columns:
            t.cells[(group + (MEAN,), c)] = margin([(row, c) for row in rows])
        every = [(row, c) for row in rows for c in t.columns]
        t.cells[(group + (MEAN,), MEAN)] = margin(every)
        name = " ".join(label_of(v) for v in group)
        least = (group + (min(r[-1] for r in rows),), min(t.columns))  # the paper's best: the least masking
        rank = []
        for s in complete(every):
            top = max(value[k][s] for k in every)
            tops = [k for k in every if value[k][s] == top]
            best.append(f"{name} seed {s}: " + (f"Mt {label_of(tops[0][0][-1])} / Mj {label_of(tops[0][1])}"
                                               if len(tops) == 1 else f"{len(tops)} cells tied"))
            rank.append(str(1 + sum(value[k][s] > value[least][s] for k in every)))  # ties share a rank
        if rank:
            ranks.append(f"{name}: {', '.join(rank)} of {len(every)}")
    t.rows = [r for g in groups for r in groups[g] + [g + (MEAN,)]]
    t.columns = t.columns + [MEAN]
    t.column_labels[MEAN] = "mean over Mj"
    notes = ["The mean column / row: each seed's mean over Mj / Mt, then mean ± std over seeds (seeds "
             "that have every cell of it)."]
    if best:
        notes.append("Best cell per seed: " + "; ".join(best) + ". Rank of the least masking (the paper's "
                     "best) among each seed's cells: " + "; ".join(ranks) + ".")
    t.note = "\n\n".join(([t.note] if t.note else []) + notes)


def table3(rows, metric="best", where=None):
    """Per model, rows Mt x columns Mj."""
    return _ablation(3, rows, metric, where, ("none", "vae", "vq"))


def table4(rows, metric="best", where=None):
    """Rows: latent dimension (SkeletonMVAE)."""
    return _ablation(4, rows, metric, where, ("vae",))


def table5(rows, metric="best", where=None):
    """Rows: codebook size K (SkeletonMVQVAE)."""
    return _ablation(5, rows, metric, where, ("vq",))


def table6(rows, metric="best", where=None):
    """Rows: decoder dimension; columns: model."""
    return _ablation(6, rows, metric, where, ("none", "vae", "vq"))


def table7(rows, metric="best", where=None):
    """Rows: decoder depth; columns: model."""
    return _ablation(7, rows, metric, where, ("none", "vae", "vq"))


COST_COLUMNS = ("params_M", "delta_params_M", "gflops", "delta_gflops", "time_s", "delta_time_s",
                "paper_delta_params_M", "paper_delta_gflops", "paper_delta_hours")
COST_LABELS = {"params_M": "params (M)", "delta_params_M": "Δ params (M)", "gflops": "GFLOPs",
               "delta_gflops": "Δ GFLOPs", "time_s": "pre-training (s)", "delta_time_s": "Δ time (s)",
               "paper_delta_params_M": "paper Δ params (M)", "paper_delta_gflops": "paper Δ GFLOPs",
               "paper_delta_hours": "paper Δ time (h)"}


def table8(rows: list[dict], metric: str = "best", where: dict | None = None) -> Table | None:
    """Per model (default settings): parameters, forward GFLOPs per sample, pre-training time
    (mean ± spread over seeds), their change vs SkeletonMAE, and the paper's change."""
    del metric  # cost does not depend on the accuracy metric
    sel = _select(rows, (), where, lambda r: r["latent"] != "scratch" and r["params"] is not None)
    points = {}
    for r, a in sel:
        points.setdefault(r["point"], (r, a))
    if not points:
        return None
    datasets = sorted({r["dataset"] for r, _ in points.values()}, key=_sort_key)
    fields = (["dataset"] if len(datasets) > 1 else []) + ["latent"]
    cells: dict[tuple[tuple, Any], Cell] = {}
    for r, _ in points.values():
        row = tuple(r[f] for f in fields)
        # parameters and FLOPs are the same for every seed: one value; the time varies: one per seed
        cells.setdefault((row, "params_M"), Cell([r["params"] / 1e6], fmt=".2f"))
        cells.setdefault((row, "gflops"), Cell([r["gflops"]], fmt=".3g"))
        cells.setdefault((row, "time_s"), Cell(fmt=".3g")).values.append(r["pretrain_time_s"])
    table_rows = sorted({k[0] for k in cells}, key=lambda t: tuple(_sort_key(v) for v in t))
    for row in table_rows:
        base_row = row[:-1] + ("none",)
        for col, fmt in (("params_M", "+.2f"), ("gflops", "+.3g"), ("time_s", "+.3g")):
            ours, base = cells.get((row, col)), cells.get((base_row, col))
            if ours is not None and base is not None and row[-1] != "none":
                cells[(row, f"delta_{col}")] = Cell([ours.mean - base.mean], fmt=fmt)
        delta = paper.TABLE8_DELTA.get(row[-1])
        if delta and row[-1] != "none":
            cells[(row, "paper_delta_params_M")] = Cell([delta["params_M"]], fmt="+.1f")
            cells[(row, "paper_delta_gflops")] = Cell([delta["gflops"]], fmt="+.1f")
            cells[(row, "paper_delta_hours")] = Cell([delta["hours"]], fmt="+.0f")
    return Table(8, TITLES[8], [AXIS_LABELS[f] for f in fields], list(COST_COLUMNS), table_rows, cells,
                 paper.paper_note(8), dict(COST_LABELS))


BUILDERS: dict[int, Callable[..., Table | None]] = {1: table1, 2: table2, 3: table3, 4: table4, 5: table5,
                                                     6: table6, 7: table7, 8: table8}


def build_tables(rows: list[dict], metric: str = "best", where: dict | None = None) -> dict[int, Table]:
    """Every table the rows can fill, by number. ``metric``: ``best`` (test top-1 of the best
    validation epoch, the paper's protocol) or ``last`` (the last epoch); ``where``: ``{key: value}``
    filters (on a result column or a grid key)."""
    if metric not in ("best", "last"):
        raise ValueError(f"metric must be 'best' or 'last', got {metric!r}")
    tables = {}
    for number, build in BUILDERS.items():
        t = build(rows, metric, where)
        if t is not None:
            tables[number] = t
    return tables


def tables_markdown(rows: list[dict], metric: str = "best", where: dict | None = None) -> str:
    """All tables as markdown, one after the other (a table that cannot be built says why)."""
    parts = []
    for number, build in BUILDERS.items():
        try:
            t = build(rows, metric, where)
        except SweepError as err:
            parts.append(f"**Table {number}.** not drawn: {err}")
            continue
        if t is not None:
            parts.append(t.markdown())
    return "\n\n".join(parts) if parts else "(no finished results to tabulate)"


# ---- variants of one model side by side (issue 14) ---------------------------------------------
VARIANT_FIELDS = ("loss_reduction", "vae_mode", "skip_empty_persons", "rotate")
VARIANT_USE = {"vae": ("latent_kl",), "vq": ("latent_perplexity", "latent_codes")}
VARIANT_USE_LABELS = {"latent_kl": "val KL", "latent_perplexity": "val perplexity", "latent_codes": "val codes"}


def variants_table(rows: list[dict], metric: str = "best", where: dict | None = None,
                   fields: Sequence[str] = VARIANT_FIELDS) -> str:
    """Markdown: one line per model x variant (the values of ``fields`` the rows differ in), the
    fine-tuned test top-1 at each label fraction and the latent's use at the checkpoint fine-tuning
    started from (mean ± sample std over seeds; the seed count in the last column).

    Made for sweeps that switch a setting on and off for each model (``notebooks/configs/sweeps/
    fixes_small.yaml``): the paper preset before and after a fix, on the same seeds. A field
    that has one value in every selected row is left out of the variant's name. The KL is in the
    unit the run's ``loss_reduction`` reports (nats per token with ``mean``, per sample with ``sum``).
    """
    if metric not in ("best", "last"):
        raise ValueError(f"metric must be 'best' or 'last', got {metric!r}")
    selected = [r for r in rows if _where(r, where or {}) and r.get("latent") in LATENT_ORDER]
    if not selected:
        return "(no results to tabulate)"
    varied = [f for f in fields if len({json.dumps(r.get(f), default=str) for r in selected}) > 1]
    fractions = sorted({r["label_fraction"] for r in selected if r.get("label_fraction") is not None}, reverse=True)
    uses = [u for lat in ("vae", "vq") if any(r["latent"] == lat for r in selected) for u in VARIANT_USE[lat]]

    def variant(r):
        return tuple(r.get(f) for f in varied)

    groups: dict[tuple, list[dict]] = {}
    for r in selected:
        groups.setdefault((r["latent"], variant(r)), []).append(r)
    keys = sorted(groups, key=lambda k: (LATENT_ORDER.index(k[0]), tuple(_sort_key(v) for v in k[1])))
    header = ["model", "variant"] + [f"top-1, {f * 100:g} % labels" for f in fractions] \
        + [VARIANT_USE_LABELS[u] for u in uses] + ["seeds"]
    body = []
    for latent, var in keys:
        group = groups[(latent, var)]
        name = ", ".join(f"{f}={label_of(v)}" for f, v in zip(varied, var) if v is not None) or "-"
        line = [model_name(latent), name]
        for f in fractions:
            cell = Cell()
            for r in group:
                if r.get("label_fraction") != f:
                    continue
                v = _value(r, metric)
                if r["status"] != "done":
                    cell.failed += 1
                elif v is not None:
                    cell.values.append(v)
            line.append(cell.text())
        per_point = {r["point"]: r for r in group}.values()  # the latent's use is the pre-training's, once per point
        for u in uses:
            cell = Cell(fmt=USE_FMT[u])
            cell.values = [r[u] for r in per_point if r.get(u) is not None]
            line.append(cell.text() if latent in VARIANT_USE and u in VARIANT_USE[latent] else "-")
        line.append(str(len({r["seed"] for r in group})))
        body.append(line)
    return markdown_table(header, body)
