"""The command line: ``python -m skel <command> [options]``.

Each command lives in its own module, which exposes ``add_arguments(parser)`` and
``main(args) -> int``. Modules are imported only when their command runs, so ``--help`` is fast
and a command's heavy imports never slow another one down.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "inspect": ("skel.data.inspect", "print samples per split, classes, joints, persons and lengths of a dataset"),
    "prepare-ntu": ("skel.data.prepare", "turn raw NTU RGB+D .skeleton files into a compact memory-mappable store"),
    "pretrain": ("skel.train.pretrain", "masked-reconstruction pre-training (SkeletonMAE / MVAE / MVQVAE)"),
    "finetune": ("skel.train.finetune", "fine-tune an encoder (pre-trained or from scratch) + linear head"),
    "linear-probe": ("skel.train.probe", "frozen-encoder linear probe and k-nearest-neighbour accuracy"),
    "run-all": ("skel.runall", "the main job: execute the notebook series with papermill into a run folder"),
    "sweep": ("skel.sweep.runner", "run a grid of pre-training + fine-tuning points from a YAML file (the paper's Tables 1-8)"),
    "bench": ("skel.bench", "speed and memory benchmark (data, model, train)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (to add its options)."""
    parser = argparse.ArgumentParser(
        prog="python -m skel",
        description="SkeletonMAE / SkeletonMVAE / SkeletonMVQVAE reproduction.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(p)
            p.set_defaults(_main=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(args._main(args) or 0)
