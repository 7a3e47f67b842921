"""Flask extensions, created unbound; create_app() binds them."""

from flask_compress import Compress
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def client_ip() -> str:
    """The client address; ProxyFix (TRUSTED_PROXIES) decides whether X-Forwarded-For counts."""
    from flask import request

    return request.remote_addr or "unknown"


db = SQLAlchemy(model_class=Base)
migrate = Migrate(render_as_batch=True, compare_type=True)
login_manager = LoginManager()
mail = Mail()
csrf = CSRFProtect()
compress = Compress()
limiter = Limiter(key_func=client_ip, default_limits=[], headers_enabled=True)
