"""Tiny helpers shared by the notebooks in ``notebooks/``: one-call setup, a comparison printer
and the exercises' answer checker.

Every notebook starts with ``setup(seed)`` so its stored outputs re-execute identically, checks
each derivation against the package with ``cmp(name, ours, reference)``, and ends with exercises
whose answers ``check(name, answer, expected)`` marks.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np


def setup(seed: int = 0, threads: int = 2) -> "torch.Generator":  # noqa: F821 - torch imported lazily
    """Seed Python, NumPy and torch, fix the thread count, print options and figure defaults.

    Returns a ``torch.Generator`` seeded with ``seed`` for the notebook's explicit draws.
    """
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    # Small printed tensors, rounded: stored outputs compare as text.
    torch.set_printoptions(precision=4, sci_mode=False, linewidth=110)
    np.set_printoptions(precision=4, suppress=True, linewidth=110)
    try:
        import matplotlib as mpl
    except ImportError:  # notebooks without figures still work
        pass
    else:
        mpl.rcParams.update({
            "figure.figsize": (6.0, 3.5),
            "figure.dpi": 80,
            "savefig.dpi": 80,
            "font.size": 9,
            "axes.titlesize": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "image.cmap": "viridis",
        })
    return torch.Generator().manual_seed(seed)


def _as_tensor(x: Any):
    import torch

    if isinstance(x, torch.Tensor):
        return x.detach()
    return torch.as_tensor(np.asarray(x))


def cmp(name: str, ours: Any, reference: Any, atol: float = 1e-5, rtol: float = 1e-5) -> None:
    """Print whether ``ours`` equals ``reference`` exactly, approximately, or not.

    One line: ``name | exact: True | approx: True | maxdiff: 0.0000e+00``. Shapes must match
    (a mismatch is printed too). Tensors, arrays and Python numbers are accepted. Prints only, so
    that a notebook cell ending in ``cmp(...)`` shows no return value; use
    ``torch.testing.assert_close`` where a mismatch must stop the notebook.
    """
    import torch

    a, b = _as_tensor(ours), _as_tensor(reference)
    if a.shape != b.shape:
        print(f"{name:<28s} | shape mismatch: {tuple(a.shape)} vs {tuple(b.shape)}")
        return
    exact = bool(torch.equal(a, b))
    if a.is_floating_point() or b.is_floating_point():
        a64, b64 = a.double(), b.double()
        approx = bool(torch.allclose(a64, b64, atol=atol, rtol=rtol))
        maxdiff = (a64 - b64).abs().max().item() if a.numel() else 0.0
    else:
        approx = exact
        maxdiff = (a.long() - b.long()).abs().max().item() if a.numel() else 0
    print(f"{name:<28s} | exact: {str(exact):<5s} | approx: {str(approx):<5s} | maxdiff: {_fmt_diff(maxdiff)}")


def check(name: str, answer: Any, expected: Any, rel_tol: float = 0.01) -> None:
    """Print whether an exercise's ``answer`` matches ``expected`` (computed by the
    notebook with ``skel``, independently of the answer).

    Tuples are compared item by item; a float expected value accepts any number within ``rel_tol``
    (1 %); anything else (ints, strings, sets) must be equal. ``None`` anywhere in the answer means
    "not answered yet". Prints one line, ``NAME: correct``, ``NAME: not answered yet`` or
    ``NAME: not yet: expected ..., got ...``; returns nothing, so a cell ending in it shows no value.
    """
    answers = answer if isinstance(answer, tuple) else (answer,)
    expects = expected if isinstance(expected, tuple) else (expected,)

    def same(a: Any, e: Any) -> bool:
        if isinstance(e, float) and isinstance(a, (int, float)) and not isinstance(a, bool):
            return math.isclose(a, e, rel_tol=rel_tol)
        return a == e

    def show(values: tuple) -> str:
        return ", ".join(f"{v:.4g}" if isinstance(v, float) else repr(v) for v in values)

    if any(a is None for a in answers):
        verdict = "not answered yet"
    elif len(answers) == len(expects) and all(same(a, e) for a, e in zip(answers, expects)):
        verdict = "correct"
    else:
        verdict = f"not yet: expected {show(expects)}, got {show(answers)}"
    print(f"{name}: {verdict}")


def _fmt_diff(d: float) -> str:
    # Powers-of-ten buckets: float noise differs between CPUs, the order of magnitude does not.
    if d == 0:
        return "0"
    for bound in (1e-6, 1e-5, 1e-4, 1e-3):
        if d < bound:
            return f"< {bound:.0e}"
    return f"{d:.2g}"


def check_parameters(values: dict[str, Any], annotations: dict[str, Any]) -> None:
    """Reject a papermill parameter of the wrong type, naming it (papermill only warns).

    Call right after the ``parameters`` cell: ``check_parameters(globals(), __annotations__)``.
    ``annotations`` are the cell's type hints (``int``, ``float``, ``str``, ``bool``, ``list[float]``);
    an int is accepted for a float. Raises ``TypeError`` for a value of another type, e.g. the
    string papermill passes for ``-p betas "[0.1, 1]"`` (use ``-y`` / ``-f`` YAML for lists).
    """
    import typing

    def ok(value: Any, hint: Any) -> bool:
        origin = typing.get_origin(hint)
        if origin is None:
            if hint is float:
                return isinstance(value, (int, float)) and not isinstance(value, bool)
            if hint is int:
                return isinstance(value, int) and not isinstance(value, bool)
            return isinstance(value, hint)
        if not isinstance(value, origin):
            return False
        args = typing.get_args(hint)
        return not args or origin is not list or all(ok(v, args[0]) for v in value)

    for name, hint in annotations.items():
        if name in values and not ok(values[name], hint):
            expected = hint.__name__ if isinstance(hint, type) else str(hint)
            raise TypeError(f"notebook parameter {name!r}: expected {expected}, "
                            f"got {type(values[name]).__name__} {values[name]!r}")
