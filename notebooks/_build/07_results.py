# %% [markdown]
# # 07 · Results: SkeletonMAE vs SkeletonMVAE vs SkeletonMVQVAE vs no pre-training
#
# The comparison the project exists for, from the runs of notebooks 05 and 06 in one run folder:
#
# 1. **Fine-tuning** (the paper's Tables 1-2): accuracy with all labels and with 10% / 5% of them.
# 2. **Frozen features**: a linear probe (one linear layer on the frozen encoder's pooled
#    features) and a k-nearest-neighbour vote (cosine similarity, $k = 20$, votes weighted by
#    $e^{s/0.07}$). These test the representation itself, with no end-to-end training to hide a
#    weak one. The "scratch" row here is an encoder with **random** weights: the floor any
#    pre-training has to beat. Section 2 derives both, and the BatchNorm re-estimation that
#    precedes them, and checks each step against `skel.train.probe`.
# 3. **A map of the features**: the test samples' encoder features projected onto their two
#    leading principal axes, coloured by class.
# 4. **Cost** (the paper's Table 8): parameters, FLOPs per sample, pre-training time.
#
# Everything is written into the run folder: `OUT/probe/`, `OUT/cost.json`, `OUT/results.md`,
# and the figures into `OUT/figures/` (plus `figures_dir` when given: `python -m skel run-all
# --readme-figures` points it at the repo's `figures/`). The stored outputs are a CI-scale smoke
# run; the tables and figures also show the main job's results (`python -m skel run-all`,
# shipped in `notebooks/assets/main_job/`).

# %% tags=["parameters"]
dataset: str = "synthetic"  # a name in skel.data.DATASETS
data_dir: str = ""  # folder of the dataset; "": its default (synthetic needs none)
dataset_options: dict = {"num_per_class": 16}  # reader options; must match notebooks 05 and 06
out: str = ""  # run folder holding pretrain/ and finetune/ from 05, 06; "": runs/notebooks under the repo root
preset: str = "tiny"  # model size: the pre-training preset
latents: list[str] = ["none", "vae", "vq"]  # pre-trained encoders to compare (from OUT/pretrain/)
scratch: bool = True  # include the no-pre-training baseline (random encoder for probe, kNN and map)
seed: int = 0  # one seed for the whole notebook
device: str = "auto"  # auto (cuda when available) | cpu | cuda
threads: int = 1  # torch CPU threads, fixed so the stored outputs are stable; 0: the torch default
num_workers: int = 0  # data loader processes; 8 on a GPU machine
batch_size: int = 16  # feature-extraction batch (the probe batch comes from its recipe)
checkpoint: str = "best"  # which pre-training checkpoint: best (lowest validation loss) | last
probe_epochs: int = 0  # linear-probe epochs; 0: the recipe of the preset (tiny 30, paper 100)
knn_k: int = 20  # neighbours in the kNN vote
map_samples: int = 240  # test samples in the feature map (the first of each class, evenly)
figures_dir: str = ""  # also save the key figures here ("": only OUT/figures/)
max_samples: int = 0  # use at most this many training samples (smoke runs); 0: all
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
from torch.utils.data import DataLoader

from skel.data import load_dataset
from skel.data.feeder import Feeder, load_indices, stratified_subset
from skel.models.classifier import build_classifier, encoder_options
from skel.models.cost import count_flops, count_parameters
from skel.notebook import check, cmp, setup
from skel.report import (accuracy_table, collect_results, cost_table, markdown_table, model_color, model_name,
                         pca_2d, plot_accuracy_bars, plot_curves, plot_feature_maps, results_markdown, save_figure,
                         shipped_folder)
from skel.runall import require, run_folder
from skel.train.bn import recompute_batchnorm
from skel.train.checkpoint import load_checkpoint, save_checkpoint
from skel.train.config import ConfigError, PretrainConfig, ProbeConfig
from skel.train.distributed import DistInfo, resolve_device
from skel.train.pretrain import build_model
from skel.train.probe import extract_features, knn_accuracy, recompute_encoder_batchnorm, run_probe, train_linear
from skel.utils import atomic_write_json, atomic_write_text, repo_root

