"""gunicorn settings: JSON logs come from the app; metrics are shared across workers."""

import os

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
timeout = 60
# SIGTERM (a deploy, a scale-down): the master closes the listening socket, each worker stops
# accepting and finishes the requests it holds, then exits (tests/core/test_sigterm.py). 25 s
# is under the usual 30 s an orchestrator waits before SIGKILL; a request needs far less (every
# database wait in it is bounded, core/db.py), so the workers leave on their own.
graceful_timeout = 25
# The app writes its own access line (route template, no query string): gunicorn's would
# print raw URLs.
accesslog = None
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# A header field up to 64 KB reaches the app, which refuses one over 8 KB (or 32 KB in all)
# itself with a 431 problem+json (core/http.py); gunicorn's own refusal is text/html. Beyond
# 64 KB gunicorn still answers (text/html 431). The request line keeps gunicorn's default
# (4094 bytes; 8190 is gunicorn's maximum).
limit_request_field_size = 65536


def child_exit(server, worker):  # noqa: ANN001, ANN201 - gunicorn hook signature
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):  # noqa: ANN001, ANN201 - gunicorn hook signature
    # What the worker holds once the app is loaded (modules, the mappers, the schemas: about
    # 180,000 objects) lives as long as the worker. Frozen, the collector stops walking it on
    # every full collection: those walks were a fifth of a 500-item batch's CPU (README,
    # Benchmarks, issue 18).
    import gc

    gc.collect()
    gc.freeze()
