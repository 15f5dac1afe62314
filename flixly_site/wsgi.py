"""The WSGI application gunicorn serves: Django, with chunked request bodies made readable."""

import os

from django.core.wsgi import get_wsgi_application

from flixly_site.chunked import ChunkedBodies

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flixly_site.settings")

application = ChunkedBodies(get_wsgi_application())
