"""The range planner: neighbours coalesce across small gaps, requests are capped, order kept."""

from __future__ import annotations

import numpy as np
import pytest

from nwbstore.backends._range_plan import MAX_GAP, MAX_REQUEST, RangeRequest, plan_ranges


def _covers(plan: list[RangeRequest], offsets: list[int], sizes: list[int]) -> None:
    seen = sorted(m for r in plan for m in r.members)
    assert seen == list(range(len(offsets)))
    for r in plan:
        for m in r.members:
            assert r.start <= offsets[m] and offsets[m] + sizes[m] <= r.end


def test_constants() -> None:
    assert MAX_GAP == 64 * 1024 and MAX_REQUEST == 16 * 2**20


def test_empty() -> None:
    assert plan_ranges([], []) == []


def test_adjacent_chunks_merge() -> None:
    plan = plan_ranges([0, 100, 200], [100, 100, 100])
    assert plan == [RangeRequest(0, 300, (0, 1, 2))]


def test_gap_at_limit_merges_and_beyond_splits() -> None:
    plan = plan_ranges([0, 100 + MAX_GAP], [100, 50])
    assert [(r.start, r.end) for r in plan] == [(0, 150 + MAX_GAP)]
    plan = plan_ranges([0, 101 + MAX_GAP], [100, 50])
    assert [(r.start, r.end, r.members) for r in plan] == [
        (0, 100, (0,)),
        (101 + MAX_GAP, 151 + MAX_GAP, (1,)),
    ]


def test_unsorted_input_gives_sorted_requests() -> None:
    offsets, sizes = [5000, 0, 10**7], [10, 10, 10]
    plan = plan_ranges(offsets, sizes)
    assert [r.start for r in plan] == [0, 10**7]
    assert plan[0].members == (1, 0)
    _covers(plan, offsets, sizes)


def test_cap_splits_a_long_run() -> None:
    mib = 2**20
    offsets = [i * 4 * mib for i in range(10)]  # 40 MiB of adjacent 4 MiB chunks
    sizes = [4 * mib] * 10
    plan = plan_ranges(offsets, sizes)
    assert [r.size for r in plan] == [16 * mib, 16 * mib, 8 * mib]
    assert all(r.size <= MAX_REQUEST for r in plan)
    _covers(plan, offsets, sizes)


def test_chunk_bigger_than_cap_is_its_own_request() -> None:
    plan = plan_ranges([0, 100, 100 + 20 * 2**20], [100, 20 * 2**20, 100])
    assert [r.members for r in plan] == [(0,), (1,), (2,)]
    assert plan[1].size == 20 * 2**20


def test_duplicates_and_empty_chunks_share_a_request() -> None:
    plan = plan_ranges([10, 10, 30], [20, 20, 0])
    assert plan == [RangeRequest(10, 30, (0, 1, 2))]


def test_custom_limits_and_errors() -> None:
    assert len(plan_ranges([0, 20], [10, 10], max_gap=0)) == 2
    assert len(plan_ranges([0, 10], [10, 10], max_gap=0)) == 1
    assert len(plan_ranges([0, 10], [10, 10], max_request=15)) == 2
    with pytest.raises(ValueError, match="differ"):
        plan_ranges([0], [1, 2])
    with pytest.raises(ValueError, match="non-negative"):
        plan_ranges([-1], [1])


def test_random_plans_cover_everything() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(1, 60))
        sizes = rng.integers(0, 3 * 2**20, n).tolist()
        offsets = rng.integers(0, 200 * 2**20, n).tolist()
        plan = plan_ranges(offsets, sizes)
        _covers(plan, offsets, sizes)
        assert [r.start for r in plan] == sorted(r.start for r in plan)
        for r in plan:
            assert len(r.members) == 1 or r.size <= MAX_REQUEST


def test_spread_request_size_cuts_a_big_read_into_concurrent_requests() -> None:
    from nwbstore.backends._range_plan import MIN_SPREAD_REQUEST, spread_request_size

    mib = 2**20
    # 64 MiB over 16 requests: 4 MiB each, and the plan of 1 MiB neighbours follows the cap
    assert spread_request_size(64 * mib, 16) == 4 * mib
    offsets = [i * mib for i in range(64)]
    plan = plan_ranges(offsets, [mib] * 64, max_request=spread_request_size(64 * mib, 16))
    assert len(plan) == 16 and all(r.size == 4 * mib for r in plan)
    # small reads are not cut below the floor; huge reads not above MAX_REQUEST
    assert spread_request_size(3 * mib, 16) == MIN_SPREAD_REQUEST
    assert spread_request_size(10_000 * mib, 16) == MAX_REQUEST
    assert spread_request_size(0, 1) == MIN_SPREAD_REQUEST
    with pytest.raises(ValueError, match="concurrency"):
        spread_request_size(mib, 0)
