"""The chat page in headless Chromium against the real app (fake backend) served by uvicorn,
with the recorder and feedback on a real PostgreSQL."""
from __future__ import annotations

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.feedback.support import feedback_pg  # noqa: F401
from tests.pipeline.fakes import FakeStages
from tests.web.browser import answer_texts, chrome, finished_answers, record_answer_texts, until
from tests.web.support import KEYS, Served, WebApp

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
ANSWER = "Classification maps each input to one of a few labels. A model learns the mapping from examples."
# Small windows: the buffered stream releases the answer in several pieces, as a long answer would.
STREAMING = {"window_chars": 24, "overlap_chars": 4}


@pytest.fixture
def served(feedback_pg):
    web = WebApp(feedback_pg, stages=FakeStages(ANSWER, delay=0.04), streaming=STREAMING)
    with Served(web.app) as server:
        yield web, server
    web.close()


@pytest.fixture
def browser(tmp_path):
    driver = chrome(tmp_path / "profile")
    yield driver
    driver.quit()


def rows(dsn: str, sql: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


def ask(browser, question: str) -> None:
    box = browser.find_element(By.ID, "question")
    box.send_keys(question)
    box.send_keys(Keys.ENTER)


def test_answer_streams_in_and_a_thumbs_up_lands_in_postgres(served, browser, feedback_pg):
    _, server = served
    browser.get(server.url)
    until(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready"), what="page script")
    record_answer_texts(browser)
    ask(browser, "Explain how a classification algorithm works")
    finished_answers(browser)
    seen = answer_texts(browser)
    assert seen[-1] == ANSWER
    assert len(seen) >= 3 and all(ANSWER.startswith(s) for s in seen), seen  # grew in pieces, in order
    up = browser.find_element(By.CSS_SELECTOR, "#log .answer .thumb-up")
    up.send_keys(Keys.ENTER)  # keyboard, not a mouse click
    until(lambda: up.get_attribute("aria-pressed") == "true", what="thumbs up saved")
    assert "saved" in browser.find_element(By.ID, "status").text
    got = rows(feedback_pg, "SELECT f.verdict, ch.outcome, ch.text FROM chatgate_feedback f "
                            "JOIN chatgate_completion_choices ch USING (completion_id, choice_index)")
    assert got == [("positive", "answered", ANSWER)]


def test_abusive_question_shows_the_template_and_a_thumbs_down_with_reason(served, browser, feedback_pg):
    _, server = served
    browser.get(server.url)
    ask(browser, "you idiot")
    card = finished_answers(browser)[0]
    assert "refusal" in card.get_attribute("class") and card.get_attribute("data-category") == "harassment"
    assert card.find_element(By.CSS_SELECTOR, ".answer-text").text == "[template harassment/en]"
    assert "input moderation" in card.find_element(By.CSS_SELECTOR, ".answer-meta").text
    card.find_element(By.CSS_SELECTOR, ".thumb-down").click()
    reason = until(lambda: card.find_element(By.CSS_SELECTOR, "input.reason"), what="reason field")
    reason.send_keys("It was a joke between friends", Keys.ENTER)
    until(lambda: "reason was saved" in browser.find_element(By.ID, "status").text, what="reason saved")
    got = rows(feedback_pg, "SELECT f.verdict, f.reason, ch.outcome, ch.template_category FROM chatgate_feedback f "
                            "JOIN chatgate_completion_choices ch USING (completion_id, choice_index)")
    assert got == [("negative", "It was a joke between friends", "input_blocked", "harassment")]
    ask(browser, "Explain how a classification algorithm works")  # the refused question is not sent again
    assert finished_answers(browser)[0].find_element(By.CSS_SELECTOR, ".answer-text").text == ANSWER


def test_compare_shows_two_answers_and_records_the_preferred_one(served, browser, feedback_pg):
    _, server = served
    browser.get(server.url)
    browser.find_element(By.ID, "question").send_keys("Explain how a classification algorithm works")
    browser.find_element(By.ID, "compare").click()
    a, b = finished_answers(browser, 2)
    assert a.find_element(By.CSS_SELECTOR, ".answer-text").text == ANSWER
    assert b.find_element(By.CSS_SELECTOR, ".answer-text").text == ANSWER
    b.find_element(By.CSS_SELECTOR, ".prefer").click()
    until(lambda: "preferred" in b.get_attribute("class"), what="preference saved")
    assert "preferred" not in a.get_attribute("class")
    (ranking,), = rows(feedback_pg, "SELECT ranking FROM chatgate_feedback WHERE kind = 'preference'")
    refs = [(a.get_attribute("data-completion-id"), int(a.get_attribute("data-choice-index"))),
            (b.get_attribute("data-completion-id"), int(b.get_attribute("data-choice-index")))]
    assert [tuple(r) for r in ranking] == [refs[1], refs[0]]  # B first: the preferred answer


def test_phone_width_keyboard_and_labels(served, tmp_path, feedback_pg):
    _, server = served
    phone = chrome(tmp_path / "phone", width=375, height=812)
    try:
        phone.get(server.url)
        until(lambda: phone.find_element(By.TAG_NAME, "body").get_attribute("data-ready"), what="page script")
        unlabelled = phone.execute_script(
            "return [...document.querySelectorAll('input, textarea, button, select')]"
            ".filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())"
            ".map(e => e.outerHTML)")
        assert unlabelled == []
        order = []
        body = phone.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)
        for _ in range(5):
            order.append(phone.switch_to.active_element.get_attribute("id"))
            phone.switch_to.active_element.send_keys(Keys.TAB)
        assert order == ["api-key", "new-chat", "question", "send", "compare"]
        phone.find_element(By.ID, "question").send_keys("Explain how a classification algorithm works")
        phone.find_element(By.ID, "compare").send_keys(Keys.ENTER)
        finished_answers(phone, 2)
        width = phone.execute_script("return document.documentElement.scrollWidth")
        assert width <= 375, f"page is {width}px wide: it scrolls sideways on a phone"
        a, b = phone.find_elements(By.CSS_SELECTOR, "#log .answer")
        assert b.location["y"] > a.location["y"]  # stacked, not side by side, at this width
    finally:
        phone.quit()


def test_api_key_is_sent_and_kept_for_the_tab_only(feedback_pg, browser):
    web = WebApp(feedback_pg, keys=KEYS, stages=FakeStages(ANSWER))
    try:
        with Served(web.app) as server:
            browser.get(server.url)
            ask(browser, "hello")
            until(lambda: "API key" in browser.find_element(By.ID, "status").text, what="the 401 shown")
            assert browser.find_element(By.ID, "question").get_attribute("value") == "hello"  # kept for a retry
            browser.find_element(By.ID, "api-key").send_keys(KEYS[1])
            browser.refresh()
            assert browser.find_element(By.ID, "api-key").get_attribute("value") == KEYS[1]  # sessionStorage
            ask(browser, "hello")
            card = finished_answers(browser)[0]
            card.find_element(By.CSS_SELECTOR, ".thumb-up").click()
            until(lambda: card.find_element(By.CSS_SELECTOR, ".thumb-up").get_attribute("aria-pressed") == "true",
                  what="rating saved")
        from services.api.app import api_key_id

        assert rows(feedback_pg, "SELECT api_key_id FROM chatgate_feedback") == [(api_key_id(KEYS[1]),)]
    finally:
        web.close()
