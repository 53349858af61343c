"""The `egomem` command line: the whole pipeline without ROS."""
from __future__ import annotations

import errno
import sys

import typer
from rich.markup import escape

from ..errors import EgomemError
from . import demo_cmd, dialog_cmds, eval_cmds, identity_cmds, make_cmds, memory_cmds, replay_cmd, report_cmd, train_cmds
from .common import err_console

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="egomem: lifelong memory of the people around a robot (EgoMem), without ROS.")
memory_cmds.register(app)
demo_cmd.register(app)
dialog_cmds.register(app)
eval_cmds.register(app)
identity_cmds.register(app)
make_cmds.register(app)
train_cmds.register(app)
replay_cmd.register(app)
report_cmd.register(app)


def main() -> None:
    """The console script: a missing model file, a bad config or a store fault found while a command wires
    its pipeline is the user's to fix, so it is said in one line (exit 2), not as a traceback."""
    from ..procs import private_files

    private_files()
    try:
        app()
    except (FileNotFoundError, EgomemError) as err:
        err_console.print(f"[bold red]error:[/] {err}", markup=True, highlight=False)
        sys.exit(2)
    except OSError as err:
        if err.errno not in USER_PATH_ERRORS:
            raise
        name = f"{err.filename}: " if err.filename else ""
        err_console.print(f"[bold red]error:[/] {escape(name + str(err.strerror))}", highlight=False)
        sys.exit(2)


# a path the user gave that the system refuses: theirs to fix (a name over 255 bytes, a read-only place...)
USER_PATH_ERRORS = frozenset({errno.ENAMETOOLONG, errno.EACCES, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.ENOSPC})


if __name__ == "__main__":
    main()
