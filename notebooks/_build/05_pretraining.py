# %% [markdown]
# # 05 · Pre-training SkeletonMAE, SkeletonMVAE and SkeletonMVQVAE
#
# Notebooks 02-04 built the pieces: the spatial-temporal mask, the STTFormer encoder, and the two
# latent spaces. Here we put them together, follow one batch through the whole model by hand, and
# then train the three models the way the paper does, without labels:
#
# | model | latent between encoder and decoder | loss |
# |---|---|---|
# | **SkeletonMAE** (`none`) | none | $\mathcal{L}_{rec}$ |
# | **SkeletonMVAE** (`vae`) | Gaussian, $z = \mu + \sigma \epsilon$, dim 25 | $\mathcal{L}_{rec} + \beta\,\mathrm{KL}(q(z\mid x)\,\Vert\,\mathcal{N}(0, I))$, $\beta = 0.005$ |
# | **SkeletonMVQVAE** (`vq`) | nearest of $K = 128$ codes, straight-through | $\mathcal{L}_{rec} + \Vert \mathrm{sg}[z] - e \Vert^2 + \beta \Vert z - \mathrm{sg}[e] \Vert^2$, $\beta = 0.25$ |
#
# $\mathcal{L}_{rec}$ is the squared error on the **masked** joints only (the MAE convention): the
# encoder sees 60% of the frames and 60% of the joints (mask rates $M_t = M_j = 0.4$), the decoder
# fills the grid back with mask tokens and predicts every coordinate. How the squared errors are
# added up (the *reduction*) is a model option, `loss_reduction`; section 1 derives both.
#
# All training goes through one function per stage, `skel.train.run_pretrain(config)`, the same
# code `python -m skel pretrain` and `torchrun` run. The notebook chooses the settings, draws what
# happened, and writes the checkpoints that notebooks 06 and 07 read:
#
# ```
# OUT/pretrain/{none,vae,vq}/   best.pt  last.pt  metrics.csv  metrics.json  indices.npz
# OUT/pretrain/summary.json     one line per model, for the results table
# ```
#
# The run this notebook makes is at CI scale (a tiny model, a small synthetic set, a few epochs):
# a smoke test. The curves a reader should look at are those of the **main job**
# (`python -m skel run-all` at its defaults: 30 epochs on the larger synthetic set), shipped as
# small metrics files in `notebooks/assets/main_job/` and drawn beside this run's (parameter
# `shipped`).

# %% tags=["parameters"]
dataset: str = "synthetic"  # a name in skel.data.DATASETS
data_dir: str = ""  # folder of the dataset; "": its default (synthetic needs none)
dataset_options: dict = {"num_per_class": 16}  # reader options; CI scale; synthetic default: 40 per class
out: str = ""  # run folder; "": runs/notebooks under the repo root (relative paths too)
preset: str = "tiny"  # model size and recipe: tiny | small | paper
latents: list[str] = ["none", "vae", "vq"]  # none: SkeletonMAE, vae: SkeletonMVAE, vq: SkeletonMVQVAE
seed: int = 0  # one seed for the whole notebook
device: str = "auto"  # auto (cuda when available) | cpu | cuda
threads: int = 1  # torch CPU threads, fixed so the stored outputs are stable; 0: the torch default
num_workers: int = 0  # data loader processes; 8 on a GPU machine
batch_size: int = 16  # CI scale; paper: 64
epochs: int = 6  # CI scale; paper: 200
lr: float = 0.0  # 0: the paper value per latent: 1.0e-3 (none, vae), 1.0e-2 (vq)
lr_steps: list[int] = []  # epochs after which lr x0.1; []: the preset's (paper: 60, 90, 110 of 200; tiny/small: 80 %)
window: int = 36  # frames per sample, a multiple of 6 (the tuple length); paper: 120
mask_frames: float = 0.4  # M_t; paper: 0.4
mask_joints: float = 0.4  # M_j; paper: 0.4
max_samples: int = 0  # use at most this many training samples (smoke runs); 0: all
model_options: dict = {}  # extra build_pretrain_model options, e.g. {"target": "motion"}, {"ema": true} for vq
train: bool = True  # False: only read OUT/pretrain/LATENT/ trained elsewhere (python -m skel pretrain, torchrun)
shipped: str = "main_job"  # metrics of a finished run to draw beside this one, a folder under notebooks/assets; "": none

# %%
from skel.runall import experiment_parameters

P = experiment_parameters(globals())  # a misspelt name or a wrong type fails here (papermill only warns)

# %%
import json
import shutil

import matplotlib.pyplot as plt
import numpy as np
import torch

from skel.data import load_dataset
from skel.data.feeder import Feeder, load_indices
from skel.data.plot import draw_skeleton, plot_mask_grid
from skel.models.masking import random_masking
from skel.models.sttformer import from_tuples, grid_position_embedding, to_tuples
from skel.notebook import check, cmp, setup
from skel.report import markdown_table, model_name, plot_curves
from skel.runall import require, run_folder
from skel.train.checkpoint import load_checkpoint
from skel.train.config import PretrainConfig
from skel.train.distributed import DistInfo
from skel.train.loop import prepare_splits
from skel.train.pretrain import VAL_MASK_SEED_OFFSET, build_model, run_pretrain
from skel.utils import atomic_write_json, repo_root

g = setup(seed, threads or torch.get_num_threads())
run = run_folder(out)
configs = {
    latent: PretrainConfig.from_dict({
        "dataset": dataset, "data_dir": data_dir or None, "dataset_options": dataset_options, "latent": latent,
        "preset": preset, "epochs": epochs, "batch_size": batch_size, "lr": lr or None, "lr_steps": lr_steps or None, "window": window,
        "mask_frames": mask_frames, "mask_joints": mask_joints, "max_samples": max_samples or None,
        "model_options": model_options, "seed": seed, "device": device, "threads": threads or None,
        "num_workers": num_workers, "out": str(run / "pretrain" / latent), "progress": False,
    }).resolve()
    for latent in latents
}
print(markdown_table(
    ["model", "preset", "epochs", "batch", "lr", "lr steps", "window", "M_t", "M_j"],
    [[model_name(k), c.preset, c.epochs, c.batch_size, f"{c.lr:g}", c.lr_steps, c.window, c.mask_frames, c.mask_joints]
     for k, c in configs.items()]))

# %% [markdown]
# `experiment_parameters` checked every parameter against its annotation above (papermill alone
# only warns about a misspelt name), and `PretrainConfig.from_dict` checked the values and filled
# the rest from the preset's recipe (the table). Now the data. No label is used anywhere below.

