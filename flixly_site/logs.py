"""What the logs say: how a request path appears (the one rule of the access log, gunicorn.conf.py, and
the API log), and routine refusals kept to one line.

No Django here: gunicorn's config file imports this before any app is loaded.
"""

import logging
import re
from urllib.parse import quote

PATH_SAFE = "/:@!$&'()*+,;=-._~"  # RFC 3986 path characters stay readable
# Paths that are credentials: whoever reads them in the log could reset a password, confirm an address or
# fetch a customer's output. Logged up to this prefix only.
SECRET_PATHS = ("/accounts/password/reset/key/", "/accounts/confirm-email/", "/outputs/")
# An API key pasted into a path (as a key id, say): only its last four characters are logged.
PASTED_KEY = re.compile(r"flx_(live|test)_\w*(\w{4})")


def loggable_path(path: str) -> str:
    """`path` as logged: a credential path cut to its prefix, a pasted key to its last four, and the rest
    percent-encoded (the path arrives decoded, and a decoded %0a would start a forged line)."""
    secret = next((prefix for prefix in SECRET_PATHS if path.startswith(prefix)), None)
    if secret:
        return f"{secret}[hidden]"
    return PASTED_KEY.sub(r"flx_\1_…\2", quote(path, safe=PATH_SAFE))


class LoggablePaths(logging.Filter):
    """For django.request, whose line for each 5xx names the request's path as it came: the path as our own
    lines log it (loggable_path), so a key pasted into it shows by its last four only."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Once per record: a path already made loggable would be encoded again ("…" as %E2%80%A6).
        if isinstance(record.args, tuple) and not getattr(record, "paths_loggable", False):
            record.args = tuple(_as_logged(arg) for arg in record.args)
            record.paths_loggable = True
        return True


def _as_logged(arg: object) -> object:
    return loggable_path(arg) if isinstance(arg, str) and arg.startswith("/") else arg


class RoutineRefusal(logging.Filter):
    """For a logger whose errors are routine on the internet (a scanner's bad Host header): one warning line
    each, without the traceback, so they neither flood the log nor page anyone, yet a misconfigured
    ALLOWED_HOSTS still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
