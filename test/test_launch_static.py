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


def test_launch_nodes_come_from_the_graph_and_are_console_scripts():
    from egomem_ros.ros.graph import node_specs, plain_args

    specs = node_specs(plain_args())
    used = {s.executable for s in specs}
    assert used == {"identity_node", "memory_node", "dialog_node"}
    assert used <= console_scripts(), used - console_scripts()
    for name in used:
        path = REPO / "egomem_ros" / "ros" / f"{name}.py"
        assert path.is_file() and "def main(" in path.read_text()
    robot = (REPO / "launch" / "robot.launch.py").read_text()
    assert "from egomem_ros.ros.graph import LAUNCH_ARGS, node_specs" in robot  # no copy of the graph
    replay = (REPO / "launch" / "replay.launch.py").read_text()
    assert "robot.launch.py" in replay and '"use_sim_time": "true"' in replay
    # bag play starts when `wait_active` (a console script) has seen every node of the graph active
    assert 'executable="wait_active"' in replay and "OnProcessExit(target_action=waiter" in replay
    assert "node_specs(plain_args())" in replay and "wait_active" in console_scripts()


def flat_keys(d: dict, prefix: str = "") -> list[str]:
    return [key for k, v in d.items()
            for key in (flat_keys(v, f"{prefix}{k}.") if isinstance(v, dict) else [prefix + k])]


def declared_prefixes() -> set[str]:
    prefixes = set()
    for path in (REPO / "egomem_ros" / "ros").glob("*_node.py"):
        for m in re.finditer(r'super\(\).__init__\("[a-z_]+", \(([^)]*)\)', path.read_text()):
            prefixes |= set(re.findall(r'"([a-z_]+\.)"', m.group(1)))
    return prefixes


def test_every_yaml_parameter_is_declared_by_a_node():
    prefixes = declared_prefixes()
    assert prefixes == {"store.", "identity.", "memchunk.", "retrieval.", "memory.", "dialog."}
    declared = {k for k in flatten(EgomemConfig()) if k.startswith(tuple(prefixes))}
    for path in (REPO / "config").glob("egomem*.yaml"):
        data = yaml.safe_load(path.read_text())
        for node, block in data.items():
            keys = set(flat_keys(block["ros__parameters"]))
            assert keys <= declared, f"{path.name} {node}: undeclared {sorted(keys - declared)}"


def test_rviz_config_shows_debug_image_and_markers():
    rviz = yaml.safe_load((REPO / "config" / "egomem.rviz").read_text())
    topics = {d["Topic"]["Value"] for d in rviz["Visualization Manager"]["Displays"] if "Topic" in d}
    assert topics == {"/identity_node/debug_image", "/markers"}


def test_foxglove_layout_shows_only_topics_both_transports_have():
    """One layout for a live robot and a replayed bag: every topic it shows is one the nodes publish and
    `egomem replay` writes, under the same name; its panels are the ones laid out."""
    import json

    from egomem_ros.ros.graph import OUTPUT_TOPICS

    layout = json.loads((REPO / "config" / "egomem.foxglove.json").read_text())
    shown = set()
    for panel in layout["configById"].values():
        shown |= set(panel.get("topics", {}))
        shown |= {panel[k].split(".")[0] for k in ("topicPath",) if k in panel}
        shown |= {v for k, v in panel.get("imageMode", {}).items() if k == "imageTopic"}
    assert shown == {t for t, _ in OUTPUT_TOPICS.values()}

    def leaves(node) -> set[str]:
        return {node} if isinstance(node, str) else leaves(node["first"]) | leaves(node["second"])
    assert leaves(layout["layout"]) == set(layout["configById"])


def test_diagnostics_analyzer_groups_every_status_the_nodes_publish():
    analyzers = yaml.safe_load((REPO / "config" / "diagnostics.yaml").read_text())["analyzers"]["ros__parameters"]
    group = analyzers["egomem"]
    assert group["type"] == "diagnostic_aggregator/GenericAnalyzer"
    published = set()
    for path in (REPO / "egomem_ros" / "ros").glob("*_node.py"):
        published |= set(re.findall(r'diagnostics\(self, "([a-z]+)"', path.read_text()))
    assert published == {"identity", "memory"}
    assert all(f"egomem: {name}".startswith(tuple(group["startswith"])) for name in published)


def test_parameter_reference_is_generated_from_the_schema():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_ros_docs.py"), "--check"], cwd=REPO)
    assert r.returncode == 0, "docs/ros_parameters.md is stale: run scripts/gen_ros_docs.py"


def test_launch_defaults_leave_the_params_file_in_charge():
    """A params file with dialog.mode: cascaded runs cascaded: an argument left at its default sets no
    parameter; one the user gives does."""
    from egomem_ros.ros.graph import command_line, node_specs, plain_args

    specs = {s.name: s for s in node_specs(plain_args())}
    for spec in specs.values():
        assert set(spec.parameters) == {"use_sim_time"}, spec.parameters
    argv = command_line(specs["dialog_node"], "my.yaml")
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-p"] == ["use_sim_time:=false"]
    given = {s.name: s for s in node_specs(plain_args(dialog_mode="cascaded", learn_new_users="false", db_path="/m.db"))}
    assert given["dialog_node"].parameters["dialog.mode"] == "cascaded"
    assert given["memory_node"].parameters == {"store.db_path": "/m.db", "identity.learn_new_users": False,
                                               "use_sim_time": False}
    robot = (REPO / "launch" / "robot.launch.py").read_text()
    assert "OpaqueFunction(function=_nodes)" in robot and "perform(context)" in robot