# %%
train_data = load_dataset(dataset, "train", data_dir or None, **dataset_options)
test_data = load_dataset(dataset, "test", data_dir or None, **dataset_options)
print(f"{dataset}: {len(train_data)} train / {len(test_data)} test samples, {train_data.num_classes} classes, "
      f"{train_data.num_joints} joints, {train_data.num_persons} persons, "
      f"{int(train_data.lengths().min())}-{int(train_data.lengths().max())} frames")

# %% [markdown]
# ## 1 · One forward pass by hand
#
# `model(x, generator)` hides six steps. We take them one at a time on a small batch, with the
# model's own submodules (`model.encoder.input_map`, `model.decoder.embed`, ...): the point is the
# data flow and the shapes, not a second STTFormer. Names: $N$ samples, $C = 3$ coordinates, $T$
# frames, $V$ joints, $M$ persons; $T_k, V_k$ the kept (visible) frames and joints; $L = 6$ frames
# per tuple; $B$ the person rows the network runs (persons are folded into the batch).
#
# The batch mixes samples with two persons and samples with one: the second person of a
# one-person sample is all zeros, and the loss must leave it out.

# %%
feeder_all = Feeder(train_data, window, train=False)  # centre crops, no augmentation
spread = np.linspace(0, len(feeder_all) - 1, min(64, len(feeder_all))).round().astype(int)  # across the classes
second_person = {int(i): bool(feeder_all[i][0][..., 1:].abs().sum() > 0) for i in spread}
two = [i for i, s in second_person.items() if s][:2]
one = [i for i, s in second_person.items() if not s][:2]
batch_idx = (two + one) if len(two + one) >= 2 else list(range(4))
x = torch.stack([feeder_all[i][0] for i in batch_idx])  # (N, C, T, V, M)
N, C, T, V, M = x.shape
present = x.ne(0).flatten(1, 3).any(1)  # (N, M): persons that are not all zeros
print("x:", tuple(x.shape), "= (N, C, T, V, M)")
print("persons present per sample:", present.sum(1).tolist())


def fresh_model(latent):
    """The CI configuration's model for ``latent``, seeded, with a random (not zero) output layer."""
    torch.manual_seed(seed)
    cfg = configs.get(latent) or PretrainConfig.from_dict({**next(iter(configs.values())).to_dict(), "latent": latent})
    model = build_model(cfg, train_data)
    # The decoder's last layer starts at zero (decoder.py says why), so a fresh model reconstructs
    # exactly 0 and a comparison of reconstructions would prove nothing: give it random weights.
    torch.nn.init.normal_(model.decoder.head.weight, std=0.05)
    return model.train()


model = fresh_model("vae")
print(f"SkeletonMVAE: loss_reduction {model.loss_reduction!r}, target {model.target!r}, loss_on {model.loss_on!r}, "
      f"latent {type(model.latent).__name__}")


def show(steps):
    """Print each named intermediate's shape, one per line."""
    print("\n".join(f"  {name:<32s} {tuple(t.shape)}" for name, t in steps.items()))


# %% [markdown]
# ### 1a · The mask
#
# One mask per sample, shared by its persons (notebook 02): $T_k$ frames and $V_k$ joints stay
# visible. Everything random in the forward pass comes from one generator, in a fixed order: first
# the mask, then (SkeletonMVAE, training mode) the latent's noise.

# %%
gen = torch.Generator().manual_seed(seed)
mask = random_masking(N, T, V, model.mask_frames, model.mask_joints, gen)
masked = mask.grid()  # (N, T, V) True where hidden
Tk, Vk = mask.frames.shape[1], mask.joints.shape[1]
print(f"kept frames (N, Tk): {tuple(mask.frames.shape)}, kept joints (N, Vk): {tuple(mask.joints.shape)}")
print(f"hidden joints per person: T*V - Tk*Vk = {T}*{V} - {Tk}*{Vk} = {T * V - Tk * Vk} "
      f"(grid count: {int(masked[0].sum())})")


# %% [markdown]
# ### 1b · The encoder, on the visible tokens only
#
# Persons are folded into the batch (row $n M + p$ is person $p$ of sample $n$), the mask repeated
# for each. The encoder gathers the visible block $(C, T_k, V_k)$, maps each joint to $D_0$ channels
# (the input map), adds the position embedding of the token's **original** frame and joint (so the
# encoder knows where each visible token sits in the full sequence), cuts the frames into tuples of
# $L$ and runs the STTFormer blocks; `positions` tells each block which of the $L V$ tuple columns
# its $L V_k$ columns are. (Option `skip_empty_persons` runs only the present rows; off in the
# paper's setting.)

# %%
def encode(encoder, x, mask):
    """``x (N, C, T, V, M)`` -> named intermediates; ``"z"`` is the encoder output ``(B, D, Tk/L, L*Vk)``."""
    n, c, t, v, m = x.shape
    L = encoder.tuple_len
    s = {}
    s["rows run (N*M,)"] = rows = encoder.present_rows(x)  # all True unless skip_empty_persons
    s["x folded (B, C, T, V)"] = xf = x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v)[rows]
    mf = mask.repeat_persons(m).select(rows)
    s["visible (B, C, Tk, Vk)"] = vis = mf.gather(xf)
    s["input map (B, D0, Tk, Vk)"] = h = encoder.input_map(vis)
    h = h + grid_position_embedding(h.shape[1], mf.frames, mf.joints, t, v)  # original (frame, joint)
    s["tuples (B, D0, Tk/L, L*Vk)"] = h = to_tuples(h, L)
    for i, block in enumerate(encoder.blocks):
        s[f"block {i} (B, D{i + 1}, Tk/L, L*Vk)"] = h = block(h, mf.positions(L))
    s["z"] = h
    return s, mf


enc, mask_rows = encode(model.encoder, x, mask)
show(enc)


# %% [markdown]
# ### 1c · The latent space
#
# The latent module is notebook 03's; we call it (with the same generator, so SkeletonMVAE draws
# its $\epsilon$ right after the mask) and re-derive only what is new here: which rows count and how
# the terms are reduced. The rows of absent persons pass through, but their tokens do not count.
# With $P_n$ the present persons of sample $n$ and a term $t$ per latent vector (a token, or one
# vector per person with `vae_mode="sample"`), summed over its dimensions:
#
# * `loss_reduction="sum"` (the paper's per-sample ELBO): $\frac1N \sum_n \sum_{p \in P_n} \sum_{\text{vectors}} t$,
#   a KL in nats per sample;
# * `"mean"` (before issue 14): the mean over the present rows' vectors (the VQ terms also over
#   their $D$ dimensions).

