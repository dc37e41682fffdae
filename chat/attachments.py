"""What a file attached to a chat message is, read from its bytes (never from the name or the
type the browser claims), and how the model is given it.

- Images (PNG, JPEG, GIF, WebP), checked by Pillow: sent to the model as images; a copy
  turned upright and brought within what every provider takes is made for it when needed.
- PDFs (their text read by pypdf), Word documents (.docx, by python-docx) and text files
  (UTF-8: plain text, Markdown, CSV, JSON, source code…): the model is given their text,
  after the message's own.

Anything else, or a file that cannot be read as what it says it is, is refused with a message
that says why; nothing is kept of it.
"""

from __future__ import annotations

import base64
import io
import logging
import zipfile
from dataclasses import dataclass

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_noop

from aurax.phrases import phrase
from providers.types import ImagePart
from providers.types import Message as PromptMessage

logger = logging.getLogger(__name__)

# The most files one message may carry, and one user may have uploaded and not sent.
MAX_PER_MESSAGE = 10
MAX_UNSENT = 50
# Images as Pillow names their format, and the media type the providers are told.
IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# What the model is sent of an image at most: its long side in pixels (OpenAI scales a
# larger one down to this anyway, Anthropic to 1568), and its bytes (Anthropic refuses an
# image over 5 MB, counted in base64: 3.75 MB before).
MODEL_IMAGE_SIDE = 2048
MODEL_IMAGE_BYTES = 3_750_000
ORIENTATION_TAG = 0x0112
# A Word document whose parts unpack to more than this is refused.
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
# A document's text beyond this is cut (with a note saying so): no model reads more at once.
MAX_TEXT_CHARS = 1_000_000


class AttachmentRefused(Exception):
    """`message`: a message id marked for the catalog, or a phrase with values; kept as a
    phrase (aurax.phrases), said in the reader's language by `phrase_say`."""

    def __init__(self, message: str | dict):
        super().__init__(message)
        self.message = phrase(message) if isinstance(message, str) else message


def size_check(size: int) -> None:
    limit = settings.CHAT_ATTACHMENT_MAX_BYTES
    if size > limit:
        raise AttachmentRefused(
            phrase(gettext_noop("The file is larger than %(limit)s."), limit=filesizeformat(limit))
        )


@dataclass(frozen=True)
class Read:
    kind: str  # Attachment.Kind
    media_type: str
    text: str = ""
    # An image's copy for the model, when the file cannot go as it is (`image_for_model`).
    model_data: bytes | None = None
    model_media_type: str = ""


def upload_read(*, name: str, data: bytes) -> Read:
    """What `data` is, or AttachmentRefused."""
    if not data:
        raise AttachmentRefused(gettext_noop("The file is empty."))
    size_check(len(data))
    if data.startswith(b"%PDF-"):
        return Read("document", "application/pdf", _pdf_text(data))
    if data.startswith(b"PK\x03\x04") and _is_docx(data):
        return Read("document", DOCX, _docx_text(data))
    image = _image_type(data)
    if image:
        copy = _image_for_model(data)
        if copy is None:
            return Read("image", image)
        return Read("image", image, model_data=copy[0], model_media_type=copy[1])
    text = _plain_text(data)
    if text is None:
        raise AttachmentRefused(
            phrase(
                gettext_noop(
                    "“%(name)s” cannot be attached: only images (PNG, JPEG, GIF, WebP), PDFs, "
                    "Word documents and text files can."
                ),
                name=name,
            )
        )
    return Read("document", "text/plain", text)


def _image_damaged() -> AttachmentRefused:
    return AttachmentRefused(gettext_noop("The image is damaged or incomplete and cannot be read."))


def _image_type(data: bytes) -> str | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            media_type = IMAGE_TYPES.get(image.format or "")
            if media_type is None:
                return None
            image.verify()  # the whole file, not only its header
    except UnidentifiedImageError:
        return None
    except Exception:  # noqa: BLE001 - Pillow raises many kinds for a broken file
        raise _image_damaged() from None
    return media_type


