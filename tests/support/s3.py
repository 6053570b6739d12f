"""A real S3-compatible server on 127.0.0.1: moto's standalone server (``python -m moto.server``)
in a subprocess, reached over HTTP by boto3 like any other S3 endpoint."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.service import free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "fluxserve-test",
    "AWS_SECRET_ACCESS_KEY": "fluxserve-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class S3Server:
    port: int
    process: subprocess.Popen

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def new_bucket(self) -> str:
        name = f"fluxserve-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self, bucket: str, prefix: str = "files") -> dict[str, str]:
        """The settings a fluxserve process needs to keep its files in ``bucket``."""
        return {
            "FLUXSERVE_STORAGE_URL": f"s3://{bucket}/{prefix}",
            "FLUXSERVE_S3_ENDPOINT_URL": self.endpoint_url,
            **CREDENTIALS,
        }

    def keys(self, bucket: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_s3(log_dir: Path, timeout: float = 60.0) -> S3Server:
    port = free_port()
    log = open(log_dir / "moto.log", "wb")  # noqa: SIM115 - the process owns it until it exits
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = S3Server(port, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited early:\n{(log_dir / 'moto.log').read_text()}")
        try:
            httpx.get(f"{server.endpoint_url}/", timeout=1)
            return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError("moto server did not start")
