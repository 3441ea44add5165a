"""The executor seam: local, processes and Ray give the same scores; a dead worker's task is handed
out again and counted once; the work's own errors are raised, not retried."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from harness.errors import HarnessError
from harness.estimators.run import EstimatorSpec, score_cells
from harness.executors import ExecutorConfig, LocalExecutor, ProcessExecutor, make_executor
from harness.runstore import RunStore

CELLS = [0, 11, 284]
SPECS = ["naswot", "fisher:official", "epe_nas"]


def _square(x: int) -> int:
    return x * x


def _die_once(task: tuple[str, int]) -> int:
    """Kills its worker process the first time it sees task 3 (a marker file remembers)."""
    folder, x = task
    marker = Path(folder) / f"died-{x}"
    if x == 3 and not marker.exists():
        marker.write_text("")
        os._exit(9)
    return x * x


def _always_die(task: int) -> int:
    os._exit(9)


def _raise(task: int) -> int:
    raise ValueError(f"bug in task {task}")


def test_config_checks_its_values():
    for kwargs, message in [({"kind": "slurm"}, "executor 'slurm'"), ({"workers": 0}, "--workers 0"),
                            ({"kind": "local", "workers": 2}, "for --executor processes"),
                            ({"retries": -1}, "--retries -1"), ({"address": "x:1"}, "for --executor ray")]:
        with pytest.raises(HarnessError, match=message):
            ExecutorConfig(**kwargs)


def test_local_runs_in_order():
    assert list(LocalExecutor().run(_square, [1, 2, 3])) == [(0, 1), (1, 4), (2, 9)]


def test_processes_return_every_result_once():
    with ProcessExecutor(ExecutorConfig("processes", workers=2, threads=1)) as ex:
        got = list(ex.run(_square, list(range(8))))
    assert sorted(got) == [(i, i * i) for i in range(8)]


def test_a_dead_worker_is_retried_and_counted_once(tmp_path):
    tasks = [(str(tmp_path), x) for x in range(6)]
    with ProcessExecutor(ExecutorConfig("processes", workers=2, threads=1, retries=2)) as ex:
        got = list(ex.run(_die_once, tasks))
    assert sorted(got) == [(i, i * i) for i in range(6)]  # every task once, task 3 too
    assert ex.deaths == 1 and (tmp_path / "died-3").exists()


def test_a_worker_that_always_dies_stops_with_one_line():
    with ProcessExecutor(ExecutorConfig("processes", workers=1, threads=1, retries=1)) as ex:
        with pytest.raises(HarnessError, match="a worker died 2 times on task 7"):
            list(ex.run(_always_die, [7]))


def test_the_work_s_own_error_is_raised_not_retried():
    with ProcessExecutor(ExecutorConfig("processes", workers=2, threads=1)) as ex:
        with pytest.raises(ValueError, match="bug in task"):
            list(ex.run(_raise, [1, 2]))
        assert ex.deaths == 0


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers run one thread each: the same arithmetic here
    yield
    torch.set_num_threads(before)


def _scores(nb201, tmp_path, name, executor):
    frame = score_cells(nb201.arch, CELLS, "cifar10", [EstimatorSpec.parse(s) for s in SPECS], batch_size=16,
                        batch_seed=3, store=RunStore(tmp_path / f"{name}.sqlite"), executor=executor)
    assert not frame.cached.any()
    return frame


def test_processes_score_as_local(nb201, harness_data, tmp_path, one_thread):
    local = _scores(nb201, tmp_path, "local", None)
    with make_executor(ExecutorConfig("processes", workers=2, threads=1)) as ex:
        spread = _scores(nb201, tmp_path, "processes", ex)
    assert spread.drop(columns="seconds").equals(local.drop(columns="seconds"))  # bit-identical, in order
    again = score_cells(nb201.arch, CELLS, "cifar10", [EstimatorSpec.parse(s) for s in SPECS], batch_size=16,
                        batch_seed=3, store=RunStore(tmp_path / "processes.sqlite"))
    assert again.cached.all()  # the driver stored every result the workers sent back


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_ray_scores_as_local(nb201, harness_data, tmp_path, one_thread, local_ray):
    """On a local Ray instance started here: the same scores and the same table as local."""
    local = _scores(nb201, tmp_path, "local", None)
    with make_executor(ExecutorConfig("ray")) as ex:
        spread = _scores(nb201, tmp_path, "ray", ex)
    assert spread.drop(columns="seconds").equals(local.drop(columns="seconds"))


def test_ray_task_error_is_the_work_s_error(local_ray):
    with make_executor(ExecutorConfig("ray", retries=0)) as ex:
        with pytest.raises(ValueError, match="bug in task"):
            list(ex.run(_raise, [1]))


def test_correlate_with_processes_writes_the_local_table(nb201, harness_data, tmp_path, monkeypatch):
    from harness.cli import main

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home-local"))
    args = ["correlate", "--dataset", "cifar10", "--estimators", "synflow,grad_norm", "--archs", "4", "--batch-size",
            "8", "--n-boot", "0"]
    assert main(args + ["--out", str(tmp_path / "local")]) == 0
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home-spread"))
    assert main(args + ["--executor", "processes", "--workers", "2", "--threads", "1",
                        "--out", str(tmp_path / "spread")]) == 0
    local, spread = (pd.read_csv(tmp_path / f / "correlation.csv") for f in ("local", "spread"))
    timing = [c for c in local if "seconds" in c]
    assert timing and local.drop(columns=timing).equals(spread.drop(columns=timing))  # all but the wall times


@pytest.mark.parametrize("argv, message", [
    (["--executor", "slurm"], "executor 'slurm' is not known"),
    (["--workers", "2"], "--workers 2 is for --executor processes"),
    (["--executor", "processes", "--workers", "0"], "--workers 0 is not positive"),
    (["--address", "10.0.0.1:6379"], "--address is for --executor ray"),
])
def test_executor_options_are_checked_first(tmp_path, argv, message, capsys):
    from harness.cli import main

    assert main(["correlate", "--dataset", "cifar10", "--estimators", "params", "--archs", "3",
                 "--out", str(tmp_path / "out")] + argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing written: checked before --out


@pytest.mark.parametrize("strategy, estimator, budget", [("n_sample", "synflow", "6"), ("rea", "tabular:valid@200", "12")])
def test_search_runs_with_processes_as_local(nb201, harness_data, tmp_path, monkeypatch, strategy, estimator, budget):
    """Each run a task: the same chosen cells and accuracies as local; a worker's scores land in the
    driver's run store (a second local call computes nothing)."""
    from harness.cli import main

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home-spread"))
    args = ["search", "--strategy", strategy, "--estimator", estimator, "--budget", budget, "--runs", "4",
            "--seed", "1", "--batch-size", "8"]
    assert main(args + ["--executor", "processes", "--workers", "2", "--threads", "1",
                        "--out", str(tmp_path / "spread")]) == 0
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home-local"))
    assert main(args + ["--out", str(tmp_path / "local")]) == 0
    local, spread = (pd.read_csv(tmp_path / f / "runs.csv") for f in ("local", "spread"))
    timing = [c for c in local if "wall" in c]
    assert local.drop(columns=timing).equals(spread.drop(columns=timing))
    if estimator == "synflow":
        monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home-spread"))
        assert main(args + ["--out", str(tmp_path / "again")]) == 0
        assert "0 scores computed in this call" in (tmp_path / "again" / "summary.md").read_text()


