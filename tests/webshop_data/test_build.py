"""The catalogue build: worker processes give the same products, in order, as one process."""

from __future__ import annotations

import pytest

from servers.webshop import build


def test_worker_processes_match_one_process(monkeypatch):
    monkeypatch.setattr(build, "PARALLEL_FROM", 0)
    monkeypatch.setattr(build, "_CHUNK", 37)  # many chunks, a short last one, round-robin over workers
    serial = list(build.generated_products(300, seed=5, workers=1))
    parallel = list(build.generated_products(300, seed=5, workers=3))
    assert parallel == serial
    assert len({p.asin for p in serial}) == 300


def test_prepared_line_round_trip():
    p = build.Prepared("B0X", '{"a": "tab\\there"}', None, '{"id": "B0X", "contents": "line\\nbreak"}')
    assert "\n" not in p.line()[:-1]
    assert build.Prepared.from_line(p.line()) == p


def test_worker_failure_is_reported(monkeypatch):
    monkeypatch.setattr(build, "PARALLEL_FROM", 0)
    with pytest.raises(RuntimeError, match="catalogue worker"):
        list(build.generated_products(100, seed="not-a-seed", workers=2))  # type: ignore[arg-type]
