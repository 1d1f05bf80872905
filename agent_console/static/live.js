// The console websocket: reconnects with backoff, keeps itself alive with pings.

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30000;
// Proxies and NAT boxes drop connections that are silent for a minute or so.
const PING_EVERY_MS = 25000;
const PONG_WITHIN_MS = 10000;

export const CLOSE_DROPPED = 4000;
export const CLOSE_UNAUTHENTICATED = 4401;
export const CLOSE_BAD_ORIGIN = 4403;

export class LiveSocket {
  /**
   * handlers: onReady(frame, isReconnect), onEvent(frame), onState("connecting"|"online"|"offline"),
   * onUnauthenticated(reason), onError(frame)
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.ws = null;
    this.attempt = 0;
    this.everReady = false;
    this.stopped = false;
    this.retryTimer = 0;
    this.pingTimer = 0;
    this.pongTimer = 0;
  }

  start() {
    window.addEventListener("online", () => this.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    });
    this.connect();
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  send(frame) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.handlers.onState("connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("message", (event) => this.receive(event));
    ws.addEventListener("close", (event) => this.closed(ws, event));
  }

  receive(event) {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!frame || typeof frame.type !== "string") return;
    if (frame.type === "batch") {
      // Events published together (a group commit's messages), in order.
      if (!Array.isArray(frame.events)) return;
      for (const event of frame.events) {
        if (event && typeof event.type === "string") this.handlers.onEvent(event);
      }
      return;
    }
    if (frame.type === "ready") {
      const isReconnect = this.everReady;
      this.everReady = true;
      this.attempt = 0;
      this.handlers.onState("online");
      this.schedulePing();
      this.handlers.onReady(frame, isReconnect);
    } else if (frame.type === "pong") {
      clearTimeout(this.pongTimer);
    } else if (frame.type === "error") {
      this.handlers.onError(frame);
    } else {
      this.handlers.onEvent(frame);
    }
  }

  schedulePing() {
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      if (!this.send({ type: "ping" })) return;
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => this.ws && this.ws.close(), PONG_WITHIN_MS);
      this.schedulePing();
    }, PING_EVERY_MS);
  }

  closed(ws, event) {
    if (ws !== this.ws) return;
    clearTimeout(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.ws = null;
    if (event.code === CLOSE_UNAUTHENTICATED) {
      this.stopped = true;
      // Why the session ended: "deactivated", "password_reset", ... (console/socket.py).
      this.handlers.onUnauthenticated(event.reason);
      return;
    }
    this.handlers.onState("offline");
    if (event.code === CLOSE_BAD_ORIGIN) {
      this.stopped = true;
      return;
    }
    // Dropped for falling behind: come straight back and reload from the server.
    const delay = event.code === CLOSE_DROPPED ? 0 : this.backoff();
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  backoff() {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    this.attempt += 1;
    return base / 2 + Math.random() * (base / 2);
  }

  reconnectNow() {
    if (this.stopped || this.ws !== null) return;
    this.attempt = 0;
    this.connect();
  }
}
