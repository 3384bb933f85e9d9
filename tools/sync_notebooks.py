"""Stamp the course's public address into every notebook's Colab badge and set-up cell.

The address is kept in one place, ``[project.urls] Repository`` in ``pyproject.toml``. Notebooks are
JSON files that cannot import it, so this tool writes it into them:

    python tools/sync_notebooks.py          # rewrite the badges and set-up cells that differ
    python tools/sync_notebooks.py --check  # only report; exit 1 when a notebook is out of date

``tests/test_notebooks.py`` runs the check, so a changed address cannot be half applied.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from cae_utils._files import write_text_atomically
from cae_utils.config import repository_url

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

BADGE_RE = re.compile(
    r"\[!\[Open In Colab\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]\([^)]*\)"
)
INSTALL_RE = re.compile(r'COURSE_ARCHIVE = "[^"]*"')


def repo_url() -> str:
    """The course's public GitHub address, from ``pyproject.toml`` (no trailing slash)."""
    url = repository_url()
    if not url.startswith("https://github.com/"):
        raise SystemExit(
            f"pyproject.toml: Repository must be a https://github.com/OWNER/NAME address, got {url!r}"
        )
    return url


def badge(notebook_name: str, url: str | None = None) -> str:
    """The Markdown of the "Open in Colab" badge for ``notebooks/<notebook_name>``."""
    path = (url or repo_url()).removeprefix("https://github.com/")
    target = f"https://colab.research.google.com/github/{path}/blob/main/notebooks/{notebook_name}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({target})"


def install_assignment(url: str | None = None) -> str:
    """The line of the set-up cell that names the archive Colab installs the course from.

    GitHub's archive of the main branch leaves out the weights files (``.gitattributes``: export-ignore), so
    the install downloads the code, the notebooks and the models' descriptions, not the weights.
    """
    return f'COURSE_ARCHIVE = "{url or repo_url()}/archive/refs/heads/main.zip"'


def _sync_source(source: str, pattern: re.Pattern, wanted: str) -> str:
    return pattern.sub(lambda _: wanted, source)


def sync(path: Path, write: bool) -> list[str]:
    """Bring one notebook's badge and set-up cell in line with ``pyproject.toml``.

    Returns the list of problems found (empty when the notebook is up to date, or was fixed when
    ``write`` is true and the fix was possible).
    """
    if path.is_symlink() or not path.is_file():
        return [f"{path.name}: not a regular file (a link or a folder); it was left alone"]
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = [c for c in nb["cells"] if isinstance(c.get("source"), (str, list))]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return [
            f"{path.name}: not a notebook this tool can read ({type(exc).__name__}: {exc}); it was left alone"
        ]
    problems: list[str] = []
    changed = False
    wanted = {"markdown": (BADGE_RE, badge(path.name)), "code": (INSTALL_RE, install_assignment())}
    found = {"markdown": False, "code": False}
    for cell in cells:
        kind = cell.get("cell_type")
        if kind not in wanted:
            continue
        pattern, line = wanted[kind]
        source = "".join(cell["source"])
        if not pattern.search(source):
            continue
        found[kind] = True
        new = _sync_source(source, pattern, line)
        if new != source:
            problems.append(
                f"{path.name}: {'badge' if kind == 'markdown' else 'set-up cell'} is out of date"
            )
            cell["source"] = new.splitlines(keepends=True)
            changed = True
    if not found["markdown"]:
        problems.append(f"{path.name}: no 'Open In Colab' badge")
    if not found["code"]:
        problems.append(f"{path.name}: no set-up cell assigning COURSE_ARCHIVE")
    if write and changed:
        write_text_atomically(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        problems = [p for p in problems if "out of date" not in p]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="report only; exit 1 if anything is out of date"
    )
    args = parser.parse_args(argv)
    problems = [
        p for nb in sorted(NOTEBOOKS.glob("*.ipynb")) for p in sync(nb, write=not args.check)
    ]
    for p in problems:
        print(p)
    if not problems:
        print(f"all notebooks name {repo_url()}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
