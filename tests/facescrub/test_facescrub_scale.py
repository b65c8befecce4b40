"""The scale script (scale_run.py) on a small list: every line served once, downloaded, stored and cropped.

The 100,000-line run and its numbers (peak memory, URLs per second) are in the script's docstring
and the issue's notes; here only that the machinery it measures keeps working.
"""
from PIL import Image

from scale_run import SIDE, bmp, run


def test_generated_images_are_distinct_decodable_bmps(tmp_path):
    path = tmp_path / "a.bmp"
    path.write_bytes(bmp(70_000))
    assert Image.open(path).size == (SIDE, SIDE) and len({bmp(i) for i in range(300)}) == 300


def test_a_generated_list_is_downloaded_and_prepared_line_by_line(tmp_path):
    result = run(lines=300, workers=4, size=8, folder=tmp_path)
    assert result["requests"] == result["stored"] == 300
    assert result["download"]["exit"] == 0
    assert "list lines: 300 read = 300 faces + 0 skipped" in result["download"]["out"]
    total = result["prepare"]["out"].splitlines()[-1].split()
    assert result["prepare"]["exit"] == 0 and sum(int(n) for n in total[2::2]) == 300
    assert not list(tmp_path.iterdir())
