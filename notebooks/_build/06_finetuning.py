# %% [markdown]
# # 06 · Fine-tuning: does pre-training help?
#
# The paper's evaluation: keep the pre-trained **encoder** (no mask, no latent, no decoder), add one
# fully connected layer on its pooled features, and train everything end to end with
# cross-entropy on the labels. The question is whether the encoder learned something useful
# without labels, so every pre-trained encoder is compared with **the same encoder trained from
# random weights** ("scratch"), under the same recipe, seed and data.
#
# Sections 1-3 take the classifier apart before it is trained: the pooled head, the transfer of
# the encoder weights out of a pre-training checkpoint, and the head's initial weights, each
# checked against `skel.models.classifier`. Then the training, in two settings as in the paper:
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
# per-epoch metrics, test confusion matrices) and `OUT/finetune/summary.json`. The figures also
# draw the results of the main job (`python -m skel run-all`, shipped in
# `notebooks/assets/main_job/`): the CI-scale run stored here is a smoke test.

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
shipped: str = "main_job"  # results drawn beside this run's: a folder under notebooks/assets/ or an absolute path; "": none

# %%
from skel.runall import experiment_parameters

P = experiment_parameters(globals())  # a misspelt name or a wrong type fails here (papermill only warns)

# %%
import json
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

from skel.data import load_dataset
from skel.data.feeder import Feeder
from skel.models.classifier import build_classifier, encoder_options
from skel.models.cost import count_parameters
from skel.notebook import check, cmp, setup
from skel.report import (accuracy_table, fraction_label, fraction_tag, markdown_table, model_name,
                         plot_accuracy_bars, plot_confusion, plot_curves, shipped_folder)
from skel.runall import require, run_folder
from skel.train.checkpoint import load_checkpoint
from skel.train.config import ConfigError, FinetuneConfig
from skel.train.finetune import run_finetune
from skel.utils import atomic_write_json, repo_root

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


main_job = shipped_folder(shipped)

# %% [markdown]
# ## 1 · From a pre-training checkpoint to a classifier
#
# A pre-training checkpoint holds the whole model, `encoder.*`, `latent.*` and `decoder.*` (the
# decoder's mask token included), plus the optimiser's state. Fine-tuning keeps only the encoder:
# `Classifier.load_encoder` takes the `encoder.*` entries, strips the prefix and loads them
# strictly (every key of the classifier's encoder must be there, with its shape). Parameters
# **and buffers** move: the BatchNorm running means and variances estimated during pre-training
# come along (notebook 07 returns to them). The position embedding is computed from frame and
# joint indices, not stored, so an encoder loads at any window. What each checkpoint of this run
# holds, by group:

# %%
ckpts = {k: load_checkpoint(inits[k], kind="pretrain") for k in latents}
group_rows = []
for key, ckpt in ckpts.items():
    groups = {}
    for name, value in ckpt["model"].items():
        top = "decoder.mask_token" if name == "decoder.mask_token" else name.split(".")[0]
        count, numel = groups.get(top, (0, 0))
        groups[top] = (count + 1, numel + value.numel())
    for top, (count, numel) in groups.items():
        group_rows.append([model_name(key), top if top != "decoder" else "decoder (other)", count, numel,
                           "copied" if top == "encoder" else "dropped"])
print(markdown_table(["checkpoint", "group", "tensors", "values", "fine-tuning"], group_rows, align="llrrl"))
dropped = sorted({".".join(name.split(".")[:2]) for ckpt in ckpts.values() for name in ckpt["model"]
                  if name.startswith("latent.")})
print("latent entries dropped:", ", ".join(dropped) or "none")

# %% [markdown]
# The transfer in one line, then `skel`'s: load the same checkpoint file into a fresh classifier
# and check that its encoder now holds exactly the checkpoint's `encoder.*` tensors, bit for bit,
# while the head keeps its fresh weights.

# %%
train_data = load_dataset(dataset, "train", data_dir or None, **dataset_options)
K, M = train_data.num_classes, train_data.num_persons


def classifier(**options):
    """A fresh classifier of this run's preset and dataset, built under the notebook's seed."""
    torch.manual_seed(seed)
    return build_classifier(preset, K, num_joints=train_data.num_joints, num_persons=M, num_frames=window,
                            in_channels=train_data.num_channels, **options)


