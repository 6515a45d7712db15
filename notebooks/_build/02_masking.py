# %% [markdown]
# # 02 · Spatial-temporal masking
#
# A masked autoencoder learns by filling in what it was not shown. SkeletonMAE (and the MVAE /
# MVQVAE built on it) hides part of a skeleton sequence $S \in \mathbb{R}^{C \times T \times V}$
# ($C=3$ coordinates, $T$ frames, $V$ joints) in two steps:
#
# 1. **drop frames** at rate $M_t$: keep $T_k = (1-M_t)\,T$ of the $T$ frames;
# 2. **drop joints** at rate $M_j$: keep $V_k = (1-M_j)\,V$ joints, **the same joints on every kept frame**.
#
# Only the visible block $S_{\text{vis}} \in \mathbb{R}^{C \times T_k \times V_k}$ enters the
# encoder: a fraction $(1-M_t)(1-M_j)$ of the tokens (0.36 at the paper's $M_t = M_j = 0.4$).
# That is what the encoder's convolutions cost, relative to the full sequence; its attention maps
# cost less, $(1-M_t)(1-M_j)^2$, and its parameters do not shrink at all (section 11 derives and
# measures all three). The kept frames stay in time order, and because the encoder's STTFormer
# blocks group frames into tuples of $L = 6$ (notebook 04), $T_k$ must be a multiple of $L$.
#
# This notebook derives the masking in plain `torch`, draws it, checks that
# `skel.models.masking` computes exactly the same thing, and ends with three exercises.

# %% tags=["parameters"]
seed: int = 0  # one seed for every random draw in this notebook
num_frames: int = 30  # T: frames per sample, a multiple of tuple_len (paper: 120)
mt: float = 0.4  # M_t, frame mask rate (paper: 0.4)
mj: float = 0.4  # M_j, joint mask rate (paper: 0.4)
tuple_len: int = 6  # L: frames per STTFormer tuple (paper: 6)
batch: int = 4  # N: samples in the batch examples
draws: int = 2000  # masks drawn for the uniformity check

# %%

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
import torch
from torch.utils.flop_counter import FlopCounterMode

import skel.models.masking as masking
from skel.data import load_dataset
from skel.models.cost import count_flops, count_parameters
from skel.models.encoder import ENCODER_PRESETS, Encoder
from skel.data.plot import draw_skeleton, plot_mask_grid
from skel.notebook import check, check_parameters, cmp, setup

check_parameters(globals(), __annotations__)  # papermill passes strings for bad values: fail here
g = setup(seed, threads=1)  # tiny tensors: a second thread only adds synchronisation

# %% [markdown]
# ## 1 · A sample
#
# We use the embedded synthetic set (NTU's 25-joint layout, seeded, no download). A sample is
# `(C, T_i, V, M)`; we take the first person and resample it to `num_frames` frames by picking
# evenly spaced frames, which is all the masking needs.

# %%
data = load_dataset("synthetic", "train")
layout = data.layout
sample, label = data[0]
print("sample (C, T_i, V, M):", sample.shape, "| class:", data.class_names[label])

frames = np.linspace(0, sample.shape[1] - 1, num_frames).round().astype(int)
x1 = torch.from_numpy(sample[..., 0][:, frames])  # (C, T, V), first person
C, T, V = x1.shape
print("x1 (C, T, V):", tuple(x1.shape))

# %% [markdown]
# A few of its frames, seen from the front (x right, y up), drawn with `skel.data.plot`:

# %%
lims = [(x1[c].min().item() - 0.1, x1[c].max().item() + 0.1) for c in (0, 1)]


def frame_axes(n):
    return plt.subplots(1, n, figsize=(1.5 * n, 2.8))


def tidy(ax):
    """Same limits on every panel, no ticks: the poses are comparable across frames."""
    ax.set_aspect("equal", adjustable="box")
    ax.set(xlim=lims[0], ylim=lims[1])
    ax.set_axis_off()


