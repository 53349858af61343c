"""Every egomem_msgs .msg/.srv parses and round-trips through CDR with rosbags' real typesys."""
import numpy as np
import pytest

from egomem_ros.ros_types import PACKAGE, interface_definitions, msgs_dir, service_types, typestore

DEFS = interface_definitions()


def _sample(store, typename: str, depth: int = 0):
    """A message with a distinct non-default value in every field (recursing into nested types)."""
    cls = store.types[typename]
    _, fields = store.fielddefs[typename]
    kwargs = {}
    for i, (fname, (kind, spec)) in enumerate(fields):
        kwargs[fname] = _value(store, kind, spec, i + depth)
    return cls(**kwargs)


def _value(store, kind, spec, i):
    from rosbags.typesys.base import Nodetype

    if kind == Nodetype.BASE:
        t = spec[0]
        if t == "string":
            return f"v{i}-ünïcode"
        if t == "bool":
            return True
        if t.startswith("float"):
            return float(i) + 0.5
        return i + 1
    if kind == Nodetype.NAME:
        return _sample(store, spec, i + 1)
    if kind in (Nodetype.SEQUENCE, Nodetype.ARRAY):
        (sub_kind, sub_spec), _ = spec
        if sub_kind == Nodetype.BASE and sub_spec[0] not in ("string",):
            dtype = {"int16": np.int16, "float32": np.float32, "uint8": np.uint8}.get(sub_spec[0], np.int32)
            return np.arange(3, dtype=dtype) + i
        return [_value(store, sub_kind, sub_spec, i + k) for k in range(2)]
    raise AssertionError(kind)


def _assert_equal(a, b):
    if hasattr(a, "__dataclass_fields__"):
        for f in a.__dataclass_fields__:
            if f != "__msgtype__" and not f.isupper():
                _assert_equal(getattr(a, f), getattr(b, f))
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_equal(x, y)
    else:
        assert a == b


def test_all_interfaces_found():
    root = msgs_dir()
    n_files = len(list((root / "msg").glob("*.msg"))) + 2 * len(list((root / "srv").glob("*.srv")))
    assert len(DEFS) == n_files >= 8 + 12
    for needed in ("Identity", "MemChunk", "UserProfile", "MemoryEvent", "Episode"):
        assert f"{PACKAGE}/msg/{needed}" in DEFS
    for srv in ("RetrieveText", "GetProfile", "ListUsers", "EnrollUser", "ForgetUser", "MergeUsers"):
        service_types(srv)


@pytest.mark.parametrize("name", sorted(DEFS))
def test_cdr_roundtrip(name):
    store = typestore()
    typename = name if "/srv/" not in name else name.replace("/srv/", "/srv/msg/")
    msg = _sample(store, typename)
    raw = store.serialize_cdr(msg, typename)
    back = store.deserialize_cdr(raw, typename)
    _assert_equal(msg, back)
    # ROS 1-style bytes too, which rosbags uses for bag conversion: checks the layout is consistent
    assert store.deserialize_cdr(store.serialize_cdr(back, typename), typename) is not None


def test_constants_exposed():
    store = typestore()
    Identity = store.types[f"{PACKAGE}/msg/Identity"]
    MemChunk = store.types[f"{PACKAGE}/msg/MemChunk"]
    Event = store.types[f"{PACKAGE}/msg/MemoryEvent"]
    assert (Identity.NOBODY, Identity.KNOWN, Identity.UNKNOWN) == (0, 1, 2)
    assert (MemChunk.LEVEL1, MemChunk.LEVEL2) == (1, 2)
    assert (Event.ADD, Event.UPDATE, Event.INVALIDATE, Event.DELETE) == (0, 1, 2, 3)
