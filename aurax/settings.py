"""AURAX settings, read from the environment.

With no environment set this is the embedded single-machine mode: SQLite, an in-memory
channel layer, a local-memory cache and a Celery broker on the filesystem. `DATABASE_URL` and
`REDIS_URL` switch to PostgreSQL and Redis. Any variable may also be given as `<NAME>_FILE`,
a path whose content is the value (for container secrets).
"""

import os
import secrets
from pathlib import Path

import environ
from celery.schedules import crontab
from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env.smart_cast = False


def _from_env_or_file(name: str, default: str = "") -> str:
    if name in os.environ:
        return os.environ[name]
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return default


DATA_DIR = Path(_from_env_or_file("AURAX_DATA_DIR", str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _persisted_secret(name: str, make) -> str:
    """A secret from the environment, else one generated once and kept in DATA_DIR."""
    value = _from_env_or_file(name)
    if value:
        return value
    path = DATA_DIR / name.lower()
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = _persisted_secret("SECRET_KEY", lambda: secrets.token_urlsafe(50))
# Comma-separated Fernet keys, newest first; older ones still decrypt (MultiFernet).
AURAX_ENCRYPTION_KEYS = [
    k.strip()
    for k in _persisted_secret(
        "AURAX_ENCRYPTION_KEYS", lambda: Fernet.generate_key().decode()
    ).split(",")
    if k.strip()
]
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])


def _local_site_url() -> str:
    """Where bin/serve answers (its HOST and PORT), as a browser on this machine reaches it:
    the links AURAX sends (invitations, budget alerts) when SITE_URL is not set."""
    host = os.environ.get("HOST", "127.0.0.1")
    if host in ("", "0.0.0.0", "::"):  # every interface: this machine's own address
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{os.environ.get('PORT', '8000')}"


SITE_URL = env.str("SITE_URL", default=_local_site_url())

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.sites",
    "channels",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "aurax",
    "accounts",
    "workspaces",
    "providers",
    "billing",
    "gateway",
    "chat",
    "api",
    "prompts",
    "batches",
    "compare",
]

SOCIAL_PROVIDERS = []
if _from_env_or_file("GOOGLE_CLIENT_ID"):
    SOCIAL_PROVIDERS.append("google")
if _from_env_or_file("GITHUB_CLIENT_ID"):
    SOCIAL_PROVIDERS.append("github")
if _from_env_or_file("OIDC_CLIENT_ID"):
    SOCIAL_PROVIDERS.append("openid_connect")
INSTALLED_APPS += [f"allauth.socialaccount.providers.{p}" for p in SOCIAL_PROVIDERS]

MIDDLEWARE = [
    "aurax.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "aurax.urls"
ASGI_APPLICATION = "aurax.asgi.application"
WSGI_APPLICATION = "aurax.wsgi.application"

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
                "django.template.context_processors.i18n",
                "accounts.context_processors.preferences",
                "workspaces.context_processors.workspace",
                "billing.context_processors.budget_banner",
            ],
        },
    }
]

# --- Data stores -------------------------------------------------------------------------
DATABASE_URL = _from_env_or_file("DATABASE_URL")
REDIS_URL = _from_env_or_file("REDIS_URL")

