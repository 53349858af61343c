"""The `egomem` command line: the whole pipeline without ROS."""
from __future__ import annotations

import typer

from . import (demo_cmd, dialog_cmds, eval_cmds, finetune_cmds, identity_cmds, memory_cmds, memory_mgmt_cmds,
               replay_cmd, report_cmd)

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="egomem: lifelong memory of the people around a robot (EgoMem), without ROS.")
memory_cmds.register(app)
demo_cmd.register(app)
dialog_cmds.register(app)
eval_cmds.register(app)
identity_cmds.register(app)
memory_mgmt_cmds.register(app)
finetune_cmds.register(app)
replay_cmd.register(app)
report_cmd.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
