"""The `egomem` memory commands, run as a user would (subprocess, real exit codes)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from egomem_ros.store import SqliteStore


def egomem(*args, input=None):
    return subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", *map(str, args)],
                          capture_output=True, text=True, input=input)


def test_users_on_empty_store(tmp_path):
    SqliteStore(tmp_path / "m.db").close()
    r = egomem("users", "--db", tmp_path / "m.db")
    assert r.returncode == 0, r.stderr
    assert "Users in" in r.stdout and "id" in r.stdout


def test_mistyped_db_is_an_error_not_a_new_memory(tmp_path):
    for cmd in ("users", "forget", "graph"):
        args = {"users": [], "forget": ["Emily", "--yes"], "graph": ["--out", tmp_path / "g.json"]}[cmd]
        r = egomem(cmd, *args, "--db", tmp_path / "mmeory.db")
        assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "mmeory.db").exists()


def test_users_missing_parent_is_clear(tmp_path):
    r = egomem("users", "--db", tmp_path / "missing" / "m.db")
    assert r.returncode != 0
    assert "does not exist" in r.stderr


def test_bad_config_is_clear(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("identity: {poll_period_s: fast}\n")
    r = egomem("users", "--db", tmp_path / "m.db", "--config", cfg)
    assert r.returncode == 2 and "identity.poll_period_s" in r.stderr


@pytest.fixture
def populated(tmp_path):
    db = tmp_path / "m.db"
    s = SqliteStore(db)
    emily, john = s.create_user("Emily"), s.create_user("John")
    s.add_key(emily.id, "face", "dlib", np.ones(128))
    old = s.add_fact(emily.id, "fact", "works at Acme")
    s.supersede_fact(old.id, "works at Globex")
    s.add_fact(emily.id, "preference", "loves jazz")
    s.add_relation(emily.id, john.id, "colleague")
    s.close()
    return db, emily, john


def test_show_profile_with_history(populated):
    db, emily, _ = populated
    r = egomem("show", "Emily", "--db", db)
    assert r.returncode == 0, r.stderr
    for needle in ("works at Globex", "works at Acme", "superseded by", "loves jazz", "John is Emily's colleague",
                   "Level-1 MemChunk"):
        assert needle in r.stdout
    r = egomem("show", "Nobody", "--db", db)
    assert r.returncode == 2 and "unknown user" in r.stderr


def test_forget_asks_and_yes_skips(populated):
    db, emily, john = populated
    r = egomem("forget", emily.id, "--db", db, input="n\n")
    assert r.returncode != 0
    assert SqliteStore(db).get_user(emily.id)
    r = egomem("forget", emily.id, "--db", db, "--yes")
    assert r.returncode == 0, r.stderr
    assert [u.id for u in SqliteStore(db).list_users()] == [john.id]


def test_graph_export(populated, tmp_path):
    db, emily, john = populated
    out = tmp_path / "g.json"
    r = egomem("graph", "--db", db, "--format", "json", "--out", out)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert {n["id"] for n in data["nodes"]} == {emily.id, john.id} and len(data["links"]) == 2
    r = egomem("graph", "--db", db, "--format", "dot", "--out", out)
    assert r.returncode == 2 and "json or graphml" in r.stderr


def test_show_json_lists_items_with_their_episode_and_history(populated):
    db, emily, _ = populated
    r = egomem("show", "Emily", "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)
    texts = {i["text"]: i for i in p["items"]}
    assert texts["works at Acme"]["superseded_by"] == texts["works at Globex"]["id"]
    assert texts["works at Globex"]["valid"] and set(texts["loves jazz"]) >= {"episode", "episode_start", "valid_from"}
    assert "works at Globex" in p["level1"]["text"] and "works at Acme" not in p["level1"]["text"]


def test_recall_prints_the_level2_chunk_a_retr_gets(populated):
    db, emily, john = populated
    s = SqliteStore(db)
    s.add_fact(john.id, "preference", "loves tennis")
    s.close()
    r = egomem("recall", "Emily", "--relation", "colleague", "tennis", "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["items"][0]["person"] == "John" and got["items"][0]["text"] == "loves tennis"
    assert "John (your colleague): loves tennis" in got["text"]
    r = egomem("recall", "Emily", "--db", db)
    assert r.returncode == 2 and "give keywords" in r.stderr and "Traceback" not in r.stderr


def test_show_prints_what_was_said_as_text_not_markup(tmp_path):
    """A fact that holds "[forgotten]" (after a forget) or any bracketed words prints as stored."""
    import os
    import subprocess
    import sys

    from egomem_ros.store import SqliteStore

    db = tmp_path / "m.db"
    with SqliteStore(db) as store:
        sarah = store.create_user("Sarah [the one from work]")
        store.add_fact(sarah.id, "fact", "[forgotten] is their colleague")
    r = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", "show", sarah.id, "--db", str(db)],
                       capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"})   # no cell wraps
    assert r.returncode == 0, r.stderr[-2000:]
    flat = " ".join(r.stdout.split())
    # once in the items table, once in the Level-1 chunk
    assert flat.count("[forgotten] is their colleague") == 2 and "Sarah [the one from work]" in flat


def test_set_visibility_and_forget_about_from_the_command_line(tmp_path):
    db = tmp_path / "m.db"
    with SqliteStore(db) as store:
        emily, tom = store.create_user("Emily").id, store.create_user("Tom").id
        store.add_relation(emily, tom, "brother")
        job = store.add_fact(emily, "fact", "is looking for a new job").id
        store.add_fact(emily, "fact", "works as a nurse")
    r = egomem("set-visibility", "Emily", job, "shared", "--hide-from", "Tom", "--db", db)
    assert r.returncode == 0 and "shared, not Tom" in r.stdout, r.stderr
    shown = json.loads(egomem("show", "Emily", "--json", "--db", db).stdout)
    assert {i["text"]: i["hidden_from"] for i in shown["items"]}["is looking for a new job"] == ["Tom"]
    assert "not Tom" in egomem("show", "Emily", "--db", db).stdout
    for bad in (["Emily", job, "secret"], ["Emily", "f0000000000", "private"], ["Nobody", job, "private"]):
        r = egomem("set-visibility", *bad, "--db", db)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (bad, r.stderr)
    r = egomem("forget", "Emily", "--about", "the", "--yes", "--db", db)
    assert r.returncode == 2 and "name what it was about" in r.stderr, r.stderr
    r = egomem("forget", "Emily", "--about", "the new job", "--yes", "--db", db)
    assert r.returncode == 0 and "1 item(s)" in r.stdout, r.stderr
    with SqliteStore(db) as store:
        assert [f.text for f in store.facts(emily, include_invalid=True)] == ["works as a nurse"]
        assert store.get_user(tom).name == "Tom"
    assert b"new job" not in b"".join(p.read_bytes() for p in tmp_path.glob("m.db*"))
