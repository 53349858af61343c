"""Launch files and parameters checked without ROS: every executable a launch file starts is a
console_scripts entry, and every parameter in config/*.yaml is declared by a node."""
import ast
import re
from pathlib import Path

import yaml

from egomem_ros.config import EgomemConfig, flatten

REPO = Path(__file__).resolve().parent.parent


def console_scripts() -> set[str]:
    tree = ast.parse((REPO / "setup.py").read_text())
    entries = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str) and " = " in n.value}
    return {e.split(" = ")[0] for e in entries}


def launch_executables(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "executable" and isinstance(kw.value, ast.Constant):
                    found.add(kw.value.value)
    return found


def test_launch_executables_are_console_scripts():
    scripts = console_scripts()
    launches = sorted((REPO / "launch").glob("*.launch.py"))
    assert {p.name for p in launches} >= {"robot.launch.py", "replay.launch.py"}
    used = set().union(*(launch_executables(p) for p in launches))
    assert used == {"identity_node", "memory_node", "dialog_node"}
    assert used <= scripts, used - scripts
    for name in used:
        module = next(e for e in ast.walk(ast.parse((REPO / "setup.py").read_text()))
                      if isinstance(e, ast.Constant) and isinstance(e.value, str) and e.value.startswith(name + " = "))
        path = REPO / (module.value.split(" = ")[1].split(":")[0].replace(".", "/") + ".py")
        assert path.is_file() and "def main(" in path.read_text()


def declared_prefixes() -> set[str]:
    prefixes = set()
    for path in (REPO / "egomem_ros" / "ros").glob("*_node.py"):
        for m in re.finditer(r"declare_config\(self, \(([^)]*)\)\)", path.read_text()):
            prefixes |= set(re.findall(r'"([a-z_]+\.)"', m.group(1)))
    return prefixes


def test_every_yaml_parameter_is_declared_by_a_node():
    prefixes = declared_prefixes()
    assert prefixes == {"store.", "identity.", "memchunk.", "retrieval.", "memory.", "dialog."}
    declared = {k for k in flatten(EgomemConfig()) if k.startswith(tuple(prefixes))}
    for path in (REPO / "config").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        for node, block in data.items():
            keys = set()

            def walk(prefix, d):
                for k, v in d.items():
                    walk(f"{prefix}{k}.", v) if isinstance(v, dict) else keys.add(prefix + k)

            walk("", block["ros__parameters"])
            assert keys <= declared, f"{path.name} {node}: undeclared {sorted(keys - declared)}"


def test_rviz_config_shows_debug_image_and_markers():
    rviz = yaml.safe_load((REPO / "config" / "egomem.rviz").read_text())
    topics = {d["Topic"]["Value"] for d in rviz["Visualization Manager"]["Displays"] if "Topic" in d}
    assert topics == {"/identity_node/debug_image", "/markers"}
