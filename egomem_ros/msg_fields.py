"""What egomem publishes, as plain nested field dictionaries.

The rclpy nodes fill real messages from them (`ros/util.fill`), `egomem replay` builds rosbags
messages from them (`ros_types.make`): one description of every output, two transports.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .hri import face_id, voice_id
from .memchunk import MemChunk
from .msg_conversions import sec_to_stamp

IDENTITY_STATUS = {"nobody": 0, "known": 1, "unknown": 2}
EVENT_OPS = {"ADD": 0, "UPDATE": 1, "INVALIDATE": 2, "DELETE": 3}
IDS_PERSON, IDS_FACE, IDS_VOICE = 1, 2, 4


def header(t: float, frame_id: str = "") -> dict[str, Any]:
    return {"stamp": sec_to_stamp(t), "frame_id": frame_id}


def pcm16(pcm: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] -> little-endian int16 samples (clipped), as audio messages carry them."""
    return (np.clip(pcm, -1.0, 1.0) * 32767).astype("<i2")


def audio_frame_fields(pcm: np.ndarray, sample_rate: int, t: float, frame_id: str = "") -> dict[str, Any]:
    """egomem_msgs/AudioFrame: mono float audio as interleaved int16."""
    return {"header": header(t, frame_id), "sample_rate": int(sample_rate), "channels": 1, "data": pcm16(pcm)}


def identity_fields(event, frame_id: str = "") -> dict[str, Any]:
    face, voice = event.learnable_face, event.learnable_voice
    return {
        "header": header(event.stamp, frame_id),
        "status": IDENTITY_STATUS[event.status],
        "user_id": event.user_id,
        "name": event.name,
        "confidence": float(event.confidence),
        "face_present": event.face is not None,
        "voice_present": event.voice is not None,
        "face_distance": float(event.face_distance),
        "voice_score": float(event.voice_score),
        # embeddings travel only for a person memory management may enrol
        "face_model": face.model if face else "",
        "face_embedding": face.embedding.astype(np.float32) if face else [],
        "voice_model": voice.model if voice else "",
        "voice_embedding": voice.embedding.astype(np.float32) if voice else [],
    }


def memchunk_fields(chunk: MemChunk, t: float) -> dict[str, Any]:
    return {"header": header(t), "level": chunk.level, "user_id": chunk.user_id, "text": chunk.text,
            "token_count": chunk.token_count, "version": chunk.version, "tokenizer": chunk.tokenizer}


def memory_event_fields(rec, t: float) -> dict[str, Any]:
    return {"header": header(t), "op": EVENT_OPS[rec.op], "user_id": rec.user_id, "item_kind": rec.item_kind,
            "item_id": rec.item_id, "text": rec.text, "episode_id": rec.episode_id}


def candidate_matches(event, previous_person: str) -> list[dict[str, Any]]:
    """hri_msgs/IdsMatch person<->face and person<->voice, plus a 0-confidence match for the person
    whose feature was lost (REP-155: confidence 0 means "not associated")."""
    out = []
    person = event.user_id if event.status == "known" else ""
    if previous_person and previous_person != person:
        for kind, feature in ((IDS_FACE, face_id), (IDS_VOICE, voice_id)):
            out.append({"id1": feature(previous_person), "id1_type": kind, "id2": previous_person,
                        "id2_type": IDS_PERSON, "confidence": 0.0})
    if person:
        if event.face is not None:
            out.append({"id1": face_id(person), "id1_type": IDS_FACE, "id2": person, "id2_type": IDS_PERSON,
                        "confidence": float(event.confidence)})
        if event.voice is not None:
            out.append({"id1": voice_id(person), "id1_type": IDS_VOICE, "id2": person, "id2_type": IDS_PERSON,
                        "confidence": float(event.confidence)})
    return out


def image_fields(rgb: np.ndarray, t: float, frame_id: str = "") -> dict[str, Any]:
    h, w = rgb.shape[:2]
    return {"header": header(t, frame_id), "height": h, "width": w, "encoding": "rgb8", "is_bigendian": 0,
            "step": w * 3, "data": np.ascontiguousarray(rgb, dtype=np.uint8).ravel()}


def draw_debug(rgb: np.ndarray, event) -> np.ndarray:
    """Face box with name and confidence, drawn on a copy of the frame."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(rgb)
    draw = ImageDraw.Draw(im)
    label = {"known": f"{event.name or event.user_id} {event.confidence:.2f}",
             "unknown": f"unknown {event.user_id}", "nobody": "nobody"}[event.status]
    colour = {"known": (40, 220, 60), "unknown": (250, 180, 0), "nobody": (200, 200, 200)}[event.status]
    if event.face is not None:
        b = event.face.box
        draw.rectangle([b.left, b.top, b.right, b.bottom], outline=colour, width=3)
        draw.text((b.left + 3, max(0, b.top - 14)), label, fill=colour)
    else:
        draw.text((8, 8), label + (" (voice)" if event.voice is not None else ""), fill=colour)
    return np.asarray(im)


def name_marker(event, frame_id: str, lifetime_s: float = 3.0) -> dict[str, Any]:
    """A text marker (visualization_msgs/Marker TEXT_VIEW_FACING) above the robot for rviz."""
    text = {"known": event.name or event.user_id, "unknown": "unknown person", "nobody": ""}[event.status]
    return {"header": header(event.stamp, frame_id), "ns": "egomem_identity", "id": 0,
            "type": 9, "action": 0 if text else 2,  # TEXT_VIEW_FACING; DELETE when nobody
            "pose": {"position": {"x": 1.0, "y": 0.0, "z": 1.7}, "orientation": {"w": 1.0}},
            "scale": {"z": 0.15}, "color": {"r": 1.0, "g": 1.0, "b": 1.0, "a": 1.0},
            "lifetime": {"sec": int(lifetime_s), "nanosec": 0}, "text": text}


def profile_fields(store, user_id: str, *, facts: bool = True) -> dict[str, Any]:
    """egomem_msgs/UserProfile of a stored user (with facts, history included, when `facts`)."""
    u = store.get_user(user_id)
    names = {x.id: x.display_name for x in store.list_users()}
    items = store.facts(user_id, include_invalid=True) if facts else []
    return {
        "user_id": u.id, "name": u.name or "", "placeholder": u.placeholder,
        "created": sec_to_stamp(u.created_at), "last_seen": sec_to_stamp(u.last_seen or 0.0),
        "facts": [{"id": f.id, "kind": f.kind, "text": f.text, "source_episode": f.source_episode or "",
                   "valid_from": sec_to_stamp(f.valid_from), "invalid_at": sec_to_stamp(f.invalid_at or 0.0),
                   "superseded_by": f.superseded_by or ""} for f in items],
        "relations": [{"src_id": r.src, "dst_id": r.dst, "dst_name": names.get(r.dst, ""), "relation": r.relation}
                      for r in store.relations(user_id) if r.src == user_id],
        "face_keys": len(store.user_keys(user_id, "face")), "voice_keys": len(store.user_keys(user_id, "voice")),
    }
