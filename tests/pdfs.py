"""Checks on a PDF we made: its first page's text, every font embedded (a CJK one among them), and a rendering that
draws something (pypdfium2, the PDF engine of Chromium)."""

import ctypes


def first_page_text_if_legible(content: bytes) -> str:
    """The first page's text, after asserting its fonts travel with the file and that it renders."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    first = pdfium.PdfDocument(content)[0]
    fonts = {}
    for obj in first.get_objects():
        if obj.type == raw.FPDF_PAGEOBJ_TEXT:
            font = raw.FPDFTextObj_GetFont(obj.raw)
            name = ctypes.create_string_buffer(256)
            raw.FPDFFont_GetBaseFontName(font, name, 256)
            fonts[name.value.decode()] = raw.FPDFFont_GetIsEmbedded(font)
    assert any("CJK" in name for name in fonts) and all(fonts.values()), fonts  # every font travels with the file
    image = first.render(scale=1).to_pil()
    assert image.width > 500 and len(set(image.convert("L").get_flattened_data())) > 2  # it draws something
    return first.get_textpage().get_text_range()
