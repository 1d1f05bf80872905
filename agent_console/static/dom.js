// Small DOM and time helpers. Remote text only ever goes in through textContent.

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function initials(name) {
  if (/^(\+|Ext\. )/.test(String(name || ""))) return "#"; // a phone number has no initials
  const words = String(name || "").split(/\s+/).filter((w) => /^[\p{L}\p{N}]/u.test(w));
  return words.slice(0, 2).map((w) => w[0]).join("").toUpperCase() || "?";
}

export function displayName(contact) {
  if (!contact) return "Visitor";
  return contact.display_name || contact.name || contact.email || `Visitor #${contact.id}`;
}

const MINUTE = 60;
const HOUR = 3600;
const DAY = 86400;

export function ago(iso) {
  const when = Date.parse(iso);
  if (Number.isNaN(when)) return "";
  const seconds = Math.max(0, Math.round((Date.now() - when) / 1000));
  if (seconds < MINUTE) return "now";
  if (seconds < HOUR) return `${Math.floor(seconds / MINUTE)}m`;
  if (seconds < DAY) return `${Math.floor(seconds / HOUR)}h`;
  if (seconds < DAY * 30) return `${Math.floor(seconds / DAY)}d`;
  return new Date(when).toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

export function clock(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  const time = when.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  if (sameDay(when, new Date())) return time;
  const date = when.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  return `${date}, ${time}`;
}

export function dateTime(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  const options = { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" };
  if (when.getFullYear() !== new Date().getFullYear()) options.year = "numeric";
  return when.toLocaleString(undefined, options);
}

export function timeEl(iso, format, className) {
  const node = el("time", className || "");
  node.dateTime = iso || "";
  node.dataset.format = format;
  node.title = dateTime(iso);
  node.textContent = format === "ago" ? ago(iso) : format === "clock" ? clock(iso) : dateTime(iso);
  return node;
}

/** Bring every <time data-format> (and list times) up to date, in the agent's own zone. */
export function refreshTimes(root = document) {
  for (const node of root.querySelectorAll("time[datetime]")) {
    const iso = node.getAttribute("datetime");
    const format = node.dataset.format || (node.classList.contains("conv-time") ? "ago" : "");
    if (!iso || !format) continue;
    const text = format === "ago" ? ago(iso) : format === "clock" ? clock(iso) : dateTime(iso);
    if (text && node.textContent !== text) node.textContent = text;
    const title = dateTime(iso);
    if (title && node.title !== title) node.title = title;
  }
}

const csrfMeta = document.querySelector('meta[name="csrf-token"]');
export const csrfToken = csrfMeta ? csrfMeta.content : "";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** fetch() against the console: CSRF header on writes, JSON back, 401 -> login page. */
export async function api(url, { method = "GET", json, form } = {}) {
  const headers = { Accept: "application/json" };
  let body;
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form; // URLSearchParams: the browser sets the form content type
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body, credentials: "same-origin", cache: "no-store" });
  } catch {
    throw new ApiError(0, "network", "No connection to the hub. Check your network and try again.");
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.status === 401) {
    goToLogin();
    throw new ApiError(401, "login_required", "Log in again.");
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || "error", error.message || `The hub answered ${response.status}.`);
  }
  return data;
}

export function goToLogin() {
  const next = location.pathname + location.search;
  location.assign(`/console/login?next=${encodeURIComponent(next)}`);
}

let toastTimer = 0;

export function toast(message, kind = "error") {
  let node = document.getElementById("toast");
  if (!node) {
    node = el("div", "toast");
    node.id = "toast";
    node.setAttribute("role", "status");
    document.body.append(node);
  }
  node.textContent = message;
  node.dataset.kind = kind;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.hidden = true; }, 5000);
}

/** An empty 24×24 line icon in the console's style; callers add its shapes. */
export function svgIcon(className) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", className);
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "18");
  svg.setAttribute("height", "18");
  svg.setAttribute("fill", "none");
  svg.setAttribute("stroke", "currentColor");
  svg.setAttribute("stroke-width", "1.8");
  svg.setAttribute("stroke-linecap", "round");
  svg.setAttribute("stroke-linejoin", "round");
  svg.setAttribute("aria-hidden", "true");
  return svg;
}