if checkpoint not in ("best", "last"):
    raise ConfigError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
g = setup(seed, threads or torch.get_num_threads())
run = run_folder(out)
pretrained = {s["latent"]: s for s in json.loads(
    require(run / "pretrain" / "summary.json", "notebooks/05_pretraining.ipynb").read_text())}
finetuned = json.loads(require(run / "finetune" / "summary.json", "notebooks/06_finetuning.ipynb").read_text())
missing = [k for k in latents if k not in pretrained]
if missing:
    raise FileNotFoundError(f"{run / 'pretrain' / 'summary.json'} has no {', '.join(missing)}: "
                            f"run notebooks/05_pretraining.ipynb with latents including them")
figure_folders = [run / "figures"] + ([figures_dir] if figures_dir else [])
pre_cfg = {k: PretrainConfig.from_dict(s["config"]) for k, s in pretrained.items()}  # resolved in 05
window = next(iter(pre_cfg.values())).window
train_data = load_dataset(dataset, "train", data_dir or None, **dataset_options)
test_data = load_dataset(dataset, "test", data_dir or None, **dataset_options)
K = train_data.num_classes
print(f"{dataset}: {len(train_data)} train / {len(test_data)} test samples, {K} classes; window {window}; "
      f"models: {', '.join(model_name(k) for k in latents)}" + (" + scratch" if scratch else ""))


main_job = shipped_folder(shipped, "the tables and figures show this run only")

# %% [markdown]
# ## 1 · Linear probe and kNN on frozen encoders
#
# The encoders under test: each pre-training checkpoint, and (for "scratch") the same network
# freshly initialised with the notebook's seed, saved as a checkpoint so that it goes through the
# same `run_probe` code. Section 2 takes `run_probe` apart.

# %%
# NBVAL_IGNORE_OUTPUT
if (run / "probe").exists():
    shutil.rmtree(run / "probe")
encoders = {k: str(run / "pretrain" / k / f"{checkpoint}.pt") for k in latents}
if scratch:
    base = next(iter(pre_cfg.values()))
    random_cfg = PretrainConfig.from_dict({**base.to_dict(), "latent": "none", "lr": None}).resolve()
    torch.manual_seed(seed)
    random_model = build_model(random_cfg, train_data)
    (run / "probe").mkdir(parents=True, exist_ok=True)
    encoders["scratch"] = str(run / "probe" / "random_init.pt")
    save_checkpoint(encoders["scratch"], kind="pretrain", model=random_model.state_dict(), epoch=0,
                    config=random_cfg.to_dict())
probes = {}
for key, path in encoders.items():
    print(f"--- {model_name(key)}")
    probes[key] = run_probe(ProbeConfig.from_dict({
        "dataset": dataset, "data_dir": data_dir or None, "dataset_options": dataset_options, "init": path,
        "preset": preset, "epochs": probe_epochs or None, "knn_k": knn_k, "max_samples": max_samples or None, "seed": seed,
        "device": device, "threads": threads or None, "num_workers": num_workers, "out": str(run / "probe" / key),
        "progress": False,
    }))

# %%
probe_rows = [{"init": k, "linear_acc": r["linear"]["test_top1_best_val"], "linear_acc_last": r["linear"]["test_top1_last"],
               "knn_acc": r["knn"]["top1"], "feature_dim": r["feature_dim"]} for k, r in probes.items()]
atomic_write_json(run / "probe" / "summary.json", probe_rows)
display(Markdown("**This run** (CI scale):\n\n" + accuracy_table(finetuned, probe_rows)))
if main_job is not None:
    job = collect_results(main_job)
    display(Markdown("**The main job** (`python -m skel run-all`):\n\n" + accuracy_table(job["finetune"], job["probe"])))