source = latents[0]  # the first pre-trained model of the list; any would do
encoder_state = {k.removeprefix("encoder."): v for k, v in ckpts[source]["model"].items() if k.startswith("encoder.")}
clf = classifier(**encoder_options(ckpts[source]))  # the encoder runs as it was pre-trained
head_before = {k: v.clone() for k, v in clf.fc.state_dict().items()}
fresh = {k: v.clone() for k, v in clf.encoder.state_dict().items()}
clf.load_encoder(inits[source])  # the checkpoint file, as run_finetune passes it
after = clf.encoder.state_dict()
assert set(after) == set(encoder_state), "the classifier's encoder keys are the checkpoint's encoder.* keys"
for k in after:
    torch.testing.assert_close(after[k], encoder_state[k], rtol=0, atol=0)  # bitwise
for k, v in clf.fc.state_dict().items():
    torch.testing.assert_close(v, head_before[k], rtol=0, atol=0)
buffers = [k for k in after if "running_" in k or "num_batches" in k]
print(f"{model_name(source)}: all {len(after)} encoder tensors equal the checkpoint's bitwise ({len(buffers)} of them "
      f"BatchNorm buffers; {sum(not torch.equal(fresh[k], after[k]) for k in after)} differ from the fresh "
      f"encoder's); the head is untouched")

# %% [markdown]
# ## 2 · The pooled head, step by step
#
# `skel.models.classifier.Classifier` runs the encoder on the **full** grid (no mask), averages
# its output, and applies one linear layer. For a batch of $N$ samples with $M$ persons, $C = 3$
# coordinates, $T$ frames and $V$ joints:
#
# $$x\,(N, C, T, V, M) \xrightarrow{\text{fold persons}} (NM, C, T, V)
#   \xrightarrow{\text{encoder}} z\,(NM, D, T', V')
#   \xrightarrow{\text{mean over } T', V'} (NM, D)
#   \xrightarrow{\text{mean over persons}} f\,(N, D)
#   \xrightarrow{W f + b} \text{logits}\,(N, K)$$
#
# with $T' = T / L$ tuples of $L = 6$ frames and $V' = L V$ positions per tuple (notebook 04),
# $D$ the last block's width and $K$ the number of classes. We run the classifier just loaded on
# eight training samples (four with one actor, four with two) and redo the pooling and the linear
# layer by hand.

# %%
eval_feeder = Feeder(train_data, window, train=False)  # the test-time centre crop: no randomness
second = np.array([np.any(s[..., 1:]) for s in train_data.samples])  # a second actor present
picked = np.concatenate([np.flatnonzero(~second)[:4], np.flatnonzero(second)[:4]])
x = torch.stack([eval_feeder[i][0] for i in picked])  # (N, C, T, V, M)
N, D = len(x), clf.encoder.dim
# the official head runs every person row; a copy of the loaded classifier that does (whatever the
# pre-training's skip_empty_persons) is derived here, the skipping variant right after
clf_all = classifier(skip_empty_persons=False).eval()  # eval: BatchNorm uses its running statistics
clf_all.load_state_dict(clf.state_dict())
with torch.no_grad():
    z, rows = clf_all.encoder(x)  # z: (rows run, D, T', V'); rows: (N*M,) bool, which were run
    per_row = z.mean((2, 3))  # (N*M, D): mean over tuples and positions
    f = per_row.view(N, M, D).mean(1)  # (N, D): mean over the persons (all were run)
    logits = f @ clf_all.fc.weight.T + clf_all.fc.bias  # (N, K)
    # the official STTFormer head (model/sttformer.py) takes one mean over persons and positions together
    f_official = z.view(N, M, D, -1).permute(0, 1, 3, 2).reshape(N, -1, D).mean(1)
print(f"x {tuple(x.shape)} -> z {tuple(z.shape)} ({int(rows.sum())} of {N * M} person rows run) -> "
      f"f {tuple(f.shape)} -> logits {tuple(logits.shape)}")
cmp("features", f, clf_all.features(x))
cmp("logits", logits, clf_all(x))
cmp("official pooling", f_official, f)

# %% [markdown]
# Every person row has the same $T' \times V'$ positions, so the mean of the per-person means is
# the official code's single mean over persons and positions. Both average in the **empty**
# second person of a one-actor sample: its zeros still go through the network (biases and
# BatchNorm shifts make its output non-zero). `skip_empty_persons=True`, a deviation of this
# project (`docs/deviations.md`), runs only the persons with a non-zero coordinate and averages
# over those. In eval mode a row's output does not depend on the other rows, so with the same
# weights the two-actor samples keep their features and the one-actor samples lose the empty
# person's share:

