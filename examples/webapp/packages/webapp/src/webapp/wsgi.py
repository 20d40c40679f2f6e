"""Entry point for gunicorn: ``gunicorn webapp.wsgi:app``."""

from webapp import create_app

# gunicorn's ``module:name`` names an attribute, so the application is made at import, once per worker.
app = create_app()