# %% [markdown]
# Read the table row by row against "scratch": a pre-trained encoder earns its place when its
# fine-tuned accuracy is higher with the same labels, most of all with few labels, and when its
# frozen features already separate the classes (probe, kNN) where random features do not.
#
# ## 2 · What `run_probe` computes, step by step
#
# For one pre-trained encoder (the first of `latents`), on the same training / validation / test
# indices `run_probe` used (its `indices.npz`):
#
# 1. build the classifier, load the encoder (notebook 06), and freeze it;
# 2. re-estimate its BatchNorm statistics on the unmasked training samples;
# 3. extract the pooled features $f \in \mathbb{R}^D$ of every sample (centre crop, no rotation);
# 4. train a linear layer on the training features, keep the epoch of best validation accuracy;
# 5. vote with the $k$ nearest training features.
#
# ### 2.1 · Why the BatchNorm statistics are re-estimated
#
# A BatchNorm layer in eval mode normalises with the running mean and variance it accumulated in
# training. Pre-training ran the encoder on the **visible** tokens only: 60% of the frames times
# 60% of the joints, 36% of the grid. On a whole sequence the attention mixes all frames and
# joints, and the activations entering each BatchNorm layer have another mean and variance, so
# the stored statistics no longer normalise them: features come out shifted and scaled per
# channel. The fix changes no weight: reset each layer's statistics and run the unmasked
# training samples (centre crops, no rotation) through the encoder with the BatchNorm layers in
# training mode, averaging the per-batch means and unbiased variances over the batches
# (`momentum=None` in torch). Below, our few lines against that definition (recorded at every
# layer's input) and against `skel`, the change of every layer's variance, and the layer that
# moved most, channel by channel. In the stored run the layers that move most are those right
# after the spatial attention (`out_s`), whose input mixes the positions of a tuple: 150 on a
# whole sequence (6 frames x 25 joints), 90 in pre-training (6 x 15).

# %%
probe_key = latents[0]
pcfg = ProbeConfig.from_dict(probes[probe_key]["config"])  # the resolved recipe run_probe used
idx = load_indices(run / "probe" / probe_key / "indices.npz")
info = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
feeders = {"train": Feeder(train_data, pcfg.window, train=False, indices=idx["train"], seed=seed),
           "val": Feeder(train_data, pcfg.window, train=False, indices=idx["val"], seed=seed),
           "test": Feeder(test_data, pcfg.window, train=False, indices=idx["test"], seed=seed)}
ckpt = load_checkpoint(encoders[probe_key], kind="pretrain")


def frozen_encoder():
    torch.manual_seed(seed)
    model = build_classifier(preset, K, num_joints=train_data.num_joints, num_persons=train_data.num_persons,
                             num_frames=pcfg.window, in_channels=train_data.num_channels, **encoder_options(ckpt))
    model.load_encoder(ckpt["model"])
    return model.eval().requires_grad_(False)


