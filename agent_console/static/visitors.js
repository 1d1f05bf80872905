// Live visitors: the list and a visitor's trail (visitors page), and the visitor's
// current page in a conversation's side panel. Events come from console.js's socket
// ("hub:event"); remote text only ever goes in through textContent.

import { api, ApiError, dateTime, el, initials, toast } from "./dom.js";

const TICK_MS = 1000;
const TOP_PAGES = 6;
const SIDE_TRAIL = 8;
const STATE_LABELS = { active: "Active", idle: "Idle", hidden: "Tab in background", left: "Left" };
const DEVICE_LABELS = { desktop: "Desktop", mobile: "Mobile", tablet: "Tablet", bot: "Bot" };

const dataEl = document.getElementById("console-data");
const data = dataEl ? JSON.parse(dataEl.textContent) : {};

// ---- helpers ---------------------------------------------------------------------

function since(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? 0 : Math.max(0, Math.floor((Date.now() - t) / 1000));
}

export function duration(seconds) {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${String(seconds % 60).padStart(2, "0")}s`;
  return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
}

function isWebUrl(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:";
  } catch {
    return false;
  }
}

function shortUrl(url) {
  try {
    const u = new URL(url);
    return u.host + u.pathname + u.search + u.hash;
  } catch {
    return String(url || "");
  }
}

/** A link only for http(s) addresses; anything else is plain text. */
function urlNode(url, className) {
  if (!isWebUrl(url)) return el("span", className, url || "");
  const link = el("a", className, shortUrl(url));
  link.href = url;
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  link.title = url;
  return link;
}

function name(v) {
  const c = v.contact || {};
  return c.name || c.email || `Visitor #${c.id}`;
}

function ordinal(n) {
  const s = ["th", "st", "nd", "rd"];
  const v = n % 100;
  return n + (s[(v - 20) % 10] || s[v] || s[0]);
}

// ---- live visitors page -----------------------------------------------------------

class LiveVisitors {
  constructor(root) {
    this.listEl = document.getElementById("vis-list");
    this.emptyEl = document.getElementById("vis-empty");
    this.visitors = new Map();
    this.touched = new Set(); // visitors that events changed while a reload was on its way
    this.filter = "all";
    this.pageFilter = "";
    this.sort = "recent";
    this.selected = null; // visitor id
    this.detail = null; // last fetched detail
    for (const v of data.visitors || []) this.visitors.set(v.id, v);
    root.querySelectorAll("[data-filter]").forEach((button) => {
      button.addEventListener("click", () => {
        this.filter = button.dataset.filter;
        for (const b of root.querySelectorAll("[data-filter]")) {
          b.classList.toggle("is-active", b === button);
          b.setAttribute("aria-pressed", b === button ? "true" : "false");
        }
        this.render();
      });
    });
    document.getElementById("vis-page-filter").addEventListener("input", (event) => {
      this.pageFilter = event.target.value.trim().toLowerCase();
      this.render();
    });
    document.getElementById("vis-sort").addEventListener("change", (event) => {
      this.sort = event.target.value;
      this.render();
    });
    this.listEl.addEventListener("click", (event) => {
      const row = event.target.closest(".vis-row");
      if (row) this.select(row.dataset.id);
    });
    document.getElementById("vd-start").addEventListener("submit", (event) => {
      event.preventDefault();
      this.startChat();
    });
    this.render();
    const wanted = location.hash.slice(1);
    if (wanted) this.select(wanted);
    setInterval(() => this.tick(), TICK_MS);
  }

  // -- events --
  onEvent(frame) {
    if (frame.type === "visitor") {
      const v = frame.visitor;
      this.touched.add(v.id);
      const known = this.visitors.has(v.id);
      this.visitors.set(v.id, v);
      this.render(known ? null : v.id);
      if (v.id === this.selected) this.updateDetail(v, frame.page_view);
    } else if (frame.type === "visitor_left") {
      this.touched.add(frame.visitor_id);
      this.visitors.delete(frame.visitor_id);
      this.render();
      if (frame.visitor_id === this.selected) this.showLeft();
    }
  }

  async reload() {
    this.touched.clear();
    try {
      const result = await api("/console/api/visitors");
      const visitors = new Map(result.visitors.map((v) => [v.id, v]));
      // Events that arrived while the answer was on its way are newer than it
      // may be: the answer must not undo them (as conversation lists, list.js).
      for (const id of this.touched) {
        const live = this.visitors.get(id);
        if (live) visitors.set(id, live);
        else visitors.delete(id);
      }
      this.touched.clear();
      this.visitors = visitors;
      this.render();
      if (this.selected) this.select(this.selected);
    } catch (error) {
      if (error.status !== 401) toast(error.message);
    }
  }

