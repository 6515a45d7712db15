"""The epoch loop shared by pre-training and fine-tuning: loaders, logging, checkpoints, resume.

:func:`fit` runs epochs of ``train_step`` + ``validate``, steps the lr schedule, logs a row per
epoch to ``metrics.csv`` / ``metrics.json`` and keeps ``last.pt`` and ``best.pt``. A resumed run
restores model, optimiser, schedule, scaler, every random state and the epoch counter, and
reproduces the uninterrupted run's numbers exactly: shuffling and augmentation are seeded per epoch
(``seed``, ``epoch``), masks come from generators saved in the checkpoint.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from tqdm import tqdm

from skel.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from skel.train.distributed import DistInfo, all_reduce_sum, autocast, cleanup, deterministic, setup, unwrap
from skel.utils import atomic_write_json, atomic_write_text


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and the step."""


# ---- data loaders -------------------------------------------------------------------------
@dataclass
class TrainLoader:
    """A shuffling loader whose order depends only on ``(seed, epoch)``: call :meth:`set_epoch`."""

    loader: DataLoader
    seed: int
    generator: torch.Generator | None

    def set_epoch(self, epoch: int) -> None:
        sampler = self.loader.sampler
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        else:
            self.generator.manual_seed(self.seed * 1_000_003 + epoch)
        dataset = self.loader.dataset
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)

    def __iter__(self):
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)


def make_train_loader(dataset: Dataset, batch_size: int, seed: int, info: DistInfo, num_workers: int = 0) -> TrainLoader:
    """Shuffled batches; the last partial batch is dropped (a batch of one breaks BatchNorm)
    unless the dataset is smaller than one batch per process."""
    per_rank = len(dataset) // info.world_size
    drop_last = per_rank > batch_size
    common = dict(batch_size=batch_size, num_workers=num_workers, drop_last=drop_last,
                  pin_memory=info.device.type == "cuda", persistent_workers=False)
    if info.distributed:
        sampler = DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True,
                                     seed=seed, drop_last=True)
        loader = DataLoader(dataset, sampler=sampler, **common)
        return TrainLoader(loader, seed, None)
    generator = torch.Generator()
    loader = DataLoader(dataset, shuffle=True, generator=generator, **common)
    return TrainLoader(loader, seed, generator)


def make_eval_loader(dataset: Dataset, batch_size: int, info: DistInfo, num_workers: int = 0) -> DataLoader:
    """In-order batches of this rank's share (``rank::world_size``); sum the results over ranks."""
    if info.distributed:
        dataset = Subset(dataset, list(range(info.rank, len(dataset), info.world_size)))
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      pin_memory=info.device.type == "cuda")


# ---- running averages ---------------------------------------------------------------------
@dataclass
class Averager:
    """Sample-weighted means of named scalars, reducible over ranks."""

    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0

    def add(self, terms: dict[str, Any], n: int) -> None:
        """``terms``: numbers or 0-d tensors; tensors stay on their device (no sync per step)."""
        for k, v in terms.items():
            v = v.detach().float() if torch.is_tensor(v) else float(v)
            self.sums[k] = self.sums.get(k, 0.0) + v * n
        self.count += n

    def means(self, info: DistInfo, prefix: str = "") -> dict[str, float]:
        sums = {k: float(v) for k, v in self.sums.items()}
        totals = all_reduce_sum({**sums, "__count": float(self.count)}, info)
        count = max(totals.pop("__count"), 1.0)
        return {f"{prefix}{k}": v / count for k, v in totals.items()}


# ---- metrics files ------------------------------------------------------------------------
class MetricsLog:
    """One row per epoch in ``metrics.csv`` and ``metrics.json`` (rewritten atomically each epoch)."""

    def __init__(self, out: Path, config: dict[str, Any], rows: list[dict[str, Any]] | None = None):
        self.out = out
        self.config = config
        self.rows: list[dict[str, Any]] = list(rows or [])
        self.summary: dict[str, Any] = {}

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.write()

    def write(self) -> None:
        columns: list[str] = []
        for row in self.rows:
            columns += [k for k in row if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.out / "metrics.csv", buf.getvalue())
        atomic_write_json(self.out / "metrics.json", {"config": self.config, **self.summary, "epochs": self.rows})


