"""skel.report figures: one colour per model in every panel and figure, one legend per figure."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from skel.report import model_color, plot_accuracy_bars, plot_curves  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _history(recon: float, **extra: float) -> list[dict]:
    return [{"epoch": e, "val_recon": recon / e, **{k: v / e for k, v in extra.items()}} for e in (1, 2, 3)]


def _lines_by_label(ax) -> dict[str, object]:
    return {line.get_label(): line for line in ax.get_lines()}


def test_a_curve_only_one_model_has_keeps_that_models_colour_and_one_legend_names_all():
    # Only SkeletonMVAE has a KL curve; it is not the first model, so a per-panel colour cycle
    # would draw it in the first model's colour.
    histories = {"none": _history(1.0), "vae": _history(1.1, train_kl=0.5), "vq": _history(1.2)}
    fig = plot_curves(histories, ["val_recon", "train_kl"])
    recon_ax, kl_ax = fig.axes
    recon, kl = _lines_by_label(recon_ax), _lines_by_label(kl_ax)
    assert sorted(recon) == ["SkeletonMAE", "SkeletonMVAE", "SkeletonMVQVAE"]
    assert list(kl) == ["SkeletonMVAE"]
    assert to_rgba(kl["SkeletonMVAE"].get_color()) == to_rgba(recon["SkeletonMVAE"].get_color())
    assert to_rgba(kl["SkeletonMVAE"].get_color()) != to_rgba(recon["SkeletonMAE"].get_color())
    # the three models have three colours, their fixed ones
    assert len({to_rgba(line.get_color()) for line in recon.values()}) == 3
    for key, name in (("none", "SkeletonMAE"), ("vae", "SkeletonMVAE"), ("vq", "SkeletonMVQVAE")):
        assert to_rgba(recon[name].get_color()) == to_rgba(model_color(key))
    # one legend, on the figure, with every model exactly once, in its colour
    assert all(ax.get_legend() is None for ax in fig.axes)
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert sorted(texts) == ["SkeletonMAE", "SkeletonMVAE", "SkeletonMVQVAE"]
    for handle, text in zip(legend.legend_handles, texts):
        assert to_rgba(handle.get_color()) == to_rgba(recon[text].get_color())


def test_a_model_drawn_only_in_a_later_panel_is_in_the_legend_too():
    histories = {"vae": _history(1.0), "vq": _history(1.0, train_perplexity=3.0)}
    fig = plot_curves({"vae": histories["vae"], "vq": [{"epoch": 1, "train_perplexity": 2.0}]},
                      ["val_recon", "train_perplexity"])
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["SkeletonMVAE", "SkeletonMVQVAE"]
    (line,) = fig.axes[1].get_lines()
    assert to_rgba(line.get_color()) == to_rgba(model_color("vq"))


def test_model_colours_are_the_same_in_every_figure():
    # the same model in another figure, with other companions, keeps its colour
    fig = plot_curves({"vq": _history(1.0), "scratch": _history(2.0)}, ["val_recon"])
    lines = _lines_by_label(fig.axes[0])
    assert to_rgba(lines["SkeletonMVQVAE"].get_color()) == to_rgba(model_color("vq"))
    assert to_rgba(lines["scratch"].get_color()) == to_rgba(model_color("scratch"))
    # the accuracy bars use the same colours
    finetune = [{"init": k, "label_fraction": f, "test_acc": 0.5} for k in ("vq", "scratch", "vae") for f in (1.0, 0.1)]
    fig = plot_accuracy_bars(finetune)
    for container in fig.axes[0].containers:
        key = {"SkeletonMVQVAE": "vq", "scratch": "scratch", "SkeletonMVAE": "vae"}[container.get_label()]
        assert all(to_rgba(p.get_facecolor()) == to_rgba(model_color(key)) for p in container.patches)
    # names and keys give one colour; unknown names get distinct, repeatable spare colours
    assert model_color("SkeletonMVAE") == model_color("vae")
    a = model_color("mine")
    assert a == model_color("mine") and a not in (model_color(k) for k in ("none", "vae", "vq", "scratch"))
    assert model_color("mine", taken=[a]) != a


def test_shipped_folder_finds_a_finished_run_or_says_why_not(tmp_path, capsys):
    from skel.report import shipped_folder
    from skel.utils import repo_root

    assert shipped_folder("") is None and capsys.readouterr().out == ""
    assert shipped_folder(str(tmp_path), "only this run") is None
    assert capsys.readouterr().out.strip() == (f"note: no shipped results in {tmp_path} "
                                               "(finetune/summary.json is missing): only this run")
    (tmp_path / "finetune").mkdir()
    (tmp_path / "finetune" / "summary.json").write_text("[]")
    assert shipped_folder(str(tmp_path)) == tmp_path
    assert shipped_folder("no_such_run") is None
    assert "notebooks/assets/no_such_run" in capsys.readouterr().out
    assert not (repo_root() / "notebooks" / "assets" / "no_such_run").exists()
