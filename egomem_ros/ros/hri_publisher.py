"""The identity node's ROS4HRI (REP-155) output: what `egomem_ros.hri.hri_view` says, as `/humans/...` topics.

Per poll: `/humans/faces/tracked`, `/humans/voices/tracked`, `/humans/persons/tracked` (hri_msgs/IdsList),
`/humans/faces/<id>/roi` (hri_msgs/NormalizedRegionOfInterest2D), `/humans/voices/<id>/is_speaking`
(std_msgs/Bool). `/humans/candidate_matches` (hri_msgs/IdsMatch) is one of the
pipeline's outputs; the node publishes it through `matches`. Latched: `/humans/persons/known`
(every enrolled person), `/humans/persons/<id>/face_id`, `voice_id` and, after a merge, `alias` (the id
the person now goes by). Without hri_msgs installed, nothing is published and the node says so once.
"""
from __future__ import annotations

from std_msgs.msg import Bool, String

from .. import msg_fields as F
from ..hri import HriView, hri_view
from .qos import LATCHED_QOS
from .util import fill

try:  # optional: ROS4HRI
    from hri_msgs.msg import IdsList, IdsMatch, NormalizedRegionOfInterest2D
except ImportError:  # pragma: no cover - depends on the robot
    IdsList = IdsMatch = NormalizedRegionOfInterest2D = None


class HriPublisher:
    def __init__(self, node, frame_id: str = "camera") -> None:
        self.node, self.frame_id = node, frame_id
        self.available = IdsList is not None
        self._pubs: dict[tuple[str, str], object] = {}
        self._last = HriView()
        self.IdsMatch = IdsMatch
        if not self.available:
            node.get_logger().warning("hri_msgs is not installed: no /humans/... (ROS4HRI) output")
            return
        self.matches = node.publisher(IdsMatch, "/humans/candidate_matches", 10)
        self.tracked = {kind: node.publisher(IdsList, f"/humans/{kind}/tracked", 10) for kind in ("faces", "voices", "persons")}
        self.known_pub = node.publisher(IdsList, "/humans/persons/known", LATCHED_QOS)

    def publish(self, event, t: float) -> None:
        """One poll's faces, voices and persons."""
        if not self.available:
            return
        view = hri_view(event)
        head = F.header(t, self.frame_id)
        for kind, ids in (("faces", list(view.faces)), ("voices", view.voices), ("persons", view.persons)):
            self.tracked[kind].publish(fill(IdsList(), {"header": head, "ids": ids}))
        for fid, (xmin, ymin, xmax, ymax, c) in view.faces.items():
            self._topic(NormalizedRegionOfInterest2D, f"/humans/faces/{fid}/roi").publish(fill(
                NormalizedRegionOfInterest2D(), {"header": head, "xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax, "c": c}))
        for vid in set(self._last.voices) | set(view.voices):
            self._topic(Bool, f"/humans/voices/{vid}/is_speaking").publish(Bool(data=vid in view.voices))
        for person, fid in view.person_face.items():
            if self._last.person_face.get(person) != fid:
                self._topic(String, f"/humans/persons/{person}/face_id", LATCHED_QOS).publish(String(data=fid))
        for person, vid in view.person_voice.items():
            if self._last.person_voice.get(person) != vid:
                self._topic(String, f"/humans/persons/{person}/voice_id", LATCHED_QOS).publish(String(data=vid))
        self._last = view

    def known(self, person_ids: list[str], t: float) -> None:
        """Every person the memory knows, whether in view or not."""
        if self.available:
            self.known_pub.publish(fill(IdsList(), {"header": F.header(t, self.frame_id), "ids": sorted(person_ids)}))

    def alias(self, merged: str, kept: str) -> None:
        """`merged` was merged into `kept`: ROS4HRI clients follow the alias to the person's id."""
        if self.available and merged and merged != kept:
            self._topic(String, f"/humans/persons/{merged}/alias", LATCHED_QOS).publish(String(data=kept))

    def close(self) -> None:
        for pub in self._pubs.values():
            self.node.destroy_publisher(pub)
        self._pubs.clear()
        self._last = HriView()

    def _topic(self, msg_type, topic: str, qos=10):
        key = (msg_type.__name__, topic)
        if key not in self._pubs:
            self._pubs[key] = self.node.create_publisher(msg_type, topic, qos)
        return self._pubs[key]
