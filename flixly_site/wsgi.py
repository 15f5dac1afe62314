"""The WSGI application gunicorn serves: Django, with chunked bodies and charsets it cannot take put right."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

from flixly_site.wsgi_input import ChunkedBodies, TextCharsetsOnly

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flixly_site.settings")

application = TextCharsetsOnly(ChunkedBodies(get_wsgi_application()))

# The URLconf imports every view; then what the process holds for good (Django, the apps, the views)
# leaves the garbage collector's generations. A full collection then walks only what requests made:
# under load it paused a web process for 4-25 ms instead of 106-179 ms (bench/README.md).
get_resolver().url_patterns  # noqa: B018 (imported for its side effect)
gc.freeze()
