"""Operatori: administrators create staff accounts, reset a second factor, disable and enable."""
from flask import abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user
from playhouse.flask_utils import get_object_or_404

import accounts
import audit
from database import write_transaction
from forms import EmptyForm, OperatorForm
from models import User, UserSession
from views.backoffice import bp, require_admin
from views.rendering import render


@bp.route("/operatori", methods=["GET", "POST"])
def operators():
    require_admin()
    form = OperatorForm()
    status = 200
    if form.validate_on_submit():
        try:
            with write_transaction():
                created = accounts.create_staff(form.email.data, form.password.data, form.role.data)
                audit.record("operator_created", user=current_user._get_current_object(),
                             target_user=created.id, role=created.role)
        except ValueError as error:
            form.email.errors.append(str(error))
            status = 422
        else:
            flash(_("Operatore creato: al primo accesso attiverà il secondo fattore."), "success")
            return redirect(url_for("backoffice.operators"), 303)
    elif form.is_submitted():
        status = 422
    staff = list(User.staff())
    return render("backoffice/operators.html", title=_("Operatori"), form=form, staff=staff,
                  action_form=EmptyForm()), status


@bp.route("/operatori/<int:user_id>/<any(reset_second_factor, disable, enable):action>", methods=["POST"])
def operator_action(user_id, action):
    require_admin()
    EmptyForm().validate_on_submit() or abort(400)
    operator = get_object_or_404(User, User.id == user_id, User.role.in_(User.STAFF_ROLES))
    if operator.id == current_user.id and action == "disable":
        abort(409)  # an administrator does not lock themselves out
    with write_transaction():
        if action == "reset_second_factor":
            # The next login enrols a new authenticator; the sessions opened with the old one end.
            User.update(totp_secret=None, totp_pending_secret=None, totp_last_step=None).where(
                User.id == operator.id).execute()
            if operator.id != current_user.id:
                UserSession.delete().where(UserSession.user == operator).execute()
        else:
            User.update(disabled=action == "disable").where(User.id == operator.id).execute()
            if action == "disable":
                UserSession.delete().where(UserSession.user == operator).execute()
        audit.record(f"operator_{action}", user=current_user._get_current_object(), target_user=operator.id)
    flash(_("Fatto."), "success")
    return redirect(url_for("backoffice.operators"), 303)
