"""Small matplotlib helpers for the notebooks: skeletons with bones, joint trajectories, mask grids.

Used throughout ``notebooks/01_data.ipynb`` and the masking notebooks. Coordinates follow the
Kinect camera convention (y up, z depth); 3D plots put y on matplotlib's vertical axis.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from skel.data.layout import Layout

PERSON_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red")
COORDS = ("x", "y", "z")


def figure(ncols: int = 1, nrows: int = 1, size: float = 3.0, projection: str | None = None):
    """A small figure of ``nrows x ncols`` panels, ``size`` inches each; returns ``(fig, axes)``."""
    fig = plt.figure(figsize=(size * ncols, size * nrows))
    axes = [fig.add_subplot(nrows, ncols, k + 1, projection=projection) for k in range(nrows * ncols)]
    return fig, axes if len(axes) > 1 else axes[0]


def draw_skeleton(ax, frame: np.ndarray, layout: Layout, dims: tuple[int, int] = (0, 1),
                  colours: Sequence[str] = PERSON_COLOURS, joint_size: float = 8.0, label_joints: bool = False,
                  alpha: float = 1.0, title: str | None = None):
    """Draw one frame ``(C, V)`` or ``(C, V, M)`` with its bones.

    On a 3D axis the points are plotted as (x, z, y) so that y is vertical; on a 2D axis the two
    coordinates ``dims`` are used (default x, y). Missing (all-zero) persons are not drawn.
    """
    frame = np.asarray(frame, dtype=np.float64)
    if frame.ndim == 2:
        frame = frame[..., None]
    three_d = getattr(ax, "name", "") == "3d"
    for m in range(frame.shape[2]):
        pts = frame[:, :, m]
        if not np.any(pts):
            continue
        colour = colours[m % len(colours)]
        coords = (pts[0], pts[2], pts[1]) if three_d else (pts[dims[0]], pts[dims[1]])
        for child, parent in layout.edges():
            ax.plot(*[[c[child], c[parent]] for c in coords], color=colour, lw=1.5, alpha=alpha)
        extra = {"depthshade": False} if three_d else {}
        ax.scatter(*coords, s=joint_size, color=colour, alpha=alpha, **extra)
        if label_joints:
            for v in range(pts.shape[1]):
                ax.text(*[c[v] for c in coords], str(v), fontsize=6)
    if three_d:
        ax.set_xlabel("x")
        ax.set_ylabel("z")
        ax.set_zlabel("y")
        # true proportions: a box as long on each side as the data it holds
        spans = [hi - lo for lo, hi in (ax.get_xlim3d(), ax.get_ylim3d(), ax.get_zlim3d())]
        ax.set_box_aspect([max(span, 0.2) for span in spans])
    else:
        ax.set_xlabel(COORDS[dims[0]])
        ax.set_ylabel(COORDS[dims[1]])
        ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_trajectories(ax, sample: np.ndarray, joints: Sequence[int], layout: Layout | None = None,
                      coord: int = 1, person: int = 0, style: str = "-", title: str | None = None):
    """Coordinate ``coord`` of the given joints over time; ``sample: (C, T, V, M)``."""
    sample = np.asarray(sample)
    t = np.arange(sample.shape[1])
    for v in joints:
        name = layout.joint_names[v] if layout is not None else f"joint {v}"
        ax.plot(t, sample[coord, :, v, person], style, label=name, lw=1.2)
    ax.set_xlabel("frame")
    ax.set_ylabel(COORDS[coord])
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_mask_grid(ax, mask: np.ndarray, layout: Layout | None = None, title: str | None = None,
                   cmap: str = "Greys"):
    """A ``(T, V)`` boolean grid (True = dark), frames down the rows, joints across the columns."""
    mask = np.asarray(mask, dtype=bool)
    ax.imshow(mask, aspect="auto", cmap=cmap, interpolation="nearest", vmin=0, vmax=1)
    ax.set_xlabel("joint")
    ax.set_ylabel("frame")
    if layout is not None and mask.shape[1] == layout.num_joints:
        ax.set_xticks(range(0, layout.num_joints, 4))
    if title:
        ax.set_title(title, fontsize=9)
    return ax
