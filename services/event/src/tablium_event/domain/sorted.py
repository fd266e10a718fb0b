"""A typed face for ``sortedcontainers.SortedList`` (the package ships no type information)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

from sortedcontainers import SortedList as _SortedList  # type: ignore[import-untyped]

T = TypeVar("T")


class SortedList(Generic[T]):
    __slots__ = ("_items",)

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._items: Any = _SortedList(items)

    def add(self, item: T) -> None:
        self._items.add(item)

    def remove(self, item: T) -> None:
        self._items.remove(item)

    def discard(self, item: T) -> None:
        self._items.discard(item)

    def first(self) -> T:
        item: T = self._items[0]
        return item

    def last(self) -> T:
        item: T = self._items[-1]
        return item

    def __getitem__(self, index: int) -> T:
        item: T = self._items[index]
        return item

    def __len__(self) -> int:
        size: int = len(self._items)
        return size

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __reversed__(self) -> Iterator[T]:
        items: Iterator[T] = reversed(self._items)
        return items
