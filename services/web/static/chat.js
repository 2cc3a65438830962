// chatgate chat page: streams answers from /v1/chat/completions (SSE), shows refusals with their
// category, and sends thumbs and side-by-side preferences to /v1/feedback. No framework, no build.
"use strict";

const KEY_STORE = "chatgate.apiKey";
const state = { messages: [], busy: false };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function say(text) { $("status").textContent = text; }

function headers() {
  const h = { "content-type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h.authorization = "Bearer " + key;
  return h;
}

async function apiError(resp) {
  let err = {};
  try { err = (await resp.json()).error || {}; } catch (_) { /* not JSON */ }
  const e = new Error(err.message || `HTTP ${resp.status}`);
  e.status = resp.status;
  e.param = err.param;
  return e;
}

// Server-sent events from a fetch() body (EventSource cannot POST). Yields parsed JSON chunks.
async function* sse(resp) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let m;
    while ((m = buf.match(/\r\n\r\n|\n\n|\r\r/))) {
      const event = buf.slice(0, m.index);
      buf = buf.slice(m.index + m[0].length);
      const data = event.split(/\r\n|\n|\r/).filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, "")).join("\n");
      if (!data) continue; // comments and pings
      if (data === "[DONE]") return;
      yield JSON.parse(data);
    }
  }
}

async function streamCompletion(body, cards) {
  const resp = await fetch("/v1/chat/completions", {
    method: "POST", headers: headers(),
    body: JSON.stringify({ ...body, max_tokens: Number($("max-tokens").value), stream: true }),
  });
  if (!resp.ok) throw await apiError(resp);
  for await (const chunk of sse(resp)) {
    if (chunk.error) throw new Error(chunk.error.message || "the answer failed");
    for (const choice of chunk.choices || []) {
      const card = cards[choice.index];
      if (!card) continue;
      card.completionId = chunk.id;
      card.choiceIndex = choice.index;
      const text = choice.delta && choice.delta.content;
      if (text) { card.text += text; card.textEl.textContent = card.text; }
      if (choice.finish_reason) {
        card.finish = choice.finish_reason;
        card.moderation = choice.chatgate_moderation || chunk.chatgate_moderation || null;
      }
    }
  }
}

function newCard(container, title) {
  const node = el("article", { class: "answer", "aria-busy": "true" });
  if (title) node.append(el("h2", {}, title));
  const textEl = el("p", { class: "answer-text" });
  node.append(textEl);
  container.append(node);
  return { node, textEl, text: "", completionId: null, choiceIndex: 0, finish: null, moderation: null };
}

function resetCard(card) {
  card.text = ""; card.textEl.textContent = ""; card.finish = null; card.moderation = null;
}

function finishCard(card) {
  card.node.setAttribute("aria-busy", "false");
  card.node.dataset.completionId = card.completionId || "";
  card.node.dataset.choiceIndex = String(card.choiceIndex);
  if (card.finish === "content_filter") {
    const mod = card.moderation || {};
    const category = (mod.template && mod.template.category) || (mod.categories || [])[0] || "policy";
    const stage = mod.stage ? `${mod.stage} moderation` : "moderation";
    card.node.classList.add("refusal");
    card.node.dataset.category = category;
    card.node.append(el("p", { class: "answer-meta" }, `Refused by ${stage} \u00b7 category: ${category}`));
  }
  card.node.dataset.state = "done";
  if (card.completionId) card.node.append(thumbs(card));
}

async function sendFeedback(body) {
  const resp = await fetch("/v1/feedback", { method: "POST", headers: headers(), body: JSON.stringify(body) });
  if (!resp.ok) throw await apiError(resp);
  return resp.json();
}

// A thumb drawn inline (emoji fonts are not everywhere); the thumbs-down is the same icon turned over.
const THUMB = "M2 21h4V9H2v12zm20-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 " +
  "7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z";

function thumbButton(cls, label, text) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", THUMB);
  svg.append(path);
  const btn = el("button", { type: "button", class: cls, "aria-pressed": "false", "aria-label": label });
  btn.append(svg, el("span", {}, text));
  return btn;
}

function thumbs(card) {
  const box = el("div", { class: "feedback", role: "group", "aria-label": "Rate this answer" });
  const up = thumbButton("thumb-up", "Good answer", "Good");
  const down = thumbButton("thumb-down", "Bad answer", "Bad");
  const rate = async (rating, extra = {}) => {
    try {
      await sendFeedback({ completion_id: card.completionId, choice_index: card.choiceIndex, rating, ...extra });
      up.setAttribute("aria-pressed", String(rating === "up"));
      down.setAttribute("aria-pressed", String(rating === "down"));
      card.node.dataset.rating = rating;
      say(extra.reason ? "Thanks, your reason was saved." : "Thanks, your rating was saved.");
      if (rating === "down" && !box.querySelector(".reason")) askReason(box, (reason) => rate("down", { reason }));
    } catch (e) { say(`Feedback not saved: ${e.message}`); }
  };
  up.addEventListener("click", () => rate("up"));
  down.addEventListener("click", () => rate("down"));
  box.append(up, down);
  return box;
}

