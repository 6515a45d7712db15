"""Training: pre-training, fine-tuning, linear probe / kNN, checkpoints, several processes.

The notebooks call :func:`run_pretrain`, :func:`run_finetune` and :func:`run_probe` with a config
(or a dict of papermill parameters); the command line wraps the same functions
(``python -m skel pretrain | finetune | linear-probe``). Imports are lazy so ``import skel.train``
stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PretrainConfig", "FinetuneConfig", "ProbeConfig", "ConfigError", "CheckpointError",
           "NonFiniteLossError", "run_pretrain", "run_finetune", "run_probe", "save_checkpoint", "load_checkpoint"]

_WHERE = {
    "PretrainConfig": "skel.train.config", "FinetuneConfig": "skel.train.config", "ProbeConfig": "skel.train.config",
    "ConfigError": "skel.train.config", "CheckpointError": "skel.train.checkpoint",
    "save_checkpoint": "skel.train.checkpoint", "load_checkpoint": "skel.train.checkpoint",
    "NonFiniteLossError": "skel.train.loop", "run_pretrain": "skel.train.pretrain",
    "run_finetune": "skel.train.finetune", "run_probe": "skel.train.probe",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'skel.train' has no attribute {name!r}")