# ---- the loop -----------------------------------------------------------------------------
StepFn = Callable[[Any, torch.Generator], tuple[torch.Tensor, dict[str, Any], int]]
ValidateFn = Callable[[], dict[str, float]]


@dataclass
class Fit:
    """Everything :func:`fit` needs. ``train_model`` is the (maybe DDP-wrapped) ``model``."""

    kind: str  # "pretrain" | "finetune"
    config: dict[str, Any]  # the resolved config, stored in checkpoints and metrics.json
    info: DistInfo
    out: Path
    model: nn.Module
    train_model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    loader: TrainLoader
    train_step: StepFn  # (batch, generator) -> (loss, terms to log, batch size); runs under autocast
    validate: ValidateFn  # -> {"val_...": value}; the monitored key must be among them
    monitor: str  # e.g. "val_loss" or "val_acc"
    mode: str  # "min" or "max"
    epochs: int
    seed: int
    extra: dict[str, Any] = field(default_factory=dict)  # stored in every checkpoint
    progress: bool = True


def fit(f: Fit, resume: bool = False) -> dict[str, Any]:
    """Train ``f.epochs`` epochs (or the remaining ones after ``resume``); return the summary.

    Returns ``{"epochs": rows, "best_epoch": int, "best": value, "log": MetricsLog}``. Raises
    :class:`NonFiniteLossError` naming the epoch and step of a NaN / inf loss (checked every
    ``CHECK_EVERY`` steps and at the end of the epoch, before anything is saved); the last good
    ``last.pt`` stays on disk.
    """
    info = f.info
    # the masking / sampling generator of this rank: part of the checkpointed state
    generator = torch.Generator().manual_seed(f.seed * 7919 + 17 + info.rank)
    start, best, best_epoch, rows = 0, None, 0, []
    if resume:
        ckpt = load_checkpoint(f.out / "last.pt", kind=f.kind)
        f.model.load_state_dict(ckpt["model"])
        f.optimizer.load_state_dict(ckpt["optimizer"])
        f.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            f.scaler.load_state_dict(ckpt["scaler"])
        states = ckpt["rng"] if isinstance(ckpt["rng"], list) else [ckpt["rng"]]
        if len(states) != info.world_size:
            raise RuntimeError(f"{f.out / 'last.pt'} was written by {len(states)} process(es); resume it with the "
                               f"same number (now {info.world_size}) to reproduce the run")
        set_rng_state(states[info.rank], {"train": generator})
        start, best, best_epoch, rows = ckpt["epoch"], ckpt["best"], ckpt["best_epoch"], ckpt["history"]
        if info.is_main:
            tqdm.write(f"resumed from {f.out / 'last.pt'} after epoch {start}")
    log = MetricsLog(f.out, f.config, rows)
    better = (lambda a, b: a < b) if f.mode == "min" else (lambda a, b: a > b)

    for epoch in range(start + 1, f.epochs + 1):
        f.loader.set_epoch(epoch)
        f.train_model.train()
        avg = Averager()
        t0 = time.perf_counter()
        bar = tqdm(f.loader, desc=f"{f.kind} epoch {epoch}/{f.epochs}", leave=False,
                   disable=not (f.progress and info.is_main), dynamic_ncols=True)
        pending: list[torch.Tensor] = []  # losses not yet checked: one host sync per CHECK_EVERY steps
        for step, batch in enumerate(bar, start=1):
            with autocast(info.device, f.amp_dtype):
                loss, terms, n = f.train_step(batch, generator)
            f.optimizer.zero_grad(set_to_none=True)
            f.scaler.scale(loss).backward()
            f.scaler.step(f.optimizer)
            f.scaler.update()
            avg.add(terms, n)
            pending.append(loss.detach().float())
            if step % CHECK_EVERY == 0 or step == len(f.loader):
                _check_finite(f, epoch, step - len(pending) + 1, torch.stack(pending))
                bar.set_postfix(loss=f"{pending[-1].item():.4f}")
                pending = []
        bar.close()
        train_time = time.perf_counter() - t0
        row: dict[str, Any] = {"epoch": epoch, "lr": f.optimizer.param_groups[0]["lr"]}
        row.update(avg.means(info, prefix="train_"))
        row.update(f.validate())
        epoch_time = time.perf_counter() - t0
        total = all_reduce_sum({"n": float(avg.count)}, info)["n"]
        row.update({"epoch_time_s": epoch_time, "samples_per_s": total / train_time if train_time > 0 else math.nan})
        f.scheduler.step()

        value = row[f.monitor]
        improved = best is None or better(value, best)
        if improved:
            best, best_epoch = value, epoch
        rows = log.rows + [row]
        payload = _payload(f, epoch, best, best_epoch, rows, generator)
        if info.is_main:
            log.append(row)
            save_checkpoint(f.out / "last.pt", **payload)
            if improved:
                save_checkpoint(f.out / "best.pt", **payload)
            # timings in the forms the notebooks' nbval sanitizer masks ("took N s", "N samples/s")
            shown = ", ".join(f"{k} {v:.4g}" for k, v in row.items()
                              if isinstance(v, float) and k not in ("epoch_time_s", "samples_per_s"))
            tqdm.write(f"{f.kind} epoch {epoch}/{f.epochs}: {shown}{' *' if improved else ''} "
                       f"(took {row['epoch_time_s']:.1f} s, {row['samples_per_s']:.1f} samples/s)")
        else:
            log.rows.append(row)
    return {"epochs": log.rows, "best_epoch": best_epoch, "best": best, "log": log}


