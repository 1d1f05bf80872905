// Agent console: live list, open conversation, composer. Plain ES modules, no build step.
// The server sends data (the page's JSON, the socket's frames, the API's answers); the
// live elements (list rows, messages, call rows, a visitor's pages) are drawn only here.

import { api, ApiError, displayName, el, goToLogin, refreshTimes, toast } from "./dom.js";
import { ConversationList } from "./list.js";
import { LiveSocket } from "./live.js";
import { Thread } from "./thread.js";
import { onCallEvent } from "./calls.js";
import { AttachmentPicker, setUpEmailThread } from "./email.js";

// Typing indicator: tell the visitor at most this often while keys are pressed,
// and say "stopped" after this long without a key.
const TYPING_RESEND_MS = 3000;
const TYPING_IDLE_MS = 4000;
// Hide someone else's typing indicator if its "stopped" never arrives.
const TYPING_SHOW_MS = 6000;
const TIMES_REFRESH_MS = 30000;
const MAX_CATCH_UP_PAGES = 50;
// New messages in an email ticket within this time cost one fetch of their details.
const EMAIL_DETAILS_DEBOUNCE_MS = 150;

const dataEl = document.getElementById("console-data");
const data = dataEl ? JSON.parse(dataEl.textContent) : {};
const me = data.me || null;

const listEl = document.getElementById("conv-list");
const convEl = document.getElementById("conv");
const open = data.open || null;

let list = null;
let thread = null;
let socket = null;
let unreadWhileHidden = false;

// ---- conversation list -------------------------------------------------------

if (listEl && me) {
  list = new ConversationList({
    listEl,
    emptyEl: document.getElementById("list-empty"),
    filter: data.filter,
    me,
    openId: open ? open.id : null,
    rows: data.conversations || [],
  });
  list.render();
  restoreListScroll();
}

function listScrollKey() {
  return `console-list-scroll:${data.filter.status}:${data.filter.scope}`;
}

function restoreListScroll() {
  const saved = Number(sessionStorage.getItem(listScrollKey()));
  if (saved) listEl.scrollTop = saved;
  const active = listEl.querySelector(".conv-row.is-active");
  if (active) active.scrollIntoView({ block: "nearest" });
  window.addEventListener("pagehide", () => {
    sessionStorage.setItem(listScrollKey(), String(listEl.scrollTop));
  });
}

// ---- open conversation ---------------------------------------------------------

const composer = document.getElementById("composer");
const textarea = document.getElementById("composer-text");
const composerError = document.getElementById("composer-error");
const typingEl = document.getElementById("typing");
const typingText = document.getElementById("typing-text");
let typingHideTimer = 0;
// Declared before the composer is set up: applyMode() may stop typing at once
// (a phone conversation opens on "Private note").
let typingOn = false;
let typingSentAt = 0;
let typingIdleTimer = 0;
let picker = null;
let emailDetailsTimer = 0;

if (convEl && open) {
  const threadEl = document.getElementById("thread");
  thread = new Thread({
    threadEl,
    scrollEl: document.getElementById("thread-scroll"),
    contactName: threadEl.dataset.contactName,
    visitorReadSeq: open.visitor_read_seq,
    conversationId: open.id,
    emails: open.email ? open.email.details : null,
    messages: open.messages,
  });
  setUpEmailThread(threadEl, { onEmail: (details) => thread.setEmail(details) });
  thread.scrollToBottom();
  setUpComposer();
  setUpActions();
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && unreadWhileHidden) markRead();
  });
}

function isOpen(conversationId) {
  return Boolean(open) && open.id === conversationId;
}

function markRead() {
  if (!thread) return;
  unreadWhileHidden = false;
  const seq = thread.lastSeq;
  if (seq > 0 && socket) socket.send({ type: "read", conversation_id: open.id, seq });
  if (list) list.clearUnread(open.id);
}

/** Show a conversation's new state in the header, actions and side panel. */
function applyConversation(conversation) {
  if (!isOpen(conversation.id)) return;
  for (const button of document.querySelectorAll("#status-buttons .seg")) {
    const active = button.value === conversation.status;
    button.classList.toggle("is-active", active);
    button.setAttribute("aria-pressed", active ? "true" : "false");
  }
  const assigneeId = conversation.assignee ? String(conversation.assignee.id) : "";
  const select = document.getElementById("assignee-select");
  if (select && select.value !== assigneeId) select.value = assigneeId;
  document.getElementById("assign-me-form").hidden = assigneeId === String(me.id);
  document.getElementById("conv-assignee").textContent = conversation.assignee
    ? `Assigned to ${conversation.assignee.name}`
    : "Unassigned";
  const name = displayName(conversation.contact);
  document.getElementById("conv-name").textContent = name;
  document.getElementById("side-name").textContent = name;
}

