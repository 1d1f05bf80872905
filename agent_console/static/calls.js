// Phone calls in the console: the screen pop on every page, and the live call log.
// Remote text only ever goes in through textContent (el()).

import { api, el, refreshTimes, svgIcon, timeEl, toast } from "./dom.js";

// Refetch the call log at most this often when many call events arrive at once.
const LOG_REFRESH_MS = 300;

const PHONE_PATH =
  "M22 16.92v3a2 2 0 0 1-2.18 2 19.79 19.79 0 0 1-8.63-3.07 19.5 19.5 0 0 1-6-6 19.79 19.79 0 0 1-3.07-8.67A2 2 0 0 1 4.11 2h3a2 2 0 0 1 2 1.72c.13.96.36 1.9.7 2.81a2 2 0 0 1-.45 2.11L8.09 9.91a16 16 0 0 0 6 6l1.27-1.27a2 2 0 0 1 2.11-.45c.91.34 1.85.57 2.81.7A2 2 0 0 1 22 16.92z";
const ARROWS = { in: ["M16 2v6h6", "m22 2-6 6"], out: ["M22 8V2h-6", "m16 8 6-6"] };

function phoneIcon(direction, className = "icon icon-sm") {
  const svg = svgIcon(className);
  for (const d of [...(ARROWS[direction] || []), PHONE_PATH]) {
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

function link(href, className, text) {
  const a = el("a", className, text);
  a.href = href;
  return a;
}

// ---- screen pop ------------------------------------------------------------------------

const popsEl = document.getElementById("call-pops");

function outcomeText(call) {
  if (call.state !== "ended") return call.state === "ringing" ? "ringing" : "on the line";
  return call.outcome;
}

function showPop(frame) {
  if (!popsEl) return;
  const { call, contact, known } = frame;
  clearPop(call.id);
  const card = el("section", "call-pop");
  card.dataset.callId = String(call.id);
  card.setAttribute("role", "alertdialog");
  card.setAttribute("aria-label", `${call.direction === "in" ? "Incoming" : "Outgoing"} call`);

  const head = el("div", "call-pop-head");
  const ring = el("span", "call-pop-ring");
  ring.append(phoneIcon(call.direction, "icon"));
  const title = el("div", "call-pop-title");
  title.append(
    el("span", "call-pop-kind", call.direction === "in" ? "Incoming call" : "Outgoing call"),
    el("span", "call-pop-line", [call.inbox.name, call.queue].filter(Boolean).join(" · ")),
  );
  const close = el("button", "icon-button call-pop-close", "×");
  close.type = "button";
  close.setAttribute("aria-label", "Dismiss");
  close.addEventListener("click", () => card.remove());
  head.append(ring, title, close);

  const who = el("div", "call-pop-who");
  const named = known && contact.name;
  who.append(el("div", "call-pop-name", named ? contact.name : call.number_display));
  who.append(el("div", "call-pop-number", named ? call.number_display : known ? "Known caller, no name yet" : "Unknown number"));

  const body = el("div", "call-pop-body");
  if (known && frame.recent_calls.length) {
    body.append(el("div", "call-pop-label", "Recent calls"));
    const list = el("ul", "call-pop-recent");
    for (const recent of frame.recent_calls) {
      const li = el("li");
      li.append(
        phoneIcon(recent.direction, "icon icon-xs"),
        el("span", `pill pill-call-${recent.outcome || "live"}`, outcomeText(recent)),
        timeEl(recent.started_at, "datetime", "muted"),
      );
      list.append(li);
    }
    body.append(list);
  }
  if (known && frame.conversation.preview) {
    body.append(el("div", "call-pop-label", "Last in the conversation"), el("div", "call-pop-preview", frame.conversation.preview));
  }
  if (!known) body.append(el("p", "call-pop-hint", "First call from this number. A contact with the number has been made for it."));

  const actions = el("div", "call-pop-actions");
  if (known) {
    actions.append(link(`/console/conversations/${frame.conversation.id}`, "button button-primary button-small", "Open conversation"));
    actions.append(link(`/console/contacts/${contact.id}`, "button button-small", "Contact"));
  } else {
    actions.append(link(`/console/contacts/${contact.id}`, "button button-primary button-small", "New contact"));
    actions.append(link(`/console/conversations/${frame.conversation.id}`, "button button-small", "Conversation"));
  }
  card.append(head, who, body, actions);
  popsEl.prepend(card);
}

function clearPop(callId) {
  if (!popsEl) return;
  for (const node of popsEl.querySelectorAll(".call-pop")) {
    if (node.dataset.callId === String(callId)) node.remove();
  }
}

// ---- call log ---------------------------------------------------------------------------

const bodyEl = document.getElementById("calls-body");
const emptyEl = document.getElementById("calls-empty");
const countEl = document.getElementById("callback-count");
const dataEl = document.getElementById("console-data");
const pageData = dataEl ? JSON.parse(dataEl.textContent) : {};
const csrfInput = document.querySelector('input[name="csrf_token"]');
let refreshTimer = 0;

function callRow(c) {
  const tr = el("tr", "call-row");
  tr.dataset.id = String(c.id);
  tr.classList.toggle("is-callback", c.call_back);

  const dirCell = el("td", "col-dir");
  const dir = el("span", `call-dir call-dir-${c.direction}`);
  dir.classList.toggle("is-unanswered", Boolean(c.outcome) && c.outcome !== "answered");
  dir.title = c.direction === "in" ? "Inbound" : "Outbound";
  dir.append(phoneIcon(c.direction));
  dirCell.append(dir);

  const who = el("td");
  who.append(link(`/console/contacts/${c.contact.id}`, "call-who", c.contact.display_name), el("span", "call-number muted", c.detail));

  const when = el("td");
  when.append(timeEl(c.started_at, "datetime"));

  const outcome = el("td");
  if (c.state !== "ended") outcome.append(el("span", "pill pill-live", c.state === "ringing" ? "Ringing" : "On the line"));
  else outcome.append(el("span", `pill pill-call-${c.outcome}`, c.outcome_label));
  if (c.call_back) outcome.append(document.createTextNode(" "), el("span", "pill pill-callback", "Call back"));

  const actions = el("td", "col-action");
  if (c.call_back) {
    const form = el("form", "inline-form");
    form.method = "post";
    form.action = `/console/calls/${c.id}/called-back`;
    form.dataset.calledBack = "";
    const token = el("input");
    token.type = "hidden";
    token.name = "csrf_token";
    token.value = csrfInput ? csrfInput.value : "";
    const button = el("button", "button button-small", "Called back");
    button.type = "submit";
    form.append(token, button);
    actions.append(form);
  }
  actions.append(link(`/console/conversations/${c.conversation_id}`, "button button-small", "Open"));

  tr.append(dirCell, who, when, el("td", "", c.answered_by || "—"), el("td", "num", c.duration_text || "—"), outcome, actions);
  return tr;
}

function showCalls(calls) {
  bodyEl.replaceChildren(...calls.map(callRow));
  if (emptyEl) emptyEl.hidden = calls.length > 0;
}

async function refreshLog() {
  if (!bodyEl) return;
  try {
    const query = (pageData.calls && pageData.calls.query) || "";
    const data = await api(`/console/api/calls?${query}`);
    showCalls(data.calls);
    if (countEl) {
      countEl.textContent = String(data.waiting);
      countEl.classList.toggle("tab-count-alert", data.waiting > 0);
    }
  } catch (error) {
    if (error.status !== 401) toast(error.message);
  }
}

function scheduleRefresh() {
  if (!bodyEl) return;
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refreshLog, LOG_REFRESH_MS);
}

/** Console socket frames about calls (see docs/voice.md, "Console events"). */
export function onCallEvent(frame) {
  if (frame.type === "call_ringing") {
    if (frame.call.state === "ringing") showPop(frame);
    scheduleRefresh();
  } else if (frame.type === "call") {
    if (frame.call.state !== "ringing") clearPop(frame.call.id);
    scheduleRefresh();
  } else if (frame.type === "calls_imported") {
    scheduleRefresh();
  }
}

// ---- the call log page's controls --------------------------------------------------------

function localNow() {
  const now = new Date();
  now.setMinutes(now.getMinutes() - now.getTimezoneOffset());
  return now.toISOString().slice(0, 16);
}

const logCard = document.getElementById("log-call");
const logToggle = document.getElementById("log-call-toggle");
if (logCard && logToggle) {
  const setOpen = (open) => {
    logCard.hidden = !open;
    logToggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      const number = logCard.querySelector('input[name="number"]');
      if (number) number.focus();
    }
  };
  logToggle.addEventListener("click", () => setOpen(logCard.hidden));
  for (const button of logCard.querySelectorAll("[data-close-log]")) button.addEventListener("click", () => setOpen(false));
  for (const input of logCard.querySelectorAll("[data-tz-offset]")) input.value = String(new Date().getTimezoneOffset());
  for (const input of logCard.querySelectorAll("[data-local-now]")) input.value = localNow();
}

for (const select of document.querySelectorAll("#calls-filters select[data-autosubmit]")) {
  select.addEventListener("change", () => select.form.requestSubmit());
}

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !("calledBack" in form.dataset)) return;
  event.preventDefault();
  try {
    await api(form.action, { method: "POST", form: new URLSearchParams(new FormData(form)) });
    refreshLog();
  } catch (error) {
    if (error.status !== 401) toast(error.message);
  }
});

if (bodyEl && pageData.calls) showCalls(pageData.calls.rows || []);
refreshTimes();
