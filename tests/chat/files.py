"""Files to attach in tests, made here: real PNGs (by Pillow) and PDFs (written by hand)."""

import io

from PIL import Image


def png(width: int = 4, height: int = 3, color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def pdf(*pages: str) -> bytes:
    """A PDF whose pages show `pages` (ASCII) in Helvetica; no page text: one blank page."""
    pages = pages or ("",)
    count = len(pages)
    # 1 catalog, 2 pages, 3 font, then a page object and its content stream for each page.
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(count))
        + b"] /Count %d >>" % count,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(pages):
        content = b"BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text.encode("ascii") if text else b""
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R"
            b" /Resources << /Font << /F1 3 0 R >> >> >>" % (5 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def docx(*paragraphs: str, table: list[list[str]] | None = None) -> bytes:
    """A Word document with `paragraphs`, then `table` (rows of cells) when given."""
    from docx import Document

    document = Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, cells in zip(grid.rows, table, strict=True):
            for cell, text in zip(row.cells, cells, strict=True):
                cell.text = text
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def xlsx(sheets: dict[str, list[list]]) -> bytes:
    """An Excel workbook: a sheet of rows of values for each name."""
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def pptx(*slides: dict) -> bytes:
    """A PowerPoint presentation: a slide for each {"title", "bullets", "table", "notes"}
    (each optional)."""
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    for content in slides:
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        if "title" in content:
            slide.shapes.title.text = content["title"]
        body = slide.placeholders[1]
        body.text_frame.text = "\n".join(content.get("bullets", []))
        if "table" in content:
            rows = content["table"]
            shape = slide.shapes.add_table(
                len(rows), len(rows[0]), Inches(1), Inches(4), Inches(6), Inches(1)
            )
            for r, cells in enumerate(rows):
                for c, text in enumerate(cells):
                    shape.table.cell(r, c).text = text
        if "notes" in content:
            slide.notes_slide.notes_text_frame.text = content["notes"]
    out = io.BytesIO()
    presentation.save(out)
    return out.getvalue()


def jpeg(width: int, height: int, *, orientation: int = 1) -> bytes:
    """A JPEG as a phone saves it: pixels as the sensor read them, and the EXIF orientation
    that says how to turn them (6: a quarter turn clockwise)."""
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", (width, height), (20, 140, 60)).save(out, format="JPEG", exif=exif)
    return out.getvalue()


def noise_png(width: int, height: int) -> bytes:
    """A PNG that compresses badly (as photos saved as PNG do)."""
    import random

    rng = random.Random(7)
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3)).save(
        out, format="PNG"
    )
    return out.getvalue()
