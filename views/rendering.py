"""Page or fragment, decided in one place; and the headers every response carries.

`render("invoices/index.html", **ctx)` answers a plain request with the whole page. An htmx
request names the element it will swap (HX-Target); when the page has a block of that name
(ids use '-', blocks '_': #invoice-rows -> block invoice_rows) only the block is rendered, from
the page's own template. Blocks of the layout (`frame`: menu and content) work the same way.
Every such response says `Vary: HX-Request, HX-Target`, so no cache mixes the two.

Because a block can be rendered alone, templates keep nothing at their top level that a block
needs: no imports or macros there (the form macros are the global `forms`), only `title`.
"""
from flask import current_app, make_response, render_template, request

LAYOUT = "layout.html"  # every page template extends it directly


def is_htmx():
    return request.headers.get("HX-Request") == "true"


def requested_block():
    """The block an htmx request wants, or None for a whole page."""
    if not is_htmx() or request.headers.get("HX-History-Restore-Request") == "true":
        return None
    target = request.headers.get("HX-Target") or ""
    return target.replace("-", "_") or None


def render_block(template_name, block, context):
    """Render one block of a page, with the page's overrides of the layout's blocks."""
    env = current_app.jinja_env
    current_app.update_template_context(context)
    template = env.get_template(template_name)
    jinja_context = template.new_context(context)
    if template_name != LAYOUT:
        for name, block_function in env.get_template(LAYOUT).blocks.items():
            jinja_context.blocks.setdefault(name, []).append(block_function)
    block_function = jinja_context.blocks.get(block, [None])[0]
    if block_function is None:
        return None
    return env.concat(block_function(jinja_context))


def render(template_name, status=200, **context):
    block = requested_block()
    body = render_block(template_name, block, dict(context)) if block else None
    if body is None:
        body = render_template(template_name, **context)
    response = make_response(body, status)
    response.vary.update(("HX-Request", "HX-Target"))
    return response


def security_headers(response):
    csp = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; form-action 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'"
    )
    response.headers.setdefault("Content-Security-Policy", csp)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if current_app.config["SESSION_COOKIE_SECURE"]:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.endpoint != "static" and "Cache-Control" not in response.headers:
        # Pages carry personal data: no shared cache, no back-button copy after logout.
        response.headers["Cache-Control"] = "no-store"
    return response


def branding_css():
    """The utility's colour, as a stylesheet: the CSP allows no inline style."""
    css = ":root { --brand: %s; }\n" % current_app.config["PORTAL_COLOR"]
    response = make_response(css)
    response.mimetype = "text/css"
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def init_app(app):
    # Templates are indented for people; the indentation of {% %} lines is not sent.
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.after_request(security_headers)
    app.add_url_rule("/branding.css", "branding_css", branding_css)
    # The form macros as a global, not an import: a block rendered on its own (a fragment)
    # does not run its template's top-level imports.
    app.jinja_env.globals["forms"] = app.jinja_env.get_template("_forms.html").module
