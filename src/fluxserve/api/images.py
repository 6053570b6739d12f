"""A Run request's image inputs -> :class:`~fluxserve.catalog.images.ImageRef`, in one place.

Each image input of the tool is one of: a multipart file part (named after the input's
``file_field``, e.g. ``inputImage``, or after the input itself), the name of a file the project
uploaded earlier, one of this server's own file URLs (an earlier output or upload, read from
storage), or any other http(s) URL (left to the input's coercion to check, fetched by the worker).
Stored files are echoed in the task's parameters as their download URLs, as Wiro does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fluxserve.api.body import ParsedBody
from fluxserve.api.services import ApiServices
from fluxserve.api.uploads import own_file_key, store_upload, upload_url
from fluxserve.catalog.coerce import looks_like_http_url
from fluxserve.catalog.images import ImageRef
from fluxserve.catalog.model import ToolSpec
from fluxserve.errors import FieldError, ValidationError
from fluxserve.tasks.records import Project


@dataclass
class ResolvedImages:
    """The stored image inputs of one request, and the URLs to echo for them."""

    refs: dict[str, ImageRef] = field(default_factory=dict)
    echoed: dict[str, str] = field(default_factory=dict)  # input -> download URL of the stored file

    @property
    def storage_keys(self) -> dict[str, str]:
        return {name: ref.storage_key for name, ref in self.refs.items()}

    def sent_parts(self, tool: ToolSpec) -> frozenset[str]:
        """The file parts that stand in for a (required) input's value, for its validation."""
        return frozenset(part for part, name in tool.file_fields.items() if name in self.refs)


def resolve_images(
    svc: ApiServices, project: Project, tool: ToolSpec, parsed: ParsedBody, fields: dict[str, Any]
) -> ResolvedImages:
    """Store the file parts and find earlier uploads by name; URLs stay values of their inputs."""
    resolved = ResolvedImages()
    for part_name, part in parsed.files_by_name().items():
        input_name = tool.file_fields.get(part_name) or (part_name if tool.input(part_name) else None)
        if input_name is None:
            files = ", ".join(tool.file_fields) or "none"
            raise ValidationError([FieldError(part_name, f"this tool takes no file; file inputs: {files}")])
        upload = store_upload(svc, project.id, part)
        resolved.refs[input_name] = ImageRef(input_name, storage_key=upload.storage_key)
        resolved.echoed[input_name] = upload_url(svc, upload)
    errors = []
    for spec in tool.inputs:
        if spec.rules.kind != "image" or spec.name in resolved.refs:
            continue
        value = fields.get(spec.name)
        value = value.strip() if isinstance(value, str) else ""
        if not value:
            continue
        if looks_like_http_url(value):
            key = own_file_key(svc, value)
            if key is not None:  # this server's own output or upload: read it from storage
                resolved.refs[spec.name] = ImageRef(spec.name, storage_key=key)
                resolved.echoed[spec.name] = value
            continue  # any other URL is checked by the input's coercion and fetched by the worker
        upload = svc.store.upload_by_name(project.id, value)
        if upload is None:
            errors.append(
                FieldError(
                    spec.name,
                    f"{value!r} is neither an http(s) URL nor the name of a file uploaded to this project "
                    f"(upload it with POST /v1/File/Upload or send it as the file part "
                    f"'{spec.rules.file_field}')",
                )
            )
            continue
        resolved.refs[spec.name] = ImageRef(spec.name, storage_key=upload.storage_key)
        resolved.echoed[spec.name] = upload_url(svc, upload)
    if errors:
        raise ValidationError(errors)
    return resolved
