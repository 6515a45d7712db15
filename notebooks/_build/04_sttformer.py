# %% [markdown]
# # 04 · The STTFormer block
#
# The encoder and decoder of SkeletonMAE / MVAE / MVQVAE are stacks of STTFormer blocks
# (H. Qiu, B. Hou, B. Ren, X. Zhang, "Spatio-Temporal Tuples Transformer for Skeleton-Based Action
# Recognition", arXiv:2201.02849, 2022; official code `github.com/heleiqiu/STTFormer`). A block does not attend over single joints of single frames: it groups
# $L = 6$ consecutive frames into a **tuple** and lets every joint-in-tuple attend to every other,
# so one attention map relates joints *across* nearby frames. Then a temporal convolution
# aggregates neighbouring tuples.
#
# The settings quoted here are those of the official code's NTU RGB+D configuration
# (`config/ntu60_xsub.yaml` in that repository): tuples of `len_parts: 6` frames, `num_heads: 3`,
# a 120-frame window, and the eight-block stack `config` of `(in, out, qk_dim)` triples that
# `skel` calls `paper`. The parameter and FLOP counts of section 6 are our counts of that
# configuration (`skel.models.cost`), not numbers quoted from the paper.
#
# This notebook builds the tuples, derives the block's attention and residual wiring in plain
# `torch`, re-computes one block's forward from its own weights and checks it against
# `skel.models.sttformer.STTFormerBlock`, trains a one-block classifier to see what a learnt
# attention map looks like, walks the shapes through the `paper` and `tiny` stacks, counts
# parameters and FLOPs, handles the masked input of notebook 02, and ends with three exercises.

# %% tags=["parameters"]
seed: int = 0  # one seed for every random draw in this notebook
num_frames: int = 24  # T of the toy inputs, a multiple of tuple_len (paper: 120)
tuple_len: int = 6  # L: frames per tuple (paper: 6)
num_heads: int = 3  # H: attention heads (paper: 3)
preset: str = "tiny"  # encoder preset run on the synthetic sample ("tiny", "small" or "paper")
cost_frames: int = 120  # T used for the parameter / FLOP table (paper: 120)
train_steps: int = 300  # Adam steps of the one-block classifier of section 4 (CI scale; 0: untrained only)

# %%
import copy

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.colors import ListedColormap
from torch.utils.flop_counter import FlopCounterMode

from skel.data import load_dataset
from skel.data.feeder import Feeder
from skel.data.layout import NTU25
from skel.models.cost import count_flops, count_parameters
from skel.models.encoder import ENCODER_PRESETS, Encoder, pool_persons
from skel.models.masking import full_mask, random_masking
from skel.models.sttformer import (STTFormerBlock, from_tuples, grid_position_embedding, set_fast_path, sinusoid_table,
                                   to_tuples)
from skel.notebook import check, check_parameters, cmp, setup

check_parameters(globals(), __annotations__)  # papermill passes strings for bad values: fail here
g = setup(seed, threads=1)  # tiny tensors: a second thread only adds synchronisation


# %% [markdown]
# ## 1 · Tuples from frames
#
# A sequence $x \in \mathbb{R}^{N \times C \times T \times V}$ becomes
# $\mathbb{R}^{N \times C \times T' \times V'}$ with $T' = T/L$ tuples of $V' = L V$ positions:
# tuple $\tau$ holds frames $L\tau, \dots, L\tau + L - 1$ and position
#
# $$u = f\,V + v \qquad (f = \text{frame in tuple},\; v = \text{joint}).$$
#
# Because frames are contiguous in memory this is a plain `reshape`, no copy. Derived with
# explicit indices first:

