// The conversation list: rows kept in order of last activity, filtered like the server does.

import { api, displayName, el, initials, timeEl, toast } from "./dom.js";
import { icon } from "./email.js";

// Several changes in a burst cost one reload of the list.
const REFRESH_DEBOUNCE_MS = 400;

export class ConversationList {
  constructor({ listEl, emptyEl, filter, me, openId, rows }) {
    this.listEl = listEl;
    this.emptyEl = emptyEl;
    this.filter = filter;
    this.me = me;
    this.openId = openId;
    this.rows = new Map(rows.map((row) => [row.id, row]));
    this.query = new URLSearchParams({ status: filter.status, scope: filter.scope }).toString();
    this.refreshTimer = 0;
    // While a reload is out: conversations that events changed meanwhile (null:
    // dropped). Its answer may be older than they are, so they win over it.
    this.changedDuringRefresh = null;
    // Contacts renamed while a reload is out (by id): applied over its answer too.
    this.contactsDuringRefresh = null;
    this.renderQueued = false;
    this.flashId = null;
    this.baseTitle = document.title;
  }

  matches(conversation) {
    const { status, scope } = this.filter;
    if (status !== "all" && conversation.status !== status) return false;
    if (scope === "mine") return Boolean(conversation.assignee && conversation.assignee.id === this.me.id);
    if (scope === "unassigned") return !conversation.assignee;
    return true;
  }

  /** A conversation changed (or is new): update its row, drop it, or add it. */
  upsert(conversation, { unreadDelta = 0 } = {}) {
    const known = this.rows.get(conversation.id);
    if (!this.matches(conversation)) {
      this.changedDuringRefresh?.set(conversation.id, null);
      if (known) {
        this.rows.delete(conversation.id);
        this.render();
      }
      return;
    }
    const unread = conversation.id === this.openId ? 0 : (known ? known.unread : 0) + unreadDelta;
    const moved = !known || known.last_activity_at !== conversation.last_activity_at;
    const row = { ...conversation, unread };
    this.rows.set(conversation.id, row);
    this.changedDuringRefresh?.set(conversation.id, row);
    if (moved) this.flashId = conversation.id;
    this.render();
    if (!known) this.scheduleRefresh(); // learn its real unread count and the tab counts
  }

  updateContact(contact) {
    this.contactsDuringRefresh?.set(contact.id, contact);
    if (this.applyContact(contact)) this.render();
  }

  /** The contact's new details on each of its rows; whether any row had it. */
  applyContact(contact) {
    let changed = false;
    for (const row of this.rows.values()) {
      if (row.contact.id !== contact.id) continue;
      row.contact = { ...row.contact, ...contact };
      row.contact.display_name = contact.name || contact.email || `Visitor #${contact.id}`;
      changed = true;
    }
    return changed;
  }

  clearUnread(id) {
    const row = this.rows.get(id);
    if (row && row.unread) {
      row.unread = 0;
      this.render();
    }
  }

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.refresh(), REFRESH_DEBOUNCE_MS);
  }

  /** Reload rows and tab counts from the server (after reconnecting, or to reconcile). */
  async refresh() {
    clearTimeout(this.refreshTimer);
    const changed = new Map();
    const contacts = new Map();
    this.changedDuringRefresh = changed;
    this.contactsDuringRefresh = contacts;
    try {
      const data = await api(`/console/api/conversations?${this.query}`);
      if (this.changedDuringRefresh !== changed) return; // a later reload answers instead
      this.rows = new Map(
        data.conversations.map((row) => [row.id, row.id === this.openId ? { ...row, unread: 0 } : row]),
      );
      for (const [id, row] of changed) {
        if (row) this.rows.set(id, row);
        else this.rows.delete(id);
      }
      for (const contact of contacts.values()) this.applyContact(contact);
      this.render();
      this.renderCounts(data.counts);
    } catch (error) {
      if (error.status !== 401) toast(error.message);
    } finally {
      if (this.changedDuringRefresh === changed) this.changedDuringRefresh = null;
      if (this.contactsDuringRefresh === contacts) this.contactsDuringRefresh = null;
    }
  }

  renderCounts(counts) {
    for (const node of document.querySelectorAll("[data-count]")) {
      const value = counts[node.dataset.count];
      if (value !== undefined) node.textContent = String(value);
    }
  }

  ordered() {
    return [...this.rows.values()].sort((a, b) => {
      const byTime = Date.parse(b.last_activity_at) - Date.parse(a.last_activity_at);
      return byTime || b.id - a.id;
    });
  }

  /** Redraw once after the current task: a batch frame's many events cost one redraw. */
  render() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    queueMicrotask(() => {
      this.renderQueued = false;
      this.renderNow();
    });
  }

  renderNow() {
    const rows = this.ordered().map((row) => this.rowEl(row));
    this.listEl.replaceChildren(...rows);
    this.emptyEl.hidden = rows.length > 0;
    this.flashId = null;
    let unread = 0;
    for (const row of this.rows.values()) if (row.id !== this.openId) unread += row.unread || 0;
    document.title = (unread ? `(${unread}) ` : "") + this.baseTitle;
  }

  rowEl(c) {
    const active = c.id === this.openId;
    const li = el("li", "conv-row");
    li.dataset.id = String(c.id);
    li.classList.toggle("is-active", active);
    li.classList.toggle("is-unread", c.unread > 0 && !active);
    li.classList.toggle("is-flash", c.id === this.flashId && !active);

    const link = el("a", "conv-link");
    link.href = `/console/conversations/${c.id}?${this.query}`;
    if (active) link.setAttribute("aria-current", "true");

    const name = displayName(c.contact);
    const avatar = el("span", `avatar av-${c.contact.id % 8}`, initials(name));
    avatar.setAttribute("aria-hidden", "true");

    const body = el("span", "conv-body");
    const top = el("span", "conv-top");
    top.append(el("span", "conv-name", name), timeEl(c.last_activity_at, "ago", "conv-time"));

    const meta = el("span", "conv-meta");
    meta.append(el("span", "conv-inbox", c.inbox.name));
    const dot = el("span", "conv-dot", "·");
    dot.setAttribute("aria-hidden", "true");
    meta.append(dot);
    const assignee = el("span", "conv-assignee", c.assignee ? c.assignee.name : "Unassigned");
    assignee.classList.toggle("is-none", !c.assignee);
    meta.append(assignee);
    if (this.filter.status === "all") meta.append(el("span", `pill pill-${c.status}`, c.status));
    if (c.call_back) meta.append(el("span", "pill pill-callback", "Call back"));
    const badge = el("span", "badge", c.unread);
    badge.setAttribute("aria-label", `${c.unread} unread`);
    badge.hidden = !(c.unread > 0) || active;
    meta.append(badge);

    body.append(top);
    if (c.channel === "email") {
      const subject = el("span", "conv-subject");
      subject.append(icon("mail"), el("span", "conv-subject-text", c.subject || "(no subject)"));
      body.append(subject);
    }
    body.append(el("span", "conv-preview", c.preview || "No messages yet"), meta);
    link.append(avatar, body);
    li.append(link);
    return li;
  }
}
