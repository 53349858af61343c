"""The spool: sessions on disk from their cut until their commit, so that nothing is lost when the
process dies mid-consolidation, and sessions that cannot be written are moved aside, never retried in
front of every later one."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..store.erasure import name_pattern, name_words, scrub
from .consolidate import SessionInput

log = logging.getLogger(__name__)


class SessionSpool:
    """Sessions written to disk before processing, removed after their commit: nothing is lost when
    the process dies mid-consolidation, and `pending()` gives what must be processed again."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def put(self, s: SessionInput) -> Path:
        path = self.folder / f"{s.session_id}.json"
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(s.to_json(), encoding="utf-8")
            tmp.replace(path)  # atomic: a half-written spool file never exists
        except OSError:
            tmp.unlink(missing_ok=True)  # a full disk: no partial file left behind
            raise
        return path

    def pending(self) -> list[SessionInput]:
        out = []
        for p in sorted(self.folder.glob("*.json")):
            try:
                out.append(SessionInput.from_json(p.read_text(encoding="utf-8", errors="replace")))
            except ValueError as err:
                log.error("unreadable spooled session %s (%s): moved aside as .bad", p.name, err)
                self._set_aside(p, str(err))
        return out

    def done(self, session_id: str) -> None:
        (self.folder / f"{session_id}.json").unlink(missing_ok=True)
        (self.folder / f"{session_id}.tries").unlink(missing_ok=True)

    def tried(self, session_id: str, now: float | None = None) -> tuple[int, float]:
        """Count one more failed attempt at a waiting session (an LLM that failed): how many so far, and
        how many seconds since the first (wall clock: a temporary outage is not a session's fault)."""
        import time

        now = time.time() if now is None else now
        path = self.folder / f"{session_id}.tries"
        try:
            count, first = path.read_text().split()
            tries, since = int(count) + 1, float(first)
        except (OSError, ValueError):
            tries, since = 1, now
        path.write_text(f"{tries} {since}\n")
        return tries, now - since

    def reject(self, session_id: str, reason: str) -> None:
        """A session that cannot be written because of what it holds (a 150-character name, an LLM answer
        the store refuses): moved aside as `.bad` with the reason next to it, so that it is never retried
        in front of every later session. `forget` still erases it."""
        path = self.folder / f"{session_id}.json"
        if path.exists():
            self._set_aside(path, reason)
        path.with_suffix(".tries").unlink(missing_ok=True)

    @staticmethod
    def _set_aside(path: Path, reason: str) -> None:
        path.rename(path.with_suffix(".bad"))
        path.with_suffix(".reason").write_text(reason + "\n", encoding="utf-8")

    def erase(self, user_id: str, keys: Sequence[np.ndarray], name: str | None = None) -> int:
        """Delete the waiting sessions of a person being forgotten: those the identity process saw them in,
        and those holding one of their keys (the session that enrolled them). Other waiting sessions keep
        what was said, with the person's name replaced (store/erasure.py). Call before the store forgets
        them (their keys are needed here). Returns how many were deleted."""
        pattern = name_pattern(name_words(name, user_id))
        erased = 0
        for bad in sorted(self.folder.glob("*.bad")):   # sessions moved aside: erased when they name the person
            text = bad.read_text(encoding="utf-8", errors="replace")
            if user_id in text or (name and name in text) or _holds_key(text, keys):
                bad.unlink()
                bad.with_suffix(".reason").unlink(missing_ok=True)
                erased += 1
        for s in self.pending():
            if user_id in s.observed_users or _session_holds_key(s, keys):
                self.done(s.session_id)
                erased += 1
                continue
            turns = [t.model_copy(update={"text": scrub(t.text, pattern)}) for t in s.turns]
            if turns != s.turns:
                s.turns = turns
                self.put(s)
        return erased


def _holds_key(text: str, keys: Sequence[np.ndarray]) -> bool:
    """A moved-aside spool file holding one of `keys` (parsed when it is a session, else never)."""
    try:
        return _session_holds_key(SessionInput.from_json(text), keys)
    except ValueError:
        return False


def _session_holds_key(s: SessionInput, keys: Sequence[np.ndarray]) -> bool:
    """One of the session's face or voice embeddings is one of `keys` (the session that enrolled them)."""
    embs = [*s.face_embeddings, *s.voice_embeddings] + ([s.speech_voice] if s.speech_voice is not None else [])
    return any(e.shape == k.shape and np.allclose(e, k, atol=1e-5) for e in embs for k in keys)
