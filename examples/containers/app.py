"""The example app: gunicorn serves ``app:app`` (the HEALTHCHECK requests ``/``)."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "hello from a pylock.toml\n"
