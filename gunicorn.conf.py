"""gunicorn reads this file from the directory it starts in (the Procfile's, the README's commands).

The access log leaves out what may carry a secret: the Basic-auth user (a key sent as `-u key:`) and
the query string (a key sent as `?api_key=`). It logs the path, percent-encoded as received.
"""

access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss "%(a)s"'