# %%
def latent_terms(model, z, rows_present, n):
    """The latent's loss terms from its own ``distribution`` / ``quantize``, reduced by hand."""
    lat = model.latent
    if model.latent_name == "vae":
        mu, logvar = lat.distribution(z)  # token: (B, d, T', V'); vae_mode="sample": (B, d)
        per_row = (0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)).flatten(1).sum(1)  # (B,) nats
        parts, per_vector = {"kl": per_row}, mu[0].numel() // mu.shape[1]  # latent vectors per row
    elif model.latent_name == "vq":
        tokens = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])  # (B*T'*V', D)
        e = lat.codebook[lat.quantize(tokens)]  # nearest codes
        dist = (e - tokens).pow(2).view(z.shape[0], -1).sum(1)  # (B,) squared distance, summed per row
        parts, per_vector = {"codebook": dist, "commit": dist}, z[0].numel()  # "mean": over tokens and dims
    else:
        return {}
    total = {k: (v * rows_present).sum() for k, v in parts.items()}
    if model.loss_reduction == "sum":
        return {k: v / n for k, v in total.items()}
    return {k: v / (rows_present.sum() * per_vector) for k, v in total.items()}


rows_present = present.reshape(-1)[enc["rows run (N*M,)"]]  # (B,) the run rows that are present persons
terms_ours = latent_terms(model, enc["z"], rows_present, N)
z_out, terms, stats = model.latent(enc["z"], gen, present=rows_present, num_samples=N)
print("latent output:", tuple(z_out.shape), "| weights:", model.latent.weights)
for k in terms:
    cmp(f"{k} term, reduced by hand", terms_ours[k], terms[k])


# %% [markdown]
# ### 1d · The decoder, on the full grid
#
# A per-token linear layer (`embed`) takes the latent output to the decoder width; the visible
# tokens go back to their places in the $T \times V$ grid and the learnable **mask token** fills
# every hidden place. Now every token gets the position embedding of its place (the mask tokens are
# all the same vector: position is the only thing telling them apart). STTFormer blocks, then a
# per-token linear head to the $C$ coordinates, and the persons are unfolded again.

# %%
def decode(decoder, z_out, mask_rows, rows, x_shape):
    """Latent output ``(B, d, Tk/L, L*Vk)`` -> named intermediates; ``"recon"`` is ``(N, C, T, V, M)``."""
    n, c, t, v, m = x_shape
    L = decoder.tuple_len
    s = {}
    s["embed (B, dim, Tk/L, L*Vk)"] = h = decoder.embed(z_out)
    s["visible grid (B, dim, Tk, Vk)"] = h = from_tuples(h, L)
    s["+ mask tokens (B, dim, T, V)"] = h = mask_rows.restore(h, decoder.mask_token)
    frames, joints = torch.arange(t)[None], torch.arange(v)[None]
    h = h + grid_position_embedding(decoder.dim, frames, joints, t, v)  # every place, visible or not
    s["tuples (B, dim, T/L, L*V)"] = h = to_tuples(h, L)
    for i, block in enumerate(decoder.blocks):
        s[f"block {i} (B, dim, T/L, L*V)"] = h = block(h)
    s["head (B, C, T, V)"] = out = from_tuples(decoder.head(h), L)
    full = out.new_zeros(n * m, c, t, v)  # rows that were not run (skip_empty_persons) stay 0
    full[rows] = out
    s["recon"] = full.view(n, m, c, t, v).permute(0, 2, 3, 4, 1)  # unfold the persons
    return s


dec = decode(model.decoder, z_out, mask_rows, enc["rows run (N*M,)"], x.shape)
show(dec)
grid = dec["+ mask tokens (B, dim, T, V)"].permute(0, 2, 3, 1)  # (B, T, V, dim)
hidden = mask_rows.grid()  # (B, T, V)
print(f"{int(hidden.sum())} hidden places hold the mask token: {bool((grid[hidden] == model.decoder.mask_token).all())}; "
      f"the {int((~hidden).sum())} visible ones hold the embedded latent output")


# %% [markdown]
# ### 1e · The loss
#
# A joint counts if it was hidden (`loss_on="all"`: every joint) and its person is present. With
# $w_{ntvm} \in \{0, 1\}$ marking the counted joints and $\hat x$ the reconstruction,
#
# $$\mathcal{L}_{rec}^{\text{sum}} = \frac1N \sum_n \sum_{t,v,m} w_{ntvm}\,\lVert x_{ntvm} - \hat x_{ntvm} \rVert^2,
# \qquad
# \mathcal{L}_{rec}^{\text{mean}} = \frac{\sum_{n,t,v,m} w_{ntvm}\,\lVert x_{ntvm} - \hat x_{ntvm} \rVert^2}{C \sum_{n,t,v,m} w_{ntvm}} .$$
#
# "sum" is the paper's $\lVert x - \hat x \rVert^2$ per sample (squared metres per sample), the
# Gaussian log-likelihood's own scale, and puts the KL on the same footing (both per sample);
# "mean" is a per-coordinate MSE. With `target="motion"` the model predicts $x_{t+1} - x_t$ and the
# last frame (no next frame) does not count. The total adds the latent's weighted terms.

# %%
def reconstruction_loss(recon, x, masked, target="coords", reduction="sum", loss_on="masked"):
    """Squared error over the counted joints, reduced per sample ("sum") or per coordinate ("mean")."""
    pres = x.ne(0).flatten(1, 3).any(1)  # (N, M)
    where = masked if loss_on == "masked" else torch.ones_like(masked)
    w = (where[..., None] & pres[:, None, None, :]).to(x.dtype)  # (N, T, V, M) counted joints
    want = x
    if target == "motion":
        want, recon, w = x[:, :, 1:] - x[:, :, :-1], recon[:, :, :-1], w[:, :-1]
    sq = (recon - want).pow(2).sum(1)  # (N, T, V, M): summed over the C coordinates
    if reduction == "sum":
        return (sq * w).sum() / x.shape[0]
    return (sq * w).sum() / (x.shape[1] * w.sum())


def total_loss(model, rec, terms):
    return rec + sum(model.latent.weights[k] * terms[k] for k in terms)


rec_ours = reconstruction_loss(dec["recon"], x, masked, model.target, model.loss_reduction, model.loss_on)
w_demo = masked[..., None] & present[:, None, None, :]  # (N, T, V, M) hidden joints of present persons
print(f"counted joints: {int(w_demo.sum())} = {T * V - Tk * Vk} hidden per person x {int(present.sum())} present persons"
      + (" (the motion target then drops the last frame's)" if model.target == "motion" else ""))
print(f"recon {rec_ours:.4f} + " + " + ".join(f"{model.latent.weights[k]} x {k} {v:.4f}" for k, v in terms_ours.items())
      + f" = loss {total_loss(model, rec_ours, terms_ours):.4f}")


