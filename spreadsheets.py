"""CSV files that a spreadsheet opens without running anything written in them.

Excel, LibreOffice and Google Sheets take a cell that starts with =, +, -, @, a tab or a carriage
return for a formula, so ticket subjects or e-mail addresses could run as one (=HYPERLINK(...),
+cmd|' /C calc'!A0). Following OWASP's CSV injection rule, every text cell that starts so is
written with an apostrophe in front, which spreadsheets take as "this is text". Numbers are data
however they start (-12.5): the code passes them as numbers (int, Decimal), never as text, and
they are written as they are. Every CSV the product writes goes through `writer`.
"""
import csv
from decimal import Decimal

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert(cell):
    """A text cell with an apostrophe in front if a spreadsheet would run it; anything else unchanged."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def writer(out, **dialect):
    """csv.writer(out, **dialect) whose text cells go through `inert`."""
    return InertWriter(out, **dialect)


class InertWriter:
    """What `writer` returns: writerow and writerows, as a csv.writer has."""

    def __init__(self, out, **dialect):
        self.csv = csv.writer(out, **dialect)
        # Python's csv quotes only the line terminator's characters: with "\n" a carriage return
        # inside a cell would go out bare, and a spreadsheet would start a new row there, whose
        # first cell could be a formula. A row with one is written with all its text quoted.
        self.text_quoted = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, **dialect)

    def writerow(self, row):
        cells = [inert(cell) for cell in row]
        carriage_return = any(isinstance(cell, str) and "\r" in cell for cell in cells)
        return (self.text_quoted if carriage_return else self.csv).writerow(cells)

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


class DecimalComma(Decimal):
    """A number written for Italian Excel: a decimal comma and always three decimals (the same
    file from SQLite and PostgreSQL, which keeps the column's scale)."""

    def __str__(self):
        return format(self, ".3f").replace(".", ",")
