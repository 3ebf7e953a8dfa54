#!/usr/bin/env python3
"""Allot's two commands, for a fresh machine with only Python 3.11+.

    python3 dev.py serve   # set up, load demo data, serve http://127.0.0.1:8000 (SQLite, in-process tasks)
    python3 dev.py test    # install and run every test: SQLite, then PostgreSQL + Redis + worker where they answer

Uses only the standard library until the virtual environment exists.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
PG_URL = os.environ.get("ALLOT_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/allot")
REDIS_TEST_URL = os.environ.get("ALLOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def run(*args: str, env: dict | None = None, check: bool = True) -> int:
    print("+", " ".join(args), flush=True)
    completed = subprocess.run(args, cwd=ROOT, env={**os.environ, **(env or {})})
    if check and completed.returncode != 0:
        sys.exit(completed.returncode)
    return completed.returncode


def ensure_venv(extras: str = "") -> None:
    if not PY.exists():
        print(f"Creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    marker = VENV / f".installed{extras}"
    stamp = (ROOT / "pyproject.toml").stat().st_mtime
    if marker.exists() and marker.read_text() == str(stamp):
        return
    run(str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(str(PY), "-m", "pip", "install", "--quiet", "-e", f".{extras}")
    marker.write_text(str(stamp))


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def serve() -> None:
    ensure_venv()
    env = {"DEBUG": os.environ.get("DEBUG", "true")}
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)  # the embedded default: SQLite file, in-process tasks
    run(str(PY), "manage.py", "migrate", "--no-input", env=env)
    run(str(PY), "manage.py", "demo", "--if-empty", env=env)
    run(str(PY), "manage.py", "demo_users", env=env)
    # The server runs allocation runs on its background thread, as a worker would in production
    # (the commands above keep them synchronous: a command's thread would die with it).
    env["ALLOT_INPROCESS_BACKGROUND"] = os.environ.get("ALLOT_INPROCESS_BACKGROUND", "true")
    os.execve(str(PY), [str(PY), "manage.py", "runserver", "127.0.0.1:8000", "--noreload"], {**os.environ, **env})


def test(extra: list[str]) -> None:
    ensure_venv("[test]")
    print("\n=== ruff (lint gate) ===", flush=True)
    if run(str(VENV / "bin" / "ruff"), "check", ".", check=False) != 0:
        print("ruff found problems (see above; `ruff check --fix .` fixes most): not running the tests.")
        sys.exit(1)
    base_env = {"DATABASE_URL": "", "REDIS_URL": "", "CELERY_BROKER_URL": "", "DJANGO_ALLOW_ASYNC_UNSAFE": "true"}
    print("\n=== SQLite, tasks in-process ===", flush=True)
    code = run(str(PY), "-m", "pytest", "-q", *extra, env=base_env, check=False)
    if answers("127.0.0.1", 5432) and answers("127.0.0.1", 6379):
        print("\n=== PostgreSQL + Redis + Celery worker ===", flush=True)
        pg_env = {**base_env, "DATABASE_URL": PG_URL, "REDIS_URL": REDIS_TEST_URL}
        code = run(str(PY), "-m", "pytest", "-q", "-m", "not browser", *extra, env=pg_env, check=False) or code
    else:
        print("\nPostgreSQL or Redis not answering on 127.0.0.1: skipped the PostgreSQL/worker run.")
    sys.exit(code)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in {"serve", "test"}:
        print(__doc__)
        sys.exit(2)
    if sys.argv[1] == "serve":
        serve()
    else:
        test(sys.argv[2:])


if __name__ == "__main__":
    main()
