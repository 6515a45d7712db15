"""skel.notebook: one-call seeding, the comparison printer, parameter type checks."""

import pytest
import torch

from skel.notebook import check_parameters, cmp, setup


def test_setup_seeds_everything_and_returns_a_seeded_generator():
    g1 = setup(3, threads=1)
    a, b = torch.randn(4), torch.randn(4, generator=g1)
    g2 = setup(3, threads=1)
    assert torch.equal(a, torch.randn(4)) and torch.equal(b, torch.randn(4, generator=g2))
    assert torch.get_num_threads() == 1


def test_cmp_reports_exact_approx_and_bucketed_maxdiff(capsys):
    x = torch.linspace(0, 1, 5)
    cmp("same", x, x.clone())
    cmp("close", x, x + 3e-7)
    cmp("far", x, x + 0.5)
    cmp("ints", torch.arange(3), [0, 1, 3])
    cmp("shape", x, x[:4])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("exact: True  | approx: True  | maxdiff: 0")
    assert "exact: False | approx: True  | maxdiff: < 1e-06" in lines[1]
    assert "approx: False" in lines[2] and lines[2].endswith("maxdiff: 0.5")
    assert "exact: False | approx: False | maxdiff: 1" in lines[3]
    assert "shape mismatch: (5,) vs (4,)" in lines[4]


def test_check_parameters_accepts_declared_types_and_names_the_bad_one():
    hints = {"steps": int, "lr": float, "name": str, "betas": list[float], "flag": bool}
    check_parameters({"steps": 2, "lr": 1, "name": "x", "betas": [0.1, 2], "flag": True}, hints)
    with pytest.raises(TypeError, match="'betas': expected list\\[float\\], got str"):
        check_parameters({"betas": "[0.1, 1]"}, hints)
    with pytest.raises(TypeError, match="'steps': expected int, got bool"):
        check_parameters({"steps": True}, hints)
    with pytest.raises(TypeError, match="'lr'"):
        check_parameters({"lr": "1e-3"}, hints)


def test_check_marks_exercise_answers(capsys):
    from skel.notebook import check

    check("ex", None, 3)
    check("ex", (1, None), (1, 2))
    check("ex", 48, 48)
    check("ex", (0.0801, 0.016), (0.08, 0.016))  # floats within 1 %
    check("ex", 0.0808, 0.08)  # 1.0 % off: still within
    check("ex", 0.082, 0.08)  # 2.5 % off
    check("ex", 47, 48)  # integers exactly
    check("ex", 3.0, 3)  # an int expected accepts the equal float
    check("ex", {0.4, 0.5}, {0.4, 0.5, 0.6})
    check("ex", "56.0 ± 6.0", "56.0 ± 6.0")
    check("ex", (1, 2), (1, 2, 3))  # a missing item
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "ex: not answered yet", "ex: not answered yet", "ex: correct", "ex: correct", "ex: correct",
        "ex: not yet: expected 0.08, got 0.082", "ex: not yet: expected 48, got 47", "ex: correct",
        "ex: not yet: expected {0.4, 0.5, 0.6}, got {0.4, 0.5}", "ex: correct",
        "ex: not yet: expected 1, 2, 3, got 1, 2"]
