"""A benchmark run as a Markdown block, and the "Latest run" section of benchmarks/README.md that it replaces.

The section lies between two marker comments (START and END); `python -m benchmarks --update-readme` rewrites what
is between them and nothing else, so the README's tables come from one run whose command, time, machine and load
stand above them.
"""
import os
import shlex
from pathlib import Path

README = Path(__file__).with_name("README.md")
START = "<!-- latest-run: start (written by `python -m benchmarks --update-readme`; edit outside the markers) -->"
END = "<!-- latest-run: end -->"

# Environment variables that change how fast the same code runs: they belong to the command that was measured.
TIMING_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                    "NUMBA_THREADING_LAYER", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def command_line(argv):
    """The command as typed: the timing variables set in the environment, then `python -m benchmarks` and argv."""
    settings = [f"{name}={shlex.quote(os.environ[name])}" for name in TIMING_VARIABLES if name in os.environ]
    return " ".join([*settings, "python -m benchmarks", *map(shlex.quote, argv)])


def markdown_block(command, header_lines, table_lines, footer_lines):
    """The run in Markdown: its command, the header lines (machine, time, load) as a list, the table, then the
    footer lines (load after, targets missed) as a list."""
    return "\n".join([f"`{command}`", "", *(f"- {line}" for line in header_lines), "", *table_lines, "",
                      *(f"- {line}" for line in footer_lines)]) + "\n"


def section_bounds(text, where="benchmarks/README.md"):
    """(end of the START marker's line, start of the END marker's line) in text; ValueError saying what to put
    where unless each marker stands once on a line of its own, START before END."""
    lines = text.splitlines(keepends=True)
    found = {marker: [i for i, line in enumerate(lines) if line.strip() == marker] for marker in (START, END)}
    if len(found[START]) != 1 or len(found[END]) != 1 or found[START][0] > found[END][0]:
        counts = ", ".join(f"{marker!r}: {len(found[marker])} times" for marker in (START, END))
        raise ValueError(f"{where} needs the line {START!r} once, and later the line {END!r} once, around its "
                         f"'Latest run' section (found {counts}); put them back and run again")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    return offsets[found[START][0] + 1], offsets[found[END][0]]


def replace_section(text, block, where="benchmarks/README.md"):
    """text with what lies between the START and END marker lines replaced by block (the markers and everything
    outside them kept as they were); ValueError if the markers are missing, repeated or out of order."""
    start, end = section_bounds(text, where)
    return text[:start] + "\n" + block + "\n" + text[end:]
