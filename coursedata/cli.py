"""What every command line of the course shares: run_main, which turns an error into one line that
says what went wrong and what to do, and bounded, an argparse type that checks a range.

Every entry point (`python -m experiments`, `python -m experiments.<name>`, `python -m facescrub`)
ends with `run_main(main)`: a missing data file, a full disk, a read-only folder or a bad value
prints one line on stderr and exits with status 1; `--debug` shows the traceback instead.
"""
import argparse
import errno
import sys
from pathlib import Path

from coursedata.paths import data_dir

DEBUG_HELP = "show the traceback of an error instead of a one-line message"
BUGS = (LookupError, TypeError, AttributeError, NameError, AssertionError, ArithmeticError, RecursionError)
WHERE_TO_WRITE = "--out, --store or TINYNET_CACHE"


def bounded(kind, low=None, high=None, above=None):
    """An argparse type: kind(text) checked to lie in [low, high] (either may be None) and above `above`.

    `--workers 0` then ends in argparse's usage message naming the flag and the range.
    """
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not (value == value and (low is None or value >= low) and (high is None or value <= high)
                and (above is None or value > above)):
            limits = [f">= {low}" if low is not None else "", f"<= {high}" if high is not None else "",
                      f"> {above}" if above is not None else ""]
            raise argparse.ArgumentTypeError(f"expected a value {' and '.join(filter(None, limits))}, got {text}")
        return value
    return parse


def explain(error: BaseException) -> str:
    """One line for an error: what went wrong, and for files, what to do about it. Errors that are
    more likely a bug than bad input (KeyError, TypeError, ...) keep their type name."""
    if isinstance(error, OSError) and error.errno is not None:
        path = f" {error.filename}" if error.filename else ""
        if error.errno == errno.ENOSPC:
            return (f"no space left on the device writing{path or ' a file'}: free some space or write elsewhere "
                    f"({WHERE_TO_WRITE}); files are written whole or not at all, none was left half-written")
        if error.errno == errno.EROFS:
            return f"cannot write{path or ' a file'} ({error.strerror}): choose a writable folder ({WHERE_TO_WRITE})"
        if error.errno in (errno.EACCES, errno.EPERM):
            return (f"no permission for{path or ' a file'} ({error.strerror}): fix its permissions or choose "
                    f"another folder ({WHERE_TO_WRITE})")
        if error.errno == errno.ENOENT:
            return f"missing{path or ' a file'}: {where_to_get(error.filename)}"
        return f"{error.strerror}:{path or ' (no file named)'}"
    message = (str(error) or type(error).__name__).splitlines()[0]
    return f"{type(error).__name__}: {message}" if isinstance(error, BUGS) else message


def where_to_get(filename) -> str:
    """How to get a missing file: course data comes from the data folder, anything else is a path to check."""
    data = data_dir()
    if filename and Path(filename).resolve().is_relative_to(data.resolve()):
        return (f"the course data folder is {data}{'' if data.exists() else ' (it does not exist)'}; set "
                f"TINYNET_DATA to the folder that holds mnist/, olivetti/ and facescrub/ (see its README.md)")
    return "check the path, or create it with the command that writes it"


def run_main(main, argv=None):
    """main(argv) (argv: the command line's arguments); an Exception ends the process with
    explain(error) on stderr and exit status 1, unless `--debug` is among the arguments
    (then it propagates with its traceback). Ctrl-C ends with one line and status 130."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return main(argv)
    except KeyboardInterrupt:
        if "--debug" in argv:
            raise
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as error:
        if "--debug" in argv:
            raise
        sys.exit(f"error: {explain(error)} (--debug shows the traceback)")