async function catchUp() {
  if (!thread) return;
  try {
    for (let page = 0; page < MAX_CATCH_UP_PAGES; page += 1) {
      const result = await api(`/console/conversations/${open.id}/messages?after=${thread.lastSeq}`);
      applyEmail(result.email);
      for (const message of result.messages) thread.add(message);
      thread.markSeen(result.visitor_read_seq);
      applyConversation(result.conversation);
      if (!result.more) break;
    }
    if (document.visibilityState === "visible") markRead();
    else unreadWhileHidden = true;
  } catch (error) {
    if (error.status !== 401) toast(error.message);
  }
}

// ---- email tickets -------------------------------------------------------------------

/** Details of the open conversation's emails (from a fetch): show what is new. */
function applyEmail(email) {
  if (!email || !thread) return;
  open.email = email;
  for (const details of Object.values(email.details)) {
    const known = thread.emails.get(details.seq);
    if (!known || known.state !== details.state || known.error !== details.error) thread.setEmail(details);
  }
}

/** A message arrived in an email ticket: its headers and files come by a fetch. */
function loadEmailDetails() {
  clearTimeout(emailDetailsTimer);
  emailDetailsTimer = setTimeout(async () => {
    try {
      const result = await api(`/console/conversations/${open.id}/emails`);
      applyEmail(result.email);
    } catch (error) {
      if (error.status !== 401) toast(error.message);
    }
  }, EMAIL_DETAILS_DEBOUNCE_MS);
}

// ---- composer ---------------------------------------------------------------------

function composerMode() {
  const checked = composer.querySelector('input[name="mode"]:checked');
  return checked ? checked.value : "reply";
}

function setTyping(on) {
  clearTimeout(typingIdleTimer);
  if (!socket) return;
  if (on) {
    const now = Date.now();
    if (!typingOn || now - typingSentAt >= TYPING_RESEND_MS) {
      if (socket.send({ type: "typing", conversation_id: open.id, on: true })) {
        typingOn = true;
        typingSentAt = now;
      }
    }
    typingIdleTimer = setTimeout(() => setTyping(false), TYPING_IDLE_MS);
  } else if (typingOn) {
    typingOn = false;
    socket.send({ type: "typing", conversation_id: open.id, on: false });
  }
}

function showComposerError(message) {
  composerError.textContent = message;
  composerError.hidden = !message;
  document.getElementById("composer-hint").hidden = Boolean(message);
}

function applyMode() {
  const note = composerMode() === "note";
  const name = document.getElementById("conv-name").textContent;
  textarea.placeholder = note
    ? "Write a private note. Only agents see it…"
    : open.email ? `Reply to ${name} by email…` : `Reply to ${name}…`;
  document.getElementById("composer-send-label").textContent = note ? "Add note" : "Send";
  // A note is not a reply being written: the visitor must not see "typing".
  if (note) setTyping(false);
}

function autosize() {
  textarea.style.height = "auto";
  textarea.style.height = `${Math.min(textarea.scrollHeight, 240)}px`;
}

