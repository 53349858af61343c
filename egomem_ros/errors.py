"""The one base of the errors egomem raises for the user to fix (a bad config, an unusable image, a store
fault, a model that is not installed...). The lifecycle nodes catch it once in configure and the CLI once
in `main`, so neither keeps a list of every module's error types. Each subclass also keeps the builtin
base it had (ValueError or RuntimeError), so existing `except ValueError` callers still hold."""
from __future__ import annotations


class EgomemError(Exception):
    """Something the user can fix; the message says what."""
