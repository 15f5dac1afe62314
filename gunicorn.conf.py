"""gunicorn reads this file from the directory it starts in (the Procfile's, the README's commands).

The access log leaves out what may carry a secret: the Basic-auth user (a key sent as `-u key:`), the
query string (a key sent as `?api_key=`) and the rest of a path that is itself a credential. The path is
logged percent-encoded: gunicorn hands it over decoded, and a decoded %0a would start a forged line.
"""

from urllib.parse import quote

from gunicorn.glogging import Logger

PATH_SAFE = "/:@!$&'()*+,;=-._~"  # RFC 3986 path characters stay readable
# Paths that are credentials: whoever reads them in the log could reset a password, confirm an address or
# fetch a customer's output. Logged up to this prefix only.
SECRET_PATHS = ("/accounts/password/reset/key/", "/accounts/confirm-email/", "/outputs/")


def loggable_path(path: str) -> str:
    secret = next((prefix for prefix in SECRET_PATHS if path.startswith(prefix)), None)
    return f"{secret}[hidden]" if secret else quote(path, safe=PATH_SAFE)


class AccessLogger(Logger):
    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = loggable_path(environ.get("PATH_INFO", ""))
        return atoms


logger_class = AccessLogger
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss "%(a)s"'