def _image_for_model(data: bytes) -> tuple[bytes, str] | None:
    """A copy of the image for the model (its bytes and media type), or None when the file
    goes as it is: one turned by its EXIF orientation (as phones save photos: the model would
    see it sideways), or larger than MODEL_IMAGE_SIDE or MODEL_IMAGE_BYTES, is turned upright
    and scaled down to fit."""
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as image:
            turned = image.getexif().get(ORIENTATION_TAG, 1) != 1
            if not turned and max(image.size) <= MODEL_IMAGE_SIDE:
                if len(data) <= MODEL_IMAGE_BYTES:
                    return None
            kind = image.format
            copy = ImageOps.exif_transpose(image)
            copy.thumbnail((MODEL_IMAGE_SIDE, MODEL_IMAGE_SIDE))
            encoded = _image_encoded(copy, kind)
            if len(encoded[0]) > MODEL_IMAGE_BYTES:  # a large PNG of a photo, say
                encoded = _image_encoded(copy, "JPEG")
    except Exception:  # noqa: BLE001 - Pillow raises many kinds for a broken file
        raise _image_damaged() from None
    return encoded


def _image_encoded(image, kind: str) -> tuple[bytes, str]:
    out = io.BytesIO()
    if kind == "JPEG":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(out, format="JPEG", quality=85)
    elif kind == "WEBP":
        image.save(out, format="WEBP", quality=85)
    else:  # PNG, and a GIF's first frame
        image.save(out, format="PNG", optimize=True)
        kind = "PNG"
    return out.getvalue(), IMAGE_TYPES[kind]


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise AttachmentRefused(
                gettext_noop("The PDF is protected by a password; attach one without.")
            )
        pages = [page.extract_text() or "" for page in reader.pages]
    except AttachmentRefused:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        logger.info("chat attachment: unreadable PDF (%s)", exc)
        raise AttachmentRefused(gettext_noop("The PDF is damaged and cannot be read.")) from None
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise AttachmentRefused(
            gettext_noop(
                "The PDF has no text to read (a scan, perhaps): attach its pages as images."
            )
        )
    return text


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def _docx_text(data: bytes) -> str:
    """Paragraphs and tables (a row a line, its cells between " | "), in the document's order."""
    from docx import Document
    from docx.table import Table

    damaged = AttachmentRefused(gettext_noop("The Word document is damaged and cannot be read."))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
        if unpacked > MAX_UNPACKED_BYTES:  # a zip bomb, or a document no model reads whole
            raise damaged
        lines = []
        for block in Document(io.BytesIO(data)).iter_inner_content():
            if isinstance(block, Table):
                lines += [" | ".join(cell.text for cell in row.cells) for row in block.rows]
            else:
                lines.append(block.text)
    except AttachmentRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - python-docx and lxml raise many kinds
        logger.info("chat attachment: unreadable Word document (%s)", exc)
        raise damaged from None
    text = "\n".join(lines).strip()
    if not text:
        raise AttachmentRefused(gettext_noop("The Word document has no text to read."))
    return text


def _plain_text(data: bytes) -> str | None:
    if b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return text.replace("\r\n", "\n")


def prompt_message(*, content: str, files, image_part=None) -> PromptMessage:
    """A user message as the model is given it with its `files` (Attachment rows): their
    documents' text after its own, their images as images. `image_part(attachment)` makes an
    image's part; without it an image is only counted (a cost estimate reads no bytes)."""
    return PromptMessage(
        role="user",
        content=prompt_text(
            content=content,
            documents=[(a.name, a.text) for a in files if a.kind == "document"],
        ),
        images=tuple(
            image_part(a) if image_part else ImagePart(url="") for a in files if a.kind == "image"
        ),
    )


def prompt_text(*, content: str, documents: list[tuple[str, str]]) -> str:
    """A user message's text with its documents' after it, each between lines naming it."""
    parts = [content] if content else []
    for name, text in documents:
        if len(text) > MAX_TEXT_CHARS:
            text = text[:MAX_TEXT_CHARS] + "\n[…the rest of the file was left out]"
        quoted = name.replace('"', "'")
        parts.append(f'<file name="{quoted}">\n{text}\n</file>')
    return "\n\n".join(parts)


def data_url(*, media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"
