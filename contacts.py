"""The customer's contact data (Dati Anagrafici): telephone, fax, mobile and email.

- Phone numbers are read with `phonenumbers` (Google's libphonenumber metadata): an Italian
  number may be typed as printed ("0544 401234", "333 123 4567"), a foreign one with its
  prefix ("+44 20 7946 0958" or "0044 ..."). They are stored in E.164 ("+390544401234") and
  shown as Italians write them (national format) for Italian numbers, international otherwise.
  What the billing system imports stays as it sent it; `display_phone` shows both alike.
- A new email takes effect only once the link mailed to it is followed (views/account.py).
- The customer's change and the billing system's import: each change is a ContactChange row.
  It is *pending* until the import brings the same value (the billing system has taken it) or
  until PORTAL_WINS_FOR has passed. While pending, an import with another value for that
  field leaves the portal's value alone; after that the billing system, the master record,
  wins (a difference that long is the billing office's decision, e.g. a correction made on
  the phone). `import_keeps` applies the rule; importer.py calls it.
- `flask export contacts` writes the changes, one row per field changed (export_changes).
"""
from datetime import timedelta

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l

import audit
from models import ContactChange, utcnow

FIELDS = ContactChange.FIELDS
PHONE_FIELDS = ("phone", "fax", "mobile")
PHONE_MAX_LENGTH = 30  # as typed, with spaces and a prefix; E.164 itself is at most 16
EMAIL_MAX_LENGTH = 254  # RFC 5321's limit on a path
REGION = "IT"  # a number typed without a prefix is Italian
PORTAL_WINS_FOR = timedelta(days=30)  # a pending change outlives a monthly billing run
# What a phone number may be typed with: digits, a leading +, and the separators people use.
PHONE_CHARACTERS = set("0123456789+ ()./-")
MOBILE_TYPES = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}


_Parse = phonenumbers.NumberParseException
PARSE_PROBLEMS = {
    _Parse.TOO_LONG: _l("Troppe cifre per un numero di telefono."),
    _Parse.TOO_SHORT_NSN: _l("Troppo poche cifre per un numero di telefono."),
    _Parse.TOO_SHORT_AFTER_IDD: _l("Troppo poche cifre per un numero di telefono."),
    _Parse.INVALID_COUNTRY_CODE: _l("Questo prefisso internazionale non esiste."),
    None: _l("Questo non sembra un numero di telefono."),
}


class InvalidContact(ValueError):
    """A contact the customer typed that is not one; str() is the message for the field."""


# --- phone numbers ------------------------------------------------------------------------------

