import numpy as np
import pytest

from egomem_ros.store import StoreError, UnknownUserError
from egomem_ros.store.graph import export_graph, neighbourhood, social_graph
from egomem_ros.store.schema import SCHEMA_VERSION


@pytest.fixture
def store(any_store):
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_store


def test_schema_version_and_pragmas(tmp_path):
    from egomem_ros.store import SqliteStore

    store = SqliteStore(tmp_path / "memory.db")
    assert store._q("PRAGMA user_version")[0][0] == SCHEMA_VERSION
    assert store._q("PRAGMA journal_mode")[0][0] == "wal"
    assert store._q("PRAGMA foreign_keys")[0][0] == 1


def test_user_ids_are_short_and_unique(store):
    ids = {store.create_user().id for _ in range(50)}
    assert len(ids) == 50 and all(len(i) == 5 and i.isalpha() for i in ids)


def test_supersede_keeps_history(store):
    u = store.create_user("Emily")
    old = store.add_fact(u.id, "fact", "works at Acme")
    new = store.supersede_fact(old.id, "works at Globex")
    assert [f.text for f in store.facts(u.id)] == ["works at Globex"]
    history = {f.id: f for f in store.facts(u.id, include_invalid=True)}
    assert history[old.id].superseded_by == new.id and history[old.id].invalid_at is not None
    with pytest.raises(StoreError):
        store.supersede_fact(old.id, "again")
    inv = store.invalidate_fact(new.id)
    assert not inv.valid and store.facts(u.id) == []
    ops = [(a.op, a.item_id) for a in store.audit(u.id)]
    assert ("UPDATE", old.id) in ops and ("INVALIDATE", new.id) in ops


def test_relation_adds_inverse_from_lexicon(store):
    emily, john, anna = store.create_user("Emily"), store.create_user("John"), store.create_user("Anna", placeholder=True)
    store.add_relation(emily.id, john.id, "coworker")
    store.add_relation(emily.id, anna.id, "Mum")
    edges = {(r.src, r.dst, r.relation) for r in store.relations()}
    assert edges == {(emily.id, john.id, "colleague"), (john.id, emily.id, "colleague"),
                     (emily.id, anna.id, "mother"), (anna.id, emily.id, "child")}
    store.add_relation(emily.id, john.id, "colleague")  # idempotent
    assert len(store.relations()) == 4


def test_graph_neighbourhood_and_export(store, tmp_path):
    a, b, c = (store.create_user(n) for n in ("A", "B", "C"))
    store.add_relation(a.id, b.id, "friend")
    store.add_relation(b.id, c.id, "mother")
    g = social_graph(store)
    assert set(neighbourhood(g, a.id, 1)) == {b.id}
    assert neighbourhood(g, a.id, 2)[c.id] == [["friend", "mother"]]
    assert a.id not in neighbourhood(g, a.id, 3)
    assert export_graph(g, tmp_path / "g.json", "json").read_text().count(a.id) >= 1
    assert "<graphml" in export_graph(g, tmp_path / "g.graphml", "graphml").read_text()


def test_merge_placeholder_moves_facts_edges_and_keeps_audit(store):
    emily = store.create_user("Emily")
    anna_ph = store.create_user("Anna", placeholder=True)
    store.add_relation(emily.id, anna_ph.id, "mother")
    store.add_fact(anna_ph.id, "preference", "likes gardening")
    anna = store.create_user(None)
    store.add_key(anna.id, "face", "dlib", np.ones(128))
    store.merge_users(anna.id, anna_ph.id)
    with pytest.raises(UnknownUserError):
        store.get_user(anna_ph.id)
    assert store.get_user(anna.id).name == "Anna"
    assert [f.text for f in store.facts(anna.id)] == ["likes gardening"]
    assert {(r.src, r.dst, r.relation) for r in store.relations()} == {(emily.id, anna.id, "mother"),
                                                                       (anna.id, emily.id, "child")}
    assert any(a.op == "MERGE" and a.item_id == anna_ph.id for a in store.audit())
    # the placeholder's history stays, as the person's (so that forgetting her erases it too)
    assert any(a.user_id == anna.id and a.detail == "likes gardening" for a in store.audit())


def test_keys_refuse_mixed_models_and_bad_values(store):
    u = store.create_user("X")
    store.add_key(u.id, "voice", "resemblyzer", np.random.rand(256))
    with pytest.raises(StoreError, match="refusing a key"):
        store.add_key(u.id, "voice", "ecapa", np.random.rand(192))
    with pytest.raises(StoreError, match="NaN"):
        store.add_key(u.id, "voice", "resemblyzer", np.full(256, np.nan))
    assert len(store.keys("voice", "resemblyzer")) == 1
    with pytest.raises(UnknownUserError):
        store.add_key("nobody", "face", "dlib", np.ones(128))


def test_transaction_rolls_back_whole_session(store):
    u = store.create_user("Emily")
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.add_fact(u.id, "fact", "one")
            store.add_fact(u.id, "fact", "two")
            raise RuntimeError("extractor crashed mid-session")
    assert store.facts(u.id) == []


def test_bad_inputs(store):
    u = store.create_user("Emily")
    with pytest.raises(StoreError):
        store.add_fact(u.id, "gossip", "x")
    with pytest.raises(StoreError):
        store.add_fact(u.id, "fact", "   ")
    with pytest.raises(StoreError):
        store.add_relation(u.id, u.id, "friend")
    store.create_user("Emily")
    with pytest.raises(StoreError, match="ambiguous"):
        store.find_user("emily")


def test_missing_directory_is_clear(tmp_path):
    from egomem_ros.store import SqliteStore

    with pytest.raises(StoreError, match="does not exist"):
        SqliteStore(tmp_path / "no" / "such" / "memory.db")
