"""Language selection: Simplified Chinese unless the user picked another language with the switcher.

Django's LocaleMiddleware would follow the browser's Accept-Language; district staff often use browsers set to
English by IT, and the product's working language is Chinese, so only an explicit choice (the language cookie
set by the switcher) changes it.
"""

import contextlib

from django.conf import settings
from django.utils import translation
from django.utils.cache import patch_vary_headers


class ChineseFirstLocaleMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = settings.LANGUAGE_CODE
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        if chosen:
            with contextlib.suppress(LookupError):  # a stale or forged cookie: stay with the default
                language = translation.get_supported_language_variant(chosen)
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", request.LANGUAGE_CODE)
        patch_vary_headers(response, ("Cookie",))
        return response
