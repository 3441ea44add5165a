"""Bad input of every kind: one line on stderr saying what was wrong and what to do, exit code 2,
before any long work, never a traceback (the project's contract; see harness/errors.py).

Each case checks before anything is trained or scored: none of these tests trains a network.
The parsers (arch strings, BPE labels) are also checked property-based with hypothesis: any
text either parses to a valid object that round-trips, or raises a one-line HarnessError.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness.bpe.config import PRECISIONS, BPEConfig
from harness.cli import main
from harness.errors import HarnessError
from harness.search import Evaluation, Option, check_options, run_strategy
from harness.search.base import Budget
from harness.spaces.nb201 import FORMAT, OPS, arch_to_str, parse_arch

from .conftest import one_line, refused

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"



# -- 1. strategy options: declared once (type, range), checked before any run --------------------
SEARCH = ["search", "--estimator", "tabular:valid@12", "--budget", "10"]


@pytest.mark.parametrize("strategy, option, words", [
    ("rea", "population=abc", ["population='abc'", "an integer >= 1", "--option population=10"]),
    ("rea", "population=0", ["population=0", "an integer >= 1"]),
    ("rea", "population=2.5", ["population=2.5", "an integer"]),
    ("rea", "sample_size=-3", ["sample_size=-3", "an integer >= 1"]),
    ("reinforce", "learning_rate=abc", ["learning_rate='abc'", "a finite number > 0"]),
    ("reinforce", "learning_rate=0", ["learning_rate=0", "> 0"]),
    ("reinforce", "learning_rate=-0.01", ["learning_rate=-0.01", "> 0"]),
    ("reinforce", "learning_rate=NaN", ["learning_rate=nan", "a finite number"]),
    ("reinforce", "learning_rate=Infinity", ["learning_rate=inf", "a finite number"]),
    ("reinforce", "ema_momentum=1", ["ema_momentum=1", "in [0, 1)"]),
    ("reinforce", "answer=last", ["answer='last'", "best or argmax"]),
    ("bohb", "reduction_factor=1", ["reduction_factor=1", "an integer >= 2"]),
    ("rea", "pop=3", ["has no option 'pop'", "population, sample_size"]),
])
def test_search_refuses_bad_options_before_any_run(capsys, tmp_path, monkeypatch, strategy, option, words):
    import harness.search.runner as runner

    def no_runs(*args, **kwargs):
        raise AssertionError("a run started")

    monkeypatch.setattr(runner, "run_many", no_runs)
    line = refused(capsys, *SEARCH, "--strategy", strategy, "--option", option, "--out", tmp_path / "o")
    for word in words:
        assert word in line, line


def test_options_are_checked_by_run_strategy_too(nb201):
    from harness.spaces.nb201 import NB201Space

    class Counting:
        name = "counting"
        calls = 0

        def evaluate(self, index, rng):
            Counting.calls += 1
            return Evaluation(1.0, 1.0, 0.0)

    space = NB201Space(nb201.arch_strs())
    with pytest.raises(HarnessError, match="population=0 is not an integer >= 1") as info:
        run_strategy("rea", space, Counting(), Budget(cells=5), seed=0, population=0)
    one_line(info.value)
    assert Counting.calls == 0
    assert check_options("reinforce", {"learning_rate": 1, "ema_momentum": 0.0}) == {"learning_rate": 1,
                                                                                     "ema_momentum": 0.0}


def test_option_spec_describes_its_range():
    assert Option(0.9, float, low=0, high=1, high_open=True).describe() == "a finite number in [0, 1)"
    assert Option(3, int, low=2).describe() == "an integer >= 2"
    assert not Option(3, int, low=2).accepts(True) and not Option(0.5).accepts(math.nan)
    assert Option("a", str, choices=("a", "b")).accepts("b") and not Option("a", str, choices=("a", "b")).accepts("c")


def test_strategies_lists_each_option_with_its_range(capsys):
    assert main(["strategies", "rea"]) == 0
    assert "population=10 (an integer >= 1)" in capsys.readouterr().out


# -- 2. an empty estimator list ------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["correlate", "--dataset", "cifar10", "--archs", "3", "--estimators", ","],
    ["correlate", "--dataset", "cifar10", "--archs", "3", "--estimators", " , "],
    ["agree", "naslib", "--estimators", ","],
])
def test_an_empty_estimator_list_is_refused(capsys, tmp_path, argv):
    line = refused(capsys, *argv, "--out", tmp_path / "o")
    assert "names no estimator" in line and "--estimators" in line


def test_an_estimator_named_twice_is_refused(capsys, tmp_path):
    line = refused(capsys, "correlate", "--dataset", "cifar10", "--archs", "3", "--estimators", "synflow,synflow",
                   "--out", tmp_path / "o")
    assert "names synflow twice" in line


# -- 3. --device: unknown, or cuda without CUDA, in every command that takes it --------------------
DEVICE_COMMANDS = {
    "correlate": ["correlate", "--dataset", "cifar10", "--archs", "3", "--estimators", "synflow"],
    "search": ["search", "--strategy", "random", "--estimator", "synflow", "--budget", "3"],
    "n-sample": ["n-sample", "--estimator", "naswot", "--draws", "10", "--ns", "10"],
    "agree naslib": ["agree", "naslib", "--cells", "3"],
    "bpe darts": ["bpe", "darts", "--config", "BPE1", "--cells", "3"],
    "mip": ["mip", "--evaluator", "train:nb201"],
    "supernet": ["supernet", "--method", "darts-v1", "--bpe", "e1-b64-l1-c4-i16-f0.01-v100"],
}


@pytest.mark.parametrize("command", sorted(DEVICE_COMMANDS))
def test_an_unknown_device_is_refused_before_work(capsys, tmp_path, command):
    line = refused(capsys, *DEVICE_COMMANDS[command], "--device", "tpu", "--out", tmp_path / "o")
    assert "--device 'tpu' is not a device the harness runs on" in line and "cpu, cuda" in line


@pytest.mark.parametrize("command", sorted(DEVICE_COMMANDS))
def test_cuda_without_cuda_is_refused_before_work(capsys, tmp_path, monkeypatch, command):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    line = refused(capsys, *DEVICE_COMMANDS[command], "--device", "cuda", "--out", tmp_path / "o")
    assert "--device 'cuda'" in line and "no CUDA device" in line and "--device cpu" in line


def test_resolve_device(monkeypatch):
    from harness.devices import resolve_device

    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(" CPU ") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(HarnessError, match="has 1 CUDA device") as info:
        resolve_device("cuda:3")
    one_line(info.value)
    with pytest.raises(HarnessError, match="not a device"):
        resolve_device("gpu\n0")


# -- 4. --indices FILE: duplicates, binary, non-integers, out of range ---------------------------
@pytest.mark.parametrize("content, words", [
    (b"1\n2\n3\n2\n", ["lists cell 2 twice", "lines 2 and 4", "list each cell once"]),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", ["is not a text file"]),
    (b"1\x002\n", ["is not a text file"]),
    (b"1\n2\nthree\n", ["line 3", "'three'", "not a cell index"]),
    (b"1\n-2\n", ["line 2", "'-2'", "not a cell index"]),
    ("1\n\u00b2\n".encode(), ["line 2", "not a cell index"]),  # a superscript two: isdigit(), not an int
    (b"1\n15625\n", ["line 2", "index 15625 is outside 0..15624"]),
    (b"# only a comment\n\n", ["is empty"]),
])
def test_bad_indices_files_are_refused_before_scoring(capsys, tmp_path, monkeypatch, content, words):
    import harness.estimators.run as run

    def no_scoring(*args, **kwargs):
        raise AssertionError("scoring started")

    monkeypatch.setattr(run, "score_cells", no_scoring)
    path = tmp_path / "cells.txt"
    path.write_bytes(content)
    line = refused(capsys, "correlate", "--dataset", "cifar10", "--indices", path, "--estimators", "synflow",
                   "--device", "cpu", "--out", tmp_path / "o")
    for word in words:
        assert word in line, line


# -- 5. bpe darts --cells beyond the sheet --------------------------------------------------------
@pytest.mark.parametrize("cells, words", [(999, ["--cells 999 is more than the sheet's", "ask for 3.."]),
                                          (2, ["--cells 2 cannot give a rank correlation"])])
def test_bpe_darts_cells_outside_the_sheet_are_refused_before_training(capsys, tmp_path, monkeypatch, cells, words):
    import harness.bpe.darts_cells as darts_cells

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(darts_cells, "load_train_data", no_training)
    line = refused(capsys, "bpe", "darts", "--config", "BPE1", "--cells", cells, "--device", "cpu",
                   "--out", tmp_path / "o")
    for word in words:
        assert word in line, line


# -- 6. --n-boot below 0, wherever it exists -------------------------------------------------------
N_BOOT_COMMANDS = {
    "bpe replay": ["bpe", "replay", "--out", "OUT"],
    "bpe darts": ["bpe", "darts", "--config", "BPE1", "--out", "OUT"],
    "correlate": ["correlate", "--dataset", "cifar10", "--archs", "3", "--estimators", "synflow", "--out", "OUT"],
    "agree naslib": ["agree", "naslib", "--out", "OUT"],
    "report nb201": ["report", "nb201", "--out", "OUT"],
}


@pytest.mark.parametrize("command", sorted(N_BOOT_COMMANDS))
@pytest.mark.parametrize("value, words", [("-5", ["-5 is below 0"]), ("ten", ["'ten' is not a whole number"])])
def test_a_negative_n_boot_is_refused(capsys, tmp_path, command, value, words):
    argv = [str(tmp_path / "o") if a == "OUT" else a for a in N_BOOT_COMMANDS[command]]
    line = refused(capsys, *argv, "--n-boot", value)
    assert "--n-boot" in line and "0 (no confidence intervals)" in line
    for word in words:
        assert word in line, line


# -- 7. mip --weight, --cost-limit, --max-iterations, --samples --------------------------------------
@pytest.mark.parametrize("flag, value, words", [
    ("--weight", "nan", ["--weight", "nan is not a finite number >= 0", "cost weight"]),
    ("--weight", "inf", ["--weight", "inf is not a finite number >= 0"]),
    ("--weight", "-0.5", ["--weight", "-0.5 is not a finite number >= 0"]),
    ("--cost-limit", "0", ["--cost-limit", "0 is not a finite number > 0"]),
    ("--cost-limit", "nan", ["--cost-limit", "nan is not a finite number > 0"]),
    ("--max-iterations", "0", ["--max-iterations", "0 is below 1"]),
    ("--samples", "0", ["--samples", "0 is below 1"]),
])
def test_mip_numbers_are_checked_with_their_own_messages(capsys, tmp_path, flag, value, words):
    line = refused(capsys, "mip", "--evaluator", "tabular:bpe-paper", flag, value, "--out", tmp_path / "o")
    assert "cost limit" not in line.split(";")[0] or flag == "--cost-limit"
    for word in words:
        assert word in line, line


def test_mip_library_checks_the_weight():
    from harness.bpe.mip import mip

    with pytest.raises(HarnessError, match="cost weight nan is not a finite number >= 0") as info:
        mip(object(), weight=math.nan)
    one_line(info.value)


def test_mip_train_cells_outside_the_benchmark_are_refused(capsys, tmp_path):
    line = refused(capsys, "mip", "--evaluator", "train:nb201", "--cells", "99999", "--out", tmp_path / "o")
    assert "--cells 99999 is outside 3..15625" in line


# -- 8. a missing --split / --epochs -------------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["--dataset", "cifar10", "--epochs", "200"], ["acc of cifar10 needs a split", "train, ori-test"]),
    (["--dataset", "cifar100", "--epochs", "200"], ["needs a split", "train, x-valid, x-test, ori-test"]),
    (["--dataset", "cifar10", "--split", "ori-test"], ["needs a training run", "--epochs 12 or --epochs 200"]),
])
def test_a_missing_split_or_epochs_says_which_exist(capsys, nb201, argv, words):
    line = refused(capsys, "data", "query", "nb201", "--index", "0", *argv)
    assert "None" not in line
    for word in words:
        assert word in line, line


# -- 9. arch strings: the message says exactly what is malformed ------------------------------------
@pytest.mark.parametrize("arch, words", [
    ("|nor_conv_3x3~0|+| + |skip_connect~0|none~1|none~2|", ["node group 2", "is empty", "|op~0|op~1|"]),
    ("|none~0|+||+|none~0|none~1|none~2|", ["node group 2", "is empty"]),
    ("|none~0|+|none~0||none~1|+|none~0|none~1|none~2|", ["node group 2", "has an empty edge"]),
    ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|", ["4 node groups", "has 3 joined by 2 '+'"]),
    ("|none~0|+|none~0 |none~1|+|none~0|none~1|none~2|", ["node group 2", "holds whitespace"]),
    ("|none~0|+|none~0|none~1|+|none~0|none~1|", ["node group 3", "has 2 edges, node 3 needs 3", "|op~0|op~1|op~2|"]),
    ("|none~0|+|none~0|conv~1|+|none~0|none~1|none~2|", ["unknown NB201 op 'conv'", "node group 2", "avg_pool_3x3"]),
    ("|none~0|+|none~0|none~1|+|none~0|none~9|none~2|", ["edge 'none~9' of node 3 must read node 1, not '9'"]),
    ("|none~0|+|none~0|none~x|+|none~0|none~1|none~2|", ["must read node 1, not 'x'"]),
    ("|none~0|+|none~0|none~01|+|none~0|none~1|none~2|", ["must read node 1, not '01'"]),
    ("|none~0|+|none~0|none1|+|none~0|none~1|none~2|", ["edge 'none1'", "is not op~input"]),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", ["node group 1", "must start and end with '|'"]),
    ("   ", ["is empty"]),
])
def test_arch_string_errors_name_what_is_malformed(arch, words):
    with pytest.raises(HarnessError) as info:
        parse_arch(arch)
    text = one_line(info.value)
    for word in words:
        assert word in text, text
    assert FORMAT in text or "use one of" in text


def test_a_malformed_arch_on_the_command_line(capsys, nb201):
    line = refused(capsys, "data", "query", "nb201", "--arch", "|nor_conv_3x3~0|+| + |skip_connect~0|none~1|none~2|",
                   "--dataset", "cifar10", "--split", "ori-test", "--epochs", "200")
    assert "node group 2" in line and "is empty" in line


# -- 10. property-based: the arch-string and BPE-label parsers ------------------------------------
ARCH_PIECES = st.sampled_from(list(OPS) + ["|", "+", "~", "~0", "~1", "~2", "~3", "0", "1", "2", " ", "||", "|+|",
                                           "conv", "\n", "\u00b2", "\u0661", "NONE"])


@st.composite
def arch_like(draw):
    """Valid strings, valid strings with one piece changed, and runs of arch-string pieces."""
    ops = draw(st.lists(st.integers(0, len(OPS) - 1), min_size=6, max_size=6))
    valid = arch_to_str(ops)
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return valid
    if kind == 1:
        at = draw(st.integers(0, len(valid)))
        cut = draw(st.integers(0, 4))
        return valid[:at] + draw(ARCH_PIECES) + valid[at + cut:]
    if kind == 2:
        return "".join(draw(st.lists(ARCH_PIECES, max_size=20)))
    return draw(st.text(max_size=60))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arch_like())
@example("|none~0\n|+|none~0|none~1|+|none~0|none~1|none~2|")  # a newline inside: not the canonical string
@example("|none~0|+|none~0|none~\u0661|+|none~0|none~1|none~2|")  # an Arabic-Indic one is not the digit 1
@example("|none~00|+|none~0|none~1|+|none~0|none~1|none~2|")
@example(BEST)
def test_arch_parser_returns_a_cell_or_one_line(text):
    try:
        ops = parse_arch(text)
    except HarnessError as err:
        one_line(err)
        return
    assert len(ops) == 6 and all(0 <= o < len(OPS) for o in ops)
    assert arch_to_str(ops) == text.strip()  # a string that parses is exactly the canonical one
    assert parse_arch(arch_to_str(ops)) == ops


LABEL_PIECES = st.sampled_from(["e", "b", "lr", "l", "c", "i", "co", "f", "v", "m", "wd", "-", "0", "1", "2", "8",
                                "16", "128", "0.05", ".", "..", *PRECISIONS, "fp8", "=", ",", ";", "epochs=",
                                "batch=", "fraction=", "fp=", "nan", "inf", "1e-3", " ", "\n", "\u0661", "BPE1",
                                "9" * 30])


@st.composite
def label_like(draw):
    kind = draw(st.integers(0, 2))
    if kind == 0:
        config = BPEConfig(epochs=draw(st.integers(1, 50)), batch_size=draw(st.integers(1, 512)),
                           lr=draw(st.floats(1e-6, 1.0)), layers=draw(st.integers(1, 20)),
                           channels=draw(st.integers(1, 64)), image_size=draw(st.integers(8, 64)),
                           precision=draw(st.sampled_from(PRECISIONS)), cutout=draw(st.integers(0, 16)),
                           fraction=draw(st.floats(0.01, 1.0)), valid_images=draw(st.integers(0, 10000)))
        return config.label
    if kind == 1:
        return "".join(draw(st.lists(LABEL_PIECES, max_size=16)))
    return draw(st.text(max_size=60))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(label_like())
@example("e" + "9" * 400)  # past a float: int(float(...)) overflowed
@example("epochs=" + "9" * 5000)  # past Python's limit on int() digits
@example("lr=inf")  # accepted, and its label did not read back
@example("fp=1\n6")  # the precision went into the message as it was, newline and all
@example("e2-b128-lr0.05-l1-c8-i16-f0.2-v2000")
def test_bpe_label_parser_returns_a_config_or_one_line(text):
    try:
        config = BPEConfig.parse(text)
    except HarnessError as err:
        one_line(err)
        return
    assert isinstance(config, BPEConfig)
    assert all(math.isfinite(getattr(config, k)) for k in ("lr", "fraction", "momentum", "weight_decay"))
    assert BPEConfig.parse(config.label) == config  # the label reads back as the same configuration


@pytest.mark.parametrize("text, words", [
    ("e1.5-b128", ["epochs='1.5' is not a whole number"]),
    ("e1-e2", ["epochs is given twice"]),
    ("lr=nan", ["lr=nan is not finite"]),
    ("epochs=" + "9" * 5000, ["is too large"]),
    ("fp=1\n6", ["precision 'fp1\\n6' is not one of fp32, fp16, bf16"]),
    ("weight_decay=-1", ["weight_decay >= 0"]),
])
def test_bpe_label_errors(text, words):
    with pytest.raises(HarnessError) as info:
        BPEConfig.parse(text)
    line = one_line(info.value)
    for word in words:
        assert word in line, line


def test_numpy_numbers_still_make_a_config():
    assert BPEConfig(epochs=np.int64(2), lr=np.float64(0.1)).label.startswith("e2-")
