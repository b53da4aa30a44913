"""The engine's chunks on dask.distributed: `ansinh simulate --dask SCHEDULER`.

One machine runs a national scenario (10M workers × 12 months, `benchmarks/simulate.py`);
dask is for populations or scenario sweeps past one machine's memory, on a ministry's
cluster. The engine's `ChunkJob`s become dask actors, each holding its workers' rows
and per-worker totals on one dask worker; the coordinator (this process) keeps the
budget and sums the chunks' integer figures in chunk order, exactly as the in-process
run does, so a run gives the same bits wherever it runs (pinned by
`tests/simulations/test_dask.py`).

`SCHEDULER` is a scheduler address (`tcp://host:8786`) or `local`, which starts a
`distributed.LocalCluster` of `LOCAL_WORKERS` single-threaded worker processes for the
length of the run.
"""
from __future__ import annotations

from collections.abc import Iterator
import logging
from contextlib import contextmanager

LOCAL = "local"
LOCAL_WORKERS = 2  # the development machine's cores
CONNECT_TIMEOUT_S = 30


class SchedulerError(RuntimeError):
    """The dask scheduler cannot be reached or started (names the address and the reason)."""


@contextmanager
def dask_client(scheduler: str) -> Iterator[object]:
    """A `distributed.Client` for `scheduler` (an address or `local`), closed (and the local cluster
    stopped) on exit."""
    from distributed import Client

    if scheduler == LOCAL:
        with _local_client() as client:
            yield client
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as error:
        raise SchedulerError(f"cannot reach the dask scheduler at {scheduler}: {error}") from error
    try:
        yield client
    finally:
        client.close()


@contextmanager
def _local_client() -> Iterator[object]:
    from distributed import Client, LocalCluster

    # Stopping the cluster's worker processes closes their comms mid-send, and distributed logs
    # that at INFO with a traceback ("Batched Comm Closed"): the expected end of our own cluster,
    # not a fault. That logger is held at WARNING while the cluster runs.
    batched = logging.getLogger("distributed.batched")
    level = batched.level
    batched.setLevel(logging.WARNING)
    try:
        try:
            cluster = LocalCluster(n_workers=LOCAL_WORKERS, threads_per_worker=1, processes=True,
                                   dashboard_address=":0")  # any free port: never a clash
        except Exception as error:  # infrastructure: say what failed
            raise SchedulerError(f"cannot start a local dask cluster: {error}") from error
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
    finally:
        batched.setLevel(level)