function newClientId() {
  if (crypto.randomUUID) return `c-${crypto.randomUUID()}`;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `c-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

async function send() {
  const text = textarea.value.trim();
  if (!text) return;
  const isPrivate = composerMode() === "note";
  const files = picker && !isPrivate ? [...picker.files] : [];
  const problem = files.length ? picker.problem() : null;
  if (problem) {
    showComposerError(problem);
    return;
  }
  const clientId = newClientId();
  showComposerError("");
  setTyping(false);
  textarea.value = "";
  autosize();
  thread.addPending(clientId, text, isPrivate, me.name);
  let request;
  if (files.length) {
    // Files go as multipart/form-data; the browser sets the boundary.
    const form = new FormData();
    form.append("text", text);
    form.append("client_id", clientId);
    form.append("mode", "reply");
    for (const file of files) form.append("files", file, file.name);
    request = { method: "POST", form };
  } else {
    request = { method: "POST", json: { text, private: isPrivate, client_id: clientId } };
  }
  try {
    const result = await api(`/console/conversations/${open.id}/messages`, request);
    if (files.length) picker.clear();
    thread.add(result.message, { follow: true });
    if (list) list.upsert(result.conversation);
    if (open.email || files.length) loadEmailDetails();
  } catch (error) {
    thread.removePending(clientId);
    if (!textarea.value) {
      textarea.value = text;
      autosize();
    }
    showComposerError(error instanceof ApiError ? error.message : "Sending failed; try again.");
  }
}

function setUpComposer() {
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  textarea.addEventListener("input", () => {
    autosize();
    if (composerMode() === "reply") setTyping(textarea.value.trim() !== "");
  });
  for (const radio of composer.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener("change", () => {
      applyMode();
      textarea.focus();
    });
  }
  const fileInput = document.getElementById("composer-file-input");
  if (fileInput) {
    picker = new AttachmentPicker({
      input: fileInput,
      listEl: document.getElementById("composer-files"),
      onError: showComposerError,
    });
  }
  applyMode();
  textarea.focus();
}

// ---- header actions (assign, status) -------------------------------------------------

function setUpActions() {
  for (const form of document.querySelectorAll("form[data-fetch]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = new URLSearchParams(new FormData(form, event.submitter || null));
      const buttons = form.querySelectorAll("button, select");
      for (const b of buttons) b.disabled = true;
      try {
        const result = await api(form.action, { method: "POST", form: body });
        if (result && result.conversation) {
          applyConversation(result.conversation);
          if (list) list.upsert(result.conversation);
        }
      } catch (error) {
        if (error.status !== 401) toast(error.message);
      } finally {
        for (const b of buttons) b.disabled = false;
        // A one-shot choice ("Snooze for…"): show the prompt again.
        for (const choice of form.querySelectorAll("select.snooze-select")) choice.selectedIndex = 0;
      }
    });
  }
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
}

// ---- typing indicator from others ---------------------------------------------------

function showTyping(frame) {
  if (!typingEl || !isOpen(frame.conversation_id)) return;
  const author = frame.author || {};
  if (author.type === "agent" && author.id === me.id) return;
  clearTimeout(typingHideTimer);
  if (!frame.on) {
    typingEl.hidden = true;
    return;
  }
  typingText.textContent = author.type === "agent" ? `${author.name || "An agent"} is typing…` : "Visitor is typing…";
  typingEl.hidden = false;
  typingHideTimer = setTimeout(() => { typingEl.hidden = true; }, TYPING_SHOW_MS);
}

// ---- live events -----------------------------------------------------------------------

function onEvent(frame) {
  // Other modules (visitors.js) listen for the socket's events here.
  window.dispatchEvent(new CustomEvent("hub:event", { detail: frame }));
  switch (frame.type) {
    case "message": {
      const { conversation, message } = frame;
      const incoming = message.direction === "in";
      if (isOpen(conversation.id) && thread) {
        thread.add(message);
        if (open.email || conversation.channel === "email") loadEmailDetails();
        applyConversation(conversation);
        if (incoming) {
          if (typingEl) typingEl.hidden = true;
          if (document.visibilityState === "visible") markRead();
          else unreadWhileHidden = true;
        }
      }
      if (list) list.upsert(conversation, { unreadDelta: incoming && !isOpen(conversation.id) ? 1 : 0 });
      break;
    }
    case "conversation":
      applyConversation(frame.conversation);
      if (list) {
        list.upsert(frame.conversation);
        list.scheduleRefresh();
      }
      break;
    case "typing":
      showTyping(frame);
      break;
    case "email":
      // An outgoing email's delivery state changed (queued, sent, failed).
      if (isOpen(frame.conversation_id) && thread) thread.setEmail(frame.email);
      break;
    case "read":
      if (frame.by === "visitor" && isOpen(frame.conversation_id) && thread) thread.markSeen(frame.seq);
      break;
    case "contact":
      if (list) list.updateContact(frame.contact);
      updateOpenContact(frame.contact);
      break;
    default:
      onCallEvent(frame); // call, call_ringing, calls_imported; others: nothing to show yet
  }
}

function updateOpenContact(contact) {
  if (!open || open.conversation.contact.id !== contact.id) return;
  const name = contact.name || contact.email || `Visitor #${contact.id}`;
  document.getElementById("conv-name").textContent = name;
  document.getElementById("side-name").textContent = name;
  const claimed = contact.claimed || {};
  document.getElementById("side-email").textContent =
    contact.email || (claimed.email ? `${claimed.email} (claimed)` : "No email yet");
  showDetail("side-contact-name", contact.name, claimed.name, "");
  showDetail("side-contact-email", contact.email, claimed.email, "verified");
  showDetail("side-contact-external", contact.external_id, claimed.id, "verified");
  if (thread) thread.contactName = name;
}

