"""Settings, read from ``FLUXSERVE_*`` environment variables (and ``.env``).

Built only by entry points (cli.py) and passed down; nothing creates Settings at import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from fluxserve.engines.base import EngineConfig
from fluxserve.storage import Storage, open_storage

BACKEND_PREFIX = "FLUXSERVE_BACKEND_"
"""``FLUXSERVE_BACKEND_<TOOL SLUG>=bfl|local|local:<repo>|off|auto`` chooses a partner tool's backend."""


def backends_from_variables(variables: Mapping[str, Any]) -> dict[str, str]:
    """``FLUXSERVE_BACKEND_FLUX_2_PRO_T2I=local`` -> ``{"flux-2-pro-t2i": "local"}`` (any key case)."""
    return {
        key[len(BACKEND_PREFIX) :].lower().replace("_", "-"): str(value).strip()
        for key, value in variables.items()
        if key.upper().startswith(BACKEND_PREFIX) and value is not None and str(value).strip()
    }


class _BackendVariables(PydanticBaseSettingsSource):
    """Collects every ``FLUXSERVE_BACKEND_*`` variable into ``backends``: the environment wins over
    ``.env``, exactly as for the declared settings. The names are open-ended (one per partner tool), so
    they cannot be declared as fields."""

    def __init__(self, settings_cls: type[BaseSettings], *sources: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._sources = sources  # lowest priority first

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ answers for the whole source

    def __call__(self) -> dict[str, Any]:
        found: dict[str, str] = {}
        for source in self._sources:
            found.update(backends_from_variables(getattr(source, "env_vars", {}) or {}))
        return {"backends": found} if found else {}


def sqlite_url(data_dir: Path) -> str:
    """The embedded default store: a SQLite file in the data dir (when FLUXSERVE_DATABASE_URL is unset)."""
    return f"sqlite:///{(Path(data_dir) / 'fluxserve.db').resolve()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLUXSERVE_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./data")
    database_url: str = ""  # default: SQLite file in the data dir
    storage_url: str = ""  # files: "" = <data_dir>/files; s3://bucket/prefix = an S3-compatible store
    s3_endpoint_url: str = ""  # e.g. http://minio:9000 (empty: AWS); credentials: AWS_* / boto3 chain
    s3_region: str = ""  # empty: boto3's AWS_DEFAULT_REGION / profile
    public_url: str = ""  # base of output URLs; default: http://{host}:{port}
    api_key: str = ""  # the first project's credentials; generated and stored when unset
    api_secret: str = ""
    require_signature: bool = True  # False: the first project is key-only
    nonce_max_age_seconds: int = 3600  # timestamp-like nonces older/newer than this are refused; 0 = off
    weights: str = "hub"  # hub | tiny | /a/local/folder
    device: str = "auto"
    workers: int = 1  # worker processes `serve` supervises; 0 = API only
    worker_tools: Annotated[list[str], NoDecode] = Field(default_factory=list)  # claim only these tools
    devices: Annotated[list[str], NoDecode] = Field(default_factory=list)  # one worker per entry
    worker_threads: int = 1  # task threads per worker process (`fluxserve worker`)
    torch_threads: int = 0  # CPU threads per supervised worker; 0 = cores / workers
    drain_seconds: float = 60.0  # on SIGTERM, running tasks get this long to finish
    api_nice: int = Field(default=10, ge=-20, le=19)  # niceness of serve's HTTP thread (Linux)
    worker_nice: int = Field(default=0, ge=-20, le=19)  # workers' niceness, machine-wide; 0: unchanged
    live_poll_seconds: float = 1.0  # socket/SSE followers read the store after this long without events
    project_cache_seconds: float = 5.0  # API keys are re-read after this long (changes also notify)
    kill_poll_seconds: float = 1.0  # a worker reads a running task's kill flag from the store this often
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
    max_queued_tasks: int = 1000  # Run answers code 96 while this many tasks wait; 0 = no limit
    max_task_pixels: int = 4 * 2048 * 2048  # width x height x samples of one task; 0 = no limit
    kill_wait_seconds: float = 10.0  # Kill waits this long for the worker to stop before answering
    max_batch: int = 4  # compatible queued tasks a worker runs in one pipeline call (1: no batching)
    batch_wait_ms: float = 10.0  # an idle queue is watched this long for company after a claim
    prompt_cache_size: int = 32  # prompt encodings kept per worker (LRU); 0: none
    preview_every_steps: int = 0  # latent previews of every task every N steps (0: only tasks that ask)
    openai_wait_seconds: float = 600.0  # an OpenAI Images request waits this long for its task(s)
    bfl_api_key: str = Field(default="", validation_alias="BFL_API_KEY")
    bfl_url: str = "https://api.bfl.ai"
    bfl_poll_interval: float = 0.5  # first wait between polls of a BFL request (grows to the max)
    bfl_poll_interval_max: float = 5.0
    bfl_max_wait: float = 900.0  # give up on a BFL request still pending after this long
    bfl_max_retries: int = 4  # per HTTP request, after 429 / 5xx / network errors
    bfl_retry_delay: float = 1.0  # first retry wait, doubled per retry
    log_level: str = "INFO"
    access_log: bool = False  # uvicorn's line per HTTP request (off: clients poll Detail all the time)
    log_format: str = "text"  # text | json (one JSON object per line, with task id, project, tool)
    backends: dict[str, str] = Field(default_factory=dict)  # tool slug -> backend, from FLUXSERVE_BACKEND_*

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        backends = _BackendVariables(settings_cls, dotenv_settings, env_settings)
        return init_settings, backends, env_settings, dotenv_settings, file_secret_settings

    @field_validator("callback_delays_seconds", mode="before")
    @classmethod
    def _split_delays(cls, value: object) -> object:
        if isinstance(value, str):
            return [float(part) for part in value.strip("[] ").split(",") if part.strip()]
        return value

    @field_validator("worker_tools", "devices", mode="before")
    @classmethod
    def _split_lists(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or sqlite_url(self.data_dir)

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    def open_storage(self) -> Storage:
        return open_storage(self.storage_url, self.files_dir, self.s3_endpoint_url, self.s3_region)

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            data_dir=self.data_dir.resolve(),
            weights=self.weights,
            device=self.device,
            allow_private_urls=self.allow_private_urls,
            model_memory_gb=self.model_memory_gb,
            cpu_offload=self.cpu_offload,
            max_loaded_loras=self.max_loaded_loras,
            prompt_cache_size=self.prompt_cache_size,
            max_lora_bytes=self.max_lora_bytes,
            lora_fetch_timeout_s=self.lora_fetch_timeout_seconds,
            storage_url=self.storage_url,
            s3_endpoint_url=self.s3_endpoint_url,
            s3_region=self.s3_region,
            bfl_api_key=self.bfl_api_key,
            bfl_url=self.bfl_url,
            bfl_poll_interval=self.bfl_poll_interval,
            bfl_poll_interval_max=self.bfl_poll_interval_max,
            bfl_max_wait=self.bfl_max_wait,
            bfl_max_retries=self.bfl_max_retries,
            bfl_retry_delay=self.bfl_retry_delay,
            backends=dict(self.backends),
        )


class SettingsError(Exception):
    """FLUXSERVE_* variables that do not validate, described by their variable names."""


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, or SettingsError naming each bad variable, its value and what
    is wrong with it (instead of pydantic's traceback in front of an operator)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            # pydantic names a field by its alias when it has one (BFL_API_KEY): that is the variable
            name = f"FLUXSERVE_{field.upper()}" if field in Settings.model_fields else field
            problems.append(f"{name}={error.get('input')!r}: {error['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
