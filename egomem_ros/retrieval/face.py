"""Face verification: detect -> align -> embed -> distance.

Embedded default (offline): dlib HOG detector (upsample 0: upsample 1 gave false faces on real
frames), 5-point landmarks for alignment, and dlib's ResNet 128-d descriptor; weights ship in
`face_recognition_models`. Distance is Euclidean with dlib's usual 0.6 cut-off (cosine distances are
compressed for this model, so the threshold is calibrated in Euclidean space).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from ..procs import init_worker

from .media import to_rgb8

log = logging.getLogger(__name__)

Metric = Literal["euclidean", "cosine"]


@dataclass(frozen=True)
class FaceBox:
    left: int
    top: int
    right: int
    bottom: int
    score: float = 1.0

    @property
    def area(self) -> int:
        return max(0, self.right - self.left) * max(0, self.bottom - self.top)

    @property
    def center(self) -> tuple[float, float]:
        return (self.left + self.right) / 2, (self.top + self.bottom) / 2


@dataclass(frozen=True)
class FaceObservation:
    box: FaceBox
    embedding: np.ndarray
    faces_in_frame: int
    model: str
    frame_size: tuple[int, int] = (0, 0)   # (height, width) of the frame the box is in


class FaceBackend(Protocol):
    model_name: str
    dim: int
    metric: Metric
    default_threshold: float

    def detect(self, rgb: np.ndarray) -> list[FaceBox]: ...

    def embed(self, rgb: np.ndarray, box: FaceBox) -> np.ndarray: ...


class DlibFaceBackend:
    model_name = "dlib_resnet_v1"
    dim = 128
    metric: Metric = "euclidean"
    default_threshold = 0.6

    def __init__(self, upsample: int = 0):
        import dlib
        import face_recognition_models as frm

        self._dlib = dlib
        self.upsample = upsample
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._encoder = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        rects, scores, _ = self._detector.run(rgb, self.upsample, 0.0)
        h, w = rgb.shape[:2]
        return [FaceBox(max(0, r.left()), max(0, r.top()), min(w, r.right()), min(h, r.bottom()), float(s))
                for r, s in zip(rects, scores)]

    def embed(self, rgb: np.ndarray, box: FaceBox) -> np.ndarray:
        rect = self._dlib.rectangle(box.left, box.top, box.right, box.bottom)
        shape = self._landmarks(rgb, rect)  # 5-point alignment happens inside the descriptor call
        return np.asarray(self._encoder.compute_face_descriptor(rgb, shape, 0), dtype=np.float32)


class DeepFaceBackend:
    """The paper's pipeline: DeepFace RetinaFace detection + alignment, Facenet512 (512-d), cosine 0.3.

    Runs on DeepFace's PyTorch engine (torch is already here; no TensorFlow). Weights are read from
    `$DEEPFACE_HOME/.deepface/weights/` (`retinaface.pth`, `facenet512_weights.pth`); DeepFace downloads
    them there on a connected robot. Offline and missing, loading fails with DeepFace's own error.
    """

    model_name = "deepface_facenet512"
    dim = 512
    metric: Metric = "cosine"
    default_threshold = 0.30

    def __init__(self, detector: str = "retinaface", model: str = "Facenet512"):
        import os

        os.environ.setdefault("DEEPFACE_BACKEND_ENGINE", "pytorch")
        from deepface import DeepFace

        self._df, self.detector, self.model = DeepFace, detector, model
        DeepFace.build_model(model)                             # loads (or downloads) the weights now,
        DeepFace.build_model(detector, task="face_detector")    # not on the first poll
        self._aligned: dict[FaceBox, np.ndarray] = {}

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        faces = self._df.extract_faces(img_path=np.ascontiguousarray(rgb[:, :, ::-1]), detector_backend=self.detector,
                                       enforce_detection=False, align=True, normalize_face=False)
        self._aligned = {}
        boxes = []
        for f in faces:
            if float(f.get("confidence") or 0.0) <= 0.0:  # DeepFace returns the whole frame when it finds none
                continue
            a = f["facial_area"]
            box = FaceBox(int(a["x"]), int(a["y"]), int(a["x"] + a["w"]), int(a["y"] + a["h"]), float(f["confidence"]))
            self._aligned[box] = np.asarray(f["face"], dtype=np.uint8)
            boxes.append(box)
        return boxes

    def embed(self, rgb: np.ndarray, box: FaceBox) -> np.ndarray:
        face = self._aligned.get(box)
        if face is None:  # a box from elsewhere: embed its crop
            face = rgb[box.top:box.bottom, box.left:box.right]
        out = self._df.represent(img_path=np.ascontiguousarray(face[:, :, ::-1]), model_name=self.model,
                                 detector_backend="skip", enforce_detection=False, align=False)
        return np.asarray(out[0]["embedding"], dtype=np.float32)


def make_face_backend(name: str = "dlib", *, upsample: int = 0) -> FaceBackend:
    if name == "dlib":
        return DlibFaceBackend(upsample=upsample)
    if name == "deepface":
        return DeepFaceBackend()
    raise ValueError(f"unknown face backend {name!r} (dlib, deepface)")


def face_distances(metric: Metric, query: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Distance of one query to each row of `keys` (smaller is more similar)."""
    keys = np.atleast_2d(keys)
    if keys.shape[0] == 0:
        return np.zeros(0, dtype=np.float32)
    if metric == "euclidean":
        return np.linalg.norm(keys - query[None, :], axis=1)
    qn = query / (np.linalg.norm(query) + 1e-12)
    kn = keys / (np.linalg.norm(keys, axis=1, keepdims=True) + 1e-12)
    return 1.0 - kn @ qn


