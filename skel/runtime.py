"""Process-level settings that make CPU training fast out of the box.

Why: glibc's ``malloc`` serves buffers above a threshold (32 MiB at most, adapting) with ``mmap``
and gives them back with ``munmap``; it also trims the heap top when more than a threshold is
free. A training step allocates and frees the same large activation buffers every step, so the
process pays page faults to get fresh zeroed pages again and again: on a 2-core CPU the official
STTFormer code ran element-wise ops 5-14x slower at batch 8 than at batch 4 for that reason.
Keeping freed memory inside the process (no mmap for big blocks, no trimming, a 1 GiB top pad)
removes those faults. It is the in-process equivalent of
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 MALLOC_TOP_PAD_=1073741824``.

Applied once by :func:`tune_allocator`, which ``skel`` calls on import. It is a no-op where it
does not apply (not Linux/glibc, e.g. macOS, Windows, musl) and can be turned off with the
environment variable ``SKEL_TUNE_MALLOC=0``. See ``docs/deviations.md`` and ``python -m skel bench``.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

# glibc <malloc.h> parameter numbers for mallopt()
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4

_applied: dict[str, int] | None = None


def _glibc():
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def tune_allocator(top_pad: int = 1 << 30) -> dict[str, int] | None:
    """Keep freed memory in the process (see module docstring). Returns what was set, or None.

    ``mallopt`` takes an ``int`` but glibc stores the trim threshold as ``size_t``: -1 becomes
    SIZE_MAX, i.e. "never trim" (an int cannot express the 100 GB of the environment-variable form).
    """
    global _applied
    if _applied is not None:
        return _applied
    if os.environ.get("SKEL_TUNE_MALLOC", "1") == "0":
        return None
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallopt"):
        return None
    settings = {"M_MMAP_MAX": 0, "M_TRIM_THRESHOLD": -1, "M_TOP_PAD": top_pad}
    codes = {"M_MMAP_MAX": M_MMAP_MAX, "M_TRIM_THRESHOLD": M_TRIM_THRESHOLD, "M_TOP_PAD": M_TOP_PAD}
    for name, value in settings.items():
        if libc.mallopt(ctypes.c_int(codes[name]), ctypes.c_int(value)) != 1:
            return None  # mallopt refused: leave the defaults
    _applied = settings
    return settings


def allocator_settings() -> dict[str, int] | None:
    """What :func:`tune_allocator` set in this process (None if nothing)."""
    return _applied
