"""What the result scripts in this folder share: commands shown as typed, running them one after
the other, and rewriting a generated block of ``RESULTS.md``."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def shown(argv: list[str]) -> list[str]:
    """The command as a user would type it from the repository root."""
    argv = ["python" if a == sys.executable else a for a in argv]
    return [str(Path(a).relative_to(ROOT)) if a.startswith(str(ROOT)) else a for a in argv]


def run_commands(commands: list[list[str]]) -> int:
    """Run each command from the repository root (echoed first); the worst exit code."""
    rc = 0
    for argv in commands:
        print("$", shlex.join(shown(argv)), flush=True)
        rc = max(rc, subprocess.call(argv, cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"}))
    return rc


def replace_block(path: Path, begin: str, end: str, body: str, append: bool = False) -> None:
    """Rewrite what lies between the ``begin`` and ``end`` markers of ``path`` (atomically).

    A missing file is created with the block. A file without the markers gets the block appended
    when ``append``, else it is refused with the markers it lacks.
    """
    from skel.utils import atomic_write_text

    text = path.read_text() if path.exists() else f"# Results\n\n{begin}\n{end}\n"
    if begin not in text or end not in text:
        if not append:
            raise SystemExit(f"{path}: no '{begin}' ... '{end}' block to replace")
        text += f"\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    atomic_write_text(path, f"{head}{begin}\n{body}\n{end}{tail}")