# %% [markdown]
# ### 1f · Check: the same numbers as `model(x, generator)`, for the three models
#
# `forward_by_hand` chains the five steps. For each latent: a fresh model (same seed), our pass and
# the model's own forward, each with a generator seeded the same way (training mode: BatchNorm uses
# the batch's statistics, the VAE samples its noise). Mask, reconstruction, every loss term and the
# total must agree.

# %%
def forward_by_hand(model, x, generator):
    n, c, t, v, m = x.shape
    mask = random_masking(n, t, v, model.mask_frames, model.mask_joints, generator)
    enc, mask_rows = encode(model.encoder, x, mask)
    rows = enc["rows run (N*M,)"]
    rows_present = x.ne(0).flatten(1, 3).any(1).reshape(-1)[rows]
    terms = latent_terms(model, enc["z"], rows_present, n)  # before the call: an EMA codebook moves in it
    z_out, _, _ = model.latent(enc["z"], generator, present=rows_present, num_samples=n)
    recon = decode(model.decoder, z_out, mask_rows, rows, x.shape)["recon"]
    rec = reconstruction_loss(recon, x, mask.grid(), model.target, model.loss_reduction, model.loss_on)
    return {"loss": total_loss(model, rec, terms), "recon": rec, **terms}, recon, mask.grid()


for latent in ["none", "vae", "vq"]:
    model = fresh_model(latent)
    ours, recon_ours, mask_ours = forward_by_hand(model, x, torch.Generator().manual_seed(seed))
    losses, recon_skel, mask_skel = model(x, generator=torch.Generator().manual_seed(seed))
    print(f"--- {model_name(latent)}")
    cmp("mask", mask_ours, mask_skel)
    cmp("reconstruction", recon_ours, recon_skel)
    for k, v in ours.items():
        cmp("total loss" if k == "loss" else f"{k} term", v, losses[k])
    torch.testing.assert_close(mask_ours, mask_skel)
    torch.testing.assert_close(recon_ours, recon_skel)
    torch.testing.assert_close({k: v.detach() for k, v in ours.items()}, {k: losses[k].detach() for k in ours})

# %% [markdown]
# ## 2 · The VQ's two terms: one value, two gradients
#
# In the VQ check above, the codebook and commitment terms printed the same number. They are the
# same distance $\lVert z - e \rVert^2$; what differs is the stop-gradient, i.e. where the gradient
# goes: $\lVert \mathrm{sg}[z] - e \rVert^2$ moves the **codes** $e$ (towards the encoder outputs
# assigned to them), $\lVert z - \mathrm{sg}[e] \rVert^2$ moves the **encoder output** $z$ (towards its
# code), weighted by $\beta = 0.25$ so that the encoder is pulled less than the codebook. Check it
# on SkeletonMVQVAE's own latent module and an encoder output from section 1:

# %%
vq_model = fresh_model("vq")
enc_vq = encode(vq_model.encoder, x, mask)[0]
z_enc = enc_vq["z"].detach().requires_grad_(True)  # the encoder output z
_, vq_terms, _ = vq_model.latent(z_enc, present=present.reshape(-1)[enc_vq["rows run (N*M,)"]], num_samples=N)
print(f"codebook term {vq_terms['codebook']:.6f}, commitment term {vq_terms['commit']:.6f}")
for k in ("codebook", "commit"):
    gz, ge = torch.autograd.grad(vq_terms[k], [z_enc, vq_model.latent.codebook], retain_graph=True,
                                 allow_unused=True, materialize_grads=True)
    print(f"{k:9s} term: |grad z (encoder output)| = {gz.norm():.6f}   |grad codebook| = {ge.norm():.6f}")
torch.testing.assert_close(vq_terms["codebook"], vq_terms["commit"])

# %% [markdown]
# ## 3 · Train
#
# One call per model. A fresh run starts from an empty `OUT/pretrain/` (an earlier run's files in
# the same folder are removed first, so nothing stale reaches notebook 06). The pre-training set is
# the training split minus a validation carve-out (10%, per class). With `train = False` the
# notebook instead reads runs made on the command line, e.g. on several GPUs with
# `torchrun --nproc_per_node=8 -m skel pretrain --latent vae --out OUT/pretrain/vae ...`. Per-epoch
# lines and times vary from machine to machine, so this cell's output is not compared in CI; the
# seeded numbers are printed, rounded, in the next cell.

# %%
# NBVAL_IGNORE_OUTPUT
results = {}
if train:
    if (run / "pretrain").exists():
        shutil.rmtree(run / "pretrain")
    for latent, cfg in configs.items():
        print(f"--- {model_name(latent)} ({latent})")
        results[latent] = run_pretrain(cfg)
else:  # runs made by `python -m skel pretrain --out OUT/pretrain/LATENT` (e.g. under torchrun)
    for latent in latents:
        metrics = json.loads(require(run / "pretrain" / latent / "metrics.json",
                                     f"python -m skel pretrain --latent {latent} --out {run / 'pretrain' / latent}").read_text())
        results[latent] = {"epochs": metrics["epochs"], "best_epoch": metrics["best_epoch"],
                           "best_val_loss": metrics["best_val_loss"], "config": metrics["config"]}
        configs[latent] = PretrainConfig.from_dict(metrics["config"])
        print(f"{model_name(latent)}: read {run / 'pretrain' / latent} ({len(metrics['epochs'])} epochs)")

# %%
for latent, res in results.items():
    rows = res["epochs"]
    keys = [k for k in rows[0] if k.startswith(("train_", "val_")) and k not in ("train_used_codes", "val_used_codes")]
    print(f"{model_name(latent)}: best epoch {res['best_epoch']}, best validation loss {res['best_val_loss']:.4f}")
    print(markdown_table(["epoch"] + keys, [[r["epoch"]] + [f"{r[k]:.4f}" for k in keys] for r in rows]))
    print()


# %% [markdown]
# ### The main job's metrics
#
# The main job's small metrics files (`notebooks/assets/main_job/` by default, parameter `shipped`;
# the layout of a run-all folder without its checkpoints) are read here; the sections below show
# them beside this run's.

# %%
def read_run(folder):
    """A finished run's per-epoch rows, kept epochs, configuration and model options; None if absent."""
    found = {k: folder / "pretrain" / k / "metrics.json" for k in ("none", "vae", "vq")}
    found = {k: p for k, p in found.items() if p.is_file()}
    if not found:
        return None
    metrics = {k: json.loads(p.read_text()) for k, p in found.items()}
    summary = folder / "pretrain" / "summary.json"
    recorded = {}
    if summary.is_file():  # notebook 05 records each model's resolved options there
        recorded = next((s.get("model_config") or {} for s in json.loads(summary.read_text())), {})
    first = next(iter(metrics.values()))
    return {"histories": {k: m["epochs"] for k, m in metrics.items()}, "best": {k: m["best_epoch"] for k, m in metrics.items()},
            "config": PretrainConfig.from_dict(first["config"]), "options": {**recorded, **first["config"]["model_options"]}}


