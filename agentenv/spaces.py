"""Gymnasium spaces for natural-language observations and actions."""

from __future__ import annotations

import string
from typing import Any

from gymnasium import spaces

#: Characters ``sample()`` draws from: printable ASCII plus common typography.
#: Gymnasium's default ``Text`` charset (62 alphanumerics) rejects spaces and
#: punctuation, so ``check_env`` fails on real text with it.
SAMPLE_CHARSET = "".join(sorted(set(string.printable) | set("’‘“”–—…›×°é")))


class FreeText(spaces.Text):
    """A ``Text`` space for free-form natural language.

    ``contains`` accepts any ``str`` whose length is within bounds, whatever its
    characters (product titles carry ``™``, ``®``, CJK...); ``sample`` draws
    from :data:`SAMPLE_CHARSET`. Empty strings are allowed.
    """

    def __init__(self, max_length: int = 100_000, seed: int | None = None):
        super().__init__(max_length=max_length, min_length=0, charset=SAMPLE_CHARSET, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"FreeText(max_length={self.max_length})"
