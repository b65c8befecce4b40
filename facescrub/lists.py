"""Parsing the FaceScrub URL lists, defensively: every skipped line is counted by reason.

A line is tab-separated: name, image_id, face_id, url, "x1,y1,x2,y2", sha256. The course's
files have a header line, duplicate lines, URLs without a file extension, and a last line
cut off mid-URL.
"""
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tinynet.paths import data_dir

ACTORS = ("Gerard Butler", "Daniel Radcliffe", "Michael Vartan", "Lorraine Bracco", "Peri Gilpin", "Angie Harmon")
LIST_FILES = ("subset_actors.txt", "subset_actresses.txt")
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
    """The faces read, and how many lines were skipped for each reason."""

    faces: list = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)


class BadLine(ValueError):
    """A list line that cannot be used; str(error) is the reason."""


def check_url(url: str) -> str:
    """url itself if it is an absolute http(s) URL with a host; BadLine('bad_url') otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadLine("bad_url")
    return url


def parse_line(line: str) -> Face:
    """A Face from one list line, or BadLine with the reason it was skipped."""
    fields = line.rstrip("\r\n").split("\t")
    if fields[0] == "name":
        raise BadLine("header")
    if len(fields) != 6:
        raise BadLine("wrong_field_count")
    actor, image_id, face_id, url, bbox_text, sha256 = (f.strip() for f in fields)
    check_url(url)
    try:
        bbox = tuple(int(v) for v in bbox_text.split(","))
    except ValueError:
        raise BadLine("bad_bbox") from None
    if len(bbox) != 4 or bbox[2] <= bbox[0] or bbox[3] <= bbox[1] or min(bbox) < 0:
        raise BadLine("bad_bbox")
    if not SHA256.fullmatch(sha256.lower()):
        raise BadLine("bad_sha256")
    return Face(actor, image_id, face_id, url, bbox, sha256.lower())


def read_lists(paths=None, actors=ACTORS) -> ListReport:
    """Faces of `actors` (None: everyone) from the list files (default: the course's two lists)."""
    paths = paths or [data_dir() / "facescrub" / name for name in LIST_FILES]
    report, seen = ListReport(), set()
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                face = parse_line(line)
            except BadLine as reason:
                report.skipped[str(reason)] += 1
                continue
            if actors is not None and face.actor not in actors:
                continue
            if face in seen:
                report.skipped["duplicate"] += 1
                continue
            seen.add(face)
            report.faces.append(face)
    return report
