"""Parsing the FaceScrub URL lists, defensively: every skipped line is counted by reason.

A line is tab-separated: name, image_id, face_id, url, "x1,y1,x2,y2", sha256. Lists found in
the wild have header lines, duplicate lines, URLs without a file extension, and a last line
cut off mid-URL; none of these stops the parse, each is counted in ListReport.skipped.
"""
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tinynet.paths import data_dir

ACTORS = ("Gerard Butler", "Daniel Radcliffe", "Michael Vartan", "Lorraine Bracco", "Peri Gilpin", "Angie Harmon")
LIST_FILES = ("subset_actors.txt", "subset_actresses.txt")
HEADER_FIRST_FIELD = "name"
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Face:
    """One list line: a face of `actor` inside bbox (x1, y1, x2, y2) of the image at `url`."""

    actor: str
    image_id: str
    face_id: str
    url: str
    bbox: tuple
    sha256: str


@dataclass
class ListReport:
    """The faces read (list order, duplicates removed) and how many lines were skipped per reason."""

    faces: list = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)


class BadLine(ValueError):
    """A list line that cannot be used; str(error) is the reason."""


def check_url(url: str) -> str:
    """url itself if it is an absolute http(s) URL with a host; BadLine('bad_url') otherwise.

    Anything else (file:///etc/passwd, ftp://, javascript:, a relative path, whitespace or a
    control character such as NUL anywhere in it) is refused here, before any request is made.
    """
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        raise BadLine("bad_url") from None
    if parts.scheme not in ("http", "https") or not hostname or any(c.isspace() or not c.isprintable() for c in url):
        raise BadLine("bad_url")
    return url


def parse_bbox(text: str) -> tuple:
    """(x1, y1, x2, y2) integers with x1 < x2 and y1 < y2 from "x1,y1,x2,y2"; BadLine('bad_bbox') otherwise.

    Coordinates outside the image are allowed: prepare clips the box to the image.
    """
    try:
        bbox = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise BadLine("bad_bbox") from None
    if len(bbox) != 4 or bbox[2] <= bbox[0] or bbox[3] <= bbox[1]:
        raise BadLine("bad_bbox")
    return bbox


def parse_line(line: str) -> Face:
    """A Face from one list line (without its newline), or BadLine with the reason it was skipped."""
    fields = line.split("\t")
    if fields[0].strip().lower() == HEADER_FIRST_FIELD:
        raise BadLine("header")
    if len(fields) != 6:
        raise BadLine("wrong_field_count")
    actor, image_id, face_id, url, bbox_text, sha256 = (f.strip() for f in fields)
    check_url(url)
    bbox = parse_bbox(bbox_text)
    if not SHA256.fullmatch(sha256.lower()):
        raise BadLine("bad_sha256")
    return Face(actor, image_id, face_id, url, bbox, sha256.lower())


def read_lists(paths=None, actors=ACTORS) -> ListReport:
    """Faces of `actors` (None: everyone) from the list files (default: the course's two lists).

    Skipped lines are counted by reason: header, duplicate, wrong_field_count, bad_url,
    bad_bbox, bad_sha256, and truncated (an unusable last line without its newline: the
    file was cut off). A malformed line counts only if its first field is one of `actors`
    (or a header), so the report is about the people asked for.
    """
    paths = paths or [data_dir() / "facescrub" / name for name in LIST_FILES]
    report, seen = ListReport(), set()
    for path in paths:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
        for number, raw in enumerate(lines, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            try:
                face = parse_line(line)
            except BadLine as reason:
                wanted = actors is None or line.split("\t")[0].strip() in actors or str(reason) == "header"
                cut_off = number == len(lines) and line == raw and str(reason) != "header"
                if wanted:
                    report.skipped["truncated" if cut_off else str(reason)] += 1
                continue
            if actors is not None and face.actor not in actors:
                continue
            if face in seen:
                report.skipped["duplicate"] += 1
                continue
            seen.add(face)
            report.faces.append(face)
    return report
