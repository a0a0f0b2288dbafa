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

from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Any

from ..errors import InputError

INSTALL = "--cluster needs Dask: pip install 'pagewalk[cluster]' (or 'dask[distributed]')"
#: seconds to wait for a remote scheduler to answer
CONNECT_TIMEOUT = 10


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


@contextmanager
def cluster_client(address: str) -> Iterator[Any]:
    """A Dask client for ``address``, closed (with a local cluster) on exit."""
    workers = local_workers(address)
    distributed = _dask()
    cluster = None
    try:
        if workers is not None:
            cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,  # the model is pure Python: one per process
                processes=True,
                dashboard_address=None,
            )
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
