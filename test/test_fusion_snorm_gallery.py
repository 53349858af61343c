import numpy as np
import pytest

from egomem_ros.retrieval.fusion import KNOWN, NOBODY, UNKNOWN, SwitchHysteresis, distance_confidence, fuse
from egomem_ros.retrieval.gallery import KeyGallery
from egomem_ros.retrieval.snorm import AdaptiveSNorm, l2_normalise


def test_confidence_is_half_at_threshold():
    assert distance_confidence(0.6, 0.6) == pytest.approx(0.5)
    assert distance_confidence(0.3, 0.6) > 0.95 > 0.05 > distance_confidence(0.9, 0.6)


def test_fuse_decisions():
    assert fuse(None, None, 0.6).status == NOBODY
    assert fuse({"a": 0.95}, None, 0.6) .user_id == "a"
    assert fuse({}, None, 0.6).status == UNKNOWN
    d = fuse({"a": 0.95}, {"b": 0.9}, 0.6)
    assert d.status == KNOWN and d.user_id == "a"
    assert fuse({"a": 0.2}, {"a": 0.3}, 0.6).status == UNKNOWN
    assert fuse({"a": 0.6}, {"a": 0.9}, 0.5).confidence == pytest.approx(0.75)


def test_hysteresis_filters_one_bad_poll_but_follows_confident_switch():
    h = SwitchHysteresis(polls=2, instant_confidence=0.9)
    assert h.update("a", 0.95) and h.current == "a"          # confident: at once
    assert not h.update("b", 0.6) and h.current == "a"       # one doubtful poll: no flap
    assert not h.update("a", 0.95)
    assert not h.update("", 0.0) and h.update("", 0.0) and h.current == ""  # nobody needs 2 polls
    assert not h.update("b", 0.6) and h.update("b", 0.6) and h.current == "b"


def test_snorm_formula_and_exclusion():
    rng = np.random.default_rng(0)
    cohort = l2_normalise(rng.normal(size=(50, 16)))
    labels = ["x"] * 25 + [None] * 25
    sn = AdaptiveSNorm(cohort, labels, top_n=10)
    q, k = l2_normalise(rng.normal(size=16)), l2_normalise(rng.normal(size=16))
    s = float(k @ q)
    got = sn.normalise(q, k[None, :], ["x"])[0]
    free = cohort[25:]
    def stats(v):
        top = np.sort(free @ v)[-10:]
        return top.mean(), top.std()
    (mq, sq), (mk, sk) = stats(q), stats(k)
    assert got == pytest.approx(0.5 * ((s - mq) / sq + (s - mk) / sk), rel=1e-5)
    sn.forget_user("x")
    assert len(sn) == 25


def test_gallery_exact_and_incremental():
    g = KeyGallery(4, "euclidean")
    g.add([1, 2, 3], ["a", "a", "b"], np.eye(4)[:3])
    assert g.search(np.eye(4)[2], 1)[0].user_id == "b"
    assert set(g.best_per_user(np.eye(4)[0], 3)) == {"a", "b"}
    g.remove_user("b")
    assert g.users() == {"a"} and all(m.user_id == "a" for m in g.search(np.eye(4)[2], 5))
    with pytest.raises(ValueError, match="dimension"):
        g.add([9], ["c"], np.ones((1, 5)))
    with pytest.raises(ValueError, match="NaN"):
        g.add([9], ["c"], np.full((1, 4), np.nan))


def test_gallery_switches_to_hnsw_with_high_recall_on_clustered_data():
    rng = np.random.default_rng(1)
    users = 400
    centres = l2_normalise(rng.normal(size=(users, 64)))
    keys = l2_normalise(np.repeat(centres, 5, axis=0) + 0.15 * rng.normal(size=(users * 5, 64)))
    labels = np.repeat([f"u{i}" for i in range(users)], 5)
    exact = KeyGallery(64, "cosine", exact_max_keys=10**9)
    ann = KeyGallery(64, "cosine", exact_max_keys=1000)
    for g in (exact, ann):
        g.add(np.arange(len(keys)), labels, keys)
    assert ann.uses_ann and not exact.uses_ann
    queries = l2_normalise(centres + 0.15 * rng.normal(size=centres.shape))
    agree = np.mean([exact.search(q, 1)[0].key_id == ann.search(q, 1)[0].key_id for q in queries])
    assert agree >= 0.99
    ann.remove_user("u7")
    assert all(m.user_id != "u7" for m in ann.search(queries[7], 10))
    ann.add([10**6], ["new"], queries[7][None, :])
    assert ann.search(queries[7], 1)[0].user_id == "new"


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_gallery_ann_projects_keys_and_reranks_exactly(metric):
    """Above exact_max_keys the HNSW graph holds a PCA projection; the exact re-rank must return the
    exact search's keys with their exact full-dimension distances. Keys and queries sit at cos ~0.8
    from their identity's centre, as real face/voice embeddings do (not at near-noise levels)."""
    rng = np.random.default_rng(3)
    users = 600
    centres = l2_normalise(rng.normal(size=(users, 128)))
    keys = l2_normalise(np.repeat(centres, 3, axis=0) + 0.06 * rng.normal(size=(users * 3, 128)))
    labels = np.repeat([f"u{i}" for i in range(users)], 3)
    exact = KeyGallery(128, metric, exact_max_keys=10**9)
    ann = KeyGallery(128, metric, exact_max_keys=500, ann_dim=32, ann_candidates=32)
    for g in (exact, ann):
        g.add(np.arange(len(keys)), labels, keys)
    assert ann.uses_ann and ann._proj is not None and ann._proj[1].shape == (128, 32)
    queries = l2_normalise(centres + 0.06 * rng.normal(size=centres.shape))
    hits = 0
    for q in queries:
        got, want = ann.search(q, 3), exact.search(q, 3)
        hits += got[0].key_id == want[0].key_id
        for m in got:  # distances are the full-dimension ones, whatever the graph saw
            assert m.distance == pytest.approx(exact._distances(exact._prep(q)[0], np.array([m.key_id]))[0], abs=1e-5)
        assert [m.distance for m in got] == sorted(m.distance for m in got)
    assert hits / users >= 0.99
    ann.remove_user("u5")
    assert all(m.user_id != "u5" for m in ann.search(queries[5], 10))
    ann.add([10**6], ["late"], queries[5][None, :])  # projected with the build-time matrix
    assert ann.search(queries[5], 1)[0].user_id == "late"
