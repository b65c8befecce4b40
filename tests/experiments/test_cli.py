"""run_main and explain: a missing data folder, a full disk or a read-only folder ends any entry point in
one line that names the problem and the fix, exit status 1, and a traceback only with --debug."""
import argparse
import errno
import importlib
import os
import subprocess
import sys

import pytest

from coursedata.paths import PROJECT_ROOT
from experiments import report
from experiments.common.cli import bounded, explain, run_main
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


def test_explain_names_the_file_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYNET_DATA", str(tmp_path / "data"))
    missing = tmp_path / "data" / "mnist" / "mnist_all.mat"
    assert explain(FileNotFoundError(errno.ENOENT, "No such file or directory", str(missing))) == (
        f"missing {missing}: the course data folder is {tmp_path / 'data'} (it does not exist); set TINYNET_DATA to "
        "the folder that holds mnist/, olivetti/ and facescrub/ (see its README.md)")
    assert "check the path" in explain(FileNotFoundError(errno.ENOENT, "No such file", str(tmp_path / "x.pkl")))
    assert explain(OSError(errno.ENOSPC, "No space left on device", "/store/a.jpg")).startswith(
        "no space left on the device writing /store/a.jpg: free some space or write elsewhere")
    assert explain(OSError(errno.EROFS, "Read-only file system", "/store")) == (
        "cannot write /store (Read-only file system): choose a writable folder (--out, --store or TINYNET_CACHE)")
    assert explain(PermissionError(errno.EACCES, "Permission denied", "/x")).startswith("no permission for /x")
    assert explain(ValueError("expected input of shape (N, 5)\nmore")) == "expected input of shape (N, 5)"
    assert explain(KeyError("W0")) == "KeyError: 'W0'" and explain(RuntimeError()) == "RuntimeError"


def test_run_main_gives_the_traceback_only_with_debug(capsys):
    def fails(argv):
        raise ValueError("a bad value")
    assert one_line_error(capsys, fails, []) == "error: a bad value (--debug shows the traceback)"
    with pytest.raises(ValueError, match="a bad value"):
        run_main(fails, ["--debug"])
    assert run_main(lambda argv: argv, ["x"]) == ["x"]


@pytest.mark.parametrize("text, parsed", [("1", 1), ("256", 256)])
def test_bounded_accepts_values_in_range(text, parsed):
    assert bounded(int, 1, 256)(text) == parsed


@pytest.mark.parametrize("kind, limits, text", [(int, (1, 256), "0"), (int, (1, 256), "257"), (int, (1, 256), "x"),
                                                (float, (None, None, 0), "0"), (float, (None, None, 0), "nan"),
                                                (float, (None, None, 0), "-inf")])
def test_bounded_refuses_values_out_of_range(kind, limits, text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected"):
        bounded(kind, *limits)(text)


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
