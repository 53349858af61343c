"""What the robot runs imports none of the tooling (data generation, evaluation, fine-tuning, benchmark
formats): the three nodes configured with the shipped parameters, and `egomem replay`, checked with
sys.modules in a fresh process."""
import subprocess
import sys
import textwrap

TOOLING = ("egomem_ros.tools",)

PROBE = textwrap.dedent("""
    import sys, tempfile
    from pathlib import Path
    from egomem_ros.config import load_config
    from egomem_ros.memory.manager import build_memory_manager
    from egomem_ros.retrieval.factory import make_level2, make_poller
    from egomem_ros.store import open_store
    import egomem_ros.replay, egomem_ros.ros.identity_node, egomem_ros.ros.memory_node, egomem_ros.ros.dialog_node
    cfg = load_config(None)
    db = Path(tempfile.mkdtemp()) / "memory.db"
    with open_store(db) as store:   # what configure builds: the poller, the memory manager, Level-2
        poller = make_poller(store, cfg)
        manager = build_memory_manager(store, cfg, poller=poller, db_path=db)
        level2 = make_level2(store, cfg)
        manager.close(); poller.close()
    print("\\n".join(sorted(sys.modules)))
""")


def test_the_runtime_imports_no_tooling():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = out.stdout.split()
    assert "egomem_ros.memory.manager" in loaded and "egomem_ros.ros.memory_node" in loaded   # the probe ran
    assert not [m for m in loaded if m.startswith(TOOLING)]


def _imports_at_run_time() -> dict[str, set[str]]:
    """Each module of the package -> the package modules it imports when it runs (not under TYPE_CHECKING)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "egomem_ros"
    names = {".".join(f.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"): f
             for f in root.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for mod, f in names.items():
        tree = ast.parse(f.read_text())
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and getattr(block.test, "id", "") == "TYPE_CHECKING" for n in ast.walk(block)}
        pkg = mod.split(".") if f.name == "__init__.py" else mod.split(".")[:-1]
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or id(node) in typing_only:
                continue
            base = ".".join(pkg[:len(pkg) - node.level + 1] + [node.module or ""]).strip(".") if node.level \
                else node.module or ""
            for target in [base] + [f"{base}.{a.name}" for a in node.names]:
                if target in names and target != mod:
                    edges.setdefault(mod, set()).add(target)
    return edges


def test_no_module_or_room_imports_one_that_imports_it_back():
    """Floors, not loops: neither two modules nor two rooms (sub-packages; a top-level module is its own
    room) import each other, directly or round a loop."""
    import networkx as nx

    edges = _imports_at_run_time()
    modules = nx.DiGraph([(a, b) for a, targets in edges.items() for b in targets])
    assert len(modules) > 100   # the scan found the package
    loops = [c for c in nx.simple_cycles(modules) if "egomem_ros" not in c]   # the package's __init__ aside
    assert not loops, loops

    def room(mod: str) -> str:
        parts = mod.split(".")
        return ".".join(parts[:3 if len(parts) > 3 and parts[1] == "tools" else 2])

    rooms = nx.DiGraph([(room(a), room(b)) for a, b in modules.edges if room(a) != room(b)])
    assert not list(nx.simple_cycles(rooms)), list(nx.simple_cycles(rooms))[:5]
