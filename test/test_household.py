"""A household day on real faces (LFW) and real voices (LibriSpeech), replayed with the shipped config:
every memory on the right person, one profile each, and people known again when they come back."""
import json
import subprocess
import sys

import pytest

from egomem_ros.config import load_config


def test_household_day_on_real_faces_and_voices(shared_data, tmp_path):
    from egomem_ros.tools.eval.household_eval import run_household

    r = run_household(shared_data / "faces", shared_data / "speech", tmp_path, load_config(None), seed=4, minutes=4)
    assert r["facts_on_wrong_person"] == 0, r["wrong"]
    assert r["people_with_one_profile"] == r["people"] == 6 and r["stray_profiles"] == 0, r["profiles_per_person"]
    assert r["fact_recall"] >= 0.95 and r["relations_right"] == r["relations"] == 2
    assert r["returns_recognised"] == r["returns"] == 6 and r["polls_to_known_max"] <= 2, r["not_recognised"]
    assert r["s_session_end_to_profile_max"] < 15.0          # written when the session ends, not at a timer
    assert r["known_polls_wrong_person"] == 0
    truth = json.loads((tmp_path / "seed4" / "truth.json").read_text())
    kinds = {(v["kind"], v["robot"], v["tv"], v["back_to_back"], bool(v["bystander"])) for v in truth["visits"]}
    assert {k[1] for k in kinds} == {True, False} and any(k[3] for k in kinds) and any(k[4] for k in kinds)
    assert any(k[0] == "tv" for k in kinds)


@pytest.mark.parametrize("args, message", [
    (["--faces", "/nonexistent", "--voices", "."], "--faces /nonexistent: not a directory"),
    (["--faces", ".", "--voices", ".", "--minutes", "1"], "--minutes must be at least 3"),
])
def test_household_cli_refuses_bad_input(tmp_path, args, message):
    out = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", "eval", "household", "--workdir", str(tmp_path),
                          *args], capture_output=True, text=True)
    assert out.returncode == 2 and message in " ".join(out.stderr.split()) and "Traceback" not in out.stderr


def test_household_needs_enough_people(shared_data, tmp_path):
    from egomem_ros.tools.datagen.household import write_household

    voices = tmp_path / "voices"
    voices.mkdir()
    (voices / "one").symlink_to(shared_data / "speech" / "librispeech_367")
    with pytest.raises(ValueError, match="at least 2 face identities and 3 speakers"):
        write_household(tmp_path / "day", shared_data / "faces", voices)
