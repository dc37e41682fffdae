import subprocess
import sys
import time

import httpx
import pytest
from django.core.management import call_command

from providers import tasks
from providers.models import CatalogModel, Scope

from .factories import credential

pytestmark = pytest.mark.django_db


def test_providers_check_lists_each_credential_its_status_and_models(fake_upstream, capsys):
    credential(name="Good one", base_url=fake_upstream.base_url("gemini"), kind="gemini")
    credential(name="Bad one", base_url=fake_upstream.base_url("openai"), api_key="sk-invalid-1")

    call_command("providers", "check", skip_checks=False)

    out = capsys.readouterr().out
    assert "Good one [gemini, global" in out and "3 models available" in out
    assert "    fake-large" in out
    assert "Bad one" in out and "The provider rejected the API key." in out
    assert "sk-invalid-1" not in out
    assert "1 credential(s) failing" in out


def test_the_catalog_task_refreshes_every_enabled_credential(fake_upstream, monkeypatch):
    monkeypatch.setattr(tasks.catalog_refresh_one, "delay", tasks.catalog_refresh_one)
    on = credential(base_url=fake_upstream.base_url("ollama"), kind="ollama")
    off = credential(base_url=fake_upstream.base_url("openai"), enabled=False)

    assert tasks.catalog_refresh_all() == 1

    assert set(CatalogModel.objects.filter(credential=on).values_list("model_id", flat=True)) == {
        "fake-small",
        "fake-large",
        "gpt-4o-mini",
    }
    assert not CatalogModel.objects.filter(credential=off).exists()


def test_a_refresh_keeps_admin_choices_and_marks_vanished_models(fake_upstream):
    from providers.services import catalog_refresh

    made = credential(base_url=fake_upstream.base_url("openai"), scope=Scope.GLOBAL)
    CatalogModel.objects.create(credential=made, model_id="retired-model")
    catalog_refresh(made.id)
    CatalogModel.objects.filter(credential=made, model_id="fake-small").update(
        display_name="Small & quick", enabled=False
    )

    catalog_refresh(made.id)

    small = CatalogModel.objects.get(credential=made, model_id="fake-small")
    assert (small.display_name, small.enabled) == ("Small & quick", False)
    assert not CatalogModel.objects.get(credential=made, model_id="retired-model").listed


def test_the_fake_upstream_command_serves_all_protocols(unused_tcp_port):
    process = subprocess.Popen(
        [sys.executable, "manage.py", "fake_upstream", "--port", str(unused_tcp_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{unused_tcp_port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                response = httpx.get(f"{base}/api/tags", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert response.json()["models"][0]["name"] == "fake-small"
        chat = httpx.post(
            f"{base}/v1/chat/completions",
            json={"model": "x", "messages": [{"role": "user", "content": '@reply="pong"'}]},
        )
        assert chat.json()["choices"][0]["message"]["content"] == "pong"
    finally:
        process.terminate()
        process.wait(timeout=10)
