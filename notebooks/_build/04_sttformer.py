# %% [markdown]
# # 04 · The STTFormer block
#
# The encoder and decoder of SkeletonMAE / MVAE / MVQVAE are stacks of STTFormer blocks
# (Qiu et al. 2022). A block does not attend over single joints of single frames: it groups
# $L = 6$ consecutive frames into a **tuple** and lets every joint-in-tuple attend to every other,
# so one attention map relates joints *across* nearby frames. Then a temporal convolution
# aggregates neighbouring tuples.
#
# This notebook builds the tuples, derives the block's attention and residual wiring in plain
# `torch`, re-computes one block's forward from its own weights and checks it against
# `skel.models.sttformer.STTFormerBlock`, walks the shapes through the `paper` and `tiny` stacks,
# counts parameters and FLOPs, and handles the masked input of notebook 02.

# %% tags=["parameters"]
seed: int = 0  # one seed for every random draw in this notebook
num_frames: int = 24  # T of the toy inputs, a multiple of tuple_len (paper: 120)
tuple_len: int = 6  # L: frames per tuple (paper: 6)
num_heads: int = 3  # H: attention heads (paper: 3)
preset: str = "tiny"  # encoder preset run on the synthetic sample ("tiny", "small" or "paper")
cost_frames: int = 120  # T used for the parameter / FLOP table (paper: 120)

# %%
import numpy as np

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.colors import ListedColormap

from skel.data import load_dataset
from skel.models.cost import count_flops, count_parameters
from skel.models.encoder import ENCODER_PRESETS, Encoder
from skel.models.masking import full_mask, random_masking
from skel.models.sttformer import (STTFormerBlock, from_tuples, grid_position_embedding, set_fast_path, sinusoid_table,
                                   to_tuples)
from skel.notebook import check_parameters, cmp, setup

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
# ## 4 · Attention maps of a block on a synthetic sample
#
# The `tiny` encoder, untrained, on a synthetic sample: input map ($1{\times}1$ conv, BN,
# LeakyReLU) and the first block. Untrained, $\mathrm{att0}$ is the constant $1/V'$, so what we see
# is the data-dependent $\alpha\tanh(\cdot)$ part. The grid lines separate the 6 frames of a tuple:
# block $(f, f')$ of a map relates joints of frame $f$ to joints of frame $f'$.

# %%
data = load_dataset("synthetic", "train")
sample, label = data[0]
frames = torch.linspace(0, sample.shape[1] - 1, num_frames).round().long()
xs = torch.from_numpy(sample)[:, frames][None]  # (1, C, T, V, M)
print("synthetic sample:", tuple(xs.shape), "class", data.class_names[label])

torch.manual_seed(seed)
encoder = Encoder(3, 25, **ENCODER_PRESETS[preset], tuple_len=tuple_len).eval()
with torch.no_grad():
    h = encoder.input_map(xs[..., 0])  # first person, (1, D0, T, V)
    m_full = full_mask(1, num_frames, 25)  # keeps every frame and joint
    h = to_tuples(h + grid_position_embedding(h.shape[1], m_full.frames, m_full.joints, num_frames, 25), tuple_len)
    maps = encoder.blocks[0].attention(h)[0]  # (H, V', V')

fig, axes = plt.subplots(1, num_heads, figsize=(11, 3.9), layout="constrained")
vmax = maps.abs().max().item()
centres = [f * 25 + 12 for f in range(tuple_len)]
for hh, ax in enumerate(axes):
    im = ax.imshow(maps[hh], cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    for f in range(1, tuple_len):
        ax.axhline(f * 25 - 0.5, color="k", lw=0.4)
        ax.axvline(f * 25 - 0.5, color="k", lw=0.4)
    ax.set_xticks(centres, [f"f{f}" for f in range(tuple_len)])
    ax.set_yticks(centres, [f"f{f}" for f in range(tuple_len)])
    ax.set(title=f"head {hh}", xlabel="key position w (frame in tuple)")
axes[0].set_ylabel("query position u (frame in tuple)")
fig.colorbar(im, ax=axes, shrink=0.8)
fig.suptitle(f"first block of the untrained '{preset}' encoder: A = α tanh(·) + att0, one synthetic sample")
plt.show()


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
# About 6 M parameters and about 19 GMACs per person at $T = 120$, as reported for STTFormer
# (the official model adds the input map and a classifier head). The attention products
# ($V'^2$ terms) are a small share; the $1\times5$ convolution over $H C_i$ input channels dominates.

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
# * The `paper` stack is about 6 M parameters and 19 GMACs per person at $T=120$; masking shrinks
#   the cost by using only the visible columns, with $\mathrm{att0}$ and the PE indexed by position.
#
# Next, **05**: encoder, latent and decoder assembled into the pre-training model.
