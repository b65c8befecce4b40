"""run_main, explain and bounded: a bad value or a missing, full or read-only folder ends a command in one line
that names the problem and the fix, exit status 1, and a traceback only with --debug."""
import argparse
import errno

import pytest

from coursedata.cli import bounded, explain, run_main


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
    with pytest.raises(SystemExit) as exit_info:
        run_main(fails, [])
    assert exit_info.value.code == "error: a bad value (--debug shows the traceback)"
    assert "Traceback" not in capsys.readouterr().err
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
