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


def test_check_outputs_refuses_an_input_by_any_name_among_many(tmp_path):
    inputs = [tmp_path / f"in{i}.png" for i in range(3)]
    for path in inputs:
        path.write_bytes(b"x")
    (tmp_path / "out1.cae").hardlink_to(inputs[1])
    (tmp_path / "link.png").symlink_to(inputs[2])
    fresh = [tmp_path / "out0.cae", tmp_path / "out2.cae"]
    assert cli.check_outputs(fresh, inputs) == fresh
    with pytest.raises(cli.UsageError, match=f"out1.cae: it is the input {inputs[1]} "):
        cli.check_outputs([*fresh, tmp_path / "out1.cae"], inputs)
    with pytest.raises(cli.UsageError, match="in2.png: it is the input .*link.png"):
        cli.check_outputs([inputs[2]], [tmp_path / "missing.png", tmp_path / "link.png"])
    with pytest.raises(cli.UsageError, match="the folder .* does not exist"):
        cli.check_outputs([*fresh, tmp_path / "no" / "x.cae"], inputs)


def test_the_codec_commands_need_an_output():
    done = _run("-m", "cae_utils.codec", "compress", "only-one.png")
    assert done.returncode == 2 and "the following arguments are required: OUT" in done.stderr


@pytest.mark.parametrize(
    "variable, value", [("CAE_QUICK", "maybe"), ("CAE_SEED", "abc"), ("CAE_EPOCHS", "-3")]
)
def test_a_bad_setting_stops_the_training_command_in_one_line(variable, value, monkeypatch, capsys):
    from cae_utils import train

    monkeypatch.setenv(variable, value)
    assert train.main(["--help"]) == 1  # before any help is printed or work is done
    err = capsys.readouterr().err
    assert err.startswith("error: ") and variable in err and len(err.splitlines()) == 1, err
