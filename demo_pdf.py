"""The demo's PDFs, written with fpdf2: the documents' one-page text (minimal_pdf) and the
one-page bill of an invoice (bill_pdf).

The same input always gives the same bytes (the creation date is the document's own date, and
fpdf2 derives the file's /ID from the content), so the demo stays deterministic. The PDFs are
not compressed: a page of text is a few KB either way, and its words stay greppable in the
file (the tests read them back without a PDF reader).
"""
from datetime import date, datetime, time

import i18n
from models import format_address

DEMO_HEADER = "Sportello - dati dimostrativi"
UNDATED = date(2014, 1, 1)  # for a PDF with no date of its own: a fixed one, so the bytes are too
GREY = (110, 110, 110)


def new_pdf(title, created):
    # Imported here: the app imports the demo for its CLI, and fpdf2 (fontTools, Pillow) would
    # add a few tenths of a second to every start of the portal for nothing.
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.core_fonts_encoding = "windows-1252"  # WinAnsi, as the core fonts declare it: à, è and € print
    pdf.set_compression(False)
    pdf.set_creation_date(datetime.combine(created, time(), i18n.ROME))
    pdf.set_title(title)
    pdf.set_producer("Sportello demo")
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(False)  # one page, always
    pdf.add_page()
    return pdf


def minimal_pdf(title, lines, created=None):
    """A one-page A4 PDF with `title` and `lines` (wrapped) in Helvetica."""
    pdf = new_pdf(title, created or UNDATED)
    pdf.set_font("Helvetica", size=9)
    pdf.cell(0, 5, DEMO_HEADER, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font(size=16)
    pdf.multi_cell(0, 8, title, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font(size=11)
    for line in lines:
        if line:
            pdf.multi_cell(0, 6, line, align="L", new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.ln(6)
    return bytes(pdf.output())


# --- the bill ---------------------------------------------------------------------------------

def day(value):
    return i18n.local_date(value, "it")


def money(value):
    return i18n.money(value, "it")


def number(value, decimals=0):
    """1234 -> '1.234', as the bill prints kWh and Smc; 2.5 -> '2,50' with decimals=2."""
    group, point = i18n.number_symbols("it")
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\0").replace(".", point).replace("\0", group)


def bill_pdf(utility, customer, point, invoice, description):
    """The bill of an invoice: `utility` {name, email, phone}, `customer` and `point` (None for
    a charge of no supply point) and `invoice` as the demo's rows (dicts of the models' fields),
    `description` what is billed. Italian, one A4 page."""
    title = f"Fattura n. {invoice['number']}"
    pdf = new_pdf(title, invoice["issue_date"])
    width = pdf.epw  # the page's width inside the margins

    # The utility, and how to reach it; the invoice's number and date on the right.
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(width / 2, 9, utility["name"])
    pdf.set_font(size=14)
    pdf.cell(width / 2, 9, title, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    pdf.set_text_color(*GREY)
    contacts = [f"Servizio clienti: {utility['email']}" if utility.get("email") else "",
                f"Tel. {utility['phone']}" if utility.get("phone") else ""]
    pdf.cell(width / 2, 5, "   ".join(c for c in contacts if c) or "Servizio clienti")
    pdf.cell(width / 2, 5, f"emessa il {day(invoice['issue_date'])}", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0)
    pdf.ln(4)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
    pdf.ln(6)

    # Who is billed, and for which supply point.
    customer_lines = [
        customer["name"],
        f"Codice cliente {customer['code']}",
        format_address(customer["address"], customer["postcode"], customer["city"], customer["province"]),
        f"Codice fiscale {customer['tax_code']}",
    ]
    if point:
        point_lines = [
            f"Punto di fornitura {point['code']}",
            f"{'PDR' if point['commodity'] == 'gas' else 'POD'} {point['pod_pdr']}",
            format_address(point["address"], point["postcode"], point["city"], point["province"]),
        ]
    else:
        point_lines = ["Nessun punto di fornitura"]
    top = pdf.get_y()
    for x, heading, lines in ((pdf.l_margin, "Intestatario", customer_lines),
                              (pdf.l_margin + width / 2, "Fornitura", point_lines)):
        pdf.set_xy(x, top)
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(width / 2, 6, heading, new_x="LEFT", new_y="NEXT")
        pdf.set_font("Helvetica", size=10)
        for line in lines:
            pdf.cell(width / 2, 5.5, line, new_x="LEFT", new_y="NEXT")
    pdf.set_xy(pdf.l_margin, top + 6 + 5.5 * max(len(customer_lines), len(point_lines)) + 8)

    # What, when, and how much was used.
    period = (f"dal {day(invoice['period_start'])} al {day(invoice['period_end'])}"
              if invoice["period_start"] else "-")
    rows = [("Descrizione", description), ("Periodo di fatturazione", period),
            ("Data di emissione", day(invoice["issue_date"])), ("Scadenza", day(invoice["due_date"]))]
    if invoice["energy_f1_kwh"] is not None:
        bands = [invoice[f"energy_{band}_kwh"] for band in ("f1", "f2", "f3")]
        rows += [(f"Energia in fascia F{n}", f"{number(kwh)} kWh") for n, kwh in enumerate(bands, 1)]
        rows.append(("Energia totale", f"{number(sum(bands))} kWh"))
    if invoice["peak_power_kw"] is not None:
        rows.append(("Potenza massima prelevata", f"{number(invoice['peak_power_kw'], 2)} kW"))
    if invoice["gas_smc"] is not None:
        rows.append(("Gas consumato", f"{number(invoice['gas_smc'])} Smc"))
    pdf.set_font("Helvetica", size=10)
    for label, value in rows:
        pdf.set_fill_color(244, 246, 249)
        pdf.cell(width * 0.45, 7, f"  {label}", border="B", fill=True)
        pdf.cell(width * 0.55, 7, f"{value}  ", border="B", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)

    # The amount.
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(width * 0.45, 10, "Totale da pagare", border="TB")
    pdf.cell(width * 0.55, 10, money(invoice["total"]), border="TB", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    pdf.cell(width, 6, f"entro il {day(invoice['due_date'])}", align="R", new_x="LMARGIN", new_y="NEXT")

    pdf.set_y(-24)
    pdf.set_text_color(*GREY)
    pdf.set_font(size=8)
    pdf.multi_cell(width, 4, f"{DEMO_HEADER}: bolletta di prova generata per la demo, senza valore fiscale.",
                   align="C")
    return bytes(pdf.output())
