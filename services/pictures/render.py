"""Rendering, pure: the bytes of an uploaded picture in, one JPEG per storefront size out (Pillow)."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from contracts.pictures import RENDITIONS

# A decompression bomb (a tiny file that decodes to gigapixels) is refused, not rendered: Pillow warns
# above MAX_IMAGE_PIXELS and raises DecompressionBombError above twice that, 40 megapixels.
Image.MAX_IMAGE_PIXELS = 20_000_000
JPEG_QUALITY = 85


class UnreadablePicture(ValueError):
    """The upload is not a picture Pillow can decode: retrying will not help (it ends in the DLQ)."""


def render(original: bytes, sizes: dict[str, int] = RENDITIONS) -> dict[str, bytes]:
    """size name -> JPEG bytes whose longest edge is at most that size (aspect kept, never upscaled)."""
    try:
        with Image.open(io.BytesIO(original)) as opened:
            opened.load()  # decode everything now: a truncated file fails here, not halfway through
            picture = opened.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UnreadablePicture(f"not a readable picture: {error}") from error
    rendered: dict[str, bytes] = {}
    for name, edge in sizes.items():
        copy = picture.copy()
        copy.thumbnail((edge, edge), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        copy.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
        rendered[name] = out.getvalue()
    return rendered
