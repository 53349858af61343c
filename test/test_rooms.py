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
