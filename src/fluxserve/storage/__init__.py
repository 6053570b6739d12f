"""Where input and output files live: a local folder (default) or an S3-compatible object store.

Every backend implements :class:`fluxserve.storage.base.Storage`; :func:`open_storage` picks one
from a storage URL (empty: the local folder; ``s3://bucket/prefix``: an object store).
"""

from fluxserve.storage.base import Storage, StoredObject, open_storage

__all__ = ["Storage", "StoredObject", "open_storage"]
