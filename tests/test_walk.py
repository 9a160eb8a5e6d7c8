"""A new customer's walk through the demo: every link, image and GET form of the customer's area,
every value of every select (every combination within a form), as a plain request and, where
the element asks htmx for it, with the headers htmx sends. Every answer must be a 200: no
error page and no 5xx for a normal click. Links found on a page are followed to the end of
the area, so a new page or control is walked without anyone adding it here."""
import itertools
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit

import demo
from tests.helpers import login
from tests.test_demo import demo_db, loaded  # noqa: F401 (the module's demo, as of a fixed day)

FILES = (".pdf", ".zip", ".svg", ".csv")
SKIPPED_PATHS = ("/logout", "/lingua", "/static/")  # writes, and files that are not the portal's pages
DATE_VALUES = ("", "2026-01-01", "2026-11-30", "31/12/2026")  # the last as a browser without a date picker sends it


class PageParts(HTMLParser):
    """The links, images, GET forms and htmx requests of a page."""

    def __init__(self):
        super().__init__()
        self.links, self.images, self.forms, self.htmx = [], [], [], []
        self.form = self.select = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("hx-get") and attrs.get("hx-target") and tag != "form":
            self.htmx.append((attrs["hx-get"], attrs["hx-target"].lstrip("#")))
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        elif tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])
        elif tag == "form" and attrs.get("method", "get").lower() == "get":
            self.form = {"action": attrs.get("action"), "hx_target": (attrs.get("hx-target") or "").lstrip("#"),
                         "fields": []}
            self.forms.append(self.form)
        elif self.form is not None and tag == "input" and attrs.get("name"):
            values = DATE_VALUES if attrs.get("type") == "date" else (attrs.get("value", ""),)
            self.form["fields"].append((attrs["name"], values))
        elif self.form is not None and tag == "select":
            self.select = (attrs["name"], [])
            self.form["fields"].append(self.select)
        elif self.select is not None and tag == "option":
            self.select[1].append(attrs.get("value", ""))

    def handle_endtag(self, tag):
        if tag == "form":
            self.form = None
        elif tag == "select":
            self.select = None


def form_urls(form, page_url):
    """Every combination of the form's values, as the browser would GET them."""
    action = form["action"] or urlsplit(page_url).path
    names = [name for name, _values in form["fields"]]
    for values in itertools.product(*(values for _name, values in form["fields"])):
        yield action + "?" + urlencode(list(zip(names, values)))


def is_ours(url):
    return url.startswith("/") and not url.startswith("//") and not url.startswith(SKIPPED_PATHS)


def canonical(url):
    parts = urlsplit(url)
    return parts.path + "?" + urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))


DATES_PER_VIEW = 3  # a chart's period walked back and forth: three dates show every link it has


def deep_page(url, dates_seen):
    """Follow "Mostra altre" to its second page only, and a chart's previous/next to three dates
    per view (day, week, month, year): the rest is the same shape, and walking every day of the
    demo's 13 months was 15,000 pages."""
    arguments = dict(parse_qsl(urlsplit(url).query))
    if int(arguments.get("pagina", 1)) > 2:
        return True
    if "data" not in arguments:
        return False
    date = arguments.pop("data")
    dates = dates_seen.setdefault((urlsplit(url).path, tuple(sorted(arguments.items()))), set())
    if date not in dates and len(dates) >= DATES_PER_VIEW:
        return True
    dates.add(date)
    return False


def test_every_link_image_and_filter_of_the_customer_area_answers_200(loaded):  # noqa: F811
    app, _lines = loaded
    client = app.test_client()
    assert login(client, demo.DEMO_CUSTOMER, demo.DEMO_PASSWORD).status_code == 303

    seen, problems, counts = set(), [], {"pages": 0, "fragments": 0, "files": 0}
    dates_seen = {}
    queue = ["/"]
    while queue:
        url = queue.pop()
        if canonical(url) in seen or deep_page(url, dates_seen):
            continue
        seen.add(canonical(url))
        response = client.get(url, follow_redirects=True)
        if response.status_code != 200:
            problems.append(f"GET {url}: {response.status_code}")
            continue
        if urlsplit(url).path.endswith(FILES) or response.mimetype != "text/html":
            counts["files"] += 1
            if not response.data:  # read to its end: a streamed file (the ZIP) is made as it is read
                problems.append(f"GET {url}: an empty file")
            continue
        counts["pages"] += 1
        html = response.get_data(as_text=True)
        parts = PageParts()
        parts.feed(html)
        found = parts.links + parts.images
        for form in parts.forms:
            for form_url in form_urls(form, url):
                found.append(form_url)
                if form["hx_target"]:
                    parts.htmx.append((form_url, form["hx_target"]))
        for fragment_url, target in parts.htmx:
            key = ("htmx", target, canonical(fragment_url))
            if key in seen or deep_page(fragment_url, dates_seen):
                continue
            seen.add(key)
            fragment = client.get(fragment_url, headers={
                "HX-Request": "true", "HX-Target": target, "HX-Current-URL": "http://localhost" + url})
            counts["fragments"] += 1
            if fragment.status_code != 200 or "<html" in fragment.get_data(as_text=True):
                problems.append(f"htmx GET {fragment_url} into #{target} from {url}: {fragment.status_code}")
        queue.extend(link.replace("&amp;", "&") for link in found if is_ours(link))

    assert not problems, "\n".join(problems)
    # The walk reached the whole area: both points, every menu page, filters, charts and files.
    assert counts["pages"] > 300 and counts["fragments"] > 300 and counts["files"] > 40, counts