CHECK_EVERY = 10  # steps between finiteness checks (each one waits for the device)


def _check_finite(f: Fit, epoch: int, first_step: int, losses: torch.Tensor) -> None:
    """Raise :class:`NonFiniteLossError` naming the first step whose loss is NaN / inf.

    Checked in groups of steps so the device is not synchronised every step; the weights of this
    epoch are then discarded (nothing is saved), so ``last.pt`` stays the last good epoch.
    """
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        i = int(bad[0])
        kept = (f"the last good checkpoint is {f.out / 'last.pt'} (epoch {epoch - 1})" if epoch > 1
                else "no checkpoint was written")
        raise NonFiniteLossError(
            f"{f.kind}: non-finite loss ({losses[i].item()}) at epoch {epoch}, step {first_step + i} of "
            f"{len(f.loader)}; stopped, nothing of this epoch is saved; {kept}. Try a lower --lr, or --no-amp.")


def _payload(f: Fit, epoch: int, best: float, best_epoch: int, rows: list[dict[str, Any]],
             generator: torch.Generator) -> dict[str, Any]:
    rng = rng_state({"train": generator})
    if f.info.distributed:  # every rank's random state, so each resumes its own stream
        import torch.distributed as dist

        gathered: list[Any] = [None] * f.info.world_size
        dist.all_gather_object(gathered, rng)
        rng = gathered
    return {
        "kind": f.kind,
        "model": unwrap(f.model).state_dict(),
        "optimizer": f.optimizer.state_dict(),
        "scheduler": f.scheduler.state_dict(),
        "scaler": f.scaler.state_dict() if f.scaler.is_enabled() else {},
        "epoch": epoch,
        "config": f.config,
        "rng": rng,
        "best": best,
        "best_epoch": best_epoch,
        "history": rows,
        **f.extra,
    }


def build_optimizer(model: nn.Module, lr: float, weight_decay: float, steps: list[int], gamma: float):
    """The paper's optimiser and schedule: Adam (L2 weight decay) and lr x ``gamma`` after each step epoch."""
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(steps), gamma=gamma)
    return optimizer, scheduler


def prepare_out(out: str | Path, resume: bool, info: DistInfo) -> Path:
    """The output folder; refuses to start a fresh run over an existing ``last.pt`` (use --resume)."""
    path = Path(out)
    if not resume and (path / "last.pt").exists():
        raise FileExistsError(f"{path / 'last.pt'} exists: pass --resume (resume=True) to continue it, "
                              f"or choose another --out")
    if resume and not (path / "last.pt").exists():
        raise FileNotFoundError(f"--resume: no {path / 'last.pt'} to continue from")
    if info.is_main:
        path.mkdir(parents=True, exist_ok=True)
    return path


# ---- data ---------------------------------------------------------------------------------
@dataclass
class Splits:
    """The feeders of one run. Index arrays point into the full ``train`` / ``test`` splits."""

    train_data: Any  # SkeletonData
    test_data: Any
    train: Dataset  # Feeder, random crops (training)
    val: Dataset  # Feeder, centre crops, carved from the training split
    test: Dataset  # Feeder, centre crops
    indices: dict[str, Any]  # {"train", "val", "test"} int64 arrays


