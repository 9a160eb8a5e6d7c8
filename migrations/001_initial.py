"""Peewee migrations -- 001_initial.py.

Some examples (model - class or model name)::

    > Model = migrator.orm['table_name']            # Return model in current state by name
    > Model = migrator.ModelClass                   # Return model in current state by name

    > migrator.sql(sql)                             # Run custom SQL
    > migrator.run(func, *args, **kwargs)           # Run python function with the given args
    > migrator.create_model(Model)                  # Create a model (could be used as decorator)
    > migrator.remove_model(model, cascade=True)    # Remove a model
    > migrator.add_fields(model, **fields)          # Add fields (allow_not_null=True skips default)
    > migrator.change_fields(model, **fields)       # Change fields
    > migrator.remove_fields(model, *field_names, cascade=True)
    > migrator.rename_field(model, old_field_name, new_field_name)
    > migrator.rename_table(model, new_table_name)
    > migrator.add_index(model, *col_names, unique=False)
    > migrator.add_not_null(model, *field_names)
    > migrator.add_default(model, field_name, default)
    > migrator.add_constraint(model, name, sql)
    > migrator.drop_index(model, *col_names)
    > migrator.drop_not_null(model, *field_names)
    > migrator.drop_constraints(model, *constraints)

"""

from contextlib import suppress

from decimal import ROUND_HALF_EVEN

import peewee as pw
from peewee_migrate import Migrator


