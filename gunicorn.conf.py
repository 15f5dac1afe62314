"""gunicorn reads this file from the directory it starts in (the Procfile's, the README's commands).

The access log leaves out what may carry a secret: the Basic-auth user (a key sent as `-u key:`) and
the query string (a key sent as `?api_key=`). The path is logged percent-encoded: gunicorn hands it over
decoded, and a decoded %0a would start a forged line.
"""

from urllib.parse import quote

from gunicorn.glogging import Logger

PATH_SAFE = "/:@!$&'()*+,;=-._~"  # RFC 3986 path characters stay readable


class AccessLogger(Logger):
    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = quote(environ.get("PATH_INFO", ""), safe=PATH_SAFE)
        return atoms


logger_class = AccessLogger
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss "%(a)s"'