def prepare_splits(cfg: Any, out: Path | None, info: DistInfo, label_fraction: float = 1.0) -> Splits:
    """Load the dataset, pick the index sets and build the feeders; save the indices in ``out``.

    Order: ``max_samples`` (a class-stratified subset, smoke runs), then ``label_fraction`` (the
    semi-supervised subset, class-stratified), then the validation carve-out from what is left
    (per class, or by whole ``val_groups``). All seeded by ``cfg.seed``; written to
    ``out/indices.npz`` (keys ``train``, ``val``, ``test``) by rank 0.
    """
    import numpy as np

    from skel.data import load_dataset
    from skel.data.feeder import Feeder, carve_validation, save_indices, stratified_subset

    train_data = load_dataset(cfg.dataset, "train", cfg.data_dir, **cfg.dataset_options)
    test_data = load_dataset(cfg.dataset, "test", cfg.data_dir, **cfg.dataset_options)
    pool = np.arange(len(train_data))
    test_idx = np.arange(len(test_data))
    if cfg.max_samples is not None:
        if cfg.max_samples < len(pool):
            pool = pool[stratified_subset(train_data.labels, cfg.max_samples / len(pool), cfg.seed)]
        if cfg.max_samples < len(test_idx):
            test_idx = test_idx[stratified_subset(test_data.labels, cfg.max_samples / len(test_idx), cfg.seed + 1)]
    if label_fraction < 1.0:
        pool = pool[stratified_subset(train_data.labels[pool], label_fraction, cfg.seed + 2)]
    groups = None
    if cfg.val_groups is not None:
        if cfg.val_groups not in train_data.meta:
            raise KeyError(f"val_groups: {cfg.dataset} has no meta column {cfg.val_groups!r}; "
                           f"columns: {', '.join(train_data.meta) or 'none'}")
        groups = train_data.meta[cfg.val_groups][pool]
    tr, va = carve_validation(train_data.labels[pool], cfg.val_fraction, cfg.seed + 3, groups=groups)
    indices = {"train": pool[tr], "val": pool[va], "test": test_idx}
    if len(indices["val"]) == 0 or len(indices["train"]) == 0:
        raise ValueError(f"{cfg.dataset}: carving {cfg.val_fraction} of {len(pool)} training samples for validation "
                         f"left {len(indices['train'])} to train and {len(indices['val'])} to validate (per class, a class "
                         f"needs 2 samples to give one); raise val_fraction, set val_groups (e.g. subject) or use "
                         f"more samples")
    if out is not None and info.is_main:
        save_indices(out / "indices.npz", **indices)
    window = cfg.window
    return Splits(
        train_data=train_data, test_data=test_data,
        train=Feeder(train_data, window, train=True, rotate=cfg.rotate, indices=indices["train"], seed=cfg.seed),
        val=Feeder(train_data, window, train=False, indices=indices["val"], seed=cfg.seed),
        test=Feeder(test_data, window, train=False, indices=indices["test"], seed=cfg.seed),
        indices=indices,
    )


def apply_threads(threads: int | None) -> None:
    """``--threads``: set torch's CPU thread count; leave torch's default when not given."""
    if threads is not None:
        torch.set_num_threads(threads)


def run_session(cfg: Any, run: Callable[[Any, DistInfo], dict[str, Any]]) -> dict[str, Any]:
    """``run(cfg, info)`` with ``cfg``'s threads, its process group (torchrun) and deterministic
    kernels; the process group is torn down even when ``run`` raises."""
    apply_threads(cfg.threads)
    info = setup(cfg.device)
    try:
        with deterministic(cfg.deterministic, info.device):
            return run(cfg, info)
    finally:
        cleanup(info)


def run_command(config_type: Any, run: Callable[[Any], dict[str, Any]], args: Any) -> int:
    """A command's ``main``: config from ``args``, run, errors as one line and an exit code
    (1: the loss diverged, 2: bad options, data or checkpoint)."""
    from skel.train.checkpoint import CheckpointError
    from skel.train.config import ConfigError

    try:
        result = run(config_type.from_args(args))
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (ConfigError, CheckpointError, FileExistsError, FileNotFoundError, KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"done: {result['out']}")
    return 0
