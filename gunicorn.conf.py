"""gunicorn reads this file from the directory it starts in (the Procfile's, the README's commands).

The access log leaves out what may carry a secret: the Basic-auth user (a key sent as `-u key:`) and the
query string (a key sent as `?api_key=`); the path is logged as the API log logs it (flixly_site.logs).
"""

from gunicorn.glogging import Logger

from flixly_site.logs import loggable_path


class AccessLogger(Logger):
    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = loggable_path(environ.get("PATH_INFO", ""))
        return atoms


logger_class = AccessLogger
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss "%(a)s"'
