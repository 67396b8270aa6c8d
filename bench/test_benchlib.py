"""Checks of the measuring tools: `.venv/bin/pytest bench/test_benchlib.py` (not part of make test)."""

from __future__ import annotations

import os

import requests
from benchlib import PYTHON, percentile, run_measured
from pipeline import union_length
from sink import DiscardServer


def test_percentile_interpolates_between_ranks() -> None:
    data = [float(x) for x in range(1, 21)]  # 1..20
    assert percentile(data, 50) == 10.5
    assert percentile(data, 95) == 19.05
    assert percentile([3.0], 95) == 3.0


def test_union_counts_overlaps_once() -> None:
    assert union_length([(0.0, 2.0), (1.0, 3.0), (5.0, 6.0)]) == 4.0
    assert union_length([]) == 0.0


def test_peak_rss_is_the_childs_own() -> None:
    # a child forked from this (larger) process must not report our size; a child that
    # allocates 200 MB must report at least that
    small = run_measured(["true"])
    big = run_measured([PYTHON, "-c", "b = bytearray(200 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"])
    assert small.returncode == 0 and big.returncode == 0
    assert small.peak_rss_mb < 20
    assert big.peak_rss_mb > 190


def test_discard_sink_reads_whole_bodies_over_keep_alive() -> None:
    with DiscardServer() as sink, requests.Session() as s:
        body = os.urandom(3 * 1024 * 1024 + 17)
        for _ in range(2):
            resp = s.post(sink.url + "/x", data=body, timeout=10)
            assert resp.status_code == 200 and resp.json() == {}
        assert sink.received == 2 * len(body)
