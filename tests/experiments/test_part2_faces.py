"""Part 2: why each list line does or does not give its image, and a quick run."""
import json

import numpy as np

from conftest import require_data
from experiments import part2_faces
from facescrub import Face

SHA = "a" * 64


def face(url, sha256=SHA):
    return Face("Peri Gilpin", "1", "1", url, (0, 0, 10, 10), sha256)


def test_line_outcomes_follow_the_replay():
    answers = {"http://ok": ("200", f"images/{SHA}.jpg"), "http://other": ("200", f"images/{'b' * 64}.jpg"),
               "http://junk": ("200", "junk/x.bin"), "http://moved": ("301", "junk/y.bin"),
               "http://gone": ("404", ""), "http://slow": ("TIMEOUT", ""), "http://drop": ("RESET", "")}
    outcomes = {url: part2_faces.line_outcome(face(url), answers) for url in answers}
    assert outcomes == {"http://ok": "ok", "http://other": "hash_mismatch", "http://junk": "hash_mismatch",
                        "http://moved": "redirect_hash_mismatch", "http://gone": "http_404",
                        "http://slow": "timeout", "http://drop": "connection_reset"}
    assert part2_faces.line_outcome(face("http://unknown"), answers) == "not_in_replay"


def test_alignment_of_identical_crops_is_perfect():
    crops = np.tile(np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4), (5, 1, 1))
    mean, std, correlation = part2_faces.alignment(crops)
    np.testing.assert_allclose(mean, crops[0])
    assert np.all(std < 1e-6) and np.allclose(correlation, 1)


def test_quick_run_counts_every_list_line(tmp_path):
    require_data("facescrub/images")
    part2_faces.main(["--quick", "--out", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for row in metrics["per_actor"]:
        outcomes = sum(value for key, value in row.items() if key.startswith(("lines_ok", "rejected_")))
        assert outcomes == row["list_lines"] > 0
    assert metrics["alignment"]["std_center"] < metrics["alignment"]["std_border"]
    assert {"originals.png", "boxes.png", "alignment.png", "least_typical_crops.png", "summary.md",
            "counts.json"} <= {p.name for p in tmp_path.iterdir()}
