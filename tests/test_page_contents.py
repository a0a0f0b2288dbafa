"""Page contents are kept only up to the last byte written; the rest reads as zero."""

import pytest

from pagewalk import Kernel
from pagewalk.errors import InputError
from pagewalk.kernel.constants import PAGE_SIZE
from pagewalk.kernel.page import page_contents, page_read, page_read_into, page_write


def _page():
    return Kernel().alloc.alloc_page_node(0)


def test_fresh_page_reads_as_zeroes():
    assert page_read(_page(), 100, 8) == bytes(8)


def test_small_store_keeps_only_the_bytes_up_to_it():
    page = _page()
    page_write(page, 10, b"ab")
    assert len(page.data) == 12
    assert page_read(page, 8, 6) == b"\0\0ab\0\0"


def test_store_past_the_kept_bytes_zero_fills_the_gap():
    page = _page()
    page_write(page, 0, b"x")
    page_write(page, 100, b"y")
    assert page_read(page, 0, 101) == b"x" + bytes(99) + b"y"


def test_store_inside_the_kept_bytes_leaves_the_rest():
    page = _page()
    page_write(page, 0, b"abcdef")
    page_write(page, 2, b"ZZ")
    assert page_read(page, 0, 8) == b"abZZef\0\0"


def test_contents_are_always_a_whole_page():
    page = _page()
    assert page_contents(page) == bytes(PAGE_SIZE)
    page_write(page, PAGE_SIZE - 1, b"z")
    assert page_contents(page) == bytes(PAGE_SIZE - 1) + b"z"


def test_one_byte_store_by_a_process_does_not_materialise_the_page():
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a + 5, b"!")
    assert len(k.page(p, a).data) == 6
    assert k.read(p, a, 8).data == b"\0\0\0\0\0!\0\0"


def test_cow_copy_reads_the_same_whole_page():
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a + 3, b"cow")
    k.fork(p, "c")
    k.write("c", a + 4000, b"tail")
    assert k.read("c", a, PAGE_SIZE).data == bytes(3) + b"cow" + bytes(3994) + b"tail" + bytes(92)
    assert k.read(p, a + 4000, 4).data == bytes(4)


def test_file_page_short_at_eof_reads_zeroes_after_the_file():
    k = Kernel()
    p = k.spawn("p")
    k.add_file("/f", b"hello")
    a = k.mmap(p, PAGE_SIZE, "r", file="/f")
    assert k.read(p, a, 8).data == b"hello\0\0\0"


def test_read_into_a_buffer_past_the_kept_bytes_fills_zeroes():
    page = _page()
    page_write(page, 0, b"ab")
    buf = bytearray(b"\xff" * 8)
    page_read_into(page, 4, 8, buf, 0)
    assert buf == bytes(8)


def test_read_into_a_buffer_straddling_the_kept_bytes():
    page = _page()
    page_write(page, 0, b"abcd")
    buf = bytearray(b"\xff" * 6)
    page_read_into(page, 2, 4, buf, 1)
    assert buf == b"\xffcd\0\0\xff"


def test_read_into_grows_a_buffer_that_ends_where_the_copy_starts():
    page = _page()
    page_write(page, 0, b"xy")
    buf = bytearray(b"h")
    page_read_into(page, 0, 4, buf, 1)
    assert buf == b"hxy\0\0"


def test_mem_readinto_fills_the_callers_buffer():
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, 2 * PAGE_SIZE, "rw")
    k.write(p, a + PAGE_SIZE, b"second")
    buf = bytearray(b"\xff" * (2 * PAGE_SIZE))
    assert k.mem_readinto(p, a, buf) == 2 * PAGE_SIZE
    assert buf == bytes(PAGE_SIZE) + b"second" + bytes(PAGE_SIZE - 6)


def test_mem_readinto_refuses_a_read_only_buffer_without_leaking_a_pin():
    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, PAGE_SIZE, "rw")
    k.write(p, a, b"abc")
    with pytest.raises(InputError, match="writable"):
        k.mem_readinto(p, a, b"xxxx")
    k.check_invariants()


def test_mem_read_of_a_negative_length_is_an_input_error():
    k = Kernel()
    p = k.spawn("p")
    with pytest.raises(InputError, match="length"):
        k.mem_read(p, 0x1000, -1)


def test_read_accepts_a_process_name_of_a_str_subclass():
    class Name(str):
        pass

    k = Kernel()
    p = k.spawn("p")
    a = k.mmap(p, PAGE_SIZE, "rw")
    assert k.read(Name("p"), a, 1).data == b"\0"
