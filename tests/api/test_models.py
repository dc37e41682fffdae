"""GET /v1/models/{id}: one model, in OpenAI's shape, as the SDKs' `models.retrieve` reads it."""

from urllib.parse import quote

import pytest
from asgiref.sync import sync_to_async

from api.models import ApiKey
from api.services import api_keys_changed
from providers.models import CatalogModel
from tests.api.client import AsyncClient

pytestmark = pytest.mark.django_db(transaction=True)


async def test_it_returns_a_model_the_key_may_use(auth):
    response = await AsyncClient().get("/v1/models/fake-small", headers=auth)

    assert response.status_code == 200
    listed = {
        m["id"]: m for m in (await AsyncClient().get("/v1/models", headers=auth)).json()["data"]
    }
    assert response.json() == listed["fake-small"]
    assert response.json()["object"] == "model"


async def test_it_finds_an_id_holding_a_slash_and_a_colon(auth, credential):
    await CatalogModel.objects.acreate(credential=credential, model_id="meta/llama-3.1:8b")

    response = await AsyncClient().get(
        "/v1/models/" + quote("meta/llama-3.1:8b", safe=""), headers=auth
    )

    assert response.status_code == 200
    assert response.json()["id"] == "meta/llama-3.1:8b"


async def test_an_unknown_model_is_404_in_openais_shape(auth):
    response = await AsyncClient().get("/v1/models/nothing-like-this", headers=auth)

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert error["type"] == "invalid_request_error"
    assert "nothing-like-this" in error["message"]


async def test_a_model_outside_the_keys_allow_list_is_404_as_in_the_list(api_key, auth):
    await ApiKey.objects.filter(pk=api_key[0].pk).aupdate(allowed_models=["fake-large"])
    await sync_to_async(api_keys_changed)()

    refused = await AsyncClient().get("/v1/models/fake-small", headers=auth)
    allowed = await AsyncClient().get("/v1/models/fake-large", headers=auth)

    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "model_not_found"
    assert allowed.status_code == 200 and allowed.json()["id"] == "fake-large"


async def test_it_needs_a_key(credential):
    response = await AsyncClient().get("/v1/models/fake-small")

    assert response.status_code == 401


async def test_the_openapi_document_describes_it(credential):
    spec = (await AsyncClient().get("/v1/openapi.json")).json()

    operation = spec["paths"]["/models/{model}"]["get"]
    assert operation["parameters"][0]["in"] == "path"
    assert set(operation["responses"]) == {"200", "401", "404"}
