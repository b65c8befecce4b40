"""Parsing the FaceScrub URL lists, defensively: every line read is a face or counted by the reason it was skipped.

A line is tab-separated: name, image_id, face_id, url, "x1,y1,x2,y2", sha256. Lists found in
the wild have header lines, duplicate lines, URLs without a file extension, and a last line
cut off mid-URL; none of these stops the parse, each is counted in ListReport.skipped. A file
may start with a UTF-8 byte order mark; lines end with \n, \r\n or \r, nothing else (a
form feed or U+2028 inside a URL makes it a bad_url, not two lines). Files are read line by
line: read_lists keeps the faces (memory proportional to them); StreamedList reads the files
again on each iteration and keeps only the faces whose URL is on several lines (and, while it
first scans the files, 8 bytes per line).
"""
import re
from array import array
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np

from coursedata.paths import data_dir

ACTORS = ("Gerard Butler", "Daniel Radcliffe", "Michael Vartan", "Lorraine Bracco", "Peri Gilpin", "Angie Harmon")
LIST_FILES = ("subset_actors.txt", "subset_actresses.txt")
HEADER_FIRST_FIELD = "name"
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
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
    """The faces read (list order, duplicates removed) and how many lines were skipped per reason.

    Every line read is accounted for: lines == len(faces) + sum(skipped.values()).
    """

    faces: list = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    lines: int = 0


class BadLine(ValueError):
    """A list line that cannot be used; str(error) is the reason."""


def check_url(url: str) -> str:
    """url itself if it is an absolute http(s) URL with a host; BadLine('bad_url') otherwise.

    Anything else (file:///etc/passwd, ftp://, javascript:, a relative path, whitespace or a
    control character such as NUL anywhere in it, or bytes that were not UTF-8) is refused here,
    before any request is made.
    """
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        raise BadLine("bad_url") from None
    if (parts.scheme not in ("http", "https") or not hostname or "\ufffd" in url
            or any(c.isspace() or not c.isprintable() for c in url)):
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
    bad_bbox, bad_sha256, truncated (an unusable last line without its newline: the file was
    cut off), blank, and not_asked (a line, well-formed or not, whose first field is not one
    of `actors`), so that every line read is accounted for.
    """
    report, seen = ListReport(), set()
    for verdict in line_verdicts(paths, actors):
        report.lines += 1
        if not isinstance(verdict, Face):
            report.skipped[verdict] += 1
        elif verdict in seen:
            report.skipped["duplicate"] += 1
        else:
            seen.add(verdict)
            report.faces.append(verdict)
    return report


def line_verdicts(paths=None, actors=ACTORS):
    """For each line of the list files, in order: its Face, or the reason it is skipped (duplicates not looked for)."""
    for path in paths or [data_dir() / "facescrub" / name for name in LIST_FILES]:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as file:
            for raw in file:
                yield line_verdict(raw.rstrip("\r\n"), raw, actors)


def line_verdict(line, raw, actors):
    """The Face on this line (without its line end; raw has it), or the reason it is skipped (see read_lists)."""
    if not line.strip():
        return "blank"
    wanted = actors is None or line.split("\t")[0].strip() in actors
    try:
        face = parse_line(line)
    except BadLine as reason:
        if str(reason) == "header":
            return "header"
        if not wanted:
            return "not_asked"
        return "truncated" if line == raw else str(reason)
    return face if wanted else "not_asked"


def listed_actors(paths=None) -> set:
    """The names on the well-formed lines of the list files."""
    return {verdict.actor for verdict in line_verdicts(paths, None) if isinstance(verdict, Face)}


def shas_per_url(faces) -> dict:
    """{url: frozenset of the SHA-256s listed with it} for the faces."""
    shas = {}
    for face in faces:
        shas.setdefault(face.url, set()).add(face.sha256)
    return {url: frozenset(group) for url, group in shas.items()}


class StreamedList:
    """The faces read_lists(paths, actors) gives, read from the files again on each iteration, never all kept.

    Built by scanning the files twice: once keeping an 8-byte hash per face line (to find the URLs
    on more than one line), once keeping the faces whose URL hash repeats. `shared` is then
    {url: SHA-256s} for those URLs only (a superset: a hash collision adds a URL); len() is the
    number of faces. Iterating yields the faces in list order and counts `lines` and `skipped`
    (as in ListReport) as it goes; they are complete when an iteration ends. A duplicate line has
    a repeated URL, so only those faces are remembered to find duplicates. The files must not
    change while this is used.
    """

    def __init__(self, paths=None, actors=ACTORS):
        self.paths, self.actors = paths, actors
        hashes = array("q", (hash(face.url) for face in self._face_lines()))
        values, counts = np.unique(np.frombuffer(hashes, dtype=np.int64), return_counts=True)
        repeated = set(values[counts > 1].tolist())
        candidates = {face for face in self._face_lines() if hash(face.url) in repeated}
        self.shared = shas_per_url(candidates)
        self.faces = len(hashes) - int(counts[counts > 1].sum()) + len(candidates)
        self.lines, self.skipped = 0, Counter()

    def _face_lines(self):
        return (verdict for verdict in line_verdicts(self.paths, self.actors) if isinstance(verdict, Face))

    def __len__(self):
        return self.faces

    def __iter__(self):
        self.lines, self.skipped, seen = 0, Counter(), set()
        for verdict in line_verdicts(self.paths, self.actors):
            self.lines += 1
            if not isinstance(verdict, Face):
                self.skipped[verdict] += 1
            elif verdict.url not in self.shared:
                yield verdict
            elif verdict in seen:
                self.skipped["duplicate"] += 1
            else:
                seen.add(verdict)
                yield verdict