# %%
def to_tuples_by_index(x, L):
    N, C, T, V = x.shape
    out = torch.empty(N, C, T // L, L * V, dtype=x.dtype)
    for tau in range(T // L):
        for f in range(L):
            for v in range(V):
                out[:, :, tau, f * V + v] = x[:, :, L * tau + f, v]
    return out


x = torch.randn(2, 3, num_frames, 25, generator=g)
xt = to_tuples_by_index(x, tuple_len)
print("(N, C, T, V) =", tuple(x.shape), "-> (N, C, T', V') =", tuple(xt.shape))
cmp("reshape == index loop", x.reshape(2, 3, num_frames // tuple_len, tuple_len * 25), xt)
cmp("skel to_tuples", to_tuples(x, tuple_len), xt)
cmp("skel from_tuples (inverse)", from_tuples(xt, tuple_len), x)

# %%
T, V = num_frames, 25
Tt, Vt = T // tuple_len, tuple_len * V
base = plt.get_cmap("tab10")(torch.arange(Tt).numpy())[:, :3]  # one colour per tuple


def colour_of(t):
    """RGB of frame t: its tuple's colour, lighter for later frames in the tuple."""
    fade = 0.55 * (t % tuple_len) / (tuple_len - 1)
    return base[t // tuple_len] * (1 - fade) + fade


frame_rgb = torch.tensor(np.array([[colour_of(t) for t in range(T)]] * V))  # (V, T, 3): joints down, frames across
tuple_rgb = to_tuples(frame_rgb.permute(2, 1, 0)[None], tuple_len)[0].permute(1, 2, 0)  # (T', V', 3)

fig, axes = plt.subplots(1, 2, figsize=(11, 3), gridspec_kw={"width_ratios": [1, 3.2]})
axes[0].imshow(frame_rgb, aspect="auto", interpolation="nearest")
axes[0].set(xlabel="frame t", ylabel="joint v", title="(T, V): one colour per tuple")
axes[1].imshow(tuple_rgb, aspect="auto", interpolation="nearest")
for f in range(1, tuple_len):
    axes[1].axvline(f * V - 0.5, color="w", lw=1.5)
axes[1].set_xticks([f * V + V / 2 - 0.5 for f in range(tuple_len)],
                   [f"f = {f}\nu = {f * V}..{f * V + V - 1}" for f in range(tuple_len)], fontsize=8)
axes[1].set(ylabel="tuple τ", yticks=range(Tt), title="(T', V'): tuple τ holds frames 6τ..6τ+5 side by side")
plt.tight_layout()
plt.show()


# %% [markdown]
# ## 2 · The tuple attention
#
# The block $(C_{\text{in}}, C_{\text{out}}, d, H)$ computes one $V' \times V'$ map per head and
# per sample, shared by all tuples:
#
# 1. a sinusoidal position encoding over the position $u$ only (no temporal term) is added,
#    $x_s = x + \mathrm{PE}$, **for the queries and keys only**;
# 2. a $1\times1$ convolution gives $Q, K \in \mathbb{R}^{N \times H \times d \times T' \times V'}$;
# 3. the map sums the query-key products over the $d$ channels **and the $T'$ tuples**, scales by
#    $d\,T'$, squashes with $\tanh$ (not a softmax: rows need not sum to one, entries may be
#    negative) and adds a learned static map $\mathrm{att0}_h$ (initialised to $1/V'$):
#
# $$A_h[u, w] = \alpha_h \tanh\Big(\frac{1}{d\,T'} \sum_{c=1}^{d} \sum_{\tau=1}^{T'} Q_h[c,\tau,u]\, K_h[c,\tau,w]\Big)
#   + \mathrm{att0}_h[u, w];$$
#
# 4. there is **no value projection**: each head mixes the raw input columns,
#    $y_h[c, \tau, w] = \sum_u x[c, \tau, u]\, A_h[u, w]$, and the $H$ heads are stacked on the channel
#    axis, $y \in \mathbb{R}^{N \times H C_{\text{in}} \times T' \times V'}$.

# %%
def tuple_attention(block, x):
    """A (N, H, V', V') from the block's own weights, written out with einsum."""
    N, C, Tt, Vt = x.shape
    H, d = block.num_heads, block.qk_dim
    pe = sinusoid_table(Vt, C).T  # (C, V'): one vector per position u
    xs = x + pe[None, :, None, :]
    qk = F.conv2d(xs, block.to_qk.weight, block.to_qk.bias)  # (N, 2*H*d, T', V')
    q, k = qk.view(N, 2, H, d, Tt, Vt).unbind(1)
    scores = torch.einsum("nhctu,nhctw->nhuw", q, k) / (d * Tt)
    return torch.tanh(scores) * block.alpha + block.att0


def mix_heads(x, A):
    """y (N, H*C, T', V'): every head mixes the raw input columns, heads stacked on channels."""
    N, C, Tt, Vt = x.shape
    return torch.einsum("nctu,nhuw->nhctw", x, A).reshape(N, -1, Tt, Vt)


torch.manual_seed(seed)
block = STTFormerBlock(16, 32, 8, tuple_len * 25, num_heads).eval()
x = torch.randn(2, 16, num_frames // tuple_len, tuple_len * 25, generator=g)
with torch.no_grad():
    A = tuple_attention(block, x)
    cmp("attention A", A, block.attention(x))
print("A:", tuple(A.shape), "= (N, H, V', V')")


# %% [markdown]
# ## 3 · The residual wiring
#
# After the attention, three convolutions, each followed by BatchNorm and LeakyReLU(0.1):
#
# $$\begin{aligned}
# r &= \mathrm{res}(x) &&\text{(identity, or } 1{\times}1 \text{ conv + BN when } C_{\text{in}} \ne C_{\text{out}})\\
# y_1 &= \mathrm{lrelu}\big(\mathrm{BN}(\mathrm{conv}_{1\times5}(y)) + r\big) &&\text{mixes neighbouring positions } u\\
# y_2 &= \mathrm{lrelu}\big(\mathrm{BN}(\mathrm{conv}_{1\times1}(y_1)) + r\big) &&\text{the same } r\text{, the block input}\\
# \text{out} &= \mathrm{lrelu}\big(\mathrm{BN}(\mathrm{conv}_{3\times1}(y_2)) + \mathrm{res}_2(y_2)\big) &&\text{aggregates neighbouring tuples}
# \end{aligned}$$
#
# No LayerNorm, and no temporal downsampling: the block keeps $T'$ and $V'$. Below, the whole
# forward written with `F.conv2d` / `F.batch_norm` from the block's weights. Its BatchNorm
# statistics are randomised first so that the check is not fooled by identity normalisation.
#
# `skel` has two paths for the same block: `plain`, op for op the official code, and the default
# `fast` one (one product per head, BatchNorm + residual + LeakyReLU in place, for less memory
# traffic). Both must match the derivation.

# %%
def conv_bn(seq, x, training):
    conv, bn = seq[0], seq[1]
    y = F.conv2d(x, conv.weight, conv.bias, padding=conv.padding)
    return F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=training, eps=bn.eps)


def block_forward(block, x, training=False):
    lrelu = lambda t: F.leaky_relu(t, 0.1)
    y = mix_heads(x, tuple_attention(block, x))
    r = x if block.in_channels == block.out_channels else conv_bn(block.res_s, x, training)
    y = lrelu(conv_bn(block.out_s, y, training) + r)
    y = lrelu(conv_bn(block.ff, y, training) + r)
    r2 = y if block.in_channels == block.out_channels else conv_bn(block.res_t, y, training)
    return lrelu(conv_bn(block.out_t, y, training) + r2)


with torch.no_grad():
    for m in block.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
            m.weight.copy_(1 + 0.1 * torch.randn(m.num_features, generator=g))
            m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
    block.alpha.copy_(torch.tensor([0.5, 1.0, 2.0]).view(1, 3, 1, 1)[:, :num_heads])
    block.att0.add_(0.01 * torch.randn(block.att0.shape, generator=g))
    ours = block_forward(block, x)
    plain = set_fast_path(block, False)(x)
    fast = set_fast_path(block, True)(x)
print("block output:", tuple(fast.shape))
torch.testing.assert_close(ours, plain)
torch.testing.assert_close(ours, fast)
cmp("block forward, plain path", ours, plain)
cmp("block forward, fast path", ours, fast)

# %% [markdown]
# ## 4 · Attention maps before and after training
#
# An untrained block shows little: $\mathrm{att0}$ is the constant $1/V'$ and $Q, K$ come from
# random weights. To see what a block learns, we train a small classifier made of `skel`'s parts
# on the synthetic set: the encoder's input map and position embedding, **one** STTFormer block
# $(16, 16, 4)$, global average pooling (`skel.models.encoder.pool_persons`) and a linear layer,
# for `train_steps` Adam steps (learning rate $3 \cdot 10^{-3}$, batches of 16, the training
# feeder's random crops, first person only to halve the cost). It is small and briefly trained,
# but far above chance, and its maps change in a way we can read.

# %%
train_set, test_set = load_dataset("synthetic", "train", seed=seed), load_dataset("synthetic", "test", seed=seed)
train_feed = Feeder(train_set, window=num_frames, train=True, seed=seed, min_length=16)  # clips are short
test_feed = Feeder(test_set, window=num_frames, train=False)


class SmallClassifier(torch.nn.Module):
    """skel's Encoder (any block list) + person pooling + linear head; x (N, C, T, V, M) -> logits."""

    def __init__(self, blocks, num_classes):
        super().__init__()
        self.encoder = Encoder(3, 25, blocks, num_heads, tuple_len)
        self.fc = torch.nn.Linear(blocks[-1][1], num_classes)

    def forward(self, x):
        z, rows = self.encoder(x)
        return self.fc(pool_persons(z, rows, x.shape[0]))


def accuracy(model, feed):
    x, y = map(torch.stack, zip(*[(xi, torch.tensor(yi)) for xi, yi in (feed[i] for i in range(len(feed)))]))
    with torch.no_grad():
        return (model.eval()(x[..., :1]).argmax(1) == y).float().mean().item()


torch.manual_seed(seed)
small = SmallClassifier([(16, 16, 4)], train_set.num_classes)
untrained = copy.deepcopy(small)
opt = torch.optim.Adam(small.parameters(), lr=3e-3)
loader = torch.utils.data.DataLoader(train_feed, batch_size=16, shuffle=True, drop_last=True,
                                     generator=torch.Generator().manual_seed(seed))
losses, epoch = [], 0
while len(losses) < train_steps:
    train_feed.set_epoch(epoch)
    epoch += 1
    for xb, yb in loader:
        loss = F.cross_entropy(small.train()(xb[..., :1]), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if len(losses) == train_steps:
            break
print(f"{len(losses)} steps ({epoch} epochs): training loss {np.mean(losses[:20]):.3f} (first 20 steps) -> "
      f"{np.mean(losses[-20:]):.3f} (last 20)" if losses else "no training steps")
print(f"test accuracy: untrained {accuracy(untrained, test_feed):.3f}, trained {accuracy(small, test_feed):.3f} "
      f"(chance {1 / test_set.num_classes:.3f})")


# %% [markdown]
# The maps of the block for one test sample, before (top) and after (bottom) training, with the
# same colour scale: $A = \alpha\tanh(\cdot) + \mathrm{att0}$, grid lines between the six frames of
# a tuple, so block $(f, f')$ of a map relates the joints of frame $f$ to those of frame $f'$.

# %%
def block_maps(model, x):
    """A (H, V', V') of the model's first block for one sample x (C, T, V, M), first person."""
    enc = model.encoder.eval()
    with torch.no_grad():
        h = enc.input_map(x[None, ..., 0])
        m = full_mask(1, x.shape[1], x.shape[2])
        h = to_tuples(h + grid_position_embedding(h.shape[1], m.frames, m.joints, x.shape[1], x.shape[2]), tuple_len)
        return enc.blocks[0].attention(h)[0]


pick = int(np.flatnonzero(test_set.labels == 0)[0])  # a "wave right hand" clip
x_pick = test_feed[pick][0]
maps = {"untrained": block_maps(untrained, x_pick), "trained": block_maps(small, x_pick)}
vmax = max(m.abs().max().item() for m in maps.values())
ticks = [f * 25 + 12 for f in range(tuple_len)]
fig, axes = plt.subplots(2, num_heads, figsize=(10, 6.6), layout="constrained")
for row, (name, m) in zip(axes, maps.items()):
    for hh, ax in enumerate(row):
        im = ax.imshow(m[hh], cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        for f in range(1, tuple_len):
            ax.axhline(f * 25 - 0.5, color="k", lw=0.4)
            ax.axvline(f * 25 - 0.5, color="k", lw=0.4)
        ax.set_xticks(ticks, [f"f{f}" for f in range(tuple_len)])
        ax.set_yticks(ticks, [f"f{f}" for f in range(tuple_len)])
        ax.set_title(f"{name}, head {hh}")
    row[0].set_ylabel("input position u")
for ax in axes[1]:
    ax.set_xlabel("output position w")
fig.colorbar(im, ax=axes, shrink=0.6)
fig.suptitle(f"A of the block on test sample {pick} ({test_set.class_names[test_set.labels[pick]]})")
plt.show()

# %% [markdown]
# **What changed.** Untrained, the map is not flat at all: with Kaiming-initialised $Q, K$ the
# scores are large enough to saturate the $\tanh$, so $A$ is a $\pm\alpha$ pattern that follows
# this sample's features frame by frame (the constant $\mathrm{att0} = 1/V' \approx 0.007$ is
# invisible beside it). After training, **horizontal stripes that repeat every 25 rows** take
# over: row $u = fV + v$ has nearly the same value in all six frames $f$ of the tuple, so the
# stripes belong to *joints*, not to moments. Row $u$ of $A$ says how much the input at position
# $u$ is added into every output position ($y = xA$, the values are the raw input), and the block
# is followed by global average pooling, so the row sum $\sum_w A[u, w]$ acts roughly as the
# weight of position $u$ in the pooled feature: the block has learnt which joints to listen to.
#
# Most of that lives in the static $\mathrm{att0}$. Below, its change averaged per input joint
# (over the six frames and all output positions), and per body part. Adam moves every entry by up
# to the learning rate per step whatever the size of its gradient, so 300 steps take $\mathrm{att0}$
# far from its initial $1/150$; plain SGD (the official STTFormer recipe) would move it much less.

# %%
d_att0 = (small.encoder.blocks[0].att0 - untrained.encoder.blocks[0].att0).detach()[0]  # (H, V', V')
per_joint = d_att0.view(num_heads, tuple_len, 25, tuple_len * 25).mean((1, 3))  # (H, V): input joint v
names = NTU25.joint_names
fig, ax = plt.subplots(figsize=(10, 2.6))
for hh in range(num_heads):
    ax.bar(np.arange(25) + (hh - 1) * 0.27, per_joint[hh], width=0.27, label=f"head {hh}")
ax.axhline(0, color="k", lw=0.5)
ax.set_xticks(range(25), names, rotation=60, ha="right", fontsize=7)
ax.set(ylabel="mean change of att0 row", title="trained - untrained att0, per input joint")
ax.legend(fontsize=7, ncol=3)
plt.show()
parts = {"trunk+head": [0, 1, 2, 3, 20], "left arm": [4, 5, 6, 7, 21, 22], "right arm": [8, 9, 10, 11, 23, 24],
         "left leg": [12, 13, 14, 15], "right leg": [16, 17, 18, 19]}
lines = [f"{'mean change':11s} " + " ".join(f"{part:>10s}" for part in parts)]
lines += [f"head {hh:<6d} " + " ".join(f"{per_joint[hh, idx].mean():10.3f}" for idx in parts.values())
          for hh in range(num_heads)]
lines.append(f"{'mean |.|':11s} " + " ".join(f"{per_joint[:, idx].abs().mean():10.3f}" for idx in parts.values()))
print("\n".join(lines))


# %% [markdown]
# The arms moved most, and in opposite directions: where a head turned the left arm's joints up it
# turned the right arm's down, and the other way round. That is what this data asks for: most of
# the synthetic classes are arm movements, and some differ only in the side ("wave right hand"
# against "wave left hand"), while the legs matter for fewer of them ("kick", "squat", "march in
# place"). A one-block model trained for seconds is not a good classifier, but its map already
# encodes a readable prior: which joints, and which side, to listen to.

# %% [markdown]
# ## 5 · Shapes through the stacks
#
# The encoder: persons folded into the batch, input map $C \to D_0$, a token position embedding
# from each token's original frame and joint, tuples, then the blocks. Blocks never change
# $T'$ or $V'$; only the channel width grows. For the `paper` stack at $T = 120$ and the `tiny`
# stack at the notebook's $T$:

# %%
def walk(preset_name, T):
    cfg = ENCODER_PRESETS[preset_name]
    Tt, Vt = T // tuple_len, tuple_len * 25
    print(f"{preset_name}: input (N*M, 3, {T}, 25) -> input map (N*M, {cfg['blocks'][0][0]}, {T}, 25) "
          f"-> tuples (N*M, {cfg['blocks'][0][0]}, {Tt}, {Vt})")
    print(f"  {'block':>5} {'in':>4} {'out':>4} {'d':>3}  {'output shape':>22}")
    for i, (cin, cout, d) in enumerate(cfg["blocks"]):
        print(f"  {i:>5} {cin:>4} {cout:>4} {d:>3}  {f'(N*M, {cout}, {Tt}, {Vt})':>22}")


walk("paper", cost_frames)
walk("tiny", num_frames)

# %%
frames = torch.linspace(0, train_set[0][0].shape[1] - 1, num_frames).round().long()
xs = torch.from_numpy(train_set[0][0])[:, frames][None]  # (1, C, T, V, M): a synthetic sample, both persons
torch.manual_seed(seed)
encoder = Encoder(3, 25, **ENCODER_PRESETS[preset], tuple_len=tuple_len).eval()
with torch.no_grad():
    z, rows = encoder(xs)
    xf = xs.permute(0, 4, 1, 2, 3).reshape(-1, 3, num_frames, 25)  # persons folded: (N*M, C, T, V)
    m_full = full_mask(xf.shape[0], num_frames, 25)
    h = encoder.input_map(xf)
    h = to_tuples(h + grid_position_embedding(h.shape[1], m_full.frames, m_full.joints, num_frames, 25), tuple_len)
    for blk in encoder.blocks:
        h = blk(h)
print(f"'{preset}' encoder on the sample: z {tuple(z.shape)} (N*M, D, T', V'), rows run {rows.tolist()}")
cmp("encoder = map + PE + blocks", h, z)


# %% [markdown]
# ## 6 · Parameters and FLOPs per block
#
# Counting by hand for a block $(C_i, C_o, d, H)$ at $V'$ positions (weights + biases; BN has a
# weight and a bias per channel):
#
# $$\begin{aligned}
# P &= \underbrace{(C_i + 1)\,2Hd}_{Q,K} + \underbrace{H}_{\alpha} + \underbrace{H V'^2}_{\mathrm{att0}}
#    + \underbrace{5 H C_i C_o + 3C_o}_{1\times5} + \underbrace{C_o^2 + 3C_o}_{1\times1}
#    + \underbrace{3 C_o^2 + 3C_o}_{3\times1} + [C_i \ne C_o]\,\underbrace{(C_i C_o + C_o^2 + 6 C_o)}_{\text{two residual convs}}.
# \end{aligned}$$
#
# $\mathrm{att0}$ alone is $3 \times 150^2 = 67{,}500$ parameters per block: 0.54 M of the `paper`
# stack. FLOPs (multiply-adds × 2, matrix products and convolutions only) per sample and person:
#
# $$F = 2\,T'V'\big(2Hd\,C_i + 5HC_iC_o + C_o^2 + 3C_o^2 + [C_i\ne C_o](C_iC_o + C_o^2)\big)
#     + 2\,H\,V'^2\,T'\,(d + C_i).$$
#
# `skel.models.cost` counts parameters, and FLOPs with `torch.utils.flop_counter` (which counts
# exactly these operations). We run it on the `meta` device (shapes only, no arithmetic), which
# makes even the `paper` stack free to count, and check it against the formulas.

# %%
def block_params(cin, cout, d, H, Vt):
    p = (cin + 1) * 2 * H * d + H + H * Vt * Vt
    p += 5 * H * cin * cout + 3 * cout + cout * cout + 3 * cout + 3 * cout * cout + 3 * cout
    if cin != cout:
        p += cin * cout + cout * cout + 6 * cout
    return p


def block_flops(cin, cout, d, H, Tt, Vt):
    f = 2 * Tt * Vt * (2 * H * d * cin + 5 * H * cin * cout + cout * cout + 3 * cout * cout)
    if cin != cout:
        f += 2 * Tt * Vt * (cin * cout + cout * cout)
    return f + 2 * H * Vt * Vt * Tt * (d + cin)


Tt, Vt = cost_frames // tuple_len, tuple_len * 25
lines = [f"paper stack, T = {cost_frames} (T' = {Tt}, V' = {Vt}), one person:",
         f"{'block':>5} {'in':>4} {'out':>4} {'d':>3} {'params':>10} {'skel':>10} {'GFLOPs':>7} {'skel':>7} {'att0 share':>10}"]
total_p = total_f = 0
for i, (cin, cout, d) in enumerate(ENCODER_PRESETS["paper"]["blocks"]):
    p, f = block_params(cin, cout, d, num_heads, Vt), block_flops(cin, cout, d, num_heads, Tt, Vt)
    with torch.device("meta"):
        b = STTFormerBlock(cin, cout, d, Vt, num_heads)
        f_skel = count_flops(b, torch.empty(1, cin, Tt, Vt))
    p_skel = count_parameters(b)
    assert (p, f) == (p_skel, f_skel), (i, p, p_skel, f, f_skel)
    total_p, total_f = total_p + p, total_f + f
    lines.append(f"{i:>5} {cin:>4} {cout:>4} {d:>3} {p:>10,} {p_skel:>10,} {f / 1e9:>7.3f} {f_skel / 1e9:>7.3f} "
                 f"{b.att0.numel() / p:>10.1%}")
lines.append(f"blocks: {total_p:,} parameters, {total_f / 1e9:.2f} GFLOPs = {total_f / 2e9:.2f} GMACs per person")
print("\n".join(lines))  # one print: stored outputs do not depend on stream timing
with torch.device("meta"):
    enc = Encoder(3, 25, **ENCODER_PRESETS["paper"])
print(f"paper Encoder (input map + blocks): {count_parameters(enc):,} parameters")


# %% [markdown]
# The official configuration's eight blocks hold 6.2 M parameters and cost 19.1 GMACs (38.2 GFLOPs)
# per person at $T = 120$ in our count; the full classifier adds the input map ($3 \to 64$, 384
# parameters with its BatchNorm) and a linear head ($256 \times 60 + 60$ for NTU-60). These are
# counts of the code's configuration, checked against the formulas above, not figures taken from
# the paper. The attention products ($V'^2$ terms) are a small share; the $1\times5$ convolution
# over $H C_i$ input channels dominates.

# %% [markdown]
# ## 7 · The masked input
#
# With masking (notebook 02) the encoder sees only $T_k \times V_k$ tokens, cut into tuples of
# $L$ *kept* frames: a tuple has $V'' = L V_k$ columns. Each column is still a position
# $u = f V + v$ of the full layout ($f$ its frame within the visible tuple, $v$ its original
# joint), so the block uses the rows and columns of $\mathrm{att0}$ and the PE at those positions:
#
# $$A_h[i, j] = \alpha_h \tanh(\dots) + \mathrm{att0}_h[u_i, u_j], \qquad x_s[:, :, i] = x[:, :, i] + \mathrm{PE}[u_i].$$
#
# Each sample reads its own $V'' \times V''$ sub-matrix of $\mathrm{att0}$ (left below: the same
# joints in every frame slot give a regular pattern of rows and columns). Then the block is derived
# by hand from its weights and checked against the block called with `positions` (a different
# mask per sample).

# %%
def block_forward_masked(block, x, pos):
    """x (N, C, T', V''), pos (N, V'') -> as block_forward, with att0 / PE indexed by pos."""
    N, C, Tt, Vv = x.shape
    H, d = block.num_heads, block.qk_dim
    outs = []
    for n in range(N):  # per sample: its own positions
        u = pos[n]
        pe = sinusoid_table(block.num_positions, C).T[:, u]
        qk = F.conv2d(x[n : n + 1] + pe[None, :, None, :], block.to_qk.weight, block.to_qk.bias)
        q, k = qk.view(1, 2, H, d, Tt, Vv).unbind(1)
        A = torch.tanh(torch.einsum("nhctu,nhctw->nhuw", q, k) / (d * Tt)) * block.alpha
        A = A + block.att0[:, :, u][:, :, :, u]
        outs.append(mix_heads(x[n : n + 1], A))
    y = torch.cat(outs)
    r = conv_bn(block.res_s, x, False) if block.in_channels != block.out_channels else x
    y = F.leaky_relu(conv_bn(block.out_s, y, False) + r, 0.1)
    y = F.leaky_relu(conv_bn(block.ff, y, False) + r, 0.1)
    r2 = conv_bn(block.res_t, y, False) if block.in_channels != block.out_channels else y
    return F.leaky_relu(conv_bn(block.out_t, y, False) + r2, 0.1)


mask = random_masking(2, num_frames, 25, 0.4, 0.4, torch.Generator().manual_seed(seed), tuple_len=tuple_len)
pos = mask.positions(tuple_len)  # (N, L*V_k)
tk, vk = mask.frames.shape[1], mask.joints.shape[1]
x_vis = torch.randn(2, 16, tk // tuple_len, tuple_len * vk, generator=g)
print(f"visible tuples: (N, C, T_k/L, L*V_k) = {tuple(x_vis.shape)}; positions {tuple(pos.shape)}")
print("sample 0, first positions:", pos[0, :8].tolist(), "... (joints", mask.joints[0, :8].tolist(), "...)")
used = torch.zeros(block.num_positions, block.num_positions)
used[pos[0][:, None], pos[0][None, :]] = 1.0  # entries of att0 that sample 0 reads
fig, axes = plt.subplots(1, 2, figsize=(8, 3.8), layout="constrained")
axes[0].imshow(used, cmap=ListedColormap(["white", "salmon"]), interpolation="nearest")
axes[0].set(title=f"att0 entries used by sample 0 ({len(pos[0])}² of {block.num_positions}²)",
            xlabel="key position w", ylabel="query position u")
for f in range(1, tuple_len):
    for line in (axes[0].axhline, axes[0].axvline):
        line(f * 25 - 0.5, color="k", lw=1.0)
cols = torch.zeros(2, block.num_positions)
cols[0, pos[0]], cols[1, pos[1]] = 1, 2
axes[1].imshow(cols.view(2 * tuple_len, 25), cmap=ListedColormap(["white", "tab:red", "tab:blue"]),
               vmin=0, vmax=2, interpolation="nearest", aspect="auto")
axes[1].set_yticks(range(2 * tuple_len), [f"sample {n}, f{f}" for n in range(2) for f in range(tuple_len)], fontsize=7)
axes[1].set(title="visible positions u = f·V + v per sample", xlabel="joint v")
plt.show()

# %%
with torch.no_grad():
    ours = block_forward_masked(block, x_vis, pos)
    plain = set_fast_path(block, False)(x_vis, pos)
    fast = set_fast_path(block, True)(x_vis, pos)
torch.testing.assert_close(ours, plain)
torch.testing.assert_close(ours, fast)
cmp("masked block, plain path", ours, plain)
cmp("masked block, fast path", ours, fast)
with torch.no_grad():
    cmp("positions=all == None", block(x, torch.arange(block.num_positions)), block(x))

# %% [markdown]
# ## Summary
#
# * Tuples are a reshape $(N, C, T, V) \to (N, C, T/6, 6V)$: attention then relates joints across
#   the six frames of a tuple.
# * The attention is $\alpha\tanh(QK^\top / dT') + \mathrm{att0}$, one map per head and sample,
#   shared by all tuples, applied to the raw input (no value projection); three conv + BN +
#   LeakyReLU stages follow, two sharing the block-input residual, the last aggregating tuples.
# * Trained, a block's map turns into per-joint stripes, mostly in $\mathrm{att0}$: it learns which
#   joints to listen to.
# * The official configuration (`paper`) is 6.2 M parameters and 19.1 GMACs per person at
#   $T=120$ in our count; masking uses only the visible columns, with $\mathrm{att0}$ and the PE
#   indexed by position (its cost factors are derived in notebook 02).
#
# ## Exercises
#
# Write your answer into the variable of the cell below each exercise, then run the checking cell
# after it. The checker (`skel.notebook.check`) computes the true value with `skel`, independently
# of your answer, and prints `correct`, `not yet: expected ...`, or `not answered yet` (for
# `None`). The answers come filled in, so that CI checks them against `skel` on every run: set
# them to `None` before you start. A worked solution is folded under each exercise.

# %% [markdown]
# **Exercise 1.** How many parameters does a block $(C_i, C_o, d) = (96, 96, 24)$ with $H = 3$
# heads have at $V' = 150$?
#
# <details><summary>Solution</summary>
#
# With the formula of section 6 and $C_i = C_o$ (no residual convolutions):
# $97 \cdot 2 \cdot 3 \cdot 24 = 13{,}968$ ($Q, K$) $+\,3$ ($\alpha$) $+\,3 \cdot 150^2 = 67{,}500$
# ($\mathrm{att0}$) $+\,5 \cdot 3 \cdot 96^2 + 3 \cdot 96 = 138{,}528$ ($1{\times}5$)
# $+\,96^2 + 3 \cdot 96 = 9{,}504$ ($1{\times}1$) $+\,3 \cdot 96^2 + 3 \cdot 96 = 27{,}936$
# ($3{\times}1$) $= 257{,}439$.
# </details>

# %%
ex1_parameters = 257439

# %%
check("Exercise 1 (parameters)", ex1_parameters, count_parameters(STTFormerBlock(96, 96, 24, 150, 3)))

# %% [markdown]
# **Exercise 2.** In the tuple layout ($L = 6$, $V = 25$), in which tuple $\tau$ and at which
# column $u$ does joint 11 (the right hand) of frame $t = 40$ land?
#
# <details><summary>Solution</summary>
#
# $\tau = \lfloor 40 / 6 \rfloor = 6$; frame 40 is frame $f = 40 - 36 = 4$ of that tuple, so
# $u = fV + v = 4 \cdot 25 + 11 = 111$.
# </details>

# %%
ex2_tuple = 6  # tau
ex2_column = 111  # u

# %%
ids = torch.arange(1 * 60 * 25).view(1, 1, 60, 25)  # each (t, v) holds its own id t * 25 + v
where = (to_tuples(ids, 6)[0, 0] == 40 * 25 + 11).nonzero()[0]
check("Exercise 2 (tau, u)", (ex2_tuple, ex2_column), (int(where[0]), int(where[1])))

# %% [markdown]
# **Exercise 3.** Suppose tuples of $L = 12$ frames instead of 6, at $T = 120$, $V = 25$, $H = 3$.
# How many positions $V'$ does a tuple have, how many parameters does one block's $\mathrm{att0}$
# hold, and by what factor do the block's attention products (scores and mixing) grow in FLOPs
# compared with $L = 6$?
#
# <details><summary>Solution</summary>
#
# $V' = 12 \cdot 25 = 300$; $\mathrm{att0}$ has $3 \cdot 300^2 = 270{,}000$ parameters (4 times as
# many). The attention products cost $\propto T' V'^2 = (T/L)(LV)^2 = T L V^2$: twice as much.
# </details>

# %%
ex3_positions = 300
ex3_att0_parameters = 270000
ex3_attention_factor = 2.0


# %%
def attention_flops(L):
    """FLOPs of the batched matrix products (scores and mixing) of a (64, 64, 16) block, T = 120."""
    with torch.device("meta"):  # shapes only, as in section 6
        blk = STTFormerBlock(64, 64, 16, L * 25, 3)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            blk(torch.empty(1, 64, 120 // L, L * 25))
    return counter.get_flop_counts()["Global"][torch.ops.aten.bmm]


with torch.device("meta"):
    b12 = STTFormerBlock(64, 64, 16, 12 * 25, 3)
check("Exercise 3 (V', att0, factor)", (ex3_positions, ex3_att0_parameters, ex3_attention_factor),
      (b12.num_positions, b12.att0.numel(), attention_flops(12) / attention_flops(6)))

# %% [markdown]
# Next, **05**: encoder, latent and decoder assembled into the pre-training model.
