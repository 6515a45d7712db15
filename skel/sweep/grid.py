"""Sweep files: a ``base`` of settings and a ``grid`` of values, expanded into runs.

A sweep file (YAML; the ready ones are in ``notebooks/configs/sweeps/``)::

    name: table3-mask-rates        # optional; default: the file name
    base:                          # settings every point shares
      dataset: ntu60-xsub
      preset: paper
      label_fractions: [1.0]       # the fine-tunes of every pre-training (Table 2: [0.1, 0.05])
    grid:                          # key -> values; the points are the cartesian product
      latent: [vae, vq]
      Mt: [0.4, 0.5, 0.6]
      Mj: [0.4, 0.6, 0.8]
      seed: [0, 1, 2]

``grid`` may also be a list of such mappings: the union of their products (each latent can then
sweep its own options, e.g. ``latent_dim`` for ``vae`` and ``codebook_size`` for ``vq``).

Keys (:func:`accepted_keys`), in ``base`` or ``grid``:

* anything :class:`~skel.train.config.PretrainConfig` or :class:`~skel.train.config.FinetuneConfig`
  accepts, except ``out``, ``resume`` and ``init`` (the sweep sets them). ``epochs``, ``lr`` and
  ``lr_steps`` are the pre-training's; ``finetune_epochs``, ``finetune_lr``, ``finetune_lr_steps``,
  ``finetune_batch_size`` the fine-tuning's (unset: the preset's recipe);
* ``Mt`` / ``Mj`` / ``K``: aliases of ``mask_frames`` / ``mask_joints`` / ``codebook_size``;
* model options (``latent_dim``, ``codebook_size``, ``decoder_dim``, ``decoder_depth``, ...; see
  :data:`skel.models.pretrain.COMMON_OPTIONS` and :data:`skel.models.latent.LATENT_OPTIONS`), routed
  into ``model_options`` (and into the classifier's where it takes them: ``skip_empty_persons``);
* ``latent``: ``none`` | ``vae`` | ``vq`` | ``scratch`` (no pre-training: the fine-tuning baseline
  from random weights, ``init none``);
* ``label_fraction`` (grid) or ``label_fractions`` (base, a list): the fine-tunes of each point;
* ``checkpoint``: the pre-training checkpoint fine-tuning starts from, ``best`` (default) or ``last``;
* ``data_dirs``: ``{dataset: folder}``, the ``data_dir`` of each dataset (NTU-60 and NTU-120 are
  two ``prepare-ntu`` stores); a dataset it does not name takes ``data_dir``.

A **point** is one pre-training and its fine-tunes: grid values that only change fine-tuning
(``label_fraction``, ``finetune_*``) share the point's pre-training, and two grid cells that
resolve to the same pre-training (e.g. ``K: 128`` and the default) are one point. Point names
(folder names) are the point's grid values in the file's key order: ``vae-Mt0.5-Mj0.6-seed1``.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skel.train.config import CommonConfig, ConfigError, FinetuneConfig, PretrainConfig

ALIASES = {"Mt": "mask_frames", "Mj": "mask_joints", "K": "codebook_size"}
LATENT_VALUES = ("none", "vae", "vq", "scratch")
# the sweep sets these itself
RESERVED = ("out", "resume", "init")
# sweep keys that set a fine-tuning field of the same name without the prefix
FINETUNE_PREFIXED = {"finetune_epochs": "epochs", "finetune_lr": "lr", "finetune_lr_steps": "lr_steps",
                     "finetune_batch_size": "batch_size"}
# keys that change only the fine-tuning (several of them share one pre-training)
FINETUNE_KEYS = ("label_fraction", "test_curve", "checkpoint", *FINETUNE_PREFIXED)
PRETRAIN_ONLY = ("latent", "mask_frames", "mask_joints", "find_unused_parameters", "epochs", "lr", "lr_steps")
CHECKPOINTS = ("best", "last")
# model options a point records beside its ablation axes, so that runs differing in them (issue 14:
# the paper's loss reduction, the VAE's reading, the empty-person handling) can be told apart in a
# results table (:func:`skel.sweep.tables.variants_table`); ``rotate`` is recorded too
VARIANT_MODEL_KEYS = ("loss_reduction", "vae_mode", "skip_empty_persons")
# settings that change how a run goes, not what it computes: never part of a point's identity
RUNTIME_KEYS = ("out", "resume", "device", "num_workers", "threads", "progress", "data_dir")


class SweepError(ValueError):
    """A sweep file or override is malformed; the message names the file and the key."""


def model_option_keys() -> dict[str, tuple[str, ...]]:
    """Model option -> the latents whose pre-training model takes it (mask rates excluded: config fields)."""
    from skel.models.latent import LATENT_OPTIONS
    from skel.models.pretrain import COMMON_OPTIONS

    keys: dict[str, tuple[str, ...]] = {k: ("none", "vae", "vq") for k in COMMON_OPTIONS
                                        if k not in ("mask_frames", "mask_joints")}
    for latent, options in LATENT_OPTIONS.items():
        for k in options:
            keys[k] = keys.get(k, ()) + (latent,)
    return keys


def accepted_keys() -> list[str]:
    """Every key a sweep's ``base`` or ``grid`` takes (aliases included), sorted."""
    fields = set(PretrainConfig.field_types()) | set(FinetuneConfig.field_types())
    keys = ((fields - set(RESERVED)) | set(FINETUNE_KEYS) | {"label_fractions", "data_dirs"} | set(model_option_keys())
            | set(ALIASES))
    return sorted(keys)


