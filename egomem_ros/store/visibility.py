"""Who may be told a memory item: its visibility (docs/privacy.md has the policy as one table).

Every fact, preference, event and episode has an owner and a visibility:
- `shared` (the default): people the owner is related to in the social graph may get it in Level-2;
- `private`: only the owner (their Level-1, their own `egomem show`);
- `public`: anyone the robot knows who is in the owner's graph neighbourhood, like `shared`; it is what
  the owner said may be told ("you can tell everyone"), and a later "don't tell anyone" narrows it.
`hidden_from` excludes named people from `shared` and `public` ("don't tell my husband"). Level-1 is the
owner's alone whatever the visibility; an unknown or unrecognised requester gets no Level-2 at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PRIVATE, SHARED, PUBLIC = "private", "shared", "public"
LEVELS: tuple[str, ...] = (PRIVATE, SHARED, PUBLIC)   # most restrictive first
Level = Literal["private", "shared", "public"]


@dataclass(frozen=True)
class Visibility:
    level: str = SHARED
    hidden_from: frozenset[str] = frozenset()   # user ids that must not be told, whatever the level

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"visibility must be one of {', '.join(LEVELS)}, not {self.level!r}")

    def allows(self, owner: str, requester: str | None) -> bool:
        """May `requester` (a user id; None or "" for someone not recognised) be told the owner's item?"""
        if requester and requester == owner:
            return True
        if not requester or self.level == PRIVATE:
            return False
        return requester not in self.hidden_from

    def stricter(self, other: Visibility) -> Visibility:
        """The tighter of two: said once in private, an item stays private when repeated without a cue."""
        level = min(self.level, other.level, key=LEVELS.index)
        return Visibility(level, self.hidden_from | other.hidden_from)

    @property
    def restricted(self) -> bool:
        return self.level == PRIVATE or bool(self.hidden_from)

    # -- columns: `visibility` TEXT and `hidden_from` TEXT (",id1,id2," so that one id is a LIKE '%,id,%') --
    @property
    def hidden_column(self) -> str:
        return "," + ",".join(sorted(self.hidden_from)) + "," if self.hidden_from else ""

    @classmethod
    def from_columns(cls, level: str | None, hidden: str | None) -> Visibility:
        return cls(level or SHARED, frozenset(x for x in (hidden or "").split(",") if x))

    def describe(self, names: dict[str, str] | None = None) -> str:
        """"shared", "private", "shared, not Tom"."""
        if not self.hidden_from:
            return self.level
        who = sorted((names or {}).get(u, u) for u in self.hidden_from)
        return f"{self.level}, not {', '.join(who)}"


SHARED_DEFAULT = Visibility()
