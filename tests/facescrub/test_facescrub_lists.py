"""Parsing the URL lists: every defect is counted by reason, unsafe URLs are refused, nothing crashes."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import require_data
from facescrub.lists import ACTORS, BadLine, StreamedList, check_url, parse_line, read_lists, shas_per_url

SHA = "ab" * 32
GOOD = f"Peri Gilpin\t1\t2\thttp://example.com/a.jpg\t10,20,110,120\t{SHA}\n"
LINES = [
    "name\timage_id\tface_id\turl\tbbox\tsha256\n",                                  # header
    GOOD,
    GOOD,                                                                             # duplicate
    f"Peri Gilpin\t3\t4\thttps://example.com/noextension\t0,0,5,5\t{SHA.upper()}\n",  # kept: https, upper-case hash
    f"Peri Gilpin\t5\t6\tfile:///etc/passwd\t0,0,5,5\t{SHA}\n",                       # bad_url
    f"Peri Gilpin\t7\t8\tftp://example.com/a.jpg\t0,0,5,5\t{SHA}\n",                  # bad_url
    f"Peri Gilpin\t9\t10\thttp://example.com/b.jpg\t0,0,5\t{SHA}\n",                  # bad_bbox: 3 numbers
    f"Peri Gilpin\t11\t12\thttp://example.com/c.jpg\t5,5,1,1\t{SHA}\n",               # bad_bbox: x2 < x1
    f"Peri Gilpin\t13\t14\thttp://example.com/d.jpg\ta,b,c,d\t{SHA}\n",               # bad_bbox: not numbers
    "Peri Gilpin\t15\t16\thttp://example.com/e.jpg\t0,0,5,5\tnothex\n",              # bad_sha256
    "Peri Gilpin\t17\t18\n",                                                          # wrong_field_count
    "\n",                                                                             # blank: ignored
    f"Alec Baldwin\t19\t20\tfile:///etc/shadow\t0,0,5,5\t{SHA}\n",                    # someone else: not counted
    "Peri Gilpin\t21\t22\thttp://www.example.com/wp-content/uploads/20",             # cut off mid-URL
]


def test_every_defect_is_counted_by_reason(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("".join(LINES))
    report = read_lists([path], actors=["Peri Gilpin"])
    assert [(face.image_id, face.url, face.bbox, face.sha256) for face in report.faces] == [
        ("1", "http://example.com/a.jpg", (10, 20, 110, 120), SHA),
        ("3", "https://example.com/noextension", (0, 0, 5, 5), SHA)]
    assert report.skipped == {"header": 1, "duplicate": 1, "bad_url": 2, "bad_bbox": 3, "bad_sha256": 1,
                              "wrong_field_count": 1, "truncated": 1, "blank": 1, "not_asked": 1}
    assert report.lines == len(LINES) == len(report.faces) + sum(report.skipped.values())


def assert_streamed_as_read(paths, actors):
    """StreamedList gives what read_lists gives (twice over), and `shared` holds every URL on more than one face."""
    report, streamed = read_lists(paths, actors), StreamedList(paths, actors)
    for _ in range(2):
        assert list(streamed) == report.faces and len(streamed) == len(report.faces)
        assert (streamed.lines, streamed.skipped) == (report.lines, report.skipped)
    many = {url: shas for url, shas in shas_per_url(report.faces).items()
            if sum(face.url == url for face in report.faces) > 1}
    assert many.items() <= streamed.shared.items()


def test_a_streamed_list_gives_the_same_faces_and_counts(tmp_path):
    path = tmp_path / "list.txt"
    shared_url = GOOD.replace("\t1\t2\t", "\t1\t9\t").replace("10,20", "11,20")  # another face of the same photo
    path.write_text("".join(LINES) + shared_url + GOOD.replace("Peri Gilpin", "Angie Harmon"))
    for actors in (None, ["Peri Gilpin"], ACTORS):
        assert_streamed_as_read([path, path], actors)
    assert set(StreamedList([path], None).shared) == {"http://example.com/a.jpg"}


def test_a_byte_order_mark_does_not_cost_the_first_line(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode() + LINES[3].encode())
    report = read_lists([path], actors=["Peri Gilpin"])
    assert [face.image_id for face in report.faces] == ["1", "3"] and report.skipped == {} and report.lines == 2


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x7f", "\x0c", "\x1c", "\x85", "\u2028", "\u200b",
                                       "\ufffd"])
def test_a_control_character_in_a_url_makes_it_a_bad_url_not_two_lines(tmp_path, character):
    path = tmp_path / "list.txt"
    path.write_text(GOOD.replace("a.jpg", f"a{character}.jpg") + GOOD.replace("\t1\t", "\t3\t"), encoding="utf-8")
    report = read_lists([path], actors=["Peri Gilpin"])
    assert [face.image_id for face in report.faces] == ["3"] and report.skipped == {"bad_url": 1}


def test_bytes_that_are_not_utf8_make_a_bad_url(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(GOOD.replace("a.jpg", "a\udcff.jpg").encode("utf-8", "surrogateescape"))
    assert read_lists([path], actors=None).skipped == {"bad_url": 1}


@given(st.lists(st.text(), max_size=20))
def test_every_line_is_a_face_or_counted(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("list") / "list.txt"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    for actors in (None, ["Peri Gilpin"]):
        report = read_lists([path], actors=actors)
        assert report.lines == len(report.faces) + sum(report.skipped.values())
        assert_streamed_as_read([path], actors)


def test_all_actors_counts_every_bad_line(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("".join(LINES))
    assert read_lists([path], actors=None).skipped["bad_url"] == 3
    assert read_lists([path], actors=None).lines == len(LINES)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.jpg", "javascript:alert(1)", "/etc/passwd",
                                 "http:///etc/passwd", "gopher://example.com/", "http://exa mple.com/a.jpg",
                                 "http://[::1/a.jpg", "data:image/jpeg;base64,AAAA", "", "http://example.com/a\x00.jpg",
                                 "http://exa\x00mple.com/", "http://example.com/\x1b[31m.jpg"])
def test_non_http_urls_are_refused(url):
    with pytest.raises(BadLine, match="bad_url"):
        check_url(url)
    with pytest.raises(BadLine, match="bad_url"):
        parse_line(f"Peri Gilpin\t1\t2\t{url}\t0,0,5,5\t{SHA}")


@pytest.mark.parametrize("url", ["http://example.com/a.jpg", "https://example.com:8443/a?b=c", "HTTP://EXAMPLE.COM/x"])
def test_http_and_https_urls_are_accepted(url):
    assert check_url(url) == url


@given(st.text())
def test_any_line_gives_a_face_with_an_http_url_or_a_reason(line):
    try:
        face = parse_line(line)
    except BadLine as reason:
        assert str(reason) in {"header", "wrong_field_count", "bad_url", "bad_bbox", "bad_sha256"}
    else:
        assert check_url(face.url) and face.bbox[0] < face.bbox[2] and face.bbox[1] < face.bbox[3]


def test_the_course_lists():
    require_data("facescrub/subset_actors.txt")
    report = read_lists()
    assert {face.actor for face in report.faces} == set(ACTORS)
    assert len(report.faces) == 1381 and report.skipped == {"truncated": 1, "not_asked": 1723}
    assert report.lines == 3105
    assert len({face.url for face in report.faces}) == 1371
    assert_streamed_as_read(None, ACTORS)