# %%
clf_skip = classifier(skip_empty_persons=True).eval()
clf_skip.load_state_dict(clf_all.state_dict())  # same weights, only the option differs
present = x.ne(0).flatten(1, 3).any(1)  # (N, M): a person is present if any coordinate is non-zero
with torch.no_grad():
    z_skip, rows_skip = clf_skip.encoder(x)  # only the present rows
    owner = torch.arange(N).repeat_interleave(M)[present.view(-1)]  # the sample of each row run
    f_skip = torch.zeros(N, D).index_add_(0, owner, z_skip.mean((2, 3))) / present.sum(1, keepdim=True)
    f_skip_skel = clf_skip.features(x)
print(f"rows run: {int(rows_skip.sum())} of {N * M}; persons per sample: {present.sum(1).tolist()}")
cmp("features, skip empty", f_skip, f_skip_skel)
cmp("two actors: unchanged", f_skip_skel[4:], f[4:])
print(f"one actor: |f_skip - f| / |f| = {((f_skip_skel[:4] - f[:4]).norm(dim=1) / f[:4].norm(dim=1)).mean():.3f} "
      f"(mean of the four samples)")

# %% [markdown]
# ## 3 · The head's initial weights
#
# The official STTFormer code (`model/sttformer.py`, `fc_init`) initialises its linear head with
# `nn.init.xavier_normal_` and a zero bias: weights drawn from
# $\mathcal{N}\big(0, \tfrac{2}{\text{fan\_in} + \text{fan\_out}}\big) = \mathcal{N}\big(0, \tfrac{2}{D + K}\big)$.
# `skel` does the same (`head_init="xavier"`, the default); `head_init="normal"`, this project's
# earlier head, draws with variance $2 / K$, which for few classes is several times larger: the
# initial logits are large and the first steps start confidently wrong. The two draw the same
# standard normals under one seed, so dividing each weight matrix by its standard deviation must
# give the same matrix.

# %%
heads = {init: classifier(head_init=init).fc for init in ("xavier", "normal")}
std = {"xavier": (2 / (D + K)) ** 0.5, "normal": (2 / K) ** 0.5}
cmp("w_xavier/s_x = w_normal/s_n", heads["xavier"].weight / std["xavier"], heads["normal"].weight / std["normal"])
cmp("bias is zero", heads["xavier"].bias, torch.zeros(K))
with torch.no_grad():
    feats = clf.features(x)
    lines = [f"{init:6s}: std formula {std[init]:.4f}, drawn {h.weight.std():.4f}; on 8 samples: logit std "
             f"{h(feats).std():.2f}, cross-entropy {F.cross_entropy(h(feats), torch.as_tensor(train_data.labels[picked])):.2f}"
             for init, h in heads.items()]
print("\n".join(lines) + f"\n(log K = {np.log(K):.2f}: the loss of a uniform guess)")

# %%
built = classifier(**scratch_options).config["head_init"]
print(f"build_classifier's default head_init: {built!r} (what run_finetune builds unless model_options says otherwise)")

# %% [markdown]
# ## 4 · What fine-tuning trains
#
# Everything: the encoder's parameters plus the head's $D K + K$. For this run's preset and data,
# and for the paper preset on NTU-60:

# %%
sizes = []
for name, k, model in ((preset, K, clf), ("paper", 60, build_classifier("paper", 60))):
    enc, head = count_parameters(model.encoder), count_parameters(model.fc)
    sizes.append([name, k, model.encoder.dim, enc, head, f"{100 * head / (enc + head):.2f}%"])
print(markdown_table(["preset", "classes K", "D", "encoder params", "head params (D K + K)", "head share"], sizes))

# %% [markdown]
# ## 5 · Train
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

# %%
used = {init: load_checkpoint(run / "finetune" / f"{init}-{fraction_tag(max(label_fractions))}" / "best.pt",
                              kind="finetune")["model_config"]["head_init"] for init in inits}
print("head_init of the fine-tuned checkpoints:", ", ".join(f"{model_name(k)} {v!r}" for k, v in used.items()))

