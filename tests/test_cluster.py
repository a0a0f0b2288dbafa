"""``--cluster``: dfs subtrees, random seeds and matrix cells on a Dask
cluster give the verdicts, executions and final states of one process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pagewalk.cli import main
from pagewalk.explore import explore
from pagewalk.scenario.loader import load_scenario

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_without_dask_the_flag_says_what_to_install(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    args = ["explore", str(EXAMPLES / "dirty_cow.toml"), "--strategy", "dfs"]
    assert main([*args, "--cluster", "local:2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "pagewalk: error: --cluster needs Dask: pip install 'pagewalk[cluster]' "
        "(or 'dask[distributed]')"
    )


@pytest.mark.parametrize("address", ["localhost:8786", "local:0", "local:two"])
def test_a_bad_cluster_address_is_bad_input(address: str, capsys) -> None:
    assert main(["explore", str(EXAMPLES / "dirty_cow.toml"), "--cluster", address]) == 2
    assert "--cluster" in capsys.readouterr().err


distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def address():
    from pagewalk.explore.cluster import start_local_cluster

    cluster = start_local_cluster(2)  # as local:2 starts it
    yield cluster.scheduler_address
    cluster.close()


def test_dfs_on_a_cluster_reaches_the_final_states_of_one_process(address: str) -> None:
    sc = load_scenario(EXAMPLES / "concurrent" / "mlock_vs_read.toml")  # 2 final states
    one = explore(sc, "2.6.14", "dfs", collect=True, stop_first=False)
    spread = explore(sc, "2.6.14", "dfs", collect=True, stop_first=False, cluster=address)
    assert len(one.observations) == 2
    assert (spread.status, spread.executions) == (one.status, one.executions)
    assert spread.observations == one.observations


def test_dfs_on_a_cluster_finds_the_violation_of_one_process(address: str) -> None:
    sc = load_scenario(EXAMPLES / "dirty_cow.toml")
    one = explore(sc, "2.6.22", "dfs", stop_first=False)
    spread = explore(sc, "2.6.22", "dfs", stop_first=False, cluster=address)
    assert spread.executions == one.executions
    assert spread.violation.schedule == one.violation.schedule
    assert sorted(v.schedule for v in spread.violations) == sorted(
        v.schedule for v in one.violations
    )


def test_random_seeds_on_a_cluster_are_those_of_one_process(address: str) -> None:
    sc = load_scenario(EXAMPLES / "dirty_cow.toml")
    kw = {"max_executions": 40, "stop_first": False, "collect": True, "seed": 7}
    one = explore(sc, "2.6.22", "random", **kw)
    spread = explore(sc, "2.6.22", "random", cluster=address, **kw)
    assert spread.executions == one.executions
    assert [v.schedule for v in spread.violations] == [v.schedule for v in one.violations]
    assert spread.observations == one.observations


def test_matrix_cells_on_a_cluster_are_those_of_one_process(address: str, capsys) -> None:
    paths = [str(EXAMPLES / "dirty_cow.toml"), str(EXAMPLES / "concurrent")]
    assert main(["matrix", *paths, "--json", "--workers", "1"]) == 0
    one = json.loads(capsys.readouterr().out)["cells"]
    assert main(["matrix", *paths, "--json", "--cluster", address]) == 0
    spread = json.loads(capsys.readouterr().out)["cells"]
    for cells in (one, spread):
        for c in cells:
            del c["elapsed_s"]
    assert spread == one


def test_explore_starts_a_local_cluster_of_n_workers(capsys) -> None:
    args = ["explore", str(EXAMPLES / "dirty_cow.toml"), "--strategy", "dfs", "--json"]
    assert main([*args, "--semantics", "4.8.3", "--cluster", "local:2", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    one = explore(load_scenario(EXAMPLES / "dirty_cow.toml"), "4.8.3", "dfs")
    assert (out["status"], out["executions"]) == ("ok", one.executions)


def test_a_dfs_checkpointed_on_a_cluster_resumes_to_the_result_of_one_process(
    address: str, tmp_path: Path, monkeypatch
) -> None:
    from pagewalk.explore import parallel

    sc = load_scenario(EXAMPLES / "races" / "ro_pin_after_fork.toml")
    one = explore(sc, "4.8.3", "dfs", stop_first=False)
    # tasks of one execution: a first slice of time may cover all 120
    # executions on a fast machine, and then no budget stops the search
    monkeypatch.setattr(parallel, "SLICE", 0.0)
    monkeypatch.setattr(parallel, "SHORT_SLICE", 0.0)
    ck = str(tmp_path / "search.json")
    kw = {"stop_first": False, "cluster": address}
    first = explore(sc, "4.8.3", "dfs", max_executions=30, checkpoint=ck, **kw)
    resumed = explore(sc, "4.8.3", "dfs", resume=ck, **kw)
    assert first.executions < resumed.executions == one.executions
    assert sorted(v.schedule for v in resumed.violations) == sorted(
        v.schedule for v in one.violations
    )


def test_dfs_on_a_cluster_cut_after_each_execution_reaches_the_result_of_one_process(
    address: str, monkeypatch
) -> None:
    from pagewalk.explore import parallel

    sc = load_scenario(EXAMPLES / "races" / "ro_pin_after_fork.toml")  # 120 executions
    one = explore(sc, "4.8.3", "dfs", stop_first=False)
    monkeypatch.setattr(parallel, "SLICE", 0.0)  # every task hands back after one execution
    monkeypatch.setattr(parallel, "SHORT_SLICE", 0.0)
    spread = explore(sc, "4.8.3", "dfs", stop_first=False, cluster=address)
    assert (spread.status, spread.executions) == (one.status, one.executions)
    assert sorted(v.schedule for v in spread.violations) == sorted(
        v.schedule for v in one.violations
    )


def test_a_local_cluster_starts_quietly_beside_a_dashboard_on_8787() -> None:
    import socket
    import warnings

    from pagewalk.explore.cluster import start_local_cluster

    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8787))  # taken already is as good
        holder.listen()
    except OSError:
        pass
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cluster = start_local_cluster(1)
            cluster.close()
    finally:
        holder.close()
    assert [str(w.message) for w in caught if "in use" in str(w.message)] == []
