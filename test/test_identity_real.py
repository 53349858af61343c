"""Identity on real faces (LFW) and real speech (LibriSpeech) from ../shared/data."""
import json
import logging
import subprocess
import sys

import numpy as np
import pytest

from egomem_ros.config import EgomemConfig
from egomem_ros.retrieval.enrollment import EnrollmentError, enroll_person
from egomem_ros.retrieval.factory import make_face_engine, make_poller, make_voice_engine
from egomem_ros.retrieval.media import load_audio, load_image


@pytest.fixture(scope="module")
def face_engine():
    return make_face_engine(EgomemConfig().identity)


@pytest.fixture(scope="module")
def voice_engine():
    return make_voice_engine(EgomemConfig().identity)


def face(shared, who, n):
    return load_image(shared / "faces" / who / f"{n}.jpg")


def test_face_distances_and_no_face(shared_data, face_engine):
    a1, a2 = (face_engine.observe(face(shared_data, "Tony_Blair", n)) for n in (1, 2))
    b1 = face_engine.observe(face(shared_data, "Serena_Williams", 1))
    same = face_engine.distances(a1.embedding, a2.embedding[None])[0]
    diff = face_engine.distances(a1.embedding, b1.embedding[None])[0]
    assert same < face_engine.threshold < diff
    assert face_engine.observe(np.full((480, 640, 3), 90, np.uint8)) is None
    grey = face(shared_data, "Tony_Blair", 1).mean(axis=2).astype(np.uint8)
    assert face_engine.observe(grey) is not None


def test_multi_face_policy(shared_data, face_engine):
    from PIL import Image

    from egomem_ros.retrieval.face import FaceEngine, make_face_backend

    small = np.asarray(Image.fromarray(face(shared_data, "Serena_Williams", 1)).resize((180, 180)))
    big = face(shared_data, "Tony_Blair", 1)
    canvas = np.zeros((480, 900, 3), np.uint8)
    canvas[115:365, 20:270] = big          # large face at the left edge
    canvas[150:330, 360:540] = small       # smaller face in the centre
    backend = make_face_backend("dlib")
    largest = FaceEngine(backend, policy="largest").observe(canvas)
    central = FaceEngine(backend, policy="central").observe(canvas)
    assert largest.faces_in_frame == 2 and largest.box.left < 270 <= central.box.left


def test_eval_face_meets_lfw_target(shared_data):
    r = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", "eval", "face", str(shared_data / "faces"),
                        "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["accuracy"] >= 0.98 and res["identities"] == 24 and res["images"] == 240
    assert set(res) >= {"accuracy", "accuracy_std", "threshold", "pairs", "identities", "images", "no_face",
                        "ms_per_image"}


def test_eval_speaker_meets_librispeech_target(shared_data):
    r = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", "eval", "speaker", str(shared_data / "speech"),
                        "--only", "librispeech_*", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["pass_at_1"] >= 0.95 and res["eer"] <= 0.03
    assert res["pass_at_1_snorm"] >= res["pass_at_1"] and res["eer_snorm"] <= res["eer"] + 1e-9
    assert set(res) >= {"pass_at_1", "pass_at_1_snorm", "eer", "eer_snorm", "speakers", "utterances",
                        "ms_per_utterance"}


def test_enroll_rejects_unusable_inputs_without_writing(store, tmp_path, face_engine, voice_engine):
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(blank)
    corrupt = tmp_path / "x.wav"
    corrupt.write_bytes(b"RIFF....garbage")
    with pytest.raises(EnrollmentError, match="nothing usable"):
        enroll_person(store, "Nobody", faces=[blank], voices=[corrupt], face_engine=face_engine,
                      voice_engine=voice_engine)
    assert store.list_users() == []


def _clip(shared, spk, n, seconds=2.0, offset=1.0):
    pcm = load_audio(shared / "speech" / spk / f"{n}.wav")
    return pcm[int(offset * 16000):int((offset + seconds) * 16000)]


@pytest.fixture(scope="module")
def scene_store(tmp_path_factory, shared_data, face_engine, voice_engine):
    from egomem_ros.store import SqliteStore

    store = SqliteStore(tmp_path_factory.mktemp("scene") / "m.db")
    people = {"Tony": ("Tony_Blair", "librispeech_1688"), "Colin": ("Colin_Powell", "librispeech_1998"),
              "Serena": ("Serena_Williams", "librispeech_2414")}
    ids = {}
    for name, (fdir, spk) in people.items():
        faces = [shared_data / "faces" / fdir / f"{n}.jpg" for n in (1, 2)]
        voices = [shared_data / "speech" / spk / f"{n}.wav" for n in (1, 2)]
        rep = enroll_person(store, name, faces=faces, voices=voices, face_engine=face_engine, voice_engine=voice_engine)
        ids[name] = rep.user.id
    store.add_fact(ids["Tony"], "preference", "likes tea")
    return store, ids


def _feed(poller, t0, image, pcm):
    for i in range(4):
        if image is not None:
            poller.add_frame(t0 + 0.5 * i, image)
    if pcm is not None:
        poller.add_audio(t0, pcm, 16000)


