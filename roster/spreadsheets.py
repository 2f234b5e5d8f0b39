"""Writing spreadsheets for people: formula-safe cells and small XLSX builders (openpyxl)."""

import io

import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """A text value a spreadsheet will not run as a formula (CSV/formula injection), without the control characters
    an XLSX file cannot hold (openpyxl refuses them: an imported cell may carry one)."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        if value.startswith(FORMULA_PREFIXES):
            return "'" + value
    return value


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_bytes(sheets: list[tuple[str, list[str], list[list]]]) -> bytes:
    """[(sheet title, header, rows)] → XLSX bytes, headers in bold, every cell formula-safe."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, header, rows in sheets:
        sheet = workbook.create_sheet(title)
        sheet.append([safe_cell(h) for h in header])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append([safe_cell(v) for v in row])
        for column in sheet.columns:
            for cell in column:
                cell.number_format = "@"  # stays text when edited: no 2.026E+09 student numbers
            widest = max(len(str(cell.value or "")) for cell in column[:200])
            sheet.column_dimensions[column[0].column_letter].width = min(40, max(10, widest * 2 + 2))
        sheet.freeze_panes = "A2"
        sheet.print_title_rows = "1:1"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
