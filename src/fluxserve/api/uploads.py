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


def store_upload(svc: ApiServices, project_id: int, part: UploadedPart) -> UploadRecord:
    accesskey = random_token()
    name = safe_filename(part.filename, part.field)
    key = f"uploads/{accesskey}/{name}"
    svc.storage.put(key, part.data)
    content_type = part.content_type or "application/octet-stream"
    return svc.store.add_upload(project_id, name, content_type, len(part.data), accesskey, key)


def upload_url(svc: ApiServices, upload: UploadRecord) -> str:
    return file_url(svc.public_url, upload.accesskey, upload.name)