main = None
if shipped:
    main_dir = repo_root() / "notebooks" / "assets" / shipped
    main = read_run(main_dir)
    if main is None:
        print(f"note: no shipped run in {main_dir.relative_to(repo_root())} (pretrain/*/metrics.json): "
              "only this run is shown below")
if main is not None:
    cfg_main = main["config"]
    print(f"shipped run {shipped!r}: {cfg_main.dataset} {cfg_main.dataset_options}, preset {cfg_main.preset}, "
          f"window {cfg_main.window}, batch {cfg_main.batch_size}, {len(next(iter(main['histories'].values())))} epochs, "
          f"models {', '.join(model_name(k) for k in main['histories'])}, model options {cfg_main.model_options}")


# %% [markdown]
# ## 4 · Which checkpoint is kept
#
# `best.pt` is the epoch with the lowest **total** validation loss, `val_loss` = reconstruction +
# the weighted latent terms, as the paper says ("keep the checkpoint with the lowest validation
# loss"): `skel/train/pretrain.py` passes `monitor="val_loss"` to the training loop
# (`skel/train/loop.py`, `fit`), which saves `best.pt` whenever that value improves. For SkeletonMAE
# the two are the same number; for the other two the epoch with the lowest reconstruction error
# alone may differ. The validation masks come from a generator reseeded before every validation
# pass, so the epochs are compared on the same masks. Checked on this run's `best.pt` and on the
# main job's recorded kept epochs:

# %%
def lowest(rows, key):
    return min(rows, key=lambda r: r[key])["epoch"]


check_rows = []
for latent, res in results.items():
    rows = res["epochs"]
    ckpt = load_checkpoint(run / "pretrain" / latent / "best.pt", kind="pretrain")
    check_rows.append(["this run", model_name(latent), ckpt["epoch"], lowest(rows, "val_loss"), lowest(rows, "val_recon")])
    assert ckpt["epoch"] == res["best_epoch"] == lowest(rows, "val_loss")
if main is not None:  # no checkpoints shipped: the kept epoch metrics.json records
    for latent, rows in main["histories"].items():
        check_rows.append([shipped, model_name(latent), main["best"][latent], lowest(rows, "val_loss"), lowest(rows, "val_recon")])
        assert main["best"][latent] == lowest(rows, "val_loss")
print(markdown_table(["run", "model", "kept epoch", "lowest val_loss", "lowest val_recon"], check_rows))


# %% [markdown]
# ## 5 · A floor to beat: the mean pose
#
# A reconstruction error means little alone. The simplest predictor ignores the visible tokens and
# fills every hidden joint with the training set's **mean pose** (each joint's mean position over
# the training windows and their present persons), or, with `target="motion"`, each joint's mean
# motion. Its validation error, with the same masks (the validation generator's seed) and the same
# reduction as `val_recon`, is the line a model must get below to have learnt anything from the
# visible joints.

# %%
def validation_batches(cfg, splits, max_batches=None):
    """The validation loader's batches, in order, each with its mask: the masks `validate` draws."""
    gen = torch.Generator().manual_seed(cfg.seed + VAL_MASK_SEED_OFFSET)  # reseeded before every validation pass
    for start in range(0, len(splits.val), cfg.batch_size)[:max_batches]:
        xb = torch.stack([splits.val[i][0] for i in range(start, min(start + cfg.batch_size, len(splits.val)))])
        n, _, t, v, _ = xb.shape
        yield xb, random_masking(n, t, v, cfg.mask_frames, cfg.mask_joints, gen).grid()


def training_mean(cfg, splits, target="coords"):
    """Each joint's mean position (or motion) over the training windows' frames and present persons: (C, V)."""
    windows = Feeder(splits.train_data, cfg.window, train=False, indices=splits.indices["train"])
    total, count = 0.0, 0
    for i in range(len(windows)):
        xi = windows[i][0]  # (C, T, V, M)
        want = xi[:, 1:] - xi[:, :-1] if target == "motion" else xi
        keep = xi.ne(0).flatten(0, 2).any(0)  # (M,) present persons
        total = total + want[..., keep].sum((1, 3))
        count += want.shape[1] * int(keep.sum())
    return total / count


def constant_guess_error(cfg, splits, pose, target="coords", reduction="sum", loss_on="masked", max_batches=None):
    """Validation reconstruction error of predicting ``pose (C, V)`` at every frame and person,
    averaged over batches weighted by their size, as `val_recon` is."""
    err, seen = 0.0, 0
    for xb, mb in validation_batches(cfg, splits, max_batches):
        guess = pose[None, :, None, :, None].expand_as(xb)
        err += float(reconstruction_loss(guess, xb, mb, target, reduction, loss_on)) * len(xb)
        seen += len(xb)
    return err / seen


def mean_pose_baseline(cfg, target="coords", reduction="sum", loss_on="masked"):
    splits = prepare_splits(cfg, None, DistInfo(0, 1, 0, torch.device("cpu")))
    return constant_guess_error(cfg, splits, training_mean(cfg, splits, target), target, reduction, loss_on)


first_cfg = next(iter(configs.values()))
first_model = fresh_model(next(iter(configs)))
baseline = mean_pose_baseline(first_cfg, first_model.target, first_model.loss_reduction, first_model.loss_on)
print(f"this run: mean-{'motion' if first_model.target == 'motion' else 'pose'} baseline, validation recon "
      f"({first_model.loss_reduction} reduction): {baseline:.4f}")

# %% [markdown]
# Is this the error `val_recon` would report? A model that has not been trained predicts exactly 0
# everywhere (its last layer starts at zero), so `skel`'s own validation pass over that model must
# give our error of the all-zero guess: same batches, same masks, same reduction (on the first
# `check_batches` batches, so that a full-size run does not spend its time here).

# %%
splits_ci = prepare_splits(first_cfg, None, DistInfo(0, 1, 0, torch.device("cpu")))
torch.manual_seed(seed)
untrained = build_model(first_cfg, train_data).eval()
torch.nn.init.zeros_(untrained.decoder.head.weight)  # already zero by default; made sure: it predicts 0
torch.nn.init.zeros_(untrained.decoder.head.bias)
check_batches = 4
gen_val = torch.Generator().manual_seed(first_cfg.seed + VAL_MASK_SEED_OFFSET)
skel_zero, seen = 0.0, 0
with torch.no_grad():
    for xb, _ in validation_batches(first_cfg, splits_ci, check_batches):
        skel_zero += float(untrained(xb, generator=gen_val)[0]["recon"]) * len(xb)  # skel draws its own masks
        seen += len(xb)
