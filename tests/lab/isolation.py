"""A lab of the tests' own, so they neither meet nor tear down one a developer has up."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from lab import paths
from lab.runtime import Lab

require_root = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root (nspawn, netns)")


@contextmanager
def isolated_lab(prefix: str) -> Iterator[Lab]:
    """A Lab under its own netns prefix and run dir, torn down (and checked) on exit."""
    saved = {key: os.environ.get(key) for key in ("MAILMESH_LAB_PREFIX", "MAILMESH_LAB_RUN")}
    os.environ["MAILMESH_LAB_RUN"] = f"{paths.run_dir()}-{prefix}"
    os.environ["MAILMESH_LAB_PREFIX"] = prefix
    lab = Lab()
    try:
        lab.down()  # whatever an earlier crashed run left
        yield lab
    finally:
        report = lab.down()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        assert report.leftovers == [], report.leftovers
