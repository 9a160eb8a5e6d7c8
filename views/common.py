"""Helpers that several view modules share."""
from flask import current_app

def svg_response(svg):
    response = current_app.response_class(svg, mimetype="image/svg+xml")
    # An image: pygal's own styles may apply inside it, nothing else may load or run.
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response.headers["Cache-Control"] = "private, no-store"
    return response