skel_zero /= seen
ours_zero = constant_guess_error(first_cfg, splits_ci, torch.zeros(C, V), untrained.target, untrained.loss_reduction,
                                 untrained.loss_on, check_batches)
cmp("zero guess: ours vs skel", torch.tensor(ours_zero), torch.tensor(skel_zero))
torch.testing.assert_close(ours_zero, skel_zero, rtol=1e-5, atol=1e-6)

# %% [markdown]
# The main job's baseline is computed the same way from its recorded configuration. Its
# `metrics.json` files do not record every model option: the reduction is read from
# `model_options` or `summary.json` when recorded, else it is the one whose baseline is on the
# scale of the first epoch's reconstruction error (the two differ by a factor of about $C$ times
# the hidden joints, hundreds), and the cell says which.

# %%
if main is not None:
    opts, cfg_main = main["options"], main["config"]
    target_main, loss_on_main = opts.get("target", "coords"), opts.get("loss_on", "masked")
    main["what"] = "motion" if target_main == "motion" else "pose"
    main["baseline"] = None
    try:
        if "loss_reduction" in opts:
            reduction_main, how = opts["loss_reduction"], "recorded"
            main["baseline"] = mean_pose_baseline(cfg_main, target_main, reduction_main, loss_on_main)
        else:
            candidates = {r: mean_pose_baseline(cfg_main, target_main, r, loss_on_main) for r in ("sum", "mean")}
            first_recon = next(iter(main["histories"].values()))[0]["val_recon"]
            reduction_main = min(candidates, key=lambda r: abs(np.log(candidates[r] / first_recon)))
            how = f"inferred: epoch 1 val_recon {first_recon:.4f}"
            main["baseline"] = candidates[reduction_main]
    except (OSError, ValueError, KeyError) as err:  # e.g. a dataset that is not on this machine
        print(f"note: no baseline for the shipped run, its data cannot be read here ({err})")
    if main["baseline"] is not None:
        print(f"mean-{main['what']} baseline ({reduction_main} reduction, {how}): {main['baseline']:.4f}")


# %% [markdown]
# ## 6 · Loss curves
#
# `val_recon` (middle panel) is the reconstruction term alone, comparable across the three
# models; `val_loss` adds each model's weighted latent terms and is what chose `best.pt`. The
# dashed line is the mean-pose (or mean-motion) baseline of section 5. The first figure is the
# shipped main job (when present), the second this notebook's own run (at the stored CI scale, a
# few epochs: a smoke test). The table under each figure prints, per model, the validation
# reconstruction at the kept epoch and its ratio to the baseline: below 1, the model predicts the
# hidden joints better than the baseline does. (When one model's first epoch lies far above
# everything else, as a fresh codebook's often does, a panel leaves that point out of its range and
# its title says so.)

# %%
def focus(ax, histories, key, base=None):
    """Leave out of the y range a model's epoch-1 value far above all the others (more than their
    whole spread above their top): it would flatten every other curve. The title names it."""
    later = [r[key] for h in histories.values() for r in h if r["epoch"] > 1 and np.isfinite(r.get(key, np.nan))]
    first = {k: h[0][key] for k, h in histories.items() if h and h[0]["epoch"] == 1 and np.isfinite(h[0].get(key, np.nan))}
    if not later or not first:
        return
    values = later + ([base] if base is not None else [])
    low, high = min(values), max(values)
    outliers = [k for k, v in first.items() if v > high + (high - low)]
    if outliers:
        top = max(values + [v for k, v in first.items() if k not in outliers])
        pad = 0.05 * (top - low)
        ax.set_ylim(low - pad, top + pad)
        ax.set_title(f"{key}\n(epoch 1 of {', '.join(model_name(k) for k in outliers)}: above)", fontsize=8)


def draw(histories, base, title, what="pose"):
    keys = ["train_recon", "val_recon", "val_loss"]
    fig = plot_curves(histories, keys, title=title)
    for ax, key in zip(fig.axes, keys):
        focus(ax, histories, key, base if key == "val_recon" else None)
    if base is not None:
        line = fig.axes[keys.index("val_recon")].axhline(base, color="k", ls="--", lw=1, label=f"mean-{what} baseline")
        fig.axes[keys.index("val_recon")].legend(handles=[line], fontsize=7, loc="lower left")
    plt.show()


def recon_table(histories, best, base, what="pose"):
    rows = []
    for k, h in histories.items():
        r = next(r for r in h if r["epoch"] == best[k])
        ratio = r["val_recon"] / base if base else None
        verdict = "-" if ratio is None else ("below" if ratio < 1 else "not below") + f" the mean {what}"
        rows.append([model_name(k), best[k], f"{r['val_recon']:.4f}", "-" if base is None else f"{base:.4f}",
                     "-" if ratio is None else f"{ratio:.3f}", verdict])
    print(markdown_table(["model", "kept epoch", "val_recon", "baseline", "ratio", "reading"], rows))


if main is not None:
    draw(main["histories"], main["baseline"], f"main job ({shipped}): reconstruction", main["what"])
    recon_table(main["histories"], main["best"], main["baseline"], main["what"])

# %%
histories = {latent: res["epochs"] for latent, res in results.items()}
what = "motion" if first_model.target == "motion" else "pose"
draw(histories, baseline, "this run: reconstruction", what)
recon_table(histories, {k: r["best_epoch"] for k, r in results.items()}, baseline, what)


# %% [markdown]
# **What the stored figures show.** In the shipped main job (first figure; 30 epochs, the motion
# target, the per-sample sum) SkeletonMAE's masked-joint error falls to 0.76 of the mean-motion
# baseline (2.16 against 2.84 squared units per sample), while SkeletonMVAE ends at 0.96 and
# SkeletonMVQVAE at 0.98 of it: their decoders learn little beyond the mean motion, and the latent
# terms keep their `val_loss` above their `val_recon`. The second figure is this notebook's own
# CI-scale run (6 epochs on coordinates), a smoke test: SkeletonMAE halves the mean-pose error,
# SkeletonMVQVAE only matches it and SkeletonMVAE, still paying for a large KL, is above it.

