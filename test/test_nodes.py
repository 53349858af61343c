"""The rclpy node classes, driven through the rclpy stand-in in test/fake_ros.py (no ROS here).

Messages are rosbags' classes for the real definitions, so every field the nodes read or write is
checked against ROS 2's layout. launch_pytest tests in test/test_launch_ros.py run where ROS 2 is.
"""
import numpy as np
import pytest

import fake_ros
from egomem_ros import msg_fields as F
from egomem_ros.ros_types import make


@pytest.fixture
def ros(tmp_path):
    fake_ros.install({"store.db_path": str(tmp_path / "memory.db"), "identity.face.worker_process": False,
                      "memory.asr": "none"})
    yield tmp_path
    fake_ros.uninstall()


def _image(shared, who, n, t):
    from egomem_ros.retrieval.media import load_image

    canvas = np.full((480, 640, 3), 90, np.uint8)
    canvas[100:350, 200:450] = load_image(shared / "faces" / who / f"{n}.jpg")
    return make("sensor_msgs/msg/Image", F.image_fields(canvas, t, "camera"))


def _audio(shared, spk, n, t):
    from egomem_ros.retrieval.media import load_audio

    pcm = (load_audio(shared / "speech" / spk / f"{n}.wav")[16000:48000] * 32767).astype("<i2")
    return make("audio_common_msgs/msg/AudioDataStamped", {"header": F.header(t), "audio": {"data": pcm.view(np.uint8)}})


def test_memory_node_lifecycle_services_and_identity_node(ros, shared_data):
    from egomem_ros.ros.identity_node import IdentityNode
    from egomem_ros.ros.memory_node import MemoryNode

    memory = MemoryNode()
    assert memory.on_configure(None).name == "SUCCESS"
    assert memory.on_activate(None).name == "SUCCESS"
    assert set(memory.services) == {"~/retrieve_text", "~/get_profile", "~/list_users", "~/enroll_user",
                                    "~/forget_user", "~/merge_users"}
    srv_type, enroll = memory.services["~/enroll_user"]
    frames = [_image(shared_data, "Tony_Blair", n, 0.0) for n in (1, 2)]
    from egomem_ros.retrieval.media import load_audio

    pcm = (load_audio(shared_data / "speech" / "librispeech_1688" / "1.wav") * 32767).astype(np.int16)
    voice = make("egomem_msgs/msg/AudioFrame", {"sample_rate": 16000, "channels": 1, "data": pcm})
    resp = enroll(srv_type.Request(name="Tony", faces=frames, voices=[voice]), srv_type.Response())
    assert resp.success, resp.message
    tony = resp.user_id
    assert memory.publishers["memory_events"].sent[-1].item_kind == "user"

    node = IdentityNode()
    info = make("audio_common_msgs/msg/AudioInfo", {"channels": 1, "sample_rate": 16000, "sample_format": "S16LE"})
    node.subscriptions["audio_info"][1](info)
    node.subscriptions["image"][1](_image(shared_data, "Tony_Blair", 3, 101.5))
    node.subscriptions["audio"][1](_audio(shared_data, "librispeech_1688", 3, 100.0))
    node.subscriptions["image"][1](make("sensor_msgs/msg/Image", {"encoding": "16UC1", "height": 2, "width": 2,
                                                                  "step": 4, "data": np.zeros(8, np.uint8)}))
    node.clock.t = 102.0
    period, poll = node.timers[0]
    assert period == 2.0
    poll()
    ident = node.publishers["identity"].sent[-1]
    assert ident.status == 1 and ident.user_id == tony and ident.name == "Tony"
    l1 = node.publishers["memchunk/level1"].sent[-1]
    assert l1.level == 1 and "Tony" in l1.text
    matches = node.publishers["/humans/candidate_matches"].sent
    assert {(m.id1, m.id2) for m in matches} == {("f" + tony, tony), ("v" + tony, tony)}
    assert node.publishers["~/debug_image"].sent[-1].encoding == "rgb8"
    assert node.publishers["markers"].sent[-1].markers[0].text == "Tony"
    node.timers[1][1]()
    diag = node.publishers["/diagnostics"].sent[-1].status[0]
    assert diag.name == "egomem: identity" and {kv.key for kv in diag.values} >= {"polls", "rejected_frames"}
    assert any("16-bit depth" in line for _, line in node.logger.lines)

    # memory services see the identity node's user
    srv_type, get_profile = memory.services["~/get_profile"]
    prof = get_profile(srv_type.Request(user_id=tony), srv_type.Response())
    assert prof.found and prof.profile.name == "Tony" and prof.profile.face_keys == 2
    srv_type, retrieve = memory.services["~/retrieve_text"]
    r = retrieve(srv_type.Request(user_id=tony, relation_query=["colleague"], keyword_query=[], k=5), srv_type.Response())
    assert r.success and r.chunk.level == 2 and r.item_ids == []
    srv_type, forget = memory.services["~/forget_user"]
    assert forget(srv_type.Request(user_id=tony), srv_type.Response()).success
    node.subscriptions["memory_events"][1](memory.publishers["memory_events"].sent[-1])
    assert tony not in node.poller.face_gallery.users()   # forgetting acts at once
    assert node._reload_pending
    node.timers[0][1]()                                   # the next poll re-reads the store once
    assert not node._reload_pending and tony not in node.poller.voice_gallery.users()
    srv_type, list_users = memory.services["~/list_users"]
    assert list(list_users(srv_type.Request(include_placeholders=True), srv_type.Response()).users) == []
    assert memory.on_deactivate(None).name == "SUCCESS" and memory.services == {}
    assert memory.on_cleanup(None).name == "SUCCESS"
    node.destroy_node()


