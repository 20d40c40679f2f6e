"""The example web application."""

from __future__ import annotations

from flask import Flask

__all__ = ["create_app"]


def create_app() -> Flask:
    from sitecore import GREETING

    app = Flask(__name__)

    @app.get("/")
    def index() -> str:
        return GREETING

    return app