# %% [markdown]
# ## 7 · What the latent space does over time
#
# * **KL** (SkeletonMVAE): how far the posteriors sit from $\mathcal{N}(0, I)$, in nats (per sample
#   with the "sum" reduction). If the decoder uses what the latent carries, the reconstruction pays
#   for some KL; if it does not, the KL falls towards 0 (*posterior collapse*): every posterior is
#   the prior and $z$ is noise the decoder ignores.
# * **Codebook usage** (SkeletonMVQVAE): the perplexity $\exp(-\sum_k p_k \log p_k)$ of the code
#   frequencies in a batch, and the number of codes used out of 128. A perplexity near 1 is a
#   collapsed codebook: every token maps to one code and the latent carries nothing.
#
# Which of these the figures show is in the numbers printed under them (first and last epoch).
# Keeping the latents in use (a smaller starting $\sigma$ and KL weight; EMA codebook updates with
# dead-code restarts) is measured in `docs/deviations.md`.

# %%
def draw_latents(histories, title):
    keys = [k for k in ("val_kl", "val_perplexity", "val_used_codes") if any(k in r for h in histories.values() for r in h)]
    shown = {k: h for k, h in histories.items() if k != "none"}
    if not keys or not shown:
        return
    fig = plot_curves(shown, keys, title=title)
    for ax in fig.axes:
        ax.set_ylim(bottom=0)  # a KL or a code count near 0 is the collapse to look for
    plt.show()
    lines = []
    for latent, h in shown.items():
        for key in keys:
            if key in h[0]:
                lines.append(f"{model_name(latent)} {key}: epoch 1 {h[0][key]:.4f}, epoch {h[-1]['epoch']} {h[-1][key]:.4f}")
    print("\n".join(lines))


if main is not None:
    draw_latents(main["histories"], f"main job ({shipped}): latent terms (validation)")
draw_latents(histories, "this run: latent terms (validation)")

# %% [markdown]
# In the shipped main job SkeletonMVAE's KL falls from 35 to 5 nats per sample over the 30 epochs:
# the posteriors drift to the prior as the decoder learns to do without $z$ (posterior collapse
# under way, not complete). SkeletonMVQVAE ends on 4 codes of 128 (perplexity 3.3). In the
# CI-scale run, on coordinates, the KL grows instead (from 259 to 2,226 nats per sample in 6
# epochs): early in training, with coordinates to reconstruct, the latent is used.

# %% [markdown]
# ## 8 · Reconstructions
#
# Each model of this run takes the same validation sample with the same mask (one generator seed)
# and fills it in. Left: the mask over the `(T, V)` grid (dark = hidden). Then one masked frame:
# the original skeleton, and each model's reconstruction of it. Where a joint was hidden the model
# had to infer it from the other joints and frames. (With `model_options = {"target": "motion"}` the
# decoder predicts each joint's motion `x[t+1] - x[t]` instead, as MAMP does; it is drawn here as a
# position, the previous true frame plus the predicted motion.)

# %%
first = configs[latents[0]]
idx = load_indices(run / "pretrain" / latents[0] / "indices.npz")["val"]
feeder = Feeder(train_data, first.window, train=False, indices=idx, seed=seed)
xv = feeder[0][0][None]  # (1, C, T, V, M)
recons, errors = {}, {}
for latent, cfg in configs.items():
    model = build_model(cfg, train_data)
    model.load_state_dict(load_checkpoint(run / "pretrain" / latent / "best.pt", kind="pretrain")["model"])
    model.eval()
    with torch.no_grad():
        _, recon, mask_v = model(xv, generator=torch.Generator().manual_seed(seed))
    recon = model.as_coordinates(recon, xv)  # a motion target (model_options) predicts x[t+1] - x[t]
    person = xv[0].abs().sum(dim=(0, 1, 2)) > 0  # (M,) persons present: an absent one is not drawn or scored
    recons[latent] = recon[0] * person
    hidden = mask_v[0][None, :, :, None].expand_as(xv[0]) & person  # (C, T, V, M), True where masked
    errors[latent] = float(((recon[0] - xv[0])[hidden] ** 2).mean())
mask0 = mask_v[0].numpy()
frame = int(np.argmax(mask0.sum(1)))  # the frame with the most hidden joints
fig, axes = plt.subplots(1, 2 + len(recons), figsize=(2.6 * (2 + len(recons)), 2.8))
plot_mask_grid(axes[0], mask0, title="mask (dark = hidden)")
draw_skeleton(axes[1], xv[0][:, frame].numpy(), train_data.layout, title=f"original, frame {frame}")
for ax, (latent, r) in zip(axes[2:], recons.items()):
    draw_skeleton(ax, xv[0][:, frame].numpy(), train_data.layout, alpha=0.2)
    draw_skeleton(ax, r[:, frame].numpy(), train_data.layout, title=model_name(latent))
    hid = np.where(mask0[frame])[0]
    ax.scatter(r[0, frame, hid, 0], r[1, frame, hid, 0], s=18, facecolors="none", edgecolors="red")
fig.tight_layout()
plt.show()
print("masked-coordinate MSE on this sample:", ", ".join(f"{model_name(k)} {v:.4f}" for k, v in errors.items()))

# %% [markdown]
# Red circles mark the hidden joints of that frame; the faint skeleton is the original. These are
# the CI-scale models: how close their circles sit to the faint joints is what section 6's table
# says in numbers (a ratio near 1 is the mean pose, below 1 better).
#
# ## 9 · Summary for the next notebooks

# %%
summary = []
for latent, res in results.items():
    last = res["epochs"][-1]
    summary.append({
        "latent": latent, "checkpoint": str(run / "pretrain" / latent / "best.pt"), "best_epoch": res["best_epoch"],
        "best_val_loss": res["best_val_loss"], "last_val_recon": last.get("val_recon"),
        "pretrain_seconds": sum(r["epoch_time_s"] for r in res["epochs"]),
        "perplexity": last.get("train_perplexity"), "kl": last.get("train_kl"), "config": res["config"],
        "model_config": build_model(configs[latent], train_data).config,
    })
atomic_write_json(run / "pretrain" / "summary.json", summary)
print(markdown_table(["model", "best epoch", "best val loss", "last val recon"],
                     [[model_name(s["latent"]), s["best_epoch"], f"{s['best_val_loss']:.4f}", f"{s['last_val_recon']:.4f}"]
                      for s in summary]))

# %% [markdown]
# ## Exercises
#
# Write your answer into the variable of the cell below each exercise, then run the checking cell
# after it. The checker computes the true value with `skel`, independently of your answer, and
# prints `correct`, `not yet: expected ...`, or `not answered yet` (for `None`). The answers come
# filled in, so that CI checks them against `skel` on every run: set them to `None` before you
# start. A worked solution is folded under each exercise. All three are at the paper's shape:
# $T = 120$ frames, $V = 25$ joints, $M_t = M_j = 0.4$, $L = 6$, coordinates as the target.

# %%

from skel.models.pretrain import build_pretrain_model  # noqa: E402 - the checkers' reference


