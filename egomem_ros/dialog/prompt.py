"""External dialog mode: the current MemChunks as one system prompt for the robot's own dialog stack."""
from __future__ import annotations

from ..memchunk import LEVEL1, LEVEL2, MemChunk

RETR_HELP = ("To look up people related to the user, write `<retr>` then a line of relation words and a line "
             "of keywords (comma-separated, either may be empty), then `<answer>`.")


class PromptComposer:
    """Keeps the newest chunk per level (by version) and renders the prompt."""

    def __init__(self) -> None:
        self.chunks: dict[int, MemChunk] = {}

    def update(self, chunk: MemChunk) -> bool:
        """True when the prompt changed. Stale versions are ignored; a new Level-1 user clears Level-2."""
        old = self.chunks.get(chunk.level)
        if old is not None and chunk.version <= old.version and chunk.user_id == old.user_id:
            return False
        self.chunks[chunk.level] = chunk
        l2 = self.chunks.get(LEVEL2)
        if chunk.level == LEVEL1 and l2 is not None and l2.user_id != chunk.user_id:
            del self.chunks[LEVEL2]  # another person's retrieved memory must not stay in the prompt
        return True

    @property
    def user_id(self) -> str:
        l1 = self.chunks.get(LEVEL1)
        return l1.user_id if l1 else ""

    def render(self) -> str:
        l1, l2 = self.chunks.get(LEVEL1), self.chunks.get(LEVEL2)
        parts = ["You are a home robot talking with the person in front of you."]
        parts.append("Who you are talking with:\n" + l1.text if l1 and l1.text else "You do not know who this is.")
        if l2 and l2.text:
            parts.append("Memory about people they know:\n" + l2.text)
        parts.append(RETR_HELP)
        return "\n\n".join(parts)
