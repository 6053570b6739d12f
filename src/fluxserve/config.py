"""Settings, read from ``FLUXSERVE_*`` environment variables (and ``.env``).

Built only by entry points (cli.py) and passed down; nothing creates Settings at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from fluxserve.engines.base import EngineConfig
from fluxserve.engines.partner import backends_from_environ


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLUXSERVE_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./data")
    database_url: str = ""  # default: SQLite file in the data dir
    public_url: str = ""  # base of output URLs; default: http://{host}:{port}
    api_key: str = ""  # the first project's credentials; generated and stored when unset
    api_secret: str = ""
    require_signature: bool = True  # False: the first project is key-only
    nonce_max_age_seconds: int = 3600  # timestamp-like nonces older/newer than this are refused; 0 = off
    weights: str = "hub"  # hub | tiny | /a/local/folder
    device: str = "auto"
    workers: int = 1  # in-process worker threads (serve); 0 = API only
    allow_private_urls: bool = False
    model_memory_gb: float = 0.0
    cpu_offload: bool = False
    max_loaded_loras: int = 8  # LoRA adapters kept loaded (least recently used ones are unloaded)
    max_lora_bytes: int = 2 * 2**30  # size cap of a LoRA downloaded from selectedLoraModelPrivateUrl
    lora_fetch_timeout_seconds: float = 600.0
    lease_seconds: float = 30.0  # a running task's lease; a dead worker's task is re-queued after it lapses
    max_attempts: int = 3
    poll_interval_seconds: float = 0.5  # idle worker's queue poll
    callback_delays_seconds: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5, 10, 20, 40, 60]
    )
    callback_timeout_seconds: float = 10.0
    max_upload_bytes: int = 50 * 2**20
    kill_wait_seconds: float = 10.0  # Kill waits this long for the worker to stop before answering
    bfl_api_key: str = Field(default="", validation_alias="BFL_API_KEY")
    bfl_url: str = "https://api.bfl.ai"
    bfl_poll_interval: float = 0.5  # first wait between polls of a BFL request (grows to the max)
    bfl_poll_interval_max: float = 5.0
    bfl_max_wait: float = 900.0  # give up on a BFL request still pending after this long
    bfl_max_retries: int = 4  # per HTTP request, after 429 / 5xx / network errors
    bfl_retry_delay: float = 1.0  # first retry wait, doubled per retry
    log_level: str = "INFO"

    @field_validator("callback_delays_seconds", mode="before")
    @classmethod
    def _split_delays(cls, value: object) -> object:
        if isinstance(value, str):
            return [float(part) for part in value.strip("[] ").split(",") if part.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'fluxserve.db').resolve()}"

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            data_dir=self.data_dir.resolve(),
            weights=self.weights,
            device=self.device,
            allow_private_urls=self.allow_private_urls,
            model_memory_gb=self.model_memory_gb,
            cpu_offload=self.cpu_offload,
            max_loaded_loras=self.max_loaded_loras,
            max_lora_bytes=self.max_lora_bytes,
            lora_fetch_timeout_s=self.lora_fetch_timeout_seconds,
            bfl_api_key=self.bfl_api_key,
            bfl_url=self.bfl_url,
            bfl_poll_interval=self.bfl_poll_interval,
            bfl_poll_interval_max=self.bfl_poll_interval_max,
            bfl_max_wait=self.bfl_max_wait,
            bfl_max_retries=self.bfl_max_retries,
            bfl_retry_delay=self.bfl_retry_delay,
            backends=backends_from_environ(os.environ),  # FLUXSERVE_BACKEND_<TOOL>=bfl|local...
        )
