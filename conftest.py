"""Project-wide pytest set-up.

nbval's sanitize file is resolved from the repository root here, not in ``addopts``: a relative
path there breaks when pytest starts in a subfolder (see ``../shared/docs/notebooks.md``).
"""

from pathlib import Path

SANITIZE = Path(__file__).resolve().parent / ".ci" / "nbval-sanitize.cfg"


def pytest_configure(config):
    if getattr(config.option, "nbval_sanitize_with", "unset") is None:
        config.option.nbval_sanitize_with = str(SANITIZE)
