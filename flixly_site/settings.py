"""Flixly settings: one module, configured from the environment.

With no variables set it runs in the embedded development mode (SQLite, filesystem
Celery broker, local media, console e-mail). Production differs only by environment
variables; see README.md for the full list.
"""

import secrets
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import dj_email_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from flixly_site.env import env_bool, env_choice, env_int, env_json_object, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("FLIXLY_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", True)


def _dev_secret(name: str) -> str:
    """A random secret kept under var/ so development restarts keep sessions and keys valid."""
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def _required_secret(env_name: str, dev_file: str) -> str:
    value = env_str(env_name)
    if value:
        return value
    if DEBUG:
        return _dev_secret(dev_file)
    raise ImproperlyConfigured(f"{env_name} must be set when DJANGO_DEBUG is off")


SECRET_KEY = _required_secret("DJANGO_SECRET_KEY", "secret_key")
# Pepper for API key hashes: separate from SECRET_KEY so rotating one never breaks the other.
FLIXLY_KEY_PEPPER = _required_secret("FLIXLY_KEY_PEPPER", "key_pepper")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_url("FLIXLY_SITE_URL", "http://127.0.0.1:8000", schemes=("http", "https")).rstrip("/")
# Production serves over TLS unless its site URL says http://: a trial on a LAN, which check --deploy warns of.
OVER_TLS = not DEBUG and (not env_str("FLIXLY_SITE_URL") or SITE_URL.startswith("https://"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # the API docs page's Redoc, served from here rather than a CDN
    "allauth",
    "allauth.account",
    "accounts",
    "billing",
    "generation",
]

MIDDLEWARE = [
    "flixly_site.middleware.RequestIdMiddleware",
    "flixly_site.middleware.ApiErrorEnvelopeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "flixly_site.middleware.ApiBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "flixly_site.middleware.PrivatePagesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.ApiRequestMiddleware",
]

# Where a higher app plugs into a lower one (accounts imports neither billing nor generation, billing never
# generation): each names its callables here.
# Callables (request, response) that add headers to authenticated API responses.
FLIXLY_API_RESPONSE_HOOKS = ["billing.hooks.credit_balance_header"]
# Callables (user_id=, event=, data=) that receive account events (flixly_site.events).
FLIXLY_ACCOUNT_EVENT_HANDLERS = ["generation.webhooks.event_record"]
# Shared-store keys read in the same round trip as each API request's rate-limit count:
# name -> callable(user_id) -> key; the values reach the hooks as request.flixly_reads[name].
FLIXLY_API_REQUEST_READS = {"balance": "billing.balance_cache.balance_key"}
# Callable(ids) -> the ids no catalog model has: checks a key's model allowlist.
FLIXLY_UNKNOWN_MODEL_IDS = "generation.catalog.catalog_unknown_ids"

ROOT_URLCONF = "flixly_site.urls"
WSGI_APPLICATION = "flixly_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "flixly_site.context_processors.support",
            ],
        },
    },
]

# Database: PostgreSQL through DATABASE_URL in production, SQLite under var/ otherwise.
DATABASE_URL = env_url("DATABASE_URL", schemes=("postgres", "postgresql", "pgsql", "sqlite"))
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
    # Parameters travel apart from the SQL (no quoting into the text), and a statement run five times
    # on a connection is prepared, so PostgreSQL stops parsing and planning it on every request.
    # Django leaves preparing off for transaction-mode poolers (PgBouncer before 1.22): set
    # DATABASE_PREPARED_STATEMENTS=false behind one.
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options.setdefault("server_side_binding", True)
        if env_bool("DATABASE_PREPARED_STATEMENTS", True):
            options.setdefault("prepare_threshold", 5)
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # The web server and the worker write at once: WAL plus IMMEDIATE transactions
            # make SQLite wait for the lock instead of failing with "database is locked".
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's cache (form tokens, a key's last-use stamp, a webhook test in flight): Redis when REDIS_URL is set.
# Without Redis it also holds the rate limits and API key versions, which use Redis directly otherwise
# (flixly_site.shared).
REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "flixly"}}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"

