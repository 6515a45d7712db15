"""The paper's Tables 2, 3 and 5 at CPU scale (issue 6): run the sweeps and write RESULTS.md's tables.

    python scripts/sweep_results.py run [--workers 2] [--only NAME,...]   # the sweeps below, resumable
    python scripts/sweep_results.py report                                # tables -> RESULTS.md
    python scripts/sweep_results.py commands                              # the sweep commands

Every run goes through the sweep runner (``python -m skel sweep``, :mod:`skel.sweep`); the tables
come from :func:`skel.sweep.tables.build_tables` over each folder's ``results.json``, the same code
notebook 08 draws with. ``report`` rewrites the block between ``<!-- sweeps:begin -->`` and
``<!-- sweeps:end -->`` in ``RESULTS.md``; nothing in it is typed by hand.

Table 2 on MSR Action3D lives in ``runs/sweeps/msr`` beside Table 1 (``scripts/msr_results.py``
runs both): it shares Table 1's pre-trainings. The ablations (Tables 3 and 5) fine-tune for 8
epochs, not Table 1's 24, so they get their own folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import sys
from dataclasses import dataclass, field

from _common import ROOT, replace_block, run_commands, shown
SWEEPS = ROOT / "notebooks" / "configs" / "sweeps"
RESULTS = ROOT / "RESULTS.md"
BEGIN, END = "<!-- sweeps:begin -->", "<!-- sweeps:end -->"
# the synthetic set near MSR's size: 20 clips per class and split (240 training clips). 10 % of the
# labels is 2 clips a class: one to train on, one for validation (5 % would leave none to validate
# on). As the paper preset runs it, the all-zero second persons go through the network:
SYNTHETIC_PAPER = ["dataset=synthetic", "dataset_options={num_per_class: 20}"]
# ... and as the main job runs it: 3 of the 12 classes have two persons, so the all-zero second
# person of the others is skipped
SYNTHETIC = SYNTHETIC_PAPER + ["model_options={skip_empty_persons: true}"]
# Table 2's fine-tuning with 10 % of the labels (2 clips a class on MSR): 30 epochs of batch 10
TEN_PCT = ["label_fractions=[0.1]", "finetune_epochs=30", "finetune_lr_steps=[24]", "finetune_batch_size=10"]
# SkeletonMVQVAE with its codebook kept in use: EMA updates and dead-code restarts (off in `paper`)
EMA = ["ema=true", "restart_dead=true", "restart_after=10"]


@dataclass
class Run:
    name: str  # for --only
    config: str  # file under notebooks/configs/sweeps
    out: str  # folder under runs/sweeps
    tables: tuple[int, ...]
    sets: list[str] = field(default_factory=list)
    only: str | None = None  # --only patterns
    variants: bool = False  # render skel.sweep.variants_table (issue 14's before / after comparison)

    def argv(self, workers: int) -> list[str]:
        argv = [sys.executable, "-m", "skel", "sweep", str(SWEEPS / self.config), "--out",
                str(ROOT / "runs" / "sweeps" / self.out), "--workers", str(workers), "--quiet"]
        for kv in self.sets:
            argv += ["--set", kv]
        if self.only:
            argv += ["--only", self.only]
        return argv


# in the order they were run (cheapest answers first)
RUNS = [
    Run("msr-table2", "table2_small.yaml", "msr", (2,)),
    Run("msr-table5", "table5_small.yaml", "msr-ablations", (5,), ["seed=[0, 1, 2]"]),
    # run before the file's window became 36: at 24 the three Mt rows are one masking (RESULTS.md)
    Run("msr-table3", "table3_small.yaml", "msr-ablations", (3,), ["latent=[vq]", "window=24"]),
    Run("synthetic-table2", "table2_small.yaml", "synthetic", (2,), SYNTHETIC),
    # Table 3 again at the file's 36-frame window, where the three Mt rates differ: both models
    # (SkeletonMVQVAE's 27 points were run first, then SkeletonMVAE's 27 in the same folder)
    Run("msr-table3-w36", "table3_small.yaml", "msr-ablations-w36", (3,), ["seed=[0, 1, 2]"]),
    # Tables 5 and 3 on the synthetic set (separate folders: their windows differ, 24 and 36);
    # Table 3's SkeletonMVQVAE points were run first, then SkeletonMVAE's in the same folder
    Run("synthetic-table5", "table5_small.yaml", "synthetic-ablations", (5,), SYNTHETIC + ["seed=[0, 1, 2]"]),
    Run("synthetic-table3", "table3_small.yaml", "synthetic-ablations-w36", (3,), SYNTHETIC + ["seed=[0, 1, 2]"]),
    # Table 5 again with the codebook kept in use (options off in `paper`; docs/deviations.md, "VQ"):
    # every codebook above collapsed to one or two codes, so K could not matter. About 15 training
    # steps an epoch on both sets, so a code unused for 10 steps is restarted within the epoch.
    Run("msr-table5-ema", "table5_small.yaml", "msr-ablations-ema", (5,), ["seed=[0, 1, 2]"] + EMA),
    Run("synthetic-table5-ema", "table5_small.yaml", "synthetic-ablations-ema", (5,),
        SYNTHETIC + ["seed=[0, 1, 2]"] + EMA),
    # issue 14: the paper preset before and after its fixes (loss reduction, per-sample VAE, rotation),
    # one fix at a time, on MSR and on the synthetic set; 100 % and 10 % of the labels
    Run("msr-fixes", "fixes_small.yaml", "msr-fixes", (), variants=True),
    Run("msr-fixes-10pct", "fixes_small.yaml", "msr-fixes", (), TEN_PCT, variants=True),
    Run("synthetic-fixes", "fixes_small.yaml", "synthetic-fixes", (), SYNTHETIC_PAPER, variants=True),
    Run("synthetic-fixes-10pct", "fixes_small.yaml", "synthetic-fixes", (), SYNTHETIC_PAPER + TEN_PCT,
        variants=True),
]


def run(workers: int, only: list[str] | None) -> int:
    return run_commands([r.argv(workers) for r in RUNS if not only or r.name in only])


def previous_sections() -> dict[str, str]:
    """The sections of the current report in RESULTS.md, by run name (``### NAME: ...`` to the next)."""
    if not RESULTS.exists():
        return {}
    text = RESULTS.read_text()
    if BEGIN not in text or END not in text:
        return {}
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    sections, name = {}, None
    for line in block.strip("\n").split("\n"):
        if line.startswith("### "):
            name = line[4:].split(":", 1)[0]
            sections[name] = [line]
        elif line.startswith("Generated by `python scripts/sweep_results.py report`"):
            name = None
        elif name is not None:
            sections[name].append(line)
    return {k: "\n".join(v).rstrip("\n") for k, v in sections.items()}


def render() -> str:
    """The report block. A run whose folder is not on this machine keeps its section from the
    previous report (sweeps are run where there is time; their tables are not lost)."""
    from skel.sweep import build_tables, load_results, variants_table

    previous = previous_sections()
    parts, kept = [], []
    for r in RUNS:
        folder = ROOT / "runs" / "sweeps" / r.out
        title = f"### {r.name}: `{shlex.join(shown(r.argv(2)))}`"
        if not (folder / "results.json").exists():
            if r.name in previous and "\nNot run.\n" not in previous[r.name] + "\n":
                parts += [previous[r.name], ""]
                kept.append(r.name)
            elif not (r.variants and r.sets and r.sets[-1] == TEN_PCT[-1]):
                parts += [title, "", "Not run.", ""]
            continue
        rows = load_results(folder)
        done = [x for x in rows if x["status"] == "done"]
        if r.variants:
            if r.sets and r.sets[-1] == TEN_PCT[-1]:  # the 10 % call shares the folder: one table for both
                continue
            parts += [title, "", "Test top-1 (%) at the best-validation epoch; mean ± sample std over seeds; the "
                      "latent's use at the pre-training checkpoint fine-tuned from (KL in nats per token with "
                      "`loss_reduction=mean`, per sample with `sum`). 10 % of the labels: the same call with "
                      f"`{' '.join('--set ' + shlex.quote(kv) for kv in TEN_PCT)}`.", "",
                      variants_table(rows, "best"), "", "At the last epoch:", "", variants_table(rows, "last"), "",
                      f"Fine-tunes in the folder: {len(done)} done, {len(rows) - len(done)} not done.", ""]
            continue
        dataset = "synthetic" if r.out.startswith("synthetic") else "msr-action3d"
        tables = build_tables(rows, "best", {"dataset": dataset})
        last = build_tables(rows, "last", {"dataset": dataset})
        parts += [title, ""]
        for n in r.tables:
            if n not in tables:
                parts += [f"Table {n}: no finished results yet.", ""]
                continue
            seeds = sorted({x["seed"] for x in done})
            parts += [tables[n].markdown(), "",
                      f"Test top-1 at the best-validation epoch; mean ± sample std over seeds (seeds in the folder: "
                      f"{', '.join(map(str, seeds))}). At the last epoch:", "",
                      last[n].markdown().split("\n\n")[1], ""]  # the table alone, no title or note
        failed = [x for x in rows if x["status"] != "done"]
        parts += [f"Fine-tunes in the folder: {len(done)} done, {len(failed)} not done"
                  + (f" ({', '.join(x['point'] + '/' + x['finetune'] for x in failed)})" if failed else "") + ".", ""]
    parts.append(f"Generated by `python scripts/sweep_results.py report` on {platform.node() or 'this machine'} "
                 f"({os.cpu_count()} CPUs), {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
                 + (f"; kept from the previous report (folders not on this machine): {', '.join(kept)}." if kept else "."))
    return "\n".join(parts)


def write_report() -> None:
    replace_block(RESULTS, BEGIN, END, render(), append=True)
    print(f"wrote {RESULTS}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the sweeps (resumable)")
    r.add_argument("--workers", type=int, default=2, help="sweep workers side by side (default 2)")
    r.add_argument("--only", default=None, help=f"comma list of: {', '.join(x.name for x in RUNS)}")
    sub.add_parser("commands", help="print the sweep commands")
    sub.add_parser("report", help="tables into RESULTS.md")
    args = p.parse_args()
    if args.cmd == "run":
        return run(args.workers, args.only.split(",") if args.only else None)
    if args.cmd == "commands":
        for x in RUNS:
            print(shlex.join(shown(x.argv(2))))
        return 0
    write_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
