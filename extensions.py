"""Flask extensions, created here unbound and bound to the app in `create_app()`."""
from flask_babel import Babel
from flask_login import LoginManager
from flask_mail import Mail
from flask_wtf.csrf import CSRFProtect

babel = Babel()
csrf = CSRFProtect()
login_manager = LoginManager()
mail = Mail()  # composes messages; mailer.py delivers them (with a timeout) from the outbox
