"""Portable, deterministic bucketing.

``r = int.from_bytes(sha256(f"{variable_name}:{targeting_key}").digest()[:8], "big") / 2**64``

``r`` is uniform in [0, 1). It depends only on the two strings, so every SDK in every language and the
server agree on it; the golden vectors in ``tests/core/golden_bucketing.json`` pin it.

Segment rules with a ``weight`` use LaunchDarkly's own algorithm instead (`segment_bucket`), so that a segment
ported from LaunchDarkly selects the same contexts.
"""

from __future__ import annotations

from hashlib import sha1, sha256
from struct import Struct

__all__ = ["bucket", "bucket_with_prefix", "segment_bucket"]

_FIRST_8_BYTES_BIG_ENDIAN = Struct(">Q").unpack_from
_INVERSE_SCALE = 2.0**-64  # exact: multiplying by a power of two is the same as dividing by 2**64


def bucket(variable_name: str, targeting_key: str) -> float:
    """The position of ``targeting_key`` in ``variable_name``'s bucket space, in [0, 1)."""
    return bucket_with_prefix(f"{variable_name}:", targeting_key)


def bucket_with_prefix(prefix: str, targeting_key: str) -> float:
    """`bucket` with ``f"{variable_name}:"`` precomputed (the evaluator's hot path)."""
    digest = sha256((prefix + targeting_key).encode()).digest()
    value: int = _FIRST_8_BYTES_BIG_ENDIAN(digest)[0]
    return value * _INVERSE_SCALE


_LD_SCALE = float(0xFFFFFFFFFFFFFFF)


def segment_bucket(segment_key: str, salt: str, value: str) -> float:
    """LaunchDarkly's bucket of ``value`` in a segment rule, in [0, 1]:
    the first 15 hex digits of ``sha1(f"{segment_key}.{salt}.{value}")`` divided by ``0xFFFFFFFFFFFFFFF``."""
    digest = sha1(f"{segment_key}.{salt}.{value}".encode(), usedforsecurity=False).hexdigest()
    return int(digest[:15], 16) / _LD_SCALE
