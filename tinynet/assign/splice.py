"""Take a task's functions, and nothing else, out of a student's submission; put them into a copy of
the instructor's tree.

A submission is a folder laid out like the student copy. Only the files a task strips are read,
as text and parsed (never imported here): a path through a symlink, a file that is not a regular
file or one over MAX_SOURCE_BYTES is refused. From each, only the stripped functions' source is
taken (decorators, signature and body, by the AST) and it replaces the same function in the copy.

The files the copy leaves as they are get their bytecode, compiled here once per process (each
child would otherwise compile every module it imports: it runs with -B on a fresh tree); a file
the copy rewrites (a task's functions spliced in or stubbed out) gets none, and compiles from its
source in the child.
"""
import os
import py_compile
import shutil
import stat
import sys
import tempfile
import textwrap
from pathlib import Path

from .stubs import function_nodes, parse, parsing, strip_tasks

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


_BYTECODE = {}  # {package: package_bytecode(package)}, filled under stubs.parsing


def package_bytecode(package: Path) -> dict:
    """{source path relative to package's parent ("tinynet/ops/conv.py"): its .pyc's bytes}, compiled once per
    process by this interpreter (the children's) without optimization, naming its source by that relative path.

    Each .pyc holds its source's hash and is checked against it at import (not against the source's mtime
    and size): a .pyc whose file has changed since is not used. A file that does not compile gets none.
    Compiled under `parsing` (the grader's threads parse too, and compile builds an AST)."""
    with parsing:
        if package not in _BYTECODE:
            _BYTECODE[package] = _compiled(package)
        return _BYTECODE[package]


def _compiled(package: Path) -> dict:
    """package_bytecode's value, compiled anew (in a folder of its own, removed after)."""
    found = {}
    with tempfile.TemporaryDirectory(prefix="tinynet-bytecode-") as folder:
        pyc = Path(folder) / "module.pyc"
        for source in sorted(package.rglob("*.py")):
            relative = source.relative_to(package.parent).as_posix()
            try:
                py_compile.compile(str(source), cfile=str(pyc), dfile=relative, doraise=True, optimize=0,
                                   invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
            except py_compile.PyCompileError:
                continue
            found[relative] = pyc.read_bytes()
    return found


def bytecode_path(source: Path) -> Path:
    """Where Python looks for source's .pyc (in its folder's __pycache__; the children set no pycache prefix)."""
    return source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"


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
