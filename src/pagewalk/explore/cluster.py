"""``--cluster ADDRESS``: run the units of a search on a Dask distributed
cluster instead of local processes.

The units are those of ``--workers``: dfs subtrees and random seeds for
``explore`` (explore/parallel.py), cells for ``matrix``.  Each unit is a
plain function call, sent through ``Client.get_executor()`` -- a
``concurrent.futures.Executor`` -- so the search code is the same for both.
``local:N`` starts a local cluster of N single-threaded worker processes;
anything else is a scheduler address (``tcp://HOST:8786``).  Dask is an
optional extra: ``pip install 'pagewalk[cluster]'``.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Any

from ..errors import InputError

INSTALL = "--cluster needs Dask: pip install 'pagewalk[cluster]' (or 'dask[distributed]')"
#: seconds to wait for a remote scheduler to answer
CONNECT_TIMEOUT = 10
#: Dask settings for a ``local:N`` cluster.  A search's tasks are few and
#: long (explore/parallel.py), so the defaults' watchfulness is CPU taken
#: from the workers on the same cores: the scheduler, its nannies and the
#: client share the parent process, which checks each event loop's health
#: 50 times a second (3 % of a CPU, idle); a worker samples its running
#: task's stack every 10 ms for the dashboard's profile; work stealing
#: rebalances queued tasks every second, where a search queues one task
#: behind each running one.  Workers are forked from a server process that
#: has imported Dask (and the calling program), not started afresh
#: (``spawn``, Dask's default): a local cluster of two starts in 0.5-0.9 s
#: and closes in 0.03 s, against 0.8-1.6 s and 0.1-0.5 s, and it is as safe
#: (the server runs no threads; ``fork`` would copy the calling process's).
LOCAL_CONFIG = {
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.profile.enabled": False,
    "distributed.scheduler.work-stealing": False,
}
if "forkserver" in multiprocessing.get_all_start_methods():
    LOCAL_CONFIG["distributed.worker.multiprocessing-method"] = "forkserver"


def _dask() -> Any:
    try:
        import distributed
    except ImportError:
        raise InputError(INSTALL) from None
    return distributed


def local_workers(address: str) -> int | None:
    """N of ``local:N``; None for a scheduler address; bad input otherwise."""
    if not address.startswith("local:"):
        if "://" not in address:
            raise InputError(
                f"not a scheduler address: {address!r} (tcp://HOST:PORT, or local:N)", "--cluster"
            )
        return None
    text = address.removeprefix("local:")
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"local:N needs a number of workers >= 1, got {address!r}", "--cluster")
    return int(text)


def start_local_cluster(workers: int) -> Any:
    """A ``distributed.LocalCluster`` of ``workers`` single-threaded worker
    processes on this machine, set up as ``local:N`` sets it up."""
    distributed = _dask()
    import dask  # installed with distributed

    with dask.config.set(LOCAL_CONFIG):  # read as the scheduler and nannies start
        return distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,  # the model is pure Python: one per process
            processes=True,
            dashboard_address=None,
            # the scheduler's HTTP server (health checks; no dashboard) on
            # a free port: its default, 8787, is another cluster's dashboard
            # on a machine that runs one, and Dask warns when it is taken
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0", "dashboard": False},
            # no memory limit, as for --workers' processes: a nanny and a
            # worker would poll the worker's memory every 100 ms
            memory_limit=0,
        )


@contextmanager
def cluster_client(address: str) -> Iterator[Any]:
    """A Dask client for ``address``, closed (with a local cluster) on exit."""
    workers = local_workers(address)
    distributed = _dask()
    cluster = None
    try:
        if workers is not None:
            cluster = start_local_cluster(workers)
            client = distributed.Client(cluster)
        else:
            client = distributed.Client(address, timeout=CONNECT_TIMEOUT)
    except OSError as err:  # the scheduler cannot be reached (TimeoutError is one)
        if cluster is not None:
            cluster.close()
        raise InputError(f"cannot reach the Dask scheduler: {err}", "--cluster") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def worker_count(client: Any) -> int:
    """Threads across the cluster's workers: the units run at once."""
    return max(1, sum(client.nthreads().values()))


@contextmanager
def cluster_executor(address: str) -> Iterator[Executor]:
    """A ``concurrent.futures.Executor`` running calls on the cluster."""
    with cluster_client(address) as client:
        yield client.get_executor(pure=False)
