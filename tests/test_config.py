"""Run settings: values are read from the environment, validated, and quick mode keeps figures out of figures/."""

from pathlib import Path

import pytest

from cae_utils import config


@pytest.fixture
def clean_env(monkeypatch):
    names = (
        "CAE_QUICK",
        "CAE_EPOCHS",
        "CAE_DATA_DIR",
        "CAE_FIGURES_DIR",
        "CAE_SEED",
        "CAE_WEIGHTS_DIR",
    )
    for name in (*names, "CAE_WEIGHTS_URL", "CAE_PROGRESS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_are_a_full_run(clean_env):
    s = config.get_settings()
    assert s.quick is False and s.epochs is None and s.data_dir is None and s.seed == 42
    assert s.figures_dir == config.repo_root() / "figures"


def test_pytest_runs_in_quick_mode_by_default():
    # The root conftest.py sets CAE_QUICK=1 unless the caller chose (`CAE_QUICK=0 pytest`); CI relies on it.
    import conftest

    if not conftest.QUICK_CHOSEN_BY_CONFTEST:
        pytest.skip("the caller set CAE_QUICK")
    assert config.get_settings().quick is True


@pytest.mark.parametrize(
    "raw, quick", [("1", True), ("true", True), ("YES", True), ("0", False), ("off", False)]
)
def test_quick_accepts_usual_spellings(clean_env, raw, quick):
    clean_env.setenv("CAE_QUICK", raw)
    assert config.get_settings().quick is quick


def test_bad_quick_value_names_the_variable(clean_env):
    clean_env.setenv("CAE_QUICK", "maybe")
    with pytest.raises(config.SettingsError, match=r"CAE_QUICK='maybe'.*1 \(on\) or 0 \(off\)"):
        config.get_settings()


@pytest.mark.parametrize("raw", ["0", "-3", "ten", "2.5", "100001", "99999999999999999999"])
def test_bad_epochs_value_names_the_variable(clean_env, raw):
    clean_env.setenv("CAE_EPOCHS", raw)
    with pytest.raises(config.SettingsError, match="CAE_EPOCHS.*positive whole number"):
        config.get_settings()


def test_epochs_override_and_quick_choice(clean_env):
    assert config.epochs(full=30, quick=2) == 30
    clean_env.setenv("CAE_QUICK", "1")
    assert config.epochs(full=30, quick=2) == 2
    clean_env.setenv("CAE_EPOCHS", "5")
    assert config.epochs(full=30, quick=2) == 5


def test_data_dir_and_seed(clean_env, tmp_path):
    clean_env.setenv("CAE_DATA_DIR", str(tmp_path))
    clean_env.setenv("CAE_SEED", "7")
    s = config.get_settings()
    assert s.data_dir == tmp_path and s.seed == 7
    clean_env.setenv("CAE_SEED", "x")
    with pytest.raises(config.SettingsError, match="CAE_SEED"):
        config.get_settings()


def test_quick_mode_figures_go_to_a_temporary_folder(clean_env):
    clean_env.setenv("CAE_QUICK", "1")
    path = config.figure_path("test_figure.png")
    assert path.parent.is_dir()
    assert path.parent != config.repo_root() / "figures"
    assert "cae-quick-figures-" in path.parent.name


def test_figures_dir_can_be_redirected(clean_env, tmp_path):
    clean_env.setenv("CAE_FIGURES_DIR", str(tmp_path / "figs"))
    assert config.figure_path("a.png") == tmp_path / "figs" / "a.png"


@pytest.mark.parametrize("target", ["/dev/null", "file"])
def test_figures_dir_that_is_not_a_folder_is_refused(clean_env, tmp_path, target):
    path = tmp_path / "file" if target == "file" else Path(target)
    if target == "file":
        path.write_text("mine")
    clean_env.setenv("CAE_FIGURES_DIR", str(path))
    with pytest.raises(config.SettingsError, match="CAE_FIGURES_DIR=.* is not a folder"):
        config.figure_path("a.png")
    assert path.is_char_device() if target == "/dev/null" else path.read_text() == "mine"


@pytest.mark.parametrize("name", ["", "../escape.png", "sub/dir.png"])
def test_figure_name_must_be_a_plain_file_name(name):
    with pytest.raises(ValueError, match="plain file name"):
        config.figure_path(name)


def test_announce_prints_the_quick_mode_line_once(clean_env, capsys):
    clean_env.setenv("CAE_QUICK", "1")
    clean_env.setattr(config, "_announced", False)
    config.announce()
    config.announce()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("CAE quick mode")


def test_weights_dir_and_url(clean_env, tmp_path):
    assert config.get_settings().weights_dir is None and config.get_settings().weights_url is None
    clean_env.setenv("CAE_WEIGHTS_DIR", str(tmp_path))
    clean_env.setenv("CAE_WEIGHTS_URL", "http://127.0.0.1:8000/weights/")
    s = config.get_settings()
    assert s.weights_dir == tmp_path and s.weights_url == "http://127.0.0.1:8000/weights"


def test_repository_url_is_pyprojects(clean_env, tmp_path):
    # The real address agrees with the one CITATION.cff states, a file the code never reads.
    citation = (config.repo_root() / "CITATION.cff").read_text().splitlines()
    key = "repository-code:"
    stated = [line[len(key) :].strip().strip('"') for line in citation if line.startswith(key)]
    assert [config.repository_url()] == stated and stated[0].startswith("https://github.com/")
    # Another pyproject.toml, another address, its trailing slash dropped.
    (tmp_path / "pyproject.toml").write_text(
        '[project.urls]\nRepository = "https://example.org/someone/course/"\n'
    )
    clean_env.setattr(config, "repo_root", lambda: tmp_path)
    assert config.repository_url() == "https://example.org/someone/course"


def test_progress_bars_or_one_line_per_epoch(clean_env, capsys):
    # Under pytest stdout is captured (not a terminal) and no Jupyter kernel runs: one line per epoch.
    assert config.get_settings().progress == "epoch" and config.fit_verbosity() == 2
    assert list(config.progress(["a", "b"])) == ["a", "b"] and capsys.readouterr().out == ""
    clean_env.setenv("CAE_PROGRESS", "bar")
    assert config.fit_verbosity() == 1
    assert list(config.progress(["a", "b"], "coder")) == ["a", "b"]
    assert "2/2" in capsys.readouterr().out  # Keras's progress bar reached its end
    clean_env.setenv("CAE_PROGRESS", "dots")
    with pytest.raises(config.SettingsError, match="CAE_PROGRESS='dots' is not one of bar, epoch"):
        config.get_settings()


@pytest.mark.parametrize("raw", ["-1", "4294967296", "x"])
def test_a_seed_out_of_range_is_refused_where_it_is_read(clean_env, raw):
    clean_env.setenv("CAE_SEED", raw)
    with pytest.raises(
        config.SettingsError, match=rf"CAE_SEED='{raw}' is not a seed: .* 0 to 4294967295"
    ):
        config.get_settings()


def test_check_number_by_hand():
    assert config.check_number("n", 3, 1, 3, whole=True) == 3
    assert config.check_number("x", 0.5, 0, 1, above_low=True) == 0.5
    for value, kwargs in [
        (4, {}),
        (0, {"above_low": True}),
        (2.0, {"whole": True}),
        (True, {}),
        (float("nan"), {}),
    ]:
        with pytest.raises(config.SettingsError, match="n must be"):
            config.check_number("n", value, 0, 3, **kwargs)
    with pytest.raises(KeyError):
        config.check_number("n", 9, 0, 3, error=KeyError)


@pytest.mark.parametrize("raw", ["ftp://x", "http://", "https:///weights", "weights"])
def test_a_weights_address_needs_http_and_a_host(clean_env, raw):
    clean_env.setenv("CAE_WEIGHTS_URL", raw)
    with pytest.raises(config.SettingsError, match="CAE_WEIGHTS_URL.*is not an http"):
        config.get_settings()
