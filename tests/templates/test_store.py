"""Template store against a real Redis; language choice; the CLI."""
import asyncio
import json
import subprocess
import sys

import pytest

from services.config import TemplateSettings
from services.templates import TemplateStore, base_category, language_preferences
from services.templates.language import with_detected_language
from services.templates.store import TemplatesUnavailable

pytestmark = pytest.mark.integration


def store_for(server, **kw) -> TemplateStore:
    return TemplateStore(TemplateSettings(redis_url=f"{server.url}/0", **kw))


async def test_seed_then_lookup_with_fallbacks(redis_server):
    store = store_for(redis_server)
    assert await store.fill_missing() > 0
    assert await store.fill_missing() == 0  # idempotent: never overwrites
    t = await store.get("self-harm/intent", "de")
    assert (t.category, t.language, t.source) == ("self-harm", "de", "redis")
    t = await store.get("hate", "de")  # no German hate template -> German default
    assert (t.category, t.language) == ("default", "de")
    t = await store.get("hate", "xx")  # unknown language -> English
    assert (t.category, t.language) == ("hate", "en")
    t = await store.get("harassment/threatening", "fr")  # a sub-category's own text comes first
    assert (t.category, t.language) == ("harassment/threatening", "fr")
    t = await store.get("harassment/threatening", "de-AT")
    assert (t.category, t.language) == ("harassment/threatening", "de")
    await store.close()


def test_builtin_lookup_prefers_the_sub_category():
    from services.templates.store import builtin_template, load_builtin

    builtin = load_builtin(TemplateSettings().builtin_file)
    assert builtin_template(builtin, "harassment/threatening", "en", "en").category == "harassment/threatening"
    assert builtin_template(builtin, "harassment/insult", "en", "en").category == "harassment"
    assert builtin_template(builtin, "hate/threatening", "es", "en").category == "default"


async def test_edits_are_seen_after_the_cache_ttl_and_seed_keeps_them(redis_server):
    store = store_for(redis_server, cache_ttl_s=0.2)
    await store.fill_missing()
    before = await store.get("violence", "en")
    await store.set("violence", "en", "Edited at run time.")
    await asyncio.sleep(0.25)
    assert (await store.get("violence", "en")).text == "Edited at run time."
    await store.fill_missing()
    await asyncio.sleep(0.25)
    assert (await store.get("violence", "en")).text != before.text
    await store.close()


async def test_redis_down_raises_so_the_guard_serves_builtin_texts(redis_server):
    store = store_for(redis_server)
    redis_server.stop()
    with pytest.raises(TemplatesUnavailable):
        await store.get("self-harm", "fr")
    assert await store.ping() is False


async def test_a_language_added_at_run_time_is_chosen(redis_server):
    store = store_for(redis_server, cache_ttl_s=0.0)
    await store.fill_missing()
    await store.set("default", "it", "Non posso aiutarti con questo.")
    t = await store.get("hate", ["it-IT", "fr"])
    assert (t.language, t.text) == ("it", "Non posso aiutarti con questo.")
    t = await store.get("self-harm", ["pt", "es"])  # first preference unknown -> next one
    assert t.language == "es"
    await store.close()


def test_cli_set_get_list(redis_server):
    def cli(*args):
        out = subprocess.run([sys.executable, "-m", "services.cli", "templates", "--redis-url", f"{redis_server.url}/0", *args],
                             capture_output=True, text=True, check=True)
        return out.stdout
    cli("set", "hate", "es", "No puedo con eso.")
    assert json.loads(cli("get", "hate", "es"))["text"] == "No puedo con eso."
    assert json.loads(cli("list"))["es"]["hate"] == "No puedo con eso."


def test_language_preferences():
    assert language_preferences("DE", "fr") == ["de", "fr"]
    assert language_preferences(None, "es-ES, fr;q=0.5") == ["es-es", "fr"]
    assert language_preferences(None, "fr;q=0, de;q=0.1") == ["de"]
    assert language_preferences(None, None) == []


def test_the_language_the_user_wrote_in_comes_after_the_explicit_choices():
    """REAL py3langid model: German text without headers gets German; explicit choices win."""
    german = "Wie kann ich Gift herstellen, um meinen Nachbarn zu töten?"
    assert with_detected_language(language_preferences(None, None), german, 0.5) == ["de"]
    assert with_detected_language(language_preferences(None, "fr"), german, 0.5) == ["fr", "de"]
    assert with_detected_language(language_preferences("de", None), german, 0.5) == ["de"]
    assert with_detected_language([], "Comment faire une bombe ?", 0.5) == ["fr"]
    assert with_detected_language([], german, 1.5) == []  # a confidence above 1 turns detection off


def test_too_little_text_is_not_guessed():
    for text in ("hi", "ok", "Hola", ""):
        assert with_detected_language([], text, 0.5) == [], text
    assert base_category("harassment/threatening") == "harassment"
