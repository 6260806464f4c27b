"""Batches on a Dask cluster: local worker processes, or an existing cluster (SLURM, several machines).

Each job is a plain function call run on a worker process; a worker keeps what it loaded (the model, through
``models.load``'s cache) from one job to the next. A job that raises, or whose worker dies, is reported as that
job's failure: the others go on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from . import checks
from .errors import InputError, first_line

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = "10s"  # to reach an existing scheduler


@contextmanager
def client(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: on ``workers`` new local worker processes (one thread each), or connected to the
    scheduler at ``scheduler`` (e.g. ``tcp://10.0.0.5:8786``); closed (and the local cluster stopped) at the end."""
    checks.integer("workers", workers, 1, 1024, optional=True)
    if (workers is None) == (scheduler is None):
        raise InputError("give either a number of workers or the address of a Dask scheduler")
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            dask = Client(checks.text("scheduler", scheduler), timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as error:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {first_line(error)}") from None
        try:
            yield dask
        finally:
            dask.close()
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env={"TF_NUM_INTRAOP_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)},
        ) as cluster,
        Client(cluster) as dask,
    ):
        yield dask


def run(dask, function: Callable, jobs: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
    """``(i, function(*jobs[i]))`` as each job ends, in any order; a job that fails gives ``(i, exception)``.

    Jobs left when the caller stops (an error, Ctrl-C) are cancelled.
    """
    from distributed import as_completed

    futures = {dask.submit(function, *job, pure=False): i for i, job in enumerate(jobs)}
    try:
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as error:  # noqa: BLE001 - a bug, a lost worker (KilledWorker): that job's failure
                log.info("job %d failed on its worker", futures[future], exc_info=True)
                yield futures[future], error
    finally:
        dask.cancel(list(futures))
