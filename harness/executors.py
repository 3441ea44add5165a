"""Where work is handed out: one seam for scoring cells, training budgeted networks and search runs.

A task is a small picklable value and the work a top-level function of it; an :class:`Executor`
runs ``fn(task)`` for every task and yields ``(position, result)`` as each one finishes, in any
order. Workers only compute: the driver (the caller) alone writes the run store, so no SQLite
file is shared between processes or machines, and a result is stored once, when it arrives.

- ``local``: in this process, in order (the default; what the harness always did);
- ``processes``: ``workers`` processes of this machine (``spawn``), each with
  ``threads`` torch threads, at most ``workers`` tasks in flight;
- ``ray``: a Ray cluster (``address``; none: a local Ray instance), one CPU, or one GPU where
  the work runs on CUDA, per task.

A worker that dies (killed, out of host memory, a lost node) costs only its task, which is handed
out again up to ``retries`` times; an exception raised by the work itself is a result, not a
death, and reaches the caller at once (a bug is not retried into a number).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context

from .errors import HarnessError

log = logging.getLogger(__name__)

KINDS = ("local", "processes", "ray")


@dataclass(frozen=True)
class ExecutorConfig:
    """``kind``: local, processes or ray; ``workers``: processes (``processes`` only);
    ``threads``: torch threads per worker process (default: the cores divided among the workers);
    ``address``: the Ray cluster (``ray`` only; none starts a local instance); ``retries``: how
    often a task whose worker died is handed out again."""

    kind: str = "local"
    workers: int = 1
    threads: int | None = None
    address: str | None = None
    retries: int = 2

    def __post_init__(self):
        if self.kind not in KINDS:
            raise HarnessError(f"executor {self.kind!r} is not known", f"use --executor {', '.join(KINDS)}")
        if self.workers < 1:
            raise HarnessError(f"--workers {self.workers} is not positive", "give --workers 1 or more")
        if self.threads is not None and self.threads < 1:
            raise HarnessError(f"--threads {self.threads} is not positive", "give --threads 1 or more")
        if self.retries < 0:
            raise HarnessError(f"--retries {self.retries} is negative", "give --retries 0 or more")
        if self.workers > 1 and self.kind != "processes":
            raise HarnessError(f"--workers {self.workers} is for --executor processes",
                               "add --executor processes, or leave --workers out")
        if self.address and self.kind != "ray":
            raise HarnessError("--address is for --executor ray", "add --executor ray, or leave --address out")

    def describe(self) -> str:
        if self.kind == "processes":
            return f"processes ({self.workers} workers)"
        if self.kind == "ray":
            return f"ray ({self.address or 'local instance'})"
        return "local"


class Executor:
    """Runs ``fn`` on every task; see the module docstring."""

    config: ExecutorConfig

    def run(self, fn: Callable, tasks: Sequence) -> Iterator[tuple[int, object]]:
        raise NotImplementedError

    def device_name(self, device) -> str:
        """How a task names its device: the full name (``cuda:1``) where the workers see every
        device of this machine."""
        return str(device)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        self.close(abort=kind is not None)

    def close(self, abort: bool = False) -> None:
        """Frees the workers; ``abort`` (an error or an interrupt is on its way up): at once,
        without waiting for the tasks still running."""


class LocalExecutor(Executor):
    def __init__(self, config: ExecutorConfig | None = None):
        self.config = config or ExecutorConfig()

    def run(self, fn, tasks):
        for i, task in enumerate(tasks):
            yield i, fn(task)


def _init_worker(threads: int, level: int) -> None:
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(level=level)


class ProcessExecutor(Executor):
    """``workers`` spawned processes; a task whose worker died is handed out again."""

    def __init__(self, config: ExecutorConfig):
        self.config = config
        self.threads = config.threads or max(1, (os.cpu_count() or 1) // config.workers)
        self.deaths = 0  # worker deaths seen (each restarted the pool)
        self._pool = None

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.config.workers, mp_context=get_context("spawn"), initializer=_init_worker,
                                   initargs=(self.threads, logging.getLogger().level))

    def run(self, fn, tasks):
        attempts = [0] * len(tasks)
        todo = list(range(len(tasks)))[::-1]  # a stack: pop() hands out the first task first
        while todo:
            self._pool = self._pool or self._new_pool()
            flying = {}
            try:
                while todo or flying:
                    while todo and len(flying) < self.config.workers:
                        future = self._pool.submit(fn, tasks[todo[-1]])  # may raise BrokenProcessPool: i stays in todo
                        i = todo.pop()
                        attempts[i] += 1
                        flying[future] = i
                    done, _ = wait(flying, return_when=FIRST_COMPLETED)
                    for future in done:
                        result = future.result()  # the work's own exception is raised here, not retried
                        yield flying.pop(future), result
            except BrokenProcessPool:
                self.deaths += 1
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
                for future in list(flying):  # finished before the pool broke: kept, not computed again
                    if future.done() and not future.cancelled():
                        error = future.exception()
                        if error is None:
                            yield flying.pop(future), future.result()
                        elif not isinstance(error, BrokenProcessPool):
                            raise error  # the work's own error, not a death: not retried
                lost = sorted(flying.values())
                over = [i for i in lost if attempts[i] > self.config.retries]
                if over:
                    raise HarnessError(f"a worker died {attempts[over[0]]} times on task {tasks[over[0]]!r}",
                                       "look for an out-of-memory kill (dmesg) or lower --workers; "
                                       "every result before it is kept") from None
                log.warning("a worker process died; handing out again: %s", ", ".join(repr(tasks[i]) for i in lost))
                todo.extend(reversed(lost))

    def close(self, abort: bool = False):
        if self._pool is None:
            return
        if abort:  # an error or Ctrl-C: stop the workers now (their unfinished tasks store nothing)
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.terminate()
        self._pool.shutdown(wait=not abort, cancel_futures=True)
        self._pool = None


class RayExecutor(Executor):
    """Tasks on Ray (``ray.remote`` with ``max_retries``: Ray hands out again the task of a dead
    worker; an exception of the work itself is not retried)."""

    def __init__(self, config: ExecutorConfig, gpus_per_task: float = 0.0):
        try:
            import ray
        except ImportError as err:
            raise HarnessError("--executor ray needs Ray, which is not installed",
                               "pip install 'ray[default]' (on every node of the cluster)") from err
        self.ray = ray
        self.config = config
        self.gpus_per_task = gpus_per_task
        self._started = not ray.is_initialized()  # ours to shut down (not a caller's instance)
        if self._started:
            try:
                ray.init(address=config.address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except ConnectionError as err:
                raise HarnessError(f"cannot reach the Ray cluster at {config.address} ({err})",
                                   "check --address (ray status on the head node prints it)") from err

    def device_name(self, device) -> str:
        """The device type only: a Ray task sees the one GPU Ray gave it, as ``cuda``."""
        import torch

        return torch.device(device).type

    def run(self, fn, tasks):
        ray = self.ray
        remote = ray.remote(num_cpus=1, num_gpus=self.gpus_per_task, max_retries=self.config.retries)(fn)
        refs = {remote.remote(task): i for i, task in enumerate(tasks)}
        try:
            while refs:
                # whatever finished within a second (at most 256): not one list rebuild per result
                done, _ = ray.wait(list(refs), num_returns=min(len(refs), 256), timeout=1.0)
                for ref in done:
                    i = refs.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as err:  # the work raised: the original error
                        raise (err.cause if isinstance(err.cause, BaseException) else err) from None
                    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                            ray.exceptions.OutOfMemoryError) as err:
                        raise HarnessError(f"task {tasks[i]!r} lost its worker {self.config.retries + 1} times "
                                           f"({type(err).__name__})", "every result before it is kept; "
                                           "look at the node's memory (ray status) and run again") from None
                    yield i, result
        finally:
            for ref in refs:  # stopped early (an error, an interrupt): no orphans left computing
                ray.cancel(ref, force=True)

    def close(self, abort: bool = False):
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
            self._started = False


def make_executor(config: ExecutorConfig | None = None, *, gpus_per_task: float = 0.0) -> Executor:
    config = config or ExecutorConfig()
    if config.kind == "processes":
        return ProcessExecutor(config)
    if config.kind == "ray":
        return RayExecutor(config, gpus_per_task)
    return LocalExecutor(config)
