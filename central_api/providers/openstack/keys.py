"""SSH public key fingerprints, computed the way Nova reports them (colon-separated MD5).

Computing it locally lets a Keypair report its fingerprint consistently and lets tests check
Nova's answer against an independent computation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from ..base import InvalidRequest


def fingerprint(public_key: str) -> str:
    """``aa:bb:...`` MD5 fingerprint of an OpenSSH public key line (``type base64 [comment]``)."""
    parts = public_key.strip().split()
    if len(parts) < 2:
        raise InvalidRequest("public key must be 'type base64 [comment]'")
    try:
        blob = base64.b64decode(parts[1].encode(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("public key is not valid base64") from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