if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=0))
    DATABASES["default"].setdefault("OPTIONS", {})
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
        # A connection pool per process (psycopg_pool): opening a PostgreSQL connection costs
        # ~25 ms here, and chat streams, /v1 requests and workers open many. DB_POOL_MAX=0
        # turns it off (then DB_CONN_MAX_AGE applies).
        if env.int("DB_POOL_MAX", default=20) > 0:
            DATABASES["default"]["CONN_MAX_AGE"] = 0
            DATABASES["default"]["OPTIONS"].setdefault(
                "pool",
                {"min_size": 1, "max_size": env.int("DB_POOL_MAX", default=20), "timeout": 10},
            )
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "aurax.sqlite3",
            "OPTIONS": {
                # WAL lets the web process and the Celery worker write side by side.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }

if REDIS_URL:
    _redis_cache = {
        "BACKEND": "aurax.redis_pool.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {
            "socket_connect_timeout": 2,
            "socket_timeout": 2,
            "pool_class": "aurax.redis_pool.SharedConnectionPool",
        },
    }
    # `responses`: the response cache (gateway.response_cache), shared by every process.
    CACHES = {"default": _redis_cache, "responses": {**_redis_cache, "KEY_PREFIX": "responses"}}
    CHANNEL_LAYERS = {
        "default": {
            # Pub/sub: each process queues what it receives for its sockets without a bound
            # (no capacity or expiry settings exist here), so nothing is dropped. Group
            # messages go out in pipelines (chat/redis_layer.py).
            "BACKEND": "chat.redis_layer.PipelinedRedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    CELERY_BROKER_URL = _from_env_or_file("CELERY_BROKER_URL", REDIS_URL)
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "responses": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "responses",
            "OPTIONS": {"MAX_ENTRIES": 2000},
        },
    }
    # channels' in-memory layer, made cheap per frame and loud on overflow (chat/layers.py).
    # A socket's queue holds ~30 s of one stream's frames (~33/s) before dropping any.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chat.layers.FastInMemoryChannelLayer",
            "CONFIG": {"capacity": 1000, "expiry": 60},
        }
    }
    CELERY_BROKER_URL = _from_env_or_file("CELERY_BROKER_URL", "filesystem://")
    _queue = DATA_DIR / "celery" / "queue"
    _processed = DATA_DIR / "celery" / "processed"
    _control = DATA_DIR / "celery" / "control"
    for _folder in (_queue, _processed, _control):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue),
        "data_folder_out": str(_queue),
        "processed_folder": str(_processed),
        "control_folder": str(_control),
        "store_processed": False,
    }

CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- Accounts ----------------------------------------------------------------------------
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
SITE_ID = 1
LOGIN_REDIRECT_URL = "/"
LOGIN_URL = "account_login"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
}
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if SITE_URL.startswith("https") else "http"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "AURAX"
MFA_TOTP_TOLERANCE = 1  # accept the neighbouring 30 s window: phones drift
SOCIALACCOUNT_PROVIDERS: dict = {}
if "google" in SOCIAL_PROVIDERS:
    SOCIALACCOUNT_PROVIDERS["google"] = {
        "APPS": [
            {
                "client_id": _from_env_or_file("GOOGLE_CLIENT_ID"),
                "secret": _from_env_or_file("GOOGLE_CLIENT_SECRET"),
            }
        ],
        "SCOPE": ["profile", "email"],
    }
if "github" in SOCIAL_PROVIDERS:
    SOCIALACCOUNT_PROVIDERS["github"] = {
        "APPS": [
            {
                "client_id": _from_env_or_file("GITHUB_CLIENT_ID"),
                "secret": _from_env_or_file("GITHUB_CLIENT_SECRET"),
            }
        ],
        "SCOPE": ["user:email"],
    }
if "openid_connect" in SOCIAL_PROVIDERS:
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "APPS": [
            {
                "provider_id": "oidc",
                "name": _from_env_or_file("OIDC_NAME", "Single sign-on"),
                "client_id": _from_env_or_file("OIDC_CLIENT_ID"),
                "secret": _from_env_or_file("OIDC_CLIENT_SECRET"),
                "settings": {"server_url": _from_env_or_file("OIDC_SERVER_URL")},
            }
        ]
    }

# --- Email -------------------------------------------------------------------------------
EMAIL_URL = _from_env_or_file("EMAIL_URL")
if EMAIL_URL:
    vars().update(env.email_url_config(EMAIL_URL))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="AURAX <noreply@localhost>")

