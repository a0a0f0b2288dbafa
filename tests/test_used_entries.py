"""inspect.used_entries: the indices of a page table's non-zero entries,
found chunk by chunk in C -- it decides what the invariants and the
explorer's lock guards see of every table."""

from __future__ import annotations

import random
from array import array

import pytest

from pagewalk.kernel.inspect import used_entries


def table(entries: dict[int, int]) -> array:
    t = array("Q", bytes(8 * 512))
    for i, v in entries.items():
        t[i] = v
    return t


def test_an_empty_table_has_no_entries():
    assert used_entries(table({})) == []


@pytest.mark.parametrize("index", [0, 63, 64, 255, 448, 511])
def test_one_entry_is_found_at_any_chunk_edge(index):
    assert used_entries(table({index: 1})) == [index]


def test_an_entry_with_only_its_top_bit_set_counts():
    assert used_entries(table({300: 1 << 63})) == [300]


def test_a_full_table_lists_every_index_in_order():
    assert used_entries(table(dict.fromkeys(range(512), 7))) == list(range(512))


def test_random_tables_list_exactly_their_non_zero_entries():
    rng = random.Random(13)
    for _ in range(300):
        picked = rng.sample(range(512), rng.choice([1, 2, 5, 70, 300]))
        values = {i: rng.getrandbits(64) or 1 for i in picked}
        assert used_entries(table(values)) == sorted(picked)
