# %% [markdown]
# # 01 · Skeleton data: from a raw file to a training batch
#
# Every model in this project eats tensors $x \in \mathbb{R}^{C \times T \times V \times M}$:
# $C = 3$ coordinates (metres, Kinect camera space: $x$ to the subject's right when facing the
# camera, $y$ up, $z$ away from the camera), $T$ frames, $V$ joints (25 for NTU RGB+D), $M = 2$
# persons (a missing person is all zeros). This notebook follows one NTU recording from its text
# file to a batch:
#
# 1. **parse** the official `.skeleton` layout;
# 2. **denoise** and assign bodies to the two actor slots (the CTR-GCN rules);
# 3. **centre** on the spine;
# 4. **split** by subject / camera / setup;
# 5. **crop and resize** the valid frames to a fixed window, and **augment** with a random rotation;
# 6. look at the **datasets** the registry knows (the synthetic default and the real sets).
#
# Each step is derived here by hand and then checked against the one implementation in
# `skel.data` (`skel.data.ntu`, `skel.data.feeder`). When the real NTU samples in
# `../shared/data/ntu_raw_samples/` are absent (a fresh clone), the notebook writes synthetic
# samples in the same text layout and walks through those instead.

# %% tags=["parameters"]
raw_dir: str = ""  # folder of NTU .skeleton files; "": ../shared/data/ntu_raw_samples/LevelCA if present, else synthetic files
real_dataset: str = "msr-action3d"  # a real set for the histograms (a name in skel.data.DATASETS); "" to skip
window: int = 120  # W: frames after crop-and-resize (the paper uses 120)
rotate: float = 0.3  # largest rotation angle of the augmentation, radians (CTR-GCN: 0.3)
seed: int = 0  # one seed for every random draw in this notebook

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from skel.data import DATASETS, load_dataset
from skel.data import feeder as F
from skel.data.layout import NTU25
from skel.data.ntu import BENCHMARKS, XSUB60_TRAIN_PERFORMERS, parse_name, preprocess, read_skeleton, split_of
from skel.data.plot import draw_skeleton, plot_mask_grid, plot_trajectories
from skel.notebook import check, cmp, setup
from skel.utils import shared_data_dir

g = setup(seed)
if real_dataset and real_dataset not in DATASETS:
    raise ValueError(f"real_dataset={real_dataset!r}; accepted: {', '.join(DATASETS)} or ''")
if window < 2 or rotate < 0:
    raise ValueError(f"need window >= 2 and rotate >= 0, got window={window}, rotate={rotate}")


# %% [markdown]
# ## 1 · The raw file
#
# An NTU `.skeleton` file is plain text. Line 1 is the frame count $F$; each frame starts with its
# body count, and each body has an info line (tracking ID first), the joint count `25`, then 25
# lines of 12 numbers: `x y z` (metres), the joint's depth-image and colour-image pixels, its
# orientation quaternion and a tracking state (2 tracked, 1 inferred, 0 not tracked). The name
# `SsssCcccPpppRrrrAaaa` gives setup, camera, performer (subject), replication and action.
#
# We use the real samples when they are here. Otherwise we write two synthetic recordings (one
# handshake with two bodies, one wave) in exactly this layout, moved 3 m in front of the camera as
# a real recording would be.

# %%
# NBVAL_IGNORE_OUTPUT (real samples or the synthetic fallback)
def write_skeleton(path: Path, x: np.ndarray, body_ids: list[int]) -> None:
    """Write x: (3, T, 25, M) in the official layout (x y z filled, the other 9 numbers zero, tracked)."""
    lines = [str(x.shape[1])]
    for t in range(x.shape[1]):
        present = [m for m in range(x.shape[3]) if np.any(x[:, t, :, m])]
        lines.append(str(len(present)))
        for m in present:
            lines += [f"{body_ids[m]} 0 0 0 0 0 0 0 0 2", "25"]
            lines += [f"{a:.7f} {b:.7f} {c:.7f} 0 0 0 0 0 0 0 0 2" for a, b, c in x[:, t, :, m].T]
    path.write_text("\n".join(lines) + "\n")


