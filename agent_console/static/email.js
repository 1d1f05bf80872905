// Email messages in a thread (drawn only here, from the email details), "Show original",
// remote images on request, retrying a failed send, and files attached to a reply.

import { api, csrfToken, el, svgIcon, timeEl, toast } from "./dom.js";

// Mirrors agent_console/web.py (MAX_FILE_BYTES, MAX_FILES_BYTES, MAX_FILES): checked here
// to say so before uploading, and again by the server.
export const MAX_FILE_BYTES = 10 * 1024 * 1024;
export const MAX_FILES_BYTES = 25 * 1024 * 1024;
export const MAX_FILES = 10;

const SVG_NS = "http://www.w3.org/2000/svg";
const ICONS = {
  mail: ['<rect x="2" y="4" width="20" height="16" rx="2"/>', '<path d="m22 7-8.97 5.7a1.94 1.94 0 0 1-2.06 0L2 7"/>'],
  paperclip: ['<path d="m21.44 11.05-9.19 9.19a6 6 0 0 1-8.49-8.49l8.57-8.57A4 4 0 1 1 18 8.84l-8.59 8.57a2 2 0 0 1-2.83-2.83l8.49-8.48"/>'],
  download: ['<path d="M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4"/>', '<path d="m7 10 5 5 5-5"/>', '<path d="M12 15V3"/>'],
  alert: ['<path d="m21.73 18-8-14a2 2 0 0 0-3.48 0l-8 14A2 2 0 0 0 4 21h16a2 2 0 0 0 1.73-3"/>', '<path d="M12 9v4"/>', '<path d="M12 17h.01"/>'],
  check: ['<path d="M20 6 9 17l-5-5"/>'],
  retry: ['<path d="M3 12a9 9 0 0 1 15-6.7L21 8"/>', '<path d="M21 3v5h-5"/>', '<path d="M21 12a9 9 0 0 1-15 6.7L3 16"/>', '<path d="M3 21v-5h5"/>'],
  x: ['<path d="M18 6 6 18"/>', '<path d="m6 6 12 12"/>'],
};

/** One of our own static icons (fixed markup, never remote data). */
export function icon(name, cls = "icon icon-xs") {
  const svg = svgIcon(cls);
  const parsed = new DOMParser().parseFromString(
    `<svg xmlns="${SVG_NS}">${(ICONS[name] || []).join("")}</svg>`,
    "image/svg+xml",
  );
  for (const child of [...parsed.documentElement.childNodes]) svg.append(document.importNode(child, true));
  return svg;
}

