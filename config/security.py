"""Response headers and error reports for a system holding minors' mental-health records (wiring, docs/SECURITY.md).

- `SecurityHeadersMiddleware`: a Content-Security-Policy on every response, and `Cache-Control: no-store` on every
  response to a signed-in person (a shared school computer's browser cache keeps no case page). Django's
  SecurityMiddleware sets HSTS, nosniff, Referrer-Policy and Cross-Origin-Opener-Policy (config/settings.py).
- `NoPersonalDataReporterFilter` and `NoPersonalDataReporter`: what an error mail to ADMINS may carry: the path, the
  exception and the code, never form fields, query strings, file names, cookies or secret settings.
"""

import base64
import hashlib
import re

from django.conf import settings
from django.utils.cache import add_never_cache_headers
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter


def _script_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


# Scripts only from our own static files: no inline <script> or on…= handler of ours (static/js/ replaces them).
# 'unsafe-hashes' allows one third-party handler we cannot move, by its exact text: the "select all" box of
# django-import-export's export page. Styles: the Material frontend, the admin and our templates set style="…"
# attributes and <style> blocks (Turbo's progress bar adds one), so inline styles stay allowed; a style cannot run
# code. data: images are the frontend's icons inlined in its CSS.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        f"script-src 'self' 'unsafe-hashes' {_script_hash('onSelectToggleChange(event)')}",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class SecurityHeadersMiddleware:
    """Content-Security-Policy on every response; no-store on every response to a signed-in person."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not (settings.DEBUG and response.status_code >= 500):  # Django's debug page runs inline script
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        user = getattr(request, "user", None)  # absent when a middleware above answered (e.g. an HTTPS redirect)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
        return response


class NoPersonalDataReporterFilter(SafeExceptionReporterFilter):
    """Hides, when DEBUG is off: every POST value, cookie value and local variable; the query string and referrer in
    the request's headers; settings whose name suggests a secret, a server address with credentials, or people."""

    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|DATABASE|URL|REDIS|LOCATION|DSN|ADMINS|EMAIL_HOST_USER",
        flags=re.IGNORECASE,
    )
    hidden_meta = frozenset({"QUERY_STRING", "RAW_URI", "REQUEST_URI", "HTTP_REFERER"})

    def get_post_parameters(self, request):
        if request is None or not self.is_active(request):
            return super().get_post_parameters(request)
        cleansed = request.POST.copy()
        for name in cleansed:
            cleansed[name] = self.cleansed_substitute
        return cleansed

    def get_safe_cookies(self, request):
        if not self.is_active(request):
            return super().get_safe_cookies(request)
        return dict.fromkeys(getattr(request, "COOKIES", {}), self.cleansed_substitute)

    def get_safe_request_meta(self, request):
        meta = super().get_safe_request_meta(request)
        if self.is_active(request):
            meta.update(dict.fromkeys(self.hidden_meta & meta.keys(), self.cleansed_substitute))
        return meta

    def get_traceback_frame_variables(self, request, tb_frame):
        if not self.is_active(request):
            return super().get_traceback_frame_variables(request, tb_frame)
        return [(name, self.cleansed_substitute) for name in tb_frame.f_locals]


class NoPersonalDataReporter(ExceptionReporter):
    """Django's report without the query string's and uploaded files' values (the filter cannot reach those)."""

    def get_traceback_data(self):
        data = super().get_traceback_data()
        if self.request is not None and self.filter.is_active(self.request):
            hidden = self.filter.cleansed_substitute
            data["request_GET_items"] = [(name, hidden) for name in self.request.GET]
            data["request_FILES_items"] = [(name, hidden) for name in self.request.FILES]
            data["request_insecure_uri"] = data["request_insecure_uri"].split("?", 1)[0]
        return data
