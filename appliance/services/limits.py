"""Rate limits on what a signed-in person does often: votes and proposals.

Counted in this process's memory only: nothing is written anywhere when
someone votes or proposes (ARCHITECTURE.md storage rule 1), and a key is a
keyed hash of the person, not their id. With several web workers each
counts its own share of the requests.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import deque


class RateLimiter:
    """At most `limit` actions in any `window` seconds for one key (a sliding window)."""

    def __init__(self, limit: int, window: float, secret: bytes) -> None:
        self.limit, self.window = limit, window
        self._secret = hashlib.sha256(b"rate limit\0" + secret).digest()
        self._hits: dict[bytes, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, person_id: str, now: float) -> int | None:
        """Count one action now; None if allowed, else the seconds to wait (the action is not counted)."""
        key = hashlib.blake2b(person_id.encode(), key=self._secret, digest_size=16).digest()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, math.ceil(hits[0] + self.window - now))
            hits.append(now)
            if len(self._hits) > 10_000:
                self._forget_idle(now)
            return None

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window]:
            del self._hits[key]
