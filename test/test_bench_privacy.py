"""The privacy benchmark, small (two households per phrase set): nobody is told what they may not be, a
forgotten topic comes back to no one and stays in no file, and privacy costs no allowed answer."""
from egomem_ros.config import config_from_mapping
from egomem_ros.tools.eval.privacy_eval import run_privacy


def test_households_keep_their_secrets_and_forget_on_request(tmp_path):
    cfg = config_from_mapping({})
    for phrase_set in ("dev", "heldout"):
        r = run_privacy(tmp_path / phrase_set, cfg, phrase_set, [0, 1])
        assert r["forbidden questions"] >= 3 and r["forgotten topics"] >= 6, r
        assert r["violations"] == 0 and r["forgetting failures"] == 0, r["misses"]
        assert r["usefulness"] >= r["usefulness without privacy"] - 1e-9, r
        assert r["allowed questions"] >= 6 and r["usefulness"] >= 0.5, r
