"""What a file attached to a chat message is, read from its bytes (never from the name or the
type the browser claims), and how the model is given it.

- Images (PNG, JPEG, GIF, WebP), checked by Pillow: sent to the model as images; a copy
  turned upright and brought within what every provider takes is made for it when needed.
- PDFs (their text read by pypdf), Word documents (.docx, by python-docx), Excel workbooks
  (.xlsx, by openpyxl), PowerPoint presentations (.pptx, by python-pptx) and text files
  (UTF-8: plain text, Markdown, CSV, JSON, source code…): the model is given their text,
  after the message's own.

Anything else, or a file that cannot be read as what it says it is, is refused with a message
that says why; nothing is kept of it.
"""

from __future__ import annotations

import base64
import datetime
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
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
# What the model is sent of an image at most: its long side in pixels (OpenAI scales a
# larger one down to this anyway, Anthropic to 1568), and its bytes (Anthropic refuses an
# image over 5 MB, counted in base64: 3.75 MB before).
MODEL_IMAGE_SIDE = 2048
MODEL_IMAGE_BYTES = 3_750_000
ORIENTATION_TAG = 0x0112
# An Office document (Word, Excel, PowerPoint) whose parts unpack to more than this is refused.
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
    if data.startswith(b"PK\x03\x04"):
        office = _office_kind(data)
        if office is not None:
            media_type, read_text = office
            return Read("document", media_type, read_text(data))
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
                    "Word, Excel and PowerPoint documents and text files can."
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


def _office_kind(data: bytes):
    """(media type, text reader) of an Office document (a zip holding the part that names
    it), else None."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except zipfile.BadZipFile:
        return None
    for part, media_type, read_text in (
        ("word/document.xml", DOCX, _docx_text),
        ("xl/workbook.xml", XLSX, _xlsx_text),
        ("ppt/presentation.xml", PPTX, _pptx_text),
    ):
        if part in names:
            return media_type, read_text
    return None


def _office_text(data: bytes, what: str, read_lines) -> str:
    """The text `read_lines(data)` reads of an Office document, or AttachmentRefused: a
    damaged one (or one that unpacks to more than MAX_UNPACKED_BYTES), or one without text.
    `what` names it in the messages."""
    damaged = AttachmentRefused(DAMAGED[what])
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
        if unpacked > MAX_UNPACKED_BYTES:  # a zip bomb, or a document no model reads whole
            raise damaged
        lines = read_lines(data)
    except AttachmentRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - the readers and lxml raise many kinds
        logger.info("chat attachment: unreadable %s (%s)", what, exc)
        raise damaged from None
    text = "\n".join(lines).strip()
    if not text:
        raise AttachmentRefused(EMPTY[what])
    return text


DAMAGED = {
    "docx": gettext_noop("The Word document is damaged and cannot be read."),
    "xlsx": gettext_noop("The Excel workbook is damaged and cannot be read."),
    "pptx": gettext_noop("The PowerPoint presentation is damaged and cannot be read."),
}
EMPTY = {
    "docx": gettext_noop("The Word document has no text to read."),
    "xlsx": gettext_noop("The Excel workbook has no values to read."),
    "pptx": gettext_noop("The PowerPoint presentation has no text to read."),
}


def _docx_text(data: bytes) -> str:
    """Paragraphs and tables (a row a line, its cells between " | "), in the document's order."""

    def lines(data: bytes) -> list[str]:
        from docx import Document
        from docx.table import Table

        out = []
        for block in Document(io.BytesIO(data)).iter_inner_content():
            if isinstance(block, Table):
                out += [" | ".join(cell.text for cell in row.cells) for row in block.rows]
            else:
                out.append(block.text)
        return out

    return _office_text(data, "docx", lines)


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime):  # a date is a datetime at midnight here
        return value.date().isoformat() if value.time() == datetime.time() else str(value)
    return str(value)


def _xlsx_text(data: bytes) -> str:
    """Each sheet under its name ("## Sheet: …"), a row a line, its cells between " | " (the
    values last saved, not the formulas; empty rows and the empty cells that end a row left
    out)."""

    def lines(data: bytes) -> list[str]:
        from openpyxl import load_workbook

        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        out, size = [], 0
        try:
            for sheet in workbook.worksheets:
                rows = []
                for row in sheet.iter_rows(values_only=True):
                    cells = [_cell_text(value) for value in row]
                    while cells and not cells[-1].strip():
                        cells.pop()
                    if cells:
                        rows.append(" | ".join(cells))
                        size += len(rows[-1]) + 1
                    if size > MAX_TEXT_CHARS:  # cut there anyway (prompt_text): read no more
                        break
                if rows:
                    out += [f"## Sheet: {sheet.title}", *rows, ""]
                if size > MAX_TEXT_CHARS:
                    break
        finally:
            workbook.close()
        return out

    return _office_text(data, "xlsx", lines)


def _pptx_text(data: bytes) -> str:
    """Each slide ("## Slide N"), the text of its shapes and tables (a row a line, its cells
    between " | ") in the slide's order, then its speaker notes."""

    def shape_lines(shape) -> list[str]:
        if getattr(shape, "has_table", False) and shape.has_table:
            return [" | ".join(cell.text for cell in row.cells) for row in shape.table.rows]
        if getattr(shape, "shapes", None) is not None:  # a group
            return [line for inner in shape.shapes for line in shape_lines(inner)]
        if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            return [shape.text_frame.text]
        return []

    def lines(data: bytes) -> list[str]:
        from pptx import Presentation

        out = []
        for number, slide in enumerate(Presentation(io.BytesIO(data)).slides, 1):
            said = [line for shape in slide.shapes for line in shape_lines(shape) if line.strip()]
            if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
                notes = slide.notes_slide.notes_text_frame.text.strip()
                if notes:
                    said.append(f"Notes: {notes}")
            if said:
                out += [f"## Slide {number}", *said, ""]
        return out

    return _office_text(data, "pptx", lines)


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
