// The open conversation's messages, in seq order, without duplicates.

import { el, timeEl } from "./dom.js";
import { emailMessageEl, emailStateEl } from "./email.js";

// Within this many pixels of the bottom the view follows new messages.
const STICK_TO_BOTTOM_PX = 120;

export class Thread {
  constructor({ threadEl, scrollEl, contactName, visitorReadSeq, conversationId, emails, messages }) {
    this.threadEl = threadEl;
    this.conversationId = conversationId;
    // An email ticket's details by seq (headers, files, delivery state); see email.js.
    this.emails = new Map(Object.entries(emails || {}).map(([seq, d]) => [Number(seq), d]));
    // Stored messages by seq, to redraw one when its email details come.
    this.messages = new Map();
    this.scrollEl = scrollEl;
    this.contactName = contactName;
    this.visitorReadSeq = visitorReadSeq || 0;
    this.seqs = new Set();
    // The page's first messages (in seq order); the socket and fetches add the rest.
    for (const m of messages || []) {
      this.messages.set(m.seq, m);
      this.seqs.add(m.seq);
    }
    const first = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    threadEl.replaceChildren(...first.map((m) => this.messageEl(m)));
    this.renderSeen();
  }

  get lastSeq() {
    let last = 0;
    for (const seq of this.seqs) last = Math.max(last, seq);
    return last;
  }

  nearBottom() {
    const s = this.scrollEl;
    return s.scrollHeight - s.scrollTop - s.clientHeight < STICK_TO_BOTTOM_PX;
  }

  scrollToBottom() {
    this.scrollEl.scrollTop = this.scrollEl.scrollHeight;
  }

  /** Add a stored message (from the socket, a fetch, or a send's answer). */
  add(message, { follow = false } = {}) {
    if (this.seqs.has(message.seq)) return false;
    this.messages.set(message.seq, message);
    const stick = follow || this.nearBottom();
    const node = this.messageEl(message);
    const pending = message.client_id
      ? this.threadEl.querySelector(`li[data-client-id="${CSS.escape(message.client_id)}"]:not([data-seq])`)
      : null;
    if (pending) pending.remove();
    const after = [...this.threadEl.querySelectorAll("li[data-seq]")]
      .reverse()
      .find((li) => Number(li.dataset.seq) < message.seq);
    if (after) after.after(node);
    else this.threadEl.prepend(node);
    // Pending bubbles stay last: they are newer than anything stored.
    for (const li of this.threadEl.querySelectorAll("li[data-client-id]:not([data-seq])")) this.threadEl.append(li);
    this.seqs.add(message.seq);
    this.renderSeen();
    if (stick) this.scrollToBottom();
    return true;
  }

  /** A bubble for a message on its way to the server. */
  addPending(clientId, text, isPrivate, authorName) {
    const node = this.messageEl({
      seq: null,
      direction: "out",
      kind: isPrivate ? "note" : "text",
      author: { type: "agent", name: authorName },
      text,
      client_id: clientId,
      created_at: new Date().toISOString(),
    });
    node.classList.add("is-pending");
    node.append(el("div", "msg-status", "Sending…"));
    this.threadEl.append(node);
    this.scrollToBottom();
  }

  removePending(clientId) {
    const node = this.threadEl.querySelector(`li[data-client-id="${CSS.escape(clientId)}"]:not([data-seq])`);
    if (node) node.remove();
  }

  markSeen(seq) {
    if (seq <= this.visitorReadSeq) return;
    this.visitorReadSeq = seq;
    this.renderSeen();
  }

  /** "Seen" under the newest reply the visitor has read. */
  renderSeen() {
    for (const node of this.threadEl.querySelectorAll(".msg-seen")) node.remove();
    const replies = [...this.threadEl.querySelectorAll("li.msg-out:not(.msg-note)[data-seq]")];
    const seen = replies.reverse().find((li) => Number(li.dataset.seq) <= this.visitorReadSeq);
    if (seen) seen.append(el("div", "msg-status msg-seen", "Seen"));
  }

  /** Seqs of stored messages still shown without their email details. */
  missingEmails() {
    return [...this.seqs].filter((seq) => !this.emails.has(seq));
  }

  /** An email's details arrived or changed (e.g. its delivery state): show them. */
  setEmail(details) {
    const known = this.emails.get(details.seq);
    // Each delivery attempt counts up: details from before the latest attempt (the
    // answer to a Retry, overtaken by the live event of the send it started) are old.
    if (known && (known.attempts || 0) > (details.attempts || 0)) return;
    this.emails.set(details.seq, details);
    const li = this.threadEl.querySelector(`li[data-seq="${details.seq}"]`);
    if (!li) return;
    if (li.dataset.emailId) {
      const old = li.querySelector(".email-state");
      const fresh = emailStateEl(details, this.conversationId);
      if (old && fresh) old.replaceWith(fresh);
      else if (fresh) li.append(fresh);
      else if (old) old.remove();
      return;
    }
    const message = this.messages.get(details.seq);
    if (!message) return;
    const stick = this.nearBottom();
    li.replaceWith(this.messageEl(message));
    this.renderSeen();
    if (stick) this.scrollToBottom();
  }

  messageEl(m) {
    const email = m.seq !== null ? this.emails.get(m.seq) : null;
    if (email) {
      return emailMessageEl(m, email, { contactName: this.contactName, conversationId: this.conversationId });
    }
    if (m.kind === "call") {
      const li = el("li", `msg msg-call msg-call-${m.direction === "in" ? "in" : "out"}`);
      li.dataset.seq = String(m.seq);
      li.append(el("span", "msg-call-text", m.text), timeEl(m.created_at, "clock"));
      return li;
    }
    if (m.kind === "activity") {
      const li = el("li", "msg msg-activity");
      li.dataset.seq = String(m.seq);
      li.append(el("span", "msg-activity-text", m.text), timeEl(m.created_at, "clock"));
      return li;
    }
    const note = m.kind === "note";
    const li = el("li", `msg ${m.direction === "in" ? "msg-in" : "msg-out"}`);
    li.classList.toggle("msg-note", note);
    if (m.seq !== null) li.dataset.seq = String(m.seq);
    if (m.client_id) li.dataset.clientId = m.client_id;
    const meta = el("div", "msg-meta");
    if (note) meta.append(el("span", "msg-label", "Private note"));
    const author = m.author || {};
    const name = author.name || (author.type === "visitor" || author.type === "contact" ? this.contactName : "System");
    meta.append(el("span", "msg-author", name), timeEl(m.created_at, "clock"));
    li.append(meta, el("div", "msg-bubble", m.text));
    return li;
  }
}
