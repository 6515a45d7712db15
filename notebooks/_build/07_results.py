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
#    pre-training has to beat.
# 3. **A map of the features**: the test samples' encoder features projected onto their two
#    leading principal axes, coloured by class.
# 4. **Cost** (the paper's Table 8): parameters, FLOPs per sample, pre-training time.
#
# Everything is written into the run folder: `OUT/probe/`, `OUT/cost.json`, `OUT/results.md`,
# and the figures into `OUT/figures/` (plus `figures_dir` when given: `python -m skel run-all
# --readme-figures` points it at the repo's `figures/`).

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

# %%
from skel.runall import experiment_parameters

P = experiment_parameters(globals())  # a misspelt name or a wrong type fails here (papermill only warns)

# %%
import json
import shutil
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from skel.data import load_dataset
from skel.data.feeder import Feeder, stratified_subset
from skel.models.classifier import build_classifier, encoder_options
from skel.models.cost import count_flops, count_parameters
from skel.notebook import setup
from skel.report import (accuracy_table, collect_results, cost_table, markdown_table, model_name, pca_2d,
                         plot_accuracy_bars, plot_curves, plot_feature_maps, results_markdown, save_figure)
from skel.runall import require, run_folder
from skel.train.checkpoint import load_checkpoint, save_checkpoint
from skel.train.config import ConfigError, PretrainConfig, ProbeConfig
from skel.train.distributed import DistInfo, resolve_device
from skel.train.pretrain import build_model
from skel.train.probe import extract_features, run_probe
from skel.utils import atomic_write_json, atomic_write_text

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
print(f"{dataset}: {len(train_data)} train / {len(test_data)} test samples; window {window}; "
      f"models: {', '.join(model_name(k) for k in latents)}" + (" + scratch" if scratch else ""))

# %% [markdown]
# ## 1 · Linear probe and kNN on frozen encoders
#
# The encoders under test: each pre-training checkpoint, and (for "scratch") the same network
# freshly initialised with the notebook's seed, saved as a checkpoint so that it goes through the
# same `run_probe` code.

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
display(Markdown(accuracy_table(finetuned, probe_rows)))

# %% [markdown]
# Read the table row by row against "scratch": a pre-trained encoder earns its place when its
# fine-tuned accuracy is higher with the same labels, most of all with few labels, and when its
# frozen features already separate the classes (probe, kNN) where random features do not.
#
# ## 2 · The same numbers as a figure

# %%
fig = plot_accuracy_bars(finetuned, title=f"fine-tuned test accuracy, {dataset}")
save_figure(fig, "finetune_accuracy", figure_folders)
plt.show()

# %% [markdown]
# ## 3 · A map of the frozen features
#
# Encoder features `(N, D)` of test samples (the encoder's pooled output, the input of the linear
# head), standardised per channel and projected with PCA onto two axes. Pre-training without labels should already gather
# samples of one class together; a random encoder's map is a smear shaped by pose and view.

# %%
info = DistInfo(rank=0, world_size=1, local_rank=0, device=resolve_device(device))
per_class = max(1, map_samples // test_data.num_classes)
idx = stratified_subset(test_data.labels, min(1.0, per_class / max(np.bincount(test_data.labels).min(), 1)), seed)
feeder = Feeder(test_data, window, train=False, indices=idx, seed=seed)
maps = {}
for key, path in encoders.items():
    ckpt = load_checkpoint(path, kind="pretrain")
    model = build_classifier(preset, test_data.num_classes, num_joints=test_data.num_joints,
                             num_persons=test_data.num_persons, num_frames=window, in_channels=test_data.num_channels,
                             **encoder_options(ckpt))  # run the encoder as it was pre-trained
    model.load_encoder(ckpt["model"])
    feats, labels = extract_features(model.to(info.device), feeder, batch_size, info, progress=False)
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)  # standardised: no few channels dominate the axes
    maps[key if key != "scratch" else "scratch (random init)"] = (pca_2d(feats).numpy(), labels.numpy())
fig = plot_feature_maps(maps, test_data.class_names, title="frozen encoder features, PCA")
save_figure(fig, "feature_maps", figure_folders)
plt.show()
print(f"{len(idx)} test samples mapped")

# %% [markdown]
# ## 4 · Cost
#
# Parameters of the whole pre-training model (encoder, latent, decoder) and of the encoder alone
# (what fine-tuning keeps), FLOPs of one pre-training forward pass on one sample at this window
# (counted by `torch.utils.flop_counter`, multiply-add = 2 FLOPs), and the measured pre-training
# time of notebook 05. The paper's Table 8 reports the same three for its full-size models:
# MVAE +14 M parameters and +2.1 GFLOPs over SkeletonMAE, MVQVAE -1 M and -6.5 GFLOPs (its
# decoder is shallower).

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
print(markdown_table(["model", "params", "encoder params", "MFLOPs / sample"],
                     [[model_name(c["latent"]), c["params"], c["encoder_params"], f"{1e3 * c['gflops']:.1f}"] for c in cost]))

# %% [markdown]
# (Pre-training times are in `OUT/results.md`; they vary between machines and are not printed here.)
#
# ## 5 · Pre-training curves side by side

# %%
histories = {k: json.loads((run / "pretrain" / k / "metrics.json").read_text())["epochs"] for k in latents}
fig = plot_curves(histories, ["train_recon", "val_recon"], title="masked-joint reconstruction error")
save_figure(fig, "pretrain_recon", figure_folders)
plt.show()

# %% [markdown]
# ## 6 · Written into the run folder

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
# figures quoted in the README come from `python -m skel run-all` (see its `results.md`), and the
# paper-scale runs from `notebooks/configs/*.yaml`.