with suppress(ImportError):
    import playhouse.postgres_ext as pw_pext


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    """Write your migrations here."""
    
    @migrator.create_model
    class Customer(pw.Model):
        id = pw.AutoField()
        code = pw.CharField(max_length=6, unique=True)
        name = pw.CharField(max_length=255)
        kind = pw.CharField(max_length=12)
        tax_code = pw.CharField(index=True, max_length=16)
        vat_number = pw.CharField(max_length=11, null=True)
        email = pw.CharField(max_length=255, null=True)
        phone = pw.CharField(max_length=255, null=True)
        fax = pw.CharField(max_length=255, null=True)
        mobile = pw.CharField(max_length=255, null=True)
        address = pw.CharField(max_length=255, null=True)
        postcode = pw.CharField(max_length=5, null=True)
        city = pw.CharField(max_length=255, null=True)
        province = pw.CharField(max_length=2, null=True)
        updated_at = pw.DateTimeField()

        class Meta:
            table_name = "customer"

    @migrator.create_model
    class User(pw.Model):
        id = pw.AutoField()
        customer = pw.ForeignKeyField(column_name='customer_id', field='id', model=migrator.orm['customer'], null=True, on_delete='CASCADE')
        role = pw.CharField(default='owner', max_length=8)
        username = pw.CharField(max_length=255, null=True, unique=True)
        email = pw.CharField(index=True, max_length=255)
        password_hash = pw.CharField(max_length=255)
        first_name = pw.CharField(max_length=255, null=True)
        last_name = pw.CharField(max_length=255, null=True)
        tax_code = pw.CharField(max_length=16, null=True)
        mobile = pw.CharField(max_length=255, null=True)
        language = pw.CharField(default='it', max_length=2)
        notify_invoices = pw.BooleanField(default=True)
        totp_secret = pw.CharField(max_length=255, null=True)
        created_at = pw.DateTimeField()
        confirmed_at = pw.DateTimeField(null=True)
        disabled = pw.BooleanField(default=False)
        failed_logins = pw.IntegerField(default=0)
        locked_until = pw.DateTimeField(null=True)
        last_login_at = pw.DateTimeField(null=True)
        previous_login_at = pw.DateTimeField(null=True)
        password_changed_at = pw.DateTimeField()

        class Meta:
            table_name = "user"

    @migrator.create_model
    class AuditLog(pw.Model):
        id = pw.AutoField()
        at = pw.DateTimeField(index=True)
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'], null=True, on_delete='SET NULL')
        customer = pw.ForeignKeyField(column_name='customer_id', field='id', model=migrator.orm['customer'], null=True, on_delete='SET NULL')
        action = pw.CharField(index=True, max_length=40)
        ip = pw.CharField(max_length=45, null=True)
        detail = pw.TextField(default='')

        class Meta:
            table_name = "auditlog"

    @migrator.create_model
    class Consent(pw.Model):
        id = pw.AutoField()
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'], on_delete='CASCADE')
        kind = pw.CharField(max_length=14)
        granted = pw.BooleanField()
        text_version = pw.CharField(max_length=20)
        recorded_at = pw.DateTimeField()
        ip = pw.CharField(max_length=45, null=True)

        class Meta:
            table_name = "consent"

    @migrator.create_model
    class Document(pw.Model):
        id = pw.AutoField()
        file = pw.CharField(max_length=255)
        title = pw.CharField(max_length=255)
        section = pw.CharField(max_length=12)
        customer = pw.ForeignKeyField(column_name='customer_id', field='id', model=migrator.orm['customer'], null=True, on_delete='CASCADE')
        published_on = pw.DateField()
        period_start = pw.DateField(null=True)
        period_end = pw.DateField(null=True)
        content_type = pw.CharField(default='application/pdf', max_length=255)
        size = pw.IntegerField(default=0)
        sha256 = pw.CharField(max_length=64, null=True)
        unpublished_at = pw.DateTimeField(null=True)

        class Meta:
            table_name = "document"
            indexes = [(('file', 'customer'), True), (('section', 'published_on'), False)]

    @migrator.create_model
    class EmailToken(pw.Model):
        id = pw.AutoField()
        token_hash = pw.CharField(max_length=64, unique=True)
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'], on_delete='CASCADE')
        purpose = pw.CharField(max_length=10)
        new_email = pw.CharField(max_length=255, null=True)
        created_at = pw.DateTimeField()
        expires_at = pw.DateTimeField()
        used_at = pw.DateTimeField(null=True)

        class Meta:
            table_name = "emailtoken"

    @migrator.create_model
    class SupplyPoint(pw.Model):
        id = pw.AutoField()
        code = pw.CharField(max_length=255, unique=True)
        customer = pw.ForeignKeyField(column_name='customer_id', field='id', model=migrator.orm['customer'], on_delete='CASCADE')
        commodity = pw.CharField(max_length=11)
        pod_pdr = pw.CharField(index=True, max_length=16)
        address = pw.CharField(max_length=255, null=True)
        postcode = pw.CharField(max_length=5, null=True)
        city = pw.CharField(max_length=255, null=True)
        province = pw.CharField(max_length=2, null=True)
        status = pw.CharField(default='active', max_length=6)
        start_date = pw.DateField(null=True)
        end_date = pw.DateField(null=True)
        technical_data = pw.TextField(default='{}')
        contract_data = pw.TextField(default='{}')

        class Meta:
            table_name = "supplypoint"
            indexes = [(('customer', 'code'), False)]

    @migrator.create_model
    class Invoice(pw.Model):
        id = pw.AutoField()
        customer = pw.ForeignKeyField(column_name='customer_id', field='id', model=migrator.orm['customer'], on_delete='CASCADE')
        supply_point = pw.ForeignKeyField(column_name='supply_point_id', field='id', model=migrator.orm['supplypoint'], null=True, on_delete='SET NULL')
        number = pw.CharField(max_length=255)
        year = pw.IntegerField()
        issue_date = pw.DateField()
        due_date = pw.DateField(null=True)
        period_start = pw.DateField(null=True)
        period_end = pw.DateField(null=True)
        total = pw.DecimalField(auto_round=False, decimal_places=2, max_digits=12, rounding=ROUND_HALF_EVEN)
        status = pw.CharField(default='unpaid', max_length=7)
        energy_f1_kwh = pw.DecimalField(auto_round=False, decimal_places=3, max_digits=12, null=True, rounding=ROUND_HALF_EVEN)
        energy_f2_kwh = pw.DecimalField(auto_round=False, decimal_places=3, max_digits=12, null=True, rounding=ROUND_HALF_EVEN)
        energy_f3_kwh = pw.DecimalField(auto_round=False, decimal_places=3, max_digits=12, null=True, rounding=ROUND_HALF_EVEN)
        peak_power_kw = pw.DecimalField(auto_round=False, decimal_places=3, max_digits=10, null=True, rounding=ROUND_HALF_EVEN)
        gas_smc = pw.DecimalField(auto_round=False, decimal_places=3, max_digits=12, null=True, rounding=ROUND_HALF_EVEN)
        pdf_path = pw.CharField(max_length=255, null=True)
        pdf_sha256 = pw.CharField(max_length=64, null=True)

        class Meta:
            table_name = "invoice"
            indexes = [(('number', 'year'), True), (('customer', 'supply_point', 'issue_date'), False)]

    @migrator.create_model
    class Measure(pw.Model):
        id = pw.AutoField()
        supply_point = pw.ForeignKeyField(column_name='supply_point_id', field='id', model=migrator.orm['supplypoint'], on_delete='CASCADE')
        start = pw.DateTimeField()
        kwh = pw.FloatField()
        interval_minutes = pw.SmallIntegerField(default=60)
        quality = pw.CharField(default='actual', max_length=9)

        class Meta:
            table_name = "measure"
            indexes = [(('supply_point', 'start'), True)]

    @migrator.create_model
    class OutboxMail(pw.Model):
        id = pw.AutoField()
        recipient = pw.CharField(max_length=255)
        subject = pw.CharField(max_length=255)
        body_text = pw.TextField()
        body_html = pw.TextField()
        created_at = pw.DateTimeField()
        attempts = pw.IntegerField(default=0)
        next_attempt_at = pw.DateTimeField(index=True)
        claimed_until = pw.DateTimeField(null=True)
        sent_at = pw.DateTimeField(index=True, null=True)
        last_error = pw.TextField(null=True)

        class Meta:
            table_name = "outboxmail"

    @migrator.create_model
    class Reading(pw.Model):
        id = pw.AutoField()
        supply_point = pw.ForeignKeyField(column_name='supply_point_id', field='id', model=migrator.orm['supplypoint'], on_delete='CASCADE')
        date = pw.DateField()
        register = pw.CharField(max_length=5)
        value = pw.DecimalField(auto_round=False, decimal_places=3, max_digits=12, rounding=ROUND_HALF_EVEN)
        source = pw.CharField(default='distributor', max_length=11)
        status = pw.CharField(default='validated', max_length=9)
        submitted_by = pw.ForeignKeyField(column_name='submitted_by_id', field='id', model=migrator.orm['user'], null=True, on_delete='SET NULL')
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "reading"
            indexes = [(('supply_point', 'date', 'register'), True)]

    @migrator.create_model
    class Ticket(pw.Model):
        id = pw.AutoField()
        customer = pw.ForeignKeyField(column_name='customer_id', field='id', model=migrator.orm['customer'], on_delete='CASCADE')
        supply_point = pw.ForeignKeyField(column_name='supply_point_id', field='id', model=migrator.orm['supplypoint'], null=True, on_delete='SET NULL')
        opened_by = pw.ForeignKeyField(column_name='opened_by_id', field='id', model=migrator.orm['user'], null=True, on_delete='SET NULL')
        subject = pw.CharField(max_length=255)
        category = pw.CharField(default='other', max_length=20)
        status = pw.CharField(default='open', max_length=8)
        created_at = pw.DateTimeField()
        updated_at = pw.DateTimeField()

        class Meta:
            table_name = "ticket"

    @migrator.create_model
    class TicketMessage(pw.Model):
        id = pw.AutoField()
        ticket = pw.ForeignKeyField(column_name='ticket_id', field='id', model=migrator.orm['ticket'], on_delete='CASCADE')
        author = pw.ForeignKeyField(column_name='author_id', field='id', model=migrator.orm['user'], null=True, on_delete='SET NULL')
        from_staff = pw.BooleanField(default=False)
        body = pw.TextField()
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "ticketmessage"

    @migrator.create_model
    class UserSession(pw.Model):
        id = pw.AutoField()
        token_hash = pw.CharField(max_length=64, unique=True)
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'], on_delete='CASCADE')
        created_at = pw.DateTimeField()
        last_seen_at = pw.DateTimeField()
        ip = pw.CharField(max_length=45, null=True)
        user_agent = pw.CharField(max_length=255, null=True)

        class Meta:
            table_name = "usersession"


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    """Write your rollback migrations here."""
    
    migrator.remove_model('usersession')

    migrator.remove_model('ticketmessage')

    migrator.remove_model('ticket')

    migrator.remove_model('reading')

    migrator.remove_model('outboxmail')

    migrator.remove_model('measure')

    migrator.remove_model('invoice')

    migrator.remove_model('supplypoint')

    migrator.remove_model('emailtoken')

    migrator.remove_model('document')

    migrator.remove_model('consent')

    migrator.remove_model('auditlog')

    migrator.remove_model('user')

    migrator.remove_model('customer')
