"""Typed run configs: recipe presets, papermill-style strings, refused keys and types."""

from __future__ import annotations

import pytest

from skel.cli import build_parser
from skel.train.config import ConfigError, FinetuneConfig, PretrainConfig, ProbeConfig


def test_paper_preset_is_the_papers_recipe():
    vae = PretrainConfig.from_dict({"preset": "paper", "latent": "vae"}).resolve()
    assert (vae.epochs, vae.batch_size, vae.window, vae.lr, vae.weight_decay) == (200, 64, 120, 1e-3, 1e-4)
    assert vae.lr_steps == [60, 90, 110] and vae.lr_gamma == 0.1
    assert (vae.mask_frames, vae.mask_joints) == (0.4, 0.4)
    assert PretrainConfig.from_dict({"preset": "paper", "latent": "vq"}).resolve().lr == 1e-2
    assert PretrainConfig.from_dict({"preset": "paper", "latent": "none"}).resolve().lr == 1e-3
    ft = FinetuneConfig.from_dict({"preset": "paper", "latent": "vae"}).resolve()
    assert (ft.epochs, ft.batch_size, ft.lr, ft.lr_steps) == (200, 64, 1e-3, [60, 90, 110])


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_cpu_presets_are_small_and_tuple_aligned(preset):
    cfg = PretrainConfig.from_dict({"preset": preset}).resolve()
    assert cfg.window % 6 == 0 and cfg.window < 120
    assert cfg.epochs < 200 and cfg.batch_size < 64
    assert all(1 <= s <= cfg.epochs for s in cfg.lr_steps)


@pytest.mark.parametrize("preset", ["tiny", "small"])
@pytest.mark.parametrize("epochs,step", [(10, 8), (12, 10), (50, 40), (2, 2), (1, 1)])
def test_cpu_presets_step_once_late(preset, epochs, step):
    # Short runs keep full lr for 80% of the epochs (the paper's 30/45/55% would cut it 1000x by mid-run).
    cfg = PretrainConfig.from_dict({"preset": preset, "epochs": epochs}).resolve()
    assert cfg.lr_steps == [step]


def test_every_value_is_overridable():
    cfg = PretrainConfig.from_dict({"preset": "paper", "epochs": 3, "batch_size": 5, "lr": 0.5, "window": 12,
                                    "lr_steps": [2], "weight_decay": 0.0, "mask_frames": 0.5}).resolve()
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.window, cfg.lr_steps, cfg.weight_decay, cfg.mask_frames) == \
        (3, 5, 0.5, 12, [2], 0.0, 0.5)


def test_unknown_key_is_refused_with_the_accepted_keys():
    with pytest.raises(ConfigError) as err:
        PretrainConfig.from_dict({"epochz": 3})
    msg = str(err.value)
    assert "'epochz'" in msg and "accepted keys" in msg
    for key in ("epochs", "batch_size", "latent", "mask_frames"):
        assert key in msg


@pytest.mark.parametrize("key,value,expected", [
    ("epochs", "ten", "int"), ("epochs", 2.5, "int"), ("epochs", True, "int"),
    ("lr", "fast", "float"), ("lr", [1], "float"), ("amp", "maybe", "bool"), ("amp", 2, "bool"),
    ("lr_steps", "[1, x]", "list of int"), ("dataset", 3, "str"), ("dataset_options", [1], "dict"),
])
def test_wrong_types_are_refused_with_the_expected_type(key, value, expected):
    with pytest.raises(ConfigError) as err:
        PretrainConfig.from_dict({key: value})
    assert key in str(err.value) and f"expects {expected}" in str(err.value)


def test_unambiguous_strings_from_papermill_are_converted():
    cfg = PretrainConfig.from_dict({"epochs": "3", "lr": "1e-3", "amp": "false", "resume": "True",
                                    "lr_steps": "[60, 90, 110]", "data_dir": "None", "batch_size": 4.0,
                                    "dataset_options": '{"num_per_class": 2}'})
    assert (cfg.epochs, cfg.lr, cfg.amp, cfg.resume, cfg.lr_steps, cfg.data_dir, cfg.batch_size) == \
        (3, 1e-3, False, True, [60, 90, 110], None, 4)
    assert cfg.dataset_options == {"num_per_class": 2}
    assert PretrainConfig.from_dict({"lr": 1}).lr == 1.0 and isinstance(PretrainConfig.from_dict({"lr": 1}).lr, float)
    assert PretrainConfig.from_dict({"lr_steps": "2,4"}).lr_steps == [2, 4]


@pytest.mark.parametrize("params,needle", [
    ({"latent": "gan"}, "latent must be one of none, vae, vq"),
    ({"preset": "huge"}, "preset must be one of tiny, small, paper"),
    ({"device": "tpu"}, "device must be one of auto, cpu, cuda"),
    ({"window": 40}, "multiple of 6"),
    ({"epochs": 0}, "epochs must be >= 1"),
    ({"val_fraction": 1.0}, "val_fraction"),
    ({"mask_joints": 1.0}, "mask_joints"),
])
def test_out_of_range_values_are_refused(params, needle):
    with pytest.raises(ConfigError, match=needle):
        PretrainConfig.from_dict(params).resolve()


