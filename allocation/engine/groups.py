"""Item groups: the independent partitions of a run (allocation.md, "Runs")."""

from __future__ import annotations

from collections.abc import Iterable

from allocation.engine.types import Item, Line, Quota


class _UnionFind:
    __slots__ = ("parent",)

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def add(self, key: str) -> None:
        if key not in self.parent:
            self.parent[key] = key

    def find(self, key: str) -> str:
        parent = self.parent
        root = key
        while parent[root] != root:
            root = parent[root]
        while parent[key] != root:
            parent[key], key = root, parent[key]
        return root

    def union(self, left: str, right: str) -> None:
        self.add(left)
        self.add(right)
        root_left, root_right = self.find(left), self.find(right)
        if root_left != root_right:
            # The smaller code becomes the root so results never depend on input order.
            if root_right < root_left:
                root_left, root_right = root_right, root_left
            self.parent[root_right] = root_left


def item_groups(
    items: Iterable[Item], lines: Iterable[Line], quotas: Iterable[Quota]
) -> list[frozenset[str]]:
    """Partition the items into groups a run can allocate independently.

    Two items are in one group when one substitutes for the other, when lines of
    one ship-complete order ask for both, or when a quota caps their item class
    (a quota naming neither a sku nor a class links every item). Returns the
    connected components, each a frozenset of skus, sorted by their smallest sku.
    """
    finder = _UnionFind()
    class_members: dict[str, list[str]] = {}
    for item in items:
        finder.add(item.sku)
        class_members.setdefault(item.item_class, []).append(item.sku)
        for substitute in item.substitutes:
            finder.union(item.sku, substitute)
    ship_complete_first: dict[str, str] = {}
    for line in lines:
        finder.add(line.item)
        class_members.setdefault(line.item_class, []).append(line.item)
        if line.ship_complete:
            first = ship_complete_first.setdefault(line.order, line.item)
            finder.union(first, line.item)
    for quota in quotas:
        if quota.sku is not None:
            continue
        if quota.item_class is None:
            members = list(finder.parent)
        else:
            members = class_members.get(quota.item_class, [])
        for member in members[1:]:
            finder.union(members[0], member)
    components: dict[str, set[str]] = {}
    for sku in list(finder.parent):
        components.setdefault(finder.find(sku), set()).add(sku)
    return sorted((frozenset(members) for members in components.values()), key=min)
