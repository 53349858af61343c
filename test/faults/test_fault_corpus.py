"""The fault corpus (issue #40): every case of `cases_input.py` and `cases_memory.py`, run as a user would
run it, `egomem` in a fresh process. Each must exit as it should (2 for bad input, 3 for sessions that
wait, 0 where the command goes on past the fault), say why in words a user can act on, print no
traceback, and lose nothing."""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import cases_input  # noqa: F401  (registers its cases)
import cases_memory  # noqa: F401
from conftest import PG_URL, with_database
from faultkit import CASES, BadLLM, problems, run_step


class FolderKit:
    """What a case builder gets: its own folder, bad LLM endpoints, PostgreSQL databases."""

    def __init__(self, folder: Path):
        self.dir, self.servers, self.databases = folder, [], []

    def llm(self, answers: list[tuple[int, str, float]]) -> str:
        server = BadLLM(answers)
        self.servers.append(server)
        return server.url

    def pg(self) -> str:
        """A new database on the throw-away server (scripts/test.sh starts one); skips where none runs."""
        if not PG_URL:
            pytest.skip("no PostgreSQL server: EGOMEM_PG_URL is unset (scripts/test.sh starts one)")
        import secrets

        import psycopg

        name = "fault_" + secrets.token_hex(6)
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        self.databases.append(name)
        return with_database(PG_URL, name)

    def close(self) -> None:
        for server in self.servers:
            server.close()
        if self.databases:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as admin:
                for name in self.databases:
                    admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.parametrize("name", sorted(CASES))
def test_fault_case(name: str, tmp_path: Path) -> None:
    kit = FolderKit(tmp_path)
    try:
        c = CASES[name](kit)
        with c.during() if c.during else contextlib.nullcontext():
            for step in c.steps:
                step.argv = [str(a) for a in step.argv]
                step.env.setdefault("XDG_DATA_HOME", str(tmp_path / "xdg"))   # a PostgreSQL memory's spool
            if c.together:
                with ThreadPoolExecutor(len(c.steps)) as pool:
                    outcomes = list(pool.map(lambda s: run_step(s, tmp_path), c.steps))
            else:
                outcomes = [run_step(s, tmp_path) for s in c.steps]
        found = [f"`egomem {' '.join(o.step.argv)[:120]}`: {p}" for o in outcomes for p in problems(o)]
        found += [f"lost: {what}" for what in c.lost()]
        shown = "\n\n".join(f"$ egomem {' '.join(o.step.argv)[:300]}\n(exit {o.returncode}, {o.seconds:.1f} s)\n"
                            f"{o.out[-3000:]}" for o in outcomes)
        assert not found, "\n".join(found) + "\n\n" + shown
    finally:
        kit.close()
