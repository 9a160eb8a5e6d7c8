"""gunicorn's settings for Sportello: `gunicorn --config deploy/gunicorn.conf.py 'app:create_app()'`
(deploy/systemd/sportello.service runs it). Why each one, in short; the README's "Install on
Debian" says more."""
import os

# Behind nginx on the same machine: never reachable from outside directly.
bind = "127.0.0.1:8000"

# Sync workers: gthread workers with keep-alive piled every connection on one worker in our
# measurements (DESIGN §7). A page waits on the database, not the CPU: gunicorn's rule of
# thumb, two per CPU this process may run on, plus one. WEB_CONCURRENCY (in /etc/sportello/env)
# sets another number.
worker_class = "sync"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * len(os.sched_getaffinity(0)) + 1)

# The app is made once, before the workers fork: a wrong setting stops the start with its
# message instead of workers failing one after the other, and the workers share its memory.
# The app expects it: no database connection is opened while it is made, and each worker
# starts its own mail thread and PostgreSQL listener after the fork (mailer, database).
preload_app = True

# A worker silent for this long is killed and replaced. Pages take milliseconds; the longest
# request is an upload to the back office's import (IMPORT_MAX_BYTES, 1 GiB), which nginx
# receives whole before passing it on over the loopback, where this worker stores it.
timeout = 120
graceful_timeout = 30  # a restart lets running requests finish for this long

# No access log: gunicorn's format holds the request line and the Referer, which for an email
# link's page carry its token (nginx keeps those requests out of its own log). Where one is
# needed: accesslog = "-" with access_log_format = "%(h)s %(t)s %(m)s %(s)s %(b)s %(M)s".
accesslog = None
errorlog = "-"  # standard error: the journal (journalctl -u sportello)
loglevel = "info"

proc_name = "sportello"
worker_tmp_dir = "/dev/shm"  # the workers' heartbeat files: memory, never a slow disk
control_socket_disable = True  # gunicorn's control interface: nothing here uses it
