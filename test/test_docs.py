"""The docs describe the code as it is: links resolve, every `egomem` command shown exists."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _relative_links():
    for doc in DOCS:
        for target in LINK.findall(doc.read_text(encoding="utf-8")):
            if not re.match(r"[a-z]+:", target) and not target.startswith("#"):
                yield doc, target


@pytest.mark.parametrize("doc, target", list(_relative_links()), ids=lambda x: str(x)[-40:])
def test_relative_link_resolves(doc, target):
    path = (doc.parent / target.split("#")[0]).resolve()
    assert path.exists(), f"{doc.relative_to(REPO)}: link to {target} does not resolve"


def _commands() -> set[tuple[str, ...]]:
    """The subcommand path of every `egomem ...` line in a code block or inline code."""
    from egomem_ros.cli.main import app
    import typer.main

    click_app = typer.main.get_command(app)
    found = set()
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        shown = re.findall(r"`egomem ([^`]+)`", text)
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
            shown += re.findall(r"^\s*(?:\$ )?(?:\.venv/bin/)?egomem ([^\n]+)", block, re.M)
        for line in shown:
            words = re.findall(r"^(?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?", line)[0].split() if re.match(r"[a-z]", line) else []
            if not words:
                continue
            group = click_app
            path = []
            for w in words:
                cmd = getattr(group, "commands", {}).get(w)
                if cmd is None:
                    break
                path.append(w)
                group = cmd
            key = tuple(path) if path else (words[0],)
            found.add(key)
            if path and hasattr(group, "params"):
                known = {o for p in group.params for o in p.opts + p.secondary_opts} | {"--help"}
                for option in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", line):
                    if option not in known:
                        UNKNOWN_OPTIONS.append(f"{doc.relative_to(REPO)}: egomem {' '.join(path)} {option}")
    return found


UNKNOWN_OPTIONS: list[str] = []


@pytest.mark.parametrize("command", sorted(_commands()), ids=" ".join)
def test_documented_command_exists(command):
    out = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", *command, "--help"], capture_output=True, text=True)
    assert out.returncode == 0, f"`egomem {' '.join(command)}` is in the docs but does not parse: {out.stderr[-500:]}"


def test_documented_options_exist():
    UNKNOWN_OPTIONS.clear()
    _commands()
    assert not UNKNOWN_OPTIONS, "options shown in the docs that the command does not have: " + "; ".join(UNKNOWN_OPTIONS)
