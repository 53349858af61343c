"""Erasure, written once for both SQL dialects: a whole person (`forget_user`) or what one person told
the robot about a topic (`forget_about`). Both end with `compact`, so no deleted byte stays in the
database file or its write-ahead log (docs/privacy.md)."""
from __future__ import annotations

import re
from collections.abc import Callable

from .erasure import name_pattern, name_words, scrub
from .models import Erased, StoreError

_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*\n?|\n")


def drop_sentences(text: str, matches: Callable[[str], bool]) -> str:
    """`text` without the sentences `matches` finds; a transcript line left with nothing but its
    speaker label ("user:") goes too."""
    if not text:
        return text
    kept = "".join(s for s in _SENTENCE.findall(text) if not matches(s))
    lines = [ln for ln in kept.split("\n") if not re.fullmatch(r"\s*(user|robot):\s*", ln)]
    return re.sub(r"[ \t]+", " ", "\n".join(lines)).strip()


class Forgetting:
    """Mixed into `SqlStore`: uses its `transaction`, `lock_user`, `_x`, `_q`, `_log`, `relations`,
    `get_user`, `facts`, `episodes` and `compact`."""

    def forget_user(self, user_id: str) -> None:
        """Erase a person everywhere, then checkpoint and VACUUM so no bytes remain in the file.

        Placeholders known only through them go too. Other users' memory keeps what they said, with the
        person's name and id replaced (store/erasure.py), and no item names them as someone not to tell."""
        with self.transaction():
            user = self.lock_user(user_id)
            pattern = name_pattern(name_words(user.name, user_id))
            linked = {r.dst if r.src == user_id else r.src for r in self.relations(user_id)}
            orphans = [p for p in linked if self.get_user(p).placeholder
                       and all(user_id in (r.src, r.dst) for r in self.relations(p))]
            for gone in [user_id, *orphans]:
                self._x("DELETE FROM audit WHERE user_id=? OR item_id=?", (gone, gone))
                self._x("DELETE FROM users WHERE id=?", (gone,))  # cascades keys/facts/episodes/edges
                for table in ("facts", "episodes"):
                    self._x(f"UPDATE {table} SET hidden_from=replace(hidden_from, ?, ',') WHERE hidden_from LIKE ?",
                            (f",{gone},", f"%,{gone},%"))
                    self._x(f"UPDATE {table} SET hidden_from='' WHERE hidden_from=','")
            for table, key, cols in (("audit", "id", ("detail",)), ("facts", "id", ("text",)),
                                     ("episodes", "id", ("transcript", "summary"))):
                for row in self._q(f"SELECT {key}, {', '.join(cols)} FROM {table}"):
                    new = [scrub(v, pattern) for v in row[1:]]
                    if new != list(row[1:]):
                        sets = ", ".join(f"{c}=?" for c in cols)
                        self._x(f"UPDATE {table} SET {sets} WHERE {key}=?", (*new, row[0]))
            self._log("DELETE", None, "user", None, "a user was forgotten on request")
        self._compacted(f"{user_id} is erased from the database")

    def forget_about(self, user_id: str, matches: Callable[[str], bool]) -> Erased:
        """Erase what `user_id` told the robot that `matches` (memory/privacy.py builds it from "what I told
        you about X"): their items, the items about other people taken from their sessions, the sentences
        of their transcripts and summaries, and the audit rows of all of these. The history of each item
        goes with it, so no earlier version comes back. The log keeps only that something was forgotten."""
        with self.transaction():
            self.lock_user(user_id)
            episodes = self.episodes(user_id)
            rows = self._q("SELECT id, text FROM facts WHERE user_id=? OR source_episode IN "
                           "(SELECT id FROM episodes WHERE user_id=?)", (user_id, user_id))
            items = [item for item, text in rows if matches(text)]
            for item in items:
                self._x("DELETE FROM audit WHERE item_id=?", (item,))
                self._x("UPDATE facts SET superseded_by=NULL WHERE superseded_by=?", (item,))
                self._x("DELETE FROM facts WHERE id=?", (item,))
            edited = 0
            for ep in episodes:
                transcript, summary = drop_sentences(ep.transcript, matches), drop_sentences(ep.summary, matches)
                if (transcript, summary) != (ep.transcript, ep.summary):
                    self._x("UPDATE episodes SET transcript=?, summary=? WHERE id=?", (transcript, summary, ep.id))
                    edited += 1
            for audit_id, detail in self._q("SELECT id, detail FROM audit WHERE user_id=? OR episode_id IN "
                                            "(SELECT id FROM episodes WHERE user_id=?)", (user_id, user_id)):
                if detail and matches(detail):
                    self._x("UPDATE audit SET detail=? WHERE id=?", (drop_sentences(detail, matches), audit_id))
            self._log("DELETE", user_id, "topic", None, f"{len(items)} item(s) forgotten on request")
        self._compacted(f"what {user_id} said about it is erased from the database")
        return Erased(len(items), edited)

    def _compacted(self, what: str) -> None:
        if not self.compact():
            raise StoreError(f"{what}, but another process is reading it, so old bytes stay in its files until "
                             "that reader ends: then run `egomem compact`")