def raw_files() -> tuple[list[Path], str]:
    folder = Path(raw_dir) if raw_dir else None
    shared = shared_data_dir()
    if folder is None and shared is not None and (shared / "ntu_raw_samples" / "LevelCA").is_dir():
        folder = shared / "ntu_raw_samples" / "LevelCA"
    if folder is not None:
        return sorted(folder.glob("*.skeleton")), "real NTU samples"
    syn = load_dataset("synthetic", "train", seed=seed)
    out = Path(scratch.name)
    picks = {"S001C001P001R001A058": 9, "S002C002P002R001A023": 0}  # handshake, wave right hand
    for name, label in picks.items():
        x = syn[int(np.flatnonzero(syn.labels == label)[0])][0]
        x = np.where(np.any(x, axis=(0, 1, 2)), x + np.array([0.0, 0.0, 3.0], np.float32)[:, None, None, None], 0.0)
        write_skeleton(out / f"{name}.skeleton", x, [72057594037931101, 72057594037931102])
    return sorted(out.glob("*.skeleton")), "synthetic samples written as .skeleton"


scratch = tempfile.TemporaryDirectory(prefix="skel_nb01_")  # removed when the kernel exits
files, source = raw_files()
print(f"{len(files)} files ({source})")

# %%
# NBVAL_IGNORE_OUTPUT (the file shown depends on which samples are here)
raws = [read_skeleton(f) for f in files]
two = next(r for r in raws if r.body_counts.max() == 2)  # the two-body recording walks through
head = files[raws.index(two)].read_text().splitlines()[:5]
print("\n".join(line[:72] for line in head))
print(f"\n{two.name}: {parse_name(two.name)}")
print(f"frames {two.num_frames}, body records {len(two.body_ids)}, distinct IDs {len(np.unique(two.body_ids))}, "
      f"joints {two.joints.shape} (record, joint, 12 numbers)")

# %% [markdown]
# ## 2 · Denoising and actor assignment
#
# Kinect sometimes tracks furniture or a passer-by as an extra body. With more than one body ID,
# the CTR-GCN scripts apply, per body $b$ with frames $x^{(b)}_{c,t,v}$:
#
# * **length**: drop $b$ if it is seen in $\le 11$ frames;
# * **spread**: frame $t$ is *noisy* if the body is wider than tall,
#   $\max_v x_{t,v} - \min_v x_{t,v} > 0.8\,(\max_v y_{t,v} - \min_v y_{t,v})$; drop $b$ if its
#   noisy-frame ratio is $\ge 0.69754$ (otherwise its motion is recomputed on its clean frames and
#   the smaller value kept);
# * **motion**: $\mathrm{mot}(b) = \sum_{c \in \{x,y,z\}} \operatorname{Var}_{t,v}\big(x^{(b)}_{c,t,v}\big)$,
#   the spread of all its joint positions over time. Actor 1 is the body with the most motion; the
#   others fill actor 1's slot where they do not overlap it in time, else actor 2's.

# %%
# NBVAL_IGNORE_OUTPUT (numbers of whichever recording is here)
bodies = {}
for body_id in dict.fromkeys(two.body_ids.tolist()):  # order of first appearance
    xyz = two.joints[two.body_ids == body_id, :, :3].astype(np.float32)  # (frames, 25, 3)
    spread_x = xyz[..., 0].max(1) - xyz[..., 0].min(1)
    spread_y = xyz[..., 1].max(1) - xyz[..., 1].min(1)
    noisy = float(np.mean(spread_x > 0.8 * spread_y))
    motion = float(np.var(xyz.reshape(-1, 3), axis=0).sum())
    bodies[body_id] = {"xyz": xyz, "noisy": noisy, "motion": motion}
    print(f"body ...{body_id % 10000:04d}: frames {len(xyz):3d}  noisy ratio {noisy:.3f}  motion {motion:.4f}")
