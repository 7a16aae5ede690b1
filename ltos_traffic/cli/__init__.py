"""The ``ltos-traffic`` command line: the group, the entry point, one module per command.

Every command turns bad input into one line ``error: ...`` and exit code 2;
SUMO failures into one line and exit code 1; never a traceback.
"""

from __future__ import annotations

import os
import sys

import click

from ltos_traffic.errors import SimulationError, UserError
from ltos_traffic.version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ltos-traffic")
def cli() -> None:
    """Adaptive traffic-signal control on SUMO: LToS and baselines."""


def main() -> None:
    """Console entry point: map errors to one line and an exit code."""
    # Small per-step networks run fastest on one thread; more threads spin against SUMO and
    # against parallel workers (tens of times slower on 2 cores). LTOS_TORCH_THREADS overrides.
    threads = os.environ.get("LTOS_TORCH_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", threads)
    if "torch" in sys.modules:  # already imported by a command module
        sys.modules["torch"].set_num_threads(int(threads))
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except SimulationError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


def _register_commands() -> None:
    """Each command lives in its own module; their shared options are in :mod:`.options`."""
    from ltos_traffic.cli.cityflow import import_cityflow_cmd
    from ltos_traffic.cli.data import data_cmd
    from ltos_traffic.cli.gui import gui_cmd
    from ltos_traffic.cli.report import compare_cmd, report_cmd
    from ltos_traffic.cli.run import list_cmd, run_cmd
    from ltos_traffic.cli.sweep import sweep_cmd
    from ltos_traffic.cli.train import train_cmd

    commands = (list_cmd, run_cmd, import_cityflow_cmd, data_cmd, train_cmd, compare_cmd,
                report_cmd, gui_cmd, sweep_cmd)  # fmt: skip
    for cmd in commands:
        cli.add_command(cmd)


_register_commands()