/** One detail of the side panel, as templates/details.html draws it: the verified
 * value, or what the visitor only claimed, marked "claimed". */
function showDetail(id, verified, claimed, verifiedMark) {
  const dd = document.getElementById(id);
  const fromClaim = Boolean(claimed) && (!verified || verified === claimed);
  const value = fromClaim ? claimed : verified;
  const mark = fromClaim ? "claimed" : verifiedMark;
  if (!value) {
    dd.replaceChildren("—");
    return;
  }
  dd.replaceChildren(el("span", "detail-value", value));
  if (mark) {
    const badge = el("span", "detail-mark", mark);
    badge.dataset.mark = mark;
    if (fromClaim) badge.title = "Only claimed by the visitor: not verified";
    dd.append(" ", badge);
  }
}

const STATE_LABELS = { connecting: "Connecting…", online: "Connected", offline: "Reconnecting…" };
const LIVE_LABELS = { connecting: "Connecting…", online: "Live", offline: "Reconnecting…" };

function showState(state) {
  const dot = document.getElementById("me-presence");
  if (dot) {
    dot.dataset.state = state;
    dot.title = STATE_LABELS[state];
  }
  const label = document.getElementById("me-presence-label");
  if (label) label.textContent = STATE_LABELS[state];
  const live = document.getElementById("live-state");
  if (live) {
    live.hidden = false;
    live.dataset.state = state;
    live.textContent = LIVE_LABELS[state];
  }
}

// Sessions an admin or the agent ended elsewhere: say why before the login page.
const SIGNED_OUT = {
  deactivated: "An admin has deactivated your account, so you have been signed out.",
  deleted: "An admin has removed your account, so you have been signed out.",
  password_reset: "An admin has reset your password, so you have been signed out.",
  password_changed: "Your password was changed in another browser, so you have been signed out here.",
};

function signedOut(reason) {
  const text = SIGNED_OUT[reason];
  if (!text) {
    goToLogin();
    return;
  }
  const overlay = el("div", "signed-out");
  overlay.id = "signed-out";
  overlay.setAttribute("role", "alertdialog");
  overlay.setAttribute("aria-labelledby", "signed-out-title");
  const card = el("div", "signed-out-card");
  const title = el("h2", "", "You have been signed out");
  title.id = "signed-out-title";
  const button = el("button", "button button-primary", "Go to the login page");
  button.type = "button";
  button.addEventListener("click", goToLogin);
  card.append(title, el("p", "", text), button);
  overlay.append(card);
  document.body.append(overlay);
  button.focus();
}

if (me) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new LiveSocket(`${scheme}//${location.host}/console/ws`, {
    onReady() {
      window.dispatchEvent(new CustomEvent("hub:ready"));
      // Whatever happened while we were not subscribed, fetch it now.
      if (list) list.refresh();
      catchUp();
    },
    onEvent,
    onState: showState,
    onUnauthenticated: signedOut,
    onError(frame) {
      if (frame.code !== "rate_limited") console.warn("console socket:", frame.code, frame.message);
    },
  });
  socket.start();
  setInterval(() => refreshTimes(), TIMES_REFRESH_MS);
}

refreshTimes();

// ---- colour pickers (website inbox page): the picker and the #rrggbb field agree --------

for (const picker of document.querySelectorAll("input[data-color-for]")) {
  const field = document.getElementById(picker.dataset.colorFor);
  if (!field) continue;
  picker.addEventListener("input", () => { field.value = picker.value; });
  field.addEventListener("input", () => {
    if (/^#[0-9a-fA-F]{6}$/.test(field.value)) picker.value = field.value.toLowerCase();
  });
}

// ---- copy buttons (inboxes page) ---------------------------------------------------------

for (const button of document.querySelectorAll("button[data-copy]")) {
  button.addEventListener("click", async () => {
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    const label = button.querySelector("span");
    try {
      await navigator.clipboard.writeText(source.textContent);
      if (label) label.textContent = "Copied";
    } catch {
      const range = document.createRange();
      range.selectNodeContents(source);
      const selection = getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      if (label) label.textContent = "Press Ctrl+C";
    }
    setTimeout(() => { if (label) label.textContent = "Copy"; }, 2000);
  });
}
