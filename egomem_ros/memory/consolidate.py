"""Memory management (paper §3.1.1): sessions in, profiles and the social graph updated.

`Consolidator.process(session)` writes one session in ONE store transaction: the new or updated
profile, the episode, the relations, all audit-logged with the session id. The episode id is the
session id, so a session that was committed is never applied twice, and one that was not (a crash, an
LLM that timed out) is simply processed again. `MemoryManager` cuts the buffered stream into sessions,
spools each one to disk before processing it and deletes the spool file only after its commit.

Safety: what a session says changes only the session user's profile, the edges touching that user, and
adds (never changes) items about the third persons the user named ("my friend Jack hates football").
The extractor never produces deletions, names are set only on the session user (and never overwrite a
name the user already has), and update operations may only target the session user's own items.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..store.sealing import cipher_from_env, embedding_from_json, embedding_to_json
from ..store.models import DuplicateEpisodeError, MemoryRepository, StoreError, UnknownUserError, User
from ..store.visits import earlier_in_visit
from .item_budget import capped, recent_talk, within_budget
from .extraction import Extraction, Turn, introduced_name
from .llm import LLMError
from .privacy import SessionPrivacy, without_cues
from .update_agent import MemoryOp

log = logging.getLogger(__name__)
MAX_KEYS_PER_MODALITY = 3
# a known person keeps learning from the sessions their voice clearly owned, up to this many keys
MAX_VOICE_KEYS_PER_USER = 12
MAX_FACE_KEYS_PER_USER = 6


@dataclass
class SessionInput:
    session_id: str
    start: float
    end: float
    turns: list[Turn]
    face_embeddings: list[np.ndarray] = field(default_factory=list)
    voice_embeddings: list[np.ndarray] = field(default_factory=list)
    observed_users: list[str] = field(default_factory=list)   # known users the identity process saw
    speech_voice: np.ndarray | None = None   # embedding of all the user's speech in the session
    face_seen: bool = True                   # a face was in view during the session

    def to_json(self) -> str:
        """The spool's file; embeddings sealed when a template key is configured (store/sealing.py)."""
        cipher = cipher_from_env()
        vec = lambda e: embedding_to_json(e, cipher)  # noqa: E731
        return json.dumps({"session_id": self.session_id, "start": self.start, "end": self.end,
                           "turns": [t.model_dump() for t in self.turns],
                           "face_embeddings": [vec(e) for e in self.face_embeddings],
                           "voice_embeddings": [vec(e) for e in self.voice_embeddings],
                           "observed_users": self.observed_users, "face_seen": self.face_seen,
                           "speech_voice": None if self.speech_voice is None else vec(self.speech_voice)})

    @classmethod
    def from_json(cls, text: str) -> SessionInput:
        """Raises ValueError for anything but a spooled session (`[]`, `null`, a number for a list, ...)."""
        cipher = cipher_from_env()   # read once: the key file is not read again for every embedding
        vec = lambda e: embedding_from_json(e, cipher)  # noqa: E731
        try:
            d = json.loads(text)
            s = cls(str(d["session_id"]), float(d["start"]), float(d["end"]), [Turn(**t) for t in d["turns"]],
                    [vec(e) for e in d["face_embeddings"]],
                    [vec(e) for e in d["voice_embeddings"]], [str(u) for u in d["observed_users"]],
                    None if d.get("speech_voice") is None else vec(d["speech_voice"]),
                    bool(d.get("face_seen", True)))
        except (KeyError, TypeError, AttributeError, IndexError, RecursionError, ValueError) as err:
            raise ValueError(f"not a spooled session: {type(err).__name__}: {str(err)[:200]}") from None
        if any(e.ndim != 1 for e in [*s.face_embeddings, *s.voice_embeddings]):
            raise ValueError("not a spooled session: an embedding is not a vector")
        return s


@dataclass(frozen=True)
class MemoryEventRecord:
    op: str            # ADD | UPDATE | INVALIDATE | DELETE
    user_id: str
    item_kind: str
    item_id: str
    text: str
    episode_id: str


