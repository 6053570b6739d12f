"""A throwaway PostgreSQL server (Debian's packages) in a temp folder, for the store's tests.

Started with initdb + pg_ctl on a free port, listening on 127.0.0.1 only, trust auth; as root the
server runs as the ``postgres`` user (PostgreSQL refuses to run as root). When the binaries are not
installed the tests that need it fail with how to install them (``make test`` installs them first).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.support.service import free_port


def _bin_dir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


@dataclass
class PostgresServer:
    bin_dir: Path
    data_dir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> PostgresServer:
        self.data_dir.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.data_dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.data_dir}"
        )
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-o", options, "-w", "-l", str(self.data_dir / "log"), "start"
        )
        return self

    def new_database(self) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        import sqlalchemy as sa

        name = f"t{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        admin.dispose()
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "stop")
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def start_postgres() -> PostgresServer | None:
    """A running server, or None when PostgreSQL is not installed here.

    Its folder is a fresh one directly under the system temp dir, readable by the ``postgres`` user
    (pytest's own temp dirs are private to root).
    """
    bin_dir = _bin_dir()
    if bin_dir is None:
        return None
    parent = Path(tempfile.mkdtemp(prefix="fluxserve-pg-"))
    parent.chmod(0o755)
    return PostgresServer(bin_dir, parent / "data", free_port()).start()
