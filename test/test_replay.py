"""`egomem replay` on a bag this test writes from ../shared/data (LFW frames, LibriSpeech audio)."""
import subprocess
import sys

import numpy as np
import pytest

from egomem_ros.config import EgomemConfig, config_from_mapping
from egomem_ros.retrieval.media import load_audio, load_image
from egomem_ros.scene import SceneBag


def _segment(bag, shared, t0, seconds, face_dir, speaker, first, rng, *, compressed=False):
    """`seconds` of one person: a different photo every second, their speech in 0.5-s chunks."""
    pcm = np.concatenate([load_audio(shared / "speech" / speaker / f"{n}.wav") for n in (first, first + 1, first + 2)])
    pcm = np.resize(pcm, int(seconds * 16000))
    for k in range(int(seconds)):
        img = load_image(shared / "faces" / face_dir / f"{first + k % 3}.jpg")
        canvas = np.full((480, 640, 3), int(rng.integers(60, 120)), np.uint8)
        y, x = int(rng.integers(0, 200)), int(rng.integers(0, 360))
        canvas[y:y + 250, x:x + 250] = img
        bag.image(t0 + k + 0.3, canvas, compressed=compressed and k % 2 == 0)
    for i in range(int(seconds * 2)):
        bag.audio(t0 + i * 0.5, pcm[i * 8000:(i + 1) * 8000])


def _silence(bag, t0, seconds):
    for i in range(int(seconds * 2)):
        bag.audio(t0 + i * 0.5, np.full(8000, 1e-4, np.float32))


@pytest.fixture(scope="module")
def scene(tmp_path_factory, shared_data):
    from egomem_ros.retrieval.enrollment import enroll_person
    from egomem_ros.retrieval.factory import make_face_engine, make_voice_engine
    from egomem_ros.store import SqliteStore

    root = tmp_path_factory.mktemp("replay")
    rng = np.random.default_rng(0)
    with SceneBag(root / "in_bag", mcap=False) as bag:        # sqlite3 input; the output is mcap
        _segment(bag, shared_data, 0.0, 14, "Tony_Blair", "librispeech_1688", 4, rng, compressed=True)
        bag.text("/asr/transcript", 12.0, "Hello, my name is Tony. I love tennis.")
        _silence(bag, 14.0, 8)
        _segment(bag, shared_data, 22.0, 14, "Colin_Powell", "librispeech_1998", 4, rng)
        bag.text("/asr/transcript", 34.0, "I am Colin. Tony is my colleague.")
        # the dialog model's monologue: a robot turn for memory, a <retr> query for Level-2
        bag.text("/egomem/dialog/text", 35.0, "Nice to meet you. <retr>\ncolleague\ntennis<answer> ")
        _silence(bag, 36.0, 8)
    cfg = EgomemConfig()
    db = root / "memory.db"
    store = SqliteStore(db)
    face, voice = make_face_engine(cfg.identity, worker_process=False), make_voice_engine(cfg.identity)
    ids = {}
    for name, fdir, spk in (("Tony", "Tony_Blair", "librispeech_1688"), ("Colin", "Colin_Powell", "librispeech_1998")):
        ids[name] = enroll_person(store, name, faces=[shared_data / "faces" / fdir / f"{n}.jpg" for n in (1, 2)],
                                  voices=[shared_data / "speech" / spk / f"{n}.wav" for n in (1, 2)],
                                  face_engine=face, voice_engine=voice).user.id
    store.close()
    return root, db, ids


def test_replay_identifies_people_and_writes_memory(scene):
    from rosbags.highlevel import AnyReader

    from egomem_ros.replay import replay
    from egomem_ros.ros_types import typestore

    root, db, ids = scene
    cfg = config_from_mapping({"memory": {"consolidation_period_s": 30.0, "asr": "none"}})
    summary = replay(root / "in_bag", root / "out_bag", cfg, db=db)
    assert summary.polls >= 20 and not summary.truncated and summary.rejected == {}
    assert summary.sessions_written == 2 and summary.users_created == 0
    with AnyReader([root / "out_bag"], default_typestore=typestore()) as reader:
        topics = {c.topic for c in reader.connections}
        assert {"/identity", "/memchunk/level1", "/memory_events", "/humans/candidate_matches",
                "/identity_node/debug_image", "/markers", "/camera/image_raw", "/audio"} <= topics
        who = []
        for conn, t, raw in reader.messages([c for c in reader.connections if c.topic == "/identity"]):
            msg = reader.deserialize(raw, conn.msgtype)
            who.append((t * 1e-9, msg.user_id if msg.status == 1 else msg.status))
    tony = [u for t, u in who if 3.0 <= t <= 14.0]
    colin = [u for t, u in who if 25.0 <= t <= 36.0]
    assert tony and all(u == ids["Tony"] for u in tony), who
    assert colin and all(u == ids["Colin"] for u in colin), who
    assert [u for t, u in who if t >= 40.0][-1] == 0  # nobody at the end

    from egomem_ros.store import SqliteStore

    store = SqliteStore(db)
    assert "loves tennis" in {f.text for f in store.facts(ids["Tony"])}
    assert {(r.src, r.dst, r.relation) for r in store.relations()} >= {(ids["Colin"], ids["Tony"], "colleague")}
    # the dialog text: the robot's turn in Colin's session, without its query; the query answered for Colin
    transcript = "\n".join(e.transcript for e in store.episodes(ids["Colin"]))
    assert "robot: Nice to meet you." in transcript and "<retr>" not in transcript and "tennis" not in transcript
    assert summary.l2_queries == 1
    with AnyReader([root / "out_bag"], default_typestore=typestore()) as reader:
        l2 = [reader.deserialize(raw, c.msgtype) for c, _, raw in
              reader.messages([c for c in reader.connections if c.topic == "/memchunk/level2"])]
    assert [m.user_id for m in l2] == [ids["Colin"]]   # asked while his session goes on: nothing written yet


