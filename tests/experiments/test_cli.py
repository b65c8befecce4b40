"""Every experiment and the report end a missing data folder, a full disk or a read-only folder in one line
that names the problem and the fix, exit status 1, and a traceback only with --debug (coursedata.cli.run_main)."""
import importlib
import os
import subprocess
import sys

import pytest

from coursedata.cli import run_main
from coursedata.paths import PROJECT_ROOT
from experiments import report
from experiments.registry import EXPERIMENTS
from tiny_tmpfs import tmpfs


def one_line_error(capsys, main, argv):
    """The message run_main(main, argv) exits with, after checking it is one line, exit status 1, no traceback."""
    with pytest.raises(SystemExit) as exit_info:
        run_main(main, argv)
    message = exit_info.value.code
    assert isinstance(message, str) and "\n" not in message and message.startswith("error: ")
    assert "Traceback" not in capsys.readouterr().err
    return message


@pytest.mark.parametrize("name", [experiment.name for experiment in EXPERIMENTS])
def test_every_experiment_without_its_data_folder_says_which_file_is_missing(name, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYNET_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("TINYNET_CACHE", str(tmp_path / "cache"))
    main = importlib.import_module(f"experiments.{name}").main
    message = one_line_error(capsys, main, ["--quick", "--out", str(tmp_path / "out")])
    assert message.startswith(f"error: missing {tmp_path / 'no-data'}") and "set TINYNET_DATA" in message


def test_python_m_prints_one_line_and_with_debug_the_traceback(tmp_path):
    def run(*flags):
        return subprocess.run([sys.executable, "-m", "experiments.part1_mnist", "--quick", "--out", str(tmp_path),
                               *flags], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              env={**os.environ, "TINYNET_DATA": str(tmp_path / "no-data")})
    quiet, loud = run(), run("--debug")
    assert quiet.returncode == 1 and quiet.stderr.startswith("error: missing ") and quiet.stderr.count("\n") == 1
    assert loud.returncode == 1 and "Traceback" in loud.stderr and "FileNotFoundError" in loud.stderr


def test_the_report_into_a_read_only_folder_is_one_line_and_writes_nothing(tmp_path, capsys):
    results = tmp_path / "results"
    with tmpfs(results) as make_read_only:
        (results / "index.html").write_text("the last report")
        make_read_only()
        message = one_line_error(capsys, report.main, ["--results", str(results)])
        assert "(Read-only file system): choose a writable folder" in message
        assert [path.name for path in results.iterdir()] == ["index.html"]
        assert (results / "index.html").read_text() == "the last report"


def test_the_report_on_a_full_disk_is_one_line_and_leaves_the_old_file(tmp_path, capsys):
    results = tmp_path / "results"
    with tmpfs(results, size="4k"):
        (results / "index.html").write_text("the last report")
        message = one_line_error(capsys, report.main, ["--results", str(results)])
        assert message.startswith("error: no space left on the device writing")
        assert [path.name for path in results.iterdir()] == ["index.html"]
        assert (results / "index.html").read_text() == "the last report"
