"""Runs a DialogEngine in its own thread, fed by a bounded queue of 80 ms frames.

Audio arrives in any chunk size and sample rate (ROS messages, bag replay, a sound card): it is
converted to 24 kHz mono float (streaming resampler) and cut into 1920-sample frames. When the model falls behind, the oldest
queued frame is dropped (the user keeps talking; a stale frame is worth less than a fresh one) and
counted; a step that takes longer than the 80 ms budget is counted as late. `<retr>` queries go to a
retrieval callable on a worker thread: its answer becomes the Level-2 chunk if it arrives within the
timeout, and is discarded (logged) if it comes later, so the dialog never waits for it.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..memchunk import LEVEL2
from ..retrieval.media import clean_audio
from ..retrieval.retr_protocol import RetrieveFn, RetrQuery
from .engine import FRAME_SAMPLES, SAMPLE_RATE, DialogEngine, StepOutput

log = logging.getLogger(__name__)

StepSink = Callable[[StepOutput], None]


@dataclass
class RunnerStats:
    frames_in: int = 0
    frames_stepped: int = 0
    dropped: int = 0
    late: int = 0
    step_seconds_total: float = 0.0
    retrievals: int = 0
    retrieval_timeouts: int = 0

    @property
    def mean_step_ms(self) -> float:
        return 1e3 * self.step_seconds_total / self.frames_stepped if self.frames_stepped else 0.0


class EngineRunner:
    def __init__(self, engine: DialogEngine, on_output: StepSink, *, queue_frames: int = 4,
                 step_budget_s: float = FRAME_SAMPLES / SAMPLE_RATE, retrieve: RetrieveFn | None = None,
                 retrieve_timeout_s: float = 0.5):
        self.engine, self.on_output = engine, on_output
        self.step_budget_s = step_budget_s
        self.retrieve, self.retrieve_timeout_s = retrieve, retrieve_timeout_s
        self.stats = RunnerStats()
        self._frames: queue.Queue[np.ndarray] = queue.Queue(maxsize=queue_frames)
        self._carry = np.zeros(0, dtype=np.float32)
        self._resamplers: dict[int, object] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="egomem-retr")
        self._stats_lock = threading.Lock()

    # -- producer side ------------------------------------------------------------------------------
    def push_audio(self, pcm: np.ndarray, sample_rate: int) -> int:
        """Queue audio of any length and rate; returns how many whole frames it completed.

        Resampling is streaming (one soxr stream per input rate, its filter state carried from chunk to
        chunk): resampling each message on its own would put a click at every message boundary.
        """
        x = clean_audio(pcm, sample_rate, sample_rate, allow_silence=True)  # validate, mono float
        if sample_rate != SAMPLE_RATE:
            stream = self._resamplers.get(sample_rate)
            if stream is None:
                import soxr

                stream = self._resamplers[sample_rate] = soxr.ResampleStream(sample_rate, SAMPLE_RATE, 1,
                                                                            dtype="float32")
            x = stream.resample_chunk(x)
        x = np.concatenate([self._carry, x])
        n = len(x) // FRAME_SAMPLES
        self._carry = x[n * FRAME_SAMPLES:].copy()
        for i in range(n):
            self._put(x[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES])
        return n

    def _put(self, frame: np.ndarray) -> None:
        with self._stats_lock:
            self.stats.frames_in += 1
        while True:
            try:
                self._frames.put_nowait(frame)
                return
            except queue.Full:
                try:
                    self._frames.get_nowait()
                    self._frames.task_done()
                    with self._stats_lock:
                        self.stats.dropped += 1
                    if self.stats.dropped in (1, 10, 100) or self.stats.dropped % 1000 == 0:
                        log.warning("dialog model behind real time: %d frame(s) dropped so far", self.stats.dropped)
                except queue.Empty:
                    pass

    # -- consumer thread ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="egomem-dialog", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    def drain(self, timeout: float = 60.0) -> None:
        """Wait until every queued frame has been stepped (bag replay, tests)."""
        deadline = time.monotonic() + timeout
        while self._frames.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self._frames.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                self.step_once(frame)
            except Exception:  # noqa: BLE001 - one bad step must not kill the dialog thread
                log.exception("dialog step failed; frame skipped")
            finally:
                self._frames.task_done()

    def step_once(self, frame: np.ndarray) -> StepOutput:
        start = time.perf_counter()
        out = self.engine.step(frame)
        elapsed = time.perf_counter() - start
        with self._stats_lock:
            self.stats.frames_stepped += 1
            self.stats.step_seconds_total += elapsed
            if elapsed > self.step_budget_s:
                self.stats.late += 1
        for query in out.queries:
            self._dispatch(query)
        self.on_output(out)
        return out

    # -- Level-2 retrieval ----------------------------------------------------------------------------
    def _dispatch(self, query: RetrQuery) -> None:
        if self.retrieve is None:
            log.info("<retr> query %s with no retrieval configured: ignored", query)
            return
        asked = time.monotonic()
        future = self._pool.submit(self.retrieve, query)
        future.add_done_callback(lambda f: self._answered(f, query, asked))

    def _answered(self, future: Future, query: RetrQuery, asked: float) -> None:
        waited = time.monotonic() - asked
        with self._stats_lock:
            self.stats.retrievals += 1
        if future.cancelled():
            return
        if future.exception() is not None:
            log.warning("Level-2 retrieval for %s failed: %s; the dialog goes on without it", query,
                        future.exception())
            return
        if waited > self.retrieve_timeout_s:
            with self._stats_lock:
                self.stats.retrieval_timeouts += 1
            log.warning("Level-2 retrieval took %.2f s (> %.2f s): answer discarded, the dialog went on", waited,
                        self.retrieve_timeout_s)
            return
        self.engine.set_memchunk(LEVEL2, future.result())
