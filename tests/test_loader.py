"""Tests of the scenario loader (shared/spec/scenario.md): one behaviour per test."""

from __future__ import annotations

import pytest

from pagewalk.errors import InputError
from pagewalk.scenario.loader import load_scenario, parse_scenario
from pagewalk.scenario.model import AddrRef, Scenario

FILE = "x.toml"
HEAD = 'name = "x"\n'
MMAP = '[[setup]]\nop = "mmap"\nlength = 8192\nas = "buf"\n'


def load(body: str, head: str = HEAD) -> Scenario:
    return parse_scenario(head + body, FILE)


def error(body: str, head: str = HEAD) -> InputError:
    with pytest.raises(InputError) as info:
        parse_scenario(head + body, FILE)
    return info.value


def setup_op(text: str) -> str:
    """One ``[[setup]]`` op after the ``buf`` mapping (so it is setup[1])."""
    return MMAP + "[[setup]]\n" + text + "\n"


def check(text: str) -> str:
    return MMAP + "[[check]]\n" + text + "\n"


# --------------------------------------------------------------------------
# Top level, reading and TOML


def test_minimal_scenario_gets_documented_defaults():
    scenario = load("")
    assert (scenario.name, scenario.description, scenario.semantics) == ("x", "", "2.6.15")
    assert (scenario.nodes, scenario.split_ptlock, scenario.path) == (1, True, FILE)
    assert scenario.files == scenario.setup == scenario.threads == scenario.final == []
    assert scenario.checks == []


def test_top_level_values_are_kept():
    head = 'name = "n"\ndescription = "d"\nsemantics = "2.6.15"\nnodes = 4\nsplit_ptlock = false\n'
    scenario = load("", head=head)
    assert (scenario.description, scenario.nodes, scenario.split_ptlock) == ("d", 4, False)


def test_missing_name_is_rejected():
    err = error("", head='description = "no name"\n')
    assert err.where == "x.toml: name"
    assert "missing required key 'name'" in str(err)


def test_unknown_top_level_key_is_rejected_with_allowed_keys():
    err = error("colour = 1\n")
    assert err.where == "x.toml: colour"
    assert "unknown key 'colour'" in err.detail
    assert "allowed: check, description, expect, file, final, name, nodes, process" in err.detail


def test_toml_syntax_error_keeps_line_and_column():
    err = error("nodes = = 2\n")
    assert err.where == FILE
    assert str(err).startswith("x.toml: TOML syntax error:")
    assert "line 2, column" in str(err)


def test_huge_integer_literal_is_an_input_error():
    err = error("nodes = " + "1" * 5000 + "\n")
    assert str(err).startswith("x.toml: TOML syntax error")


def test_deeply_nested_array_is_an_input_error():
    err = error("description = " + "[" * 5000 + "\n")
    assert str(err).startswith("x.toml: TOML syntax error")


def test_lone_surrogate_in_text_is_rejected():
    err = error('description = "\ud800"\n')
    assert "not valid Unicode" in str(err)