ranked = sorted(bodies.values(), key=lambda b: b["motion"], reverse=True)
print("kept (noisy ratio < 0.69754, > 11 frames):", sum(b["noisy"] < 0.69754 and len(b["xyz"]) > 11 for b in ranked))

# %% [markdown]
# ## 3 · Centring
#
# No scaling and no view alignment: the whole sequence is translated so that joint 2 (spine
# middle, 0-based index 1) of actor 1 in the first frame is the origin,
# $$x'_{c,t,v,m} = x_{c,t,v,m} - x_{c,\,0,\,1,\,0} \quad \text{for every present actor } m .$$
# Both bodies of this recording span every frame, so actor 1 and actor 2 are simply the two bodies
# in motion order. We build the sample by hand and compare with `skel.data.ntu.preprocess`.

# %%
T = two.num_frames
assert all(len(b["xyz"]) == T for b in ranked), "this by-hand path assumes both bodies span every frame"
by_hand = np.stack([b["xyz"].transpose(2, 0, 1) for b in ranked[:2]], axis=-1)  # (3, T, 25, 2)
origin = by_hand[:, 0, 1, 0].copy()
centred = by_hand - origin[:, None, None, None]
sample = preprocess(two)
torch.testing.assert_close(torch.from_numpy(centred), torch.from_numpy(sample))
cmp("centred by hand", centred, sample)
print("spine middle of actor 1, frame 0, after centring:", np.round(sample[:, 0, 1, 0], 4))

# %%
fig, axes = plt.subplots(1, 2, figsize=(6.5, 3.0))
draw_skeleton(axes[0], by_hand[:, 0], NTU25, dims=(0, 2), title="before: camera space (top view)")
axes[0].scatter([0], [0], marker="^", color="k")
axes[0].annotate("camera", (0, 0), fontsize=7)
draw_skeleton(axes[1], sample[:, 0], NTU25, dims=(0, 2), title="after: spine middle at the origin")
axes[1].scatter([0], [0], marker="+", color="k", s=60)
fig.tight_layout()
plt.show()

# %% [markdown]
# The skeleton in 3D (bones are the `(child, parent)` pairs of `NTU25.bones`; $y$ drawn upwards),
# the height of both hands of actor 1 over time, and a frame $\times$ joint grid of the joints the
# sensor only *inferred* (tracking state $\ne 2$) - the noisy ones.

