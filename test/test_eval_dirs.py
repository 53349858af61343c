"""`egomem eval face|speaker` on any directory of the layout, with corrupt files counted, not fatal."""
import json
import subprocess
import sys


def _eval(*args):
    r = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", "eval", *map(str, args), "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_eval_face_small_dir_with_corrupt_file(tmp_path, shared_data):
    for who in ("Tony_Blair", "Serena_Williams", "Hugo_Chavez"):
        (tmp_path / who).mkdir()
        for n in (1, 2, 3):
            (tmp_path / who / f"{n}.jpg").symlink_to(shared_data / "faces" / who / f"{n}.jpg")
    (tmp_path / "Tony_Blair" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    res = _eval("face", tmp_path)
    assert res["identities"] == 3 and res["images"] == 10 and res["corrupt"] == 1
    assert res["pairs"] >= 16 and res["accuracy"] >= 0.8  # pairs with the corrupt image are left out


def test_eval_speaker_small_dir_with_cohort_and_corrupt_file(tmp_path, shared_data):
    trial, cohort = tmp_path / "trial", tmp_path / "cohort"
    for root, speakers in ((trial, ("librispeech_1688", "librispeech_1998", "librispeech_2033")),
                           (cohort, ("fsdd_george", "fsdd_jackson"))):
        for spk in speakers:
            (root / spk).mkdir(parents=True)
            for n in range(1, 6):
                (root / spk / f"{n}.wav").symlink_to(shared_data / "speech" / spk / f"{n}.wav")
    (trial / "librispeech_1688" / "bad.wav").write_bytes(b"RIFF\x00\x00garbage")
    res = _eval("speaker", trial, "--enroll", "2", "--cohort", cohort)
    assert res["speakers"] == 3 and res["corrupt"] == 1 and res["cohort"] == "dir" and res["cohort_size"] >= 8
    assert res["pass_at_1"] >= 0.8 and 0.0 <= res["eer_snorm"] <= 0.5
