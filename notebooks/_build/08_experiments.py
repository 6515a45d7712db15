# %% [markdown]
# # 08 · The paper's experiments: Tables 1-8 as sweeps
#
# Chen et al. (2025) state their claims in eight tables: accuracy on the four NTU benchmarks
# (Table 1), with 5% and 10% of the labels (Table 2), and the ablations: mask rates $M_t \times M_j$
# (Table 3), the VAE's latent dimension (Table 4), the codebook size $K$ (Table 5), the decoder's
# width (Table 6) and depth (Table 7), and the cost: parameters, FLOPs, pre-training time (Table 8).
#
# Each table is a **grid** of runs: every point pre-trains one model (notebook 05) and fine-tunes
# it (notebook 06). A sweep file names the grid; one command runs it, skipping points already
# finished, resuming interrupted ones from their `last.pt`, and recording (not raising) a point
# that fails:
#
# ```bash
# python -m skel sweep notebooks/configs/sweeps/table3_paper.yaml --out runs/sweeps/ntu --set data_dir=DATA60  # NTU, GPU
# python -m skel sweep notebooks/configs/sweeps/table3_small.yaml --out runs/sweeps/msr                       # MSR Action3D, CPU
# ```
#
# `notebooks/configs/sweeps/` holds `tableN_paper.yaml` (the paper's settings on NTU) and
# `tableN_small.yaml` (MSR Action3D, `small` preset, minutes to an hour on a CPU) for N = 1..8.
# Sweeps given the same `--out` share their pre-trainings (Table 3's $M_t = M_j = 0.4$ cells are
# Table 1's NTU-60 x-sub runs). The tables put ours beside the paper's numbers
# (`skel/paper_numbers.py`: only what the paper's text states; its tables themselves are not in
# the text we have, so most ablation cells have no paper value).
#
# The notebook has two halves:
#
# * **Sections 1-4, the machinery**, on `ci.yaml`: a toy sweep that touches every table (the
#   synthetic set, the tiny preset, 18-frame windows, one epoch each, about half a minute). Its
#   accuracies are noise around chance; it is here so that every step, from the grid to the
#   figure, runs in CI through the code the real sweeps use. Sections 2 and 3 derive by hand how a
#   table cell is computed and when two mask rates are one masking, and check both against `skel`.
# * **Section 5, the results to read**: sweeps run at CPU scale on MSR Action3D (real data, 20
#   classes) and the synthetic set (12 classes), whose small result files ship with the repository
#   under `notebooks/assets/sweeps/NAME/` (`results.json`, `results.csv`, `sweep.json`).
#
# Exercises with a checker close the notebook (section 6).
#
# To draw a sweep of your own: `papermill notebooks/08_experiments.ipynb out.ipynb -p run False -p sweep_out runs/sweeps/msr`
# (`-p run False`, capitalised: papermill reads `false` as a string).

# %% tags=["parameters"]
config: str = "notebooks/configs/sweeps/ci.yaml"  # sweep file; a relative path is taken from the repo root
sweep_out: str = ""  # the sweep folder; "": OUT/sweeps/NAME
out: str = ""  # run folder (python -m skel run-all passes its own); "": runs/notebooks under the repo root
run: bool = True  # run the sweep first (finished points are skipped); False: only read sweep_out
fresh: bool = True  # clear the sweep folder before running, so the stored outputs reproduce; False: keep finished points
overrides: dict = {}  # what `--set` overrides, e.g. {"dataset": "msr-action3d", "preset": "small"}
metric: str = "best"  # test top-1 of the best validation epoch (the paper's protocol) | last (the last epoch)
seed: int = 0  # seeds this notebook's own draws; the runs' seeds come from the sweep file
device: str = ""  # "": the sweep file's; auto | cpu | cuda
threads: int = 1  # torch CPU threads for this kernel
shipped: list[str] = ["msr-fixes", "synthetic-fixes"]  # section 5: folders under shipped_dir
shipped_dir: str = "notebooks/assets/sweeps"  # holds the shipped folders; a relative path is from the repo root

# %%
from skel.runall import notebook_parameters

P = notebook_parameters(globals())  # a misspelt name or a wrong type fails here (papermill only warns)