# %%
fig = plt.figure(figsize=(9.0, 3.0))
ax = fig.add_subplot(1, 3, 1, projection="3d")
draw_skeleton(ax, sample[:, T // 2], NTU25, title=f"frame {T // 2}")
ax.view_init(elev=15, azim=-70)
plot_trajectories(fig.add_subplot(1, 3, 2), sample, joints=[7, 11], layout=NTU25, coord=1, title="hand height, actor 1")
inferred = two.joints[two.body_ids == next(iter(bodies)), :, 11] != 2  # (T, 25) for the first body
plot_mask_grid(fig.add_subplot(1, 3, 3), inferred, NTU25, title="inferred joints (dark)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4 · Splits
#
# The benchmarks split by *who*, *where from* or *when*: NTU60 cross-subject trains on 20 listed
# performers, cross-view trains on cameras 2 and 3; NTU120 cross-subject extends the performer list
# and cross-setup trains on even setup ids. A split is a pure function of the file name.

# %%
# NBVAL_IGNORE_OUTPUT (the file names depend on which samples are here)
for raw in raws:
    info = parse_name(raw.name)
    sides = {b: split_of(raw.name, b) for b in BENCHMARKS}
    # the cross-subject and cross-view rules by hand
    assert sides["ntu60-xsub"] == ("train" if info["performer"] in XSUB60_TRAIN_PERFORMERS else "test")
    assert sides["ntu60-xview"] == ("train" if info["camera"] in (2, 3) else "test")
    assert sides["ntu120-xset"] == ("train" if info["setup"] % 2 == 0 else "test")
    print(raw.name, "  ".join(f"{b}: {s:5s}" for b, s in sides.items()))

# %% [markdown]
# ## 5 · Crop, resize, rotate
#
# Recordings have different lengths; the network wants $W$ frames. From the $T$ valid frames
# (trailing all-zero frames are padding) the feeder keeps a window $[s, s + L - 1]$:
#
# * **training**: $p \sim \mathcal{U}(0.5, 1)$,
#   $L = \operatorname{clip}(\lfloor pT \rfloor,\ \min(64, T),\ T)$, $s \sim \mathcal{U}\{0, \dots, T - L\}$;
# * **test**: $L = \operatorname{clip}(\lfloor 0.95\,T \rfloor,\ \min(64, T),\ T)$,
#   $s = \lfloor (T - L)/2 \rfloor$ (the centre).
#
# It then resamples the window at $W$ evenly spaced times and interpolates linearly between the two
# neighbouring frames:
# $$t_k = s + k\,\frac{L-1}{W-1},\quad i_k = \lfloor t_k \rfloor,\quad w_k = t_k - i_k,\quad
# y_k = (1 - w_k)\,x_{i_k} + w_k\,x_{\min(i_k + 1,\ s + L - 1)}, \qquad k = 0, \dots, W-1 .$$
# So $y_0 = x_s$ and $y_{W-1} = x_{s+L-1}$: the endpoints are kept, and a straight-line motion
# stays exactly on its line. From here on everything runs on the synthetic set (always available),
# so the stored numbers do not depend on the data folder.

# %%
syn_train = load_dataset("synthetic", "train", seed=seed)
i0 = int(np.argmax(syn_train.lengths()))  # the longest synthetic clip
x, label = syn_train[i0]
T = x.shape[1]
start, length = F.crop_bounds(T, train=False)
resized = np.zeros((3, window) + x.shape[2:], np.float32)
for k in range(window):  # the formula, one output frame at a time
    t_k = start + k * (length - 1) / (window - 1)
    i_k = int(np.floor(t_k))
    w_k = t_k - i_k
    resized[:, k] = (1 - w_k) * x[:, i_k] + w_k * x[:, min(i_k + 1, start + length - 1)]
print(f"sample {i0}: class {syn_train.class_names[label]!r}, T = {T}; test crop: start {start}, length {length}")
torch.testing.assert_close(torch.from_numpy(resized), torch.from_numpy(F.resize_time(x, start, length, window)))
cmp("resize by hand", resized, F.resize_time(x, start, length, window))
cmp("test feeder", resized, F.Feeder(syn_train, window=window, train=False)[i0][0])

# %%
# min_length lowered from 64 to 16: the synthetic clips are short (NTU's are 100-300 frames)
feeder = F.Feeder(syn_train, window=window, train=True, rotate=0.0, seed=seed, min_length=16)
fig, ax = plt.subplots(figsize=(6.5, 3.0))
ax.plot(np.arange(T), x[1, :, 11, 0], "k-", lw=2, label="original (all frames)")
for epoch in range(3):
    feeder.set_epoch(epoch)
    s, L = F.crop_bounds(T, True, feeder.uniforms(i0)[:2], min_length=16)
    y = feeder[i0][0].numpy()
    dots = ax.plot(s + np.arange(window) * (L - 1) / (window - 1), y[1, :, 11, 0], ".", ms=3,
                   label=f"epoch {epoch}: frames {s}-{s + L - 1} -> {window}")
    bar = x[1, :, 11, 0].min() - 0.05 * (epoch + 1)  # the kept window, drawn under the curve
    ax.hlines(bar, s, s + L - 1, color=dots[0].get_color(), lw=3)
    print(f"epoch {epoch}: crop start {s:2d}, length {L:2d} = {L / T:.2f} of T; endpoints kept:",
          bool(np.allclose(y[:, 0], x[:, s]) and np.allclose(y[:, -1], x[:, s + L - 1])))
ax.set_xlabel("original frame")
ax.set_ylabel("right hand y (m)")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# **Rotation.** Training may turn the whole scene: angles $\alpha, \beta, \gamma \sim \mathcal{U}(-\theta, \theta)$
# about $x$, $y$, $z$, and every joint of every person becomes $R\,x$ with
# $R = R_z(\gamma)\,R_y(\beta)\,R_x(\alpha)$. A rotation keeps every bone length, and a missing
# (all-zero) person stays at zero. The feeder draws, for each epoch, a table of 5 uniforms per
# sample from `default_rng([seed, epoch])` (crop fraction, crop offset, three angles), so a sample's
# augmentation depends only on the seed, the epoch and its index - not on the number of workers.

# %%
aug = F.Feeder(syn_train, window=window, train=True, rotate=rotate, seed=seed)
u = np.random.default_rng([seed, 0]).random((len(syn_train), 5))[i0]  # sample i0, epoch 0
a, b, c = rotate * (2 * u[2:] - 1)
rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
s, L = F.crop_bounds(T, True, u[:2])
expected = np.einsum("ij,jtvm->itvm", rz @ ry @ rx, F.resize_time(x, s, L, window)).astype(np.float32)
rotated = aug[i0][0].numpy()
torch.testing.assert_close(torch.from_numpy(rotated), torch.from_numpy(expected), atol=1e-5, rtol=1e-5)
cmp("rotation by hand", expected, rotated)
print("angles (deg):", np.round(np.degrees([a, b, c]), 2))

def bone_lengths(y):
    child, parent = np.array(NTU25.edges()).T
    return np.linalg.norm(y[:, :, child] - y[:, :, parent], axis=0)

plain = F.resize_time(x, s, L, window)
print("bone lengths kept:", bool(np.allclose(bone_lengths(plain), bone_lengths(rotated), atol=1e-5)))

fig = plt.figure(figsize=(3.5, 3.0))
ax = fig.add_subplot(projection="3d")
draw_skeleton(ax, plain[:, 0], NTU25, colours=("0.6",))
draw_skeleton(ax, rotated[:, 0], NTU25, title="grey: before, blue: rotated")
ax.view_init(elev=15, azim=-70)
plt.show()

# %% [markdown]
# A `DataLoader` stacks the samples into the batch $(N, C, W, V, M)$ the models take. The feeder is
# vectorised (two gathers, one lerp and one $3 \times 3$ matmul per sample), so one core feeds
# thousands of samples per second (`python -m skel bench data` measures it).

# %%
loader = torch.utils.data.DataLoader(aug, batch_size=16, shuffle=True, generator=g)
xb, yb = next(iter(loader))
print(tuple(xb.shape), xb.dtype, "labels:", yb.tolist())

# %% [markdown]
# **Index sets.** NTU has no validation split, so we carve one out of the training set, and the
# semi-supervised runs use the same fraction of every class. Both are seeded index arrays
# (saved with `save_indices`): `carve_validation` holds out whole subjects when given their ids,
# `stratified_subset` keeps $\max(1, \operatorname{round}(f\,n_c))$ samples of each class $c$.

# %%
train_idx, val_idx = F.carve_validation(syn_train.labels, 0.1, seed=seed, groups=syn_train.meta["subject"])
print(f"validation: {len(val_idx)} samples from subjects {sorted(set(syn_train.meta['subject'][val_idx].tolist()))}, "
      f"training keeps {len(train_idx)}")
subset = F.stratified_subset(syn_train.labels, 0.05, seed=seed)
print("5% subset, per class:", np.bincount(syn_train.labels[subset]).tolist())

# %% [markdown]
# ## 6 · The datasets
#
# `skel.data.load_dataset(name, split)` knows these names; every reader returns the same
# `SkeletonData` ($(C, T_i, V, M)$ samples of their valid frames, 0-based labels, a layout, per-sample
# metadata). The synthetic set is generated from a seed (NTU layout, 12 classes, 3 of them for two
# persons); the real non-NTU sets are read from `../shared/data` when it is there.

# %%
print(", ".join(DATASETS))
syn_test = load_dataset("synthetic", "test", seed=seed)
print(f"synthetic: train {len(syn_train)}, test {len(syn_test)}, classes {syn_train.num_classes}, "
      f"joints {syn_train.num_joints}, lengths {syn_train.lengths().min()}-{syn_train.lengths().max()}")

def histograms(data, title):
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.6))
    axes[0].bar(range(data.num_classes), np.bincount(data.labels, minlength=data.num_classes))
    axes[0].set_xlabel("class")
    axes[0].set_ylabel("samples")
    axes[1].hist(data.lengths(), bins=20)
    axes[1].set_xlabel("frames")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    plt.show()

histograms(syn_train, "synthetic, train split")

# %%
# NBVAL_IGNORE_OUTPUT (needs ../shared/data)
import warnings

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MSR Action3D: one all-zero file is skipped with a warning
        real = load_dataset(real_dataset, "train") if real_dataset else None
except FileNotFoundError as err:
    print(f"skipped: {err}")
    real = None
if real is not None:
    lengths = real.lengths()
    print(f"{real_dataset} train: {len(real)} samples, {real.num_classes} classes, {real.num_joints} joints "
          f"({real.layout.name}); frames min {lengths.min()}, median {np.median(lengths):g}, max {lengths.max()}")
    histograms(real, f"{real_dataset}, train split")

# %% [markdown]
# ## Exercises
#
# Write your answer into the variable of the cell below each exercise, then run the checking cell
# after it. The checker (`skel.notebook.check`) computes the true value with `skel`, independently
# of your answer, and prints `correct`, `not yet: expected ...`, or `not answered yet` (for
# `None`). The answers come filled in, so that CI checks them against `skel` on every run: set
# them to `None` before you start. A worked solution is folded under each exercise.

# %% [markdown]
# **Exercise 1.** A test-time clip has $T = 80$ valid frames. Which window $[s, s + L - 1]$ does
# the test crop keep: what are $s$ and $L$?
#
# <details><summary>Solution</summary>
#
# $L = \operatorname{clip}(\lfloor 0.95 \cdot 80 \rfloor,\ \min(64, 80),\ 80) = 76$ and
# $s = \lfloor (80 - 76)/2 \rfloor = 2$: frames 2 to 77.
# </details>

# %%
ex1_start = 2  # s
ex1_length = 76  # L

# %%
check("Exercise 1 (s, L)", (ex1_start, ex1_length), F.crop_bounds(80, train=False))

# %% [markdown]
# **Exercise 2.** That window ($s = 2$, $L = 76$) is resized to $W = 120$ frames. Output frame
# $k = 60$ is interpolated at which time $t_{60}$ of the original clip, i.e. between which two
# frames and with which weight on the later one?
#
# <details><summary>Solution</summary>
#
# $t_{60} = 2 + 60 \cdot 75 / 119 = 39.815$: $i_{60} = 39$, $w_{60} = 0.815$, so
# $y_{60} = 0.185\,x_{39} + 0.815\,x_{40}$.
# </details>

# %%
ex2_time = 39.815  # t_60

# %%
ramp = np.broadcast_to(np.arange(80, dtype=np.float32)[None, :, None, None], (3, 80, 25, 2))  # x_t = t everywhere
check("Exercise 2 (t_60)", ex2_time, float(F.resize_time(ramp, 2, 76, 120)[0, 60, 0, 0]))  # a lerp of a ramp reads t_k

# %% [markdown]
# **Exercise 3.** On which side, `"train"` or `"test"`, does the recording
# `S003C001P008R002A031` fall in each benchmark, in the order
# `ntu60-xsub, ntu60-xview, ntu120-xsub, ntu120-xset`?
#
# <details><summary>Solution</summary>
#
# Setup 3, camera 1, performer 8. Performer 8 is on both cross-subject training lists: train,
# train. Camera 1 is the cross-view test camera: test. Setup 3 is odd: cross-setup test.
# So `("train", "test", "train", "test")`.
# </details>

# %%
ex3_sides = ("train", "test", "train", "test")  # a tuple of four strings

# %%
check("Exercise 3 (sides)", ex3_sides, tuple(split_of("S003C001P008R002A031", b) for b in BENCHMARKS))

# %% [markdown]
# Next: notebook 02 hides frames and joints of these tensors (spatial-temporal masking).
