"""``python -m skel inspect --dataset NAME``: samples per split, classes, joints, persons, lengths.

Exit code 2 with a one-line message for an unknown dataset, split, option or a missing folder.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from skel.data import DATASETS

    parser.add_argument("--dataset", required=True, metavar="NAME", help=f"one of: {', '.join(DATASETS)}")
    parser.add_argument("--data-dir", default=None, help="dataset folder (default: its folder under ../shared/data)")
    parser.add_argument("--split", default="all", help="train, test or all (default: all)")


def second_person_count(data) -> int:
    """Samples whose person 2 (if the layout has one) has any non-zero coordinate."""
    return sum(1 for s in data.samples if np.asarray(s).shape[3] > 1 and np.any(np.asarray(s)[..., 1:]))


def describe(data) -> str:
    """Summary lines of one split."""
    lengths = data.lengths()
    per_class = np.bincount(data.labels, minlength=data.num_classes)
    lines = [
        f"[{data.split}] samples: {len(data)}",
        f"  classes: {data.num_classes} (samples per class min {per_class.min()}, max {per_class.max()})",
        f"  joints: {data.num_joints} ({data.layout.name}), persons: {data.num_persons}, "
        f"samples with a 2nd person: {second_person_count(data)}",
        f"  frames: min {lengths.min()}, median {np.median(lengths):g}, mean {lengths.mean():.1f}, max {lengths.max()}",
    ]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    from skel.data import load_dataset

    if args.split not in ("train", "test", "all"):
        print(f"error: unknown split {args.split!r}; accepted: train, test, all", file=sys.stderr)
        return 2
    splits = ("train", "test") if args.split == "all" else (args.split,)
    loaded = []
    for split in splits:
        try:
            loaded.append(load_dataset(args.dataset, split, args.data_dir))
        except (ValueError, FileNotFoundError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    print(f"dataset: {args.dataset}")
    for data in loaded:
        print(describe(data) if len(data) else f"[{data.split}] samples: 0")
    return 0