show_t = np.linspace(0, T - 1, 6).round().astype(int)
fig, axes = frame_axes(len(show_t))
for ax, t in zip(axes, show_t):
    draw_skeleton(ax, x1[:, t].numpy(), layout, title=f"frame {t}")
    tidy(ax)
fig.suptitle(f"synthetic sample 0 ({data.class_names[label]})")
plt.tight_layout()
plt.show()


# %% [markdown]
# ## 2 · How many frames and joints survive
#
# $T_k = (1-M_t)\,T$ and $V_k = (1-M_j)\,V$ are rarely integers, and $T_k$ must also be a multiple
# of $L$. We round $T_k$ to the nearest multiple of $L$ (at least one tuple) and $V_k$ to the
# nearest integer (at least one joint):
#
# $$T_k = L \cdot \max\!\Big(1, \operatorname{round}\frac{(1-M_t)\,T}{L}\Big), \qquad
#   V_k = \max\!\big(1, \operatorname{round}((1-M_j)\,V)\big).$$
#
# At the paper's $T = 120$, $V = 25$, $M_t = M_j = 0.4$ both are exact: 72 frames (12 tuples) and
# 15 joints, i.e. $72 \times 15 = 1080$ of the $3000$ tokens are visible.

# %%
def kept_counts(T, V, mt, mj, L):
    t_keep = L * max(1, round((1 - mt) * T / L))
    v_keep = max(1, round((1 - mj) * V))
    return t_keep, v_keep


for T_, mt_, mj_ in [(T, mt, mj), (120, 0.4, 0.4), (120, 0.6, 0.8), (120, 0.5, 0.6)]:
    tk, vk = kept_counts(T_, V, mt_, mj_, tuple_len)
    print(f"T={T_:3d} Mt={mt_:.1f} Mj={mj_:.1f} -> T_k={tk:3d} ({tk // tuple_len:2d} tuples)  "
          f"V_k={vk:2d}  visible {tk * vk:4d} / {T_ * V} = {tk * vk / (T_ * V):.3f}"
          f"  (1-Mt)(1-Mj) = {(1 - mt_) * (1 - mj_):.3f}")


# %% [markdown]
# ## 3 · Drawing the kept frames and joints
#
# A uniformly random subset of size $k$ from $\{0, \dots, n-1\}$: give every index an
# independent uniform score and keep the $k$ smallest. All $\binom{n}{k}$ subsets are equally
# likely because all orderings of i.i.d. continuous scores are. `argsort` of `torch.rand` does
# this for a whole batch at once; sorting the kept indices keeps the frames in time order.
# Frames are drawn first, then joints, from one explicit generator.

# %%
def draw_kept(N, n, k, generator):
    """(N, k) sorted indices: a uniformly random k-subset of range(n) per row."""
    scores = torch.rand(N, n, generator=generator)
    return scores.argsort(dim=1)[:, :k].sort(dim=1).values


t_keep, v_keep = kept_counts(T, V, mt, mj, tuple_len)
g_ours = torch.Generator().manual_seed(seed)
kept_t = draw_kept(batch, T, t_keep, g_ours)  # (N, T_k)
kept_v = draw_kept(batch, V, v_keep, g_ours)  # (N, V_k)
print("kept frames, sample 0:", kept_t[0].tolist())
print("kept joints, sample 0:", kept_v[0].tolist())


# %% [markdown]
# ## 4 · The mask as a frame × joint grid
#
# A token $(t, v)$ is visible iff its frame **and** its joint were kept, an outer product of two
# indicator vectors. We store the mask the MAE way, `True` = masked:
#
# $$\text{mask}_{t v} = \lnot\big(\mathbb{1}[t \in \mathcal{T}_k] \cdot \mathbb{1}[v \in \mathcal{V}_k]\big).$$

