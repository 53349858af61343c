"""Running a lifecycle node as a process: `run` (the console scripts' entry point) and `spin` (signals and
the `shutdown` transition end the process the lifecycle way)."""
from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Callable

from .lifecycle import LifecycleNode


def spin(node: LifecycleNode, threads: int = 4) -> int:
    """Spin `node` until SIGINT or SIGTERM, or until its `shutdown` transition, then stop it the lifecycle
    way: on_shutdown runs (the memory node writes what it buffered) before the node is destroyed. Returns
    the process exit code.

    rclpy's own signal handlers are off (`rclpy.init(signal_handler_options=NO)` in `run`): they shut the
    context down under the executor, and the lifecycle never sees the signal. A second signal while
    shutting down quits at once.
    """
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    stop = threading.Event()

    def on_signal(signum: int, _frame) -> None:
        if stop.is_set():
            node.get_logger().error("second signal: quitting without finishing the shutdown")
            os._exit(130)
        node.get_logger().info(f"{signal.Signals(signum).name}: shutting down (signal again to quit at once)")
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    executor = MultiThreadedExecutor(num_threads=threads)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, name="executor", daemon=True)
    spinner.start()
    try:
        # a `shutdown` transition (from a launch file or `change_state`) ends the process too
        while spinner.is_alive() and not stop.wait(0.2) and node.lifecycle_state() != "finalized":
            pass
        executor.shutdown(timeout_sec=10.0)  # callbacks in flight finish first
        spinner.join(timeout=5.0)  # a thread left inside rclpy's C++ at exit aborts the interpreter
        if node.lifecycle_state() != "finalized":
            node.trigger_shutdown()
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def run(node_factory: Callable[[], LifecycleNode], args: list[str] | None = None, threads: int = 4) -> None:
    """Entry point of a node executable: init rclpy, build the node (a bad parameter is one clear line
    and exit 2), configure and activate it when its `autostart` parameter is true, and spin."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from ..config import ConfigError
    from ..procs import private_files

    private_files()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        from .params import check_command_line

        check_command_line(sys.argv if args is None else args)
        node = node_factory()
    except ConfigError as err:
        rclpy.logging.get_logger("egomem").fatal(str(err))
        rclpy.try_shutdown()
        sys.exit(2)
    if node.autostart and not node.start_up():
        node.get_logger().fatal("autostart: configure or activate failed (see above)")
        node.destroy_node()
        rclpy.try_shutdown()
        sys.exit(2)
    sys.exit(spin(node, threads))