# %% [markdown]
# ## 6 · The tables
#
# The paper's Tables 1 and 2 in one: test accuracy (%) of the checkpoint chosen on validation
# (`report_epoch = "best"`, the paper's protocol) or of the last epoch (`"last"`: steadier when the
# validation carve-out is only a dozen samples, as with 5-10% of a small set). The second table
# has both. First this run (CI scale), then the main job's when it is shipped.

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


def detail_table(rows: list[dict]) -> str:
    return markdown_table(
        ["model", "labels", "train / val samples", "best epoch", "val acc", "test acc (best val)", "test acc (last)"],
        [[model_name(s["init"]), fraction_label(s["label_fraction"]), f"{s['train_samples']} / {s['val_samples']}",
          s["best_epoch"], f"{100 * s['val_acc']:.1f}", f"{100 * s['test_acc_best_val']:.1f}",
          f"{100 * s['test_acc_last']:.1f}"] for s in rows])


display(Markdown(f"**This run** (CI scale), reported at the {report_epoch} epoch:\n\n" + accuracy_table(summary)))
print(detail_table(summary))

# %%
if main_job is not None:
    job_summary = json.loads((main_job / "finetune" / "summary.json").read_text())
    job_epoch = job_summary[0].get("report_epoch", "best")
    job_run = json.loads((main_job / "results.json").read_text()).get("run") or {} \
        if (main_job / "results.json").is_file() else {}
    shown = ("dataset", "dataset_options", "preset", "window", "epochs", "finetune_epochs", "label_fractions", "seed")
    params = job_run.get("parameters") or {  # else from the resolved pre-training config
        **json.loads((main_job / "pretrain" / "summary.json").read_text())[0]["config"],
        "label_fractions": sorted({r["label_fraction"] for r in job_summary}, reverse=True)}
    print("main job:", ", ".join(f"{k}={params[k]}" for k in shown if k in params))
    display(Markdown(f"**The main job** (`python -m skel run-all`), reported at the {job_epoch} epoch:\n\n"
                     + accuracy_table(job_summary)))
    print(detail_table(job_summary))


# %% [markdown]
# The gap to "scratch" in each column is the value of pre-training at that amount of labels. At
# CI scale (a few epochs of a tiny model on a small set) the differences are noise. The main job
# is larger (more samples and epochs: its parameters are printed above its table); the figures
# below put its numbers first.
#
# ## 7 · The same numbers as a figure
#
# Test accuracy per model and label fraction; the dashed line is chance, $1 / K$.

# %%
def class_names_of(folder: Path, rows: list[dict]) -> list[str]:
    r = rows[0]
    return json.loads((folder / "finetune" / f"{r['init']}-{fraction_tag(r['label_fraction'])}"
                       / "metrics.json").read_text())["class_names"]


sources = ([("main job", main_job, job_summary)] if main_job is not None else []) + [("this run (CI scale)", run, summary)]
for label, folder, rows in sources:
    fig = plot_accuracy_bars(rows, title=f"fine-tuned test accuracy, {label}")
    chance = 100 / len(class_names_of(folder, rows))
    fig.axes[0].axhline(chance, color="k", ls="--", lw=1, label=f"chance {chance:.1f}%")
    fig.axes[0].set_ylim(0, 100)
    fig.axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    plt.show()


# %% [markdown]
# **What the stored figures show.** The main job (first figure, 30 pre-training and 50 fine-tuning
# epochs, one seed): with 10 % of the labels SkeletonMAE, SkeletonMVAE and scratch end within 2.5
# points of each other (31.9, 29.4, 31.0 %) and SkeletonMVQVAE below them (19.6 %); with 5 % the
# two continuous latents are a little above scratch (16.7 and 17.1 against 13.5 %). All are well
# above chance (8.3 %) and far from solved. The CI-scale run (second figure, 3 epochs) is a smoke
# test whose bars sit near chance. RESULTS.md has the 3-seed comparisons on real data.

# %% [markdown]
# ## 8 · Learning curves
#
# Validation accuracy and training loss per epoch, with the fewest labels: a pre-trained encoder
# typically starts higher and gets there sooner. The dashed line is chance.