# django-allauth: e-mail is the login; verification is mandatory.
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
FLIXLY_SIGNUP_OPEN = env_bool("FLIXLY_SIGNUP_OPEN", True)
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
# Changing the login address asks for the password again unless it was given in the last 5 minutes: an open
# session alone must not be enough to take the account.
ACCOUNT_REAUTHENTICATION_REQUIRED = True
# A password reset for an address with no account sends nothing (the page says the same either way), so the
# form cannot be used to mail strangers.
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False
# Tell the account by e-mail when its password or e-mail address changes (to the old address too).
ACCOUNT_EMAIL_NOTIFICATIONS = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Flixly] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if OVER_TLS else "http"  # of the links in its e-mails

# E-mail: printed to the console unless EMAIL_URL is set (smtp://user:pass@host:587/?tls=True).
EMAIL_URL = env_url("EMAIL_URL", schemes=("smtp", "smtps", "submission", "console", "file", "memory", "dummy"))


def _mailer_from_url(url: str) -> dict:
    conf = dj_email_url.parse(url)
    options = {
        "host": conf["EMAIL_HOST"],
        "port": conf["EMAIL_PORT"],
        "username": conf["EMAIL_HOST_USER"],
        "password": conf["EMAIL_HOST_PASSWORD"],
        "use_tls": conf["EMAIL_USE_TLS"],
        "use_ssl": conf["EMAIL_USE_SSL"],
        "timeout": conf["EMAIL_TIMEOUT"] or 10,
    }
    return {"BACKEND": conf["EMAIL_BACKEND"], "OPTIONS": options}


MAILERS = {
    "default": _mailer_from_url(EMAIL_URL) if EMAIL_URL else {"BACKEND": "flixly_site.mail.ReadableConsoleBackend"}
}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Flixly <no-reply@flixly.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Where customers ask for help (shown where the product cannot help them itself, e.g. no payments yet).
FLIXLY_SUPPORT_EMAIL = env_str("FLIXLY_SUPPORT_EMAIL")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("FLIXLY_MEDIA_ROOT", str(VAR_DIR / "media")))

AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
if AWS_STORAGE_BUCKET_NAME:
    AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL") or None
    AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME") or None
    AWS_QUERYSTRING_AUTH = True
    AWS_QUERYSTRING_EXPIRE = 24 * 3600
    AWS_S3_SIGNATURE_VERSION = env_str("AWS_S3_SIGNATURE_VERSION", "s3v4")
    AWS_DEFAULT_ACL = None
    DEFAULT_STORAGE = {"BACKEND": "storages.backends.s3.S3Storage"}