# %%
import json
import shutil
from pathlib import Path
from statistics import mean, pstdev, stdev

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from skel.models.masking import kept_counts
from skel.notebook import check, cmp, setup
from skel.report import save_figure
from skel.runall import require, run_folder
from skel.sweep import build_tables, expand, load_results, load_sweep, mask_collisions, parse_sweep, run_sweep
from skel.sweep import variants_table
from skel.sweep.grid import point_summary
from skel.sweep.plots import chance_top1, plot_table, plot_variants
from skel.sweep.tables import AXES, VARIANT_FIELDS, Cell
from skel.utils import atomic_write_text, repo_root

g = setup(seed, threads)
if metric not in ("best", "last"):
    raise ValueError(f"metric must be 'best' or 'last', got {metric!r}")
if run and fresh and sweep_out:  # never wipe a folder named by hand: it may hold days of GPU runs
    raise ValueError("fresh clears only this notebook's own folder (OUT/sweeps/NAME); "
                     "with sweep_out given pass fresh False (finished points are then skipped)")
config_path = Path(config) if Path(config).is_absolute() else repo_root() / config
sweep = load_sweep(config_path, {**overrides, **({"device": device} if device else {})})
folder = Path(sweep_out).expanduser().resolve() if sweep_out else run_folder(out) / "sweeps" / sweep.name
if run:
    points = point_summary(expand(sweep))
else:  # the sweep as it was run
    points = json.loads(require(folder / "sweep.json", f"python -m skel sweep CONFIG --out {folder}").read_text())["points"]
print(f"sweep {folder.name}: {len(points)} points, {sum(len(p['finetunes']) for p in points)} fine-tunes")
for p in points:
    print(f"  {p['name']:<22s} {'pre-train + ' if p['pretrain'] else 'from scratch: '}{', '.join(p['finetunes'])}")

# %% [markdown]
# ## 1 · Run the sweep
#
# `run_sweep` is what `python -m skel sweep` calls. With `verbose=False` (`--quiet` on the command
# line) it prints one line per point: its name, its status, the test top-1 of each fine-tune (at
# the best-validation epoch) and the wall time; everything the runs print goes to
# `points/NAME/log.txt`. Times vary, so this cell is not compared in CI. Re-running with
# `fresh = False` skips every finished point (`done, skipped`).

# %%
# NBVAL_IGNORE_OUTPUT
if run:
    if fresh and folder.exists():
        shutil.rmtree(folder)
    rows = run_sweep(sweep, folder, verbose=False)
else:
    rows = load_results(folder)

# %% [markdown]
# Every fine-tune is one row of `results.csv` (and `results.json`, which also keeps the traceback
# of a failed run). The accuracy columns: `top1` at the epoch of best validation accuracy,
# `top1_last` at the last epoch. The latent-use columns (`latent_kl` of SkeletonMVAE,
# `latent_perplexity` and `latent_codes` of SkeletonMVQVAE) are validation figures of the
# pre-training epoch whose checkpoint the fine-tune started from (`pretrain_epoch`).

# %%
failed = [r for r in rows if r["status"] != "done"]
print(f"{len(rows) - len(failed)} of {len(rows)} fine-tunes done in {folder.name}/")
for r in failed:
    print(f"FAILED {r['point']}/{r['finetune']}: {r['error']}")
for r in rows[:6]:
    print(f"  {r['point']:<20s} {r['finetune']:<16s} {r['status']:<6s} top1 {100 * (r['top1'] or 0):5.1f} %  "
          f"last {100 * (r['top1_last'] or 0):5.1f} %")
print(f"  ... ({len(rows) - 6} more)" if len(rows) > 6 else "")

# %% [markdown]
# ## 2 · From rows to a table cell
#
# A table takes the rows whose grid varied none of the ablation axes (`skel.sweep.tables.AXES`:
# mask rates, latent dimension, codebook size, decoder width and depth) other than its own: Table 1
# takes the runs of the grid `latent x seed`, not the `K: 32` point of Table 5's grid. The rows
# that land in one (row, column) of the table are that cell's seeds, $v_1, \dots, v_n$ (test top-1
# in %), and the cell prints
#
# $$\bar v = \frac1n \sum_{i=1}^n v_i \quad \pm \quad s = \sqrt{\frac{1}{n-1}\sum_{i=1}^n (v_i - \bar v)^2},$$
#
# the **sample** standard deviation ($n - 1$: with two or three seeds, dividing by $n$ would
# understate the spread by a factor $\sqrt{(n-1)/n}$, 0.71 at $n = 2$); with one seed, no `±`.
# By hand, for Table 1's SkeletonMVAE cell, then against the table builder's `Cell`:

