"""Where the course's code finds the course data and where it writes derived files."""
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The read-only data folder: $TINYNET_DATA, else ../shared/data beside the project."""
    return Path(os.environ.get("TINYNET_DATA", PROJECT_ROOT.parent / "shared" / "data"))


def cache_dir() -> Path:
    """The folder for downloads and derived files: $TINYNET_CACHE, else ~/.cache/tinynet."""
    return Path(os.environ.get("TINYNET_CACHE", Path.home() / ".cache" / "tinynet"))


def environment_importing_project() -> dict:
    """This process's environment with the project's folder first on PYTHONPATH: a child process (an
    experiment, a notebook's kernel) imports this checkout's packages, whatever its working folder."""
    python_path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": python_path}
