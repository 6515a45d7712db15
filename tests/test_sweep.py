"""Sweeps (``python -m skel sweep``): grid expansion, skipping finished points, resuming, recording
failures, and the paper's tables built from result rows."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest

from skel.cli import main as cli_main
from skel.sweep import SweepError, build_tables, expand, load_results, load_sweep, parse_sweep, run_sweep
from skel.sweep.tables import table1, table2, table3, table5, table8
from skel.utils import repo_root

SWEEPS = sorted((repo_root() / "notebooks" / "configs" / "sweeps").glob("*.yaml"))
# the smallest real runs: 24 + 24 synthetic samples, tiny preset, 12-frame windows, 1 epoch each
TINY = {"dataset": "synthetic", "dataset_options": {"num_per_class": 2}, "preset": "tiny", "window": 12,
        "batch_size": 8, "epochs": 1, "finetune_epochs": 1, "threads": 1, "device": "cpu"}


# ---- expansion ----------------------------------------------------------------------------------
def test_grid_expands_to_the_cartesian_product_in_file_order():
    sweep = parse_sweep({"base": {"preset": "tiny"},
                         "grid": {"latent": ["vae", "vq"], "Mt": [0.4, 0.6], "Mj": [0.4, 0.8], "seed": [0, 1]}})
    points = expand(sweep)
    expected = list(itertools.product(["vae", "vq"], [0.4, 0.6], [0.4, 0.8], [0, 1]))
    assert [(p.latent, p.axes["mask_frames"], p.axes["mask_joints"], p.axes["seed"]) for p in points] == expected
    assert [p.name for p in points[:3]] == ["vae-Mt0.4-Mj0.4-seed0", "vae-Mt0.4-Mj0.4-seed1", "vae-Mt0.4-Mj0.8-seed0"]
    assert points[-1].name == "vq-Mt0.6-Mj0.8-seed1"
    assert len({p.name for p in points}) == 16
    # the aliases reach the pre-training config; every point fine-tunes once, on all labels
    assert points[2].pretrain["mask_joints"] == 0.8 and points[2].pretrain["latent"] == "vae"
    assert all([f.tag for f in p.finetunes] == ["finetune-100pct"] for p in points)
    # stable: the same file gives the same names and settings
    again = expand(parse_sweep({"base": {"preset": "tiny"}, "grid": {"latent": ["vae", "vq"], "Mt": [0.4, 0.6],
                                                                      "Mj": [0.4, 0.8], "seed": [0, 1]}}))
    assert [(p.name, p.identity) for p in again] == [(p.name, p.identity) for p in points]


def test_fine_tuning_keys_share_one_pre_training_and_model_options_are_routed():
    points = expand(parse_sweep({"base": {"preset": "tiny", "finetune_epochs": 3},
                                 "grid": {"latent": ["vq"], "K": [32], "label_fraction": [1.0, 0.1]}}))
    (p,) = points
    assert p.name == "vq-K32"
    assert [f.tag for f in p.finetunes] == ["finetune-100pct", "finetune-10pct"]
    assert p.pretrain["model_options"] == {"codebook_size": 32} and p.axes["codebook_size"] == 32
    assert [f.config["label_fraction"] for f in p.finetunes] == [1.0, 0.1]
    assert all(f.config["epochs"] == 3 and "mask_frames" not in f.config for f in p.finetunes)
    assert p.axes["finetune_epochs"] == 3 and p.axes["epochs"] == 2  # the tiny recipe's pre-training epochs


def test_the_same_pre_training_reached_twice_is_one_point():
    points = expand(parse_sweep({"base": {"preset": "tiny"}, "grid": [
        {"latent": ["vq", "scratch"], "seed": [0]},
        {"latent": ["vq"], "K": [64, 128]},  # K 128 is the default: the first grid's vq-seed0
        {"latent": ["scratch"], "label_fraction": [0.5]},  # scratch-seed0 again, one more fine-tune
    ]}))
    assert [p.name for p in points] == ["vq-seed0", "scratch-seed0", "vq-K64"]
    assert len(points[0].grids) == 2 and points[0].grids[1] == {"latent": "vq", "codebook_size": 128}
    assert points[1].pretrain is None and [f.tag for f in points[1].finetunes] == ["finetune-100pct", "finetune-50pct"]


@pytest.mark.parametrize("spec, message", [
    ({"grid": {"Mx": [0.4]}}, "unknown key 'Mx'"),
    ({"base": {"epoch": 3}}, "did you mean 'epochs'?"),
    ({"base": {"out": "x"}}, "unknown key 'out'"),
    ({"grid": {"seed": 0}}, "expects a non-empty list"),
    ({"grid": {"latent": ["vq"], "latent_dim": [8]}}, "do not apply to latent 'vq'"),
    ({"grid": {"latent": ["vae"], "Mt": [1.5]}}, "mask_frames must be in [0, 1)"),
    ({"grid": {"latent": ["gan"]}}, "latent must be one of none, vae, vq, scratch"),
    ({"grids": {}}, "unknown top-level key(s) grids"),
])
def test_bad_keys_and_values_are_refused_with_the_accepted_ones(spec, message):
    with pytest.raises(SweepError) as err:
        expand(parse_sweep({"base": {"preset": "tiny"}, **spec} if "base" not in spec else spec, "bad.yaml"))
    text = str(err.value)
    assert message in text and "bad.yaml" in text
    if "unknown key" in message:
        assert "accepted keys:" in text and "mask_frames" in text and "Mt" in text and "decoder_depth" in text


def test_overrides_replace_a_grid_axis_or_set_base(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("base: {preset: tiny, dataset: ntu60-xsub}\ngrid: {latent: [none, vae], seed: [0]}\n")
    sweep = load_sweep(path, ["seed=[3, 4]", "data_dir=/data/ntu", "latent=vq"])
    assert sweep.name == "s" and sweep.grids == [{"latent": ["vq"], "seed": [3, 4]}]
    assert sweep.base["data_dir"] == "/data/ntu"
    assert [p.name for p in expand(sweep)] == ["vq-seed3", "vq-seed4"]
    with pytest.raises(SweepError, match="expected KEY=VALUE"):
        load_sweep(path, ["seed"])


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_every_ready_sweep_file_expands(path):
    points = expand(load_sweep(path, {"data_dir": "/data/ntu"}))
    assert points and len({p.name for p in points}) == len(points)
    scale = "paper" if path.stem.endswith("_paper") else None
    if scale:
        assert all(p.axes["preset"] == "paper" for p in points)
        assert all(p.axes["epochs"] == 200 for p in points if p.pretrain is not None)


# ---- running ------------------------------------------------------------------------------------
def _mtimes(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()
            and p.name != "log.txt"}


def test_finished_points_are_skipped_on_a_re_run(tmp_path, monkeypatch, capsys):
    sweep = parse_sweep({"base": TINY, "grid": {"latent": ["none", "scratch"]}})
    out = tmp_path / "sweep"
    rows = run_sweep(sweep, out, verbose=False)
    assert [(r["point"], r["finetune"], r["status"]) for r in rows] == [
        ("none", "finetune-100pct", "done"), ("scratch", "finetune-100pct", "done")]
    assert all(0.0 <= r["top1"] <= 1.0 and r["error"] is None for r in rows)
    assert rows[0]["params"] > 0 and rows[0]["gflops"] > 0 and rows[1]["params"] is None
    before = _mtimes(out / "points")
    assert "none/pretrain/last.pt" in before and "scratch/finetune-100pct/last.pt" in before

    def boom(*args, **kwargs):
        raise AssertionError("a finished point was trained again")

    import skel.train.finetune
    import skel.train.pretrain

    # quiet: one line per point (name, status, top-1 per fine-tune, time); the rest in its log.txt
    printed = capsys.readouterr().out.splitlines()
    lines = [line for line in printed if line.startswith("[")]
    assert len(lines) == 2 and printed == [printed[0]] + lines  # the "sweep ... into" header, then the points
    for i, r in enumerate(rows, 1):
        assert lines[i - 1].startswith(f"[{i}/2] {r['point']}: done  top-1 100pct {100 * r['top1']:.1f} %  ")
        assert lines[i - 1].endswith(" s")
    log = (out / "points" / "none" / "log.txt").read_text()
    assert "pre-training none" in log and "fine-tuning none/finetune-100pct" in log and "epoch" in log

    monkeypatch.setattr(skel.train.pretrain, "run_pretrain", boom)
    monkeypatch.setattr(skel.train.finetune, "run_finetune", boom)
    again = run_sweep(sweep, out, verbose=False)
    assert f"[1/2] none: done, skipped  top-1 100pct {100 * rows[0]['top1']:.1f} %\n" in capsys.readouterr().out
    assert again == rows == load_results(out)
    assert _mtimes(out / "points") == before


def test_a_folder_with_only_results_json_is_read_from_it(tmp_path):
    # the small result files a sweep ships (notebooks/assets/sweeps/NAME/): no points/ folder
    rows = [_row("vq", s, 0.3 + 0.1 * s) for s in (0, 1)]
    (tmp_path / "results.json").write_text(json.dumps(rows))
    assert load_results(tmp_path) == rows
    assert table1(load_results(tmp_path)).cell(("vq",), "ntu60-xsub").mean == pytest.approx(35.0)
    (tmp_path / "results.json").write_text(json.dumps({"rows": rows}))
    with pytest.raises(SweepError, match="expected a list of result rows"):
        load_results(tmp_path)


def test_a_failing_point_is_recorded_and_the_others_complete(tmp_path, capsys):
    # one sample per class leaves none to carve a validation set from: that pre-training raises
    sweep = parse_sweep({"base": {k: v for k, v in TINY.items() if k != "dataset_options"},
                         "grid": {"dataset_options": [{"num_per_class": 1}, {"num_per_class": 2}]}}, "fail.yaml")
    out = tmp_path / "sweep"
    rows = run_sweep(sweep, out, verbose=False)
    bad, good = rows
    assert bad["point"].startswith("dataset_options") and bad["status"] == "failed"
    assert "ValueError" in bad["error"] and "validat" in bad["error"]
    assert "Traceback" in bad["traceback"] and "prepare_splits" in bad["traceback"]
    assert good["status"] == "done" and good["top1"] is not None and good["error"] is None
    state = json.loads((out / "points" / bad["point"] / "result.json").read_text())
    assert state["pretrain"]["status"] == "failed" and "ValueError" in state["pretrain"]["error"]
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 3 and ",failed," in csv_lines[1] and ",done," in csv_lines[2]
    # the command line: exit code 1 (a failure recorded), the good point skipped, the bad one retried
    cfg = tmp_path / "fail.yaml"
    cfg.write_text(json.dumps({"base": {k: v for k, v in TINY.items() if k != "dataset_options"},
                               "grid": {"dataset_options": [{"num_per_class": 1}, {"num_per_class": 2}]}}))
    bad_line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("[1/2]"))
    assert bad_line.startswith(f"[1/2] {bad['point']}: failed  top-1 100pct failed  pre-training: ValueError")
    assert cli_main(["sweep", str(cfg), "--out", str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert f"{good['point']}: done, skipped" in captured.out and "failed: " in captured.err


def test_an_interrupted_pre_training_is_resumed(tmp_path):
    from skel.train.pretrain import run_pretrain

    sweep = parse_sweep({"base": {**TINY, "epochs": 2}, "grid": {"latent": ["vae"]}})
    (point,) = expand(sweep)
    out = tmp_path / "sweep"
    # a run stopped after its first epoch leaves last.pt and no result
    partial = run_pretrain({**point.pretrain, "epochs": 1, "out": str(out / "points" / "vae" / "pretrain")})
    rows = run_sweep(sweep, out, verbose=False)
    state = json.loads((out / "points" / "vae" / "result.json").read_text())
    assert state["pretrain"]["resumed"] is True and state["pretrain"]["epochs"] == 2
    assert rows[0]["status"] == "done"
    metrics = json.loads((out / "points" / "vae" / "pretrain" / "metrics.json").read_text())
    history = metrics["epochs"]
    assert [r["epoch"] for r in history] == [1, 2]
    assert history[0]["train_loss"] == partial["epochs"][0]["train_loss"]
    # the latent's use is read back at the epoch of the checkpoint the fine-tune started from (best)
    best = metrics["best_epoch"]
    assert rows[0]["pretrain_epoch"] == best and rows[0]["latent_kl"] == history[best - 1]["val_kl"] > 0
    assert rows[0]["latent_perplexity"] is None and rows[0]["latent_codes"] is None  # no codebook in a VAE


def test_latent_use_is_read_at_the_fine_tuned_checkpoints_epoch(tmp_path):
    from skel.sweep.runner import latent_stats

    pre = tmp_path / "pretrain"
    pre.mkdir()
    epochs = [{"epoch": e, "val_perplexity": p, "val_used_codes": c} for e, p, c in ((1, 5.0, 9.0), (2, 1.5, 3.0))]
    (pre / "metrics.json").write_text(json.dumps({"best_epoch": 1, "epochs": epochs}))
    assert latent_stats(pre, "best") == {"pretrain_epoch": 1, "latent_kl": None, "latent_perplexity": 5.0,
                                         "latent_codes": 9.0}
    assert latent_stats(pre, "last")["latent_perplexity"] == 1.5
    assert latent_stats(tmp_path / "missing") == {}  # a pre-training that never wrote metrics
    (pre / "metrics.json").write_text(json.dumps({"best_epoch": 3, "epochs": epochs}))
    with pytest.raises(SweepError, match=r"metrics.json: no record of epoch 3 \(the best checkpoint's\)"):
        latent_stats(pre, "best")


def test_a_folder_made_with_other_settings_is_refused(tmp_path):
    out = tmp_path / "sweep"
    run_sweep(parse_sweep({"base": TINY, "grid": {"latent": ["scratch"]}}), out, verbose=False)
    with pytest.raises(SweepError, match=r"points/scratch was made with other settings \(.*window: 12 then, 24 now"):
        run_sweep(parse_sweep({"base": {**TINY, "window": 24}, "grid": {"latent": ["scratch"]}}), out, verbose=False)


def test_dry_run_lists_points_and_runs_nothing(tmp_path, capsys):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("name: demo\nbase: {preset: tiny}\ngrid: {latent: [vae, scratch], seed: [0, 1]}\n")
    assert cli_main(["sweep", str(cfg), "--out", str(tmp_path / "o"), "--dry-run", "--only", "vae-*"]) == 0
    out = capsys.readouterr().out
    assert "2 of 4 points" in out and "vae-seed1" in out and "scratch-seed0" not in out
    assert not (tmp_path / "o").exists()
    cfg.write_text("base: {preset: tiny, epoch: 3}\n")
    assert cli_main(["sweep", str(cfg), "--dry-run"]) == 2
    assert "did you mean 'epochs'?" in capsys.readouterr().err


# ---- tables -------------------------------------------------------------------------------------
def _row(latent, seed, top1, dataset="ntu60-xsub", fraction=1.0, status="done", grid=None, **axes):
    defaults = {"mask_frames": 0.4, "mask_joints": 0.4, "latent_dim": 25 if latent == "vae" else None,
                "codebook_size": 128 if latent == "vq" else None, "decoder_dim": 256, "decoder_depth": 9}
    point = f"{latent}-seed{seed}" + "".join(f"-{k}{v}" for k, v in (grid or {}).items() if k != "latent")
    return {"point": point, "finetune": f"finetune-{fraction * 100:g}pct", "status": status, "latent": latent,
            "dataset": dataset, "seed": seed, "label_fraction": fraction, **defaults, **axes,
            "top1": top1 if status == "done" else None, "top1_last": None if top1 is None else top1 - 0.01,
            "params": None, "gflops": None, "pretrain_time_s": None,
            "grids": [{"latent": latent, "seed": seed, **(grid or {})}]}


def test_table_builder_reproduces_a_hand_computed_table():
    rows = [_row("none", 0, 0.80), _row("none", 1, 0.82), _row("none", 2, 0.84),
            _row("vae", 0, 0.86), _row("vae", 1, 0.90), _row("vq", 0, 0.88), _row("vq", 1, None, status="failed"),
            _row("scratch", 0, 0.70),
            _row("vq", 0, 0.50, grid={"codebook_size": 32}, codebook_size=32, latent_perplexity=1.2),  # Table 5 only
            _row("none", 0, 0.60, fraction=0.1), _row("vae", 0, 0.65, fraction=0.1), _row("vae", 1, 0.63, fraction=0.1)]
    t1 = table1(rows)
    assert t1.rows == [("none",), ("vae",), ("vq",), ("scratch",)] and t1.columns == ["ntu60-xsub"]
    c = t1.cell("none", "ntu60-xsub")
    assert c.values == pytest.approx([80.0, 82.0, 84.0]) and c.mean == pytest.approx(82.0)
    assert c.spread == pytest.approx(2.0)  # sqrt((4 + 0 + 4) / 2)
    assert c.paper == 86.6 and c.text() == "82.0 ± 2.0 [paper 86.6]"
    vae = t1.cell("vae", "ntu60-xsub")
    assert vae.mean == pytest.approx(88.0) and vae.spread == pytest.approx(math.sqrt(8.0))
    vq = t1.cell("vq", "ntu60-xsub")  # K 32 stays out; the failed seed is counted, not averaged
    assert vq.values == pytest.approx([88.0]) and vq.failed == 1 and vq.text() == "88.0 (1 failed) [paper 88.0]"
    assert t1.cell("scratch", "ntu60-xsub").text() == "70.0"
    md = t1.markdown()
    assert "| SkeletonMAE | 82.0 ± 2.0 [paper 86.6] |" in md and "| scratch | 70.0 |" in md
    # the last-epoch metric
    assert table1(rows, metric="last").cell("none", "ntu60-xsub").mean == pytest.approx(81.0)

    t2 = table2(rows)
    col = ("ntu60-xsub", 0.1)
    assert t2.columns == [col] and t2.column_labels[col] == "ntu60-xsub 10%"
    assert t2.cell("vae", col).mean == pytest.approx(64.0) and t2.cell("vae", col).note == "+4.0"
    assert t2.cell("vae", col).text() == "64.0 ± 1.4 (+4.0)"

    t5 = table5(rows)
    assert t5.rows == [(32,), (128,)] and t5.cell(32, "vq").mean == pytest.approx(50.0)
    assert t5.cell(128, "vq").paper == 88.0 and t5.cell(32, "vq").paper is None
    # the codebook's use beside the accuracy; only the K = 32 row recorded it (K = 128: one done seed
    # without it, one failed seed)
    assert t5.columns == ["vq", "latent_perplexity"] and t5.column_labels["latent_perplexity"] == "val codebook perplexity"
    assert t5.cell(32, "latent_perplexity").text() == "1.20" and t5.cell(128, "latent_perplexity").text() == "failed (1)"
    assert table3(rows) is None  # no mask rate was swept
    assert set(build_tables(rows)) == {1, 2, 5}


def test_mask_table_and_cost_table():
    rows = []
    for latent, base in (("vae", 0.8), ("vq", 0.7)):
        for i, (mt, mj) in enumerate(itertools.product([0.4, 0.6], [0.4, 0.8])):
            grid = {"mask_frames": mt, "mask_joints": mj}
            rows.append(_row(latent, 0, base + 0.01 * i, grid=grid, **grid))
    t3 = table3(rows)
    assert t3.row_header == ["model", "Mt"] and t3.columns == [0.4, 0.8, "mean"]
    assert t3.rows == [("vae", 0.4), ("vae", 0.6), ("vae", "mean"), ("vq", 0.4), ("vq", 0.6), ("vq", "mean")]
    assert t3.cell(("vq", 0.6), 0.8).mean == pytest.approx(73.0)
    assert t3.cell(("vae", 0.4), 0.4).paper == 88.4 and t3.cell(("vae", 0.6), 0.4).paper is None
    # margins, one seed: vq cells 70 71 / 72 73 (Mt rows x Mj columns)
    assert t3.cell(("vq", 0.4), "mean").values == pytest.approx([70.5])
    assert t3.cell(("vq", "mean"), 0.8).values == pytest.approx([72.0])
    assert t3.cell(("vq", "mean"), "mean").values == pytest.approx([71.5])
    note = t3.note.replace("SkeletonMVQVAE", "vq").replace("SkeletonMVAE", "vae")
    assert "vq seed 0: Mt 0.6 / Mj 0.8" in note and "vq: 4 of 4" in note  # 70 is the lowest of 70-73
    # two seeds, the second missing one cell: the margins that need it keep seed 0 only
    vq = [r for r in rows if r["latent"] == "vq"]
    seed1 = {(0.4, 0.4): 0.60, (0.4, 0.8): 0.66, (0.6, 0.4): 0.80}
    vq += [_row("vq", 1, v, grid={"mask_frames": mt, "mask_joints": mj}, mask_frames=mt, mask_joints=mj)
           for (mt, mj), v in seed1.items()]
    t3 = table3(vq)
    assert t3.cell(("vq", 0.4), "mean").values == pytest.approx([70.5, 63.0])  # seed 1: (60 + 66) / 2
    assert t3.cell(("vq", 0.6), "mean").values == pytest.approx([72.5])  # seed 1 lacks Mt 0.6 / Mj 0.8
    assert t3.cell(("vq", "mean"), 0.4).values == pytest.approx([71.0, 70.0])  # seed 1: (60 + 80) / 2
    m = t3.cell(("vq", "mean"), 0.4)
    assert m.text() == "70.5 ± 0.7"  # sqrt(0.5) = 0.707
    assert t3.cell(("vq", "mean"), "mean").values == pytest.approx([71.5])
    assert "seed 1" not in t3.note  # no best cell for an incomplete seed
    tied = [_row("vq", 0, 0.5, grid={"mask_frames": mt, "mask_joints": mj}, mask_frames=mt, mask_joints=mj)
            for mt, mj in itertools.product([0.4, 0.6], [0.4, 0.8])]
    assert "seed 0: 4 cells tied" in table3(tied).note and ": 1 of 4" in table3(tied).note
    assert "| mean | 70.5 ± 0.7 |" in t3.markdown()

    cost = [dict(_row(lat, s, 0.5), params=p, gflops=g, pretrain_time_s=t)
            for lat, p, g, ts in (("none", 1_000_000, 2.0, (10.0, 12.0)), ("vae", 1_500_000, 2.5, (20.0, 22.0)),
                                  ("vq", 900_000, 1.5, (8.0, 8.0)))
            for s, t in enumerate(ts)]
    t8 = table8(cost)
    assert t8.rows == [("none",), ("vae",), ("vq",)]
    assert t8.cell("vae", "delta_params_M").values == pytest.approx([0.5])
    assert t8.cell("vq", "delta_gflops").values == pytest.approx([-0.5])
    assert t8.cell("vae", "time_s").mean == pytest.approx(21.0) and t8.cell("vae", "delta_time_s").values == pytest.approx([10.0])
    assert t8.cell("vae", "paper_delta_params_M").values == [14.0] and t8.cell("none", "paper_delta_gflops").values == []


def test_figures_clip_error_bars_mark_chance_and_frame_the_papers_best_mask_cell():
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from skel.sweep.plots import chance_top1, error_bars, plot_mask_heatmap, plot_table
    from skel.sweep.tables import Cell

    s = Cell([1.0, 9.0]).spread  # 5.66 around a mean of 5: the lower bar stops at 0
    bars = error_bars([Cell([1.0, 9.0]), Cell([99.0, 91.0]), Cell([5.0]), Cell()], 0.0, 100.0)
    assert bars.ravel().tolist() == pytest.approx([5.0, s, 0.0, 0.0, s, 5.0, 0.0, 0.0])
    assert error_bars([Cell([1.0, 9.0])], None).ravel().tolist() == pytest.approx([s, s])
    assert chance_top1("msr-action3d") == 5.0 and chance_top1({"synthetic"}) == pytest.approx(100 / 12)
    assert chance_top1(["synthetic", "msr-action3d"]) is None and chance_top1("ntu120-xset") == pytest.approx(100 / 120)
    rows = [_row("vae", seed, 0.1 * (1 + seed + i), dataset="msr-action3d", grid=grid, **grid)
            for seed in (0, 1) for i, (mt, mj) in enumerate(itertools.product([0.4, 0.6], [0.4, 0.8]))
            for grid in [{"mask_frames": mt, "mask_joints": mj}]]
    fig = plot_mask_heatmap(table3(rows), chance=5.0)
    frames = [p for ax in fig.axes for p in ax.patches if isinstance(p, Rectangle)]
    assert len(frames) == 1 and frames[0].get_xy() == pytest.approx((-0.46, -0.46))  # row Mt 0.4, column Mj 0.4
    assert "red frame: the paper's best cell" in fig.texts[0].get_text()  # the suptitle promises it
    assert "chance 5.0" in fig.axes[1].get_ylabel()  # on the colour bar
    plt.close(fig)
    fig = plot_table(table1([_row("vae", seed, 0.02 + 0.1 * seed, dataset="msr-action3d") for seed in (0, 1)]),
                     chance=5.0)  # 2 and 12 %: mean 7, std 7.1, a bar from 0
    (line,) = [ln for ln in fig.axes[0].lines if ln.get_label().startswith("chance")]
    assert line.get_ydata()[0] == 5.0 and "clipped at 0" in fig.axes[0].get_title()
    plt.close(fig)


def test_a_cell_mixing_other_varied_keys_is_refused():
    rows = [_row("vae", 0, 0.8, grid={"lr": 0.001}), _row("vae", 0, 0.7, grid={"lr": 0.01})]
    with pytest.raises(SweepError, match="differ in lr; pick one with where="):
        table1(rows)
    assert table1(rows, where={"lr": 0.01}).cell("vae", "ntu60-xsub").mean == pytest.approx(70.0)


def test_sweeps_sharing_a_folder_share_their_runs(tmp_path, monkeypatch):
    out = tmp_path / "shared"
    first = run_sweep(parse_sweep({"base": TINY, "grid": {"latent": ["scratch"], "seed": [0]}}), out, verbose=False)
    import skel.train.finetune

    def boom(*args, **kwargs):
        raise AssertionError("the run of another sweep in the same folder was trained again")

    monkeypatch.setattr(skel.train.finetune, "run_finetune", boom)
    # another file reaches the same run under another name (seed 0 by default): it is adopted, not redone
    second = run_sweep(parse_sweep({"base": TINY, "grid": {"latent": ["scratch"]}}), out, verbose=False)
    assert [r["point"] for r in second] == ["scratch-seed0"]
    assert [{**r, "grids": None} for r in second] == [{**r, "grids": None} for r in first]
    # the run now belongs to both sweeps' grids
    assert second[0]["grids"] == [{"latent": "scratch", "seed": 0}, {"latent": "scratch"}]
    assert sorted(p.name for p in (out / "points").iterdir()) == ["scratch-seed0"]


def test_a_point_adopted_from_another_table_fills_this_tables_cell(tmp_path):
    # Table 5's K = 128 run is Table 3's Mt = Mj = 0.4 cell (both defaults): run Table 5 first, then
    # Table 3 in the same folder; the adopted run must count in Table 3 (it did not before)
    out = tmp_path / "shared"
    t5 = parse_sweep({"base": TINY, "grid": {"latent": ["vq"], "K": [128, 16]}})
    run_sweep(t5, out, verbose=False)
    t3 = parse_sweep({"base": TINY, "grid": {"latent": ["vq"], "Mt": [0.4, 0.6], "Mj": [0.4]}})
    rows = run_sweep(t3, out, verbose=False)
    assert len({r["point"] for r in rows}) == 3  # K128 (adopted), Mt0.6, K16
    t = table3(rows)
    assert t.cell(("vq", 0.4), 0.4).values and t.cell(("vq", 0.6), 0.4).values
    assert table5(rows).cell(128, "vq").values and table5(rows).cell(16, "vq").values


def test_points_are_dealt_round_robin_to_workers():
    from skel.sweep.runner import partition

    points = expand(parse_sweep({"base": TINY, "grid": {"latent": ["none", "vae", "scratch"], "seed": [0, 1]}}))
    names = [p.name for p in points]
    groups = partition(points, 2)
    assert groups == [names[0::2], names[1::2]]
    assert sorted(n for g in groups for n in g) == sorted(names)  # each point to exactly one worker
    assert partition(points[:1], 4) == [[names[0]]]  # no idle workers
    with pytest.raises(SweepError, match="--workers 0"):
        partition(points, 0)


def test_two_workers_run_disjoint_points_and_one_results_file(tmp_path):
    import yaml

    cfg = tmp_path / "two.yaml"
    cfg.write_text(yaml.safe_dump({"name": "two", "base": TINY, "grid": {"latent": ["scratch"], "seed": [0, 1]}}))
    out = tmp_path / "o"
    assert cli_main(["sweep", str(cfg), "--out", str(out), "--quiet", "--workers", "2"]) == 0
    rows = json.loads((out / "results.json").read_text())
    assert sorted((r["point"], r["status"]) for r in rows) == [("scratch-seed0", "done"), ("scratch-seed1", "done")]
    # each child ran its own point only, and the rows equal a single process's reading of the folder
    logs = [(out / f"worker-{k}.log").read_text() for k in (0, 1)]
    assert "1 points into" in logs[0] and "[1/1] scratch-seed0: done" in logs[0]
    assert "1 points into" in logs[1] and "[1/1] scratch-seed1: done" in logs[1]
    assert rows == json.loads(json.dumps(load_results(out)))


def test_resumed_parallel_sweep_deals_only_the_unfinished_points(tmp_path, capsys):
    import yaml

    cfg = tmp_path / "three.yaml"
    cfg.write_text(yaml.safe_dump({"name": "three", "base": TINY, "grid": {"latent": ["scratch"], "seed": [0, 1]}}))
    out = tmp_path / "o"
    assert cli_main(["sweep", str(cfg), "--out", str(out), "--quiet", "--workers", "2"]) == 0
    capsys.readouterr()
    # one more seed: the two finished points are skipped by the parent, the new one goes to one
    # worker (round-robin over all three would have handed worker 1 a finished point only)
    assert cli_main(["sweep", str(cfg), "--out", str(out), "--quiet", "--workers", "2",
                     "--set", "seed=[0, 1, 2]"]) == 0
    printed = capsys.readouterr().out
    assert "2 of 3 points done, skipped" in printed
    assert "worker 0: 1 points (scratch-seed2)" in printed and "worker 1:" not in printed
    rows = json.loads((out / "results.json").read_text())
    assert sorted((r["point"], r["status"]) for r in rows) == [(f"scratch-seed{s}", "done") for s in range(3)]


def test_frame_mask_rates_that_round_to_one_tuple_count_are_flagged():
    from skel.sweep import mask_collisions

    short = expand(parse_sweep({"base": {**TINY, "window": 24}, "grid": {"latent": ["vq"], "Mt": [0.4, 0.5, 0.6]}}))
    (warning,) = mask_collisions(short)  # 4 tuples: round(2.4) = round(2.0) = round(1.6) = 2 kept
    assert "Mt 0.4, 0.5, 0.6 all keep 12 of 24 frames" in warning and "window 36 tells them apart" in warning
    longer = expand(parse_sweep({"base": {**TINY, "window": 36}, "grid": {"latent": ["vq"], "Mt": [0.4, 0.5, 0.6]}}))
    assert mask_collisions(longer) == []  # 6 tuples: 4, 3, 2 kept


def test_each_row_records_the_epochs_its_own_fine_tune_ran():
    from skel.sweep.runner import result_rows

    # a point fine-tuned by two calls: all labels for 8 epochs, then 10 % for 30 (--set finetune_epochs=30)
    state = {"name": "p", "latent": "none", "axes": {"finetune_epochs": 30, "seed": 0},
             "pretrain": {"status": "done"},
             "finetunes": {"finetune-100pct": {"status": "done", "label_fraction": 1.0, "identity": {"epochs": 8}},
                           "finetune-10pct": {"status": "done", "label_fraction": 0.1, "identity": {"epochs": 30}}}}
    rows = {r["finetune"]: r for r in result_rows(state)}
    assert rows["finetune-100pct"]["finetune_epochs"] == 8
    assert rows["finetune-10pct"]["finetune_epochs"] == 30
    del state["finetunes"]["finetune-100pct"]["identity"]  # a state without identity keeps the point's value
    assert result_rows(state)[0]["finetune_epochs"] == 30