@dataclass
class SessionOutcome:
    session_id: str
    status: str                     # written | duplicate | empty | not-learned | forgotten | retry | rejected
    user_id: str = ""
    new_user: bool = False
    extraction: Extraction | None = None
    events: list[MemoryEventRecord] = field(default_factory=list)
    reason: str = ""
    heard: str = ""                 # what the user said in the session, as transcribed


Identify = Callable[[SessionInput], str | None]
IDENTIFY = object()   # Consolidator.process: ask `identify` whose session it is


class Consolidator:
    def __init__(self, store: MemoryRepository, extractor, agent, identify: Identify, *,
                 face_model: str = "", voice_model: str = "", learn_new_users: bool = True,
                 on_keys_added: Callable[[str, str, np.ndarray, int], None] | None = None,
                 new_person_faces: Callable[[Sequence[np.ndarray]], list[np.ndarray]] | None = None,
                 new_person_voices: Callable[[Sequence[np.ndarray]], list[np.ndarray]] | None = None,
                 voice_confirms: Callable[[SessionInput, str], bool] | None = None,
                 refresh: Callable[[], None] | None = None):
        self.store, self.extractor, self.agent, self.identify = store, extractor, agent, identify
        self.face_model, self.voice_model = face_model, voice_model
        self.learn_new_users = learn_new_users
        self.on_keys_added = on_keys_added
        # which of a session's faces and voice parts may key a new person (not a known bystander's, nor
        # the last speaker's voice heard at the start of the newcomer's part)
        self.new_person_faces = new_person_faces or list
        self.new_person_voices = new_person_voices or list
        # a session whose voice clearly is its known owner's: its voice becomes one more key (voices vary
        # between days and rooms; one introduction is too little to recognise someone by)
        self.voice_confirms = voice_confirms
        # re-reads the keys `identify` matches against (the galleries): robots sharing a store enrol people
        # the local index has not seen yet
        self.refresh = refresh

    def process_all(self, s: SessionInput) -> list[SessionOutcome]:
        """`process`, after cutting the session where someone other than its owner introduces themselves:
        "Hi robot, my name is Sarah" said in Emily's session starts Sarah's part, which is written onto
        the known Sarah, or onto a new person named Sarah, never onto Emily. Two people talking in front
        of the robot, or a newcomer right after someone, can fall into one session."""
        owner = self.identify(s)
        cut = self._newcomer_cut(s, owner)
        if cut is None:
            return [self.process(s, owner=owner)]
        i, newcomer = cut
        log.info("session %s: someone introduces themselves as another person than its owner; cut at turn %d",
                 s.session_id, i)
        if i == 0:   # the whole session is the newcomer's, their voice included
            return [self.process(s, owner=newcomer)]
        head = replace(s, session_id=f"{s.session_id}-a", turns=s.turns[:i])
        # the tail's voice and the people seen are the session's, mixed: its faces only may key a newcomer
        tail = replace(s, session_id=f"{s.session_id}-b", turns=s.turns[i:], voice_embeddings=[], speech_voice=None,
                       observed_users=[])
        return [self.process(head, owner=owner), self.process(tail, owner=newcomer)]

    def _newcomer_cut(self, s: SessionInput, owner: str | None) -> tuple[int, str | None] | None:
        """(turn, whose) where a user turn gives another name than the known owner's; whose: the one known,
        non-placeholder person of that name, else None (a new person)."""
        if owner is None or not self._exists(owner):
            return None
        name = self.store.get_user(owner).name
        for i, t in enumerate(s.turns):
            said = introduced_name(t.text) if t.speaker == "user" else None
            if said and name and said.lower() != name.lower():
                known = [u.id for u in self.store.list_users(include_placeholders=False)
                         if u.name and u.name.lower() == said.lower()]
                return i, known[0] if len(known) == 1 else None
        return None

    def process(self, s: SessionInput, owner: str | None | object = IDENTIFY) -> SessionOutcome:
        """Write one session; `owner`: who said it, when the caller knows (None: a new person), else the
        `identify` callback decides."""
        if self.store.episode_exists(s.session_id):
            return SessionOutcome(s.session_id, "duplicate", reason="already committed")
        if not any(t.speaker == "user" and t.text.strip() for t in s.turns):
            return SessionOutcome(s.session_id, "empty", reason="no user speech in the session")
        try:
            ex = capped(self.extractor.extract(without_cues(s.turns), at=s.start))   # cues are no items
        except LLMError as err:
            log.warning("session %s: extraction failed (%s); kept for a retry", s.session_id, err)
            return SessionOutcome(s.session_id, "retry", reason=str(err))
        user_id = self.identify(s) if owner is IDENTIFY else owner
        if user_id is None and not self.learn_new_users:
            return SessionOutcome(s.session_id, "not-learned", extraction=ex,
                                  reason="unknown person and learn_new_users is false")
        if user_id is None and (ex.empty or not s.face_seen):
            why = "nothing to remember" if ex.empty else "nobody was in view (a voice from another room, a TV)"
            return SessionOutcome(s.session_id, "not-learned", extraction=ex, reason=f"unknown speaker, {why}: no profile")
        if user_id is not None and not self._exists(user_id):
            return SessionOutcome(s.session_id, "forgotten", reason=f"user {user_id} was forgotten: the session is dropped")
        if user_id is not None:   # what the person said within the hour shares one item budget
            ex = within_budget(ex, *recent_talk(self.store, user_id, s.start))
            if hasattr(self.extractor, "visit_summary"):   # the summary speaks of the visit so far
                earlier = [Turn(speaker="user", text=t) for t in earlier_in_visit(self.store.episodes(user_id), s.start)]
                ex = ex.model_copy(update={"summary": self.extractor.visit_summary(earlier, without_cues(s.turns), ex)})
        ops: list[MemoryOp] | None = None
        seen: list[str] = []
        if user_id is not None:
            try:
                seen, ops = self._decide(user_id, ex)
            except LLMError as err:
                log.warning("session %s: update agent failed (%s); kept for a retry", s.session_id, err)
                return SessionOutcome(s.session_id, "retry", user_id=user_id, reason=str(err))
        events: list[MemoryEventRecord] = []
        keys: list[tuple[str, str, np.ndarray, int]] = []
        try:
            with self.store.transaction():
                # Other processes (robots sharing one store) may have written since: look again under locks.
                if self.store.episode_exists(s.session_id):
                    return SessionOutcome(s.session_id, "duplicate", reason="committed by another process")
                if user_id is None:
                    self.store.lock_enrolment()         # one enrolment at a time, across robots
                    user_id = self._enrolled_meanwhile(s, ex.name)
                new_user = user_id is None
                if new_user:
                    user_id = self._new_user(s, ex, events, keys)
                else:
                    self.store.lock_user(user_id)       # writes about this person take turns
                    if ops is None or [f.id for f in self.store.facts(user_id)] != seen:
                        seen, ops = self._decide(user_id, ex)   # decided on facts that changed since
                    if self.voice_confirms is not None and self.voice_confirms(s, user_id):
                        self._learn_keys(s, user_id, events, keys)
                privacy = SessionPrivacy(self.store, user_id, s.turns)   # who may be told what was said
                # the episode first: facts and edges point at it as their source
                self.store.add_episode(user_id, s.start, s.end, _transcript(s.turns), ex.summary,
                                       episode_id=s.session_id, visibility=privacy.episode)
                events.append(MemoryEventRecord("ADD", user_id, "summary", s.session_id, ex.summary, s.session_id))
                self._name(user_id, ex, s.session_id, events)
                self._apply(user_id, ops, ex, s.session_id, events, privacy)
                self._relations(user_id, ex, s.session_id, events)
                self._others(user_id, ex, s.session_id, events, privacy)
                self.store.touch_user(user_id, s.end)
        except LLMError as err:
            log.warning("session %s: update agent failed (%s); kept for a retry", s.session_id, err)
            return SessionOutcome(s.session_id, "retry", user_id=user_id or "", reason=str(err))
        except DuplicateEpisodeError:   # committed by another process between our check and our insert
            return SessionOutcome(s.session_id, "duplicate", reason="committed by another process")
        except UnknownUserError:
            return SessionOutcome(s.session_id, "forgotten", reason=f"user {user_id} was forgotten meanwhile: "
                                                                    "the session is dropped")
        for key in keys:  # only after the commit: the live galleries never see uncommitted keys
            if self.on_keys_added:
                self.on_keys_added(*key)
        for matches in privacy.forget:   # "forget what I told you about X": erased and compacted, after the commit
            erased = self.store.forget_about(user_id, matches)
            events.append(MemoryEventRecord("DELETE", user_id, "topic", s.session_id,
                                            f"{erased.items} item(s) forgotten on request", s.session_id))
        heard = " ".join(t.text for t in s.turns if t.speaker == "user")
        return SessionOutcome(s.session_id, "written", user_id, new_user, ex, events, heard=heard)

    def _decide(self, user_id: str, ex: Extraction) -> tuple[list[str], list[MemoryOp]]:
        facts = self.store.facts(user_id)
        return [f.id for f in facts], self.agent.decide(facts, ex)

    def _enrolled_meanwhile(self, s: SessionInput, name: str | None) -> str | None:
        """A person another process enrolled after this session was identified: read the keys again
        (never someone with another name than the one the speaker gave)."""
        if self.refresh is None:
            return None
        self.refresh()
        found = self.identify(s)
        known = self.store.get_user(found).name if found is not None and self._exists(found) else None
        if found is not None and name and known and known.lower() != name.lower():
            log.info("session %s: the speaker says they are %s, not %s; a new person", s.session_id, name, known)
            return None
        return found

    def _new_user(self, s: SessionInput, ex: Extraction, events: list, keys: list) -> str:
        user = self.store.create_user(ex.name, episode_id=s.session_id)
        events.append(MemoryEventRecord("ADD", user.id, "user", user.id, ex.name or "", s.session_id))
        for modality, model, embs in (("face", self.face_model, self.new_person_faces(s.face_embeddings)),
                                      ("voice", self.voice_model, self.new_person_voices(s.voice_embeddings))):
            if not model or not embs:
                continue
            for emb in _spread(embs, MAX_KEYS_PER_MODALITY):
                key_id = self.store.add_key(user.id, modality, model, emb)
                keys.append((user.id, modality, emb, key_id))
                events.append(MemoryEventRecord("ADD", user.id, "key", str(key_id), modality, s.session_id))
        if ex.name:  # someone mentioned earlier under this name ("my colleague Sarah") is this person
            twins = [u for u in self.store.list_users() if u.placeholder and u.name and u.name.lower() == ex.name.lower()]
            if len(twins) == 1:
                self.store.merge_users(user.id, twins[0].id)
                log.info("placeholder %s (%s) merged into new user %s", twins[0].id, ex.name, user.id)
                events.append(MemoryEventRecord("UPDATE", user.id, "user", user.id,
                                                f"{ex.name}: placeholder {twins[0].id} merged in", s.session_id))
        return user.id

    def _exists(self, user_id: str) -> bool:
        try:
            self.store.get_user(user_id)
        except KeyError:
            return False
        return True

    def _learn_keys(self, s: SessionInput, user_id: str, events: list, keys: list) -> None:
        """The session's voice, and the faces the polls did not recognise then, become keys of the known
        owner its voice clearly names, up to a bound per user."""
        learn = [("voice", self.voice_model, [s.speech_voice] if s.speech_voice is not None else [], MAX_VOICE_KEYS_PER_USER),
                 ("face", self.face_model, _spread(s.face_embeddings, MAX_KEYS_PER_MODALITY), MAX_FACE_KEYS_PER_USER)]
        for modality, model, embs, most in learn:
            if not model or not embs:
                continue
            have = len(self.store.user_keys(user_id, modality))
            for emb in embs[:max(0, most - have)]:
                key_id = self.store.add_key(user_id, modality, model, emb)
                keys.append((user_id, modality, emb, key_id))
                events.append(MemoryEventRecord("ADD", user_id, "key", str(key_id), modality, s.session_id))

    def _name(self, user_id: str, ex: Extraction, episode: str, events: list) -> None:
        user = self.store.get_user(user_id)
        if ex.name and not user.name:
            self.store.set_name(user_id, ex.name, episode)
            events.append(MemoryEventRecord("UPDATE", user_id, "user", user_id, ex.name, episode))
        elif ex.name and user.name and ex.name.lower() != user.name.lower():
            log.warning("session %s: user %s (%s) said the name %r; names are never overwritten by a session",
                        episode, user_id, user.name, ex.name)

    def _apply(self, user_id: str, ops: Sequence[MemoryOp] | None, ex: Extraction, episode: str, events: list,
               privacy: SessionPrivacy) -> None:
        if ops is None:  # a new user: everything is an ADD
            from .update_agent import extracted_items

            ops = [MemoryOp(op="ADD", kind=k, text=t) for k, t in extracted_items(ex)]
        own = {f.id for f in self.store.facts(user_id, include_invalid=True)}
        for op in ops:
            if op.op in ("UPDATE", "INVALIDATE") and op.target not in own:
                raise StoreError(f"operation {op.op} on item {op.target!r} outside user {user_id}'s profile")
            if op.op in ("ADD", "UPDATE") and privacy.forgotten(op.text):
                continue   # asked, in this very session, to forget it
            if op.op == "ADD" and op.text.strip():
                f = self.store.add_fact(user_id, op.kind, op.text, episode_id=episode, visibility=privacy.of_item(op.text))
                events.append(MemoryEventRecord("ADD", user_id, f.kind, f.id, f.text, episode))
            elif op.op == "UPDATE" and op.text.strip():
                f = self.store.supersede_fact(op.target, op.text, episode_id=episode, visibility=privacy.of_item(op.text))
                events.append(MemoryEventRecord("UPDATE", user_id, f.kind, f.id, f"{f.text} (replaces {op.target})", episode))
            elif op.op == "INVALIDATE":
                f = self.store.invalidate_fact(op.target, episode_id=episode)
                events.append(MemoryEventRecord("INVALIDATE", user_id, f.kind, f.id, f.text, episode))

    def _person(self, user_id: str, name: str, episode: str, events: list) -> User | None:
        """The person the session user calls `name`: the one user of that name (among those linked to the
        session user when several share it), else a new placeholder; None when it stays ambiguous."""
        matches = [u for u in self.store.list_users() if u.id != user_id and u.name and u.name.lower() == name.lower()]
        if len(matches) > 1:
            linked = {r.dst for r in self.store.relations(user_id) if r.src == user_id}
            matches = [u for u in matches if u.id in linked] or matches
        if len(matches) > 1:
            log.warning("session %s: %d users are called %r; what was said about them is not stored", episode,
                        len(matches), name)
            return None
        if matches:
            return matches[0]
        other = self.store.create_user(name, placeholder=True, episode_id=episode)
        events.append(MemoryEventRecord("ADD", other.id, "user", other.id, f"{name} (placeholder)", episode))
        return other

    def _others(self, user_id: str, ex: Extraction, episode: str, events: list, privacy: SessionPrivacy) -> None:
        """What the user said about a named third person is that person's (ADD only, from this episode:
        it never reaches their Level-1, only the speaker's Level-2)."""
        for item in ex.others:
            other = self._person(user_id, item.name.strip(), episode, events)
            if other is None or not item.text.strip() or privacy.forgotten(item.text):
                continue
            if any(f.text == item.text for f in self.store.facts(other.id)):
                continue
            f = self.store.add_fact(other.id, item.kind, item.text, episode_id=episode, visibility=privacy.of_item(item.text))
            events.append(MemoryEventRecord("ADD", other.id, f.kind, f.id, f.text, episode))

    def _relations(self, user_id: str, ex: Extraction, episode: str, events: list) -> None:
        for rel in ex.relations:
            other = self._person(user_id, rel.name.strip(), episode, events)
            if other is None:
                continue
            names = {user_id: self.store.get_user(user_id).display_name, other.id: other.display_name}
            for edge in self.store.add_relation(user_id, other.id, rel.relation, episode_id=episode):
                events.append(MemoryEventRecord("ADD", edge.src, "relation", str(edge.id),
                                                f"{names[edge.dst]} is {names[edge.src]}'s {edge.relation}", episode))


def _spread(embs: Sequence[np.ndarray], k: int) -> list[np.ndarray]:
    """Up to k embeddings spread over the session (first, middle, last...)."""
    idx = np.unique(np.linspace(0, len(embs) - 1, num=min(k, len(embs))).round().astype(int))
    return [np.asarray(embs[i], np.float32) for i in idx]


def _transcript(turns: Sequence[Turn]) -> str:
    return "\n".join(f"{t.speaker}: {t.text}" for t in turns)
