"""The QoS profiles egomem's topics use (the lowest floor of `ros/`: the lifecycle base and the nodes
import them; it imports nothing of egomem)."""
from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

SENSOR_QOS = qos_profile_sensor_data
# The microphone: best effort like every sensor, but a deep queue. A Python node on a busy CPU (face
# models, Whisper workers) can leave its queue untaken for seconds; with the sensor default of 5, 0.1 s
# chunks are overwritten after half a second and memory hears words missing. 200 chunks (20 s of 0.1 s
# chunks) cost a few MB at most.
AUDIO_QOS = QoSProfile(depth=200, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT,
                       durability=DurabilityPolicy.VOLATILE)
# "Latched": a late joiner (the dialog node, rviz) gets the current MemChunk at once.
LATCHED_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
EVENTS_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
