# %% [markdown]
# # 06 · Fine-tuning: does pre-training help?
#
# The paper's evaluation: keep the pre-trained **encoder** (no mask, no latent, no decoder), add one
# fully connected layer on its pooled features, and train everything end to end with
# cross-entropy on the labels. The question is whether the encoder learned something useful
# without labels, so every pre-trained encoder is compared with **the same encoder trained from
# random weights** ("scratch"), under the same recipe, seed and data.
#
# Two settings, as in the paper:
#
# * **all labels** (Table 1): the full training split;
# * **semi-supervised** (Table 2): 10% and 5% of the training samples, the same fraction of every
#   class (seeded; the index lists are saved in each run's `indices.npz`). Pre-training uses all
#   samples without labels, so this is where it should help most.
#
# The checkpoint kept is the one with the best validation accuracy (a validation set carved from
# the training samples, never the test set); we report its test accuracy and the last epoch's.
#
# Reads `OUT/pretrain/` (notebook 05), writes `OUT/finetune/{init}-{fraction}/` (checkpoints,
# per-epoch metrics, test confusion matrices) and `OUT/finetune/summary.json`.

# %% tags=["parameters"]
dataset: str = "synthetic"  # a name in skel.data.DATASETS
data_dir: str = ""  # folder of the dataset; "": its default (synthetic needs none)
dataset_options: dict = {"num_per_class": 16}  # reader options; must match notebook 05
out: str = ""  # run folder holding pretrain/ from notebook 05; "": runs/notebooks under the repo root
preset: str = "tiny"  # model size: the pre-training preset
latents: list[str] = ["none", "vae", "vq"]  # pre-trained encoders to fine-tune (from OUT/pretrain/)
scratch: bool = True  # also train the same encoder from random weights: the baseline
label_fractions: list[float] = [1.0, 0.1]  # CI scale; paper: [1.0, 0.1, 0.05]
seed: int = 0  # one seed for the whole notebook
device: str = "auto"  # auto (cuda when available) | cpu | cuda
threads: int = 1  # torch CPU threads, fixed so the stored outputs are stable; 0: the torch default
num_workers: int = 0  # data loader processes; 8 on a GPU machine
batch_size: int = 16  # CI scale; paper: 64
finetune_epochs: int = 3  # CI scale; paper: 200
finetune_lr: float = 0.0  # 0: the recipe of the preset (the pre-training lr)
finetune_lr_steps: list[int] = []  # epochs after which lr x0.1; []: the preset's (paper: 60, 90, 110 of 200; tiny/small: 80 %)
window: int = 0  # frames; 0: the pre-training window (from OUT/pretrain/summary.json)
checkpoint: str = "best"  # which pre-training checkpoint: best (lowest validation loss) | last
report_epoch: str = "best"  # fine-tuned epoch the tables report: best (validation accuracy, the paper) | last
max_samples: int = 0  # use at most this many training samples (smoke runs); 0: all
train: bool = True  # False: only read OUT/finetune/INIT-FRACTION/ trained elsewhere (python -m skel finetune, torchrun)

# %%
from skel.runall import experiment_parameters

P = experiment_parameters(globals())  # a misspelt name or a wrong type fails here (papermill only warns)

# %%
import json
import shutil

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from skel.notebook import setup
from skel.report import (accuracy_table, fraction_label, fraction_tag, markdown_table, model_name, plot_confusion,
                         plot_curves)
from skel.runall import require, run_folder
from skel.models.classifier import encoder_options
from skel.train.checkpoint import load_checkpoint
from skel.train.config import ConfigError, FinetuneConfig
from skel.train.finetune import run_finetune
from skel.utils import atomic_write_json

for key, value in (("checkpoint", checkpoint), ("report_epoch", report_epoch)):
    if value not in ("best", "last"):
        raise ConfigError(f"{key} must be 'best' or 'last', got {value!r}")
g = setup(seed, threads or torch.get_num_threads())
run = run_folder(out)
pretrained = json.loads(require(run / "pretrain" / "summary.json", "notebooks/05_pretraining.ipynb").read_text())
by_latent = {s["latent"]: s for s in pretrained}
missing = [k for k in latents if k not in by_latent]
if missing:
    raise FileNotFoundError(f"{run / 'pretrain' / 'summary.json'} has no {', '.join(missing)}: "
                            f"run notebooks/05_pretraining.ipynb with latents including them")
if not window:
    window = next(iter(by_latent.values()))["config"]["window"]
inits = {k: str(require(run / "pretrain" / k / f"{checkpoint}.pt", "notebooks/05_pretraining.ipynb")) for k in latents}
# a pre-trained encoder is fine-tuned as it was pre-trained (e.g. skip_empty_persons); the scratch
# baseline gets the same encoder options, so the two differ only in their initial weights
scratch_options = encoder_options(load_checkpoint(next(iter(inits.values())), kind="pretrain")) if inits else {}
if scratch:
    inits["scratch"] = "none"

def finetune_config(init: str, fraction: float) -> FinetuneConfig:
    return FinetuneConfig.from_dict({
        "dataset": dataset, "data_dir": data_dir or None, "dataset_options": dataset_options,
        "init": inits[init], "latent": init if init != "scratch" else "none", "label_fraction": fraction,
        "preset": preset, "epochs": finetune_epochs, "batch_size": batch_size, "lr": finetune_lr or None, "lr_steps": finetune_lr_steps or None, "window": window,
        "max_samples": max_samples or None, "seed": seed, "device": device, "threads": threads or None, "num_workers": num_workers,
        "out": str(run / "finetune" / f"{init}-{fraction_tag(fraction)}"), "progress": False,
        "model_options": scratch_options if init == "scratch" else {},
    })

