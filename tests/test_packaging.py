"""The wheel holds the packages the README says `pip install .` installs, and nothing else at the top level;
an experiment runs as a script, as the README's first command runs part 8."""
import re
import shutil
import subprocess
import sys
import zipfile
from importlib.util import find_spec

from conftest import require_or_skip
from coursedata.paths import PROJECT_ROOT

# What a build makes or a run leaves in the checkout, none of it part of the source.
NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", "results")


def packages_the_readme_lists():
    """The names in the README's "`pip install .` installs a, b and c"."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    listed = re.search(r"`pip install \.` installs (\w+(?:, \w+)*) and (\w+)", readme)
    assert listed, "README.md no longer says what `pip install .` installs"
    return set(listed[1].split(", ")) | {listed[2]}


def test_the_wheel_holds_the_packages_the_readme_lists(tmp_path):
    require_or_skip(find_spec("wheel") is not None or find_spec("setuptools.command.bdist_wheel") is not None,
                    "building a wheel needs the wheel package: pip install -e '.[test]'")
    # A copy, so that the build's build/ and egg-info never land in the checkout.
    source = tmp_path / "source"
    shutil.copytree(PROJECT_ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "--quiet", "--wheel-dir", str(tmp_path / "wheels"), str(source)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
    (wheel,) = (tmp_path / "wheels").glob("tinynet-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        top_level = {name.split("/")[0] for name in archive.namelist()}
    assert {name for name in top_level if not name.endswith(".dist-info")} == packages_the_readme_lists()
    assert "tinynet/assign/default_tasks.toml" in archive.namelist()


def test_an_experiment_runs_as_a_script_from_any_folder(tmp_path):
    """`python experiments/part8_gradients.py` puts experiments/ on sys.path, not the project: the script's
    own `import experiments` needs the installed package (it failed on a fresh venv without it)."""
    run = subprocess.run([sys.executable, str(PROJECT_ROOT / "experiments" / "part8_gradients.py"), "--help"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0 and "usage:" in run.stdout, run.stderr[-2000:]
