"""Shared fixtures: the course data folder, which must exist in CI."""
import os

import pytest
from hypothesis import settings

from coursedata.paths import data_dir

# CI replays the same examples every run (derandomize) so that main stays reproducibly green;
# local runs explore new examples each time.
settings.register_profile("tinynet", max_examples=25, deadline=None, derandomize=os.environ.get("CI") == "true")
settings.load_profile("tinynet")


def require_data(relative_path: str):
    """Return data_dir()/relative_path; fail in CI (CI=true) and skip elsewhere when it is missing."""
    path = data_dir() / relative_path
    if not path.exists():
        message = f"missing course data {path}: set TINYNET_DATA or put ../shared/data beside the project"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def shared_data():
    """The course data folder (see require_data)."""
    return require_data(".")
