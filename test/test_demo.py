"""The README's main job: `egomem demo` runs end to end on raw camera and microphone streams (Whisper
hears the words) and reaches the Level-1 and Level-2 chunks."""
import shutil
import subprocess
import sys

import pytest


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (scripts/bootstrap.sh installs it)")
def test_demo_end_to_end(tmp_path):
    r = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", "demo", "--workdir", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = r.stdout
    flat = " ".join(out.split())   # the console wraps long lines wherever their words fall
    assert out.count("new user enrolled") == 2
    assert "known Emily" in out and "Level-1 MemChunk" in out and "works as a nurse" in out
    assert "placeholder" in out and "merged in" in out
    assert "<retr> ['colleague'] / ['tennis'] -> " in out
    assert "Related memory:\n- Sarah (your colleague): loves tennis" in out   # the best match first
    assert "summary: Talked about" in flat and "preference: loves tennis" in flat   # the new items and summaries
    assert 'heard: "' in out and "Whisper" in out    # the words come from the audio
    from rosbags.highlevel import AnyReader

    with AnyReader([tmp_path / "scene_bag"]) as reader:  # raw streams: camera and microphone, no transcript
        assert {c.topic for c in reader.connections} == {"/camera/image_raw", "/camera/image_raw/compressed",
                                                        "/audio", "/audio_info", "/egomem/dialog/text"}
    assert (tmp_path / "out_bag").is_dir()
    assert (tmp_path / "memory.db").is_file() and (tmp_path / "social_graph.json").is_file()
    from egomem_ros.store import open_store

    with open_store(tmp_path / "memory.db") as store:   # each person is known by face and by voice
        for user in store.list_users():
            assert store.user_keys(user.id, "face") and store.user_keys(user.id, "voice"), user.display_name
