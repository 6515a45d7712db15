"""Skeleton layouts: joint names and bones for the 25-, 20- and 15-joint skeletons.

Bones are ``(child, parent)`` pairs of 0-based joint indices; the root points to itself where a
dataset's convention does (NTU's joint 21, spine shoulder). Derived in ``notebooks/01_data.ipynb``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """A skeleton: joint names, bones ``(child, parent)`` (0-based) and the centring joint."""

    name: str
    joint_names: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    center: int  # joint subtracted when centring (NTU: spine middle)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def edges(self) -> list[tuple[int, int]]:
        """Bones without self-loops, for drawing."""
        return [(c, p) for c, p in self.bones if c != p]


def _from_one_based(pairs):
    return tuple((c - 1, p - 1) for c, p in pairs)


NTU25 = Layout(
    name="ntu25",
    joint_names=(
        "spine_base", "spine_mid", "neck", "head",
        "l_shoulder", "l_elbow", "l_wrist", "l_hand",
        "r_shoulder", "r_elbow", "r_wrist", "r_hand",
        "l_hip", "l_knee", "l_ankle", "l_foot",
        "r_hip", "r_knee", "r_ankle", "r_foot",
        "spine_shoulder", "l_hand_tip", "l_thumb", "r_hand_tip", "r_thumb",
    ),
    bones=_from_one_based([
        (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
        (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
        (20, 19), (22, 23), (21, 21), (23, 8), (24, 25), (25, 12),
    ]),
    center=1,
)

# Kinect v1 (MSR Action3D, UTKinect, NW-UCLA). Joint order of the Kinect v1 SDK.
KINECT20 = Layout(
    name="kinect20",
    joint_names=(
        "hip_center", "spine", "shoulder_center", "head",
        "l_shoulder", "l_elbow", "l_wrist", "l_hand",
        "r_shoulder", "r_elbow", "r_wrist", "r_hand",
        "l_hip", "l_knee", "l_ankle", "l_foot",
        "r_hip", "r_knee", "r_ankle", "r_foot",
    ),
    bones=_from_one_based([
        (1, 2), (2, 3), (3, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9),
        (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
        (20, 19),
    ]),
    center=1,
)

# MSR Action3D stores its 20 joints in another order (the MSR toolkit's): hip/shoulder centres
# and limbs interleaved, left before right. Checked on the real files: in the one-arm and one-leg
# actions the subjects were told to use their right limb, and the joints that move are 9, 11, 13
# (arm) and 15, 17, 19 (leg), 1-based; that side also has the larger x, as the right side does
# in Kinect camera space (UTKinect, NTU).
MSR20 = Layout(
    name="msr20",
    joint_names=(
        "l_shoulder", "r_shoulder", "neck", "spine", "l_hip", "r_hip", "hip_center",
        "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_hand", "r_hand",
        "l_knee", "r_knee", "l_ankle", "r_ankle", "l_foot", "r_foot", "head",
    ),
    bones=_from_one_based([
        (1, 3), (2, 3), (3, 3), (4, 3), (5, 7), (6, 7), (7, 4), (8, 1), (9, 2), (10, 8),
        (11, 9), (12, 10), (13, 11), (14, 5), (15, 6), (16, 14), (17, 15), (18, 16), (19, 17),
        (20, 3),
    ]),
    center=3,
)

# SBU Kinect Interaction: 15 joints per person (OpenNI order).
SBU15 = Layout(
    name="sbu15",
    joint_names=(
        "head", "neck", "torso", "l_shoulder", "l_elbow", "l_hand", "r_shoulder", "r_elbow",
        "r_hand", "l_hip", "l_knee", "l_foot", "r_hip", "r_knee", "r_foot",
    ),
    bones=_from_one_based([
        (1, 2), (2, 3), (3, 3), (4, 2), (5, 4), (6, 5), (7, 2), (8, 7), (9, 8), (10, 3),
        (11, 10), (12, 11), (13, 3), (14, 13), (15, 14),
    ]),
    center=2,
)

LAYOUTS = {layout.name: layout for layout in (NTU25, KINECT20, MSR20, SBU15)}