function askReason(box, submit) {
  const id = "reason-" + Math.random().toString(36).slice(2);
  const label = el("label", { for: id, class: "hint" }, "What was wrong? (optional)");
  const input = el("input", { id, class: "reason", type: "text", maxlength: "2000" });
  const send = el("button", { type: "button", class: "send-reason" }, "Send reason");
  const go = () => { if (input.value.trim()) submit(input.value.trim()); };
  send.addEventListener("click", go);
  input.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); go(); } });
  box.append(label, input, send);
}

function preferButtons(cards, historyIndex) {
  cards.forEach((card, i) => {
    if (!card.completionId) return;
    const others = cards.filter((c) => c !== card && c.completionId);
    if (!others.length) return;
    const btn = el("button", { type: "button", class: "prefer", "aria-pressed": "false" },
      `Prefer answer ${"AB"[i]}`);
    btn.addEventListener("click", async () => {
      const sameCompletion = others.every((c) => c.completionId === card.completionId);
      const body = sameCompletion
        ? { completion_id: card.completionId, preferred_index: card.choiceIndex }
        : { ranking: [card, ...others].map((c) => ({ completion_id: c.completionId, index: c.choiceIndex })) };
      try {
        await sendFeedback(body);
        for (const c of cards) {
          c.node.classList.toggle("preferred", c === card);
          const b = c.node.querySelector(".prefer");
          if (b) b.setAttribute("aria-pressed", String(c === card));
        }
        state.messages[historyIndex] = { role: "assistant", content: card.text }; // the conversation goes on from it
        say(`Thanks, answer ${"AB"[i]} was recorded as the better one.`);
      } catch (e) { say(`Preference not saved: ${e.message}`); }
    });
    card.node.querySelector(".feedback").prepend(btn);
  });
}

async function compareAnswers(container, messages) {
  container.classList.add("compare");
  const cards = [newCard(container, "Answer A"), newCard(container, "Answer B")];
  try {
    await streamCompletion({ messages, n: 2 }, cards);
  } catch (e) {
    if (e.status !== 400 || e.param !== "n") throw e;
    // A server without n > 1: two requests; the preference then ranks answers of two completions.
    cards.forEach(resetCard);
    await Promise.all(cards.map((card) => streamCompletion({ messages }, [card])));
  }
  return cards;
}

async function ask(compare) {
  const question = $("question").value.trim();
  if (!question || state.busy) return;
  setBusy(true);
  const turn = el("div", { class: "turn" });
  turn.append(el("p", { class: "question" }, question));
  const answers = el("div", { class: "answers" });
  turn.append(answers);
  $("log").append(turn);
  $("question").value = "";
  const messages = [...state.messages, { role: "user", content: question }];
  say(compare ? "Two answers are on their way\u2026" : "The answer is on its way\u2026");
  let cards = [];
  try {
    cards = compare ? await compareAnswers(answers, messages) : [newCard(answers)];
    if (!compare) await streamCompletion({ messages }, cards);
    cards.forEach(finishCard);
    // A question refused at input stays out of the conversation: sent again with every later
    // question, it would get those refused too.
    const inputBlocked = cards.every((c) => c.finish === "content_filter" && c.moderation && c.moderation.stage === "input");
    if (!inputBlocked) state.messages = [...messages, { role: "assistant", content: cards[0].text }];
    if (compare && !inputBlocked) preferButtons(cards, state.messages.length - 1);
    const refused = cards.filter((c) => c.finish === "content_filter").length;
    say(refused ? `Done: ${refused} answer(s) replaced by a policy template.` : "Done.");
  } catch (e) {
    answers.replaceChildren(el("p", { class: "answer error", role: "alert" }, `Error: ${e.message}`));
    $("question").value = question; // nothing was answered: keep the question for another try
    say(`Error: ${e.message}`);
  } finally {
    setBusy(false);
    turn.scrollIntoView({ block: "end" });
  }
}

function setBusy(busy) {
  state.busy = busy;
  $("send").disabled = busy;
  $("compare").disabled = busy;
  if (!busy) $("question").focus();
}

document.addEventListener("DOMContentLoaded", () => {
  const key = $("api-key");
  key.value = sessionStorage.getItem(KEY_STORE) || "";
  key.addEventListener("input", () => sessionStorage.setItem(KEY_STORE, key.value.trim()));
  $("ask").addEventListener("submit", (ev) => { ev.preventDefault(); ask(false); });
  $("compare").addEventListener("click", () => ask(true));
  $("question").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); ask(false); }
  });
  $("new-chat").addEventListener("click", () => {
    state.messages = [];
    $("log").replaceChildren();
    say("New conversation.");
    $("question").focus();
  });
  document.body.dataset.ready = "true";
});
