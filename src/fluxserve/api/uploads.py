"""Client files: stored under the data dir, served at /v1/File/{accesskey}/{name} like Wiro's."""

from __future__ import annotations

import re
from pathlib import PurePath

from fluxserve.api.body import UploadedPart
from fluxserve.api.services import ApiServices
from fluxserve.tasks.records import UploadRecord
from fluxserve.tasks.store import random_token
from fluxserve.wire import file_url

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str, fallback: str) -> str:
    """A file name that is safe in a URL path and on disk (no folders, no odd characters)."""
    cleaned = _UNSAFE.sub("_", PurePath(name.replace("\\", "/")).name).strip("._")
    return cleaned[:120] or fallback


GENERIC_TYPE = "application/octet-stream"
_IMAGE_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),  # after b"RIFF" and the size
    (b"ftypavif", 4, "image/avif"),
)
SNIFF_BYTES = 16


def image_type(head: bytes) -> str | None:
    """The image type the first bytes of a file prove (PNG, JPEG, GIF, WebP, AVIF), or None.

    Never what a client declared: a declared type is a claim, and a ``text/html`` part served back
    as such would run its script on the API's origin.
    """
    for magic, offset, content_type in _IMAGE_MAGIC:
        if head[offset : offset + len(magic)] == magic and (offset != 8 or head.startswith(b"RIFF")):
            return content_type
    return None


def store_upload(svc: ApiServices, project_id: int, part: UploadedPart) -> UploadRecord:
    """Store one uploaded part; its recorded type is the verified image type, else the generic one."""
    accesskey = random_token()
    name = safe_filename(part.filename, part.field)
    key = f"uploads/{accesskey}/{name}"
    svc.storage.put(key, part.data)
    content_type = image_type(part.data[:SNIFF_BYTES]) or GENERIC_TYPE
    return svc.store.add_upload(project_id, name, content_type, len(part.data), accesskey, key)


def upload_url(svc: ApiServices, upload: UploadRecord) -> str:
    return file_url(svc.public_url, upload.accesskey, upload.name)


def served_file_key(svc: ApiServices, accesskey: str, name: str) -> str | None:
    """The storage key of the file ``GET /v1/File/{accesskey}/{name}`` serves: an output, else an
    upload; None when neither has that key and name. The access key is the credential for a file."""
    output = svc.store.output_by_accesskey(accesskey)
    if output is not None and output.name == name:
        return output.storage_key
    upload = svc.store.upload_by_accesskey(accesskey)
    if upload is not None and upload.name == name:
        return upload.storage_key
    return None


def own_file_key(svc: ApiServices, url: str) -> str | None:
    """The storage key behind one of this server's own file URLs (``{public_url}/v1/File/{key}/{name}``,
    as task outputs and uploads are echoed), else None. Such a URL is read from storage, not fetched:
    no network hop, and it works where the public URL is a loopback or private address that the safe
    fetcher refuses (the default 127.0.0.1), so an output can feed the next task."""
    prefix = f"{svc.public_url}/v1/File/"
    if not url.startswith(prefix):
        return None
    accesskey, _, name = url[len(prefix) :].partition("/")
    if not accesskey or not name or "/" in name or "?" in name or "#" in name:
        return None
    return served_file_key(svc, accesskey, name)