def paper_shape_model(latent, **options):
    """A tiny model at the paper's window and mask rates (the loss does not depend on the size)."""
    torch.manual_seed(seed)
    return build_pretrain_model(latent, "tiny", num_joints=25, num_persons=2, num_frames=120, in_channels=3,
                                mask_frames=0.4, mask_joints=0.4, target="coords", **options)


def paper_mask():
    return random_masking(1, 120, 25, 0.4, 0.4, torch.Generator().manual_seed(seed))


# %% [markdown]
# **Exercise 1.** How many coordinates does one present person add to the reconstruction loss of a
# sample (hidden joints only)? And a sample with two present persons?
#
# <details><summary>Solution</summary>
#
# $T_k = 6 \cdot \operatorname{round}(0.6 \cdot 120 / 6) = 72$ frames and
# $V_k = \operatorname{round}(0.6 \cdot 25) = 15$ joints stay visible, so $120 \cdot 25 - 72 \cdot 15
# = 1920$ joints are hidden per person: $3 \cdot 1920 = 5760$ coordinates, and $11520$ for two
# persons (the mask is shared by a sample's persons). With `loss_reduction="sum"` and every
# coordinate off by 1, the loss of that sample is exactly this count.
# </details>

# %%
ex1_coordinates = (5760, 11520)  # (one person, two persons)


# %%
def unit_error_loss(persons):
    """skel's "sum" loss of one sample whose every coordinate is off by 1: the counted coordinates."""
    x1 = torch.zeros(1, 3, 120, 25, 2)
    x1[..., :persons] = 1.0  # the present persons
    model1 = paper_shape_model("none", loss_reduction="sum")
    return int(model1.reconstruction_loss(x1 + 1.0, x1, paper_mask().grid()))


check("Exercise 1 (one person, two persons)", ex1_coordinates, (unit_error_loss(1), unit_error_loss(2)))

# %% [markdown]
# **Exercise 2.** How many latent vectors (each a 25-dimensional Gaussian with its own KL) does one
# present person add to SkeletonMVAE's KL with `vae_mode="token"` (one per visible token)? With
# `vae_mode="sample"` (the default, the paper's Table 9 reading: fully connected layers over the
# whole visible map)?
#
# <details><summary>Solution</summary>
#
# Token mode: one per visible token, $T_k V_k = 72 \cdot 15 = 1080$ (the encoder's map is
# $T_k / L = 12$ tuples by $L V_k = 90$ columns). Sample mode: 1.
# </details>

# %%
ex2_vectors = (1080, 1)  # (token mode, sample mode)


# %%
def latent_vectors(vae_mode):
    """From the model: the number of (mu, log sigma^2) vectors its latent gives one person row."""
    model2 = paper_shape_model("vae", vae_mode=vae_mode).eval()
    x2 = torch.randn(1, 3, 120, 25, 2, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        z2, _ = model2.encoder(x2, paper_mask())
        mu2, _ = model2.latent.distribution(z2)  # token: (B, 25, T'k, L*Vk); sample: (B, 25)
    return mu2[0].numel() // mu2.shape[1]


check("Exercise 2 (token, sample)", ex2_vectors, (latent_vectors("token"), latent_vectors("sample")))

# %% [markdown]
# **Exercise 3.** With `loss_reduction="sum"` the loss of a one-person sample is $S + \beta\,\mathrm{KL}$
# ($S$ the squared error summed over its $P$ counted coordinates, KL summed over its $K$ latent
# vectors): the KL's weight against $S$ is $\beta$. With `"mean"` it is $S / P + \beta\,\mathrm{KL} / K$.
# Multiplied by $P$ to put it on the scale of $S$, what weight $\beta_{\text{eff}}$ does the paper's
# $\beta = 0.005$ give the KL under `"mean"`, in token mode and in sample mode? Which reduction
# gives the KL the smaller weight in token mode?
#
# <details><summary>Solution</summary>
#
# $\beta_{\text{eff}} = \beta P / K$ with $P = 5760$ (exercise 1): token mode $K = 1080$,
# $0.005 \cdot 5760 / 1080 = 0.0267$; sample mode $K = 1$, $0.005 \cdot 5760 = 28.8$. In token mode
# "mean" weighs the KL $P/K = 5.3$ times more than "sum": "sum" gives the smaller weight. (In
# sample mode it is the other way round, by a factor 5760.) `skel.models.pretrain.effective_noise`
# turns $\beta_{\text{eff}}$ into the decoder noise it implies, $\sigma = \sqrt{\beta_{\text{eff}} / 2}$.
# </details>

# %%
ex3_beta_eff = (0.0267, 28.8)  # (token mode, sample mode) under "mean"
ex3_smaller = "sum"  # "sum" or "mean", token mode


# %%
def measured_beta_eff(vae_mode):
    """From two models that differ only in the reduction, on the same one-person sample and noise:
    beta * (S / rec_mean) / (KL_sum / KL_mean)."""
    x3 = torch.zeros(1, 3, 120, 25, 2)
    x3[..., 0] = torch.randn(3, 120, 25, generator=torch.Generator().manual_seed(seed))
    out = {}
    for reduction in ("sum", "mean"):
        model3 = paper_shape_model("vae", vae_mode=vae_mode, loss_reduction=reduction).train()
        with torch.no_grad():
            out[reduction] = model3(x3, generator=torch.Generator().manual_seed(seed))[0]
    return 0.005 * float(out["sum"]["recon"] / out["mean"]["recon"]) / float(out["sum"]["kl"] / out["mean"]["kl"])


token_eff, sample_eff = measured_beta_eff("token"), measured_beta_eff("sample")
check("Exercise 3 (beta_eff token, sample)", ex3_beta_eff, (token_eff, sample_eff))
check("Exercise 3 (the smaller KL weight)", ex3_smaller, "sum" if token_eff > 0.005 else "mean")

# %% [markdown]
# ## Summary
#
# * One forward pass: mask $\to$ encoder on the $T_k \times V_k$ visible tokens (original positions
#   embedded) $\to$ latent $\to$ decoder on the full grid, mask tokens in the hidden places $\to$
#   head $\to$ squared error on the hidden joints of present persons, plus the latent's weighted
#   terms; checked against `model(x, generator)` for the three models.
# * The VQ's codebook and commitment terms are one distance with two stop-gradients: one moves the
#   codes, the other (weighted 0.25) the encoder.
# * `best.pt` is the epoch with the lowest total validation loss.
# * A reconstruction error is read against the mean-pose baseline; the figures show where each model
#   ends relative to it.
#
# Next: `06_finetuning.ipynb` loads each `best.pt`, keeps the encoder, adds one linear layer and
# trains on the labels, against the same encoder trained from scratch.