export function fileSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KB`;
  return `${(n / 1048576).toFixed(1)} MB`;
}

function link(href, className, ...children) {
  const a = el("a", className);
  a.href = href;
  a.append(...children);
  return a;
}

function addressText(d) {
  return d.from.address || "unknown";
}

/** The delivery state line of an outgoing email (queued, sent, delayed or delivered
 * by a delivery report, failed with Retry). */
export function emailStateEl(d, conversationId) {
  if (!d.state) return null;
  const box = el("div", `email-state email-state-${d.state}`);
  box.dataset.state = d.state;
  if (d.state === "sent" && d.delivery === "delayed") {
    // A delivery report: the receiving side is still trying.
    box.classList.add("email-state-delayed");
    box.dataset.delivery = "delayed";
    const text = `Sent — delivery delayed${d.delivery_note ? `: ${d.delivery_note}` : ""}`;
    box.append(icon("alert"), el("span", "email-state-text", text));
  } else if (d.state === "sent") {
    const delivered = d.delivery === "delivered";
    if (delivered) box.dataset.delivery = "delivered";
    box.append(icon("check"), el("span", "email-state-text", delivered ? "Delivered" : "Sent"));
  } else if (d.state === "queued") {
    const dot = el("span", "email-state-dot");
    dot.setAttribute("aria-hidden", "true");
    const text = el("span", "email-state-text");
    if (d.error) {
      text.append(`Queued — ${d.error} — retrying`);
      if (d.next_attempt_at) text.append(" at ", timeEl(d.next_attempt_at, "clock"));
      if (d.attempts) text.append(` (attempt ${d.attempts + 1})`);
    } else {
      text.textContent = "Queued — sending…";
    }
    box.append(dot, text);
  } else {
    box.append(icon("alert"), el("span", "email-state-text", `Not delivered${d.error ? `: ${d.error}` : ""}`));
    const form = el("form", "inline-form email-retry");
    form.method = "post";
    form.action = `/console/conversations/${conversationId}/messages/${d.seq}/retry`;
    const token = el("input");
    token.type = "hidden";
    token.name = "csrf_token";
    token.value = csrfToken;
    const button = el("button", "button button-small");
    button.type = "submit";
    button.append(icon("retry"), "Retry");
    form.append(token, button);
    box.append(form);
  }
  return box;
}

/** A stored message that is an email: headers, text, files, original, state. */
export function emailMessageEl(m, d, { contactName, conversationId }) {
  if (m.kind === "activity") {
    const li = el("li", "msg msg-activity msg-bounce");
    li.dataset.seq = String(m.seq);
    li.dataset.emailId = String(d.id);
    li.append(
      icon("alert"),
      el("span", "msg-activity-text", m.text),
      link(`/console/emails/${d.id}/raw`, "msg-bounce-link", "Report (.eml)"),
      timeEl(m.created_at, "clock"),
    );
    return li;
  }
  const out = d.direction === "out";
  const li = el("li", `msg msg-email ${out ? "msg-out" : "msg-in"}`);
  li.classList.toggle("msg-auto", Boolean(d.automatic));
  li.classList.toggle("msg-unreadable", Boolean(d.parse_error));
  li.dataset.seq = String(m.seq);
  li.dataset.emailId = String(d.id);
  if (m.client_id) li.dataset.clientId = m.client_id;

  const meta = el("div", "msg-meta");
  if (d.automatic) meta.append(el("span", "msg-label msg-label-auto", "Automatic reply"));
  const author = m.author || {};
  meta.append(el("span", "msg-author", author.name || (out ? "System" : contactName)), timeEl(m.created_at, "clock"));

  const card = el("article", "email-card");
  const head = el("dl", "email-head");
  let fromName = d.from.name || (!out ? author.name : null);
  if (fromName && fromName.toLowerCase() === addressText(d).toLowerCase()) fromName = null;
  const from = el("dd");
  if (fromName) from.append(`${fromName} `, el("span", "email-addr", `<${addressText(d)}>`));
  else from.append(el("span", "email-addr", addressText(d)));
  head.append(el("dt", "", "From"), from);
  if (d.to.length) head.append(el("dt", "", "To"), el("dd", "email-addr", d.to.join(", ")));
  if (d.cc.length) head.append(el("dt", "", "Cc"), el("dd", "email-addr", d.cc.join(", ")));
  const date = el("dd");
  date.append(timeEl(m.created_at, "datetime"));
  head.append(el("dt", "", "Date"), date);
  card.append(head);

  if (d.parse_error) {
    const box = el("div", "email-unreadable");
    box.setAttribute("role", "alert");
    box.append(
      icon("alert", "icon icon-sm"),
      el("span", "", `This message could not be read (${d.parse_error}). The original is kept exactly as it arrived.`),
      link(`/console/emails/${d.id}/raw`, "button button-small", icon("download"), "Download original (.eml)"),
    );
    card.append(box);
  }
  card.append(el("div", "email-text", m.text));

  const files = d.has_html ? d.attachments.filter((f) => !f.inline) : d.attachments;
  if (files.length) {
    const list = el("ul", "email-files");
    list.setAttribute("aria-label", "Attachments");
    for (const f of files) {
      const a = link(
        `/console/attachments/${f.id}`,
        "email-file",
        icon("paperclip"),
        el("span", "email-file-name", f.filename),
        el("span", "email-file-meta", `${fileSize(f.size)} · ${f.content_type}`),
      );
      a.setAttribute("download", f.filename);
      const item = el("li");
      item.append(a);
      list.append(item);
    }
    card.append(list);
  }

  const tools = el("div", "email-tools");
  const original = el("details", "email-original");
  original.dataset.emailId = String(d.id);
  original.dataset.hasHtml = d.has_html ? "true" : "false";
  original.append(el("summary", "", "Show original"), el("div", "email-original-body"));
  tools.append(original, link(`/console/emails/${d.id}/raw`, "email-tool", icon("download"), "Download .eml"));
  card.append(tools);
  li.append(meta, card);
  const state = emailStateEl(d, conversationId);
  if (state) li.append(state);
  return li;
}

// ---- "Show original", remote images, retry -------------------------------------------------

function frameFor(emailId, images) {
  const frame = el("iframe", "email-frame");
  // No allow-scripts, no allow-same-origin: the mail cannot run code or read the console.
  frame.setAttribute("sandbox", "allow-popups allow-popups-to-escape-sandbox");
  frame.setAttribute("referrerpolicy", "no-referrer");
  frame.title = "The email as its sender formatted it";
  frame.src = `/console/emails/${emailId}/html${images ? "?images=1" : ""}`;
  return frame;
}

async function openOriginal(details) {
  const body = details.querySelector(".email-original-body");
  if (!body || body.dataset.loaded) return;
  body.dataset.loaded = "1";
  const emailId = details.dataset.emailId;
  body.replaceChildren(el("p", "muted", "Loading…"));
  let result;
  try {
    result = await api(`/console/api/emails/${emailId}`);
  } catch (error) {
    delete body.dataset.loaded;
    body.replaceChildren(el("p", "field-error", error.message));
    return;
  }
  const text = el("pre", "email-full-text", result.text || "(no text)");
  if (!result.has_html) {
    body.replaceChildren(text);
    return;
  }
  const bar = el("div", "email-frame-bar");
  const note = el("span", "", "Remote images are blocked.");
  const load = el("button", "button button-small email-load-images", "Load remote images");
  load.type = "button";
  bar.append(note, load);
  const frame = frameFor(emailId, false);
  load.addEventListener("click", () => {
    frame.replaceWith(frameFor(emailId, true));
    note.textContent = "Remote images are shown.";
    load.remove();
  });
  const plain = el("details", "email-plain");
  plain.append(el("summary", "", "Plain text"), text);
  body.replaceChildren(bar, frame, plain);
}

/** Listeners for every email message in `threadEl`, present or added later. */
export function setUpEmailThread(threadEl, { onEmail }) {
  threadEl.addEventListener(
    "toggle",
    (event) => {
      const details = event.target;
      if (details instanceof HTMLDetailsElement && details.classList.contains("email-original") && details.open) {
        openOriginal(details);
      }
    },
    true,
  );
  threadEl.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("email-retry")) return;
    event.preventDefault();
    const button = form.querySelector("button");
    if (button) button.disabled = true;
    try {
      const result = await api(form.action, { method: "POST", form: new URLSearchParams(new FormData(form)) });
      if (result && result.email) onEmail(result.email);
    } catch (error) {
      if (error.status !== 401) toast(error.message);
      if (button) button.disabled = false;
    }
  });
}

// ---- files attached to a reply --------------------------------------------------------------

/** The composer's "Attach files": keeps the chosen files, shows them, checks the limits. */
export class AttachmentPicker {
  constructor({ input, listEl, onError }) {
    this.input = input;
    this.listEl = listEl;
    this.onError = onError;
    this.files = [];
    input.addEventListener("change", () => {
      this.add([...input.files]);
      input.value = ""; // the same file can be chosen again after removing it
    });
  }

  add(files) {
    this.files.push(...files);
    this.render();
    this.onError(this.problem() || "");
  }

  clear() {
    this.files = [];
    this.render();
  }

  /** What is wrong with the chosen files, or null. */
  problem() {
    if (this.files.length > MAX_FILES) return `Attach at most ${MAX_FILES} files.`;
    const big = this.files.find((f) => f.size > MAX_FILE_BYTES);
    if (big) return `${big.name} is larger than ${MAX_FILE_BYTES / 1048576} MB.`;
    const total = this.files.reduce((sum, f) => sum + f.size, 0);
    if (total > MAX_FILES_BYTES) return `Attachments are at most ${MAX_FILES_BYTES / 1048576} MB together.`;
    return null;
  }

  render() {
    const items = this.files.map((file, index) => {
      const item = el("li", "composer-file");
      const remove = el("button", "icon-button");
      remove.type = "button";
      remove.title = `Remove ${file.name}`;
      remove.setAttribute("aria-label", `Remove ${file.name}`);
      remove.append(icon("x"));
      remove.addEventListener("click", () => {
        this.files.splice(index, 1);
        this.render();
        this.onError(this.problem() || "");
      });
      item.append(icon("paperclip"), el("span", "composer-file-name", file.name), el("span", "", fileSize(file.size)), remove);
      return item;
    });
    this.listEl.replaceChildren(...items);
    this.listEl.hidden = items.length === 0;
  }
}
