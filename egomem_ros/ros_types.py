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


@lru_cache(maxsize=4)
def typestore(distro: str = "humble") -> Typestore:
    """A typestore of the distro's standard messages plus egomem_msgs."""
    store = get_typestore(Stores.ROS2_JAZZY if distro == "jazzy" else Stores.ROS2_HUMBLE)
    types: dict = {}
    for name, text in interface_definitions().items():
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
