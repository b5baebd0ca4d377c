"""``children.forked_map``: a function mapped over a list in memory by processes forked
from this one, in order, with errors and early stops handled like ``map``'s."""

from __future__ import annotations

import os

import pytest

from keyscope.children import forked_map

PARENT = os.getpid()


def _pid_and_square(n: int) -> tuple[int, int]:
    return os.getpid(), n * n


def test_chunks_are_mapped_by_forked_processes_in_order() -> None:
    items = list(range(2_500))
    out = list(forked_map(items, _pid_and_square, jobs=2, chunk=100))
    assert [square for _, square in out] == [n * n for n in items]
    pids = {pid for pid, _ in out}
    assert PARENT not in pids and 1 <= len(pids) <= 2


def test_a_closure_over_local_state_is_inherited_not_sent() -> None:
    table = {n: f"v{n}" for n in range(1_000)}  # a lambda cannot be pickled: it is not
    assert list(forked_map(list(table), lambda n: table[n], jobs=2, chunk=100)) == list(
        table.values()
    )


@pytest.mark.parametrize(("n", "jobs"), [(150, 2), (5_000, 1)])
def test_few_items_or_one_job_run_here(n: int, jobs: int) -> None:
    out = list(forked_map(list(range(n)), _pid_and_square, jobs=jobs, chunk=100))
    assert {pid for pid, _ in out} == {PARENT}
    assert len(out) == n


def _fail_at_777(n: int) -> int:
    if n == 777:
        raise ValueError("item 777")
    return n


def test_an_error_in_a_child_reaches_the_caller() -> None:
    with pytest.raises(ValueError, match="item 777"):
        list(forked_map(list(range(2_000)), _fail_at_777, jobs=2, chunk=100))


def test_stopping_early_ends_the_children() -> None:
    import multiprocessing

    gen = forked_map(list(range(10_000)), _pid_and_square, jobs=2, chunk=100)
    pid, square = next(gen)
    assert square == 0 and pid != PARENT
    gen.close()
    assert multiprocessing.active_children() == []