def test_supernet_runs_with_processes_as_local(nb201, full_data, tmp_path, monkeypatch, one_thread):
    """Each supernet run a task (real CIFAR-10 images, a tiny budget): the same derived cells and
    alphas as local, stored by the driver."""
    from harness.cli import main

    args = ["supernet", "--method", "darts-v1", "--bpe", "e1-b64-lr0.05-l1-c4-i16-f0.01-v64", "--runs", "2",
            "--device", "cpu", "--threads", "1"]
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home-local"))
    assert main(args + ["--out", str(tmp_path / "local")]) == 0
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home-spread"))
    assert main(args + ["--executor", "processes", "--workers", "2", "--out", str(tmp_path / "spread")]) == 0
    local, spread = (pd.read_csv(tmp_path / f / "runs.csv") for f in ("local", "spread"))
    timing = [c for c in local if "wall" in c or "cost" in c]
    assert local.drop(columns=timing).equals(spread.drop(columns=timing))
    assert len(RunStore(tmp_path / "home-spread" / "runs.sqlite").runs()) == 2


def _sleep(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


def test_an_error_stops_the_workers_at_once():
    """Leaving the executor on an error does not wait for the tasks still running."""
    import time

    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        with ProcessExecutor(ExecutorConfig("processes", workers=2, threads=1)) as ex:
            for i, _ in ex.run(_sleep, [0.0, 60.0, 60.0]):
                raise KeyboardInterrupt  # the user's Ctrl-C after the first result
    assert time.perf_counter() - start < 30


def test_mip_trains_on_worker_processes_as_locally(nb201, full_data, tmp_path, monkeypatch):
    """MIP with real training hands its cells out on the seam: the same evaluations as local."""
    from harness.cli import main

    tiny = "e1-b64-lr0.05-l1-c4-i16-f0.01-v200"
    common = ["mip", "--evaluator", "train:nb201", "--cells", "3", "--base", tiny, "--space", "channels=2|4",
              "--samples", "2", "--device", "cpu"]
    tables = {}
    for name, extra in (("local", []), ("processes", ["--executor", "processes", "--workers", "2", "--threads", "1"])):
        monkeypatch.setenv("HARNESS_HOME", str(tmp_path / name))  # a fresh run store: every cell trained
        assert main(common + extra + ["--out", str(tmp_path / name / "out")]) == 0
        # the rows are ordered by cost, which is wall time here: compare them by configuration
        tables[name] = (pd.read_csv(tmp_path / name / "out" / "evaluations.csv").drop(columns="cost")
                        .sort_values(["iteration", "channels"]).reset_index(drop=True))
    assert tables["processes"].equals(tables["local"]) and len(tables["local"]) == 2


def test_mip_on_a_table_refuses_an_executor(tmp_path, capsys):
    from tests.conftest import refused

    line = refused(capsys, "mip", "--evaluator", "tabular:bpe-paper", "--executor", "processes", "--out", tmp_path)
    assert "look values up" in line


def test_a_search_worker_reads_the_drivers_store_instead_of_scoring_again(nb201, harness_data, tmp_path, monkeypatch):
    """A worker on the driver's machine looks scores up in the driver's run store (read only): a
    score already there is neither computed again nor sent back."""
    import harness.search.runner as runner
    from harness.search.runner import SearchTask, run_search_task

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    task = SearchTask("n_sample", "synflow", "cifar10", "6", seed=1, batch_size=8, device="cpu")
    monkeypatch.setattr(runner, "_WORKER", {})
    first, computed = run_search_task(task)  # no driver store: scored here, every row sent back
    assert len(computed) == 6
    driver = RunStore(tmp_path / "driver.sqlite")
    driver.put_many(computed)
    before = driver.path.stat().st_mtime_ns
    monkeypatch.setattr(runner, "_WORKER", {})  # a fresh worker
    again, sent = run_search_task(dataclasses.replace(task, cache=str(driver.path)))
    assert len(sent) == 0 and again.chosen == first.chosen and again.history == first.history
    assert driver.path.stat().st_mtime_ns == before  # read, never written