class FaceEngine:
    """Faces per frame, in the policy's order: the largest, or the one nearest the image centre, first.
    (The `speaker` policy orders by size here; the poller then takes the face whose person is talking.)"""

    def __init__(self, backend: FaceBackend, *, policy: str = "largest", max_side: int = 1280,
                 threshold: float = -1.0):
        if policy not in ("largest", "central", "speaker"):
            raise ValueError(f"multi-face policy must be 'largest', 'central' or 'speaker', not {policy!r}")
        self.backend = backend
        self.policy = policy
        self.max_side = max_side
        self.threshold = threshold if threshold > 0 else backend.default_threshold

    @property
    def model(self) -> str:
        return self.backend.model_name

    def order(self, boxes: list[FaceBox], shape: tuple[int, ...]) -> list[FaceBox]:
        if self.policy != "central":
            return sorted(boxes, key=lambda b: -b.area)
        cy, cx = shape[0] / 2, shape[1] / 2
        return sorted(boxes, key=lambda b: (b.center[0] - cx) ** 2 + (b.center[1] - cy) ** 2)

    def choose(self, boxes: list[FaceBox], shape: tuple[int, ...]) -> FaceBox:
        return self.order(boxes, shape)[0]

    def observe(self, image: np.ndarray) -> FaceObservation | None:
        """Embed the chosen face, or None when the frame has no face (not an error)."""
        faces = self.observe_all(image, max_faces=1)
        return faces[0] if faces else None

    def observe_all(self, image: np.ndarray, max_faces: int = 3) -> list[FaceObservation]:
        """Embed up to `max_faces` faces, the policy's choice first ([] when the frame has none)."""
        rgb = to_rgb8(image, max_side=self.max_side)
        boxes = self.backend.detect(rgb)
        out = []
        for box in self.order(boxes, rgb.shape)[:max_faces]:
            emb = self.backend.embed(rgb, box)
            if not np.all(np.isfinite(emb)):
                log.warning("face embedding has NaN/inf values; face ignored")
                continue
            out.append(FaceObservation(box, emb, len(boxes), self.backend.model_name, rgb.shape[:2]))
        return out

    def distances(self, query: np.ndarray, keys: np.ndarray) -> np.ndarray:
        return face_distances(self.backend.metric, query, keys)


_WORKER_ENGINE: FaceEngine | None = None


def _worker_init(backend: str, upsample: int, policy: str, max_side: int, threshold: float) -> None:
    global _WORKER_ENGINE
    init_worker()
    _WORKER_ENGINE = FaceEngine(make_face_backend(backend, upsample=upsample), policy=policy,
                                max_side=max_side, threshold=threshold)


def _worker_observe(image: np.ndarray, max_faces: int = 1) -> list[FaceObservation]:
    return _WORKER_ENGINE.observe_all(image, max_faces)


class _BackendInfo:
    """What the caller needs to know about a backend that lives in another process."""

    def __init__(self, backend: FaceBackend):
        self.model_name, self.dim = backend.model_name, backend.dim
        self.metric, self.default_threshold = backend.metric, backend.default_threshold


class ProcessFaceEngine(FaceEngine):
    """FaceEngine whose model runs in a worker process.

    dlib keeps the GIL while it computes a descriptor, so in a thread it would stall the voice model
    (torch) for the whole face embedding; in its own process both run at once on two cores.
    """

    def __init__(self, backend_name: str = "dlib", *, upsample: int = 0, policy: str = "largest",
                 max_side: int = 1280, threshold: float = -1.0):
        local = make_face_backend(backend_name, upsample=upsample)  # validates and gives metadata
        super().__init__(_BackendInfo(local), policy=policy, max_side=max_side, threshold=threshold)  # type: ignore[arg-type]
        self._local = local
        self._initargs = (backend_name, upsample, policy, max_side, threshold)
        self._pool = None
        self._start()

    def _start(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_worker_init, initargs=self._initargs)
        self._pool.submit(_worker_observe, np.zeros((8, 8, 3), np.uint8)).result()  # load models now

    def observe_all(self, image: np.ndarray, max_faces: int = 3) -> list[FaceObservation]:
        rgb = to_rgb8(image, max_side=self.max_side)  # validate here: bad frames never reach the worker
        if self._pool is None:  # used again after close() (a lifecycle node configured again): a new worker
            self._start()
        return self._pool.submit(_worker_observe, rgb, max_faces).result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
