"""Cropping: shapes and range, box clipping, any image mode, and one clear error per bad file."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from facescrub.dataset import Original, crop_all
from facescrub.prepare import MAX_PIXELS, BadImage, CropSpec, clip_box, face_region, resized_face


def crop_face(path, bbox, spec):
    """The face in bbox of the photo at path, resized to spec, as crop_all makes each of its crops."""
    return resized_face(face_region(path, bbox), spec)


def halves(width=40, height=20):
    """An RGB image: left half black, right half white."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, width // 2:] = 255
    return Image.fromarray(pixels)


def png_claiming(path, width, height):
    """A tiny PNG whose header claims width x height pixels: a decompression bomb as Pillow sees it."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)             # IHDR width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # IHDR checksum over type + data
    path.write_bytes(bytes(data))
    return path


def truncated_jpeg(path):
    """The first half of a noisy 200x200 JPEG."""
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


@pytest.mark.parametrize("spec, shape", [(CropSpec(32), (32, 32)), (CropSpec(64, color=True), (64, 64, 3)),
                                         (CropSpec(227, color=True), (227, 227, 3))])
def test_crops_have_the_asked_shape_and_range(tmp_path, spec, shape):
    path = tmp_path / "ramp.jpg"
    ramp = np.repeat(np.linspace(0, 255, 120).astype(np.uint8)[None, :, None], 90, axis=0).repeat(3, axis=2)
    Image.fromarray(ramp).save(path)
    face = crop_face(path, (0, 0, 120, 90), spec)
    assert face.shape == shape and face.dtype == np.float32
    assert 0 <= face.min() < 0.2 and 0.8 < face.max() <= 1


def test_known_values_of_a_uniform_image(tmp_path):
    path = tmp_path / "uniform.png"
    Image.new("RGB", (50, 40), (200, 100, 50)).save(path)
    color = crop_face(path, (0, 0, 30, 30), CropSpec(16, color=True))
    np.testing.assert_allclose(color, np.full((16, 16, 3), [200, 100, 50]) / 255, atol=1e-6)
    np.testing.assert_allclose(crop_face(path, (0, 0, 30, 30), CropSpec(16)), np.full((16, 16), 124 / 255), atol=1e-6)


def test_the_crop_is_taken_from_the_box(tmp_path):
    path = tmp_path / "halves.png"
    halves().save(path)
    assert crop_face(path, (0, 0, 20, 20), CropSpec(8)).max() == 0
    assert crop_face(path, (20, 0, 40, 20), CropSpec(8)).min() == 1


def test_boxes_exceeding_the_image_are_clipped(tmp_path):
    path = tmp_path / "halves.png"
    halves().save(path)
    assert clip_box((-10, -5, 100, 15), 40, 20) == (0, 0, 40, 15)
    np.testing.assert_array_equal(crop_face(path, (25, -30, 90, 60), CropSpec(8)), np.ones((8, 8), np.float32))
    whole = crop_face(path, (0, 0, 40, 20), CropSpec(8))
    np.testing.assert_array_equal(crop_face(path, (-10, -10, 50, 30), CropSpec(8)), whole)
    with pytest.raises(BadImage, match="outside the 40x20 image"):
        crop_face(path, (45, 0, 60, 10), CropSpec(8))


def test_exif_orientation_is_ignored_so_the_box_stays_on_the_stored_pixels(tmp_path):
    path = tmp_path / "rotated.png"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees to display"
    halves().save(path, exif=exif)
    assert Image.open(path).getexif()[0x0112] == 6
    assert crop_face(path, (20, 0, 40, 20), CropSpec(8)).min() == 1


@pytest.mark.parametrize("mode, fmt", [("1", "PNG"), ("L", "PNG"), ("P", "PNG"), ("RGBA", "PNG"), ("LA", "PNG"),
                                       ("CMYK", "JPEG"), ("RGB", "GIF"), ("RGB", "BMP"), ("RGB", "WEBP")])
def test_any_mode_and_format_gives_gray_and_rgb_crops(tmp_path, mode, fmt):
    path = tmp_path / f"image.{fmt.lower()}"
    halves().convert(mode).save(path, fmt)
    assert crop_face(path, (20, 0, 40, 20), CropSpec(8)).min() > 0.9
    assert crop_face(path, (0, 0, 20, 20), CropSpec(8, color=True)).shape == (8, 8, 3)


@pytest.mark.parametrize("width, height", [(50_000, 50_000), (8_000, 6_000)])
def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, width, height):
    assert width * height > MAX_PIXELS
    path = png_claiming(tmp_path / "bomb.png", width, height)
    with pytest.raises(BadImage, match=f"{path}: refusing a decompression bomb"):
        crop_face(path, (0, 0, 10, 10), CropSpec())


def test_a_truncated_jpeg_is_a_clear_error(tmp_path):
    path = truncated_jpeg(tmp_path / "cut.jpg")
    with pytest.raises(BadImage, match=f"{path}: not a readable image .*truncated"):
        crop_face(path, (0, 0, 100, 100), CropSpec())


def test_bad_files_are_reported_one_by_one_and_the_others_kept(tmp_path):
    good = tmp_path / "good.png"
    halves().save(good)
    (tmp_path / "html.jpg").write_bytes(b"<html>404 not found</html>")
    photos = [Original(good, (0, 0, 20, 20), "A", "1"), Original(png_claiming(tmp_path / "bomb.png", 50_000, 50_000),
              (0, 0, 9, 9), "A", "2"), Original(truncated_jpeg(tmp_path / "cut.jpg"), (0, 0, 9, 9), "A", "3"),
              Original(tmp_path / "html.jpg", (0, 0, 9, 9), "A", "4"), Original(good, (20, 0, 40, 20), "A", "1")]
    [images], kept, unreadable = crop_all(photos, [CropSpec(8)], progress=False)
    assert images.shape == (2, 8, 8) and kept.tolist() == [0, 4] and images[0].max() == 0 and images[1].min() == 1
    assert sorted(unreadable) == sorted(str(tmp_path / name) for name in ("bomb.png", "cut.jpg", "html.jpg"))
    assert "decompression bomb" in unreadable[str(tmp_path / "bomb.png")]
    assert "truncated" in unreadable[str(tmp_path / "cut.jpg")]
