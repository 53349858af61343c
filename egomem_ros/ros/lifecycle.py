"""The lifecycle every egomem node follows (the ROS4HRI / whisper_ros convention).

configure: read and validate the parameters, load the models, create publishers. activate: subscriptions,
services and timers. deactivate and cleanup undo those in order, so a node configured three times has one
publisher per topic; shutdown lets the node finish its work (`finish`) and releases everything. A node
started with the ROS parameter `autostart:=true` configures and activates itself.
"""
from __future__ import annotations

import copy
from typing import Any, Iterable

from rclpy.lifecycle import LifecycleNode as RclpyLifecycleNode
from rclpy.lifecycle import LifecyclePublisher, State, TransitionCallbackReturn
from rclpy.parameter import Parameter

from ..config import EgomemConfig
from ..errors import EgomemError
from .params import SchemaParameters
from .qos import LATCHED_QOS, SENSOR_QOS

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class LifecycleNode(RclpyLifecycleNode):
    """Schema parameters, entities tracked by the transition that made them, and the hooks below."""

    def __init__(self, name: str, prefixes: tuple[str, ...], live: Iterable[str] = ()) -> None:
        super().__init__(name)
        self.autostart = bool(self.declare_parameter("autostart", False).value)
        self.params = SchemaParameters(self, prefixes, live, self.apply_live,
                                       can_reconfigure=lambda: self.lifecycle_state() == "unconfigured")
        self.cfg: EgomemConfig = self.params.config
        self._configured: list[Any] = []   # publishers, clients: released in cleanup
        self._active: list[Any] = []       # subscriptions, services, timers: released in deactivate

    # -- hooks for the nodes ------------------------------------------------------------------------
    def setup(self) -> None:
        """configure: load models, open the store, create publishers (`self.publisher`)."""

    def start(self) -> None:
        """activate: create subscriptions, services, timers (`self.subscription` ...)."""

    def teardown(self) -> None:
        """cleanup / shutdown: release what `setup` loaded."""

    def finish(self) -> None:
        """shutdown from a configured state, before `teardown`: finish the node's work."""

    def apply_live(self, changes: dict[str, Any]) -> None:
        """A live parameter changed (already validated and set on `self.cfg`)."""

    # -- entities -----------------------------------------------------------------------------------
    def publisher(self, *args, **kwargs) -> LifecyclePublisher:
        pub = self.create_lifecycle_publisher(*args, **kwargs)
        self._configured.append(pub)
        return pub

    def client(self, *args, **kwargs):
        cli = self.create_client(*args, **kwargs)
        self._configured.append(cli)
        return cli

    def subscription(self, *args, **kwargs):
        sub = self.create_subscription(*args, **kwargs)
        self._active.append(sub)
        return sub

    def service(self, *args, **kwargs):
        self._active.append(self.create_service(*args, **kwargs))

    def timer(self, *args, **kwargs):
        timer = self.create_timer(*args, **kwargs)
        self._active.append(timer)
        return timer

    def sensor_subscription(self, msg_type, topic: str, callback, callback_group=None, qos=None):
        """Camera and microphone: sensor-data QoS (best effort, the last 5; `qos` for another profile, like
        the microphone's `AUDIO_QOS`), which a user can change with the standard ROS 2 QoS override
        parameters of the resolved topic, e.g.
        `-p qos_overrides./camera/image_raw.subscription.reliability:=reliable` (and `.depth`, `.history`)."""
        from rclpy.qos_overriding_options import QoSOverridingOptions


        # a copy: rclpy writes the overrides into the profile it is given, and SENSOR_QOS is shared
        return self.subscription(msg_type, topic, callback, copy.copy(qos or SENSOR_QOS), callback_group=callback_group,
                                 qos_overriding_options=QoSOverridingOptions.with_default_policies())

    def info_subscription(self, msg_type, topic: str, callback, callback_group=None) -> None:
        """A stream-info topic (AudioInfo) whose publisher may be latched or not. A volatile best-effort
        subscription hears every publisher's new messages; once a transient-local publisher appears, a
        latched one is added so its last message (sent before we joined) arrives too. One subscription
        with fixed durability would be incompatible with half of the drivers, and drop all audio."""
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy


        self.subscription(msg_type, topic, callback,
                          QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                                     durability=DurabilityPolicy.VOLATILE), callback_group=callback_group)
        resolved, latched = self.resolve_topic_name(topic), []

        def match_latched_publishers() -> None:
            offered = {i.qos_profile.durability for i in self.get_publishers_info_by_topic(resolved)}
            if DurabilityPolicy.TRANSIENT_LOCAL in offered and not latched:
                latched.append(self.subscription(msg_type, topic, callback, LATCHED_QOS,
                                                 callback_group=callback_group))

        match_latched_publishers()
        self.timer(1.0, match_latched_publishers, callback_group=callback_group)

    def retime(self, timer, period_s: float):
        """A live period change: the same callback and group on a new timer (rclpy timers keep their period)."""
        new = self.timer(period_s, timer.callback, callback_group=timer.callback_group)
        self.release(timer)
        return new

    def release(self, entity: Any) -> None:
        """Destroy one tracked entity (a publisher, subscription, service, client or timer)."""
        from rclpy.client import Client
        from rclpy.service import Service
        from rclpy.subscription import Subscription
        from rclpy.timer import Timer

        for kind, destroy in ((LifecyclePublisher, self.destroy_lifecycle_publisher),
                              (Subscription, self.destroy_subscription), (Service, self.destroy_service),
                              (Timer, self.destroy_timer), (Client, self.destroy_client)):
            if isinstance(entity, kind):
                destroy(entity)
                break
        for tracked in (self._active, self._configured):
            if entity in tracked:
                tracked.remove(entity)

    def _release_all(self, entities: list[Any]) -> None:
        for entity in list(entities):
            self.release(entity)

    # -- transitions --------------------------------------------------------------------------------
    def lifecycle_state(self) -> str:
        return self._state_machine.current_state[1]

    def start_up(self) -> bool:
        """configure + activate (autostart, tests)."""
        return self.trigger_configure() == SUCCESS and self.trigger_activate() == SUCCESS

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self.cfg = self.params.current()
            self.setup()
        except (EgomemError, ImportError, OSError, RuntimeError) as err:   # ours, a missing package or file, a model
            self.get_logger().error(f"configure failed: {err}")
            self._release_all(self._configured)
            self.teardown()
            return FAILURE
        return SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self.start()
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._release_all(self._active)
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._release_all(self._configured)
        self.teardown()
        return SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._release_all(self._active)
        if state.label != "unconfigured":
            try:
                self.finish()
            finally:
                self._release_all(self._configured)
                self.teardown()
        return SUCCESS

    def on_error(self, state: State) -> TransitionCallbackReturn:
        self.get_logger().error(f"error in state {state.label}: releasing everything")
        self._release_all(self._active)
        self._release_all(self._configured)
        self.teardown()
        return SUCCESS

    def set_param(self, name: str, value: Any) -> bool:
        """Set one parameter through the same validation as `ros2 param set` (tests, tools)."""
        return self.set_parameters([Parameter(name, value=value)])[0].successful
