"""One form per use. Validation of the domain's codes lives in identifiers.py and the password
policy in accounts.py; the forms call them so that every message lands next to its field."""
import re
from datetime import date, timedelta

from babel.numbers import NumberFormatError, parse_decimal
from flask import current_app, request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    MultipleFileField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

import accounts
import contacts
import i18n
import identifiers
import labels
import uploads
from models import ApiToken, CannedReply, Customer, Document, Ticket, TicketAttachment, User

YES_NO = [SelectChoice("yes", _l("Acconsento")), SelectChoice("no", _l("Non acconsento"))]


def code_check(clean):
    """A WTForms validator from an identifiers.clean_* function; stores the cleaned code."""

    def validator(form, field):
        if not field.data:
            return
        try:
            field.data = clean(field.data)
        except identifiers.InvalidCode as error:
            raise ValidationError(str(error)) from None

    return validator


class Form(FlaskForm):
    """Every form of the portal: wtforms' own messages come from a catalogue read once a process."""

    class Meta:
        def get_translations(self, form):
            return i18n.FORM_MESSAGES


class EmptyForm(Form):
    """The CSRF token, for buttons that change something (logout, resend...)."""


class LoginForm(Form):
    user = StringField(_l("User"), validators=[InputRequired(_l("Scrivi il codice cliente o lo username.")), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[InputRequired(_l("Scrivi la password.")), Length(max=accounts.PASSWORD_MAX_LENGTH)])


class NewPasswordMixin:
    """The new password and its repetition, checked against the policy."""

    password = PasswordField(
        _l("Password"),
        validators=[InputRequired(_l("Scegli una password."))],
        description=_l("Almeno 8 caratteri, un numero, una minuscola, una maiuscola, un carattere speciale; "
                       "oppure una frase di almeno 16 caratteri, senza altre regole."),
    )
    password_repeat = PasswordField(
        _l("Ripeti password"),
        validators=[InputRequired(_l("Ripeti la password.")), EqualTo("password", _l("Le due password non coincidono."))],
    )

    def personal_data(self):
        return ()

    def validate_password(self, field):
        problems = accounts.password_problems(field.data or "", self.personal_data())
        if problems:
            raise ValidationError(str(problems[0]))


class RegisterCustomerForm(Form):
    """Step 1: who the customer is, and proof of holding one of their bills."""

    customer_code = StringField(
        _l("Codice cliente"),
        validators=[InputRequired(_l("Scrivi il codice cliente.")), code_check(identifiers.clean_customer_code)],
        description=_l("6 cifre, in alto sulla bolletta."),
    )
    tax_id = StringField(
        _l("Codice fiscale o partita IVA"),
        validators=[InputRequired(_l("Scrivi il codice fiscale o la partita IVA.")), code_check(identifiers.clean_tax_id)],
        description=_l("Quello del titolare del contratto, come sulla bolletta."),
    )
    bill_proof = StringField(validators=[InputRequired(_l("Scrivi questo dato: serve a verificare che la bolletta sia tua.")), Length(max=40)])

    PROOF_LABELS = {
        "invoice_or_point": (
            _l("Numero di una fattura o POD/PDR"),
            _l("Il numero di una fattura degli ultimi 24 mesi, oppure il POD o PDR di una tua fornitura."),
        ),
        "invoice": (_l("Numero di una fattura"), _l("Il numero di una fattura degli ultimi 24 mesi.")),
        "point": (_l("POD o PDR"), _l("Il codice POD (luce) o PDR (gas) di una tua fornitura, sulla bolletta.")),
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        label, description = self.PROOF_LABELS[current_app.config["REGISTRATION_PROOF"]]
        self.bill_proof.label.text = label
        self.bill_proof.description = description


class RegisterUserForm(NewPasswordMixin, Form):
    """Step 2: the person registering, their login and the consents."""

    first_name = StringField(_l("Nome"), validators=[InputRequired(_l("Scrivi il nome.")), Length(max=80)])
    last_name = StringField(_l("Cognome"), validators=[InputRequired(_l("Scrivi il cognome.")), Length(max=80)])
    tax_code = StringField(
        _l("Codice fiscale"),
        validators=[InputRequired(_l("Scrivi il tuo codice fiscale.")), code_check(identifiers.clean_tax_code)],
    )
    email = StringField(
        _l("Email"),
        validators=[InputRequired(_l("Scrivi l'indirizzo email.")), Length(max=254), Email(_l("Questo indirizzo email non è valido."))],
    )
    email_repeat = StringField(
        _l("Conferma email"),
        validators=[InputRequired(_l("Ripeti l'indirizzo email.")), EqualTo("email", _l("I due indirizzi non coincidono."))],
    )
    mobile = StringField(_l("Cellulare (facoltativo)"), validators=[Optional(), Length(max=20)])
    username = StringField(
        _l("Username (facoltativo)"),
        validators=[Optional(), Length(min=3, max=40, message=_l("Da 3 a 40 caratteri."))],
        description=_l("Per accedere anche con un nome scelto da te, oltre che con il codice cliente."),
    )
    consent_privacy = BooleanField(
        _l("Ho letto l'informativa privacy e acconsento al trattamento dei dati per la gestione del contratto"),
        validators=[InputRequired(_l("Senza questo consenso non possiamo attivare l'accesso."))],
    )
    consent_marketing = RadioField(_l("Comunicazioni commerciali"), choices=YES_NO, default="no")
    consent_third_parties = RadioField(_l("Comunicazione dei dati a terzi"), choices=YES_NO, default="no")
    consent_profiling = RadioField(_l("Profilazione"), choices=YES_NO, default="no")

    customer_code = None  # set by the view: part of the password policy's personal data
    tell_if_username_taken = True  # not in the inline check: anyone past step 1 could ask freely

    def personal_data(self):
        email_name = (self.email.data or "").split("@")[0]
        return (self.customer_code, self.username.data, email_name)

    def validate_email(self, field):
        field.data = (field.data or "").strip().lower()

    def validate_email_repeat(self, field):
        field.data = (field.data or "").strip().lower()

    def validate_mobile(self, field):
        number = re.sub(r"[\s/.\-]", "", field.data or "")
        if not re.fullmatch(r"\+?\d{6,15}", number):
            raise ValidationError(_l("Scrivi solo cifre, con il prefisso +39 se vuoi."))
        field.data = number

    def validate_username(self, field):
        name = (field.data or "").strip().lower()
        if not re.fullmatch(r"[a-z0-9][a-z0-9._\-]*", name):
            raise ValidationError(_l("Usa solo lettere, cifre, punto, trattino e trattino basso, e inizia con una lettera o una cifra."))
        if re.fullmatch(r"\d{6}", name):
            raise ValidationError(_l("Uno username di sei cifre sembra un codice cliente: scegline un altro."))
        if self.tell_if_username_taken and User.select().where(User.username == name).exists():
            raise ValidationError(_l("Questo username è già in uso: scegline un altro."))
        field.data = name


class SecondFactorForm(Form):
    code = StringField(
        _l("Codice"),
        validators=[InputRequired(_l("Scrivi il codice di 6 cifre dell'app.")), Length(max=10)],
        description=_l("Le 6 cifre che l'app di autenticazione mostra ora."),
    )


class DocumentForm(Form):
    """A document the staff publish: for everyone (a section of Documentazione Generica) or for
    one customer (personal, or a periodic report)."""

    SECTIONS = [
        SelectChoice("modulistica", _l("Modulistica")),
        SelectChoice("normative", _l("Normative")),
        SelectChoice("comunicati", _l("Comunicati")),
        SelectChoice("informazioni", _l("Informazioni")),
        SelectChoice("storico", _l("Storico")),
        SelectChoice("personal", _l("Documento personale di un cliente")),
        SelectChoice("report", _l("Report periodico di un cliente")),
    ]

    file = FileField(_l("File"), validators=[FileRequired(_l("Scegli il file da pubblicare."))],
                     description=_l("PDF (o CSV, TXT, XLSX), al massimo 20 MB."))
    title = StringField(_l("Titolo"), validators=[InputRequired(_l("Scrivi il titolo.")), Length(max=200)])
    section = SelectField(_l("Sezione"), choices=SECTIONS)
    customer_code = StringField(_l("Codice cliente"), validators=[Optional(), code_check(identifiers.clean_customer_code)],
                                description=_l("Solo per documenti personali e report."))
    published_on = DateField(_l("Data di deposito"), validators=[Optional()], description=_l("Vuota: oggi."))
    period_start = DateField(_l("Competenza dal"), validators=[Optional()])
    period_end = DateField(_l("Competenza al"), validators=[Optional()])

    def validate(self, extra_validators=None):
        """The rules across fields, here since Optional() ends a field's own checks when it
        is empty; each message still goes next to the field it is about."""
        valid = super().validate(extra_validators)
        code = self.customer_code
        problem = Document.customer_problem(self.section.data, bool(code.data))
        section = labels.label("document_section", self.section.data)
        if problem == "required":
            code.errors.append(_l("Scrivi il codice del cliente: la sezione %(section)s è per un cliente.", section=section))
        elif problem == "forbidden":
            code.errors.append(_l("Lascialo vuoto: la sezione %(section)s è per tutti i clienti.", section=section))
        elif code.data and not code.errors and not Customer.select().where(Customer.code == code.data).exists():
            code.errors.append(_l("Questo cliente non esiste."))
        if self.period_start.data and self.period_end.data and self.period_end.data < self.period_start.data:
            self.period_end.errors.append(_l("La fine viene prima dell'inizio."))
        return valid and not code.errors and not self.period_end.errors


class OperatorForm(Form):
    email = StringField(_l("Email"), validators=[InputRequired(_l("Scrivi l'indirizzo email.")), Length(max=254),
                                                  Email(_l("Questo indirizzo email non è valido."))])
    role = SelectField(_l("Ruolo"), choices=[SelectChoice("operator", _l("Operatore")),
                                            SelectChoice("admin", _l("Amministratore"))])
    password = PasswordField(_l("Password iniziale"), validators=[InputRequired(_l("Scegli una password."))],
                             description=_l("Da comunicare a voce; al primo accesso l'operatore attiva il secondo fattore."))


class NotificationsForm(Form):
    notify_invoices = BooleanField(_l("Avvisami per email quando arriva una nuova fattura"))


class ContactDataForm(Form):
    """Dati Anagrafici's contacts. Each field is checked by contacts.py; what is typed stays in
    the field (errors or not) and the value to store goes to `cleaned` (phones in E.164, the
    email in lower case). A field left out of the request keeps the stored value. The view
    sets `current_email`: an address on file may be replaced, not emptied."""

    email = StringField(_l("Email"), description=_l("Un nuovo indirizzo vale quando apri il link che gli mandiamo."))
    phone = StringField(_l("Telefono"), description=_l("Fisso o cellulare. Un numero non italiano con il prefisso: +41 ..."))
    mobile = StringField(_l("Cellulare"))
    fax = StringField(_l("Fax"))

    current_email = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cleaned = {}

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        for name in contacts.FIELDS:
            field = self[name]
            if name == "email" and not (field.data or "").strip() and self.current_email:
                field.errors.append(_l("Scrivi l'indirizzo email: ti serve per ricevere gli avvisi e recuperare la password."))
                continue
            try:
                self.cleaned[name] = contacts.clean(name, field.data)
            except contacts.InvalidContact as error:
                field.errors.append(str(error))
        return valid and not any(self[name].errors for name in contacts.FIELDS)


class ApiTokenForm(Form):
    """A new key to the personal data API: its name says where it is used, so the right one
    can be revoked. The view sets `user`: a user has at most ApiToken.LIVE_LIMIT live keys."""

    user = None

    name = StringField(
        _l("Nome della chiave"),
        filters=[lambda text: text.strip() if text else text],
        validators=[InputRequired(_l("Dai un nome alla chiave, per esempio «Domotica di casa».")),
                    Length(max=60, message=_l("Al massimo 60 caratteri."))],
        description=_l("Dove la userai, per riconoscerla quando vorrai revocarla."),
    )

    def validate_name(self, field):
        if not field.data:  # spaces only: InputRequired saw text
            raise ValidationError(self.name.validators[0].message)
        if ApiToken.live_of(self.user).count() >= ApiToken.LIVE_LIMIT:
            raise ValidationError(_l("Hai già %(limit)d chiavi attive: revocane una per crearne un'altra.",
                                     limit=ApiToken.LIVE_LIMIT))


class RevokeApiTokenForm(Form):
    """Revoca beside a key: the key's id travels in the form, not in the URL."""

    token = IntegerField(validators=[InputRequired(), NumberRange(min=1, max=2**63 - 1)])


class ForgotPasswordForm(Form):
    user = StringField(_l("Codice cliente o username"), validators=[InputRequired(_l("Scrivi il codice cliente o lo username.")), Length(max=254)])


class ForgotUsernameForm(Form):
    email = StringField(
        _l("Email"),
        validators=[InputRequired(_l("Scrivi l'indirizzo email.")), Length(max=254), Email(_l("Questo indirizzo email non è valido."))],
    )


class ResetPasswordForm(NewPasswordMixin, Form):
    user = None  # set by the view

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.password.label.text = _l("Nuova password")
        self.password_repeat.label.text = _l("Ripeti la nuova password")

    def personal_data(self):
        if self.user is None:
            return ()
        code = self.user.customer.code if self.user.customer_id else None
        return (code, self.user.username, self.user.email.split("@")[0])


class ChangePasswordForm(ResetPasswordForm):
    current_password = PasswordField(
        _l("Password attuale"),
        validators=[InputRequired(_l("Scrivi la password attuale.")), Length(max=accounts.PASSWORD_MAX_LENGTH)],
    )

    def validate_current_password(self, field):
        if not accounts.check_password(self.user, field.data):
            raise ValidationError(_l("La password attuale non è giusta."))


# --- the filters of lists: read from the URL's arguments, nothing is written --------------------

class FilterForm(Form):
    """A list's filters, from the URL. A value that is not one of its control's (an old bookmark,
    a hand-edited URL) is ignored, not an error; a date that is not a date is said next to its
    field. Read a filter with `chosen(name)`."""

    class Meta:
        csrf = False  # a GET that changes nothing

    def __init__(self, **kwargs):
        super().__init__(formdata=request.args, **kwargs)
        self.validate()

    def chosen(self, name):
        """The field's value, or None when it is empty or not a valid one."""
        field = self[name]
        return None if field.errors or field.data in ("", None) else field.data


# Numbers of a URL are bounded before any query (SQLite overflows past 64 bits): a page past the
# last or a year with no bills simply shows nothing, a number beyond these is ignored.
PAGE_NUMBER = NumberRange(min=1, max=1_000_000)
YEAR = NumberRange(min=1900, max=2999)


class PickerDateField(DateField):
    """A date as the browser's date picker sends it (YYYY-MM-DD); any other text is said in the
    user's language."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_l("Data non valida: usa il calendario o AAAA-MM-GG.")) from None


def date_in_range(form, field):
    """A date a year or two from which stays a date (and a year the portal can mean): the day
    after 31/12/9999 is none, an overflow (a 500) where a range is read to the end of its day."""
    if field.data is not None and not YEAR.min <= field.data.year <= YEAR.max:
        raise ValidationError(_l("Scegli una data tra il 1900 e il 2999."))


class DateRangeForm(FilterForm):
    """From one day to another, both included, either one optional."""

    dal = PickerDateField(validators=[Optional()])
    al = PickerDateField(validators=[Optional()])

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        if self.chosen("dal") and self.chosen("al") and self.al.data < self.dal.data:
            self.al.errors.append(_l("La data finale viene prima di quella iniziale."))
            return False
        return valid


# Elenco fatture's Stato filter: ?stato= -> label, "" for all (what each one selects:
# Invoice.STATUS_FILTERS).
INVOICE_STATUSES = {"": _l("Tutte"), "unpaid": _l("Da pagare"), "overdue": _l("Scadute"),
                    "partial": _l("Parzialmente pagate"), "paid": _l("Pagate")}


class InvoiceFilterForm(FilterForm):
    """Elenco fatture's filters (what each status selects: Invoice.STATUS_FILTERS)."""

    anno = IntegerField(validators=[Optional(), YEAR])
    stato = SelectField(choices=[SelectChoice(value, label) for value, label in INVOICE_STATUSES.items()])
    ambito = SelectField(choices=[SelectChoice(""), SelectChoice("tutti")])
    pagina = IntegerField(default=1, validators=[Optional(), PAGE_NUMBER])


class AuditLogFilterForm(DateRangeForm):
    """Registro attività's filters: who, which customer, which action, which days."""

    # "al" is read to the end of its day: the day after 31/12/9999 was an overflow, a 500.
    dal = PickerDateField(validators=[Optional(), date_in_range])
    al = PickerDateField(validators=[Optional(), date_in_range])

    utente = StringField(filters=[lambda text: text.strip().lower() if text else text])
    cliente = StringField(filters=[lambda text: text.strip() if text else text])
    azione = StringField()
    pagina = IntegerField(default=1, validators=[Optional(), PAGE_NUMBER])


class CustomerSearchForm(Form):
    """The back office's search: any code, name or address of a customer. Posted, never read
    from a URL: the text may be a codice fiscale (views/backoffice/customers.py home)."""

    q = StringField(filters=[lambda text: (text or "")[:100]])
    pagina = IntegerField(default=1, validators=[Optional(), PAGE_NUMBER])

    def page(self):
        """The page asked for; a number that is none (or out of range) is the first page."""
        return self.pagina.data if self.pagina.validate(self) and self.pagina.data else 1


# Misure elettriche's ready-made intervals: ?periodo= -> label. Each ends today; a bookmark keeps
# "the last 7 days", not the days it was made on.
MEASURE_PERIODS = {"7-giorni": _l("Ultimi 7 giorni"), "mese": _l("Ultimo mese"), "anno": _l("Ultimo anno")}
# The days a measure's interval may name: a date past these is no meter's, and far enough out
# (year 9999) it would overflow the conversion to UTC.
MEASURE_DAYS = (date(2000, 1, 1), date(2099, 12, 31))


class MeasuresFilterForm(DateRangeForm):
    """Misure elettriche's interval (from one Rome day to another, both included, or a preset
    that wins over the dates) and page."""

    periodo = SelectField(choices=[SelectChoice("")] + [SelectChoice(value, label) for value, label in MEASURE_PERIODS.items()])
    pagina = IntegerField(default=1, validators=[Optional(), PAGE_NUMBER])

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        first, last = MEASURE_DAYS
        for field in (self.dal, self.al):
            if field.data is not None and not field.errors and not first <= field.data <= last:
                field.errors.append(_l("Scegli un giorno tra il %(first)s e il %(last)s.",
                                       first=first.strftime("%d/%m/%Y"), last=last.strftime("%d/%m/%Y")))
                valid = False
        return valid

    def interval(self, today):
        """(first day, last day) asked for, either None when not given, or a preset's days."""
        preset = self.chosen("periodo")
        if preset == "7-giorni":
            return today - timedelta(days=6), today
        if preset == "mese":
            return one_month_before(today) + timedelta(days=1), today
        if preset == "anno":
            return one_month_before(today, months=12) + timedelta(days=1), today
        return self.chosen("dal"), self.chosen("al")


def one_month_before(day, months=1):
    """The same day `months` months earlier, or that month's last day (31 March -> 28/29 February)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    following = date(year + month // 12, month % 12 + 1, 1)
    return date(year, month, min(day.day, (following - timedelta(days=1)).day))


# Prelievi Fatturati's views: ?vista= -> label; the first is the default.
WITHDRAWAL_VIEWS = {"grafico": _l("Grafico"), "confronto": _l("Confronto con l'anno prima"), "tabella": _l("Tabella")}


class WithdrawalsFilterForm(FilterForm):
    """Prelievi Fatturati's year and view."""

    anno = IntegerField(validators=[Optional(), YEAR])
    vista = SelectField(choices=[SelectChoice(value, label) for value, label in WITHDRAWAL_VIEWS.items()])


# Grafici avanzati: the period a chart covers (?vista=; a month unless asked) and how its
# figures are shown (?mostra=; the first is the default).
CHART_PERIODS = {"giorno": _l("Giorno"), "settimana": _l("Settimana"), "mese": _l("Mese"), "anno": _l("Anno")}
DEFAULT_CHART_PERIOD = "mese"
CHART_DISPLAYS = {"grafico": _l("Grafico"), "tabella": _l("Tabella")}


class AdvancedChartsForm(FilterForm):
    """Grafici avanzati's period, its date (any day of it) and chart or table."""

    vista = SelectField(choices=[SelectChoice(value, label) for value, label in CHART_PERIODS.items()])
    data = PickerDateField(validators=[Optional(), date_in_range])
    mostra = SelectField(choices=[SelectChoice(value, label) for value, label in CHART_DISPLAYS.items()])


# --- privacy, closing the account, delegates (views/privacy.py, views/delegates.py) ---------------

class ConsentsForm(Form):
    """The optional consents of the privacy notice, as at registration; the required one is not
    a choice here (withdrawing it is closing the account)."""

    consent_marketing = RadioField(_l("Comunicazioni commerciali"), choices=YES_NO)
    consent_third_parties = RadioField(_l("Comunicazione dei dati a terzi"), choices=YES_NO)
    consent_profiling = RadioField(_l("Profilazione"), choices=YES_NO)

    KINDS = {"marketing": "consent_marketing", "third_parties": "consent_third_parties", "profiling": "consent_profiling"}

    def validate(self, extra_validators=None):
        # A RadioField answers "Not a valid choice" to a missing answer: say what to do instead.
        valid = super().validate(extra_validators)
        for name in self.KINDS.values():
            field = self[name]
            if field.data not in ("yes", "no"):
                field.errors = [_l("Scegli una delle due risposte.")]
                valid = False
        return valid

    def answers(self):
        """{kind: granted} as submitted."""
        return {kind: self[name].data == "yes" for kind, name in self.KINDS.items()}


class CloseAccountForm(Form):
    """"Chiudi l'account": the password proves it is the user, the box that they read what follows."""

    user = None  # set by the view

    password = PasswordField(
        _l("Password"),
        validators=[InputRequired(_l("Scrivi la tua password per confermare.")), Length(max=accounts.PASSWORD_MAX_LENGTH)],
    )
    understood = BooleanField(
        _l("Ho capito: il mio accesso sarà cancellato e non potrò più entrare con questi dati"),
        validators=[InputRequired(_l("Spunta la casella per confermare."))],
    )

    def validate_password(self, field):
        if not accounts.check_password(self.user, field.data):
            raise ValidationError(_l("La password non è giusta."))


class InviteDelegateForm(Form):
    """An invitation to a delegate: where to send it and what they may do."""

    customer = None  # set by the view: the inviting owner's customer

    email = StringField(
        _l("Email del delegato"),
        filters=[lambda text: text.strip().lower() if text else text],
        validators=[InputRequired(_l("Scrivi l'indirizzo email della persona da invitare.")),
                    Length(max=254, message=_l("Al massimo 254 caratteri.")), Email(_l("Questo indirizzo email non è valido."))],
        description=_l("Riceverà un link, valido 7 giorni, per scegliere username e password."),
    )
    rights = RadioField(
        _l("Permessi"),
        choices=[SelectChoice(User.READ, _l("Solo lettura: vede fatture, consumi e documenti")),
                 SelectChoice(User.FULL, _l("Completi: può anche inviare letture, aprire ticket e cambiare i contatti"))],
        default=User.READ,
        validators=[InputRequired(_l("Scegli i permessi."))],
    )

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        if self.rights.data not in User.DELEGATE_RIGHTS:  # WTForms' own message is English
            self.rights.errors = [_l("Scegli i permessi.")]
            valid = False
        return valid

    def validate_email(self, field):
        taken = User.delegates_of(self.customer).where(User.email == field.data).exists()
        if taken:
            raise ValidationError(_l("Questa persona è già tra i tuoi delegati (o ha un invito in attesa)."))
        if User.delegates_of(self.customer).count() >= User.DELEGATE_LIMIT:
            raise ValidationError(_l("Hai già %(limit)d delegati: revocane uno per invitarne un altro.",
                                     limit=User.DELEGATE_LIMIT))


class RevokeDelegateForm(Form):
    """Revoca beside a delegate: the delegate's id travels in the form, not in the URL."""

    delegate = IntegerField(validators=[InputRequired(), NumberRange(min=1, max=2**63 - 1)])


class AcceptInvitationForm(RegisterUserForm):
    """The invited delegate's own login: registration's step 2 without what the invitation
    already knows (the email) or a delegate does not need (codice fiscale, mobile); the
    username is required, since a delegate never logs in with the customer code."""

    email = None
    email_repeat = None
    tax_code = None
    mobile = None
    username = StringField(
        _l("Username"),
        validators=[InputRequired(_l("Scegli uno username.")), Length(min=3, max=40, message=_l("Da 3 a 40 caratteri."))],
        description=_l("Lo userai per accedere, con la password."),
    )

    invited_email = ""  # set by the view: part of the password policy's personal data

    def personal_data(self):
        return (self.customer_code, self.username.data, self.invited_email.split("@")[0])


# --- Ticket (views/tickets.py, views/backoffice/tickets.py) --------------------------------------

IDEMPOTENCY_KEY = r"^[0-9a-f]{32}$"  # uuid4().hex, made when the form is shown


def new_idempotency_key():
    import uuid

    return uuid.uuid4().hex


# What no person means to type: control characters (a NUL, which PostgreSQL refuses in text; a
# bell) and the invisible marks that reverse how a text reads (U+202E and its kin), which turned
# a ticket's subject around in a page and in a mail's Subject. Line breaks and tabs stay.
CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def without_controls(text):
    return CONTROLS.sub("", text) if text else text


def one_line(text):
    """A subject is one line (it becomes a mail's Subject header): line breaks become spaces."""
    return re.sub(r"[\r\n\t\v\f]+", " ", text).strip() if text else text


def not_blank(message):
    def validator(form, field):
        if not (field.data or "").strip():
            raise ValidationError(message)
    return validator


class IdempotentForm(Form):
    """A form whose write must happen once however often it is sent: the key, made when the form
    is shown, is stored with what it writes (unique), so a second send finds the first."""

    idempotency_key = HiddenField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not re.fullmatch(IDEMPOTENCY_KEY, self.idempotency_key.data or ""):
            # Shown for the first time, or a hand-made request: a new key (no duplicate to find).
            self.idempotency_key.data = new_idempotency_key()


def message_field(label, required_message):
    return TextAreaField(label, filters=[without_controls], validators=[
        InputRequired(required_message), not_blank(required_message),
        Length(max=Ticket.BODY_MAX, message=_l("Al massimo %(max)d caratteri.", max=Ticket.BODY_MAX))])


class AttributeText:
    """A translated text as an HTML attribute's value, escaped as any other: a lazy string says
    it is safe HTML already (__html__), and wtforms would write it unescaped."""

    def __init__(self, text):
        self.text = text

    def __str__(self):
        return str(self.text)


def checked_upload(**render_kw):
    """render_kw of a file field whose files uploads.accept judges. static/app.js reads the
    limit and its message from these attributes and refuses a larger file next to the field
    before the form is sent: sent, a request over MAX_CONTENT_LENGTH gets the 413 page, and
    the customer loses what they typed. `data_max_total_bytes` and `data_total_too_large` add a
    limit on all the field's files together."""
    return {"data_max_bytes": uploads.MAX_UPLOAD_BYTES, "data_too_large": AttributeText(uploads.TOO_LARGE), **render_kw}


class AttachmentsMixin:
    """Up to TicketAttachment.MAX_PER_MESSAGE files, each judged by its bytes (uploads.accept):
    JPEG, PNG or PDF. The accepted ones are in `clean_files` as (name, CleanFile)."""

    TOTAL_TOO_LARGE = _l("Gli allegati superano in tutto %(mb)d MB.", mb=TicketAttachment.MAX_TOTAL_BYTES // (1024 * 1024))

    attachments = MultipleFileField(
        _l("Allegati (facoltativi)"),
        description=_l("Fino a %(count)d file JPEG, PNG o PDF, ognuno al massimo di %(each)d MB e in tutto di %(mb)d MB.",
                       count=TicketAttachment.MAX_PER_MESSAGE, each=uploads.MAX_UPLOAD_MB,
                       mb=TicketAttachment.MAX_TOTAL_BYTES // (1024 * 1024)),
        render_kw=checked_upload(data_max_total_bytes=TicketAttachment.MAX_TOTAL_BYTES,
                                 data_total_too_large=AttributeText(TOTAL_TOO_LARGE)))
    clean_files = ()

    def validate_attachments(self, field):
        sent = [f for f in (field.data or []) if getattr(f, "filename", None)]
        if len(sent) > TicketAttachment.MAX_PER_MESSAGE:
            raise ValidationError(_l("Al massimo %(count)d allegati.", count=TicketAttachment.MAX_PER_MESSAGE))
        kept, total = [], 0
        for upload in sent:
            data = upload.read(uploads.MAX_UPLOAD_BYTES + 1)
            total += len(data)
            if total > TicketAttachment.MAX_TOTAL_BYTES:
                raise ValidationError(self.TOTAL_TOO_LARGE)
            try:
                clean = uploads.accept(data, kinds=("image", "pdf"))
            except uploads.Refused as refused:
                raise ValidationError(f"{upload.filename[:100]}: {refused}") from None
            name = (upload.filename.replace("\\", "/").rsplit("/", 1)[-1].replace("\x00", "") or "allegato")[:200]
            kept.append((name, clean))
        self.clean_files = kept


class TicketForm(AttachmentsMixin, IdempotentForm):
    """A new ticket. The view sets the supply point's choices (the customer's own)."""

    category = SelectField(_l("Categoria"), choices=[
        SelectChoice(code, text) for code, text in labels.LABELS["ticket_category"].items()], default="other")
    supply_point = SelectField(_l("Punto di fornitura (facoltativo)"), choices=[], validate_choice=True)
    subject = StringField(_l("Oggetto"), filters=[without_controls, one_line],
                          validators=[InputRequired(_l("Scrivi l'oggetto.")),
                                      Length(max=Ticket.SUBJECT_MAX, message=_l("Al massimo %(max)d caratteri.",
                                                                                max=Ticket.SUBJECT_MAX))])
    message = message_field(_l("Messaggio"), _l("Scrivi il messaggio."))

    def validate_subject(self, field):
        if not field.data:  # spaces only: InputRequired saw text
            raise ValidationError(_l("Scrivi l'oggetto."))


class TicketReplyForm(AttachmentsMixin, IdempotentForm):
    """The customer's reply (on a closed ticket within the reopening window, it reopens it)."""

    message = message_field(_l("La tua risposta"), _l("Scrivi la risposta."))


class StaffReplyForm(AttachmentsMixin, IdempotentForm):
    """An operator's answer, with files the customer downloads from the ticket (a copy of a bill,
    a form). `canned` + "Inserisci" puts a canned reply into the text without sending anything
    (a select and a button: it works without JavaScript too)."""

    message = TextAreaField(_l("Risposta al cliente"), filters=[without_controls], validators=[
        Length(max=Ticket.BODY_MAX, message=_l("Al massimo %(max)d caratteri.", max=Ticket.BODY_MAX))])
    canned = SelectField(_l("Risposta predefinita"), choices=[], validate_choice=False)
    status = SelectField(_l("Stato dopo la risposta"), choices=[
        SelectChoice(code, text) for code, text in labels.LABELS["ticket_status"].items()],
        default=Ticket.WAITING_CUSTOMER)

    def validate_message(self, field):
        if not (field.data or "").strip():
            raise ValidationError(_l("Scrivi la risposta."))


class StaffNoteForm(IdempotentForm):
    note = message_field(_l("Nota interna (il cliente non la vede)"), _l("Scrivi la nota."))


class TicketAssignForm(Form):
    """The view sets the choices: "" (nobody) and the staff."""

    assignee = SelectField(_l("Assegnato a"), choices=[])


class TicketStatusForm(Form):
    # Its own id: the reply form on the same page has a `status` too, and two ids alike would
    # give both labels to the first select and none to this one.
    status = SelectField(_l("Stato"), id="new_status", choices=[
        SelectChoice(code, text) for code, text in labels.LABELS["ticket_status"].items()])


class CannedReplyForm(Form):
    title = StringField(_l("Titolo"), filters=[without_controls, lambda text: text.strip() if text else text],
                        validators=[InputRequired(_l("Scrivi il titolo.")),
                                    Length(max=CannedReply.TITLE_MAX, message=_l("Al massimo %(max)d caratteri.",
                                                                                 max=CannedReply.TITLE_MAX))])
    body = message_field(_l("Testo"), _l("Scrivi il testo."))


# The back office's queue: ?assegnatario= besides an operator's id; ?eta= days without news.
TICKET_ASSIGNEE_FILTERS = {"": _l("Tutti"), "miei": _l("Assegnati a me"), "nessuno": _l("Non assegnati")}
TICKET_AGES = {"": _l("Qualsiasi"), "2": _l("Fermi da più di 2 giorni"), "7": _l("Fermi da più di 7 giorni")}


class TicketQueueFilterForm(FilterForm):
    """The queue's filters, from the URL (the view adds the operators to `assegnatario`)."""

    stato = SelectField(choices=[SelectChoice("", _l("Tutti tranne chiusi")), SelectChoice("tutti", _l("Tutti"))]
                        + [SelectChoice(code, text) for code, text in labels.LABELS["ticket_status"].items()])
    categoria = SelectField(choices=[SelectChoice("", _l("Tutte"))]
                            + [SelectChoice(code, text) for code, text in labels.LABELS["ticket_category"].items()])
    assegnatario = SelectField(choices=[])
    eta = SelectField(choices=[SelectChoice(value, text) for value, text in TICKET_AGES.items()])
    pagina = IntegerField(default=1, validators=[Optional(), PAGE_NUMBER])

    def __init__(self, staff=(), **kwargs):
        # Choices before FilterForm validates: an unknown operator id is ignored, as any value.
        self._staff = staff
        super().__init__(**kwargs)

    def validate(self, extra_validators=None):
        self.assegnatario.choices = ([SelectChoice(value, text) for value, text in TICKET_ASSIGNEE_FILTERS.items()]
                                     + [SelectChoice(str(user.id), user.email) for user in self._staff])
        return super().validate(extra_validators)


# --- Autolettura ------------------------------------------------------------------------------------

# What a meter's display shows: up to 9 digits, maybe up to 3 decimals.
READING_DIGITS = re.compile(r"[\d.,]{1,20}")


def reading_value(form, field):
    """The text as typed stays in the field; its number goes to `field.decimal`, read as the
    user's language writes numbers, the way the page shows the last reading: 24.171,5 in
    Italian, 24,171.5 in English. A text that language cannot mean (24.5 in Italian) is
    refused rather than guessed: 24.200 is twenty-four thousand two hundred there."""
    text = (field.data or "").replace(" ", "")
    try:
        value = parse_decimal(text, locale=i18n.language(), strict=True) if READING_DIGITS.fullmatch(text) else None
    except NumberFormatError:
        value = None
    if value is None or not value.is_finite() or value >= 10**9 or value.as_tuple().exponent < -3:
        raise ValidationError(_l("Scrivi solo le cifre del contatore, con al più 3 decimali "
                                 "(per esempio 12.345 o 12.345,6)."))
    field.decimal = value


class SelfReadingForm(Form):
    """Autolettura: the date, one value per register the meter shows (`for_registers` adds
    them), an optional photo (or the one already sent with this form, `kept_photo`, signed by
    the view), the confirmation of an implausible value, and the form's one-time key: a double
    click sends it twice, the reading is written once. The reading rules: self_readings.py."""

    date = PickerDateField(_l("Data della lettura"), validators=[InputRequired(_l("Scegli la data della lettura."))],
                           description=_l("Il giorno in cui hai letto il contatore."))
    photo = FileField(_l("Foto del contatore (facoltativa)"), render_kw=checked_upload(),
                      description=_l("JPEG o PNG, al massimo %(mb)d MB: ci aiuta a verificare la lettura.",
                                     mb=uploads.MAX_UPLOAD_MB))
    kept_photo = HiddenField(validators=[Length(max=300)])
    confirm_implausible = BooleanField(_l("Confermo che la lettura è giusta"))
    submission = HiddenField(validators=[Optional(), Length(max=36)])

    registers = ()

    @classmethod
    def for_registers(cls, registers, unit, **kwargs):
        fields = {}
        for register in registers:
            name = register if register != "total" else ""
            label = (_l("Lettura %(register)s (%(unit)s)", register=name, unit=unit) if name
                     else _l("Lettura (%(unit)s)", unit=unit))
            fields[f"value_{register}"] = StringField(label, validators=[
                InputRequired(_l("Scrivi la lettura che vedi sul contatore.")), Length(max=20), reading_value])
        form = type("SelfReadingForm", (cls,), fields)(**kwargs)
        form.registers = tuple(registers)
        return form

    def value_fields(self):
        """[(register, field)] in the meter's order."""
        return [(register, self[f"value_{register}"]) for register in self.registers]

    def values(self):
        """{register: Decimal} once validated."""
        return {register: field.decimal for register, field in self.value_fields()}


class RejectReadingForm(Form):
    """The back office refuses a self-reading: the customer reads the reason in the mail."""

    reason = StringField(_l("Motivo"), filters=[lambda text: text.strip() if text else text],
                         validators=[DataRequired(_l("Scrivi il motivo: lo leggerà il cliente.")),
                                     Length(max=300, message=_l("Al massimo 300 caratteri."))])
