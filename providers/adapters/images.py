"""Splitting image URLs into the pieces protocols want (media type + base64 data)."""

from __future__ import annotations

from providers.types import ImagePart, ProviderBadRequest


def data_url_split(image: ImagePart) -> tuple[str, str] | None:
    """(media type, base64 data) of a data: URL, or None for an http(s) URL."""
    if not image.url.startswith("data:"):
        return None
    header, _sep, data = image.url.partition(",")
    if ";base64" not in header:
        raise ProviderBadRequest("Images must be base64 data URLs or https URLs.")
    media_type = header[5:].split(";", 1)[0] or image.media_type
    return media_type, data
