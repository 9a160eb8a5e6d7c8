"""The utility's look, served as files: its colour as a stylesheet, its icon for the browser's tab.

Both come from the settings (PORTAL_COLOR, PORTAL_NAME), so a utility brands the portal without
touching a file. The icon is the name's first letter, white on the brand colour: an SVG for
browsers that read `<link rel="icon">`, and a real /favicon.ico for everything that asks for it
by that name (bookmarks, older browsers, feed readers), which would otherwise log a 404 on every
page.
"""
import functools
import io

from flask import current_app, make_response
from markupsafe import escape
from PIL import Image, ImageDraw, ImageFont

ICON_SVG = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">\
<rect width="64" height="64" rx="12" fill="{colour}"/>\
<text x="32" y="45" font-family="system-ui, sans-serif" font-size="38" font-weight="700" \
text-anchor="middle" fill="#fff">{letter}</text></svg>
"""


# WCAG 2's AA contrast for text, and the lightest background the brand colour is text on (a link
# on the page's background, style.css's --bg); white text on the brand (buttons, the header's
# welcome) then has more than that.
MIN_CONTRAST = 4.5
PAGE_BACKGROUND = "#f3f5f8"


def relative_luminance(colour):
    """WCAG 2's relative luminance of a #rrggbb colour."""
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first, second):
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def brand():
    return current_app.config["PORTAL_COLOR"], (current_app.config["PORTAL_NAME"].strip()[:1] or "S").upper()


def cached_file(body, mimetype):
    response = make_response(body)
    response.mimetype = mimetype
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def branding_css():
    """The utility's colour, as a stylesheet: the CSP allows no inline style."""
    return cached_file(":root { --brand: %s; }\n" % current_app.config["PORTAL_COLOR"], "text/css")


def favicon_svg():
    colour, letter = brand()
    return cached_file(ICON_SVG.format(colour=colour, letter=escape(letter)), "image/svg+xml")


@functools.lru_cache(maxsize=4)
def icon_bytes(colour, letter):
    """The same icon as an .ico (16, 32 and 48 pixels), drawn once per process."""
    size = 96
    image = Image.new("RGBA", (size, size))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=18, fill=colour)
    draw.text((size / 2, size / 2), letter, fill="white", anchor="mm", font=ImageFont.load_default(size=62))
    out = io.BytesIO()
    image.save(out, format="ICO", sizes=[(16, 16), (32, 32), (48, 48)])
    return out.getvalue()


def favicon_ico():
    return cached_file(icon_bytes(*brand()), "image/vnd.microsoft.icon")


def init_app(app):
    app.add_url_rule("/branding.css", "branding_css", branding_css)
    app.add_url_rule("/favicon.svg", "favicon_svg", favicon_svg)
    app.add_url_rule("/favicon.ico", "favicon_ico", favicon_ico)
