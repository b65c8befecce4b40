"""The FaceScrub subset of the course: parse the URL lists, download and verify, crop, split.

Experiments call `load_faces(size, color)` for cropped faces split into train/val/test (`load_face_sets`
for several sizes at once, each photo decoded once), and
`originals()` for the uncropped photos with their face boxes. Both work offline from the
replay mirror in the data folder; `python -m facescrub download` fetches from the internet.
"""
from .dataset import FaceDataset, Split, load_face_sets, load_faces, originals
from .lists import ACTORS, Face, read_lists

__all__ = ["ACTORS", "Face", "FaceDataset", "Split", "load_face_sets", "load_faces", "originals", "read_lists"]