# %%
tables = build_tables(rows, metric)
print("tables drawn:", ", ".join(str(n) for n in tables))
in_cell = [r for r in rows if r["latent"] == "vae" and r["label_fraction"] == 1.0 and r["status"] == "done"
           and any(not set(a) & set(AXES) for a in r["grids"])]  # a grid that varied no ablation axis
values = [100 * (r["top1"] if metric == "best" else r["top1_last"]) for r in in_cell]
if 1 in tables and len({r["dataset"] for r in in_cell}) == 1 and len(values) >= 2:
    print("rows in the cell:", ", ".join(f"{r['point']} {v:.2f} %" for r, v in zip(in_cell, values)))
    cell = tables[1].cell(("vae",), in_cell[0]["dataset"])
    cmp("mean over seeds", mean(values), cell.mean)
    cmp("sample std (n - 1)", stdev(values), cell.spread)
    print(f"the table prints {cell.text()!r}; the population std (n) would say {pstdev(values):.2f}")
else:
    print("this sweep has no Table 1 cell of SkeletonMVAE with two seeds or more on one dataset to check")


# %% [markdown]
# ## 3 · When two mask rates are one masking
#
# Frames are masked in whole STTFormer tuples of $l = 6$ frames (notebook 02). Of a window of $T$
# frames, $T/l$ tuples, the encoder sees
#
# $$T_k = l \cdot \max\Big(1,\ \operatorname{round}\big((1 - M_t)\, T / l\big)\Big)$$
#
# frames (`skel.models.masking.kept_counts`; Python's `round` takes a half to the even
# neighbour: `round(2.5) = 2`). At a short window, neighbouring rates round to the same count: at
# $T = 12$ (2 tuples), $M_t = 0.4$ keeps $\operatorname{round}(1.2) = 1$ tuple and $M_t = 0.6$
# keeps $\operatorname{round}(0.8) = 1$. Two such points differ in their settings, so the sweep
# runs both, but they compute the same thing: the same number of tuples kept, drawn by the same
# generator, hence the same numbers in every cell of their rows (RESULTS.md's `msr-table3`, run at a
# 24-frame window, has three identical $M_t$ rows). That is why `ci.yaml` uses 18-frame windows
# with $M_t \in \{0.4, 0.6\}$ (2 and 1 of 3 tuples; 0.5 would keep 2, as 0.4 does), and why the
# `table3_small.yaml` sweep uses 36 (4, 3 and 2 of 6 tuples). Our count against `kept_counts` first:

# %%
def tuples_kept(window: int, mt: float, tuple_len: int = 6) -> int:
    """Tuples of ``tuple_len`` frames the encoder sees at frame mask rate ``mt``: our derivation."""
    return max(1, round((1 - mt) * window / tuple_len))


