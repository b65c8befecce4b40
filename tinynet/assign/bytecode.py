"""Bytecode for the files a grading tree copies unchanged: each grading child runs with -B on a fresh
copy of the instructor's package, and would otherwise compile every module it imports from its
source (most of a child's time in tinynet's import; issue 30).

The .pyc files are compiled by the grader's own interpreter (the children's), once per process, and
hold their source's hash, against which Python checks them at import (not the source's mtime and
size): a .pyc whose source has changed since is not used.
"""
import py_compile
import sys
import tempfile
from pathlib import Path

from .stubs import parsing

_BYTECODE = {}  # {package: package_bytecode(package)}, filled under stubs.parsing


def package_bytecode(package: Path) -> dict:
    """{source path relative to package's parent ("tinynet/ops/conv.py"): its .pyc's bytes}, compiled once per
    process by this interpreter (the children's) without optimization, naming its source by that relative path;
    checked against its source's hash. A file that does not compile gets none. Compiled under `parsing` (the
    grader's threads parse too, and compile builds an AST)."""
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
