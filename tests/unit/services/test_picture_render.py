"""services.pictures.render: every storefront size from one upload, and a clear error for a broken file."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from contracts.pictures import RENDITIONS
from services.pictures.render import UnreadablePicture, render


def picture(width: int, height: int, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), (200, 30, 60) if mode == "RGB" else (200, 30, 60, 128)).save(out, fmt)
    return out.getvalue()


def noisy(width: int, height: int) -> bytes:
    """A picture that compresses badly, so that cutting it short really truncates its data."""
    out = io.BytesIO()
    Image.effect_noise((width, height), 64).convert("RGB").save(out, "PNG")
    return out.getvalue()


def test_every_size_keeps_the_aspect_ratio_within_its_longest_edge():
    rendered = render(picture(2400, 1200))
    assert set(rendered) == set(RENDITIONS)
    for size, edge in RENDITIONS.items():
        with Image.open(io.BytesIO(rendered[size])) as image:
            assert image.format == "JPEG"
            assert image.size == (edge, edge // 2), size


def test_a_small_picture_is_never_upscaled():
    rendered = render(picture(300, 200))
    with Image.open(io.BytesIO(rendered["detail"])) as detail:
        assert detail.size == (300, 200)
    with Image.open(io.BytesIO(rendered["thumbnail"])) as thumbnail:
        assert thumbnail.size == (160, 107)


def test_transparent_pictures_render_as_jpeg():
    rendered = render(picture(500, 500, mode="RGBA"), {"card": 480})
    with Image.open(io.BytesIO(rendered["card"])) as card:
        assert card.mode == "RGB" and card.size == (480, 480)


@pytest.mark.parametrize(
    "data",
    [b"", b"this is not a picture", noisy(800, 600)[:5000], b"\x89PNG\r\n\x1a\n" + b"\x00" * 64],
    ids=["empty", "text", "truncated", "png-header-only"],
)
def test_a_corrupt_upload_is_an_unreadable_picture(data):
    with pytest.raises(UnreadablePicture):
        render(data)


def test_a_decompression_bomb_is_refused_before_it_is_decoded():
    out = io.BytesIO()
    Image.new("1", (8000, 6000)).save(out, "PNG")  # 48 megapixels in a few kilobytes
    assert len(out.getvalue()) < 100_000
    with pytest.raises(UnreadablePicture, match="decompression bomb"):
        render(out.getvalue())
