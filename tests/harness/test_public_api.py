"""The package's public surface: sorted, importable, nothing more."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("package", ["harness"])
def test_all_is_sorted_and_importable(package: str) -> None:
    module = importlib.import_module(package)
    names = module.__all__
    assert names == sorted(names)
    for name in names:
        assert hasattr(module, name), name


def test_errors_form_one_family() -> None:
    import harness

    for name in ("ConfigError", "DatabaseError", "DatasetError", "ServiceError"):
        error = getattr(harness, name)
        assert issubclass(error, harness.HarnessError)
    codes = {
        getattr(harness, n).exit_code
        for n in ("ConfigError", "DatabaseError", "DatasetError", "ServiceError")
    }
    assert len(codes) == 4 and 1 not in codes
