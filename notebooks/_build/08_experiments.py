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
# Table 1's NTU-60 x-sub runs). This notebook draws the tables from a finished sweep folder, ours
# beside the paper's numbers (`skel/paper_numbers.py`: only what the paper's text states; its
# tables themselves are not in the text we have, so most ablation cells have no paper value).
#
# At its defaults it runs `ci.yaml`, a toy sweep that touches every table (synthetic data, the tiny
# preset, one epoch each, about half a minute): the numbers are noise, the machinery is the real one.
# To draw a finished sweep: `papermill notebooks/08_experiments.ipynb out.ipynb -p run False -p sweep_out runs/sweeps/msr`
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

# %%
from skel.runall import notebook_parameters

P = notebook_parameters(globals())  # a misspelt name or a wrong type fails here (papermill only warns)

# %%
import json
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from skel.notebook import setup
from skel.report import save_figure
from skel.runall import require, run_folder
from skel.sweep import build_tables, expand, load_results, load_sweep, run_sweep
from skel.sweep.grid import point_summary
from skel.sweep.plots import plot_table
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
# `run_sweep` is what `python -m skel sweep` calls. One line per point (times vary, so this cell
# is not compared in CI); each run's own output goes to `points/NAME/log.txt`. Re-running with
# `fresh = False` skips every finished point.

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
# ## 2 · The tables
#
# A cell is the mean over seeds, `±` the sample standard deviation when there are two seeds or
# more, `[paper X]` where the paper gives that cell (only on the paper's benchmark and at the same
# setting). A table takes the runs whose grid varied none of the other ablation axes: the toy
# sweep's `K: 32` point appears in Table 5 only. Tables 1 and 2 come first; the paper's own
# statement follows each table.

# %%
tables = build_tables(rows, metric)
figures = folder / "figures"
print("tables drawn:", ", ".join(str(n) for n in tables))

def show(number: int) -> None:
    """Display Table ``number`` and its figure, saved under the sweep folder."""
    if number not in tables:
        print(f"Table {number}: this sweep has no runs for it")
        return
    t = tables[number]
    display(Markdown(t.markdown()))
    fig = plot_table(t)
    save_figure(fig, f"table{number}", [figures])
    plt.show()


# %% [markdown]
# ### Tables 1 and 2: does pre-training help, with all labels and with few?
#
# The paper: SkeletonMVAE and SkeletonMVQVAE beat SkeletonMAE on every benchmark, by up to 4.4
# points with all labels and up to 5.3 with 5% of them. The "scratch" row (the same encoder, no
# pre-training) is ours: the floor pre-training has to beat. Table 2's cells carry their gain over
# SkeletonMAE in brackets.

# %%
show(1)

# %%
show(2)

# %% [markdown]
# ### Table 3: mask rates
#
# Frames are dropped at rate $M_t$, then joints at rate $M_j$ on the frames kept. The paper finds
# the least masking it tried, $M_t = M_j = 0.4$, best for both models. With a few seeds and a
# small dataset one cell's mean is noisy, so the table adds margins: the "mean over Mj" column
# averages each $M_t$ row per seed, the "mean" row each $M_j$ column, and the note names each seed's
# best cell and where the paper's best cell ranks among that seed's cells (a comparison within a
# seed, free of how good the seed was overall).

# %%
show(3)

# %% [markdown]
# ### Tables 4 and 5: the size of the latent space
#
# SkeletonMVAE's per-token latent dimension (paper: 25 best) and SkeletonMVQVAE's codebook size
# (paper: $K = 128$ best, 88.0%; larger and smaller are worse).
#
# Beside the accuracy, each table shows whether the latent is used at all, which the paper's tables
# do not: the VAE's KL per token (0 when the posterior has collapsed onto the prior) and the
# codebook's perplexity $\exp(-\sum_k p_k \log p_k)$ and number of codes a validation batch uses
# (1 when every token maps to one code; notebook 03). A latent dimension or a codebook size can only
# change the accuracy through a latent that carries information: read the accuracy column against
# these.

# %%
show(4)

# %%
show(5)

# %% [markdown]
# ### Tables 6 and 7: the decoder
#
# Width (paper: 256 best of 128 / 256 / 512) and depth, counted as the paper counts it: STTFormer
# blocks plus the final linear layer (paper: 9 for SkeletonMVAE, 7 for SkeletonMVQVAE, of 5 / 7 /
# 9 / 11). The toy sweep halves the tiny preset's decoder (32 wide, depth 2) instead.

# %%
show(6)

# %%
show(7)

# %% [markdown]
# ### Table 8: what the latent space costs
#
# Parameters and forward FLOPs per sample of the pre-training model (masking included, one sample
# of the sweep's window), counted by `torch.utils.flop_counter` (see `skel/models/cost.py` for why
# our paper-preset figures differ from Table 8's); pre-training time is the sum of the epochs' wall
# times on this machine, so only its differences compare with the paper's hours.

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