def test_bad_parameter_is_fatal_and_clear(ros):
    fake_ros.Node.overrides["identity.poll_period_s"] = -1.0
    from egomem_ros.config import ConfigError
    from egomem_ros.ros.identity_node import IdentityNode

    with pytest.raises(ConfigError, match="identity.poll_period_s"):
        IdentityNode()


def test_dialog_node_external_prompt(ros):
    from egomem_ros.ros.dialog_node import DialogNode

    node = DialogNode()
    on_chunk = node.subscriptions["memchunk/level1"][1]
    on_chunk(make("egomem_msgs/msg/MemChunk", {"level": 1, "user_id": "abcde", "text": "User: Emily", "version": 1}))
    on_chunk(make("egomem_msgs/msg/MemChunk", {"level": 2, "user_id": "abcde", "text": "- John (your colleague): tennis",
                                               "version": 1}))
    prompt = node.publishers["dialog/system_prompt"].sent[-1].data
    assert "User: Emily" in prompt and "John (your colleague)" in prompt and "<retr>" in prompt
    on_chunk(make("egomem_msgs/msg/MemChunk", {"level": 1, "user_id": "fghij", "text": "User: Sam", "version": 2}))
    prompt = node.publishers["dialog/system_prompt"].sent[-1].data
    assert "Sam" in prompt and "John" not in prompt   # another person's Level-2 memory is dropped
    node.subscriptions["dialog/text"][1](make("std_msgs/msg/String", {"data": "<retr>\ncolleague\n<answer>"}))
    assert any("not available" in line for _, line in node.logger.lines)


def test_dialog_node_moshi_mode_streams_audio_and_follows_memchunks(tmp_path):
    from egomem_ros.dialog import moshi_checkpoint as mc

    ckpt = mc.write_tiny_checkpoint(tmp_path / "ckpt")
    fake_ros.install({"dialog.mode": "moshi", "dialog.checkpoint": str(ckpt), "dialog.queue_frames": 64,
                      "memchunk.l1_max_tokens": 64, "memchunk.l2_max_tokens": 32})
    try:
        from egomem_ros.ros.dialog_node import DialogNode

        node = DialogNode()
        on_chunk = node.subscriptions["memchunk/level1"][1]
        on_chunk(make("egomem_msgs/msg/MemChunk", {"level": 1, "user_id": "u1", "text": "User: Alice", "version": 1}))
        on_chunk(make("egomem_msgs/msg/MemChunk", {"level": 2, "user_id": "u1", "text": "Carol swims", "version": 1}))
        pcm = (3000 * np.sin(np.arange(16_000 * 0.5) * 0.05)).astype(np.int16)  # 0.5 s at 16 kHz
        node.subscriptions["audio_frame"][1](make("egomem_msgs/msg/AudioFrame",
                                                  {"sample_rate": 16000, "channels": 1, "data": pcm}))
        node.runner.drain(timeout=30)
        assert node.runner.stats.frames_stepped == 6  # 0.5 s = 6 whole 80 ms frames
        out = node.publishers["dialog/audio_out"].sent
        assert out and out[-1].sample_rate == 24000 and len(out[-1].data) == 1920
        assert node.engine.bank.active[1] and "Carol" in node.engine.last_update[2].text
        on_chunk(make("egomem_msgs/msg/MemChunk", {"level": 1, "user_id": "u2", "text": "User: Bob", "version": 2}))
        node.engine.apply_pending_chunks()
        assert node.engine.last_update[2].text == ""  # Alice's Level-2 memory is not left for Bob
        assert node.engine.last_update[1].text == "User: Bob"
        node.destroy_node()
    finally:
        fake_ros.uninstall()


def test_dialog_node_moshi_mode_without_checkpoint_says_what_to_set(ros):
    fake_ros.Node.overrides["dialog.mode"] = "moshi"
    from egomem_ros.dialog.factory import DialogSetupError
    from egomem_ros.ros.dialog_node import DialogNode

    with pytest.raises(DialogSetupError, match="dialog.checkpoint is empty"):
        DialogNode()


def test_dialog_node_cascaded_mode_answers_a_transcript(ros):
    from test_llm_client import ScriptedServer

    server = ScriptedServer([(200, "Hello Alice, you are a nurse.", 0)])
    try:
        fake_ros.Node.overrides.update({"dialog.mode": "cascaded", "dialog.llm.base_url": server.url})
        from egomem_ros.ros.dialog_node import DialogNode

        node = DialogNode()
        node.subscriptions["memchunk/level1"][1](make("egomem_msgs/msg/MemChunk", {
            "level": 1, "user_id": "u1", "text": "User: Alice\nFacts:\n- Alice is a nurse", "version": 1}))
        node.subscriptions["dialog/user_text"][1](make("std_msgs/msg/String", {"data": "Who am I?"}))
        assert node.publishers["dialog/response"].sent[-1].data == "Hello Alice, you are a nurse."
        system = server.requests[0]["body"]["messages"][0]["content"]
        assert "Alice is a nurse" in system
    finally:
        server.close()