# %%
def grid_mask(kept_t, kept_v, T, V):
    """(N, T, V) bool, True = masked."""
    N = kept_t.shape[0]
    frame_on = torch.zeros(N, T, dtype=torch.bool).scatter_(1, kept_t, True)
    joint_on = torch.zeros(N, V, dtype=torch.bool).scatter_(1, kept_v, True)
    return ~(frame_on[:, :, None] & joint_on[:, None, :])


mask = grid_mask(kept_t, kept_v, T, V)
visible = (~mask).sum(dim=(1, 2))
print("visible tokens per sample:", visible.tolist(), "| expected T_k * V_k =", t_keep * v_keep)
assert (visible == t_keep * v_keep).all()

# %%
white_red = ListedColormap(["white", "tab:red"])  # the red of the visible joints below
fig, axes = plt.subplots(1, batch, figsize=(10, 3.4), sharey=True)
for i, ax in enumerate(axes):
    plot_mask_grid(ax, (~mask[i]).numpy(), title=f"sample {i}: {int(visible[i])} visible", cmap=white_red)
    ax.set_xticks(range(0, V, 4))
    if i:
        ax.set_ylabel(None)
fig.suptitle("visible tokens in red (frames down, joints across)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Each sample has its own frames and joints; within a sample the visible tokens form a full
# sub-grid (whole rows × whole columns), which is what lets the encoder keep a regular
# `(C, T_k, V_k)` tensor instead of a ragged token list.
#
# ## 5 · The masked sample on the skeleton
#
# Below: the first kept frames of sample 0 and the dropped frames between them. A dropped frame is
# faded out entirely; on a kept frame the visible joints are red and the masked ones grey crosses,
# the same joints in every kept frame.

# %%
show_m = np.arange(int(kept_t[0, 0]), int(kept_t[0, 0]) + 7)
fig, axes = frame_axes(len(show_m))
for ax, t in zip(axes, show_m):
    kept_frame = bool((kept_t[0] == t).any())
    pose = x1[:, t].numpy()
    if kept_frame:
        draw_skeleton(ax, pose, layout, colours=("silver",), joint_size=0, title=f"frame {t}: kept")
        vis_j = ~mask[0, t].numpy()
        ax.scatter(pose[0, vis_j], pose[1, vis_j], s=14, color="tab:red", zorder=3)
        ax.scatter(pose[0, ~vis_j], pose[1, ~vis_j], s=14, color="grey", marker="x", zorder=3)
    else:
        draw_skeleton(ax, pose, layout, colours=("lightgrey",), alpha=0.5, title=f"frame {t}: dropped")
    tidy(ax)
fig.suptitle("sample 0 after masking: red = visible joint, x = masked joint")
plt.tight_layout()
plt.show()


# %% [markdown]
# ## 6 · Gathering the visible tokens
#
# The encoder needs $S_{\text{vis}} = S[:, \mathcal{T}_k][:, :, \mathcal{V}_k]$ per sample. With
# a batch the indices differ per row, so we use `torch.gather` twice (frames, then joints). An
# independent route to the same tensor: boolean indexing with the grid mask, which returns the
# visible tokens in row-major $(t, v)$ order, exactly the order of the gathered block.

# %%
def gather_visible(x, kept_t, kept_v):
    """x (N, C, T, V) -> (N, C, T_k, V_k)."""
    N, C, T, V = x.shape
    idx_t = kept_t[:, None, :, None].expand(N, C, -1, V)
    x = x.gather(2, idx_t)  # (N, C, T_k, V)
    idx_v = kept_v[:, None, None, :].expand(N, C, x.shape[2], -1)
    return x.gather(3, idx_v)  # (N, C, T_k, V_k)


xb = torch.stack([x1 * (1 + 0.1 * i) for i in range(batch)])  # (N, C, T, V): a small batch
vis = gather_visible(xb, kept_t, kept_v)
by_mask = xb.permute(0, 2, 3, 1)[~mask].view(batch, t_keep, v_keep, C).permute(0, 3, 1, 2)
print("visible block (N, C, T_k, V_k):", tuple(vis.shape),
      "= (N, C, (1-Mt)T, (1-Mj)V) =", (batch, C, round((1 - mt) * T), round((1 - mj) * V)))
cmp("gather == boolean index", vis, by_mask)


# %% [markdown]
# ## 7 · Restoring the full grid
#
# The decoder works on the full $T \times V$ grid again: visible tokens go back to their
# original places and every masked place gets a (learned) mask token. Restoring is a scatter
# with the same indices. The round trip must give back $S$ on visible tokens and the mask token
# everywhere else.

# %%
def restore(vis, kept_t, kept_v, T, V, fill):
    """vis (N, D, T_k, V_k) -> (N, D, T, V), masked places set to fill (D,)."""
    N, D, Tk, Vk = vis.shape
    full_v = fill.view(1, D, 1, 1).expand(N, D, Tk, V).clone()
    full_v.scatter_(3, kept_v[:, None, None, :].expand(N, D, Tk, Vk), vis)
    full = fill.view(1, D, 1, 1).expand(N, D, T, V).clone()
    full.scatter_(2, kept_t[:, None, :, None].expand(N, D, Tk, V), full_v)
    return full


mask_token = torch.tensor([9.0, 9.0, 9.0])  # an obviously fake value, to see where it lands
back = restore(vis, kept_t, kept_v, T, V, mask_token)
m4 = mask[:, None].expand_as(xb)  # (N, C, T, V)
cmp("restored, visible", back[~m4], xb[~m4])
cmp("restored, masked", back[m4], mask_token.repeat(int(mask.sum())))

# %% [markdown]
# ## 8 · Visible frames form tuples
#
# With $T_k$ a multiple of $L$, the visible block reshapes to
# $(N, C, T_k/L, L \cdot V_k)$, the STTFormer tuple layout of notebook 04. Note that a tuple of
# *kept* frames need not be $L$ consecutive original frames: the position embedding added after
# masking must therefore encode each token's **original** frame and joint index, not its position
# in the visible block.

# %%
tuples = vis.reshape(batch, C, t_keep // tuple_len, tuple_len * v_keep)
print("tuples (N, C, T_k/L, L*V_k):", tuple(tuples.shape))
for j, chunk in enumerate(kept_t[0].split(tuple_len)):
    print(f"sample 0, tuple {j}: original frames {chunk.tolist()}")

# %% [markdown]
# ## 9 · Every frame and joint is equally likely to be hidden
#
# Over many draws each frame should be kept with probability $T_k/T$ and each joint with
# probability $V_k/V$; nothing about the position should matter.

# %%
g_many = torch.Generator().manual_seed(seed + 1)
kt_many = draw_kept(draws, T, t_keep, g_many)
kv_many = draw_kept(draws, V, v_keep, g_many)
p_frame = torch.zeros(T).index_add_(0, kt_many.flatten(), torch.ones(kt_many.numel())) / draws
p_joint = torch.zeros(V).index_add_(0, kv_many.flatten(), torch.ones(kv_many.numel())) / draws
se_t = (t_keep / T * (1 - t_keep / T) / draws) ** 0.5
print(f"frame keep rate: mean {p_frame.mean():.4f} (expected {t_keep / T:.4f}), "
      f"max |dev| {(p_frame - t_keep / T).abs().max():.4f} (binomial s.e. {se_t:.4f})")
print(f"joint keep rate: mean {p_joint.mean():.4f} (expected {v_keep / V:.4f})")

fig, axes = plt.subplots(1, 2, figsize=(9, 2.6))
axes[0].bar(range(T), p_frame, color="tab:blue")
axes[0].axhline(t_keep / T, color="k", ls="--", lw=1)
axes[0].set(title="P(frame kept)", xlabel="frame t", ylim=(0, 1))
axes[1].bar(range(V), p_joint, color="tab:red")
axes[1].axhline(v_keep / V, color="k", ls="--", lw=1)
axes[1].set(title="P(joint kept)", xlabel="joint v", ylim=(0, 1))
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 10 · The same masking in `skel`
#
# `skel.models.masking.random_masking(N, T, V, mt, mj, generator)` is the one implementation the
# models use; it returns a `Mask` holding the kept `frames (N, T_k)` and `joints (N, V_k)`. Fed
# the same seed it must draw the same frames and joints as our derivation (same recipe: frame
# scores first, then joint scores), give the same grid mask, and its `gather` / `restore` must
# match ours.

# %%
m = masking.random_masking(batch, T, V, mt, mj, torch.Generator().manual_seed(seed), tuple_len=tuple_len)
print("Mask.frames (N, T_k):", tuple(m.frames.shape), "| Mask.joints (N, V_k):", tuple(m.joints.shape))

# %%
cmp("kept counts", torch.tensor(masking.kept_counts(T, V, mt, mj, tuple_len)), torch.tensor([t_keep, v_keep]))
cmp("kept frames", m.frames, kept_t)
cmp("kept joints", m.joints, kept_v)
cmp("grid mask (True=masked)", m.grid(), mask)
cmp("gather visible", m.gather(xb), vis)
cmp("restore", m.restore(vis, mask_token), back)

# %% [markdown]
# ## 11 · What masking saves, and what it does not
#
# Take one STTFormer block of notebook 04 ($C_i$ input and $C_o$ output channels, $H$ heads of
# width $d$). Without masking it sees $T' = T/L$ tuples of $V' = LV$ columns; with masking
# $T'_k = T_k/L$ tuples of $V'' = L V_k$ columns. Count the multiply-adds of its three kinds of
# parts:
#
# * **Convolutions** (the $Q, K$ projection, the $1{\times}5$, $1{\times}1$ and $3{\times}1$
#   convolutions, the residual $1{\times}1$s, and the encoder's input map): one output per token
#   and output channel, each a fixed dot product (kernel size $\times$ input channels). Their cost
#   is proportional to the number of tokens, $T'_k V'' = T_k V_k$, so relative to the full grid
#   $$\frac{T_k V_k}{T V} = (1-M_t)(1-M_j).$$
# * **Attention**: the map compares every column of a tuple with every other one. The scores
#   $\sum_{c,\tau} Q[c,\tau,u]\,K[c,\tau,w]$ cost $H d\,T'_k V''^2$ multiply-adds, the mixing
#   $y = xA$ costs $H C_i\,T'_k V''^2$. Both are proportional to
#   $T'_k V''^2 = \frac{T_k}{L}(L V_k)^2 = L\,T_k V_k^2$, so the ratio is
#   $$\frac{T_k}{T}\Big(\frac{V_k}{V}\Big)^2 = (1-M_t)(1-M_j)^2 .$$
#   Dropping a joint removes it from *every* frame of a tuple, and the map is quadratic in the
#   columns of a tuple: joints count twice, tuples once.
# * **$\mathrm{att0}$**, the learned static map: a parameter of fixed size $H \times V' \times V'$.
#   A masked sample reads a $V'' \times V''$ sub-matrix of it ($(1-M_j)^2$ of the entries), but
#   the parameter, its gradient buffer and its optimiser state keep their full size: masking
#   saves nothing there (nor on any other parameter).
#
# We check this on the `paper` encoder at $T = 120$ with torch's FLOP counter (the one
# `skel.models.cost.count_flops` uses), split by operation: in an STTFormer block the two
# attention products run as batched matrix products (`aten.bmm`), everything else is a
# convolution. The `meta` device computes shapes only, so the 38-GFLOP encoder costs nothing.

# %%
KINDS = {"aten.convolution": "conv", "aten.bmm": "attention"}


def flops_by_kind(fn, *inputs):
    """Forward FLOPs of fn(*inputs), split into convolutions and attention products."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(*inputs)
    ops = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    assert set(ops) <= set(KINDS), ops  # nothing else is counted in these blocks
    return {kind: ops.get(op, 0) for op, kind in KINDS.items()}


def encoder_cost(T_, mt_, mj_):
    """FLOPs of the paper encoder on one person at T_ frames, unmasked and masked (meta device)."""
    mask_ = masking.random_masking(1, T_, V, mt_, mj_, torch.Generator().manual_seed(seed), tuple_len=tuple_len)
    with torch.device("meta"):
        enc = Encoder(C, V, **ENCODER_PRESETS["paper"], tuple_len=tuple_len)
        x_meta = torch.empty(1, C, T_, V)
    return enc, x_meta, mask_, flops_by_kind(enc.encode, x_meta), flops_by_kind(enc.encode, x_meta, mask_.to("meta"))


T_cost = 120
enc, x_meta, m_cost, full, part = encoder_cost(T_cost, mt, mj)
tk_c, vk_c = m_cost.frames.shape[1], m_cost.joints.shape[1]
predicted = {"conv": (tk_c / T_cost) * (vk_c / V), "attention": (tk_c / T_cost) * (vk_c / V) ** 2}
lines = [f"paper encoder, one person, T = {T_cost}, Mt = {mt}, Mj = {mj}: T_k = {tk_c}, V_k = {vk_c}",
         f"{'':12s} {'full GFLOPs':>11s} {'masked':>8s} {'ratio':>7s} {'predicted':>9s}"]
for kind in ("conv", "attention"):
    lines.append(f"{kind:12s} {full[kind] / 1e9:11.3f} {part[kind] / 1e9:8.3f} {part[kind] / full[kind]:7.4f} "
                 f"{predicted[kind]:9.4f}")
total_full, total_part = sum(full.values()), sum(part.values())
lines.append(f"{'total':12s} {total_full / 1e9:11.3f} {total_part / 1e9:8.3f} {total_part / total_full:7.4f}")
print("\n".join(lines))  # one print: stored outputs do not depend on stream timing

# %%
cmp("conv: (Tk/T)(Vk/V)", torch.tensor(part["conv"] / full["conv"]), torch.tensor(predicted["conv"]))
cmp("attention: (Tk/T)(Vk/V)^2", torch.tensor(part["attention"] / full["attention"]), torch.tensor(predicted["attention"]))
cmp("total = skel count_flops", torch.tensor(total_part), torch.tensor(count_flops(enc.encode, x_meta, m_cost.to("meta"))))
b0 = enc.blocks[0]
print(f"parameters: {count_parameters(enc):,} with or without masking; att0 alone "
      f"{sum(b.att0.numel() for b in enc.blocks):,} ({len(enc.blocks)} blocks x {b0.num_heads} heads x {b0.num_positions}^2)")

# %% [markdown]
# At the paper's rates the convolutions run on 36% of the grid and the attention products on
# 21.6%; since the convolutions dominate an STTFormer block (notebook 04), the whole encoder costs
# 34% of an unmasked pass. The 0.54 M parameters of the eight $\mathrm{att0}$ maps stay whatever
# the rates.
#
# ## Summary
#
# * Masking keeps a random $T_k \times V_k$ sub-grid per sample: frames at rate $1-M_t$ (a
#   multiple of the tuple length), then the same joints at rate $1-M_j$ on every kept frame.
# * The visible block is a regular tensor $(N, C, T_k, V_k)$; it is obtained by two gathers and
#   put back by two scatters, with mask tokens everywhere else.
# * Tokens keep their original frame and joint index, which the position embedding must use.
# * The encoder's convolutions cost $(1-M_t)(1-M_j)$ of an unmasked pass, its attention products
#   $(1-M_t)(1-M_j)^2$; its parameters, $\mathrm{att0}$ included, do not shrink.
#
# ## Exercises
#
# Write your answer into the variable of the cell below each exercise, then run the checking cell
# after it. The checker (`skel.notebook.check`) computes the true value with `skel`, independently
# of your answer, and prints `correct`, `not yet: expected ...`, or `not answered yet` (for
# `None`). The answers come filled in, so that CI checks them against `skel` on every run: set
# them to `None` before you start. A worked solution is folded under each exercise.

# %% [markdown]
# **Exercise 1.** A clip of $T = 60$ frames is masked with $M_t = 0.3$, $M_j = 0.75$ ($V = 25$,
# $L = 6$). How many frames $T_k$ and joints $V_k$ does the encoder see, and what fraction of the
# $T \times V$ tokens is that? Is it exactly $(1-M_t)(1-M_j)$?
#
# <details><summary>Solution</summary>
#
# $(1-M_t)\,T/L = 0.7 \cdot 60 / 6 = 7$ tuples, so $T_k = 42$; $(1-M_j)\,V = 6.25$ rounds to
# $V_k = 6$. Visible: $42 \cdot 6 = 252$ of $1500$ tokens, $0.168$, not the nominal
# $0.7 \cdot 0.25 = 0.175$: the joint count is rounded.
# </details>

# %%
ex1_frames = 42  # T_k
ex1_joints = 6  # V_k
ex1_fraction = 0.168  # visible tokens / (T * V)

# %%
tk1, vk1 = masking.kept_counts(60, V, 0.3, 0.75, tuple_len)
check("Exercise 1 (T_k, V_k, fraction)", (ex1_frames, ex1_joints, ex1_fraction), (tk1, vk1, tk1 * vk1 / (60 * V)))

# %% [markdown]
# **Exercise 2.** The paper's harshest setting is $M_t = 0.6$, $M_j = 0.8$ at $T = 120$. By what
# factor do the `paper` encoder's convolution FLOPs shrink, and by what factor its attention
# FLOPs, relative to an unmasked pass?
#
# <details><summary>Solution</summary>
#
# $T_k = 6 \cdot \operatorname{round}(0.4 \cdot 120/6) = 48$ frames ($0.4$ of $T$), $V_k = 5$
# joints ($0.2$ of $V$). Convolutions: $0.4 \cdot 0.2 = 0.08$; attention:
# $0.4 \cdot 0.2^2 = 0.016$.
# </details>

# %%
ex2_conv_factor = 0.08
ex2_attention_factor = 0.016

# %%
_, _, _, full2, part2 = encoder_cost(120, 0.6, 0.8)
check("Exercise 2 (conv, attention)", (ex2_conv_factor, ex2_attention_factor),
      (part2["conv"] / full2["conv"], part2["attention"] / full2["attention"]))

# %% [markdown]
# **Exercise 3.** At this notebook's defaults ($M_j = 0.4$, $L = 6$), what fraction of the
# entries of one head's $\mathrm{att0}$ ($V' \times V'$, $V' = LV = 150$) does one masked sample
# read? And how many parameters does one block's $\mathrm{att0}$ have ($H = 3$) with masking?
#
# <details><summary>Solution</summary>
#
# A sample reads rows and columns at its $V'' = L V_k = 6 \cdot 15 = 90$ positions:
# $90^2 / 150^2 = 0.36 = (1-M_j)^2$ of the map. The parameter keeps all
# $3 \cdot 150^2 = 67{,}500$ entries.
# </details>

# %%
ex3_fraction_read = 0.36
ex3_att0_parameters = 67500

# %%
pos3 = masking.random_masking(1, T, V, mt, mj, torch.Generator().manual_seed(seed), tuple_len=tuple_len).positions(tuple_len)[0]
read = torch.zeros(tuple_len * V, tuple_len * V, dtype=torch.bool)
read[pos3[:, None], pos3[None, :]] = True  # the att0 entries the block indexes for this sample
check("Exercise 3 (fraction read, att0 parameters)", (ex3_fraction_read, ex3_att0_parameters),
      (read.float().mean().item(), enc.blocks[0].att0.numel()))

# %% [markdown]
# Next, **03_latent_spaces**: what sits between the encoder and the decoder in MVAE (a Gaussian
# latent) and MVQVAE (a codebook).
