"""Page or fragment, decided in one place; and the headers every response carries.

`render("invoices/index.html", **ctx)` answers a plain request with the whole page. An htmx
request names the element it will swap (HX-Target); the page's block of that name (ids use
'-', blocks '_': #invoice-rows -> block invoice_rows) is rendered alone, from the page's own
template. Blocks of the layout (`frame`: menu and content) work the same way. A target that
names no block is a mistake in a template (a renamed id): in debug and tests it raises, in
production the whole page is sent rather than nothing.

The HTTP status is not render's business: a view returns `render(...), 422`. render's own
arguments are positional (the template, then the blocks to send out of band), so no template
variable (a `status` filter, say) can collide with them.

Whatever reads the htmx headers (`is_htmx`, `requested_block`) marks the response, which then
says `Vary: HX-Request` (and `HX-Target`): pages, fragments, redirects and the 401 alike, so
no cache mixes them.

Because a block can be rendered alone, templates keep nothing at their top level that a block
needs: no imports or macros there (the form macros are the global `forms`), only `title`.
"""
from flask import current_app, g, make_response, render_template, request

LAYOUT = "layout.html"  # every page template extends it directly


class UnknownTarget(LookupError):
    """An htmx request's HX-Target names no block of the page it asked for."""


def varies_on(*headers):
    """Note that the response depends on these request headers (see vary_on_htmx_headers)."""
    g.varies_on = g.get("varies_on", set()) | set(headers)


def is_htmx():
    varies_on("HX-Request")
    return request.headers.get("HX-Request") == "true"


def requested_block():
    """The block an htmx request wants, or None for a whole page."""
    if not is_htmx() or request.headers.get("HX-History-Restore-Request") == "true":
        return None
    varies_on("HX-Target")
    target = request.headers.get("HX-Target") or ""
    return target.replace("-", "_") or None


def render_block(template_name, block, context):
    """Render one block of a page, with the page's overrides of the layout's blocks.

    Written here rather than taken from jinja2-fragments, which renders the blocks a template
    defines itself but not the layout's (`frame`) with the page's blocks inside them."""
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


def render(template_name, /, *also, **context):
    """The page, or the block an htmx request's HX-Target names.

    `also` names more blocks of the page that an htmx answer carries out of band, each into the
    element of its id (block ticket_list -> #ticket-list): a list refreshed beside the form that
    changed it, a badge in the menu. A whole page has them in place already."""
    block = requested_block()
    if block is None:
        return render_page(template_name, **context)
    body = render_block(template_name, block, dict(context))
    if body is None:
        problem = f"HX-Target {request.headers.get('HX-Target')!r} names no block of {template_name}"
        if current_app.debug or current_app.testing:
            raise UnknownTarget(problem)
        current_app.logger.error("%s: sending the whole page", problem)
        return render_page(template_name, **context)
    for name in also:
        extra = render_block(template_name, name, dict(context))
        if extra is None:
            raise UnknownTarget(f"{template_name} has no block {name} to send out of band")
        body += f'<div id="{name.replace("_", "-")}" hx-swap-oob="innerHTML">{extra}</div>'
    return make_response(body)


def render_page(template_name, /, **context):
    """The whole template, whatever the request asks (error pages)."""
    return make_response(render_template(template_name, **context))


def render_fragment(template_name, /, **context):
    """A template that is a fragment itself, for a URL only htmx asks (an inline validation's
    error): a cache must not hand it out for a page."""
    varies_on("HX-Request", "HX-Target")
    return render_page(template_name, **context)


def vary_on_htmx_headers(response):
    """Say Vary for every htmx header the answer was decided on."""
    response.vary.update(g.get("varies_on", ()))
    return response


def security_headers(response):
    csp = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; form-action 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'"
    )
    response.headers.setdefault("Content-Security-Policy", csp)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    # A page whose address holds an emailed token (a reset, a confirmation) sends no Referer at
    # all: its form, styles and the page after it would carry the token to logs otherwise.
    token_in_path = request.url_rule is not None and "token" in request.url_rule.arguments
    response.headers.setdefault("Referrer-Policy", "no-referrer" if token_in_path else "strict-origin-when-cross-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if current_app.config["SESSION_COOKIE_SECURE"]:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.endpoint != "static" and "Cache-Control" not in response.headers:
        # Pages carry personal data: no shared cache, no back-button copy after logout.
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app):
    # Templates are indented for people; the indentation of {% %} lines is not sent.
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.after_request(security_headers)
    app.after_request(vary_on_htmx_headers)
    # The form macros as a global, not an import: a block rendered on its own (a fragment)
    # does not run its template's top-level imports.
    app.jinja_env.globals["forms"] = app.jinja_env.get_template("_forms.html").module
