"""Where the course's code finds things: a child process started elsewhere still imports this checkout."""
import os
import subprocess
import sys

from coursedata.paths import PROJECT_ROOT, environment_importing_project


def test_a_child_started_in_another_folder_imports_this_checkout_and_keeps_the_callers_python_path(tmp_path,
                                                                                               monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "theirs"))
    environment = environment_importing_project()
    assert environment["PYTHONPATH"] == os.pathsep.join([str(PROJECT_ROOT), str(tmp_path / "theirs")])
    child = subprocess.run([sys.executable, "-c", "import coursedata; print(coursedata.__file__)"], cwd=tmp_path,
                           env=environment, capture_output=True, text=True, check=True)
    assert child.stdout.strip() == str(PROJECT_ROOT / "coursedata" / "__init__.py")
