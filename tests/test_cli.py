"""The ``na64`` command: every stage is reachable and loads only its own module."""

import subprocess
import sys

import pytest

from recon.cli import STAGE_COMMANDS, build_parser


@pytest.mark.parametrize("command", sorted(STAGE_COMMANDS))
def test_each_command_registers_under_its_name(command):
    parser = build_parser(command)
    choices = parser._subparsers._group_actions[0].choices  # the subcommands registered
    assert command in choices


def test_full_help_lists_every_stage_and_the_simulation(capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    for command in [*STAGE_COMMANDS, "simulate"]:
        assert command in text


def test_a_stage_does_not_import_the_other_stages():
    code = (
        "import sys; from recon.cli import build_parser; build_parser('merge');"
        "print(sorted(m for m in sys.modules if m.startswith('recon.commands.')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout  # fmt: skip
    assert "recon.commands.merge" in loaded
    assert "recon.commands.calo" not in loaded and "recon.commands.limit" not in loaded