else:
    DEFAULT_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": DEFAULT_STORAGE,
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Request bodies: the API accepts a 5 MB image upload plus its form fields.
FLIXLY_MAX_UPLOAD_BYTES = 5 * 1024 * 1024
FLIXLY_MAX_BODY_BYTES = env_int("FLIXLY_MAX_BODY_BYTES", 6 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = FLIXLY_MAX_BODY_BYTES

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.auth.ApiKeyAuthentication", "accounts.auth.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.auth.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["accounts.auth.PlanRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%SZ",  # the contract's (TIME_ZONE is UTC), as pagination.iso_utc
    # JSON in, as the contract says; POST /generate also takes multipart, for an image upload.
    "DEFAULT_PARSER_CLASSES": ["flixly_site.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "flixly_site.parsers.JSONFirstNegotiation",
    "EXCEPTION_HANDLER": "flixly_site.errors.api_exception_handler",
    "DEFAULT_METADATA_CLASS": "flixly_site.openapi.EnvelopedMetadata",
    "DEFAULT_SCHEMA_CLASS": "flixly_site.schema.PublicSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Flixly API",
    "DESCRIPTION": "One API and one credit system for generative images, video, speech, music and chat.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs page are public documents: no Authorization header (a dead key, a site's
    # HTTP basic auth) is read on them.
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Bodies are JSON unless an operation names another type (the CSV export's renderer only lets a client
    # that accepts CSV through; it is no ?format= choice).
    "RENDERER_WHITELIST": ["rest_framework.renderers.JSONRenderer"],
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "generation.api.serializers.JOB_STATUSES",
        "DeliveryStatusEnum": "generation.api.serializers.DELIVERY_STATUSES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "flixly_site.schema.without_serializer_notes",
        "flixly_site.openapi.envelope_hook",
    ],
}

# Celery: the filesystem broker under var/ needs no server; production sets CELERY_BROKER_URL.
CELERY_BROKER_URL = (
    env_url("CELERY_BROKER_URL", schemes=("redis", "rediss", "amqp", "amqps", "pyamqp", "sqs", "filesystem", "memory"))
    or REDIS_URL
    or "filesystem://"
)
QUEUE_DIR = VAR_DIR / "celery" / "queue"
if CELERY_BROKER_URL == "filesystem://":
    for folder in ("queue", "processed", "control"):
        (VAR_DIR / "celery" / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(QUEUE_DIR),
        "data_folder_out": str(QUEUE_DIR),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "polling_interval": 0.1,
    }
else:
    # An unacknowledged message (its worker vanished) goes back to the queue after this: jobs are bounded
    # to fit inside it (generation.models.MAX_JOB_SECONDS).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 2, "socket_timeout": 5}
CELERY_TASK_ALWAYS_EAGER = False
# Webhook deliveries wait on other people's servers (up to 10 s an attempt): their own queue and worker
# (the Procfile's `webhooks`), so slow endpoints never hold up jobs. A deployment with a single worker
# can set FLIXLY_WEBHOOK_QUEUE=celery, the jobs' queue, and that worker delivers them too.
# The same short-task worker runs beat's rescues (the reaper of lost jobs, the resender of lost deliveries):
# on the jobs' queue they waited behind every queued job (6 min 44 s behind 70 jobs in a trial).
FLIXLY_WEBHOOK_QUEUE = env_str("FLIXLY_WEBHOOK_QUEUE") or "webhooks"
CELERY_TASK_ROUTES = {
    name: {"queue": FLIXLY_WEBHOOK_QUEUE}
    for name in ("generation.tasks.deliver_webhook", "generation.tasks.reap_jobs", "generation.tasks.resend_webhooks")
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Behind a TLS-terminating proxy: trust its X-Forwarded-Proto, and take the client's address from the
# X-Forwarded-For entry the proxies appended (FLIXLY_PROXY_HOPS of them, counted from the right): the
# entries to their left are whatever the client sent.
FLIXLY_BEHIND_PROXY = env_bool("FLIXLY_BEHIND_PROXY", False)
FLIXLY_PROXY_HOPS = env_int("FLIXLY_PROXY_HOPS", 1, minimum=1)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if FLIXLY_BEHIND_PROXY else None
if OVER_TLS:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^api/v1/health$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preloading binds the whole domain to HTTPS in browsers for months: the operator's call, not a default.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]  # "not preloaded": the opt-in above, documented in the README
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOG_LEVEL = env_choice("FLIXLY_LOG_LEVEL", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "filters": {
        "routine": {"()": "flixly_site.logs.RoutineRefusal"},
        "loggable_paths": {"()": "flixly_site.logs.LoggablePaths"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR", "filters": ["loggable_paths"]},
        "django.security.DisallowedHost": {"filters": ["routine"]},
        # httpx logs every request's full URL at INFO; a user's imageUrl or webhook URL may carry a token.
        "httpx": {"level": "WARNING"},
    },
}

# Reuse a worker's database connection across tasks instead of reconnecting for each job.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000, minimum=0)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# A task is acknowledged only after it ran, and requeued if its worker dies mid-way.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A worker that loses the broker stops its running jobs: their unacknowledged messages go back to the queue,
# and another worker takes the jobs over (Celery's default from 6.0 on).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 600, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 660, minimum=1)
if CELERY_TASK_TIME_LIMIT <= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"CELERY_TASK_TIME_LIMIT must be more than CELERY_TASK_SOFT_TIME_LIMIT ({CELERY_TASK_SOFT_TIME_LIMIT})"
    )
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_REDIRECT_STDOUTS_LEVEL = "INFO"  # what a task prints (the console mailer's e-mails) is no warning
CELERY_TIMEZONE = "UTC"
# Every worker node records that it is alive every FLIXLY_WORKER_HEARTBEAT seconds (generation.heartbeat);
# beat's reaper takes back the running jobs of a node silent for FLIXLY_WORKER_LOST_AFTER seconds. Two
# missed beats at least, so one slow beat never passes for a lost node.
FLIXLY_WORKER_HEARTBEAT = env_int("FLIXLY_WORKER_HEARTBEAT", 30, minimum=1)
FLIXLY_WORKER_LOST_AFTER = env_int("FLIXLY_WORKER_LOST_AFTER", 3 * FLIXLY_WORKER_HEARTBEAT, minimum=1)
if FLIXLY_WORKER_LOST_AFTER < 2 * FLIXLY_WORKER_HEARTBEAT:
    raise ImproperlyConfigured(
        f"FLIXLY_WORKER_LOST_AFTER must be at least twice FLIXLY_WORKER_HEARTBEAT ({FLIXLY_WORKER_HEARTBEAT})"
    )

# Upstream providers: a model whose provider is not configured runs on the local engine when
# FLIXLY_LOCAL_FALLBACK is on (the default in development), else it is unavailable (503).
FLIXLY_LOCAL_FALLBACK = env_bool("FLIXLY_LOCAL_FALLBACK", DEBUG)
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL").rstrip("/")
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
REPLICATE_API_TOKEN = env_str("REPLICATE_API_TOKEN")
REPLICATE_API_BASE = env_str("REPLICATE_API_BASE", "https://api.replicate.com").rstrip("/")
FAL_KEY = env_str("FAL_KEY")
FAL_API_BASE = env_str("FAL_API_BASE", "https://queue.fal.run").rstrip("/")
FLIXLY_PROVIDER_TIMEOUT = env_int("FLIXLY_PROVIDER_TIMEOUT", 30, minimum=1)
# Extra provider routes for catalog entries, e.g. {"myproxy": "mypackage.providers.MyProvider"} (JSON).
FLIXLY_EXTRA_PROVIDERS = env_json_object("FLIXLY_EXTRA_PROVIDERS")
# Serves bench/urls.py (a bare endpoint and a hand-written submit) for `make bench` only.
FLIXLY_BENCH_ENDPOINTS = env_bool("FLIXLY_BENCH_ENDPOINTS", False)
# For tests and local development only: let imageUrl reach http:// and private addresses.
FLIXLY_OUTBOUND_ALLOW_HTTP = env_bool("FLIXLY_OUTBOUND_ALLOW_HTTP", False)
FLIXLY_OUTBOUND_ALLOW_PRIVATE = env_bool("FLIXLY_OUTBOUND_ALLOW_PRIVATE", False)

# Credits and Stripe. Without STRIPE_SECRET_KEY the billing page says payments are not configured.
FLIXLY_SIGNUP_BONUS = env_int("FLIXLY_SIGNUP_BONUS", 50, minimum=0)
FLIXLY_LOW_BALANCE_THRESHOLD = env_int("FLIXLY_LOW_BALANCE_THRESHOLD", 50, minimum=0)
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = env_str("STRIPE_API_BASE").rstrip("/")


# Content-Security-Policy, on every response that sets none of its own (API docs, output files): scripts and
# styles come from this server or carry the request's nonce (the admin's few inline ones). Previews load
# from the absolute links generation.outputs.output_url() makes: SITE_URL, or where S3 presigns them.
# The Checkout and portal buttons POST here and are redirected to Stripe, and browsers check form-action
# along a form's redirects.


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _s3_origins() -> list[str]:
    """Where boto3 points presigned links: the endpoint, else the bucket's own host. A bucket name with dots
    would break the TLS wildcard of its host, so boto3 puts such a name in the path instead."""
    if not AWS_STORAGE_BUCKET_NAME:
        return []
    if AWS_S3_ENDPOINT_URL:
        return [_origin(AWS_S3_ENDPOINT_URL)]
    hosts = ["s3.amazonaws.com", *([f"s3.{AWS_S3_REGION_NAME}.amazonaws.com"] if AWS_S3_REGION_NAME else [])]
    bucket = "" if "." in AWS_STORAGE_BUCKET_NAME else f"{AWS_STORAGE_BUCKET_NAME}."
    return [f"https://{bucket}{host}" for host in hosts]


OUTPUT_ORIGINS = [_origin(SITE_URL), *_s3_origins()]
STRIPE_ORIGINS = ["https://checkout.stripe.com", "https://billing.stripe.com"]
if STRIPE_API_BASE:  # a stand-in server (stripe-mock, the tests' fake) serves its own checkout pages
    STRIPE_ORIGINS.append(_origin(STRIPE_API_BASE))
CONTENT_POLICY = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:", *OUTPUT_ORIGINS],
    "media-src": [CSP.SELF, *OUTPUT_ORIGINS],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF, *STRIPE_ORIGINS],
    "frame-ancestors": [CSP.NONE],
}
# In development the policy reports instead of blocking: Django's debug pages style and script themselves inline.
SECURE_CSP, SECURE_CSP_REPORT_ONLY = ({}, CONTENT_POLICY) if DEBUG else (CONTENT_POLICY, {})
