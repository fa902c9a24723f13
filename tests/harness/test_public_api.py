"""The package's public surface: sorted, importable, lazy, nothing more."""

from __future__ import annotations

import subprocess
import sys

import harness


def test_all_is_sorted() -> None:
    assert harness.__all__ == sorted(harness.__all__)


def test_everything_in_all_imports() -> None:
    # In a child process: some names import Locust, which monkey-patches whoever imports it.
    code = (
        "import harness\n"
        "missing = [n for n in harness.__all__ if getattr(harness, n, None) is None]\n"
        "assert not missing, missing\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_importing_harness_loads_neither_locust_nor_pandas() -> None:
    code = "import sys, harness; print('locust' in sys.modules, 'pandas' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "False False", done.stderr[-2000:]


def test_errors_form_one_family() -> None:
    names = ("ConfigError", "DatabaseError", "DatasetError", "ServiceError")
    for name in names:
        assert issubclass(getattr(harness, name), harness.HarnessError)
    codes = {getattr(harness, n).exit_code for n in names}
    assert len(codes) == 4 and 1 not in codes