def test_load_scenario_reads_file_and_names_it_in_messages(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(HEAD + "nodes = 0\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_scenario(path)
    assert info.value.where == f"{path}: nodes"


def test_load_scenario_accepts_a_path_string(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(HEAD, encoding="utf-8")
    assert load_scenario(str(path)).path == str(path)


def test_missing_file_is_an_input_error(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(InputError) as info:
        load_scenario(path)
    assert str(info.value).startswith(f"{path}: cannot read scenario file")


def test_directory_is_an_input_error(tmp_path):
    with pytest.raises(InputError):
        load_scenario(tmp_path)


def test_non_utf8_file_is_rejected_with_its_line(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(HEAD.encode() + 'description = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(InputError) as info:
        load_scenario(path)
    assert "not valid UTF-8: byte 0xe9 at line 2" in str(info.value)


def test_byte_order_mark_is_ignored(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + HEAD.encode())
    assert load_scenario(path).name == "x"


def test_unknown_semantics_lists_known_profiles():
    err = error('semantics = "9.9"\n')
    assert err.where == "x.toml: semantics"
    assert "unknown semantics profile '9.9' (known: " in err.detail
    assert "2.6.15" in err.detail


def test_semantics_must_be_a_string():
    assert error("semantics = 2.6\n").detail == "expected a string, found float 2.6"


@pytest.mark.parametrize("nodes", [0, 65, -1])
def test_nodes_outside_1_to_64_is_rejected(nodes):
    err = error(f"nodes = {nodes}\n")
    assert err.where == "x.toml: nodes"
    assert err.detail == f"expected an integer from 1 to 64, found {nodes}"


def test_float_is_not_accepted_as_integer():
    assert error("nodes = 2.0\n").detail == "expected an integer, found float 2.0"


def test_boolean_is_not_accepted_as_integer():
    assert error("nodes = true\n").detail == "expected an integer, found boolean true"


@pytest.mark.parametrize("value", ['"true"', "1"])
def test_split_ptlock_must_be_a_real_boolean(value):
    err = error(f"split_ptlock = {value}\n")
    assert err.where == "x.toml: split_ptlock"
    assert err.detail.startswith("expected a boolean")


def test_section_must_be_an_array_of_tables():
    err = error("setup = 5\n")
    assert err.where == "x.toml: setup"
    assert err.detail == "expected an array of tables, found integer 5"


def test_section_entry_must_be_a_table():
    err = error("check = [1]\n")
    assert err.where == "x.toml: check[0]"


def test_messages_stay_on_one_line_for_odd_keys():
    err = error('"a\\nb" = 1\n')
    assert "\n" not in str(err)
    assert err.where == 'x.toml: "a\\nb"'


# --------------------------------------------------------------------------
# [[file]]


def test_file_content_is_stored_utf8_encoded():
    scenario = load('[[file]]\npath = "/f"\ncontent = "caf\u00e9"\n')
    assert scenario.files[0].content == b"caf\xc3\xa9"


def test_file_size_gives_zero_filled_content():
    assert load('[[file]]\npath = "/f"\nsize = 3\n').files[0].content == b"\0\0\0"


def test_file_fill_is_repeated_and_cut_to_size():
    assert load('[[file]]\npath = "/f"\nfill = "abc"\nsize = 7\n').files[0].content == b"abcabca"


def test_file_defaults_are_mode_rw_and_not_hugetlb():
    spec = load('[[file]]\npath = "/f"\nsize = 0\n').files[0]
    assert (spec.path, spec.mode, spec.hugetlb, spec.where) == (
        "/f",
        "rw",
        False,
        "x.toml: file[0]",
    )


def test_file_mode_and_hugetlb_are_kept():
    spec = load('[[file]]\npath = "/f"\nsize = 1\nmode = "r"\nhugetlb = true\n').files[0]
    assert (spec.mode, spec.hugetlb) == ("r", True)


def test_file_unknown_mode_lists_accepted_modes():
    err = error('[[file]]\npath = "/f"\nsize = 1\nmode = "w"\n')
    assert err.where == "x.toml: file[0].mode"
    assert err.detail == "unknown file mode 'w' (accepted: 'r', 'rw')"


def test_file_relative_path_is_rejected():
    err = error('[[file]]\npath = "f"\nsize = 1\n')
    assert err.where == "x.toml: file[0].path"
    assert "must be absolute" in err.detail


def test_duplicate_file_path_is_rejected():
    err = error('[[file]]\npath = "/f"\nsize = 1\n[[file]]\npath = "/f"\nsize = 2\n')
    assert err.where == "x.toml: file[1].path"
    assert "duplicate file path '/f' (already at x.toml: file[0])" in err.detail


@pytest.mark.parametrize(
    "fields", ["", 'content = "a"\nsize = 1\n', 'fill = "a"\n', 'content = "a"\nfill = "b"\n']
)
def test_file_needs_exactly_one_content_source(fields):
    err = error('[[file]]\npath = "/f"\n' + fields)
    assert err.where == "x.toml: file[0]"
    assert "exactly one of content, size, or fill + size" in err.detail


def test_file_empty_fill_is_rejected():
    assert error('[[file]]\npath = "/f"\nfill = ""\nsize = 2\n').where == "x.toml: file[0].fill"


def test_file_negative_size_is_rejected():
    err = error('[[file]]\npath = "/f"\nsize = -1\n')
    assert (err.where, err.detail) == (
        "x.toml: file[0].size",
        "expected an integer from 0 to 67108864, found -1",
    )


def test_file_size_above_limit_is_rejected():
    assert error('[[file]]\npath = "/f"\nsize = 1099511627776\n').where == "x.toml: file[0].size"


# --------------------------------------------------------------------------
# [[process]]


def test_default_process_p_exists_when_none_declared():
    process = load("").processes
    assert [(p.name, p.node) for p in process] == [("p", 0)]


def test_declared_processes_keep_order_and_node():
    scenario = load(
        '[[process]]\nname = "a"\nnode = 1\n[[process]]\nname = "b"\n', head=HEAD + "nodes = 2\n"
    )
    assert [(p.name, p.node, p.where) for p in scenario.processes] == [
        ("a", 1, "x.toml: process[0]"),
        ("b", 0, "x.toml: process[1]"),
    ]


def test_process_node_must_be_below_nodes():
    err = error('[[process]]\nname = "a"\nnode = 1\n')
    assert (err.where, err.detail) == (
        "x.toml: process[0].node",
        "expected an integer from 0 to 0, found 1",
    )


def test_duplicate_process_name_is_rejected():
    err = error('[[process]]\nname = "a"\n[[process]]\nname = "a"\n')
    assert err.where == "x.toml: process[1].name"
    assert "duplicate process name 'a'" in err.detail


def test_process_name_is_required():
    assert error("[[process]]\nnode = 0\n").where == "x.toml: process[0].name"


def test_process_name_with_spaces_is_rejected():
    assert "invalid name 'a b'" in error('[[process]]\nname = "a b"\n').detail


def test_undeclared_process_is_rejected_with_known_ones():
    err = error(setup_op('op = "exit"\nprocess = "q"'))
    assert err.where == "x.toml: setup[1].process"
    assert err.detail == (
        "unknown process 'q' (expected a declared process or a fork child; known: 'p')"
    )


# --------------------------------------------------------------------------
# Operations: common keys


def test_op_process_defaults_to_first_process():
    scenario = load('[[process]]\nname = "a"\n[[process]]\nname = "b"\n' + MMAP)
    assert scenario.setup[0].process == "a"


def test_op_process_is_kept_when_given():
    scenario = load(
        '[[process]]\nname = "a"\n[[process]]\nname = "b"\n[[setup]]\nop = "exit"\nprocess = "b"\n'
    )
    assert scenario.setup[0].process == "b"


def test_missing_op_key_lists_accepted_ops():
    err = error("[[setup]]\nlength = 1\n")
    assert err.where == "x.toml: setup[0].op"
    assert (
        "missing required key 'op' (accepted ops: core_dump, exit, fork, futex_key, gup"
        in err.detail
    )


def test_unknown_op_lists_accepted_ops():
    err = error('[[setup]]\nop = "mmapp"\n')
    assert err.where == "x.toml: setup[0].op"
    assert err.detail.startswith("unknown op 'mmapp' (accepted: 'core_dump', 'exit', 'fork'")


def test_missing_required_argument_names_the_field():
    err = error(setup_op('op = "munmap"\naddr = "buf"'))
    assert err.where == "x.toml: setup[1].length"
    assert err.detail == "missing required key 'length' for op 'munmap'"


def test_unknown_op_argument_lists_allowed_keys():
    err = error('[[setup]]\nop = "mmap"\nlength = 1\nlenght = 2\n')
    assert err.where == "x.toml: setup[0].lenght"
    assert err.detail == (
        "unknown key 'lenght' in op 'mmap' "
        "(allowed: addr, as, file, flags, length, offset, op, process, prot)"
    )


def test_step_label_is_as_name_else_section_and_index():
    scenario = load(
        MMAP
        + '[[setup]]\nop = "exit"\n'
        + '[[thread]]\nname = "t1"\nops = [{op = "exit"}, {op = "exit", as = "bye"}]\n'
        + '[[final]]\nop = "numa_maps"\n'
    )
    assert [op.step for op in scenario.setup] == ["buf", "setup[1]"]
    assert [op.step for op in scenario.threads[0].ops] == ["t1[0]", "bye"]
    assert scenario.final[0].step == "final[0]"
    assert scenario.setup[0].as_name == "buf"
    assert scenario.setup[1].as_name is None


def test_op_where_names_section_and_index():
    scenario = load(
        MMAP
        + '[[thread]]\nname = "t1"\nops = [{op = "exit"}, {op = "exit"}]\n[[final]]\nop = "exit"\n'
    )
    assert scenario.setup[0].where == "x.toml: setup[0]"
    assert scenario.threads[0].ops[1].where == "x.toml: thread[t1].ops[1]"
    assert scenario.final[0].where == "x.toml: final[0]"


def test_argument_error_in_thread_op_names_thread_and_index():
    err = error(
        '[[thread]]\nname = "t1"\nops = [{op = "exit"}, {op = "read", addr = -1, length = 1}]\n'
    )
    assert err.where == "x.toml: thread[t1].ops[1].addr"


def test_argument_error_in_final_names_final_and_index():
    assert (
        error('[[final]]\nop = "read"\naddr = 0\nlength = 1.5\n').where == "x.toml: final[0].length"
    )


def test_duplicate_as_name_across_sections_is_rejected():
    err = error(MMAP + '[[final]]\nop = "mmap"\nlength = 1\nas = "buf"\n')
    assert err.where == "x.toml: final[0].as"
    assert err.detail == "duplicate name 'buf' (already used at x.toml: setup[0])"


@pytest.mark.parametrize("name", ["a+b", "t[0]", "0x10", ""])
def test_as_name_that_could_not_be_referenced_is_rejected(name):
    err = error(f'[[setup]]\nop = "mmap"\nlength = 1\nas = "{name}"\n')
    assert err.where == "x.toml: setup[0].as"
    assert err.detail.startswith("invalid name")


# --------------------------------------------------------------------------
# Operations: each op


def test_mmap_defaults_prot_rw_private_and_offset_zero():
    args = load(MMAP).setup[0].args
    assert args == {"length": 8192, "prot": "rw", "flags": frozenset({"private"}), "offset": 0}


def test_mmap_flags_are_stored_as_frozenset():
    op = load('[[setup]]\nop = "mmap"\nlength = 1\nflags = ["shared", "fixed", "shared"]\n').setup[
        0
    ]
    assert op.args["flags"] == frozenset({"shared", "fixed"})


def test_mmap_empty_flags_stay_empty():
    assert (
        load('[[setup]]\nop = "mmap"\nlength = 1\nflags = []\n').setup[0].args["flags"]
        == frozenset()
    )


def test_mmap_unknown_flag_lists_accepted_flags():
    err = error('[[setup]]\nop = "mmap"\nlength = 1\nflags = ["private", "anon"]\n')
    assert err.where == "x.toml: setup[0].flags[1]"
    assert err.detail == (
        "unknown mmap flag 'anon' (accepted: 'private', 'shared', 'fixed', 'growsdown', "
        "'locked', 'populate')"
    )


def test_mmap_flags_must_be_an_array():
    assert (
        error('[[setup]]\nop = "mmap"\nlength = 1\nflags = "private"\n').where
        == "x.toml: setup[0].flags"
    )


@pytest.mark.parametrize("prot", ["", "r", "rw", "rx", "rwx"])
def test_mmap_accepts_every_prot(prot):
    assert (
        load(f'[[setup]]\nop = "mmap"\nlength = 1\nprot = "{prot}"\n').setup[0].args["prot"] == prot
    )


def test_unknown_prot_lists_accepted_values():
    err = error('[[setup]]\nop = "mmap"\nlength = 1\nprot = "wx"\n')
    assert err.detail == "unknown prot 'wx' (accepted: '', 'r', 'rw', 'rx', 'rwx')"


def test_mmap_file_offset_and_addr_are_kept():
    body = (
        '[[file]]\npath = "/f"\nsize = 8192\n'
        '[[setup]]\nop = "mmap"\nlength = 4096\nfile = "/f"\noffset = 4096\naddr = 0x10000\n'
    )
    args = load(body).setup[0].args
    assert (args["file"], args["offset"], args["addr"]) == (
        "/f",
        4096,
        AddrRef(None, 0x10000, "0x10000"),
    )


def test_mmap_file_must_be_declared():
    err = error('[[setup]]\nop = "mmap"\nlength = 1\nfile = "/nope"\n')
    assert err.where == "x.toml: setup[0].file"
    assert err.detail == "unknown file '/nope' (expected the path of a declared file; known: none)"


def test_negative_length_is_rejected():
    err = error('[[setup]]\nop = "mmap"\nlength = -4096\n')
    assert (err.where, err.detail) == (
        "x.toml: setup[0].length",
        "expected an integer >= 0, found -4096",
    )


def test_length_beyond_64_bits_is_rejected():
    err = error('[[setup]]\nop = "mmap"\nlength = 0xffffffffffffffffff\n')
    assert err.detail.endswith("that fits in 64 bits, found 4722366482869645213695")


@pytest.mark.parametrize("length", [0, 1, 4097])
def test_zero_and_unaligned_lengths_are_accepted(length):
    assert load(f'[[setup]]\nop = "mmap"\nlength = {length}\n').setup[0].args["length"] == length


@pytest.mark.parametrize("op", ["munmap", "mlock", "munlock"])
def test_range_ops_take_addr_and_length(op):
    args = load(setup_op(f'op = "{op}"\naddr = "buf"\nlength = 4096')).setup[1].args
    assert args == {"addr": AddrRef("buf", 0, "buf"), "length": 4096}


def test_mprotect_requires_prot():
    assert (
        error(setup_op('op = "mprotect"\naddr = "buf"\nlength = 1')).where
        == "x.toml: setup[1].prot"
    )


def test_mprotect_keeps_prot():
    assert (
        load(setup_op('op = "mprotect"\naddr = "buf"\nlength = 1\nprot = "r"'))
        .setup[1]
        .args["prot"]
        == "r"
    )


def test_madvise_unknown_advice_lists_accepted_values():
    err = error(setup_op('op = "madvise"\naddr = "buf"\nlength = 1\nadvice = "free"'))
    assert err.where == "x.toml: setup[1].advice"
    assert err.detail == (
        "unknown advice 'free' (accepted: 'dontneed', 'willneed', 'normal', 'random', 'sequential')"
    )


def test_fork_requires_as():
    err = error('[[setup]]\nop = "fork"\n')
    assert err.where == "x.toml: setup[0].as"
    assert "missing required key 'as' for op 'fork'" in err.detail


def test_fork_child_name_is_a_valid_process():
    scenario = load(
        setup_op('op = "fork"\nas = "kid"')
        + '[[setup]]\nop = "write"\nprocess = "kid"\naddr = "buf"\ndata = "x"\n'
        + '[[thread]]\nname = "t"\nprocess = "kid"\nops = [{op = "exit"}]\n'
        + '[[check]]\nkind = "memory"\nprocess = "kid"\naddr = "buf"\ndata = "x"\n'
    )
    assert scenario.setup[2].process == "kid"
    assert scenario.threads[0].process == "kid"
    assert scenario.checks[0].args["process"] == "kid"
    assert [p.name for p in scenario.processes] == ["p"]


def test_fork_child_may_be_used_before_the_fork_in_the_file():
    scenario = load('[[setup]]\nop = "exit"\nprocess = "kid"\n[[final]]\nop = "fork"\nas = "kid"\n')
    assert scenario.setup[0].process == "kid"


def test_fork_child_clashing_with_declared_process_is_rejected():
    err = error(
        '[[process]]\nname = "a"\n[[process]]\nname = "b"\n[[setup]]\nop = "fork"\nas = "b"\n'
    )
    assert err.where == "x.toml: setup[0].as"
    assert "clashes with a declared process" in err.detail


def test_fork_child_clashing_with_default_process_is_rejected():
    assert "clashes" in error('[[setup]]\nop = "fork"\nas = "p"\n').detail


def test_exit_takes_no_arguments():
    err = error('[[setup]]\nop = "exit"\naddr = 0\n')
    assert err.where == "x.toml: setup[0].addr"
    assert err.detail == "unknown key 'addr' in op 'exit' (allowed: as, op, process)"


def test_read_expect_is_stored_as_bytes():
    args = load(setup_op('op = "read"\naddr = "buf"\nlength = 2\nexpect = "\u00e9"')).setup[1].args
    assert args["expect"] == b"\xc3\xa9"


def test_read_without_expect_has_no_expect_argument():
    assert "expect" not in load(setup_op('op = "read"\naddr = "buf"\nlength = 2')).setup[1].args


def test_write_data_is_stored_as_utf8_bytes():
    assert load(setup_op('op = "write"\naddr = "buf"\ndata = "hi"')).setup[1].args["data"] == b"hi"


def test_write_data_must_be_a_string():
    err = error(setup_op('op = "write"\naddr = "buf"\ndata = 7'))
    assert (err.where, err.detail) == (
        "x.toml: setup[1].data",
        "expected a string, found integer 7",
    )


def test_mem_read_by_must_name_a_process():
    err = error(setup_op('op = "mem_read"\naddr = "buf"\nlength = 1\nby = "ghost"'))
    assert err.where == "x.toml: setup[1].by"
    assert err.detail.startswith("unknown process 'ghost'")


def test_mem_write_by_accepts_a_fork_child():
    body = (
        setup_op('op = "fork"\nas = "kid"')
        + '[[setup]]\nop = "mem_write"\naddr = "buf"\ndata = "z"\nby = "kid"\n'
    )
    assert load(body).setup[2].args == {"addr": AddrRef("buf", 0, "buf"), "data": b"z", "by": "kid"}


def test_gup_defaults_write_and_force_to_false():
    args = load(setup_op('op = "gup"\naddr = "buf"\npages = 2')).setup[1].args
    assert (args["pages"], args["write"], args["force"]) == (2, False, False)


def test_gup_pages_must_be_at_least_one():
    err = error(setup_op('op = "gup"\naddr = "buf"\npages = 0'))
    assert (err.where, err.detail) == (
        "x.toml: setup[1].pages",
        "expected an integer >= 1, found 0",
    )


def test_gup_write_must_be_a_boolean():
    assert (
        error(setup_op('op = "gup"\naddr = "buf"\npages = 1\nwrite = 1')).where
        == "x.toml: setup[1].write"
    )


def test_put_pages_accepts_the_as_name_of_a_gup():
    body = setup_op('op = "gup"\naddr = "buf"\npages = 1\nwrite = true\nforce = true\nas = "pin"')
    scenario = load(body + '[[final]]\nop = "put_pages"\npins = "pin"\n')
    assert scenario.final[0].args == {"pins": "pin"}
    assert scenario.setup[1].args["write"] is True


def test_put_pages_naming_an_mmap_is_rejected():
    err = error(setup_op('op = "put_pages"\npins = "buf"'))
    assert err.where == "x.toml: setup[1].pins"
    assert err.detail == "unknown pins name 'buf' (expected the `as` name of a gup op; known: none)"


def test_futex_key_requires_addr():
    assert error('[[setup]]\nop = "futex_key"\n').where == "x.toml: setup[0].addr"


def test_core_dump_keeps_its_path():
    assert load('[[setup]]\nop = "core_dump"\npath = "core.1"\n').setup[0].args == {
        "path": "core.1"
    }


def test_core_dump_requires_a_non_empty_path():
    assert error('[[setup]]\nop = "core_dump"\npath = ""\n').where == "x.toml: setup[0].path"


def test_numa_maps_takes_no_arguments():
    assert load('[[setup]]\nop = "numa_maps"\n').setup[0].args == {}


# --------------------------------------------------------------------------
# Addresses


def test_integer_address_is_a_literal():
    assert load(setup_op('op = "futex_key"\naddr = 4096')).setup[1].args["addr"] == AddrRef(
        None, 4096, "0x1000"
    )


def test_string_hex_literal_address_is_a_literal():
    addr = load(setup_op('op = "futex_key"\naddr = "0x7f0000"')).setup[1].args["addr"]
    assert addr == AddrRef(None, 0x7F0000, "0x7f0000")


def test_address_reference_without_offset_is_parsed():
    assert load(setup_op('op = "futex_key"\naddr = "buf"')).setup[1].args["addr"] == AddrRef(
        "buf", 0, "buf"
    )


def test_address_reference_with_decimal_offset_is_parsed():
    addr = load(setup_op('op = "futex_key"\naddr = "buf+4100"')).setup[1].args["addr"]
    assert addr == AddrRef("buf", 4100, "buf+4100")


def test_address_reference_with_hex_offset_is_parsed():
    addr = load(setup_op('op = "futex_key"\naddr = "buf+0x1004"')).setup[1].args["addr"]
    assert addr == AddrRef("buf", 0x1004, "buf+0x1004")


def test_address_reference_may_name_a_later_mmap():
    body = (
        '[[setup]]\nop = "futex_key"\naddr = "late"\n'
        '[[final]]\nop = "mmap"\nlength = 1\nas = "late"\n'
    )
    assert load(body).setup[0].args["addr"].name == "late"


def test_unknown_address_name_is_rejected():
    err = error(setup_op('op = "futex_key"\naddr = "bug+8"'))
    assert err.where == "x.toml: setup[1].addr"
    assert err.detail == (
        "unknown mapping name 'bug' (expected the `as` name of an mmap op; known: 'buf')"
    )


def test_address_naming_a_non_mmap_op_is_rejected():
    body = (
        setup_op('op = "gup"\naddr = "buf"\npages = 1\nas = "pin"')
        + '[[final]]\nop = "futex_key"\naddr = "pin"\n'
    )
    assert error(body).where == "x.toml: final[0].addr"


@pytest.mark.parametrize("text", ["buf+", "buf*2", "+8", "buf+0xg", "buf + -1", "0x"])
def test_malformed_address_string_is_rejected(text):
    err = error(setup_op(f'op = "futex_key"\naddr = "{text}"'))
    assert err.where == "x.toml: setup[1].addr"
    assert err.detail.startswith(f"invalid address '{text}'")


def test_negative_address_is_rejected():
    assert (
        error(setup_op('op = "futex_key"\naddr = -4096')).detail
        == "expected an integer >= 0, found -4096"
    )


def test_boolean_address_is_rejected():
    assert "found boolean true" in error(setup_op('op = "futex_key"\naddr = true')).detail


def test_address_beyond_64_bits_is_rejected():
    err = error(setup_op('op = "futex_key"\naddr = "0x10000000000000000"'))
    assert "does not fit in 64 bits" in err.detail


# --------------------------------------------------------------------------
# [[thread]]


def test_thread_defaults_to_first_process_and_repeat_one():
    thread = load('[[thread]]\nname = "t1"\nops = [{op = "exit"}]\n').threads[0]
    assert (thread.name, thread.process, thread.repeat, thread.where) == (
        "t1",
        "p",
        1,
        "x.toml: thread[t1]",
    )


def test_thread_ops_run_in_the_thread_process_by_default():
    body = (
        '[[process]]\nname = "a"\n[[process]]\nname = "b"\n'
        '[[thread]]\nname = "t"\nprocess = "b"\nrepeat = 3\n'
    )
    thread = load(body + 'ops = [{op = "exit"}, {op = "exit", process = "a"}]\n').threads[0]
    assert [op.process for op in thread.ops] == ["b", "a"]
    assert thread.repeat == 3


def test_thread_ops_may_use_array_of_tables_syntax():
    thread = load('[[thread]]\nname = "t"\n[[thread.ops]]\nop = "exit"\n').threads[0]
    assert [op.op for op in thread.ops] == ["exit"]


def test_thread_name_is_required():
    assert error('[[thread]]\nops = [{op = "exit"}]\n').where == "x.toml: thread[0].name"


def test_duplicate_thread_name_is_rejected():
    err = error('[[thread]]\nname = "t"\nops = [{op = "exit"}]\n' * 2)
    assert err.where == "x.toml: thread[1].name"
    assert "duplicate thread name 't'" in err.detail


@pytest.mark.parametrize("name", ["setup", "final"])
def test_thread_names_that_clash_with_step_labels_are_rejected(name):
    assert "reserved" in error(f'[[thread]]\nname = "{name}"\nops = [{{op = "exit"}}]\n').detail


def test_thread_ops_are_required():
    assert error('[[thread]]\nname = "t"\n').where == "x.toml: thread[t].ops"


def test_thread_ops_must_not_be_empty():
    err = error('[[thread]]\nname = "t"\nops = []\n')
    assert (err.where, err.detail) == (
        "x.toml: thread[t].ops",
        "a thread needs at least one operation, found an empty array",
    )


def test_thread_repeat_must_be_at_least_one():
    assert (
        error('[[thread]]\nname = "t"\nrepeat = 0\nops = [{op = "exit"}]\n').where
        == "x.toml: thread[t].repeat"
    )


def test_thread_process_must_exist():
    assert (
        error('[[thread]]\nname = "t"\nprocess = "q"\nops = [{op = "exit"}]\n').where
        == "x.toml: thread[t].process"
    )


def test_thread_unknown_key_lists_allowed_keys():
    err = error('[[thread]]\nname = "t"\nops = [{op = "exit"}]\nprio = 1\n')
    assert (err.where, err.detail) == (
        "x.toml: thread[t].prio",
        "unknown key 'prio' in a thread (allowed: name, ops, process, repeat)",
    )


# --------------------------------------------------------------------------
# [[check]]


def test_check_kind_is_required():
    err = error('[[check]]\npath = "/f"\n')
    assert err.where == "x.toml: check[0].kind"
    assert (
        "accepted: file_content, file_unchanged, memory, no_leaks, page, page_tables" in err.detail
    )


def test_unknown_check_kind_lists_accepted_kinds():
    err = error('[[check]]\nkind = "no_leaks"\n' * 3 + '[[check]]\nkind = "leaks"\n')
    assert err.where == "x.toml: check[3].kind"
    assert err.detail.startswith("unknown check kind 'leaks' (accepted: 'file_content'")


def test_check_unknown_key_lists_allowed_keys():
    err = error('[[check]]\nkind = "no_leaks"\nstrict = true\n')
    assert (err.where, err.detail) == (
        "x.toml: check[0].strict",
        "unknown key 'strict' in check 'no_leaks' (allowed: kind)",
    )


def test_no_leaks_check_has_no_arguments():
    spec = load('[[check]]\nkind = "no_leaks"\n').checks[0]
    assert (spec.kind, spec.args, spec.where) == ("no_leaks", {}, "x.toml: check[0]")


def test_file_unchanged_requires_a_declared_file():
    err = error('[[check]]\nkind = "file_unchanged"\npath = "/f"\n')
    assert err.where == "x.toml: check[0].path"
    assert err.detail.startswith("unknown file '/f'")


def test_file_content_check_arguments_are_normalised():
    body = (
        '[[file]]\npath = "/f"\nsize = 4\n'
        '[[check]]\nkind = "file_content"\npath = "/f"\noffset = 1\ndata = "ab"\n'
    )
    assert load(body).checks[0].args == {"path": "/f", "offset": 1, "data": b"ab"}


def test_memory_check_defaults_process_and_normalises_address_and_data():
    args = load(check('kind = "memory"\naddr = "buf+1"\ndata = "q"')).checks[0].args
    assert args == {"process": "p", "addr": AddrRef("buf", 1, "buf+1"), "data": b"q"}


def test_page_check_needs_at_least_one_property():
    err = error(check('kind = "page"\naddr = "buf"'))
    assert err.where == "x.toml: check[0]"
    assert (
        "needs at least one of present, writable, dirty, zero_page, anon, node, mapcount, count"
        in err.detail
    )


def test_page_check_keeps_its_properties():
    text = (
        'kind = "page"\naddr = "buf"\npresent = true\nwritable = false\ndirty = false\n'
        "zero_page = true\nanon = true\nnode = 0\nmapcount = 1\ncount = 2"
    )
    args = load(check(text)).checks[0].args
    assert args["present"] is True and args["zero_page"] is True
    assert (args["node"], args["mapcount"], args["count"], args["process"]) == (0, 1, 2, "p")


def test_page_check_bool_property_must_be_a_boolean():
    assert (
        error(check('kind = "page"\naddr = "buf"\npresent = "yes"')).where
        == "x.toml: check[0].present"
    )


def test_page_check_node_must_be_a_valid_node():
    assert error(check('kind = "page"\naddr = "buf"\nnode = 1')).where == "x.toml: check[0].node"


def test_same_page_operands_get_the_default_process_and_expect_true():
    args = (
        load(
            check('kind = "same_page"\na = {addr = "buf"}\nb = {addr = "buf+4096", process = "p"}')
        )
        .checks[0]
        .args
    )
    assert args == {
        "a": {"process": "p", "addr": AddrRef("buf", 0, "buf")},
        "b": {"process": "p", "addr": AddrRef("buf", 4096, "buf+4096")},
        "expect": True,
    }


def test_same_page_expect_false_is_kept():
    text = 'kind = "same_page"\na = {addr = 0}\nb = {addr = 1}\nexpect = false'
    assert load(check(text)).checks[0].args["expect"] is False


def test_same_page_operand_needs_an_address():
    err = error(check('kind = "same_page"\na = {process = "p"}\nb = {addr = 0}'))
    assert err.where == "x.toml: check[0].a.addr"


def test_same_page_operand_must_be_a_table():
    assert (
        error(check('kind = "same_page"\na = "buf"\nb = {addr = 0}')).where == "x.toml: check[0].a"
    )


def test_same_page_operand_rejects_unknown_keys():
    assert (
        error(check('kind = "same_page"\na = {addr = 0}\nb = {addr = 0, pid = 1}')).where
        == "x.toml: check[0].b.pid"
    )


def test_result_check_accepts_an_as_name():
    assert load(check('kind = "result"\nstep = "buf"\nvalue = 0')).checks[0].args == {
        "step": "buf",
        "value": 0,
    }


def test_result_check_accepts_a_default_step_label():
    body = (
        '[[thread]]\nname = "t1"\n'
        'ops = [{op = "exit"}, {op = "exit"}, {op = "read", addr = 0, length = 1}]\n'
    )
    args = (
        load(body + '[[check]]\nkind = "result"\nstep = "t1[2]"\nsignal = "SIGSEGV"\n')
        .checks[0]
        .args
    )
    assert args == {"step": "t1[2]", "signal": "SIGSEGV"}


def test_result_check_positional_label_of_named_op_resolves_to_its_as_name():
    assert (
        load(check('kind = "result"\nstep = "setup[0]"\nvalue = 1')).checks[0].args["step"] == "buf"
    )


def test_result_check_unknown_step_is_rejected():
    err = error(check('kind = "result"\nstep = "setup[1]"\nerrno = "EFAULT"'))
    assert (err.where, err.detail) == (
        "x.toml: check[0].step",
        "unknown step 'setup[1]' (steps: buf)",
    )


@pytest.mark.parametrize("outcome", ["", 'errno = "EFAULT"\nvalue = 0'])
def test_result_check_needs_exactly_one_outcome(outcome):
    err = error(check(f'kind = "result"\nstep = "buf"\n{outcome}'))
    assert err.where == "x.toml: check[0]"
    assert "needs exactly one of errno, value, signal" in err.detail


def test_result_check_unknown_errno_lists_accepted_values():
    err = error(check('kind = "result"\nstep = "buf"\nerrno = "EWHAT"'))
    assert err.where == "x.toml: check[0].errno"
    assert err.detail.startswith("unknown errno 'EWHAT' (accepted: 'EPERM', 'ENOENT'")
    assert err.detail.endswith("'ENOSYS', 'EOVERFLOW')")


def test_result_check_value_may_be_a_string():
    assert (
        load(check('kind = "result"\nstep = "buf"\nvalue = "key"')).checks[0].args["value"] == "key"
    )


def test_result_check_value_must_not_be_a_boolean():
    assert (
        error(check('kind = "result"\nstep = "buf"\nvalue = true')).where
        == "x.toml: check[0].value"
    )


def test_result_check_unknown_signal_lists_accepted_values():
    err = error(check('kind = "result"\nstep = "buf"\nsignal = "SIGKILL"'))
    assert err.detail == "unknown signal 'SIGKILL' (accepted: 'SIGSEGV', 'SIGBUS')"


def test_page_tables_check_needs_a_non_negative_max():
    assert load('[[check]]\nkind = "page_tables"\nmax = 3\n').checks[0].args == {
        "max": 3,
        "process": "p",
    }
    assert error('[[check]]\nkind = "page_tables"\nmax = -1\n').where == "x.toml: check[0].max"


def test_check_process_must_exist():
    assert (
        error('[[check]]\nkind = "page_tables"\nmax = 1\nprocess = "q"\n').where
        == "x.toml: check[0].process"
    )


def test_decimal_offset_with_leading_zero_is_decimal():
    """Regression (found by the byte-mutation fuzz): "buf+010" crashed with
    ValueError from int("010", 0)."""
    s = load(setup_op('op = "read"\naddr = "buf+010"\nlength = 1'))
    assert s.setup[1].args["addr"] == AddrRef("buf", 10, "buf+010")


def test_literal_address_with_leading_zero_is_decimal():
    s = load('[[setup]]\nop = "read"\naddr = "0012"\nlength = 1\n')
    assert s.setup[0].args["addr"].offset == 12


def test_address_offset_with_thousands_of_digits_is_an_input_error():
    err = error(setup_op(f'op = "read"\naddr = "buf+{"9" * 5000}"\nlength = 1'))
    assert "does not fit in 64 bits" in err.detail
