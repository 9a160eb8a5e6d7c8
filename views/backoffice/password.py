"""Cambio Password for staff: the customers' dialog (a page without JavaScript), with the same
form, rules and template (views/account.password_change)."""
from flask import url_for

from views.account import password_change
from views.backoffice import bp


@bp.route("/cambio-password", methods=["GET", "POST"])
def change_password():
    home = url_for("backoffice.home")
    return password_change(url_for("backoffice.change_password"), home, home)
