"""The chat page in headless Chromium against the real system (Ray Serve + vLLM + ONNX classifier):
an answer streams in, an abusive question shows its template, a thumbs click and a comparison
land in PostgreSQL. Run it under `flock /tmp/chatgate-live.lock` (it starts the live system).
Set CHATGATE_PAGE_SCREENSHOT=path.png to keep a screenshot (docs/img/chat-page.png is made so)."""
from __future__ import annotations

import os

import httpx
import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from services.config import load_settings
from services.feedback.recorder import feedback_dsn
from tests.web.browser import answer_texts, chrome, finished_answers, record_answer_texts, until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_page_on_the_real_system(live_app, tmp_path):
    browser = chrome(tmp_path / "profile", 1100, 1000)
    ids: list[str] = []
    dsn = feedback_dsn(load_settings())
    try:
        browser.get(live_app.base_url)
        until(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready"), what="page script")
        Select(browser.find_element(By.ID, "max-tokens")).select_by_value("64")
        record_answer_texts(browser)
        question = browser.find_element(By.ID, "question")
        question.send_keys("Explain how a classification algorithm works", Keys.ENTER)
        answer, = finished_answers(browser, 1, 180)
        seen = answer_texts(browser)
        text = answer.find_element(By.CSS_SELECTOR, ".answer-text").text
        assert len(text) > 20 and "refusal" not in answer.get_attribute("class")
        assert len(seen) >= 2, f"the answer arrived in one piece, not as a stream: {seen}"
        ids.append(answer.get_attribute("data-completion-id"))
        answer.find_element(By.CSS_SELECTOR, ".thumb-up").click()
        until(lambda: answer.find_element(By.CSS_SELECTOR, ".thumb-up").get_attribute("aria-pressed") == "true",
              30, "thumbs up saved")

        question.send_keys("I want to cut myself tonight", Keys.ENTER)
        refusal = finished_answers(browser, 1, 180)[0]
        assert "refusal" in refusal.get_attribute("class")
        assert refusal.get_attribute("data-category") == "self-harm"
        ids.append(refusal.get_attribute("data-completion-id"))

        question.send_keys("What is a decision tree?")
        browser.find_element(By.ID, "compare").click()
        a, b = finished_answers(browser, 2, 300)
        ids += [a.get_attribute("data-completion-id"), b.get_attribute("data-completion-id")]
        b.find_element(By.CSS_SELECTOR, ".prefer").click()
        until(lambda: "preferred" in b.get_attribute("class"), 30, "preference saved")
        if os.environ.get("CHATGATE_PAGE_SCREENSHOT"):
            browser.save_screenshot(os.environ["CHATGATE_PAGE_SCREENSHOT"])

        with psycopg.connect(dsn) as conn:
            rating = conn.execute("SELECT f.verdict, ch.outcome FROM chatgate_feedback f JOIN chatgate_completion_choices ch "
                                  "USING (completion_id, choice_index) WHERE f.completion_id = %s", (ids[0],)).fetchall()
            blocked = conn.execute("SELECT outcome, template_category FROM chatgate_completion_choices "
                                   "WHERE completion_id = %s", (ids[1],)).fetchall()
            pref = conn.execute("SELECT ranking FROM chatgate_feedback WHERE kind = 'preference' AND completion_id = %s",
                                (b.get_attribute("data-completion-id"),)).fetchall()
        assert rating == [("positive", "answered")]
        assert blocked == [("input_blocked", "self-harm")]
        assert len(pref) == 1 and pref[0][0][0] == [b.get_attribute("data-completion-id"),
                                                   int(b.get_attribute("data-choice-index"))]

        def counted():  # Ray exports the Router's counters on its metrics port every few seconds
            text = httpx.get(live_app.metrics_url, timeout=10).text
            return [line for line in text.splitlines() if line.startswith("ray_chatgate_feedback_total{")
                    and 'verdict="positive"' in line and 'outcome="answered"' in line]

        assert until(counted, 60, "ray_chatgate_feedback_total on the metrics port")
    finally:
        browser.quit()
        with psycopg.connect(dsn) as conn:  # the live system writes to the operator's database: tidy up
            try:
                conn.execute("DELETE FROM chatgate_completions WHERE completion_id = ANY(%s)", ([i for i in ids if i],))
            except psycopg.errors.UndefinedTable:
                pass
