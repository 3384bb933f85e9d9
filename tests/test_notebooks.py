"""The notebooks follow the course's conventions (CONTRIBUTING.md) and are committed from a full run.

nbval runs each notebook in quick mode; these checks look at the committed files themselves: the
title and Colab badge, the shared set-up cell, no line magics (nbval drops the rest of such a cell),
and outputs from a full, in-order run without errors.
"""

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import sync_notebooks  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb files"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_name_title_and_badge(path):
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), (
        "notebooks are named NN_snake_case.ipynb"
    )
    first = load(path)["cells"][0]
    text = "".join(first["source"])
    assert first["cell_type"] == "markdown" and text.startswith(f"# {path.name[:2]} · ")
    assert sync_notebooks.badge(path.name) in text
    assert "**What you will learn.**" in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell(path):
    first_code = "".join(code_cells(load(path))[0]["source"])
    lines = [line for line in first_code.splitlines() if not line.startswith("#")]
    assert lines[0] == "QUICK = None", (
        "the quick-mode switch comes first, set to None (the environment decides)"
    )
    assert sync_notebooks.install_assignment() in first_code
    assert 'if "google.colab" in sys.modules:' in first_code and '"--no-deps"' in first_code
    assert "settings = setup_notebook(quick=QUICK)" in first_code
    # cae_utils is imported before anything that imports TensorFlow, so its start-up lines stay silent
    assert first_code.index("from cae_utils") < min(
        (first_code.find(m) for m in ("import keras", "import tensorflow") if m in first_code),
        default=len(first_code),
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_log_noise_in_committed_outputs(path):
    noise = re.compile(r"cuInit|cuda_|cudart|absl::|I0000 |W0000 |E0000 |retracing|oneDNN")
    for cell in code_cells(load(path)):
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", ""))
            assert not noise.search(text), f"log noise in a committed output: {text[:200]!r}"


def test_training_notebook_asks_colab_for_a_gpu():
    metadata = load(ROOT / "notebooks" / "03_training.ipynb")["metadata"]
    assert metadata["accelerator"] == "GPU" and metadata["colab"]["gpuType"]


def test_badges_and_setup_cells_name_the_address_in_pyproject():
    problems = [p for nb in NOTEBOOKS for p in sync_notebooks.sync(nb, write=False)]
    assert problems == [], "run `python tools/sync_notebooks.py`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_line_magics(path):
    for cell in code_cells(load(path)):
        for line in "".join(cell["source"]).splitlines():
            assert not line.lstrip().startswith(("%", "!")), f"magic in a cell nbval runs: {line!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_from_a_full_run_in_order(path):
    cells = code_cells(load(path))
    counts = [c.get("execution_count") for c in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        "run the notebook top to bottom on a fresh kernel"
    )
    for cell in cells:
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", "committed notebook holds an error output"
            text = "".join(out.get("text", ""))
            assert "CAE quick mode" not in text, (
                "committed notebook holds a quick-mode run; run it with CAE_QUICK=0"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_solutions_are_collapsed_and_run(path):
    cells = load(path)["cells"]
    starts = [
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "markdown" and "## Exercises" in "".join(c["source"]).splitlines()
    ]
    assert starts, "every notebook ends with an Exercises section"
    solutions = [c for c in cells[starts[0] :] if c["cell_type"] == "code"]
    assert 2 <= len(solutions) <= 4, "2 to 4 exercises, each with a worked solution"
    for cell in solutions:
        assert "".join(cell["source"]).startswith("# @title Solution")
        # collapsed in JupyterLab, code and output
        hidden = cell["metadata"].get("jupyter", {})
        assert hidden.get("source_hidden") is True and hidden.get("outputs_hidden") is True
        assert cell["metadata"].get("cellView") == "form"  # and on Colab
        assert cell["outputs"], "solutions run in the committed full run (and nbval runs them)"


def test_sync_leaves_links_folders_and_broken_notebooks_alone(tmp_path):
    outside = tmp_path / "outside.ipynb"
    outside.write_text(NOTEBOOKS[0].read_text().replace("colab.research.google.com/github", "x"))
    folder = tmp_path / "nb"
    folder.mkdir()
    (folder / "link.ipynb").symlink_to(outside)
    (folder / "dir.ipynb").mkdir()
    (folder / "broken.ipynb").write_text("{not json")
    (folder / "nocells.ipynb").write_text('{"cells": 3}')
    before = outside.read_text()
    for name, message in [
        ("link.ipynb", "not a regular file"),
        ("dir.ipynb", "not a regular file"),
        ("broken.ipynb", "not a notebook this tool can read"),
        ("nocells.ipynb", "not a notebook this tool can read"),
    ]:
        (problem,) = sync_notebooks.sync(folder / name, write=True)
        assert message in problem, problem
    assert outside.read_text() == before
    assert (folder / "broken.ipynb").read_text() == "{not json"


def test_sync_repairs_an_out_of_date_badge_in_place(tmp_path):
    stale = tmp_path / NOTEBOOKS[0].name
    stale.write_text(NOTEBOOKS[0].read_text().replace("colab.research.google.com/github", "x"))
    assert sync_notebooks.sync(stale, write=False)  # reported
    assert sync_notebooks.sync(stale, write=True) == []  # repaired
    assert sync_notebooks.badge(stale.name) in stale.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == [stale.name]  # no temporary file left
