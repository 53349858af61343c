"""ROS 2 message types without ROS: a `rosbags` typestore that knows egomem_msgs.

Used by `egomem replay` (reading and writing bags) and by the tests, which check that every
.msg/.srv parses and round-trips through CDR exactly as rosidl would lay it out.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

PACKAGE = "egomem_msgs"


def msgs_dir() -> Path:
    """Where egomem_msgs' .msg/.srv files are: $EGOMEM_MSGS_DIR, the source tree, or the ament share dir."""
    candidates = []
    if os.environ.get("EGOMEM_MSGS_DIR"):
        candidates.append(Path(os.environ["EGOMEM_MSGS_DIR"]))
    candidates.append(Path(__file__).resolve().parent.parent / PACKAGE)
    try:  # installed by colcon
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(PACKAGE)))
    except Exception:  # noqa: BLE001 - ament is optional
        pass
    for c in candidates:
        if (c / "msg").is_dir():
            return c
    raise FileNotFoundError(f"cannot find the {PACKAGE} definitions; set EGOMEM_MSGS_DIR to its directory")


def interface_definitions(root: Path | None = None) -> dict[str, str]:
    """Type name -> message text; a service X becomes X_Request and X_Response (rosidl's naming)."""
    root = root or msgs_dir()
    defs: dict[str, str] = {}
    for path in sorted((root / "msg").glob("*.msg")):
        defs[f"{PACKAGE}/msg/{path.stem}"] = path.read_text(encoding="utf-8")
    for path in sorted((root / "srv").glob("*.srv")):
        text = path.read_text(encoding="utf-8")
        request, sep, response = text.partition("\n---")
        if not sep:
            raise ValueError(f"{path}: a service needs a '---' line")
        defs[f"{PACKAGE}/srv/{path.stem}_Request"] = request
        defs[f"{PACKAGE}/srv/{path.stem}_Response"] = response.split("\n", 1)[1] if "\n" in response else ""
    return defs


def third_party_definitions() -> dict[str, str]:
    """audio_common_msgs and hri_msgs definitions shipped in `egomem_ros/data/msgs` (see its README)."""
    root = Path(__file__).resolve().parent / "data" / "msgs"
    return {f"{p.parent.parent.name}/msg/{p.stem}": p.read_text(encoding="utf-8") for p in sorted(root.glob("*/msg/*.msg"))}


@lru_cache(maxsize=4)
def typestore(distro: str = "humble") -> Typestore:
    """A typestore of the distro's standard messages plus egomem_msgs, audio_common_msgs and hri_msgs."""
    store = get_typestore(Stores.ROS2_JAZZY if distro == "jazzy" else Stores.ROS2_HUMBLE)
    types: dict = {}
    for name, text in {**third_party_definitions(), **interface_definitions()}.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


def service_types(service: str, distro: str = "humble") -> tuple[type, type]:
    """Request and response classes of `egomem_msgs/srv/<service>`.

    rosbags normalises every type name to `pkg/<sub>/msg/Name`, so a service part is stored as
    `egomem_msgs/srv/msg/<service>_Request`; the CDR layout is the same as rosidl's.
    """
    types = typestore(distro).types
    base = f"{PACKAGE}/srv/msg/{service}"
    return types[f"{base}_Request"], types[f"{base}_Response"]


def make(typename: str, fields: dict | None = None, *, distro: str = "humble"):
    """A rosbags message of `typename` from nested field values; missing fields get ROS defaults
    (0, "", False, empty arrays, default sub-messages)."""
    import numpy as np
    from rosbags.typesys.base import Nodetype

    store = typestore(distro)
    name = typename if typename in store.fielddefs else typename.replace("/srv/", "/srv/msg/")
    _, fdefs = store.fielddefs[name]
    fields = dict(fields or {})
    kwargs = {}
    numpy_types = {"bool": np.bool_, "byte": np.uint8, "char": np.uint8, "int8": np.int8, "uint8": np.uint8,
                   "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32,
                   "int64": np.int64, "uint64": np.uint64, "float32": np.float32, "float64": np.float64}
    for fname, (kind, spec) in fdefs:
        value = fields.pop(fname, None)
        if kind == Nodetype.NAME:
            kwargs[fname] = value if value is not None and not isinstance(value, dict) else make(spec, value, distro=distro)
        elif kind == Nodetype.BASE:
            t = spec[0]
            default = "" if t == "string" else (False if t == "bool" else (0.0 if t.startswith("float") else 0))
            kwargs[fname] = default if value is None else value
        else:  # sequences and arrays
            (sub_kind, sub_spec), _size = spec
            if sub_kind == Nodetype.BASE and sub_spec[0] != "string":
                dtype = numpy_types[sub_spec[0]]
                kwargs[fname] = np.asarray(value if value is not None else [], dtype=dtype)
            elif sub_kind == Nodetype.NAME:
                kwargs[fname] = [v if not isinstance(v, dict) else make(sub_spec, v, distro=distro) for v in (value or [])]
            else:
                kwargs[fname] = list(value or [])
    if fields:
        raise KeyError(f"{typename} has no field(s) {sorted(fields)}")
    return store.types[name](**kwargs)
