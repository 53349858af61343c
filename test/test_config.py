from pathlib import Path

import pytest
import yaml

from egomem_ros.config import ConfigError, EgomemConfig, config_from_mapping, flatten, load_config, unflatten

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


def test_shipped_config_is_valid_and_equals_defaults():
    cfg = load_config(CONFIG_DIR / "egomem.yaml")
    assert flatten(cfg) == flatten(EgomemConfig()), "config/egomem.yaml drifted from the schema defaults"


def test_every_schema_key_is_in_shipped_yaml():
    raw = yaml.safe_load((CONFIG_DIR / "egomem.yaml").read_text())["/**"]["ros__parameters"]
    flat_yaml = set()

    def walk(prefix, node):
        for k, v in node.items():
            walk(f"{prefix}{k}.", v) if isinstance(v, dict) else flat_yaml.add(prefix + k)

    walk("", raw)
    assert flat_yaml == set(flatten(EgomemConfig()))


def test_unknown_key_is_named_in_error():
    with pytest.raises(ConfigError, match=r"identity\.face\.bakend"):
        config_from_mapping({"identity": {"face": {"bakend": "dlib"}}})


def test_bad_value_is_named_in_error():
    with pytest.raises(ConfigError, match=r"identity\.poll_period_s"):
        config_from_mapping({"identity": {"poll_period_s": -1}})
    with pytest.raises(ConfigError, match=r"identity\.face\.backend"):
        config_from_mapping({"identity": {"face": {"backend": "opencv"}}})


def test_ros_layout_merges_node_blocks(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({
        "/**": {"ros__parameters": {"identity": {"poll_period_s": 3.0}}},
        "identity_node": {"ros__parameters": {"identity": {"learn_new_users": False}}},
    }))
    cfg = load_config(p)
    assert cfg.identity.poll_period_s == 3.0 and cfg.identity.learn_new_users is False


def test_flatten_roundtrip_and_missing_file(tmp_path):
    cfg = config_from_mapping({"retrieval": {"top_k": 7}})
    assert unflatten(flatten(cfg)) == cfg
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2")
    with pytest.raises(ConfigError, match="not valid YAML") as err:
        load_config(bad)
    assert "\n" not in str(err.value) and "line 1" in str(err.value)   # one line, saying where


@pytest.mark.parametrize("key, value", [("identity.face.threshold", float("inf")),
                                        ("identity.face.threshold", float("nan")),
                                        ("identity.poll_period_s", float("inf")),
                                        ("identity.window_s", 1e12),
                                        ("memory.max_gap_s", float("inf")),
                                        ("identity.face.threshold", 5.0)])
def test_inf_nan_and_out_of_range_values_are_refused(key, value):
    from egomem_ros.config import ConfigError, config_from_mapping

    section, *rest = key.split(".")
    data: dict = {}
    node = data.setdefault(section, {})
    for part in rest[:-1]:
        node = node.setdefault(part, {})
    node[rest[-1]] = value
    with pytest.raises(ConfigError, match=rest[-1]):
        config_from_mapping(data)