# --- I18n --------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("pt-br", "Português (Brasil)"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static ------------------------------------------------------------------------------
STATIC_URL = "/static/"
# Where `collectstatic` puts them, and the app serves them from (WhiteNoise).
STATIC_ROOT = Path(_from_env_or_file("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = DATA_DIR / "media"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Security ----------------------------------------------------------------------------
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}
SESSION_COOKIE_SECURE = SITE_URL.startswith("https")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Providers ---------------------------------------------------------------------------
PROVIDER_CONNECT_TIMEOUT = env.float("PROVIDER_CONNECT_TIMEOUT", default=10.0)
# Between two reads of a stream, so also the longest wait for a first token.
PROVIDER_READ_TIMEOUT = env.float("PROVIDER_READ_TIMEOUT", default=120.0)
# Upstream connections per process. A streaming answer holds one for its whole length, so this
# is also how many answers a process streams at once: the next one waits for a connection to
# come free, i.e. for an answer to end (at 200, half of 400 concurrent chats waited a whole
# answer, ~6 s, for their first token).
PROVIDER_MAX_CONNECTIONS = env.int("PROVIDER_MAX_CONNECTIONS", default=1000)
PROVIDER_TRUST_ENV = env.bool("PROVIDER_TRUST_ENV", default=True)  # HTTPS_PROXY etc.
# Before the first token: attempts per candidate, exponential backoff with jitter, and the
# longest wait (a Retry-After beyond it moves on to the next candidate at once).
PROVIDER_RETRY_ATTEMPTS = env.int("PROVIDER_RETRY_ATTEMPTS", default=3)
PROVIDER_RETRY_BASE_DELAY = env.float("PROVIDER_RETRY_BASE_DELAY", default=0.5)
PROVIDER_RETRY_MAX_WAIT = env.float("PROVIDER_RETRY_MAX_WAIT", default=10.0)
# Circuit breaker per credential: this many consecutive failures skip it for the cool-down.
PROVIDER_CIRCUIT_FAILURES = env.int("PROVIDER_CIRCUIT_FAILURES", default=5)
PROVIDER_CIRCUIT_COOLDOWN = env.float("PROVIDER_CIRCUIT_COOLDOWN", default=60.0)
PROVIDER_CATALOG_REFRESH_HOURS = env.float("PROVIDER_CATALOG_REFRESH_HOURS", default=24.0)
# The offline demo model: on when set, and whenever no other provider is configured.
AURAX_DEMO_PROVIDER = env.bool("AURAX_DEMO_PROVIDER", default=False)
PROVIDER_DEMO_TOKEN_DELAY = env.float("PROVIDER_DEMO_TOKEN_DELAY", default=0.04)
CELERY_BEAT_SCHEDULE["providers-catalog-refresh"] = {
    "task": "providers.tasks.catalog_refresh_all",
    "schedule": PROVIDER_CATALOG_REFRESH_HOURS * 3600,
}

# The response cache (gateway.response_cache): the longest an answer is kept, in seconds, for
# the requests that ask for it (docs/api.md, "Response cache"); 0 turns it off.
RESPONSE_CACHE_MAX_AGE = env.int("RESPONSE_CACHE_MAX_AGE", default=86400)
# /v1/responses answers kept for `previous_response_id` and GET /v1/responses/{id}
# (docs/api.md, "Stored responses"), deleted this many days after they were made; 0 keeps none.
API_RESPONSES_RETENTION_DAYS = env.int("API_RESPONSES_RETENTION_DAYS", default=30)
CELERY_BEAT_SCHEDULE["api-responses-expire"] = {"task": "api.responses_expire", "schedule": 3600.0}
# A background response (`background: true`) whose worker has said nothing for this long is
# answered again by another; one queued while the broker was away is queued again.
API_BACKGROUND_STALE_SECONDS = env.int("API_BACKGROUND_STALE_SECONDS", default=120)
CELERY_BEAT_SCHEDULE["api-background-resume"] = {
    "task": "api.background_resume",
    "schedule": 60.0,
}

# --- Billing -----------------------------------------------------------------------------
# Raw usage events older than this are deleted once folded into the hourly/daily rollups.
USAGE_RETENTION_DAYS = env.int("USAGE_RETENTION_DAYS", default=90)
# A budget reservation not settled by then (a crashed process) is reclaimed.
BILLING_RESERVATION_TTL_SECONDS = env.int("BILLING_RESERVATION_TTL_SECONDS", default=3600)
CELERY_BEAT_SCHEDULE["billing-usage-rollup"] = {"task": "billing.usage_rollup", "schedule": 300.0}
CELERY_BEAT_SCHEDULE["billing-usage-prune"] = {"task": "billing.usage_prune", "schedule": 3600.0}
# Budget alert e-mails not sent when raised (broker or mail server away), sent again.
CELERY_BEAT_SCHEDULE["billing-budget-alerts-unsent"] = {
    "task": "billing.budget_alerts_unsent",
    "schedule": 300.0,
}
# Invoices for the previous month, on the 1st (UTC) once the last hours are rolled up.
CELERY_BEAT_SCHEDULE["billing-invoices-monthly"] = {
    "task": "billing.invoices_generate",
    "schedule": crontab(minute=30, hour=0, day_of_month=1),
}
# Stripe is optional: without a secret key plans are assigned by the operator in the admin.
STRIPE_SECRET_KEY = _from_env_or_file("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = _from_env_or_file("STRIPE_WEBHOOK_SECRET")

# --- Chat --------------------------------------------------------------------------------
# A side-by-side comparison whose socket closed goes on this long (seconds) for a reloaded
# or reconnected page to take it up (compare.comparisons); then its calls end.
COMPARE_RESUME_SECONDS = env.float("COMPARE_RESUME_SECONDS", default=60.0)
# Files attached to chat messages (chat.attachments): the largest one accepted, in bytes, and
# how long one uploaded but never sent is kept.
CHAT_ATTACHMENT_MAX_BYTES = env.int("CHAT_ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024)
CHAT_ATTACHMENT_UNSENT_HOURS = env.float("CHAT_ATTACHMENT_UNSENT_HOURS", default=24.0)
# Ask providers that cache prompts only when told to (Anthropic) to cache each chat answer's
# prompt, so that the conversation's next answer reads it back at the cache-read price
# (docs/websocket.md, "Prompt caching").
CHAT_PROMPT_CACHE = env.bool("CHAT_PROMPT_CACHE", default=True)
# What the chats of one workspace may keep in files, in bytes (0: no limit).
WORKSPACE_FILES_MAX_BYTES = env.int("WORKSPACE_FILES_MAX_BYTES", default=1024 * 1024 * 1024)
CELERY_BEAT_SCHEDULE["chat-attachments-unsent-delete"] = {
    "task": "chat.attachments_unsent_delete",
    "schedule": 3600.0,
}

# --- Batches -----------------------------------------------------------------------------
# Batch jobs of the /v1 API (docs/api.md, "Batches"): the largest input file, in bytes, and
# the most requests in one; how many of a batch's requests run at once; how many times one
# that is rate limited (or finds a provider overloaded) waits and asks again.
BATCH_FILE_MAX_BYTES = env.int("BATCH_FILE_MAX_BYTES", default=100 * 1024 * 1024)
BATCH_MAX_REQUESTS = env.int("BATCH_MAX_REQUESTS", default=50_000)
# A batch's requests wait on the model, not the CPU (bench/README.md, "Batches"): 16 at once
# run a 50,000-request batch of 10-second answers in about 9 hours, within its 24.
BATCH_CONCURRENCY = env.int("BATCH_CONCURRENCY", default=16)
BATCH_REQUEST_ATTEMPTS = env.int("BATCH_REQUEST_ATTEMPTS", default=5)
# How often a running batch checks that it is still wanted (cancel, expiry) and says it is
# alive; a batch not heard of for BATCH_STALE_SECONDS is taken up by another worker.
BATCH_CHECK_SECONDS = env.float("BATCH_CHECK_SECONDS", default=1.0)
BATCH_STALE_SECONDS = env.int("BATCH_STALE_SECONDS", default=120)
# A batch runs this long, then queues itself again behind the tasks that came meanwhile.
BATCH_SLICE_SECONDS = env.float("BATCH_SLICE_SECONDS", default=60.0)
# A batch's files (inputs, results) are deleted this long after they were made, unless the
# upload (`expires_after`) or the batch (`output_expires_after`) says otherwise; 0: kept
# until deleted.
BATCH_FILE_EXPIRY_DAYS = env.int("BATCH_FILE_EXPIRY_DAYS", default=30)
CELERY_BEAT_SCHEDULE["batches-resume"] = {"task": "batches.batches_resume", "schedule": 60.0}
CELERY_BEAT_SCHEDULE["batch-files-expire"] = {
    "task": "batches.batch_files_expire",
    "schedule": 3600.0,
}

# --- Logging -----------------------------------------------------------------------------
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "aurax.logging.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
