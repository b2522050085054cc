"""The labels under which votes and proposals are stored (ARCHITECTURE.md storage rule 3).

Both are HMAC-SHA256 keyed by instance_secret || round_secret: without the round
secret, which is destroyed at close, no one can link a label to a person.
"""

from __future__ import annotations

import hashlib
import hmac


def voter_pseudonym(instance_secret: bytes, round_secret: bytes, person_id: str) -> bytes:
    """HMAC-SHA256(instance_secret || round_secret, person_id)."""
    return hmac.new(instance_secret + round_secret, person_id.encode(), hashlib.sha256).digest()


def author_label(instance_secret: bytes, round_secret: bytes, person_id: str) -> bytes:
    """HMAC-SHA256(instance_secret || round_secret, "author" || person_id)."""
    return hmac.new(instance_secret + round_secret, b"author" + person_id.encode(), hashlib.sha256).digest()