# %%
def learning_curves(folder: Path, rows: list[dict], label: str):
    fewest = min(r["label_fraction"] for r in rows)
    runs = {r["init"]: json.loads((folder / "finetune" / f"{r['init']}-{fraction_tag(fewest)}" / "metrics.json")
                                  .read_text())["epochs"] for r in rows if r["label_fraction"] == fewest}
    fig = plot_curves(runs, ["train_loss", "val_acc"], title=f"{label}: fine-tuning with {fraction_label(fewest)} labels")
    fig.axes[1].axhline(1 / len(class_names_of(folder, rows)), color="k", ls="--", lw=1)
    fig.axes[1].set_ylim(0, 1)
    return fig


for label, folder, rows in sources:
    learning_curves(folder, rows, label)
    plt.show()

# %% [markdown]
# ## 9 · Where the errors are
#
# The test confusion matrix of the best fine-tuned model with the most labels given (rows: true
# class, normalised), of the main job when shipped, else of this run. On the synthetic set a model
# that has learned the classes makes its mistakes at the deliberate look-alike pairs (wave left /
# right, punch / push, squat / bow); a CI-scale model that has not answers one or two classes for
# nearly everything.

# %%
label, folder, rows = sources[0]
most = max(r["label_fraction"] for r in rows)
best = max((r for r in rows if r["label_fraction"] == most), key=lambda r: r["test_acc"])
meta = json.loads((folder / "finetune" / f"{best['init']}-{fraction_tag(most)}" / "metrics.json").read_text())
which = "test_best_val" if best.get("report_epoch", "best") == "best" else "test_last"
fig = plot_confusion(meta[which]["confusion"], meta["class_names"],
                     title=f"{label}: {model_name(best['init'])}, {fraction_label(most)} labels")
plt.show()

# %% [markdown]
# ## Exercises
#
# Write your answer into the variable of the cell below each exercise, then run the checking cell
# after it. The checker computes the true value with `skel`, independently of your answer, and
# prints `correct`, `not yet: expected ...`, or `not answered yet` (for `None`). The answers come
# filled in, so that CI checks them against `skel` on every run: set them to `None` before you
# start. A worked solution is folded under each exercise.

# %% [markdown]
# **Exercise 1.** How many parameters does fine-tuning add on top of the encoder of the `paper`
# preset for NTU-120 (120 classes)?
#
# <details><summary>Solution</summary>
#
# Only the head: a $D \times K$ weight and $K$ biases, with $D = 256$ (the last block's width):
# $256 \cdot 120 + 120 = 30{,}840$, half a percent of the encoder's 6.2 M.
# </details>

# %%
ex1_head_parameters = 30840

# %%
paper_120 = build_classifier("paper", 120)
check("Exercise 1 (head parameters)", ex1_head_parameters,
      count_parameters(paper_120) - count_parameters(paper_120.encoder))

# %% [markdown]
# **Exercise 2.** What standard deviation do the head's initial weights have for the `paper`
# preset on NTU-60, with the official STTFormer initialisation? Three significant digits.
#
# <details><summary>Solution</summary>
#
# `xavier_normal_`: $\sqrt{2 / (\text{fan\_in} + \text{fan\_out})} = \sqrt{2 / (256 + 60)} = 0.0796$.
# (The earlier `normal` head: $\sqrt{2/60} = 0.183$, 2.3 times larger.)
# </details>

# %%
ex2_head_std = 0.0796

# %%
torch.manual_seed(seed)
drawn = build_classifier("paper", 60).fc.weight.std().item()  # 15 360 draws: within 1% of the true value
check("Exercise 2 (head std)", ex2_head_std, drawn, rel_tol=0.02)

# %% [markdown]
# **Exercise 3.** What test accuracy does a classifier get that always answers the most frequent
# class of this run's test set? Compare it with the chance line of the figures.
#
# <details><summary>Solution</summary>
#
# The synthetic test set is balanced, 16 samples in each of the 12 classes at `num_per_class =
# 16`: any constant answer is right on $1/12 = 8.3\%$ of it, the chance line. (On an unbalanced
# set the majority class beats $1/K$, and "chance" should be that.)
# </details>

# %%
ex3_majority_accuracy = 16 / 192

# %%
test_labels = load_dataset(dataset, "test", data_dir or None, **dataset_options).labels
check("Exercise 3 (majority class)", ex3_majority_accuracy,
      max(float((test_labels == c).mean()) for c in range(K)))

# %% [markdown]
# Next: `07_results.ipynb` probes the frozen encoders (linear layer, kNN), maps their features,
# and puts the cost beside the accuracy.