def test_a_newcomer_cut_off_by_the_end_of_the_bag_is_never_written_onto_the_known_person(tmp_path, scene, shared_data):
    """Tony (known) talks, a stranger steps in right after him and introduces herself, and the recording
    stops while she is still there: the flush never gives her words to Tony."""
    import shutil

    from egomem_ros.replay import replay
    from egomem_ros.store import SqliteStore

    _, db0, ids = scene
    db = tmp_path / "memory.db"
    shutil.copy(db0, db)
    rng = np.random.default_rng(1)
    with SceneBag(tmp_path / "in_bag") as bag:
        _segment(bag, shared_data, 0.0, 10, "Tony_Blair", "librispeech_1688", 4, rng)
        bag.text("/asr/transcript", 9.0, "Hello again, I love tennis.")
        _segment(bag, shared_data, 10.0, 8, "Laura_Bush", "librispeech_2414", 1, rng)   # no gap: back to back
        bag.text("/asr/transcript", 17.5, "Hi, I am Sarah. I love chess.")
    cfg = config_from_mapping({"memory": {"consolidation_period_s": 30.0, "asr": "none"}})
    replay(tmp_path / "in_bag", tmp_path / "out_bag", cfg, db=db)
    with SqliteStore(db) as store:
        assert not any("chess" in f.text for f in store.facts(ids["Tony"])), store.facts(ids["Tony"])
        assert store.get_user(ids["Tony"]).name == "Tony"
        sarah = [u for u in store.list_users(include_placeholders=False) if any("chess" in f.text for f in store.facts(u.id))]
        assert all(u.name == "Sarah" for u in sarah), sarah


def test_replay_cli_errors(tmp_path, scene):
    root, _, _ = scene
    def run(*a):
        return subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", "replay", *map(str, a)],
                              capture_output=True, text=True)
    r = run(tmp_path / "nope", "--out", tmp_path / "o")
    assert r.returncode == 2 and "bag not found" in r.stderr
    r = run(root / "in_bag", "--out", tmp_path / "o", "--topics", "/no/such/topic")
    assert r.returncode == 2 and "topics not in the bag" in r.stderr
    r = run(root / "in_bag", "--out", root / "in_bag")
    assert r.returncode == 2 and "output exists" in r.stderr


def test_truncated_mcap_is_replayed_up_to_the_cut(tmp_path):
    """A recorder killed mid-file: the complete chunks are replayed and the summary says the bag is cut short
    (it used to be refused whole, while a truncated sqlite3 bag gave its part)."""
    from pathlib import Path

    from rosbags.highlevel import AnyReader

    from egomem_ros.ros_types import typestore

    rng = np.random.default_rng(0)
    with SceneBag(tmp_path / "bag") as bag:                      # ~5.6 MB: several 1-MiB chunks
        for i in range(24):
            bag.image(i * 0.5, rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
            bag.audio(i * 0.5, np.full(8000, 1e-3, np.float32))
    mcap = next(Path(tmp_path / "bag").glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size * 2 // 3])
    r = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", "replay", str(tmp_path / "bag"), "--out",
                        str(tmp_path / "out"), "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "cut short" in " ".join(r.stdout.split())
    with AnyReader([tmp_path / "out"], default_typestore=typestore()) as reader:
        images = sum(c.msgcount for c in reader.connections if c.topic == "/camera/image_raw")
        polls = sum(c.msgcount for c in reader.connections if c.topic == "/identity")
    assert 5 <= images < 24 and polls >= 2
    assert not list(tmp_path.glob(".out.recovered*"))               # the recovered copy is removed


def test_database_failure_is_not_blamed_on_the_bag(tmp_path, scene):
    """The store breaks mid-replay: exit 2 naming the database, not the bag, and the output bag is closed
    and complete up to there (it used to say the bag stopped, crash while closing, and leave no metadata)."""
    import shutil
    import sqlite3

    root, db, _ = scene
    broken = tmp_path / "broken.db"
    shutil.copy(db, broken)
    with sqlite3.connect(broken) as c:
        c.execute("DROP TABLE facts")                 # the first Level-1 read, when Tony is recognised, fails
    r = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", "replay", str(root / "in_bag"), "--out",
                        str(tmp_path / "o"), "--db", str(broken), "--quiet"], capture_output=True, text=True)
    flat = " ".join(r.stderr.split())
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"the memory database {broken}" in flat and "no such table: facts" in flat and "The bag is fine" in flat
    assert (tmp_path / "o" / "metadata.yaml").exists()


def test_sessions_left_for_a_retry_are_said_and_exit_3(tmp_path, scene):
    """An LLM that cannot be reached: the sessions stay in the spool, and the summary and exit status say so
    (they used to be only a warning, with 'sessions written: 0' and exit 0)."""
    root, _, _ = scene
    config = tmp_path / "llm.yaml"
    config.write_text("memory:\n  extractor: llm\n  llm:\n    base_url: http://127.0.0.1:9/v1\n    retries: 0\n"
                      "    timeout_s: 0.5\n")
    r = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", "replay", str(root / "in_bag"), "--out",
                        str(tmp_path / "o"), "--config", str(config), "--quiet"],
                       capture_output=True, text=True)
    assert r.returncode == 3, r.stderr[-2000:]
    assert "could not be written yet" in " ".join(r.stderr.split())
    assert list((tmp_path / "o.db.sessions").glob("*.json"))
