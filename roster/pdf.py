"""Printable pages as PDF: the page's own HTML (its print stylesheet) rendered by WeasyPrint, with the CJK font
embedded (subset) so the file reads the same on any machine.

WeasyPrint needs the Pango library of the operating system (Debian: libpango-1.0-0, present wherever Chromium is;
the CJK font: fonts-noto-cjk). Where either is missing the PDF is refused with a message and the printable page
still works (the browser's "print to PDF").

May import: nothing of ours.
"""

from __future__ import annotations

from functools import cache

from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.utils.translation import gettext as _


class PdfUnavailable(RuntimeError):
    """This server cannot make PDFs (WeasyPrint or Pango missing)."""


@cache
def _weasyprint():
    try:
        import weasyprint
    except (ImportError, OSError) as error:  # OSError: the Pango library is not installed
        raise PdfUnavailable(str(error)) from error
    return weasyprint


def pdf_available() -> bool:
    try:
        _weasyprint()
    except PdfUnavailable:
        return False
    return True


_BASE = "https://report.invalid/"  # never fetched: only our static files are read, from disk


def _static_only_fetcher():
    """Stylesheets and images come from our static files on disk, never over the network: a PDF worker must not
    call back into its own server (one gunicorn worker would wait on itself) nor anywhere else. `data:` URLs (the
    charts' inline images, if any) are read as such; anything else is refused."""
    import mimetypes

    from django.conf import settings
    from django.contrib.staticfiles import finders

    weasyprint = _weasyprint()
    from weasyprint.urls import URLFetcherResponse

    prefix = _BASE + settings.STATIC_URL.lstrip("/")

    class StaticOnly(weasyprint.URLFetcher):
        def fetch(self, url, headers=None):
            if url.startswith(prefix):
                path = finders.find(url[len(prefix) :].split("?", 1)[0])
                if path:
                    with open(path, "rb") as file:
                        body = file.read()
                    kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
                    return URLFetcherResponse(url, body=body, headers={"Content-Type": kind})
            return super().fetch(url, headers)  # refused unless data: (allowed_protocols)

    return StaticOnly(allowed_protocols={"data"})


def pdf_bytes(html: str) -> bytes:
    """The PDF of a full HTML document whose stylesheets are our static files."""
    weasyprint = _weasyprint()
    return weasyprint.HTML(string=html, base_url=_BASE, url_fetcher=_static_only_fetcher()).write_pdf()


def pdf_response(request, template: str, context: dict, filename: str) -> HttpResponse:
    """Render `template` as a PDF attachment. Raises PdfUnavailable where this server cannot."""
    html = render_to_string(template, {**context, "for_pdf": True}, request=request)
    response = HttpResponse(pdf_bytes(html), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def unavailable_redirect(request, printable_url: str) -> HttpResponseRedirect:
    """Where this server cannot make a PDF: to the printable page, which the browser prints to PDF, saying so."""
    messages.error(request, _("This server cannot make PDF files (WeasyPrint or its Pango library is missing). "
                              "Open the printable page and print it to PDF from the browser."))  # fmt: skip
    return HttpResponseRedirect(printable_url)
