"""Authentication: the seeds' bash recipe, bad credentials, nonces, key-only projects."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from tests.support.seeds import header_recipe
from tests.support.service import LOOPBACK_TLS, Service, signed_headers

KREA = "black-forest-labs/FLUX.1-Krea-dev"


def _detail(service: Service, headers: dict[str, str]) -> httpx.Response:
    url = f"{service.base_url}/v1/Task/Detail"
    return httpx.post(url, json={"taskid": "424242"}, headers=headers, verify=LOOPBACK_TLS)


def test_the_seed_header_recipe_run_verbatim_in_bash_authenticates(queue_only_service: Service) -> None:
    service = queue_only_service
    recipe = header_recipe(KREA, service.api_key, service.api_secret)
    script = recipe + ' printf "%s\\n%s\\n%s" "$YOUR_API_KEY" "$NONCE" "$SIGNATURE"'
    key, nonce, signature = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert signature.startswith("SHA2-256(stdin)= ") or signature.startswith(
        "(stdin)= "
    )  # what openssl prints
    response = _detail(service, {"x-api-key": key, "x-nonce": nonce, "x-signature": signature})
    assert response.status_code == 200
    assert response.json()["errors"][0]["code"] == 1  # authenticated; the made-up task is just unknown


def test_plain_hex_signature_and_millisecond_nonce_authenticate(queue_only_service: Service) -> None:
    service = queue_only_service
    headers = signed_headers(service.api_key, service.api_secret, nonce=str(int(time.time() * 1000)))
    assert _detail(service, headers).status_code == 200


def test_a_random_integer_nonce_is_accepted_as_the_seeds_allow(queue_only_service: Service) -> None:
    service = queue_only_service
    assert (
        _detail(service, signed_headers(service.api_key, service.api_secret, nonce="12345")).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda h: {k: v for k, v in h.items() if k != "x-api-key"}, "Project authorization is not founded."),
        (lambda h: {**h, "x-api-key": "nope"}, "Project authorization is not founded."),
        (lambda h: {**h, "x-signature": "0" * 64}, "Project authorization is not valid."),
        (
            lambda h: {k: v for k, v in h.items() if k != "x-signature"},
            "Project requires signature authentication. x-signature and x-nonce headers are required.",
        ),
        (lambda h: {**h, "x-nonce": "abc"}, "Project authorization is not valid."),
    ],
)
def test_bad_credentials_answer_401_with_a_reason(queue_only_service: Service, mutate, fragment: str) -> None:
    service = queue_only_service
    response = _detail(service, mutate(service.headers()))
    assert response.status_code == 401
    body = response.json()
    assert body["result"] is False and body["errors"][0]["code"] == 0
    assert body["errors"][0]["message"].startswith(fragment)  # error-reference.md's wording first


def test_a_signature_made_for_another_nonce_is_refused(queue_only_service: Service) -> None:
    service = queue_only_service
    headers = signed_headers(service.api_key, service.api_secret, nonce=str(int(time.time())))
    headers["x-nonce"] = str(int(time.time()) + 1)
    assert _detail(service, headers).status_code == 401


def test_a_stale_timestamp_nonce_is_refused(queue_only_service: Service) -> None:
    service = queue_only_service
    stale = str(int(time.time()) - 2 * 3600)
    response = _detail(service, signed_headers(service.api_key, service.api_secret, nonce=stale))
    assert response.status_code == 401
    assert "unix time" in response.json()["errors"][0]["message"]


def test_key_only_project_needs_no_signature(make_service) -> None:
    service = make_service(FLUXSERVE_REQUIRE_SIGNATURE="false", FLUXSERVE_WORKERS="0")
    response = _detail(service, {"x-api-key": service.api_key})
    assert response.status_code == 200
    assert _detail(service, {"x-api-key": "wrong"}).status_code == 401


def test_file_downloads_and_healthz_need_no_credentials(queue_only_service: Service) -> None:
    assert httpx.get(f"{queue_only_service.base_url}/healthz").status_code == 200
    response = httpx.get(f"{queue_only_service.base_url}/v1/File/notakey/0.png")
    assert response.status_code == 404
    assert response.json()["result"] is False
