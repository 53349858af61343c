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
        split = []
        for line in shown:   # "egomem a ... && egomem b ...": two commands
            first, *rest = re.split(r"&&|;|\|", line)
            split += [first] + [re.sub(r"^(?:\.venv/bin/)?egomem ", "", r.strip()) for r in rest
                                if re.match(r"(?:\.venv/bin/)?egomem ", r.strip())]
        for line in split:
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


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc, target", [(d, t) for d, t in _relative_links() if "#" in t] +
                         [(d, t) for d in DOCS for t in LINK.findall(d.read_text(encoding="utf-8")) if t.startswith("#")],
                         ids=lambda x: str(x)[-40:])
def test_link_anchor_is_a_heading(doc, target):
    path, anchor = target.split("#", 1)
    page = (doc.parent / path).resolve() if path else doc
    headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.M)
    assert anchor in {_slug(h) for h in headings}, f"{doc.relative_to(REPO)}: no heading for {target}"


def _scripts_shown() -> set[str]:
    found = set()
    for doc in DOCS:
        found |= set(re.findall(r"(?:python|bash) ((?:bench|scripts)/[\w./-]+\.(?:py|sh))", doc.read_text(encoding="utf-8")))
    return found


@pytest.mark.parametrize("script", sorted(_scripts_shown()))
def test_documented_script_exists(script):
    assert (REPO / script).is_file(), f"the docs run {script}, which does not exist"


def test_results_page_is_what_the_stored_measurements_render():
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_results.py"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
