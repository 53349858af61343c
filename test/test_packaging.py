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
