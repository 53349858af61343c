"""`wait_active NODE... [--timeout S]`: return once every named lifecycle node is active.

The nodes load their models in configure, which takes seconds (4-12 s on a laptop CPU). `replay.launch.py`
starts `ros2 bag play` only after this exits 0, so the start of a bag never plays into inactive nodes.
Exit 0: all active; 1: the timeout passed (the nodes still inactive are named); 2: bad arguments.
"""
from __future__ import annotations

import argparse
import sys
import time

ACTIVE = 3   # lifecycle_msgs/msg/State.PRIMARY_STATE_ACTIVE


def inactive_nodes(node, names: list[str], timeout_s: float, poll_s: float = 0.5) -> list[str]:
    """Ask each node's `get_state` until all are active or `timeout_s` passes; the ones still not active."""
    import rclpy
    from lifecycle_msgs.srv import GetState

    clients = {n: node.create_client(GetState, f"/{n.strip('/')}/get_state") for n in names}
    waiting = list(names)
    deadline = time.monotonic() + timeout_s
    while waiting and time.monotonic() < deadline:
        for name in list(waiting):
            client = clients[name]
            if not client.service_is_ready():
                continue
            future = client.call_async(GetState.Request())
            rclpy.spin_until_future_complete(node, future, timeout_sec=max(0.1, min(2.0, deadline - time.monotonic())))
            if future.done() and future.result() is not None and future.result().current_state.id == ACTIVE:
                waiting.remove(name)
        if waiting:
            rclpy.spin_once(node, timeout_sec=poll_s)
    for client in clients.values():
        node.destroy_client(client)
    return waiting


def main(argv: list[str] | None = None) -> int:
    import rclpy
    from rclpy.utilities import remove_ros_args

    args = remove_ros_args(sys.argv if argv is None else argv)[1:]
    parser = argparse.ArgumentParser(prog="wait_active", description=__doc__.splitlines()[0])
    parser.add_argument("nodes", nargs="+", help="lifecycle node names (identity_node memory_node dialog_node)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (default 120)")
    opts = parser.parse_args(args)
    if opts.timeout <= 0:
        parser.error("--timeout must be positive")
    rclpy.init(args=sys.argv if argv is None else argv)
    node = rclpy.create_node("egomem_wait_active")
    try:
        t0 = time.monotonic()
        waiting = inactive_nodes(node, opts.nodes, opts.timeout)
    except KeyboardInterrupt:
        return 130
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    if waiting:
        print(f"wait_active: not active after {opts.timeout:.0f} s: {', '.join(waiting)}", file=sys.stderr)
        return 1
    print(f"wait_active: {', '.join(opts.nodes)} active after {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