# ---- the file -----------------------------------------------------------------------------------
@dataclass
class Sweep:
    """A parsed sweep file: ``base`` settings and a list of grids (key -> values), keys canonical."""

    name: str
    base: dict[str, Any]
    grids: list[dict[str, list[Any]]]
    source: str = ""
    spelled: dict[str, str] = field(default_factory=dict)  # canonical key -> the file's spelling (Mt), for names

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "base": self.base, "grid": self.grids, "source": self.source}


def _canonical(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise SweepError(f"{where}: key {key!r} is not a name")
    key = ALIASES.get(key, key)
    accepted = accepted_keys()
    if key not in accepted:
        import difflib

        close = difflib.get_close_matches(key, accepted, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SweepError(f"{where}: unknown key {key!r}{hint}; accepted keys: {', '.join(accepted)}")
    return key


def parse_sweep(spec: dict[str, Any], source: str = "<dict>", overrides: dict[str, Any] | None = None) -> Sweep:
    """A :class:`Sweep` from a mapping with ``base`` / ``grid`` (and optional ``name``).

    ``overrides`` (``--set``): a key of a grid replaces that axis (a list, or one value); any other
    key sets ``base``. Unknown keys raise :class:`SweepError` listing the accepted ones.
    """
    if not isinstance(spec, dict):
        raise SweepError(f"{source}: expected a mapping with 'base' and 'grid', got {type(spec).__name__}")
    extra = sorted(set(spec) - {"name", "base", "grid", "description"})
    if extra:
        raise SweepError(f"{source}: unknown top-level key(s) {', '.join(extra)}; expected name, description, base, grid")
    base_in = spec.get("base") or {}
    if not isinstance(base_in, dict):
        raise SweepError(f"{source}: 'base' must be a mapping of key: value, got {type(base_in).__name__}")
    base = {_canonical(k, f"{source}: base"): copy.deepcopy(v) for k, v in base_in.items()}
    grid_in = spec.get("grid")
    if grid_in is None:
        grid_in = [{}]
    grids_in = grid_in if isinstance(grid_in, list) else [grid_in]
    grids: list[dict[str, list[Any]]] = []
    spelled: dict[str, str] = {}
    for i, g in enumerate(grids_in):
        where = f"{source}: grid" + (f"[{i}]" if isinstance(grid_in, list) else "")
        if not isinstance(g, dict):
            raise SweepError(f"{where}: expected a mapping of key: [values], got {type(g).__name__}")
        grid: dict[str, list[Any]] = {}
        for k, values in g.items():
            key = _canonical(k, where)
            if key in grid:
                raise SweepError(f"{where}: {k!r} and another alias both set {key!r}")
            if not isinstance(values, list) or not values:
                raise SweepError(f"{where}: {k!r} expects a non-empty list of values, got {values!r}")
            grid[key] = copy.deepcopy(values)
            spelled.setdefault(key, k)
        grids.append(grid)
    for k, v in (overrides or {}).items():
        key = _canonical(k, f"{source}: --set")
        in_grid = [g for g in grids if key in g]
        for g in in_grid:
            g[key] = list(v) if isinstance(v, list) else [v]
        if not in_grid:
            base[key] = v
    name = spec.get("name") or (Path(source).stem if source != "<dict>" else "sweep")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise SweepError(f"{source}: name must be letters, digits, '.', '_' or '-', got {name!r}")
    return Sweep(name=name, base=base, grids=grids, source=source, spelled=spelled)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["data_dir=/data/ntu", "seed=[0, 1]"]`` -> ``{"data_dir": "/data/ntu", "seed": [0, 1]}`` (values read as YAML)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SweepError(f"--set {item!r}: expected KEY=VALUE")
        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise SweepError(f"--set {item!r}: the value is not valid YAML: {err}") from None
    return out


def load_sweep(path: str | Path, overrides: dict[str, Any] | list[str] | None = None) -> Sweep:
    """Read a sweep YAML file; ``overrides``: ``{key: value}`` or ``["key=value", ...]`` (as ``--set``)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SweepError(f"no such sweep file {path}")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SweepError(f"{path}: not valid YAML: {err}") from None
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    return parse_sweep(spec, str(path), overrides)


# ---- points -------------------------------------------------------------------------------------
@dataclass
class Finetune:
    """One fine-tuning run of a point: its folder ``tag`` and its :class:`FinetuneConfig` dict (no ``out``/``init``)."""

    tag: str
    config: dict[str, Any]
    checkpoint: str  # best | last: the pre-training checkpoint it starts from
    identity: dict[str, Any]


@dataclass
class Point:
    """One pre-training (``pretrain`` None for ``latent: scratch``) and its fine-tunes."""

    name: str
    latent: str
    pretrain: dict[str, Any] | None  # PretrainConfig dict (no out / resume)
    finetunes: list[Finetune]
    grids: list[dict[str, Any]]  # every grid assignment that leads here (canonical keys)
    axes: dict[str, Any]  # effective values: dataset, seed, preset, window, mask rates, model options
    identity: dict[str, Any]  # what the point computes (runtime keys dropped); compared on re-runs

    @property
    def key(self) -> str:
        return json.dumps(self.identity, sort_keys=True, default=str)


def _value_token(v: Any) -> str:
    if isinstance(v, bool):
        text = str(v).lower()
    elif isinstance(v, float):
        text = f"{v:g}"
    elif isinstance(v, (dict, list)):
        text = json.dumps(v, sort_keys=True, separators=(",", ":"))
    else:
        text = str(v)
    return re.sub(r"[^A-Za-z0-9._+=-]+", "_", text).strip("_") or "_"


def _token(key: str, value: Any, spelled: dict[str, str]) -> str:
    if key in ("latent", "dataset"):
        return _value_token(value)
    if key == "label_fraction":
        return f"{value * 100:g}pct"
    return f"{spelled.get(key, key)}{_value_token(value)}"


def _split(params: dict[str, Any], latent: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Merged sweep settings -> (PretrainConfig dict, FinetuneConfig dict, sweep-level settings)."""
    from skel.models.classifier import CLASSIFIER_OPTIONS

    options = model_option_keys()
    pre: dict[str, Any] = {"progress": False}
    ft: dict[str, Any] = {"progress": False}
    sweep: dict[str, Any] = {"checkpoint": "best"}
    model_options = dict(params.get("model_options") or {})
    clf_options = {k: v for k, v in model_options.items() if k in CLASSIFIER_OPTIONS}
    for k, v in params.items():
        if k in ("model_options", "latent"):
            continue
        if k in options:
            model_options[k] = v
            if k in CLASSIFIER_OPTIONS:
                clf_options[k] = v
        elif k in FINETUNE_PREFIXED:
            ft[FINETUNE_PREFIXED[k]] = v
        elif k in ("label_fraction", "test_curve"):
            ft[k] = v
        elif k in ("checkpoint", "label_fractions", "data_dirs"):
            sweep[k] = v
        elif k in PRETRAIN_ONLY:
            pre[k] = v
        else:
            pre[k] = v
            ft.setdefault(k, v)  # a finetune_* key given too keeps its value
    if latent != "scratch":
        pre["latent"] = latent
        pre["model_options"] = {k: v for k, v in model_options.items() if latent in options.get(k, ())}
        misplaced = sorted(k for k in model_options if latent not in options.get(k, ()) and k in options)
        if misplaced:
            raise SweepError(f"model option(s) {', '.join(misplaced)} do not apply to latent {latent!r} "
                             f"(they belong to {', '.join(sorted({l for k in misplaced for l in options[k]}))}); "
                             f"give each latent its own grid: 'grid:' as a list of mappings")
    ft["model_options"] = clf_options
    ft["latent"] = None if latent != "scratch" else "none"
    for cfg in (pre, ft):
        if cfg.get("data_dir") == "":  # a file's `data_dir: ""` placeholder: the dataset's default
            cfg["data_dir"] = None
    data_dirs = sweep.get("data_dirs") or {}
    if not isinstance(data_dirs, dict):
        raise SweepError(f"data_dirs must map dataset names to folders, got {data_dirs!r}")
    if params.get("dataset", "synthetic") in data_dirs:  # one folder per benchmark (NTU-60 and NTU-120 stores)
        pre["data_dir"] = ft["data_dir"] = data_dirs[params.get("dataset", "synthetic")]
    return pre, ft, sweep


def _drop_runtime(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in RUNTIME_KEYS}


def _resolved_pretrain(pre: dict[str, Any], where: str) -> tuple[PretrainConfig, dict[str, Any]]:
    from skel.models.pretrain import resolve_options

    try:
        cfg = PretrainConfig.from_dict(pre).resolve()
        model = resolve_options(cfg.latent, cfg.preset, cfg.model_options)
    except (ConfigError, ValueError) as err:
        raise SweepError(f"{where}: {err}") from None
    model = {k: v for k, v in model.items() if k not in ("mask_frames", "mask_joints")}
    return cfg, model


def expand(sweep: Sweep) -> list[Point]:
    """The sweep's points in file order (each grid's cartesian product, first key outermost),
    duplicates merged. Every point's configs are checked here: bad values raise :class:`SweepError`
    naming the point before anything runs."""
    spelled = sweep.spelled
    points: dict[str, Point] = {}
    names: dict[str, str] = {}  # name -> point key
    for g_index, grid in enumerate(sweep.grids):
        keys = list(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            assignment = dict(zip(keys, values))
            params = {**sweep.base, **assignment}
            latent = params.get("latent", "none")
            if latent not in LATENT_VALUES:
                raise SweepError(f"{sweep.source}: latent must be one of {', '.join(LATENT_VALUES)}, got {latent!r}")
            point_keys = [k for k in keys if k not in FINETUNE_KEYS]
            name = "-".join(_token(k, assignment[k], spelled) for k in point_keys) or "base"
            where = f"{sweep.source}: point {name}"
            try:
                pre, ft, extra = _split(params, latent)
            except SweepError as err:
                raise SweepError(f"{where}: {err}") from None
            if extra["checkpoint"] not in CHECKPOINTS:
                raise SweepError(f"{where}: checkpoint must be best or last, got {extra['checkpoint']!r}")
            fractions = ([ft["label_fraction"]] if "label_fraction" in ft
                         else list(extra.get("label_fractions") or [1.0]))
            if latent == "scratch":
                pre_cfg, model = None, None
                axes = {"window": params.get("window")}
            else:
                pre_cfg, model = _resolved_pretrain(pre, where)
                ft.setdefault("window", pre_cfg.window)
                axes = {"window": pre_cfg.window, "mask_frames": pre_cfg.mask_frames,
                        "mask_joints": pre_cfg.mask_joints, "epochs": pre_cfg.epochs,
                        **{k: model.get(k) for k in ("latent_dim", "codebook_size", "decoder_dim", "decoder_depth")},
                        **{k: model.get(k) for k in VARIANT_MODEL_KEYS}, "rotate": pre_cfg.rotate}
            finetunes = []
            for fraction in fractions:
                fcfg = {**ft, "label_fraction": fraction}
                try:
                    resolved = FinetuneConfig.from_dict({**fcfg, "latent": fcfg["latent"] or pre_cfg.latent}).resolve()
                except ConfigError as err:
                    raise SweepError(f"{where}: fine-tuning: {err}") from None
                tag = "finetune-" + "-".join(
                    [f"{fraction * 100:g}pct"]
                    + [_token(k, assignment[k], spelled) for k in keys if k in FINETUNE_KEYS and k != "label_fraction"])
                identity = {**_drop_runtime(resolved.to_dict()), "checkpoint": extra["checkpoint"]}
                identity.pop("latent")  # the init checkpoint's; part of the pre-training identity
                identity = json.loads(json.dumps(identity, default=str))
                finetunes.append(Finetune(tag=tag, config=fcfg, checkpoint=extra["checkpoint"], identity=identity))
                axes["finetune_epochs"] = resolved.epochs
                axes.setdefault("window", resolved.window)
                if axes["window"] is None:
                    axes["window"] = resolved.window
            base_cfg = pre_cfg if pre_cfg is not None else resolved
            axes.update({"dataset": base_cfg.dataset, "seed": base_cfg.seed, "preset": base_cfg.preset})
            if pre_cfg is not None:
                settings = _drop_runtime(pre_cfg.to_dict())
                settings.pop("model_options")  # as resolved in `model`: K 128 given or by default is one point
                identity = {"pretrain": {**settings, "model": model}}
            else:
                common = set(CommonConfig.field_types()) - {"latent", "epochs", "lr", "lr_steps", "batch_size"}
                identity = {"scratch": _drop_runtime({k: v for k, v in resolved.to_dict().items() if k in common})}
            identity = json.loads(json.dumps(identity, default=str))  # as it reads back from result.json
            point = Point(name=name, latent=latent, pretrain=pre if pre_cfg is not None else None,
                          finetunes=finetunes, grids=[assignment], axes=axes, identity=identity)
            key = point.key
            if key in points:
                _merge(points[key], point, where)
                continue
            if name in names:  # same name, other settings (a key varied in one grid only): disambiguate
                name = f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:6]}"
                point.name = name
            names[name] = key
            points[key] = point
    return list(points.values())


def _merge(into: Point, other: Point, where: str) -> None:
    """``other`` computes the same pre-training as ``into``: keep one, with the fine-tunes of both."""
    if other.grids[0] not in into.grids:
        into.grids.append(other.grids[0])
    have = {f.tag: f for f in into.finetunes}
    for f in other.finetunes:
        if f.tag not in have:
            into.finetunes.append(f)
        elif have[f.tag].identity != f.identity:
            raise SweepError(f"{where}: fine-tune {f.tag} of point {into.name} is given two different settings; "
                             f"vary the differing key in the grid so each fine-tune gets its own name")


def mask_collisions(points: list[Point], tuple_len: int = 6) -> list[str]:
    """Warnings for frame mask rates that keep the same number of frames at a point's window.

    Frames are masked in whole STTFormer tuples (``skel.models.masking.kept_counts``), so at a short
    window several rates round to one count: at window 24 (4 tuples) Mt = 0.4, 0.5 and 0.6 all keep
    2 tuples, and those points compute the same pre-training.
    """
    from skel.models.masking import kept_counts

    by_window: dict[int, dict[int, set[float]]] = {}
    for p in points:
        window, mt = p.axes.get("window"), p.axes.get("mask_frames")
        if p.pretrain is None or window is None or mt is None or window % tuple_len:
            continue
        tk = kept_counts(window, 1, mt, 0.0, tuple_len)[0]
        by_window.setdefault(window, {}).setdefault(tk, set()).add(mt)
    out = []
    for window, kept in sorted(by_window.items()):
        for tk, rates in sorted(kept.items()):
            if len(rates) > 1:
                apart = next((w for w in range(window + tuple_len, 100 * tuple_len, tuple_len)
                              if len({kept_counts(w, 1, r, 0.0, tuple_len)[0] for r in rates}) == len(rates)), None)
                out.append(f"Mt {', '.join(f'{r:g}' for r in sorted(rates))} all keep {tk} of {window} frames "
                           f"({tk // tuple_len} of {window // tuple_len} tuples of {tuple_len}) at window {window}: "
                           f"those points mask alike" + (f"; window {apart} tells them apart" if apart else ""))
    return out


def point_summary(points: list[Point]) -> list[dict[str, Any]]:
    """One plain dict per point (for ``--dry-run`` and ``sweep.json``)."""
    return [{"name": p.name, "latent": p.latent, "pretrain": p.pretrain is not None,
             "finetunes": [f.tag for f in p.finetunes], "axes": p.axes, "grids": p.grids} for p in points]


__all__ = ["ALIASES", "Finetune", "Point", "Sweep", "SweepError", "accepted_keys", "expand", "load_sweep",
           "mask_collisions", "parse_overrides", "parse_sweep", "point_summary"]