ours, theirs = frozen_encoder(), frozen_encoder()
bns = {name: m for name, m in ours.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
before = {name: (bn.running_mean.clone(), bn.running_var.clone()) for name, bn in bns.items()}
seen = {name: [] for name in bns}  # per batch: (mean, unbiased variance) of each channel of the layer's input


def record(name):
    def hook(module, args):
        h = args[0].detach().transpose(0, 1).flatten(1)  # (channels, batch x positions)
        seen[name].append((h.mean(1), h.var(1)))
    return hook


hooks = [bn.register_forward_pre_hook(record(name)) for name, bn in bns.items()]
for bn in bns.values():
    bn.reset_running_stats()
    bn.momentum = None  # cumulative average over the batches
    bn.train()  # normalise with the batch's statistics and update the running ones
loader = DataLoader(feeders["train"], batch_size=pcfg.batch_size, shuffle=True,
                    generator=torch.Generator().manual_seed(seed), drop_last=len(feeders["train"]) > pcfg.batch_size)
with torch.no_grad():
    for x, _ in loader:
        ours.features(x)
for h in hooks:
    h.remove()
for bn in bns.values():
    bn.momentum = 0.1  # torch's default, what the encoder was built with
ours.eval()
# the definition: running mean / variance = the mean over batches of each batch's mean / unbiased variance
mean_def = torch.cat([torch.stack([m for m, _ in seen[n]]).mean(0) for n in bns])
var_def = torch.cat([torch.stack([v for _, v in seen[n]]).mean(0) for n in bns])
# in units of each channel's standard deviation (the variances span orders of magnitude)
cmp("running_mean, all layers", torch.cat([bn.running_mean for bn in bns.values()]) / var_def.sqrt(),
    mean_def / var_def.sqrt())
cmp("running_var, all layers", torch.cat([bn.running_var for bn in bns.values()]) / var_def, torch.ones_like(var_def))
counts = recompute_encoder_batchnorm(theirs, feeders["train"], pcfg.batch_size, info, None, pcfg.seed, pcfg.bn_batches)
for name, buf in ours.state_dict().items():
    torch.testing.assert_close(buf, theirs.state_dict()[name], rtol=1e-5, atol=1e-6)
print(f"skel.train.probe.recompute_encoder_batchnorm: {counts['layers']} layers, {counts['batches']} batches "
      f"({counts['samples']} samples); every buffer equals ours\n")
ratio = {n: (bns[n].running_var / before[n][1]).mean().item() for n in bns}
print(markdown_table(["BatchNorm layer", "channels", "running_var after / before (channel mean)"],
                     [[n.removeprefix("encoder."), bns[n].num_features, f"{r:.2f}"] for n, r in ratio.items()]))
layer = max(ratio, key=ratio.get)  # drawn below: the layer whose variance moved most

# %%
fig, ax = plt.subplots(figsize=(4.2, 3.4))
var_before, var_after = before[layer][1], bns[layer].running_var
ax.scatter(var_before, var_after, s=8)
lo = min(var_before.min().item(), var_after.min().item()) * 0.8
hi = max(var_before.max().item(), var_after.max().item()) * 1.25
ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="unchanged")
ax.set(xscale="log", yscale="log")
ax.set(xlabel="running_var from pre-training (masked)", ylabel="re-estimated (unmasked)",
       title=f"{model_name(probe_key)}: {layer}, one dot per channel")
ax.legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# ### 2.2 · The features, with and without the re-estimation
#
# The features are the classifier's `features(x)` (notebook 06: encoder, mean over tuples,
# positions and persons) of the frozen, eval-mode encoder. We compute them for a few test
# samples by hand and compare with `skel.train.probe.extract_features`; then for all samples
# with each set of BatchNorm statistics.

# %%
with torch.no_grad():
    x_few = torch.stack([feeders["test"][i][0] for i in range(4)])
    f_few = ours.features(x_few)
f_skel, y_skel = extract_features(ours, feeders["test"], pcfg.batch_size, info, progress=False)
cmp("features of 4 test samples", f_few, f_skel[:4])
feats = {name: extract_features(ours, feeders[name], pcfg.batch_size, info, progress=False) for name in feeders}
stale = {name: extract_features(frozen_encoder(), feeders[name], pcfg.batch_size, info, progress=False)
         for name in feeders}


# %% [markdown]
# ### 2.3 · The linear probe
#
# The features are standardised with the training mean and standard deviation, then one linear
# layer $W f + b$ ($D K + K$ parameters) is trained with cross-entropy, Adam on mini-batches; each
# epoch is scored on the validation samples and the best epoch's test accuracy is reported. In a
# few lines, with `run_probe`'s recipe (`pcfg`), and against `train_linear` and `run_probe`'s own
# result:

# %%
def linear_probe(train, val, test, epochs, lr, weight_decay, batch, seed):
    mean, std = train[0].mean(0), train[0].std(0).clamp_min(1e-6)
    (xtr, ytr), (xva, yva), (xte, yte) = [((f - mean) / std, y) for f, y in (train, val, test)]
    torch.manual_seed(seed)
    head = torch.nn.Linear(xtr.shape[1], K)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    order = torch.Generator().manual_seed(seed)
    best = (-1.0, None, None)  # (val acc, epoch, test acc)
    for epoch in range(1, epochs + 1):
        for b in torch.randperm(len(xtr), generator=order).split(batch):
            loss = F.cross_entropy(head(xtr[b]), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            val_acc = (head(xva).argmax(1) == yva).float().mean().item()
            test_acc = (head(xte).argmax(1) == yte).float().mean().item()
        if val_acc > best[0]:
            best = (val_acc, epoch, test_acc)
    return best


assert pcfg.probe_optimizer == "adam", "the derivation follows the Adam recipe"
val_acc, best_epoch, test_acc = linear_probe(feats["train"], feats["val"], feats["test"], pcfg.epochs, pcfg.lr,
                                             pcfg.weight_decay, pcfg.batch_size, pcfg.seed)
skel_linear = train_linear(feats["train"], feats["val"], feats["test"], K, pcfg)
cmp("best epoch", best_epoch, skel_linear["best_epoch"])
cmp("test acc, ours vs train_linear", test_acc, skel_linear["test_top1_best_val"])
cmp("test acc, ours vs run_probe", test_acc, probes[probe_key]["linear"]["test_top1_best_val"])
print(f"linear probe, {pcfg.epochs} epochs of Adam (lr {pcfg.lr:g}, batch {pcfg.batch_size}): best validation epoch "
      f"{best_epoch}, test accuracy {test_acc:.3f}; with the pre-training BatchNorm statistics: "
      f"{linear_probe(stale['train'], stale['val'], stale['test'], pcfg.epochs, pcfg.lr, pcfg.weight_decay, pcfg.batch_size, pcfg.seed)[2]:.3f}")


# %% [markdown]
# ### 2.4 · The weighted kNN vote
#
# No training at all: each test feature $q$ is compared with every feature $b_j$ of the bank (the
# training and validation samples) by cosine similarity
# $s_j = \frac{q^\top b_j}{\lVert q\rVert\,\lVert b_j\rVert}$; the $k$ most similar vote for their
# class with weight $e^{s_j / \tau}$ ($\tau = 0.07$, Wu et al. 2018: the closest neighbours
# dominate), and the class with the largest summed weight wins.

# %%
def knn_predict(bank_f, bank_y, query_f, k, temperature):
    sim = F.normalize(query_f, dim=1) @ F.normalize(bank_f, dim=1).T  # (Nq, Nb) cosine similarities
    top, nearest = sim.topk(k, dim=1)  # (Nq, k)
    scores = torch.zeros(len(query_f), K).scatter_add_(1, bank_y[nearest], (top / temperature).exp())
    return scores.argmax(1)  # (Nq,) predicted class


bank_f = torch.cat([feats["train"][0], feats["val"][0]])
bank_y = torch.cat([feats["train"][1], feats["val"][1]])
test_f, test_y = feats["test"]
pred = knn_predict(bank_f, bank_y, test_f, pcfg.knn_k, pcfg.knn_temperature)
knn_ours = (pred == test_y).float().mean().item()
cmp("kNN acc, ours vs knn_accuracy", knn_ours,
    knn_accuracy(bank_f, bank_y, test_f, test_y, K, pcfg.knn_k, pcfg.knn_temperature)["top1"])
cmp("kNN acc, ours vs run_probe", knn_ours, probes[probe_key]["knn"]["top1"])
stale_bank = torch.cat([stale["train"][0], stale["val"][0]])
knn_stale = (knn_predict(stale_bank, bank_y, stale["test"][0], pcfg.knn_k, pcfg.knn_temperature) == test_y).float().mean()
print(f"kNN (k={pcfg.knn_k}, T={pcfg.knn_temperature}): {knn_ours:.3f} with re-estimated BatchNorm statistics, "
      f"{knn_stale:.3f} with pre-training's; chance {1 / K:.3f}")


# %% [markdown]
# ## 3 · The accuracies as figures
#
# Fine-tuned test accuracy per label fraction, then the frozen-feature accuracies (linear probe,
# kNN), for the main job (when shipped) and for this run. The dashed line is chance, $1 / K$.

# %%
def chance_line(ax, classes: int) -> None:
    ax.axhline(100 / classes, color="k", ls="--", lw=1, label=f"chance {100 / classes:.1f}%")
    ax.set_ylim(0, 100)


def probe_bars(rows: list[dict], title: str):
    order = [k for k in ("none", "vae", "vq", "scratch") if k in {r["init"] for r in rows}]
    by = {r["init"]: r for r in rows}
    fig, ax = plt.subplots(figsize=(4.2, 2.8))
    width, used = 0.8 / len(order), []
    for i, key in enumerate(order):
        used.append(model_color(key, taken=used))
        xs = [j + (i - (len(order) - 1) / 2) * width for j in range(2)]
        ax.bar(xs, [100 * by[key]["linear_acc"], 100 * by[key]["knn_acc"]], width, color=used[-1], label=model_name(key))
    ax.set_xticks([0, 1], ["linear probe", f"kNN"])
    ax.set(ylabel="test accuracy (%)", title=title)
    return fig


sources = ([("main job", job["finetune"], job["probe"])] if main_job is not None else []) + [
    ("this run (CI scale)", finetuned, probe_rows)]
for label, ft_rows, pr_rows in sources:
    fig = plot_accuracy_bars(ft_rows, title=f"fine-tuned test accuracy, {label}")
    chance_line(fig.axes[0], K)
    fig.axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    save_figure(fig, "finetune_accuracy" + ("_main_job" if label == "main job" else ""), figure_folders)
    plt.show()
    fig = probe_bars(pr_rows, f"frozen encoders, {label}")
    chance_line(fig.axes[0], K)
    fig.axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    plt.tight_layout()
    plt.show()

# %% [markdown]
# **What the stored figures show.** In the main job the frozen encoders tell more than the
# fine-tuned ones: SkeletonMAE's features give a linear probe of 60.2 % and a kNN of 49.4 %
# against a random encoder's 46.5 and 40.6 %, SkeletonMVAE's 54.4 and 44.8 %, SkeletonMVQVAE's
# 41.9 and 37.7 % (below the random encoder: its collapsed codebook taught its encoder little).
# The CI-scale run's bars (3 pre-training epochs) are all within a few points of each other.

# %% [markdown]
# ## 4 · A map of the frozen features
#
# Encoder features `(N, D)` of test samples (the encoder's pooled output, the input of the linear
# head, after the BatchNorm re-estimation as in the probe), standardised per channel and
# projected with PCA onto two axes. Pre-training without labels should gather samples of one
# class together; a random encoder's map is shaped by pose and view. The map needs the
# checkpoints, so it is this run's (CI scale: a few pre-training epochs), not the main job's;
# at this scale expect little more structure than the random encoder's.

# %%
per_class = max(1, map_samples // test_data.num_classes)
map_idx = stratified_subset(test_data.labels, min(1.0, per_class / max(np.bincount(test_data.labels).min(), 1)), seed)
map_feeder = Feeder(test_data, window, train=False, indices=map_idx, seed=seed)
maps = {}
for key, path in encoders.items():
    ck = load_checkpoint(path, kind="pretrain")
    model = build_classifier(preset, test_data.num_classes, num_joints=test_data.num_joints,
                             num_persons=test_data.num_persons, num_frames=window, in_channels=test_data.num_channels,
                             **encoder_options(ck))  # run the encoder as it was pre-trained
    model.load_encoder(ck["model"])
    recompute_encoder_batchnorm(model, Feeder(train_data, window, train=False, indices=load_indices(
        run / "probe" / key / "indices.npz")["train"]), pcfg.batch_size, info, None, seed, pcfg.bn_batches)
    f_map, labels = extract_features(model, map_feeder, batch_size, info, progress=False)
    f_map = (f_map - f_map.mean(0)) / (f_map.std(0) + 1e-6)  # standardised: no few channels dominate the axes
    maps[key if key != "scratch" else "scratch (random init)"] = (pca_2d(f_map).numpy(), labels.numpy())
fig = plot_feature_maps(maps, test_data.class_names, title="frozen encoder features, PCA (this run)")
save_figure(fig, "feature_maps", figure_folders)
plt.show()
print(f"{len(map_idx)} test samples mapped")

# %% [markdown]
# ## 5 · Cost
#
# Parameters of the whole pre-training model (encoder, latent, decoder) and of the encoder alone
# (what fine-tuning keeps), and FLOPs of one pre-training forward pass on one sample, masking
# included (counted by `torch.utils.flop_counter`, multiply-add = 2 FLOPs), at **this run's
# preset and window** (printed above the table). These are small models: the paper's Table 8
# (MVAE +14 M parameters and +2.1 GFLOPs over SkeletonMAE, MVQVAE -1 M and -6.5 GFLOPs) is about
# the `paper` preset at 120 frames, which `skel.models.cost.cost_table()` computes with the
# reasons our differences from it have (`NOTES` there; `docs/deviations.md`).

# %%
cost = []
for key in latents:
    cfg = pre_cfg[key]
    model = build_model(cfg, train_data)
    x = torch.zeros(1, train_data.num_channels, cfg.window, train_data.num_joints, train_data.num_persons)
    model.eval()
    cost.append({"latent": key, "params": count_parameters(model), "encoder_params": count_parameters(model.encoder),
                 "gflops": count_flops(model, x, generator=torch.Generator().manual_seed(seed)) / 1e9, "pretrain_seconds": pretrained[key]["pretrain_seconds"]})
atomic_write_json(run / "cost.json", cost)
cfg0 = next(iter(pre_cfg.values()))
print(f"this run: preset {cfg0.preset}, window {cfg0.window} frames, {train_data.num_joints} joints, "
      f"{train_data.num_persons} persons")
print(markdown_table(["model", "params", "encoder params", "MFLOPs / sample"],
                     [[model_name(c["latent"]), c["params"], c["encoder_params"], f"{1e3 * c['gflops']:.1f}"] for c in cost]))
if main_job is not None:
    job_cfg = json.loads((main_job / "pretrain" / "summary.json").read_text())[0]["config"]  # resolved in its 05
    print(f"\nmain job: preset {job_cfg['preset']}, window {job_cfg['window']} frames, {job_cfg['dataset']} "
          f"{job_cfg.get('dataset_options') or ''}; pre-training times measured on its machine")
    print(cost_table(job["cost"]))

# %% [markdown]
# (This run's pre-training times are in `OUT/results.md`; they vary between machines and are not
# printed here.)
#
# ## 6 · Pre-training curves side by side
#
# The masked-joint reconstruction error per epoch, training and validation.

# %%
curve_sources = ([("main job", main_job)] if main_job is not None else []) + [("this run (CI scale)", run)]
for label, folder in curve_sources:
    keys = [k for k in ("none", "vae", "vq") if (folder / "pretrain" / k / "metrics.json").is_file()]
    histories = {k: json.loads((folder / "pretrain" / k / "metrics.json").read_text())["epochs"] for k in keys}
    fig = plot_curves(histories, ["train_recon", "val_recon"], title=f"masked-joint reconstruction error, {label}")
    save_figure(fig, "pretrain_recon" + ("_main_job" if label == "main job" else ""), figure_folders)
    plt.show()

# %% [markdown]
# ## 7 · Written into the run folder

# %%
results = collect_results(run)
atomic_write_text(run / "results.md", results_markdown(results))
atomic_write_json(run / "results.json", results)
print("figures in:", ", ".join("OUT/figures" if f == run / "figures" else str(f) for f in figure_folders))
print(results_markdown(results, times=False))

# %% [markdown]
# What to take from a run: the fine-tuning columns answer "does pre-training help, and which
# latent helps most"; the probe and kNN columns answer "is the representation good without
# labels"; the cost table says what the answer costs. At CI scale these are smoke numbers; the
# figures quoted in the README come from `python -m skel run-all` (see its `results.md`, shipped
# as `notebooks/assets/main_job/`), and the paper-scale runs from `notebooks/configs/*.yaml`.
#
# ## Exercises
#
# Write your answer into the variable of the cell below each exercise, then run the checking cell
# after it. The checker computes the true value with `skel`, independently of your answer, and
# prints `correct`, `not yet: expected ...`, or `not answered yet` (for `None`). The answers come
# filled in, so that CI checks them against `skel` on every run: set them to `None` before you
# start. A worked solution is folded under each exercise.

# %% [markdown]
# **Exercise 1.** With $k = 1$ the weighted vote has a single voter, so its weight does not
# matter: the kNN is the nearest-neighbour classifier. Predict its test accuracy on the features
# of section 2 from the cosine similarity matrix `sim` of the test features (rows) against the
# bank (columns).
#
# <details><summary>Solution</summary>
#
# Each test sample takes the label of its most similar bank sample:
# `(bank_y[sim.argmax(1)] == test_y).double().mean()`.
# </details>

# %%
sim = F.normalize(test_f, dim=1) @ F.normalize(bank_f, dim=1).T  # (test samples, bank samples)
ex1_accuracy = (bank_y[sim.argmax(1)] == test_y).double().mean().item()

# %%
check("Exercise 1 (1-NN accuracy)", ex1_accuracy, knn_accuracy(bank_f, bank_y, test_f, test_y, K, k=1)["top1"],
      rel_tol=1e-6)

# %% [markdown]
# **Exercise 2.** How many numbers does the BatchNorm re-estimation of section 2.1 overwrite in
# this run's encoder (the `tiny` preset): running means and running variances, leaving out
# `num_batches_tracked`?
#
# <details><summary>Solution</summary>
#
# One mean and one variance per channel of every BatchNorm layer: the table of section 2.1 lists
# 4 layers of 32 channels and 5 of 64, so $2 \cdot (4 \cdot 32 + 5 \cdot 64) = 896$.
# </details>

# %%
ex2_values = 896

# %%
fresh = frozen_encoder()
state0 = {k: v.clone() for k, v in fresh.state_dict().items()}
recompute_batchnorm(fresh, [torch.stack([feeders["train"][i][0] for i in range(4)])])  # one batch of 4
check("Exercise 2 (values re-estimated)", ex2_values,
      sum(v.numel() for k, v in fresh.state_dict().items() if "running_" in k and not torch.equal(v, state0[k])))

# %% [markdown]
# **Exercise 3.** How many parameters does the linear probe train on this run's features?
#
# <details><summary>Solution</summary>
#
# A $D \times K$ weight and $K$ biases on $D = 64$ features (the `tiny` encoder's width) and
# $K = 12$ classes: $64 \cdot 12 + 12 = 780$, the same head as fine-tuning's, with the encoder
# frozen.
# </details>

# %%
ex3_probe_parameters = 780

# %%
check("Exercise 3 (probe parameters)", ex3_probe_parameters,
      sum(v.numel() for v in train_linear(feats["train"], feats["val"], feats["test"], K, pcfg)["head"].values()))
