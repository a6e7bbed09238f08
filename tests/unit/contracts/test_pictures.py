"""contracts.pictures: where uploads go and where each rendition is written."""

from __future__ import annotations

import pytest

from contracts.pictures import RENDITIONS, object_key_of_event, rendition_key


def test_each_size_of_an_upload_has_its_own_key_under_pictures():
    keys = {rendition_key("uploads/SKU-TEA-001/front.png", size) for size in RENDITIONS}
    assert keys == {f"pictures/SKU-TEA-001/front/{size}.jpg" for size in RENDITIONS}
    assert rendition_key("uploads/SKU-1/no-extension", "card") == "pictures/SKU-1/no-extension/card.jpg"
    assert rendition_key("uploads/SKU-1/v1.2/a.b.png", "card") == "pictures/SKU-1/v1.2/a.b/card.jpg"


@pytest.mark.parametrize("key", ["incoming/a.png", "uploads/", "uploads/SKU-1/", "pictures/a.png"])
def test_only_objects_under_uploads_are_pictures_to_render(key):
    with pytest.raises(ValueError):
        rendition_key(key, "card")


def test_an_unknown_size_is_refused():
    with pytest.raises(ValueError, match="poster"):
        rendition_key("uploads/a.png", "poster")


def test_event_keys_are_url_decoded_as_s3_encodes_them():
    assert object_key_of_event("uploads/SKU-1/green+tea%C3%A9.png") == "uploads/SKU-1/green teaé.png"
