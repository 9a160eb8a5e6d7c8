"""The codes of the domain, checked before any lookup: customer code, codice fiscale,
partita IVA (check digits by python-stdnum), POD and PDR. Each `clean_*` returns the code in
its stored form or raises InvalidCode with a message for the user. Codes are text: leading
zeros are significant."""
import re

from flask_babel import lazy_gettext as _l
from stdnum.exceptions import InvalidChecksum, InvalidFormat, InvalidLength, ValidationError
from stdnum.it import codicefiscale, iva

POD_RE = re.compile(r"IT\d{3}E[0-9A-Z]{8,9}")
PDR_RE = re.compile(r"\d{14}")


class InvalidCode(ValueError):
    pass


def _squeeze(text):
    return re.sub(r"[\s.\-]", "", text or "").upper()


def clean_customer_code(text):
    code = (text or "").strip()
    if not re.fullmatch(r"\d{6}", code):
        raise InvalidCode(_l("Il codice cliente è di 6 cifre: lo trovi in alto sulla bolletta."))
    return code


def clean_tax_code(text):
    """A person's codice fiscale (16 characters) or a firm's / body's 11-digit code."""
    code = _squeeze(text)
    if len(code) not in (11, 16):
        raise InvalidCode(_l("Il codice fiscale ha 16 caratteri (11 cifre per ditte ed enti)."))
    try:
        return codicefiscale.validate(code)
    except InvalidChecksum:
        raise InvalidCode(_l("Il codice fiscale non è valido: controlla di averlo scritto bene.")) from None
    except ValidationError:
        raise InvalidCode(_l("Il codice fiscale non è nel formato giusto.")) from None


def clean_vat_number(text):
    code = _squeeze(text)
    if code.startswith("IT"):
        code = code[2:]
    try:
        return iva.validate(code)
    except (InvalidLength, InvalidFormat):
        raise InvalidCode(_l("La partita IVA ha 11 cifre.")) from None
    except ValidationError:  # check digit, or an office code that does not exist
        raise InvalidCode(_l("La partita IVA non è valida: controlla di averla scritta bene.")) from None


def clean_tax_id(text):
    """What the registration's "Codice fiscale o partita IVA" field accepts: either."""
    code = _squeeze(text)
    if code.startswith("IT") and len(code) == 13:
        code = code[2:]
    if len(code) == 11 and code.isdigit():
        return clean_vat_number(code)
    return clean_tax_code(code)


def clean_pod(text):
    code = _squeeze(text)
    if not POD_RE.fullmatch(code):
        raise InvalidCode(_l("Il POD è fatto così: IT, 3 cifre, la lettera E e 8 o 9 caratteri (es. IT001E12345678)."))
    return code


def clean_pdr(text):
    code = _squeeze(text)
    if not PDR_RE.fullmatch(code):
        raise InvalidCode(_l("Il PDR è di 14 cifre, zeri iniziali compresi."))
    return code


def clean_pod_pdr(text, commodity=None):
    code = _squeeze(text)
    if commodity == "gas" or (commodity is None and code.isdigit()):
        return clean_pdr(code)
    return clean_pod(code)


def mask(code):
    """For logs and audit: enough to recognise a code, not enough to use it."""
    code = code or ""
    return code[:3] + "*" * max(len(code) - 6, 0) + code[-3:] if len(code) > 6 else "***"
