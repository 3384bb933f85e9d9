"""The command lines: quiet on a machine without a GPU, one line for Ctrl-C, no TensorBoard flag."""

import os
import subprocess
import sys

import pytest

from cae_utils import cli, train


def _run(*args, **env):
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**environment, **env},
    )


def test_importing_the_package_prints_nothing():
    done = _run("-c", "import cae_utils, keras; keras.ops.ones(2)")
    assert done.returncode == 0
    assert done.stderr == "" and done.stdout == ""


def test_a_command_line_tool_prints_no_cuda_or_absl_lines():
    done = _run("-m", "cae_utils.codec", "models")
    assert done.returncode == 0 and "low" in done.stdout
    assert done.stderr == ""


def test_ctrl_c_prints_one_line_and_exits_130(capsys):
    def interrupted():
        raise KeyboardInterrupt

    assert cli.run_command(interrupted) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("interrupted (Ctrl-C)")


def test_a_users_error_prints_one_line_and_exits_1(capsys):
    from cae_utils.pretrained import PretrainedError

    def bad():
        raise PretrainedError("no shipped model named 'x'")

    assert cli.run_command(bad) == 1
    assert capsys.readouterr().err == "error: no shipped model named 'x'\n"


def test_a_programming_error_is_not_hidden():
    def broken():
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        cli.run_command(broken)


def test_the_tensorboard_flag_is_gone(capsys):
    with pytest.raises(SystemExit) as exit_:
        train.main(["--out", "unused", "--tensorboard"])
    assert (
        exit_.value.code == 2 and "unrecognized arguments: --tensorboard" in capsys.readouterr().err
    )
