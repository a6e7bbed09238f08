"""Product pictures: where staff upload an original, and the sizes the storefront shows.

A staff upload to `uploads/<sku>/<name>` of the media bucket raises an S3 event notification into the
picture-jobs queue; a worker renders every size of `RENDITIONS` into the assets bucket under
`pictures/<sku>/<name-without-extension>/<size>.jpg`. The media stack, the worker and the tests all read
these names from here.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import unquote_plus

UPLOADS_PREFIX: Final = "uploads/"  # the S3 event notification's key filter
RENDERED_PREFIX: Final = "pictures/"  # in the assets bucket
# Longest edge in pixels of each size the storefront shows (aspect ratio kept, never upscaled).
RENDITIONS: Final[dict[str, int]] = {"thumbnail": 160, "card": 480, "detail": 1200}
RENDERED_CONTENT_TYPE: Final = "image/jpeg"
# Metadata on every rendition: the upload it was rendered from (key and ETag), so a redelivered job
# finds its work done and renders nothing twice.
SOURCE_KEY_METADATA: Final = "source-key"
SOURCE_ETAG_METADATA: Final = "source-etag"


def rendition_key(upload_key: str, size: str) -> str:
    """`uploads/SKU-1/tea.png`, `card` -> `pictures/SKU-1/tea/card.jpg`."""
    if not upload_key.startswith(UPLOADS_PREFIX) or upload_key.endswith("/"):
        raise ValueError(f"{upload_key}: not an upload (expected {UPLOADS_PREFIX}<path>/<file>)")
    if size not in RENDITIONS:
        raise ValueError(f"{size}: not one of {', '.join(RENDITIONS)}")
    path = upload_key.removeprefix(UPLOADS_PREFIX)
    stem = path.rsplit(".", 1)[0] if "." in path.rsplit("/", 1)[-1] else path
    return f"{RENDERED_PREFIX}{stem}/{size}.jpg"


def object_key_of_event(encoded_key: str) -> str:
    """S3 event notifications URL-encode the object key (spaces as `+`)."""
    return unquote_plus(encoded_key)
