"""Context keys: stable 64-bit digests of the context a policy saw at a step.

HGPO (arXiv 2602.22817) groups the steps of a rollout group by how much of
their history is identical: the level-k group of a step holds the steps whose
current observation and last k history records are identical. A memory module
hands the estimator one key per level, ``keys[k]`` for ``k = 0..K``.

Encoding (BLAKE2b throughout, domain-separated by BLAKE2b's ``person``
parameter, so digests of different kinds never coincide except by collision):

- a text enters only length-prefixed: its UTF-8 bytes preceded by their
  length as 8 little-endian bytes;
- a history record: ``BLAKE2b-128[person "hgpo-ctx.record"](len | obs | len | action)``
  in ``"obs_action"`` mode, and the observation digest of its observation in
  ``"obs"`` mode (the reference HGPO code keys on observations only);
- ``key[k] = BLAKE2b-64[person "hgpo-ctx.key"](len | obs | r1 | ... | rm)`` read
  as a big-endian unsigned int, where ``obs`` is the current observation,
  ``r1`` the previous step's record digest, ``r2`` the one before, and
  ``m = min(k, number of records shown)``;
- when the prompt also shows a summary of older records and level k reaches
  past the shown records, ``b"S" | BLAKE2b-128[person "hgpo-ctx.text"](len | summary)``
  is appended to that input.

After the length-prefixed observation every field is a 16-byte digest (the
summary field 17 bytes, so the two kinds of tail never have the same length),
so an input parses one way only:
equal keys at a level mean equal (observation, records..., summary) content
there, up to a 64-bit hash collision (about 1e-14 for 400 steps of a group).
The input of level k extends the input of level k-1, so equal keys at level k
imply equal keys at every lower level; and a step with fewer than k records
can only match, at level k, a step that showed the same number of records.
Nothing here depends on Python's salted ``hash``: keys are identical across
processes, runs and machines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from itertools import islice
from typing import Literal

KeyMode = Literal["obs_action", "obs"]
KEY_MODES: tuple[str, ...] = ("obs_action", "obs")

DIGEST_SIZE = 16
"""Bytes of the observation, record and summary digests (128 bit); keys are 64 bit."""

_PERSON_OBS = b"hgpo-ctx.obs"
_PERSON_RECORD = b"hgpo-ctx.record"
_PERSON_KEY = b"hgpo-ctx.key"
_PERSON_TEXT = b"hgpo-ctx.text"


def _length_prefixed(text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    return len(data).to_bytes(8, "little") + data


def observation_digest(obs: str) -> bytes:
    """16-byte digest of one observation (a history record in ``"obs"`` mode)."""
    return hashlib.blake2b(_length_prefixed(obs), digest_size=DIGEST_SIZE, person=_PERSON_OBS).digest()


def record_digest(obs: str, action: str, key_mode: KeyMode) -> bytes:
    """16-byte digest of one (observation, action) history record.

    In ``"obs"`` mode the action is ignored, as in the reference HGPO code,
    which keys on observations only.
    """
    if key_mode == "obs":
        return observation_digest(obs)
    data = _length_prefixed(obs) + _length_prefixed(action)
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE, person=_PERSON_RECORD).digest()


def text_digest(text: str) -> bytes:
    """16-byte digest of a free text such as a summary."""
    return hashlib.blake2b(_length_prefixed(text), digest_size=DIGEST_SIZE, person=_PERSON_TEXT).digest()


def context_keys_from(
    obs: str,
    records_newest_first: Iterable[bytes],
    history_length: int,
    summary_digest: bytes | None = None,
) -> tuple[int, ...]:
    """The ``history_length + 1`` keys of one step.

    Args:
        obs: the current observation.
        records_newest_first: digests of the records the prompt shows, newest
            first (the previous step's record first); only the first
            ``history_length`` are used.
        history_length: K; levels are ``0..K``.
        summary_digest: :func:`text_digest` of the summary the prompt shows, if
            any: levels beyond the shown records then bind it.

    Level ``k`` covers the current observation and the last ``min(k, r)``
    shown records (r shown records); levels beyond r repeat level r, or, with
    a summary, all bind the summary.
    """
    # One running hash: level k's input is level k-1's input plus one 16-byte record digest.
    h = hashlib.blake2b(_length_prefixed(obs), digest_size=8, person=_PERSON_KEY)
    keys = [int.from_bytes(h.digest(), "big")]
    for record in islice(records_newest_first, history_length):
        h.update(record)
        keys.append(int.from_bytes(h.digest(), "big"))
    missing = history_length + 1 - len(keys)
    if missing:
        if summary_digest is not None:
            h.update(b"S" + summary_digest)
        keys.extend([int.from_bytes(h.digest(), "big")] * missing)
    return tuple(keys)
