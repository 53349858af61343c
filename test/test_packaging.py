"""ROS packaging checks that run without ROS: colcon discovery, manifests, and the core/glue split."""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORE = REPO / "egomem_ros"


def _colcon() -> str:
    exe = shutil.which("colcon") or str(Path(sys.executable).parent / "colcon")
    if not Path(exe).exists():
        pytest.skip("colcon not installed (pip install -e '.[ros-tools]')")
    return exe


def test_colcon_lists_both_packages_with_documented_command(tmp_path):
    ws = tmp_path / "ws" / "src"
    ws.mkdir(parents=True)
    (ws / "egomem_ros").symlink_to(REPO, target_is_directory=True)
    # the exact command the README documents
    out = subprocess.run([_colcon(), "list", "--base-paths", "src/egomem_ros", "src/egomem_ros/egomem_msgs"],
                         cwd=ws.parent, capture_output=True, text=True, check=True).stdout
    found = {line.split("\t")[0]: line.split("\t")[-1] for line in out.splitlines() if line.strip()}
    assert found.get("egomem_ros") == "(ros.ament_python)", out
    assert found.get("egomem_msgs") == "(ros.ament_cmake)", out


def test_manifests_parse_with_catkin_pkg():
    catkin_pkg = pytest.importorskip("catkin_pkg.package")
    ros = catkin_pkg.parse_package(REPO / "package.xml")
    msgs = catkin_pkg.parse_package(REPO / "egomem_msgs" / "package.xml")
    assert ros.package_format == 3 and msgs.package_format == 3
    assert ros.get_build_type() == "ament_python" and msgs.get_build_type() == "ament_cmake"
    assert "egomem_msgs" in {d.name for d in ros.exec_depends}
    assert "rosidl_interface_packages" in {g.name for g in msgs.member_of_groups}
    assert ros.version == msgs.version


def test_ament_python_files():
    assert (REPO / "resource" / "egomem_ros").is_file()
    cfg = (REPO / "setup.cfg").read_text()
    assert "script_dir=$base/lib/egomem_ros" in cfg and "install_scripts=$base/lib/egomem_ros" in cfg
    setup = (REPO / "setup.py").read_text()
    for needed in ("launch/*.launch.py", "config/*.yaml", "share/ament_index/resource_index/packages"):
        assert needed in setup


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_ros():
    ros_modules = {"rclpy", "launch", "launch_ros", "rosidl_runtime_py", "sensor_msgs", "std_msgs",
                   "hri_msgs", "egomem_msgs", "audio_common_msgs", "lifecycle_msgs"}
    offenders = [str(p.relative_to(REPO)) for p in CORE.rglob("*.py")
                 if "ros" not in p.relative_to(CORE).parts[:1] and _imports(p) & ros_modules]
    assert not offenders, f"core modules import ROS: {offenders}"


def test_core_import_is_light():
    code = ("import sys, egomem_ros, egomem_ros.config, egomem_ros.store, egomem_ros.memchunk, egomem_ros.cli.main;"
            "heavy = [m for m in ('torch', 'dlib', 'resemblyzer', 'cv2', 'rclpy') if m in sys.modules];"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"heavy modules imported at start-up: {out}"


# PyPI name -> rosdep key (ros/rosdistro rosdep/python.yaml) for what has one
ROSDEP_KEYS = {"numpy": "python3-numpy", "pyyaml": "python3-yaml", "pydantic": "python3-pydantic",
               "typer": "python3-typer", "rich": "python3-rich", "networkx": "python3-networkx",
               "platformdirs": "python3-platformdirs", "rosbags": "python3-rosbags-pip", "pillow": "python3-pil",
               "soundfile": "python3-soundfile", "scipy": "python3-scipy", "tqdm": "python3-tqdm",
               "httpx": "python3-httpx", "cryptography": "python3-cryptography", "torch": "python3-torch",
               "silero-vad": "python3-silero-vad-pip"}


def _setup_requirements() -> list[str]:
    """install_requires and the offline models' extras (what the nodes run with by default), from setup.py."""
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    extras = next(ast.literal_eval(n.value) for n in ast.walk(tree)
                  if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "EXTRAS")
    core = next(ast.literal_eval(k.value) for k in ast.walk(tree)
                if isinstance(k, ast.keyword) and k.arg == "install_requires")
    return core + [r for name in ("face", "voice", "asr", "extract") for r in extras[name]]


def test_every_python_dependency_has_a_rosdep_key_or_a_pip_line():
    """A robot with apt ROS gets each dependency from `rosdep install` (package.xml) or from
    requirements/robot-pip.txt, with the version setup.py asks for."""
    import re

    catkin_pkg = pytest.importorskip("catkin_pkg.package")
    keys = {d.name for d in catkin_pkg.parse_package(REPO / "package.xml").exec_depends}
    pip_lines = {re.split(r"[<>=!~]", line, maxsplit=1)[0].strip().lower(): line.strip()
                 for line in (REPO / "requirements" / "robot-pip.txt").read_text().splitlines()
                 if line.strip() and not line.startswith("#")}
    for requirement in _setup_requirements():
        name = re.split(r"[<>=!~\[]", requirement, maxsplit=1)[0].strip().lower()
        key = ROSDEP_KEYS.get(name)
        assert key in keys or name in pip_lines, f"{requirement}: no rosdep key in package.xml, not in robot-pip.txt"
        if name in pip_lines:
            assert pip_lines[name] == requirement, f"robot-pip.txt has {pip_lines[name]!r}, setup.py {requirement!r}"
    assert "pydantic" in pip_lines   # Debian 12's python3-pydantic is 1.10
    assert "requirements/robot-pip.txt" in (REPO / "docs" / "ros.md").read_text()
