"""The command line: every command answers --help, unknown commands and options are refused."""

import pytest

from skel.cli import COMMANDS, main


def test_top_level_help_lists_every_command(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m skel {command}")


def test_unknown_command_is_refused_with_the_accepted_ones(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and "pretrain" in err


def test_unknown_option_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["inspect", "--dataset", "synthetic", "--no-such-option", "1"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err
