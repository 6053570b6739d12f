"""Settings: every FLUXSERVE_* value, from the environment or ``.env``, reaches the engine config."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxserve.config import Settings, SettingsError, backends_from_variables, load_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No FLUXSERVE_* variables from the caller's shell; the working folder is an empty temp dir."""
    import os

    for name in list(os.environ):
        if name.startswith("FLUXSERVE_") or name == "BFL_API_KEY":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_work_on_one_machine(clean_env: Path) -> None:
    settings = Settings()
    assert settings.port == 8000
    assert settings.resolved_database_url == f"sqlite:///{(Path('data') / 'fluxserve.db').resolve()}"
    assert settings.resolved_public_url == "http://127.0.0.1:8000"
    assert settings.backends == {}
    assert settings.engine_config().backends == {}


def test_environment_values_are_coerced(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUXSERVE_PORT", "9001")
    monkeypatch.setenv("FLUXSERVE_CALLBACK_DELAYS_SECONDS", "1, 2.5,4")
    monkeypatch.setenv("FLUXSERVE_PUBLIC_URL", "https://example.test/")
    monkeypatch.setenv("BFL_API_KEY", "k")
    settings = Settings()
    assert settings.port == 9001
    assert settings.callback_delays_seconds == [1.0, 2.5, 4.0]
    assert settings.resolved_public_url == "https://example.test"
    assert settings.engine_config().bfl_api_key == "k"


def test_backend_variables_come_from_the_environment(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLUXSERVE_BACKEND_FLUX_2_PRO_T2I", "local:black-forest-labs/FLUX.2-klein-4B")
    monkeypatch.setenv("FLUXSERVE_BACKEND_FLUX_PRO_1_1_ULTRA", "off")
    backends = Settings().engine_config().backends
    assert backends == {
        "flux-2-pro-t2i": "local:black-forest-labs/FLUX.2-klein-4B",
        "flux-pro-1-1-ultra": "off",
    }


def test_backend_variables_come_from_dotenv_and_the_environment_wins(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / ".env").write_text(
        "FLUXSERVE_BACKEND_FLUX_2_PRO_T2I=local\nFLUXSERVE_BACKEND_FLUX_PRO_1_1_ULTRA=local\nFLUXSERVE_PORT=8123\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("FLUXSERVE_BACKEND_FLUX_PRO_1_1_ULTRA", "bfl")
    settings = Settings()
    assert settings.port == 8123
    assert settings.engine_config().backends == {"flux-2-pro-t2i": "local", "flux-pro-1-1-ultra": "bfl"}


def test_backend_variable_parsing_ignores_blank_values_and_other_names() -> None:
    assert backends_from_variables(
        {"fluxserve_backend_flux_2_pro_t2i": " local ", "FLUXSERVE_BACKEND_X": "  ", "FLUXSERVE_PORT": "1"}
    ) == {"flux-2-pro-t2i": "local"}


def test_engine_config_carries_the_engine_settings(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUXSERVE_WEIGHTS", "tiny")
    monkeypatch.setenv("FLUXSERVE_MAX_LOADED_LORAS", "3")
    monkeypatch.setenv("FLUXSERVE_BFL_MAX_WAIT", "12.5")
    monkeypatch.setenv("FLUXSERVE_MAX_LORA_BYTES", "1000")  # applied: test_flux_lora.py
    config = Settings(data_dir=clean_env / "d").engine_config()
    assert (config.weights, config.max_loaded_loras, config.bfl_max_wait) == ("tiny", 3, 12.5)
    assert config.max_lora_bytes == 1000
    assert config.data_dir == (clean_env / "d").resolve()


def test_batching_settings_have_the_documented_defaults_and_reach_worker_and_engines(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    defaults = Settings()
    assert (defaults.max_batch, defaults.batch_wait_ms, defaults.prompt_cache_size) == (4, 10.0, 32)
    monkeypatch.setenv("FLUXSERVE_MAX_BATCH", "8")
    monkeypatch.setenv("FLUXSERVE_BATCH_WAIT_MS", "25")
    monkeypatch.setenv("FLUXSERVE_PROMPT_CACHE_SIZE", "0")
    settings = Settings()
    assert (settings.max_batch, settings.batch_wait_ms) == (8, 25.0)
    assert settings.engine_config().prompt_cache_size == 0


def test_bad_variables_are_named_with_their_values_and_what_is_allowed(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLUXSERVE_PORT", "eighty")
    monkeypatch.setenv("FLUXSERVE_WORKER_NICE", "-21")
    monkeypatch.setenv("FLUXSERVE_API_NICE", "20")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith("invalid settings: ")
    assert "FLUXSERVE_PORT='eighty': Input should be a valid integer" in message
    assert "FLUXSERVE_WORKER_NICE='-21': Input should be greater than or equal to -20" in message
    assert "FLUXSERVE_API_NICE='20': Input should be less than or equal to 19" in message
    monkeypatch.setenv("FLUXSERVE_PORT", "8001")
    monkeypatch.setenv("FLUXSERVE_WORKER_NICE", "-20")
    monkeypatch.setenv("FLUXSERVE_API_NICE", "19")
    settings = load_settings()
    assert (settings.port, settings.worker_nice, settings.api_nice) == (8001, -20, 19)
