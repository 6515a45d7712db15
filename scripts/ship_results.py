"""Copy the small result files of finished runs into ``notebooks/assets/``, where notebooks 05-08
draw them by default (their ``shipped`` parameter).

    python scripts/ship_results.py main-job runs/default            # -> notebooks/assets/main_job/
    python scripts/ship_results.py sweep runs/sweeps/msr-fixes       # -> notebooks/assets/sweeps/msr-fixes/
    python scripts/ship_results.py --dry-run sweep runs/sweeps/msr   # list what would be copied

Only ``.json``, ``.csv`` and ``.md`` files are copied (a main job's metrics per epoch and
summaries; a sweep's top-level ``results.json`` / ``results.csv`` / ``sweep.json``):
never checkpoints, arrays, executed notebooks or figures, and never a file over 512 KiB. A
folder that is not what it should be (no ``pretrain/summary.json`` in a main job, no
``results.json`` in a sweep) is refused with the file it lacks; nothing is copied then. The
target folder is replaced as a whole, so a re-run leaves no stale file behind.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from _common import ROOT

ASSETS = ROOT / "notebooks" / "assets"
SUFFIXES = (".json", ".csv", ".md")
MAX_BYTES = 512 * 1024
SKIP_DIRS = {"notebooks", "figures", "sweeps"}  # executed notebooks, images, the CI sweep of 08
REQUIRED = {"main-job": ("pretrain/summary.json", "finetune/summary.json"), "sweep": ("results.json",)}


def files_to_ship(src: Path, kind: str) -> list[Path]:
    """The small result files under ``src`` (relative paths), in sorted order: a main job's whole
    tree (per-run metrics, summaries, results), a sweep's top level only (its result rows; the
    per-point folders repeat them)."""
    out = []
    for path in sorted(src.rglob("*") if kind == "main-job" else src.glob("*")):
        rel = path.relative_to(src)
        if not path.is_file() or rel.parts[0] in SKIP_DIRS or path.suffix not in SUFFIXES:
            continue
        if path.stat().st_size > MAX_BYTES:
            print(f"skipped (over {MAX_BYTES // 1024} KiB): {rel}", file=sys.stderr)
            continue
        out.append(rel)
    return out


def ship(kind: str, src: Path, name: str | None = None, dry_run: bool = False) -> Path:
    src = src.resolve()
    missing = [r for r in REQUIRED[kind] if not (src / r).is_file()]
    if missing:
        raise SystemExit(f"error: {src} is not a finished {kind} folder: it lacks {', '.join(missing)}")
    dest = ASSETS / "main_job" if kind == "main-job" else ASSETS / "sweeps" / (name or src.name)
    files = files_to_ship(src, kind)
    total = sum((src / f).stat().st_size for f in files)
    print(f"{len(files)} files, {total / 1024:.0f} KiB: {src} -> {dest.relative_to(ROOT)}")
    if dry_run:
        for f in files:
            print("  ", f)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    for f in files:
        (tmp / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / f, tmp / f)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)  # the whole folder at once: a reader never sees half of it
    return dest


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=sorted(REQUIRED), help="main-job (a run-all folder) or sweep (a sweep --out folder)")
    p.add_argument("src", type=Path, help="the finished run's folder")
    p.add_argument("--name", default=None, help="sweeps: the folder name under notebooks/assets/sweeps (default: src's)")
    p.add_argument("--dry-run", action="store_true", help="list the files, copy nothing")
    args = p.parse_args()
    ship(args.kind, args.src, args.name, args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
