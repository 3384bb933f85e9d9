"""Plant realistic bugs one at a time in a copy of the course and see whether the unit tests catch them.

A maintainer's check of the tests themselves (a hand-written mutation test), run by hand, never by CI:

    python tools/plant_bugs.py            # every bug (the unit tests run once per bug)
    python tools/plant_bugs.py --list     # what each bug is
    python tools/plant_bugs.py --only 3 7 # some of them

Each bug is one small edit of the kind people really make (a wrong constant, an off-by-one, a swapped
axis, a skipped step) in a module that computes results. The script copies the working tree into a
temporary folder, checks that the unit tests pass there unchanged, then for each bug makes the edit, runs
the unit tests (``tests/``, stopping at the first failure; the notebooks are left out for time), and
undoes the edit. It prints which test caught each bug and the score. A bug that survives shows a check
the tests are missing: add the test, or say in the issue why the bug is harmless.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Bug:
    file: str
    old: str
    new: str
    what: str


BUGS = [
    Bug(
        "cae_utils/metrics.py",
        "np.mean((a - b) ** 2, axis=(1, 2, 3))",
        "np.mean(np.abs(a - b), axis=(1, 2, 3))",
        "MSE computed as the mean absolute error",
    ),
    Bug(
        "cae_utils/metrics.py",
        "10.0 * np.log10(1.0 / np.maximum(values, MSE_FLOOR))",
        "20.0 * np.log10(1.0 / np.maximum(values, MSE_FLOOR))",
        "PSNR with 20 log10 of an MSE (the amplitude formula on a power)",
    ),
    Bug(
        "cae_utils/metrics.py",
        "return float(_psnr_from_mse(values.mean()))",
        "return float(np.mean(_psnr_from_mse(values)))",
        "pooled PSNR computed as the mean PSNR",
    ),
    Bug(
        "cae_utils/metrics.py",
        "bpp = 8.0 * sizes / (image_shape[0] * image_shape[1])",
        "bpp = 8.0 * sizes / (image_shape[0] * image_shape[1] * 3)",
        "bits per pixel divided by the channels too (bits per sub-pixel)",
    ),
    Bug(
        "cae_utils/models.py",
        "return (height * width * channels * 8) / (latent_dim * bits_per_value)",
        "return (height * width * channels * 8 * channels) / (latent_dim * bits_per_value)",
        "compression ratio counting the channels twice (the founding notebook's bug)",
    ),
    Bug(
        "cae_utils/data.py",
        "    out /= 255.0",
        "    out /= 256.0",
        "pixels scaled by 1/256 instead of 1/255",
    ),
    Bug(
        "cae_utils/data.py",
        "return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)",
        "return np.clip(images * 255.0, 0, 255).astype(np.uint8)",
        "float images to bytes by truncation instead of rounding",
    ),
    Bug(
        "cae_utils/data.py",
        "val_idx, train_idx = order[:val_size], order[val_size:]",
        "val_idx, train_idx = order[:val_size], order[val_size - 1 :]",
        "one validation image also in the training set (off by one)",
    ),
    Bug(
        "cae_utils/baselines.py",
        "components = eigenvectors[:, ::-1][:, :d].T.copy()",
        "components = eigenvectors[:, :d].T.copy()",
        "PCA keeps the components of smallest variance (eigh sorts ascending)",
    ),
    Bug(
        "cae_utils/baselines.py",
        "return low + codes.astype(np.float64) * step",
        "return low + (codes.astype(np.float64) + 0.5) * step",
        "dequantizer returns the middle of a cell where the quantizer rounds to its edge",
    ),
    Bug(
        "cae_utils/baselines.py",
        "if marker == 0xDA:",
        "if marker == 0xDB:",
        "JPEG header measured up to the quantisation table instead of start-of-scan",
    ),
    Bug(
        "cae_utils/latent.py",
        "model = make_pipeline(StandardScaler(), classifier)",
        "model = make_pipeline(classifier)",
        "linear probe without standardising the features",
    ),
    Bug(
        "cae_utils/latent.py",
        "result[start + row] = candidates[np.lexsort((candidates, exact))[:k]]",
        "result[start + row] = candidates[np.lexsort((candidates, -exact))[:k]]",
        "nearest neighbours sorted farthest first",
    ),
    Bug(
        "cae_utils/train.py",
        "decay_steps=max(total_steps - warmup_steps, 1),",
        "decay_steps=max(total_steps, 1),",
        "cosine schedule that forgets the warm-up steps (never reaches its floor)",
    ),
    Bug(
        "cae_utils/train.py",
        "            self.model.set_weights(self.best_weights)",
        "            pass",
        "best weights never restored: the last epoch's weights are kept",
    ),
    Bug(
        "cae_utils/codec/api.py",
        'mode="edge")',
        'mode="constant")',
        "odd-size images padded with black instead of their edge pixels",
    ),
    Bug(
        "cae_utils/codec/api.py",
        "return to_uint8(x_hat[:, :height, :width])",
        "return np.clip(x_hat[:, :height, :width] * 255, 0, 255).astype(np.uint8)",
        "decoded pixels truncated instead of rounded",
    ),
    Bug(
        "cae_utils/codec/coder.py",
        "k[escape] = np.where(z % 2 == 0, z // 2, -(z + 1) // 2)",
        "k[escape] = np.where(z % 2 == 0, z // 2, -z // 2)",
        "negative escaped latents decoded one too high",
    ),
    Bug(
        "cae_utils/codec/model.py",
        "q = _quantiles(prior, [tail_mass / 2, 0.5, 1 - tail_mass / 2])",
        "q = _quantiles(prior, [tail_mass, 0.5, 1 - tail_mass])",
        "probability tables cut at twice the tail mass",
    ),
    Bug(
        "cae_utils/codec/model.py",
        "mse = ops.mean(ops.square(target - x_hat)) * 255.0**2",
        "mse = ops.mean(ops.square(target - x_hat)) * 255.0",
        "codec loss's MSE on the wrong pixel scale (255 instead of 255 squared)",
    ),
]


def _copy_tree(dest: Path) -> None:
    """The working tree (uncommitted edits included) without git data, environments and run folders."""
    ignore = shutil.ignore_patterns(".git", ".venv", "runs", "__pycache__", "*.egg-info", "build")
    shutil.copytree(ROOT, dest, ignore=ignore, dirs_exist_ok=True)


def _run_tests(folder: Path, tests: list[str], timeout: float) -> tuple[bool | None, str, float]:
    """Run the unit tests in ``folder``: (passed, first failing test or reason, seconds); passed is None
    when they ran out of time."""
    env = dict(os.environ, CAE_QUICK="1", PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-o", "addopts=-p no:cacheprovider"]
    start = time.monotonic()
    try:
        done = subprocess.run(
            [*command, *tests],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s", time.monotonic() - start
    seconds = time.monotonic() - start
    if done.returncode == 0:
        return True, "", seconds
    failed = re.search(r"^(?:FAILED|ERROR) (\S+)", done.stdout, re.MULTILINE)
    return False, failed.group(1) if failed else done.stdout[-300:], seconds


def _plant(folder: Path, bug: Bug) -> str:
    """Make the bug's edit in ``folder``; return the file's original text."""
    path = folder / bug.file
    text = path.read_text()
    count = text.count(bug.old)
    if count != 1:
        raise SystemExit(
            f"error: {bug.file} holds the text of bug {bug.what!r} {count} times, not once: "
            f"the code changed, update the bug in {Path(__file__).name}."
        )
    path.write_text(text.replace(bug.old, bug.new))
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list the bugs and stop")
    parser.add_argument("--only", type=int, nargs="+", metavar="N", help="plant only these bugs")
    parser.add_argument(
        "--tests", nargs="+", default=["tests"], help="test paths to run (default: tests)"
    )
    parser.add_argument(
        "--timeout", type=float, default=1200, help="seconds per test run (default 1200)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.timeout <= 86_400:  # also refuses nan
        parser.error(f"--timeout takes 1 to 86400 seconds, got {args.timeout}.")
    if args.list:
        for number, bug in enumerate(BUGS, 1):
            print(f"{number:2d}. {bug.file}: {bug.what}")
        return 0
    chosen = args.only or list(range(1, len(BUGS) + 1))
    bad = [n for n in chosen if not 1 <= n <= len(BUGS)]
    if bad:
        parser.error(f"--only takes bug numbers from 1 to {len(BUGS)}, got {bad}.")

    with tempfile.TemporaryDirectory(prefix="plant-bugs-") as tmp:
        folder = Path(tmp)
        _copy_tree(folder)
        passed, why, seconds = _run_tests(folder, args.tests, args.timeout)
        if not passed:
            print(f"error: the unchanged tests do not pass ({why}); fix them first.")
            return 1
        print(f"unchanged copy: tests pass in {seconds:.0f} s")
        caught = 0
        for number in chosen:
            bug = BUGS[number - 1]
            original = _plant(folder, bug)
            try:
                passed, why, seconds = _run_tests(folder, args.tests, args.timeout)
            finally:
                (folder / bug.file).write_text(original)
            caught += passed is False
            verdict = {False: f"caught by {why}", True: "SURVIVED", None: f"not decided: {why}"}[
                passed
            ]
            print(f"{number:2d}. {bug.what}: {verdict} ({seconds:.0f} s)", flush=True)
        print(f"caught {caught} of {len(chosen)}")
    return 0 if caught == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