rates, windows = (0.4, 0.5, 0.6), (12, 18, 24, 30, 36)
ours = torch.tensor([[tuples_kept(w, mt) for mt in rates] for w in windows])
theirs = torch.tensor([[kept_counts(w, 1, mt, 0.0)[0] // 6 for mt in rates] for w in windows])
print("window  tuples  kept at Mt = " + " / ".join(f"{mt:g}" for mt in rates))
for w, kept in zip(windows, ours.tolist()):
    collision = "   <- a collision" if len(set(kept)) < len(kept) else ""
    print(f"{w:6d}  {w // 6:6d}  {' / '.join(map(str, kept)):>18s}{collision}")
cmp("tuples kept vs kept_counts", ours, theirs)

# %% [markdown]
# `mask_collisions(points)` does this bookkeeping for a whole sweep: for each point that
# pre-trains, it computes the tuples kept at the point's own window and $M_t$, groups the rates by
# (window, tuples kept), and warns for every group holding more than one rate, naming the first
# longer window that tells them apart. `run_sweep` prints these warnings before anything runs.
# Table 3's grid with $M_t \in \{0.4, 0.5, 0.6\}$ at three windows, and this notebook's sweep:

# %%
table3_grid = {"latent": ["vae"], "Mt": list(rates), "Mj": [0.4]}
for w in (12, 18, 36):
    warnings = mask_collisions(expand(parse_sweep({"base": {**sweep.base, "window": w}, "grid": table3_grid})))
    print(f"window {w}: " + ("\n           ".join(warnings) if warnings else "no collision"))
print(f"{sweep.name}.yaml: " + ("; ".join(mask_collisions(expand(sweep))) or "no collision"))

# %% [markdown]
# ## 4 · The tables of the toy sweep
#
# A cell is the mean over seeds, `±` the sample standard deviation when there are two seeds or
# more, `[paper X]` where the paper gives that cell (only on the paper's benchmark and at the same
# setting). The paper's own statement follows each table. The toy sweep's accuracies are noise
# around chance (1/12 = 8.3 % on the synthetic set's 12 classes): read these for their shape, and
# section 5 for numbers. Two figures are drawn here: Table 3's heat map (its $M_t$ rows are two
# different maskings at this window) and Table 8's cost, whose parameters and FLOPs are exact at
# any scale.
#
# * **Tables 1 and 2**: does pre-training help, with all labels and with few? The paper:
#   SkeletonMVAE and SkeletonMVQVAE beat SkeletonMAE on every benchmark, by up to 4.4 points with
#   all labels and up to 5.3 with 5% of them. The "scratch" row (the same encoder, no pre-training)
#   is ours: the floor pre-training has to beat. Table 2's cells carry their gain over SkeletonMAE.
# * **Table 3**: frames are dropped at rate $M_t$, then joints at rate $M_j$ on the frames kept;
#   the paper finds the least masking it tried, $M_t = M_j = 0.4$, best for both models. With a few
#   seeds one cell's mean is noisy, so the table adds margins: the "mean over Mj" column averages
#   each $M_t$ row per seed, the "mean" row each $M_j$ column, and the note names each seed's best
#   cell and where the paper's best cell ranks among that seed's cells (a comparison within a seed,
#   free of how good the seed was overall). The heat map frames the paper's best cell in red.
# * **Tables 4 and 5**: SkeletonMVAE's per-token latent dimension (paper: 25 best) and
#   SkeletonMVQVAE's codebook size (paper: $K = 128$ best, 88.0%). Beside the accuracy, each shows
#   whether the latent is used at all, which the paper's tables do not: the VAE's KL (0 when the
#   posterior has collapsed onto the prior) and the codebook's perplexity
#   $\exp(-\sum_k p_k \log p_k)$ and codes used per validation batch (1: every token maps to one
#   code; notebook 03). A size can only change the accuracy through a latent that carries information.
# * **Tables 6 and 7**: the decoder's width (paper: 256 best of 128 / 256 / 512) and depth, counted
#   as the paper counts it, STTFormer blocks plus the final linear layer (paper: 9 for SkeletonMVAE,
#   7 for SkeletonMVQVAE). The toy sweep halves the tiny preset's decoder (32 wide, depth 2).

# %%
figures = folder / "figures"
chance = chance_top1({r["dataset"] for r in rows})


def show(number: int, figure: bool = True) -> None:
    """Display Table ``number`` and, when ``figure``, its figure (saved under the sweep folder)."""
    if number not in tables:
        print(f"Table {number}: this sweep has no runs for it")
        return
    display(Markdown(tables[number].markdown()))
    if figure:
        fig = plot_table(tables[number], f"{folder.name}: Table {number}", chance)
        save_figure(fig, f"table{number}", [figures])
        plt.show()


for number in (1, 2):
    show(number, figure=False)

# %%
show(3)

# %%
for number in (4, 5, 6, 7):
    show(number, figure=False)

# %% [markdown]
# ### Table 8: what the latent space costs
#
# Parameters and forward FLOPs per sample of the pre-training model (masking included, one sample
# of the sweep's window), counted by `torch.utils.flop_counter` (see `skel/models/cost.py` for why
# our paper-preset figures differ from Table 8's); pre-training time is the sum of the epochs' wall
# times on this machine, so only its differences compare with the paper's hours. Only the time
# varies over seeds; its error bar is the sample std, clipped at 0.

# %%
t8 = tables.get(8)
for row in t8.rows if t8 else []:
    print(f"{' '.join(map(str, row)):<6s} parameters {t8.cell(row, 'params_M').mean:.4f} M, "
          f"{t8.cell(row, 'gflops').mean:.5f} GFLOPs / sample")

# %%
# NBVAL_IGNORE_OUTPUT
show(8)

# %% [markdown]
# All tables in one markdown file beside the results, for a report or a README:

# %%
text = "\n\n".join(t.markdown() for t in tables.values())
atomic_write_text(folder / "tables.md", text + "\n")
print(f"wrote {folder.name}/tables.md and {len(list(figures.glob('*.png')))} figures in {folder.name}/figures/")

# %% [markdown]
# ## 5 · The results to read: MSR Action3D and the synthetic set
#
# These sweeps ran at CPU scale with the `small` preset (RESULTS.md part 2 gives each one's
# command and settings); only their result rows ship, under `notebooks/assets/sweeps/NAME/`
# (`python scripts/ship_results.py sweep runs/sweeps/NAME` copies them), and are drawn here by the
# same table builder as above (`load_results` reads a folder that holds only `results.json`).
# Shipped: issue 14's `msr-fixes` (MSR Action3D) and `synthetic-fixes` (the synthetic set), the
# `paper` preset before and after the fixes to its loss, its VAE and its augmentation, 3 seeds,
# 100 % and 10 % of the labels (RESULTS.md part 3 reads both), each fix switched on one at a time
# (the same grid on both sets, `notebooks/configs/sweeps/fixes_small.yaml`). The older
# ablations (Tables 2, 3 and 5) are tabulated in RESULTS.md; ship a folder of your own and add its
# name to `shipped` to draw it here. In every figure the dashed line is chance, 100 / classes: 5 %
# on MSR Action3D (20 classes), 8.3 % on the synthetic set (12); bars and error bars are the mean
# and the sample std over seeds, the lower bar clipped at 0. A sweep that switches settings on and
# off for each model (both shipped here) is drawn with `variants_table`, one line per model and
# variant, instead of the paper's tables.

# %%
shipped_root = Path(shipped_dir) if Path(shipped_dir).is_absolute() else repo_root() / shipped_dir


def load_shipped(name: str) -> list[dict] | None:
    """The result rows of shipped sweep ``name``; None, with a note saying why, when there are none."""
    path = shipped_root / name
    if name not in shipped:
        print(f"{name}: not drawn (not in the `shipped` parameter)")
        return None
    if not (path / "results.json").is_file():
        where = path.relative_to(repo_root()) if path.is_relative_to(repo_root()) else path
        print(f"note: no shipped sweep {name!r}: {where}/results.json is missing, so it is not drawn. Run its "
              f"sweep (RESULTS.md, part 2) and copy its results.json there, or leave it out of `shipped`.")
        return None
    return load_results(path)


def draw_shipped(name: str) -> None:
    """What the sweep ran, then its tables (or its variants) with their figures and the chance line."""
    got = load_shipped(name)
    if got is None:
        return
    datasets = sorted({r["dataset"] for r in got})
    settings = {k: sorted({r[k] for r in got if r.get(k) is not None}) for k in ("preset", "window", "epochs",
                                                                                 "finetune_epochs", "seed")}
    print(f"{name}: {', '.join(datasets)}; " + "; ".join(f"{k} {', '.join(map(str, v))}" for k, v in settings.items())
          + f"; {sum(r['status'] == 'done' for r in got)} of {len(got)} fine-tunes done")
    level = chance_top1(datasets)
    if any(len({json.dumps(r[f]) for r in got if r.get(f) is not None}) > 1 for f in VARIANT_FIELDS):
        display(Markdown(variants_table(got, metric)))
        plot_variants(got, metric, title=name, chance=level)
        plt.show()
        return
    for number, table in build_tables(got, metric).items():
        if number == 8:  # the cost of the models drawn above: see the toy sweep's Table 8
            continue
        display(Markdown(table.markdown()))
        plot_table(table, f"{name}: Table {number}", level)
        plt.show()


# %%
for name in shipped:
    draw_shipped(name)

# %% [markdown]
# ## 6 · Exercises
#
# Write your answer into the variable of the cell below each exercise, then run the checking cell
# after it. The checker computes the true value with `skel`, independently of your answer, and
# prints `correct`, `not yet: expected ...`, or `not answered yet` (for `None`). The answers come
# filled in, so that CI checks them against `skel` on every run: set them to `None` before you
# start. A worked solution is folded under each exercise.

# %% [markdown]
# **Exercise 1.** At a 24-frame window, which of $M_t \in \{0.4, 0.5, 0.6\}$ keep the same number
# of tuples as another of the three? Answer with a set (`set()` if none). At which window (a
# multiple of 6) do all three first keep different numbers?
#
# <details><summary>Solution</summary>
#
# 24 frames are 4 tuples; $(1 - M_t) \cdot 4 = 2.4, 2.0, 1.6$ all round to 2: the three rates keep
# the same 12 frames, so a sweep over them runs one masking three times. At 30 frames (5 tuples)
# $3.0, 2.5, 2.0$ round to 3, 2, 2 (`round(2.5) = 2`, half to even); at 36 (6 tuples) to 4, 3, 2.
# </details>

# %%
ex1_same = {0.4, 0.5, 0.6}  # a set of Mt values
ex1_window = 36  # the first window that tells all three apart

# %%
kept_24 = {mt: kept_counts(24, 1, mt, 0.0)[0] for mt in rates}
apart = next(w for w in range(6, 600, 6) if len({kept_counts(w, 1, mt, 0.0)[0] for mt in rates}) == len(rates))
check("Exercise 1 (same at 24, first window apart)", (ex1_same, ex1_window),
      ({mt for mt, k in kept_24.items() if list(kept_24.values()).count(k) > 1}, apart))

# %% [markdown]
# **Exercise 2.** How many points (pre-trainings, or scratch runs) and how many fine-tunes does this
# sweep expand to? Two grid cells that resolve to the same pre-training are one point (the tiny
# preset's defaults: seed 0, $K = 128$), and a `label_fraction` adds a fine-tune, not a point.
#
# ```yaml
# base: {preset: tiny}
# grid:
#   - {latent: [none, vae, vq], seed: [0, 1]}
#   - {latent: [vq], K: [32, 128]}
#   - {latent: [vae], label_fraction: [0.1]}
# ```
#
# <details><summary>Solution</summary>
#
# The first grid gives 6 points (3 models x 2 seeds). In the second, $K = 32$ is a new point and
# $K = 128$ at the default seed 0 is `vq-seed0` again. The third is `vae-seed0`'s pre-training
# once more: it only adds a 10 % fine-tune. 7 points; 7 fine-tunes on all labels plus 1 = 8.
# </details>

# %%
ex2_points = 7
ex2_finetunes = 8

# %%
exercise_points = expand(parse_sweep({"base": {"preset": "tiny"}, "grid": [
    {"latent": ["none", "vae", "vq"], "seed": [0, 1]},
    {"latent": ["vq"], "K": [32, 128]},
    {"latent": ["vae"], "label_fraction": [0.1]},
]}))
check("Exercise 2 (points, fine-tunes)", (ex2_points, ex2_finetunes),
      (len(exercise_points), sum(len(p.finetunes) for p in exercise_points)))

# %% [markdown]
# **Exercise 3.** Three seeds give one cell the test top-1 values 50.0, 56.0 and 62.0 %. What does
# the table print in that cell (the string, as in the tables above)?
#
# <details><summary>Solution</summary>
#
# The mean is 56.0; the deviations $-6, 0, 6$ square to 72 in all; over $n - 1 = 2$ that is 36,
# whose root is 6.0: `56.0 ± 6.0` (dividing by $n = 3$ would give 4.9).
# </details>

# %%
ex3_cell = "56.0 ± 6.0"  # the text of the cell, e.g. "12.3 ± 4.5"

# %%
check("Exercise 3 (the cell)", ex3_cell, Cell([50.0, 56.0, 62.0]).text())