  // -- list --
  matches(v) {
    if (this.filter === "active" && v.state !== "active") return false;
    if (this.filter === "idle" && v.state === "active") return false;
    if (this.filter === "chatting" && !v.chatting) return false;
    if (this.pageFilter) {
      const page = v.page || {};
      const hay = `${page.url || ""} ${page.title || ""}`.toLowerCase();
      if (!hay.includes(this.pageFilter)) return false;
    }
    return true;
  }

  sorted() {
    const list = [...this.visitors.values()].filter((v) => this.matches(v));
    const key = {
      recent: (v) => -Date.parse(v.last_active || 0),
      site: (v) => Date.parse(v.site_since || 0),
      pages: (v) => -v.pages,
      page: (v) => Date.parse((v.page && v.page.since) || 0),
    }[this.sort];
    return list.sort((a, b) => key(a) - key(b) || a.id.localeCompare(b.id));
  }

  render(flashId = null) {
    const rows = this.sorted().map((v) => this.row(v, v.id === flashId));
    this.listEl.replaceChildren(...rows);
    const all = [...this.visitors.values()];
    const counts = {
      all: all.length,
      active: all.filter((v) => v.state === "active").length,
      idle: all.filter((v) => v.state !== "active").length,
      chatting: all.filter((v) => v.chatting).length,
    };
    for (const [key, count] of Object.entries(counts)) {
      const node = document.querySelector(`[data-count="${key}"]`);
      if (node) node.textContent = String(count);
    }
    document.getElementById("vis-total").textContent = String(all.length);
    setNavCount(all.length);
    this.emptyEl.hidden = rows.length > 0;
    const filtered = all.length > 0 && rows.length === 0;
    document.getElementById("vis-empty-title").textContent = filtered
      ? "No visitor matches these filters"
      : "Nobody on your sites right now";
    document.getElementById("vis-empty-text").hidden = filtered;
    this.renderTopPages(all);
  }

  row(v, flash) {
    const li = el("li", `vis-row${v.id === this.selected ? " is-active" : ""}${flash ? " is-flash" : ""}`);
    li.dataset.id = v.id;
    li.dataset.state = v.state;
    const button = el("button", "vis-link");
    button.type = "button";
    const avatar = el("span", `avatar av-${v.contact.id % 8}`, initials(name(v)));
    avatar.setAttribute("aria-hidden", "true");
    const dot = el("span", "presence-dot");
    dot.dataset.state = v.state === "active" ? "online" : "away";
    avatar.append(dot);
    const body = el("span", "vis-body");
    const top = el("span", "vis-top");
    top.append(el("span", "vis-name", name(v)));
    if (v.chatting) top.append(el("span", "pill pill-chatting", "Chatting"));
    if (v.returning) top.append(el("span", "pill pill-returning", `${ordinal(v.visit_count)} visit`));
    top.append(el("span", `vis-state state-${v.state}`, STATE_LABELS[v.state] || v.state));
    const page = el("span", "vis-page");
    page.append(el("span", "vis-page-title", (v.page && v.page.title) || "Untitled page"));
    page.append(el("span", "vis-page-url", v.page ? shortUrl(v.page.url) : ""));
    const meta = el("span", "vis-meta");
    const onPage = el("span", "vis-on-page", v.page ? duration(since(v.page.since)) : "—");
    onPage.dataset.since = v.page ? v.page.since : "";
    onPage.title = "Time on this page";
    const onSite = el("span", "vis-on-site", duration(since(v.site_since)));
    onSite.dataset.since = v.site_since;
    onSite.title = "Time on the site this visit";
    meta.append(
      onPage,
      el("span", "vis-dot", "·"),
      onSite,
      el("span", "vis-dot", "·"),
      el("span", null, `${v.pages} ${v.pages === 1 ? "page" : "pages"}`),
      el("span", "vis-dot", "·"),
      el("span", null, v.source || "Direct"),
      el("span", "vis-dot", "·"),
      el("span", null, `${v.device.browser} · ${v.device.system}`),
    );
    body.append(top, page, meta);
    button.append(avatar, body);
    li.append(button);
    return li;
  }

  renderTopPages(all) {
    const counts = new Map();
    for (const v of all) {
      if (!v.page) continue;
      const entry = counts.get(v.page.url) || { url: v.page.url, title: v.page.title, n: 0 };
      entry.n += 1;
      counts.set(v.page.url, entry);
    }
    const top = [...counts.values()].sort((a, b) => b.n - a.n).slice(0, TOP_PAGES);
    const max = top.length ? top[0].n : 1;
    const list = document.getElementById("top-pages");
    list.replaceChildren(
      ...top.map((p) => {
        const li = el("li", "top-page");
        const bar = el("span", "top-page-bar");
        bar.style.width = `${Math.max(6, Math.round((p.n / max) * 100))}%`;
        const text = el("span", "top-page-text");
        text.append(el("span", "top-page-title", p.title || "Untitled page"), urlNode(p.url, "top-page-url"));
        li.append(bar, text, el("span", "top-page-count", String(p.n)));
        return li;
      }),
    );
    document.getElementById("top-pages-empty").hidden = top.length > 0;
  }