def test_poller_switches_known_unknown_nobody(scene_store, shared_data):
    store, ids = scene_store
    poller = make_poller(store, EgomemConfig())
    t = 0.0
    _feed(poller, t, face(shared_data, "Tony_Blair", 5), _clip(shared_data, "librispeech_1688", 5))
    res = poller.poll(t + 2.0)
    assert res.event.status == "known" and res.event.user_id == ids["Tony"] and res.event.name == "Tony"
    assert res.chunk is not None and "Tony" in res.chunk.text and "likes tea" in res.chunk.text
    assert res.chunk.token_count <= 512
    t += 2.0
    _feed(poller, t, face(shared_data, "Tony_Blair", 6), _clip(shared_data, "librispeech_1688", 6))
    res = poller.poll(t + 2.0)
    assert res.event.user_id == ids["Tony"] and res.chunk is None       # same user: nothing new
    t += 2.0
    _feed(poller, t, face(shared_data, "Colin_Powell", 5), _clip(shared_data, "librispeech_1998", 5))
    res = poller.poll(t + 2.0)
    assert res.event.user_id == ids["Colin"] and res.chunk.user_id == ids["Colin"]
    assert res.chunk.version == 2 and "likes tea" not in res.chunk.text
    # an unknown person: stable temporary id, empty chunk, learnable
    observed, stable = set(), []
    for n in (3, 4, 5, 6):
        t += 2.0
        _feed(poller, t, face(shared_data, "Jackie_Chan", n), _clip(shared_data, "librispeech_2033", n))
        res = poller.poll(t + 2.0)
        observed.add(res.event.observed.status)
        stable.append(res.event.user_id)
    assert observed == {"unknown"}
    assert stable[-1].startswith("tmp-") and stable[-3:] == [stable[-1]] * 3  # at most one poll of hysteresis
    assert res.event.learnable and res.event.face is not None and res.event.voice is not None
    # nobody: two empty polls
    for _ in range(2):
        t += 2.0
        res = poller.poll(t + 2.0)
    assert res.event.status == "nobody" and res.chunk is not None and res.chunk.text == ""


def test_voice_only_and_forget(scene_store, shared_data):
    store, ids = scene_store
    poller = make_poller(store, EgomemConfig())
    for i, n in enumerate((7, 8)):  # voice alone is not corroborated: hysteresis wants two polls
        _feed(poller, 2.0 * i, None, _clip(shared_data, "librispeech_2414", n, seconds=2.0))
        res = poller.poll(2.0 * i + 2.0)
        assert res.event.observed.user_id == ids["Serena"], res.event
    assert res.event.status == "known" and res.event.user_id == ids["Serena"] and not np.isnan(res.event.voice_score)
    poller.forget(ids["Serena"])
    _feed(poller, 4.0, face(shared_data, "Serena_Williams", 7), _clip(shared_data, "librispeech_2414", 9))
    assert poller.poll(6.0).event.observed.status == "unknown"


def test_keys_of_another_model_are_ignored(tmp_path, caplog):
    from egomem_ros.store import SqliteStore

    store = SqliteStore(tmp_path / "m.db")
    u = store.create_user("Old")
    store.add_key(u.id, "voice", "ecapa_192", np.ones(192, np.float32))
    with caplog.at_level(logging.WARNING):
        poller = make_poller(store, EgomemConfig(), face=False)
    assert "another model" in caplog.text and len(poller.voice_gallery) == 0


def test_bad_audio_and_frames_never_crash(scene_store):
    store, _ = scene_store
    poller = make_poller(store, EgomemConfig())
    poller.add_audio(0.0, np.full(32000, np.nan, np.float32), 16000)
    poller.add_audio(0.0, np.zeros(0, np.float32), 16000)
    poller.add_audio(0.0, np.ones(100, np.float32), 3)
    poller.add_frame(0.5, np.zeros((4, 4, 2), np.uint8))
    assert poller.poll(2.0).event.observed.status == "nobody"


def test_digital_silence_is_silence_not_an_error(scene_store, caplog):
    """A muted microphone sends all-zero chunks: they are kept as silence, with no log line per chunk."""
    from egomem_ros.memory.buffer import StreamBuffer

    store, _ = scene_store
    poller = make_poller(store, EgomemConfig())
    buffer = StreamBuffer(60)
    with caplog.at_level(logging.INFO):
        for i in range(16):  # 8 s of 0.5 s chunks
            poller.add_audio(i * 0.5, np.zeros(8000, np.int16), 16000)
            buffer.add_listen(i * 0.5, np.zeros(8000, np.int16), 16000)
        event = poller.poll(8.0).event
    assert event.voice is None and event.observed.status == "nobody"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert len(buffer._listen.chunks) == 16  # every silent chunk is in the stream


def test_face_worker_ignores_ctrl_c(face_engine, shared_data):
    """Ctrl-C reaches the whole process group; the worker stays up for its node to shut it down."""
    import os
    import signal
    import time

    worker = next(iter(face_engine._pool._processes.values()))
    os.kill(worker.pid, signal.SIGINT)
    time.sleep(0.5)
    assert worker.is_alive()
    assert face_engine.observe(face(shared_data, "Tony_Blair", 1)) is not None


def test_process_face_engine_works_again_after_close(shared_data):
    """A closed worker pool used to raise 'cannot schedule new futures after shutdown' (bench_identity_poll,
    a lifecycle node configured again): the engine starts a new worker instead."""
    from egomem_ros.retrieval.face import ProcessFaceEngine

    engine = ProcessFaceEngine("dlib")
    img = face(shared_data, "Tony_Blair", 1)
    first = engine.observe(img)
    engine.close()
    engine.close()                                   # twice is harmless
    again = engine.observe(img)
    engine.close()
    assert first is not None and again is not None and np.allclose(first.embedding, again.embedding)
