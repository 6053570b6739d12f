"""Files in an S3-compatible object store (AWS S3, MinIO, Cloudflare R2, Ceph RGW ...) via boto3.

``s3://bucket/prefix`` names the bucket and an optional key prefix. The endpoint comes from
``FLUXSERVE_S3_ENDPOINT_URL`` (empty: AWS), the region from ``FLUXSERVE_S3_REGION`` or boto3's
``AWS_DEFAULT_REGION``, credentials from boto3's standard chain (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, instance or pod roles). With a custom endpoint,
path-style addressing is used (``http://host:9000/bucket/key``), which MinIO, Ceph and R2 all
accept and which needs no wildcard DNS.

An S3 PUT is atomic (a reader sees the old object, the new one or none), so no temp-key dance.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fluxserve.storage.base import StoredObject, check_key

log = logging.getLogger(__name__)

_CHUNK = 256 * 1024


class S3Storage:
    def __init__(self, client: Any, bucket: str, prefix: str = "", label: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._label = label or f"s3://{bucket}/{self.prefix}"

    @classmethod
    def from_url(cls, url: str, endpoint_url: str = "", region: str = "") -> S3Storage:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise ValueError(
                f"FLUXSERVE_STORAGE_URL={url} needs boto3: pip install 'fluxserve[s3]'"
            ) from None
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"FLUXSERVE_STORAGE_URL: {url!r} names no bucket; use s3://bucket/prefix")
        config = Config(
            retries={"max_attempts": 5, "mode": "standard"},
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        client = boto3.client(
            "s3", endpoint_url=endpoint_url or None, region_name=region or None, config=config
        )
        where = f" at {endpoint_url}" if endpoint_url else ""
        return cls(client, bucket, prefix, label=f"s3://{bucket}/{prefix}{where}")

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def put_file(self, key: str, source: Path) -> None:
        self.client.upload_file(str(source), self.bucket, self._key(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _is_missing(exc):
                return False
            raise
        return True

    def fetch(self, key: str, scratch: Path) -> Path:
        """Download into ``scratch`` (temp name, then rename: a crash leaves no half file)."""
        from botocore.exceptions import ClientError

        target = scratch / check_key(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        os.close(fd)
        try:
            self.client.download_file(self.bucket, self._key(key), tmp)
            os.replace(tmp, target)
        except ClientError as exc:
            if _is_missing(exc):
                raise FileNotFoundError(f"no stored object {key!r} in {self._label}") from exc
            raise
        finally:
            Path(tmp).unlink(missing_ok=True)
        return target

    def open(self, key: str) -> StoredObject | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise
        return StoredObject(size=int(answer["ContentLength"]), chunks=_stream(answer["Body"]))

    def describe(self) -> str:
        return self._label


def _stream(body: Any) -> Iterator[bytes]:
    """The body's chunks; the connection goes back to the pool even if the reader stops early."""
    try:
        yield from body.iter_chunks(_CHUNK)
    finally:
        body.close()


def _is_missing(exc: Exception) -> bool:
    error = getattr(exc, "response", {}).get("Error", {})
    return str(error.get("Code")) in ("404", "NoSuchKey", "NotFound")