  tick() {
    for (const node of document.querySelectorAll("[data-since]")) {
      if (node.dataset.since) node.textContent = duration(since(node.dataset.since));
    }
  }

  // -- one visitor --
  async select(id) {
    if (!/^v_[A-Za-z0-9_-]{1,38}$/.test(id)) return;
    this.selected = id;
    history.replaceState(null, "", `#${id}`);
    for (const row of this.listEl.querySelectorAll(".vis-row")) {
      row.classList.toggle("is-active", row.dataset.id === id);
    }
    try {
      this.detail = await api(`/console/api/visitors/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error.status !== 401) toast(error.message);
      return;
    }
    if (this.selected !== id) return;
    document.getElementById("vis-overview").hidden = true;
    document.getElementById("vis-detail").hidden = false;
    this.renderDetail();
  }

  renderDetail() {
    const d = this.detail;
    const live = this.visitors.get(d.id) || d.live;
    const who = live || d;
    document.getElementById("vd-name").textContent = name(who);
    const avatar = document.getElementById("vd-avatar");
    avatar.className = `avatar avatar-lg av-${who.contact.id % 8}`;
    avatar.textContent = initials(name(who));
    document.getElementById("vd-contact").textContent = who.contact.name || (who.known ? "—" : "Anonymous");
    const claimedEmail = (who.contact.claimed || {}).email;
    document.getElementById("vd-email").textContent =
      who.contact.email || (claimedEmail ? `${claimedEmail} (claimed)` : "—");
    document.getElementById("vd-visits").textContent = d.visit_count === 1 ? "First visit" : `${ordinal(d.visit_count)} visit`;
    document.getElementById("vd-first-seen").textContent = dateTime(d.first_seen);
    document.getElementById("vd-device").textContent = DEVICE_LABELS[d.device.kind] || d.device.kind;
    document.getElementById("vd-browser").textContent = d.device.browser;
    document.getElementById("vd-system").textContent = d.device.system;
    const chat = document.getElementById("vd-open-chat");
    chat.hidden = !who.conversation_id;
    if (who.conversation_id) chat.href = `/console/conversations/${who.conversation_id}`;
    this.renderLive(live);
    this.renderTrail();
  }

  renderLive(live) {
    const state = document.getElementById("vd-state");
    const s = live ? live.state : "left";
    state.textContent = STATE_LABELS[s] || s;
    state.className = `vis-state state-${s}`;
    document.getElementById("vd-sub").textContent = live ? ` · on ${live.inbox.name}` : "";
    document.getElementById("vd-inbox").textContent = live ? live.inbox.name : "—";
    document.getElementById("vd-source").textContent = live ? live.source : "—";
    const ref = document.getElementById("vd-referrer");
    ref.replaceChildren(live && live.referrer ? urlNode(live.referrer, "") : document.createTextNode("—"));
    const page = live && live.page;
    document.getElementById("vd-now").hidden = !live;
    document.getElementById("vd-start").hidden = !live;
    if (!live) return;
    document.getElementById("vd-page-title").textContent = (page && page.title) || "Untitled page";
    const url = document.getElementById("vd-page-url");
    url.textContent = page ? shortUrl(page.url) : "";
    url.removeAttribute("href");
    if (page && isWebUrl(page.url)) url.href = page.url;
    const onPage = document.getElementById("vd-on-page");
    onPage.dataset.since = page ? page.since : "";
    onPage.textContent = page ? duration(since(page.since)) : "—";
    const onSite = document.getElementById("vd-on-site");
    onSite.dataset.since = live.site_since;
    onSite.textContent = duration(since(live.site_since));
    document.getElementById("vd-pages").textContent = String(live.pages);
  }

  renderTrail() {
    const trail = document.getElementById("vd-trail");
    const blocks = this.detail.visits.map((visit, index) => {
      const section = el("section", "vd-visit");
      const current = index === 0 && this.visitors.has(this.detail.id);
      const head = el("h4", "vd-visit-title", current ? "This visit" : `Visit ${visit.visit}`);
      head.append(el("span", "muted", ` · ${dateTime(visit.started_at)} · ${visit.pages.length} ${visit.pages.length === 1 ? "page" : "pages"}`));
      const list = el("ol", "trail");
      list.dataset.visit = String(visit.visit);
      for (const p of visit.pages) list.append(trailItem(p));
      section.append(head, list);
      return section;
    });
    if (!blocks.length) blocks.push(el("p", "muted", "No pages recorded (the visitor's browser asks not to be tracked, or none yet)."));
    trail.replaceChildren(...blocks);
  }

  updateDetail(v, pageView) {
    if (!this.detail) return;
    if (pageView) {
      let visit = this.detail.visits.find((x) => x.visit === pageView.visit);
      if (!visit) {
        visit = { visit: pageView.visit, pages: [], started_at: pageView.at };
        this.detail.visits.unshift(visit);
      }
      const last = visit.pages[visit.pages.length - 1];
      if (last && last.seconds === null) last.seconds = Math.max(0, Math.round((Date.parse(pageView.at) - Date.parse(last.at)) / 1000));
      if (!visit.pages.some((p) => p.id === pageView.id)) visit.pages.push(pageView);
      this.renderTrail();
    }
    this.detail.visit_count = v.visit_count;
    this.renderDetail();
  }

  showLeft() {
    this.renderLive(null);
    document.getElementById("vd-state").textContent = "Left the site";
  }

  async startChat() {
    const textarea = document.getElementById("vd-start-text");
    const text = textarea.value.trim();
    if (!text || !this.selected) return;
    const button = document.getElementById("vd-start-send");
    button.disabled = true;
    try {
      const result = await api(`/console/visitors/${encodeURIComponent(this.selected)}/chat`, {
        method: "POST",
        json: { text },
      });
      location.assign(`/console/conversations/${result.conversation.id}`);
    } catch (error) {
      button.disabled = false;
      if (error instanceof ApiError && error.status !== 401) toast(error.message);
    }
  }
}

function trailItem(p) {
  const li = el("li", "trail-item");
  li.dataset.id = String(p.id);
  const text = el("div", "trail-text");
  text.append(el("span", "trail-title", p.title || "Untitled page"), urlNode(p.url, "trail-url"));
  const time = el("div", "trail-time");
  const when = el("time", "", new Date(p.at).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" }));
  when.dateTime = p.at;
  time.append(when);
  if (p.seconds !== null && p.seconds !== undefined) time.append(el("span", "trail-seconds", duration(p.seconds)));
  li.append(text, time);
  return li;
}

function setNavCount(n) {
  const node = document.getElementById("nav-visitors-count");
  if (!node) return;
  node.textContent = String(n);
  node.hidden = n === 0;
}

// ---- a conversation's side panel: the visitor's current page and recent trail ---------

class SidePanel {
  /** `page` and `trail`: what the page's data says (the latest pages first). */
  constructor(root, { page, trail }) {
    this.root = root;
    this.visitorId = root.dataset.visitorId;
    if (page) this.showPage(page);
    document.getElementById("side-trail").replaceChildren(...(trail || []).slice(0, SIDE_TRAIL).map(trailItem));
  }

  showPage(page) {
    document.getElementById("side-page-title").textContent = page.title || "Untitled page";
    document.getElementById("side-page-url").replaceChildren(urlNode(page.url, "visit-url"));
    document.getElementById("side-page-card").hidden = false;
    document.getElementById("side-page-none").hidden = true;
  }

  onEvent(frame) {
    if (frame.type === "visitor" && frame.visitor.id === this.visitorId) {
      const page = frame.visitor.page;
      if (page) this.showPage(page);
      const state = document.getElementById("side-page-state");
      state.textContent = STATE_LABELS[frame.visitor.state] || "";
      state.className = `vis-state state-${frame.visitor.state}`;
      if (frame.page_view) {
        const list = document.getElementById("side-trail");
        if (!list.querySelector(`[data-id="${frame.page_view.id}"]`)) {
          list.prepend(trailItem(frame.page_view));
          while (list.children.length > SIDE_TRAIL) list.lastElementChild.remove();
        }
      }
    } else if (frame.type === "visitor_left" && frame.visitor_id === this.visitorId) {
      const state = document.getElementById("side-page-state");
      state.textContent = STATE_LABELS.left;
      state.className = "vis-state state-left";
    }
  }
}

// ---- wiring ----------------------------------------------------------------------------

const viewRoot = document.getElementById("visitors-view");
const sideRoot = document.getElementById("side-visit");
const live = viewRoot ? new LiveVisitors(viewRoot) : null;
const side = sideRoot && sideRoot.dataset.visitorId ? new SidePanel(sideRoot, data.open || {}) : null;

window.addEventListener("hub:event", (event) => {
  if (live) live.onEvent(event.detail);
  if (side) side.onEvent(event.detail);
});
window.addEventListener("hub:ready", () => {
  if (live) live.reload();
});
