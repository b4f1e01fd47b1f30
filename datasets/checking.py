"""The part every data set's checker shares: the problems of many listed items, read in a thread pool with a
progress bar (decoding images and volumes releases the GIL)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from datasets.registry import Problem

T = TypeVar("T")


def gather_problems(
    items: Sequence[T], problems_of: Callable[[T], list[Problem]], workers: int, progress: bool, description: str
) -> list[Problem]:
    """``problems_of(item)`` for every item, in ``workers`` threads, concatenated in item order."""
    from tqdm.auto import tqdm

    found: list[Problem] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for item_problems in tqdm(
            pool.map(problems_of, items), total=len(items), desc=description, disable=not progress
        ):
            found += item_problems
    return found
