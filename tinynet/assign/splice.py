"""Take a task's functions, and nothing else, out of a student's submission; put them into a copy of
the instructor's tree.

A submission is a folder laid out like the student copy. Only the files a task strips are read,
as text and parsed (never imported here): a path through a symlink, a file that is not a regular
file or one over MAX_SOURCE_BYTES is refused. From each, only the stripped functions' source is
taken (decorators, signature and body, by the AST) and it replaces the same function in the copy.

The files the copy leaves as they are get their bytecode (tinynet.assign.bytecode); a file the copy
rewrites (a task's functions spliced in or stubbed out) gets none, and compiles from its source in
the child.
"""
import os
import shutil
import stat
import textwrap
from pathlib import Path

from .bytecode import bytecode_path, package_bytecode
from .stubs import function_nodes, parse, strip_tasks

MAX_SOURCE_BYTES = 1 << 20


class SubmissionProblem(Exception):
    """Why a task's functions could not be taken from a submission (one line, shown in the score table)."""


def read_source(submission: Path, relative: str) -> str:
    """The text of submission/relative, read without following a symlink anywhere below submission."""
    parts = Path(relative).parts
    if Path(relative).is_absolute() or ".." in parts:
        raise ValueError(f"a task names {relative}: paths in a task list are relative and stay inside the tree")
    fd = os.open(submission, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for k, part in enumerate(parts):
            last = k == len(parts) - 1  # O_NONBLOCK: opening a FIFO must not wait for a writer
            try:
                child = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | (os.O_NONBLOCK if last else os.O_DIRECTORY),
                                dir_fd=fd)
            except FileNotFoundError:
                raise SubmissionProblem(f"{relative} is missing from the submission") from None
            except OSError:
                raise SubmissionProblem(f"{relative} is not a plain file of the submission (a symlink?)") from None
            os.close(fd)
            fd = child
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SubmissionProblem(f"{relative} is not a regular file")
        if info.st_size > MAX_SOURCE_BYTES:
            raise SubmissionProblem(f"{relative} is {info.st_size} bytes, over the {MAX_SOURCE_BYTES} a source "
                                    "may have")
        with os.fdopen(os.dup(fd), "rb") as file:
            data = file.read(MAX_SOURCE_BYTES + 1)
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SubmissionProblem(f"{relative} is not UTF-8 text (byte {error.start})") from None


def _definition_lines(node) -> tuple:
    """(first, last) 1-based lines of a function definition, decorators included."""
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return first, node.end_lineno


def student_functions(submission: Path, relative: str, names) -> dict:
    """{qualified name: (source of its definition, its indentation)} for names in the submission's file."""
    source = read_source(submission, relative)
    try:
        tree = parse(source, filename=relative)
    except SyntaxError as error:
        if error.lineno is None:  # a null byte
            raise SubmissionProblem(f"{relative} cannot be parsed: {error.msg}") from None
        raise SubmissionProblem(f"SyntaxError at {relative}:{error.lineno}: {error.msg}") from None
    except (ValueError, RecursionError, MemoryError) as error:  # nesting too deep for the parser
        raise SubmissionProblem(f"{relative} cannot be parsed: {type(error).__name__}") from None
    nodes = function_nodes(tree)
    missing = [name for name in names if name not in nodes]
    if missing:
        raise SubmissionProblem(f"{relative} has no function {', '.join(missing)}")
    lines = source.splitlines(keepends=True)
    found = {}
    for name in names:
        first, last = _definition_lines(nodes[name])
        found[name] = ("".join(lines[first - 1:last]), nodes[name].col_offset)
    return found


def splice(source: str, functions: dict) -> str:
    """source with each function named in functions replaced by the given (definition, indentation),
    moved to the indentation of the function it replaces if that differs."""
    nodes = function_nodes(parse(source))
    lines = source.splitlines(keepends=True)
    for name in sorted(functions, key=lambda n: nodes[n].lineno, reverse=True):
        first, last = _definition_lines(nodes[name])
        definition, column = functions[name]
        if column != nodes[name].col_offset:
            definition = textwrap.indent(textwrap.dedent(definition), " " * nodes[name].col_offset, lambda line: True)
        lines[first - 1:last] = [definition if definition.endswith("\n") else definition + "\n"]
    return "".join(lines)


def grading_tree(instructor_package: Path, submission: Path, strip, out: Path, stubs=()) -> Path:
    """Copy the instructor's package to out/<its name> (without hidden cases), replace the functions
    strip names ("tinynet/ops/elementwise.py:Mul.backward") by the submission's, and the functions
    of stubs ((target, message) pairs: the other tasks') by stubs raising NotImplementedError(message),
    so that the tree holds no solution; every file left as it was gets its .pyc (package_bytecode),
    no rewritten one. Returns out.

    Raises SubmissionProblem when the submission lacks a file or function, or does not parse.
    """
    shutil.copytree(instructor_package, out / instructor_package.name,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.hidden.toml"))
    rewritten = _by_file([(target, None) for target in strip] + list(stubs))
    for file, targets in rewritten.items():
        path = out / file
        if not path.is_file():
            raise ValueError(f"a task strips {file}, which is not in {instructor_package}")
        source = strip_tasks(path.read_text(), [(name, message) for name, message in targets if message is not None])
        mine = [name for name, message in targets if message is None]
        path.write_text(splice(source, student_functions(submission, file, mine)) if mine else source)
    changed = {os.path.normpath(file) for file in rewritten}  # the tree has no symlinks (copytree copies files)
    for file, pyc in package_bytecode(instructor_package).items():
        if file not in changed:
            path = bytecode_path(out / file)
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(pyc)
    return out


def _by_file(targets) -> dict:
    """{file: [(qualified name, value)]} of [("file.py:Name.method", value)]."""
    found = {}
    for target, value in targets:
        file, _, name = target.partition(":")
        found.setdefault(file, []).append((name, value))
    return found