def clean_phone(text, field="phone"):
    """The number typed into `field` (phone, fax, mobile) in E.164, "" for an empty field.
    Raises InvalidContact with the reason."""
    text = (text or "").strip()
    if not text:
        return ""
    if len(text) > PHONE_MAX_LENGTH:
        raise InvalidContact(_l("Al massimo %(n)d caratteri.", n=PHONE_MAX_LENGTH))
    # phonenumbers would read letters as a keypad's ("800-FLOWERS"): here they are a typo.
    if not set(text) <= PHONE_CHARACTERS or text.count("+") > 1 or "+" in text[1:]:
        raise InvalidContact(_l("Scrivi solo cifre e spazi, con il prefisso internazionale (+44...) se il numero non è italiano."))
    try:
        number = phonenumbers.parse(text, REGION)
    except phonenumbers.NumberParseException as error:
        raise InvalidContact(PARSE_PROBLEMS.get(error.error_type, PARSE_PROBLEMS[None])) from None
    if not phonenumbers.is_valid_number(number):
        if phonenumbers.region_code_for_country_code(number.country_code) == REGION:
            raise InvalidContact(_l("Questo numero italiano non esiste: controlla le cifre (un fisso comincia con 0, un cellulare con 3)."))
        raise InvalidContact(_l("Questo numero non esiste: controlla le cifre e il prefisso internazionale."))
    kind = phonenumbers.number_type(number)
    if field == "mobile" and kind not in MOBILE_TYPES:
        raise InvalidContact(_l("Questo non è un numero di cellulare: scrivilo nel campo Telefono."))
    if field == "fax" and kind == phonenumbers.PhoneNumberType.MOBILE:
        raise InvalidContact(_l("Questo è un numero di cellulare, non di fax."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display_phone(value):
    """A stored number as people read it: national format for an Italian number, international
    for a foreign one; a text the library cannot read (an old import) as it is."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, REGION)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_valid_number(number):
        return value
    if phonenumbers.region_code_for_number(number) == REGION:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


# --- email --------------------------------------------------------------------------------------

def clean_email(text):
    """The address typed, normalized and in lower case (as every address is stored); raises
    InvalidContact. Whether the mailbox exists is what the confirmation link proves."""
    text = (text or "").strip()
    if len(text) > EMAIL_MAX_LENGTH:
        raise InvalidContact(_l("Al massimo %(n)d caratteri.", n=EMAIL_MAX_LENGTH))
    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise InvalidContact(_l("Questo indirizzo email non è valido.")) from None


def clean(field, text):
    """The value to store for what was typed into `field`, or InvalidContact."""
    return clean_email(text) if field == "email" else clean_phone(text, field)


def comparable(field, value):
    """A value in the one form two sources can be compared in: the portal's E.164 and the
    billing system's "0544 401234" are the same number."""
    value = (value or "").strip()
    if not value:
        return ""
    if field == "email":
        return value.lower()
    try:
        number = phonenumbers.parse(value, REGION)
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def same(field, first, second):
    return comparable(field, first) == comparable(field, second)


# --- changes made in the portal -------------------------------------------------------------------

def record_change(customer, field, new_value, user):
    """Write one field's new value, the ContactChange the export and the import read, and the
    audit entry (old and new value). Call inside the caller's write transaction; returns False
    when the value is the same (nothing is written: a form sent twice changes things once)."""
    old_value = getattr(customer, field)
    if same(field, old_value, new_value):
        return False
    new_value = new_value or None
    type(customer).update(**{field: new_value, "updated_at": utcnow()}).where(type(customer).id == customer.id).execute()
    setattr(customer, field, new_value)
    ContactChange.create(customer=customer, field=field, old_value=old_value, new_value=new_value, changed_by=user)
    audit.record("contact_changed", user=user, customer=customer.id, field=field, old=old_value or "", new=new_value or "")
    return True


# --- the import ----------------------------------------------------------------------------------

def import_keeps(incoming, now=None):
    """The import-vs-portal rule. `incoming` is {customer id: {field: value}}, the contact
    columns of customers.csv for customers the portal has. Returns {customer id: {fields the
    import must leave as they are}}, and settles (in the caller's transaction) the pending
    changes the import confirms or whose time has run out. A field the file leaves out is
    left alone anyway."""
    now = now or utcnow()
    newest = {}  # (customer id, field) -> the newest pending change; older ones settle with it
    for change in ContactChange.pending():
        newest.setdefault((change.customer_id, change.field), []).append(change)
    keeps, settled = {}, []
    for (customer_id, field), changes in newest.items():
        row = incoming.get(customer_id)
        if row is None or field not in row:
            continue
        latest = changes[-1]
        if same(field, row[field], latest.new_value):
            settled += changes  # the billing system has it
        elif now - latest.changed_at < PORTAL_WINS_FOR:
            keeps.setdefault(customer_id, set()).add(field)
        else:
            settled += changes
            audit.record("contact_change_overridden", customer=customer_id, field=field,
                         portal=latest.new_value or "", billing=row[field] or "")
    if settled:
        ContactChange.update(settled_at=now).where(ContactChange.id.in_([c.id for c in settled])).execute()
    return keeps