def test_finetune_and_probe_fields():
    with pytest.raises(ConfigError, match="label_fraction"):
        FinetuneConfig.from_dict({"label_fraction": 0.0})
    with pytest.raises(ConfigError, match="init"):
        ProbeConfig.from_dict({})
    with pytest.raises(ConfigError, match="probe_optimizer must be one of adam, lbfgs"):
        ProbeConfig.from_dict({"init": "x.pt", "probe_optimizer": "sgd"})
    with pytest.raises(ConfigError, match="unknown key"):
        PretrainConfig.from_dict({"label_fraction": 0.1})  # a fine-tuning option
    assert FinetuneConfig.from_dict({}).latent is None  # the init checkpoint's, else none:
    assert FinetuneConfig.from_dict({}).resolve().latent == "none"
    probe = ProbeConfig.from_dict({"init": "x.pt"}).resolve()
    assert probe.knn_k == 20 and probe.lr_steps == []


def test_cli_refuses_unknown_choices_and_types(capsys):
    for argv, needle in ((["pretrain", "--latent", "gan"], "choose from 'none', 'vae', 'vq'"),
                         (["pretrain", "--preset", "huge"], "choose from 'tiny', 'small', 'paper'"),
                         (["pretrain", "--epochs", "two"], "invalid int value"),
                         (["pretrain", "--dataset", "mnist"], "'synthetic'"),
                         (["finetune", "--device", "tpu", "--init", "none"], "choose from 'auto', 'cpu', 'cuda'")):
        with pytest.raises(SystemExit):
            build_parser(argv[0]).parse_args(argv)
        assert needle in capsys.readouterr().err


def test_cli_arguments_build_the_config():
    args = build_parser("finetune").parse_args(["finetune", "--init", "none", "--latent", "vq", "--epochs", "3",
                                      "--label-fraction", "0.1", "--lr-steps", "1", "2", "--no-amp"])
    cfg = FinetuneConfig.from_args(args)
    assert (cfg.init, cfg.latent, cfg.epochs, cfg.label_fraction, cfg.lr_steps, cfg.amp) == \
        ("none", "vq", 3, 0.1, [1, 2], False)
    assert cfg.resolve().lr == 1e-2


@pytest.mark.parametrize("preset, rotate", [("paper", 0.3), ("small", 0.0), ("tiny", 0.0)])
def test_rotation_follows_the_official_sttformer_recipe_in_paper_only(preset, rotate):
    # the official STTFormer trains with random rotation in +-0.3 rad (`paper`); the CPU presets
    # leave it off, as they did before issue 14 (measured: no fix at CPU scale, docs/deviations.md)
    for config in (PretrainConfig, FinetuneConfig):
        assert config.from_dict({"preset": preset}).rotate is None  # resolved from the preset
        assert config.from_dict({"preset": preset}).resolve().rotate == rotate
        assert config.from_dict({"preset": preset, "rotate": 0.3}).resolve().rotate == 0.3  # explicit values win
        assert config.from_dict({"preset": preset, "rotate": 0}).resolve().rotate == 0.0
        assert config.from_dict({"preset": preset, "rotate": "0.1"}).resolve().rotate == 0.1
    # the probe extracts features once, unaugmented
    assert ProbeConfig.from_dict({"preset": preset, "init": "x.pt"}).resolve().rotate == 0.0
    assert ProbeConfig.from_dict({"preset": preset, "init": "x.pt", "rotate": 0}).resolve().rotate == 0.0


def test_rotation_out_of_range_is_refused():
    for value in (-0.3, float("nan")):
        with pytest.raises(ConfigError, match="rotate must be >= 0"):
            PretrainConfig.from_dict({"rotate": value})
    with pytest.raises(ConfigError, match="rotate: the linear probe extracts features once"):
        ProbeConfig.from_dict({"init": "x.pt", "rotate": 0.3})
    args = build_parser("pretrain").parse_args(["pretrain", "--rotate", "0"])
    assert PretrainConfig.from_args(args).resolve().rotate == 0.0
    assert PretrainConfig.from_args(build_parser("pretrain").parse_args(["pretrain"])).resolve().rotate == 0.0  # tiny


def test_probe_batchnorm_options():
    probe = ProbeConfig.from_dict({"init": "x.pt"}).resolve()
    assert probe.bn_recompute is True and probe.bn_batches is None  # re-estimated on the whole training split
    with pytest.raises(ConfigError, match="bn_batches must be >= 1"):
        ProbeConfig.from_dict({"init": "x.pt", "bn_batches": 0})
    args = build_parser("linear-probe").parse_args(["linear-probe", "--init", "x.pt", "--no-bn-recompute",
                                                    "--bn-batches", "5"])
    cfg = ProbeConfig.from_args(args)
    assert (cfg.bn_recompute, cfg.bn_batches) == (False, 5)
    default = build_parser("linear-probe").parse_args(["linear-probe", "--init", "x.pt"])
    assert ProbeConfig.from_args(default).bn_recompute