configs = {(init, f): finetune_config(init, f) for f in label_fractions for init in inits}
c0 = next(iter(configs.values())).resolve()
print(f"{len(configs)} fine-tuning runs: {', '.join(model_name(k) for k in inits)} x "
      f"{', '.join(fraction_label(f) for f in label_fractions)} labels; {c0.epochs} epochs, batch {c0.batch_size}, "
      f"window {c0.window}")

# %% [markdown]
# ## 1 · Train
#
# Each run prints one line per epoch (times vary, so this cell is not compared in CI) and ends
# with its test accuracy at the last epoch and at the best validation epoch. With `train = False`
# the runs are read from `OUT/finetune/{init}-{fraction}/` instead (e.g. made with `torchrun
# --nproc_per_node=8 -m skel finetune --init OUT/pretrain/vae/best.pt --label-fraction 0.1
# --out OUT/finetune/vae-10pct ...`; scratch: `--init none --out OUT/finetune/scratch-10pct`).

# %%
# NBVAL_IGNORE_OUTPUT
results = {}
if train:
    if (run / "finetune").exists():
        shutil.rmtree(run / "finetune")
    for (init, fraction), cfg in configs.items():
        print(f"--- {model_name(init)}, {fraction_label(fraction)} labels")
        results[(init, fraction)] = run_finetune(cfg)
else:  # runs made by `python -m skel finetune --out OUT/finetune/INIT-FRACTION` (e.g. under torchrun)
    for (init, fraction), cfg in configs.items():
        folder = run / "finetune" / f"{init}-{fraction_tag(fraction)}"
        metrics = json.loads(require(folder / "metrics.json", f"python -m skel finetune --out {folder}").read_text())
        results[(init, fraction)] = {**metrics, "out": str(folder)}
        print(f"{model_name(init)}, {fraction_label(fraction)} labels: read {folder}")

# %% [markdown]
# ## 2 · The tables
#
# The paper's Tables 1 and 2 in one: test accuracy (%) of the checkpoint chosen on validation
# (`report_epoch = "best"`, the paper's protocol) or of the last epoch (`"last"`: steadier when the
# validation carve-out is only a dozen samples, as with 5-10% of a small set). The second table
# has both.

# %%
summary = []
for (init, fraction), res in results.items():
    meta = json.loads((run / "finetune" / f"{init}-{fraction_tag(fraction)}" / "metrics.json").read_text())
    summary.append({
        "init": init, "label_fraction": fraction, "train_samples": meta["samples"]["train"],
        "val_samples": meta["samples"]["val"], "best_epoch": res["best_epoch"], "val_acc": res["best_val_acc"],
        "test_acc_best_val": res["test_best_val"]["top1"], "test_acc_last": res["test_last"]["top1"],
        "test_acc": res["test_best_val" if report_epoch == "best" else "test_last"]["top1"], "report_epoch": report_epoch,
        "out": res["out"],
    })
atomic_write_json(run / "finetune" / "summary.json", summary)
table = accuracy_table(summary)
display(Markdown(table))
print(markdown_table(
    ["model", "labels", "train / val samples", "best epoch", "val acc", "test acc (best val)", "test acc (last)"],
    [[model_name(s["init"]), fraction_label(s["label_fraction"]), f"{s['train_samples']} / {s['val_samples']}",
      s["best_epoch"], f"{100 * s['val_acc']:.1f}", f"{100 * s['test_acc_best_val']:.1f}", f"{100 * s['test_acc_last']:.1f}"]
     for s in summary]))

# %% [markdown]
# The gap to "scratch" in each column is the value of pre-training at that amount of labels. At
# CI scale (a few epochs of a tiny model on a small set) the differences are noise; the numbers
# of `python -m skel run-all` and of the full NTU runs are in `07_results.ipynb`.
#
# ## 3 · Learning curves
#
# Validation accuracy per epoch, with the fewest labels: a pre-trained encoder typically starts
# higher and gets there sooner.

# %%
fewest = min(label_fractions)
fig = plot_curves({init: results[(init, fewest)]["epochs"] for init in inits}, ["train_loss", "val_acc"],
                  title=f"fine-tuning with {fraction_label(fewest)} labels")
plt.show()

# %% [markdown]
# ## 4 · Where the errors are
#
# The test confusion matrix of the best fine-tuned model with all labels given (rows: true class,
# normalised). On the synthetic set the deliberate look-alike pairs (wave left / right, punch /
# push, squat / bow) are where mistakes gather.

# %%
most = max(label_fractions)
best_init = max((s for s in summary if s["label_fraction"] == most), key=lambda s: s["test_acc"])["init"]
meta = json.loads((run / "finetune" / f"{best_init}-{fraction_tag(most)}" / "metrics.json").read_text())
fig = plot_confusion(meta["test_best_val"]["confusion"], meta["class_names"],
                     title=f"{model_name(best_init)}, {fraction_label(most)} labels")
plt.show()

# %% [markdown]
# Next: `07_results.ipynb` probes the frozen encoders (linear layer, kNN), maps their features,
# and puts the cost beside the accuracy.
