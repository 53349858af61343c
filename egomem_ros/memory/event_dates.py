"""An event's day, from the session's clock: "went hiking yesterday" said on 7 May 2024 is kept as
"went hiking yesterday (on 6 May 2024)", so the memory still says when it happened a month later."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from .extraction import SET_CLOCK, day_text

RELATIVE = [(re.compile(r"\b(yesterday|last night)\b", re.I), "on {}", -1),
            (re.compile(r"\b(today|this morning|this afternoon|tonight|earlier)\b", re.I), "on {}", 0),
            (re.compile(r"\btomorrow\b", re.I), "on {}", 1),
            (re.compile(r"\blast (week|weekend|month|year|summer|winter|spring|autumn|fall)\b", re.I), "the {} before {}", 0),
            (re.compile(r"\bnext (week|weekend|month|year|summer|winter|spring|autumn|fall)\b", re.I), "the {} after {}", 0)]


def dated(text: str, at: float | None) -> str:
    """An event with the day it happened, from the session's time: "went hiking yesterday (on 6 May 2024)"."""
    if at is None or at < SET_CLOCK:
        return text
    day = datetime.fromtimestamp(at, tz=timezone.utc)
    for pattern, form, shift in RELATIVE:
        m = pattern.search(text)
        if m:
            when = day_text((day + timedelta(days=shift)).timestamp())
            return f"{text} ({form.format(m.group(1).lower(), when) if form.count('{}') == 2 else form.format(when)})"
    return f"{text} ({day_text(at)})"
