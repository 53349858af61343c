"""The node classes over real rclpy and Fast DDS, in this process: lifecycle, services, topics, QoS and
parameters. Inputs are real faces and speech from ../shared/data. Node processes, signals and the whole
graph against `egomem replay` are in test_ros_graph.py."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from egomem_msgs.msg import AudioFrame, Identity, MemChunk, MemoryEvent
from egomem_msgs.srv import EnrollUser, ForgetUser, GetProfile, ListUsers, MergeUsers, RetrieveText
from hri_msgs.msg import IdsList, IdsMatch, NormalizedRegionOfInterest2D
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import Ros, end_context, next_domain, wait_until
from sensor_msgs.msg import Image
from std_msgs.msg import String

from egomem_ros import msg_fields as F
from egomem_ros.config import ConfigError
from egomem_ros.ros.qos import LATCHED_QOS
from egomem_ros.ros.util import fill

BASE = {"identity.face.worker_process": False, "memory.asr": "none"}


@pytest.fixture
def ros(tmp_path):
    harness = Ros({**BASE, "store.db_path": str(tmp_path / "memory.db")})
    yield harness
    harness.close()


def _face_image(shared, who: str, n: int, t: float) -> Image:
    from egomem_ros.retrieval.media import load_image

    canvas = np.full((480, 640, 3), 90, np.uint8)
    canvas[100:350, 200:450] = load_image(shared / "faces" / who / f"{n}.jpg")
    return fill(Image(), F.image_fields(canvas, t, "camera"))


def _speech(shared, spk: str, n: int) -> np.ndarray:
    from egomem_ros.retrieval.media import load_audio

    return (load_audio(shared / "speech" / spk / f"{n}.wav") * 32767).astype(np.int16)


def _audio_info():
    from audio_common_msgs.msg import AudioInfo

    return AudioInfo(channels=1, sample_rate=16000, sample_format="S16LE")


def _audio_chunk(pcm: np.ndarray, t: float):
    from audio_common_msgs.msg import AudioDataStamped

    return fill(AudioDataStamped(), {"header": F.header(t), "audio": {"data": pcm.view(np.uint8)}})


def test_memory_and_identity_nodes_over_dds(ros, shared_data):
    """Lifecycle through the change_state service, enrolment by service, recognition from topics, the
    memory services, and forgetting that reaches the identity node through memory_events."""
    from egomem_ros.ros.identity_node import IdentityNode
    from egomem_ros.ros.memory_node import MemoryNode

    ros.add(MemoryNode())
    assert ros.state("memory_node") == "unconfigured"
    ros.transition("memory_node", "configure", "activate")
    assert ros.state("memory_node") == "active"
    voice = fill(AudioFrame(), {"sample_rate": 16000, "channels": 1, "data": _speech(shared_data, "librispeech_1688", 1)})
    faces = [_face_image(shared_data, "Tony_Blair", n, 0.0) for n in (1, 2)]
    resp = ros.call(EnrollUser, "/memory_node/enroll_user", EnrollUser.Request(name="Tony", faces=faces, voices=[voice]))
    assert resp.success, resp.message
    tony = resp.user_id

    identity = ros.add(IdentityNode())
    ros.transition("identity_node", "configure", "activate")
    idents = ros.collect(Identity, "/identity")
    # a ROS4HRI client (REP-155): tracked faces and persons, their matches, and the persons known
    faces_tracked = ros.collect(IdsList, "/humans/faces/tracked")
    persons_tracked = ros.collect(IdsList, "/humans/persons/tracked")
    persons_known = ros.collect(IdsList, "/humans/persons/known", LATCHED_QOS)
    matches = ros.collect(IdsMatch, "/humans/candidate_matches")
    l1 = ros.collect(MemChunk, "/memchunk/level1", LATCHED_QOS)
    info_pub = ros.probe.create_publisher(type(_audio_info()), "/audio_info", 10)  # volatile, like most drivers
    image_pub = ros.probe.create_publisher(Image, "/image", 10)
    audio_pub = ros.probe.create_publisher(type(_audio_chunk(np.zeros(2, np.int16), 0.0)), "/audio", 10)
    wait_until(lambda: info_pub.get_subscription_count() and audio_pub.get_subscription_count(), 10, "subscribers")
    speech = _speech(shared_data, "librispeech_1688", 3)

    def known():
        now = ros.probe.get_clock().now().nanoseconds * 1e-9
        info_pub.publish(_audio_info())
        image_pub.publish(_face_image(shared_data, "Tony_Blair", 3, now))
        audio_pub.publish(_audio_chunk(speech[:16000], now - 1.0))
        audio_pub.publish(_audio_chunk(speech[16000:32000], now))
        return [m for m in idents if m.status == Identity.KNOWN]

    got = wait_until(known, 30, "a known identity", poll=0.5)
    assert got[0].user_id == tony and got[0].name == "Tony"
    wait_until(lambda: any(f"f{tony}" in m.ids for m in faces_tracked) and any(tony in m.ids for m in persons_tracked),
               10, "Tony's face and person tracked")
    assert any(m.id1 == f"f{tony}" and m.id2 == tony and m.confidence > 0.5 for m in matches)
    assert wait_until(lambda: persons_known, 10, "the persons known")[-1].ids == [tony]
    rois = ros.collect(NormalizedRegionOfInterest2D, f"/humans/faces/f{tony}/roi")
    face_of = ros.collect(String, f"/humans/persons/{tony}/face_id", LATCHED_QOS)
    roi = wait_until(lambda: known() and rois and rois[-1], 30, "the face's region", poll=0.5)
    assert 0.0 <= roi.xmin < roi.xmax <= 1.0 and 0.0 <= roi.ymin < roi.ymax <= 1.0 and roi.c > 0.5
    assert wait_until(lambda: face_of, 10, "Tony's face id")[-1].data == f"f{tony}"
    assert identity.audio_format.info == (1, 16000, "S16LE")  # a volatile AudioInfo publisher is heard
    wait_until(lambda: l1, 10, "the Level-1 chunk")
    assert l1[-1].level == 1 and "Tony" in l1[-1].text

    prof = ros.call(GetProfile, "/memory_node/get_profile", GetProfile.Request(user_id=tony))
    assert prof.found and prof.profile.name == "Tony" and prof.profile.face_keys == 2
    r = ros.call(RetrieveText, "/memory_node/retrieve_text",
                 RetrieveText.Request(user_id=tony, relation_query=["colleague"], keyword_query=[], k=5))
    assert r.success and r.chunk.level == 2 and list(r.item_ids) == []
    r = ros.call(RetrieveText, "/memory_node/retrieve_text", RetrieveText.Request(user_id="nobody", keyword_query=["x"]))
    assert not r.success and "unknown user" in r.message
    long_id = "x" * 1_000_000
    prof = ros.call(GetProfile, "/memory_node/get_profile", GetProfile.Request(user_id=long_id))
    assert not prof.found and len(prof.message) < 200
    merged = ros.call(MergeUsers, "/memory_node/merge_users", MergeUsers.Request(keep_id="", merge_id=""))
    assert not merged.success and "two user ids" in merged.message
    events = ros.collect(MemoryEvent, "/memory_events", 100)
    wait_until(lambda: ros.probe.count_subscribers("/memory_events") >= 2, 10, "memory_events subscribers")
    assert ros.call(ForgetUser, "/memory_node/forget_user", ForgetUser.Request(user_id=tony)).success
    wait_until(lambda: tony not in identity.poller.face_gallery.users(), 10, "the identity node to forget Tony")
    assert events and events[-1].op == MemoryEvent.DELETE
    assert list(ros.call(ListUsers, "/memory_node/list_users", ListUsers.Request(include_placeholders=True)).users) == []
    ros.transition("memory_node", "deactivate")
    assert "/memory_node/enroll_user" not in {n for n, _ in ros.probe.get_service_names_and_types()}


def test_configure_cleanup_cycles_leave_one_publisher_per_topic(ros):
    from egomem_ros.ros.memory_node import MemoryNode

    ros.add(MemoryNode())
    for _ in range(3):
        ros.transition("memory_node", "configure", "cleanup")
    ros.transition("memory_node", "configure")
    wait_until(lambda: ros.probe.count_publishers("/memory_events") == 1, 5, "one publisher")
    time.sleep(0.5)
    assert ros.probe.count_publishers("/memory_events") == 1
    assert ros.probe.count_publishers("/memchunk/level2") == 1


def test_shipped_params_file_starts_every_node(tmp_path):
    """config/egomem.yaml as ROS reads it (`--params-file`): no null, no unknown key, every node starts."""
    import rclpy

    from conftest import REPO
    from egomem_ros.ros.dialog_node import DialogNode
    from egomem_ros.ros.identity_node import IdentityNode
    from egomem_ros.ros.memory_node import MemoryNode

    rclpy.init(domain_id=next_domain(), args=["--ros-args", "--params-file", str(REPO / "config" / "egomem.yaml"),
                     "-p", f"store.db_path:={tmp_path / 'm.db'}", "-p", "identity.poll_period_s:=2"])
    try:
        nodes = [MemoryNode(), IdentityNode(), DialogNode()]
        assert nodes[0].cfg.memory.trigger_voice_split_contrast < 0   # the checkpoint's own
        assert nodes[1].get_parameter("identity.poll_period_s").value == 2.0  # an integer on the command line
        for node in nodes:
            node.destroy_node()
    finally:
        end_context()


@pytest.mark.parametrize("args, match", [
    (["-p", "identity.poll_period_s:=-1.0"], "identity.poll_period_s"),
    (["-p", "identity.poll_perod_s:=2.0"], "unknown egomem parameters.*identity.poll_perod_s"),
    (["-p", "identity.face.multi_face_policy:=foo"], "multi_face_policy"),
])
def test_bad_startup_parameter_is_one_clear_error(args, match):
    import rclpy

    from egomem_ros.ros.identity_node import IdentityNode

    rclpy.init(domain_id=next_domain(), args=["--ros-args", *args])
    try:
        with pytest.raises(ConfigError, match=match):
            IdentityNode()
    finally:
        end_context()


def test_run_time_parameters_are_validated_and_applied_or_refused(ros):
    from egomem_ros.ros.identity_node import IdentityNode

    node = ros.add(IdentityNode())
    assert node.start_up()
    assert node._poll_timer.timer_period_ns == 2_000_000_000
    assert node.set_param("identity.poll_period_s", 0.5)
    assert node._poll_timer.timer_period_ns == 500_000_000 and node.poller.cfg.poll_period_s == 0.5
    assert node.set_param("identity.poll_period_s", 1)  # an integer is the float it means
    assert node.poller.cfg.poll_period_s == 1.0
    assert not node.set_param("identity.poll_period_s", -5.0)
    assert node.poller.cfg.poll_period_s == 1.0
    assert not node.set_param("identity.face.multi_face_policy", "foo")
    res = node.set_parameters([__import__("rclpy").parameter.Parameter("identity.face.multi_face_policy",
                                                                       value="central")])[0]
    assert not res.successful and "take effect at configure" in res.reason  # refused while configured
    assert not node.set_param("identity.face_weight", 1.5)
    assert node.set_param("identity.face_weight", 0.3) and node.poller.cfg.face_weight == 0.3
    node.trigger_deactivate()
    node.trigger_cleanup()
    assert node.set_param("identity.face.multi_face_policy", "central")  # unconfigured: taken at configure
    assert node.trigger_configure().name == "SUCCESS"
    assert node.poller.face.policy == "central"
    desc = node.describe_parameter("identity.poll_period_s")
    assert desc.floating_point_range and desc.floating_point_range[0].from_value == 0.1   # the schema bound, told to ROS


def test_latched_audio_info_is_heard_too(ros):
    """A transient-local AudioInfo publisher that published before the node started is heard as well."""
    from egomem_ros.ros.identity_node import IdentityNode

    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    pub = ros.probe.create_publisher(type(_audio_info()), "/audio_info", latched)
    pub.publish(_audio_info())
    node = ros.add(IdentityNode())
    assert node.start_up()
    wait_until(lambda: node.audio_format.info, 10, "the latched AudioInfo")


def test_dialog_node_external_prompt_and_retr_over_dds(ros):
    from egomem_ros.ros.dialog_node import DialogNode

    node = ros.add(DialogNode())
    assert node.start_up()
    prompts = ros.collect(String, "/dialog/system_prompt", LATCHED_QOS)
    l1 = ros.probe.create_publisher(MemChunk, "/memchunk/level1", LATCHED_QOS)
    l2 = ros.probe.create_publisher(MemChunk, "/memchunk/level2", LATCHED_QOS)
    l1.publish(MemChunk(level=1, user_id="abcde", text="User: Emily", version=1))
    l2.publish(MemChunk(level=2, user_id="abcde", text="- John (your colleague): tennis", version=1))
    wait_until(lambda: prompts and "John (your colleague)" in prompts[-1].data, 10, "the prompt with both chunks")
    assert "User: Emily" in prompts[-1].data and "<retr>" in prompts[-1].data
    l1.publish(MemChunk(level=1, user_id="fghij", text="User: Sam", version=2))
    wait_until(lambda: "Sam" in prompts[-1].data, 10, "Sam's prompt")
    assert "John" not in prompts[-1].data   # another person's Level-2 memory is dropped
    # it reads dialog/text (the robot stack's <retr>) and never publishes on it
    assert ros.probe.count_publishers("/dialog/text") == 0


def test_dialog_node_moshi_mode_streams_audio_and_follows_memchunks(tmp_path):
    from egomem_ros.dialog import moshi_checkpoint as mc
    from egomem_ros.ros.dialog_node import DialogNode

    ckpt = mc.write_tiny_checkpoint(tmp_path / "ckpt")
    ros = Ros({"dialog.mode": "moshi", "dialog.checkpoint": str(ckpt), "dialog.queue_frames": 64,
               "memchunk.l1_max_tokens": 64, "memchunk.l2_max_tokens": 32})
    try:
        node = ros.add(DialogNode())
        assert node.start_up()
        out = ros.collect(AudioFrame, "/dialog/audio_out")
        l1 = ros.probe.create_publisher(MemChunk, "/memchunk/level1", LATCHED_QOS)
        l2 = ros.probe.create_publisher(MemChunk, "/memchunk/level2", LATCHED_QOS)
        l1.publish(MemChunk(level=1, user_id="u1", text="User: Alice", version=1))
        l2.publish(MemChunk(level=2, user_id="u1", text="Carol swims", version=1))
        wait_until(lambda: "Carol" in node.composer.render(), 10, "both chunks")
        mic = ros.probe.create_publisher(AudioFrame, "/audio_frame", 10)
        wait_until(lambda: mic.get_subscription_count(), 10, "the dialog node's audio subscription")
        pcm = (3000 * np.sin(np.arange(16_000 * 0.5) * 0.05)).astype(np.int16)  # 0.5 s at 16 kHz
        mic.publish(fill(AudioFrame(), {"sample_rate": 16000, "channels": 1, "data": pcm}))
        wait_until(lambda: node.mode.runner.stats.frames_stepped == 6, 30, "6 frames stepped")  # 0.5 s = 6 x 80 ms
        wait_until(lambda: out, 10, "robot audio")
        assert out[-1].sample_rate == 24000 and len(out[-1].data) == 1920
        node.mode.engine.apply_pending_chunks()
        assert node.mode.engine.bank.active[1] and "Carol" in node.mode.engine.last_update[2].text
        l1.publish(MemChunk(level=1, user_id="u2", text="User: Bob", version=2))
        engine = node.mode.engine

        def bob_in_the_model() -> bool:   # the node's callback thread hands the chunks to the engine
            engine.apply_pending_chunks()
            return engine.last_update[1].text == "User: Bob"
        wait_until(bob_in_the_model, 10, "Bob's chunk in the model")
        assert engine.last_update[2].text == ""  # Alice's Level-2 memory is not left for Bob
    finally:
        ros.close()


def test_dialog_node_moshi_mode_without_checkpoint_fails_configure(tmp_path):
    from egomem_ros.ros.dialog_node import DialogNode

    ros = Ros({"dialog.mode": "moshi"})
    try:
        node = ros.add(DialogNode())
        assert node.trigger_configure().name == "FAILURE"
        assert node.lifecycle_state() == "unconfigured"
    finally:
        ros.close()


@pytest.mark.parametrize("node_name", ["identity_node", "memory_node"])
def test_a_store_that_cannot_open_fails_configure_and_says_why(tmp_path, node_name):
    """A StoreError (an EgomemError) is caught once by the lifecycle base, without re-wrapping."""
    import importlib

    (tmp_path / "file").write_text("not a folder")
    ros = Ros({"store.db_path": str(tmp_path / "file" / "memory.db")})
    try:
        module = importlib.import_module(f"egomem_ros.ros.{node_name}")
        node = ros.add(getattr(module, "IdentityNode" if node_name == "identity_node" else "MemoryNode")())
        assert node.trigger_configure().name == "FAILURE"
        assert node.lifecycle_state() == "unconfigured"
    finally:
        ros.close()


def test_dialog_node_cascaded_mode_answers_a_transcript(tmp_path):
    from test_llm_client import ScriptedServer

    from egomem_ros.ros.dialog_node import DialogNode

    server = ScriptedServer([(200, "Hello Alice, you are a nurse.", 0)])
    ros = Ros({"dialog.mode": "cascaded", "dialog.llm.base_url": server.url})
    try:
        node = ros.add(DialogNode())
        assert node.start_up()
        answers = ros.collect(String, "/dialog/response")
        l1 = ros.probe.create_publisher(MemChunk, "/memchunk/level1", LATCHED_QOS)
        l1.publish(MemChunk(level=1, user_id="u1", text="User: Alice\nFacts:\n- Alice is a nurse", version=1))
        wait_until(lambda: "nurse" in node.composer.render(), 10, "the chunk")
        user = ros.probe.create_publisher(String, "/dialog/user_text", 10)
        wait_until(lambda: user.get_subscription_count(), 10, "the subscription")
        user.publish(String(data="Who am I?"))
        wait_until(lambda: answers, 30, "the answer")
        assert answers[-1].data == "Hello Alice, you are a nurse."
        assert "Alice is a nurse" in server.requests[0]["body"]["messages"][0]["content"]
    finally:
        ros.close()
        server.close()


def test_sensor_qos_is_best_effort_unless_overridden(tmp_path):
    """Camera and microphone subscriptions take the standard ROS 2 QoS override parameters."""
    from rclpy.qos import ReliabilityPolicy as R

    from egomem_ros.ros.identity_node import IdentityNode

    ros = Ros({**BASE, "store.db_path": str(tmp_path / "m.db"), "qos_overrides./image.subscription.reliability": "reliable",
               "qos_overrides./image.subscription.depth": 50})
    try:
        node = ros.add(IdentityNode())
        assert node.start_up()
        qos = {t: [i.qos_profile for i in ros.probe.get_subscriptions_info_by_topic(t)] for t in ("/image", "/audio")}
        assert [q.reliability for q in qos["/image"]] == [R.RELIABLE]  # depth is not in the graph: ask the node
        assert node.get_parameter("qos_overrides./image.subscription.depth").value == 50
        assert [q.reliability for q in qos["/audio"]] == [R.BEST_EFFORT]
    finally:
        ros.close()


def test_a_mistyped_command_line_parameter_beside_a_params_file_is_an_error(tmp_path):
    """rcl drops `-p identity.poll_period_s:=abc` when a params file gives a float: the node says so and
    exits 2 instead of running with the file's value."""
    import subprocess
    import sys

    from conftest import REPO

    exe = Path(sys.executable).parent / "identity_node"
    r = subprocess.run([str(exe), "--ros-args", "--params-file", str(REPO / "config" / "egomem.yaml"),
                        "-p", f"store.db_path:={tmp_path / 'm.db'}", "-p", "identity.poll_period_s:=abc"],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "ROS_DOMAIN_ID": str(next_domain()), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"})
    assert r.returncode == 2 and "identity.poll_period_s" in r.stderr + r.stdout, r.stderr[-2000:]
