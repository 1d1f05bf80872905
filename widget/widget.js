/*
 * HubChat — embeddable live-chat widget for the customer-contact hub.
 *
 *   <script src="https://HUB/widget.js" data-site="SITE_TOKEN" async></script>
 *
 * Plain JavaScript, no dependencies, no build step. Wire protocol:
 * docs/widget-protocol.md. All UI lives in a Shadow DOM so that the host
 * page's CSS cannot break it and it cannot affect the page. Every piece of
 * text from the network or the user is inserted as text, never as HTML.
 *
 * Optional script attributes: data-title (header title, default
 * "Chat with us"), data-color (accent colour), data-track="off" (report no
 * page views: agents do not see the visitor's navigation), data-strip-params
 * (a regular expression of query parameter names removed from reported
 * addresses; default token|key|password|email|session). The accent colour can
 * also be set from the page's CSS with the custom property --hubchat-accent.
 * What an admin sets on the site's inbox in the console (colour, position,
 * greeting, language, away message, pre-chat form) comes in the welcome frame
 * and is applied by applySettings(); the attributes above win over it.
 *
 * Live visitors: the widget reports each page (load, and single-page-app
 * navigation through pushState/replaceState/popstate/hashchange), tab
 * visibility and leaving. It reports nothing of the kind when the browser
 * sends Global Privacy Control or Do Not Track; chat works the same.
 */
(function () {
  "use strict";

  var W = window, D = document;
  if (W.HubChat && W.HubChat.__hubchat) return; // already loaded

  function log(kind, args) {
    try { console[kind].apply(console, ["HubChat:"].concat([].slice.call(args))); } catch (e) { /* no console */ }
  }
  function warn() { log("warn", arguments); }
  // Every entry point from the outside world goes through guard(): the widget
  // never throws into the host page.
  function guard(fn) {
    return function () {
      try { return fn.apply(this, arguments); } catch (e) { log("error", [e]); }
    };
  }

  // ---------------------------------------------------------------- config
  var script = D.currentScript || D.querySelector('script[data-site][src*="widget.js"]');
  var site = script && script.getAttribute("data-site");
  if (!site) { warn("script tag has no data-site attribute"); return; }
  var hubUrl, wsUrl;
  try {
    var src = new URL(script.src, location.href);
    var i = src.pathname.lastIndexOf("/widget.js");
    hubUrl = src.origin + (i > 0 ? src.pathname.slice(0, i) : "");
    wsUrl = hubUrl.replace(/^http/, "ws") + "/widget/ws?site=" + encodeURIComponent(site);
  } catch (e) { warn("cannot derive the hub URL from the script src"); return; }
  var TITLE = script.getAttribute("data-title");
  var COLOR = script.getAttribute("data-color");
  var N = W.navigator || {};
  var TRACK = script.getAttribute("data-track") !== "off" && N.globalPrivacyControl !== true &&
    [N.doNotTrack, W.doNotTrack, N.msDoNotTrack].indexOf("1") < 0 && N.doNotTrack !== "yes";
  var STRIP;
  try { STRIP = new RegExp(script.getAttribute("data-strip-params") || "token|key|password|email|session", "i"); }
  catch (e) { STRIP = /token|key|password|email|session/i; }
  // The address as reported: secret-looking parameters and e-mail values removed
  // (the hub strips again; this keeps them from ever leaving the browser).
  function pageUrl(href) {
    if (!href) return null;
    try {
      var u = new URL(href, location.href);
      if (!/^https?:$/.test(u.protocol)) return null;
      u.username = u.password = "";
      var q = [];
      u.searchParams.forEach(function (v, k) { if (!STRIP.test(k) && !/@.+\./.test(v)) q.push([k, v]); });
      u.search = new URLSearchParams(q).toString();
      if (u.hash.indexOf("=") > 0) u.hash = "";
      return u.href;
    } catch (e) { return null; }
  }

  // ----------------------------------------------------------------- words
  // The widget's own words in the languages an admin can choose (hub/inboxes/widget_settings.py).
  var WORDS = {
    en: { title: "Chat with us", online: "We're online", away: "We're away", on1: "Online", off1: "Away",
      connecting: "Connecting…", reconnecting: "Reconnecting…", offline: "You're offline. Messages will be sent when you reconnect.",
      hi: "Hi there!", greet: "Ask us anything — we usually reply in a few minutes.",
      awayIntro: "We're away right now, but leave a message and we'll get back to you.",
      awayHead: "We're away right now", awayText: "Leave us a message and we'll get back to you by email.",
      preHead: "Before we start", preText: "Tell us a little about yourself.",
      name: "Name", email: "Email", message: "Message", namePh: "Your name", msgPh: "How can we help?",
      send: "Send message", write: "Write a message…", support: "Support", sending: "Sending…",
      failed: "Not delivered: ", seen: "Seen", typing: " is typing…", byEmail: "We'll reply by email as soon as we can.",
      resolved: "This conversation was resolved. Send a message to reopen it.", optional: " (optional)",
      closed: "This chat is closed: the site no longer takes messages here." },
    fr: { title: "Discutons", online: "Nous sommes en ligne", away: "Nous sommes absents", on1: "En ligne", off1: "Absent",
      connecting: "Connexion…", reconnecting: "Reconnexion…", offline: "Vous êtes hors ligne. Les messages partiront à la reconnexion.",
      hi: "Bonjour !", greet: "Posez-nous vos questions — nous répondons en général en quelques minutes.",
      awayIntro: "Nous sommes absents, mais laissez un message et nous vous répondrons.",
      awayHead: "Nous sommes absents", awayText: "Laissez-nous un message, nous vous répondrons par e-mail.",
      preHead: "Avant de commencer", preText: "Dites-nous qui vous êtes.",
      name: "Nom", email: "E-mail", message: "Message", namePh: "Votre nom", msgPh: "Comment pouvons-nous aider ?",
      send: "Envoyer", write: "Écrivez un message…", support: "Support", sending: "Envoi…",
      failed: "Non remis : ", seen: "Vu", typing: " écrit…", byEmail: "Nous répondrons par e-mail dès que possible.",
      resolved: "Cette conversation est résolue. Écrivez pour la rouvrir.", optional: " (facultatif)",
      closed: "Ce chat est fermé : le site ne reçoit plus de messages ici." },
    de: { title: "Chatten Sie mit uns", online: "Wir sind online", away: "Wir sind nicht da", on1: "Online", off1: "Abwesend",
      connecting: "Verbinde…", reconnecting: "Verbinde erneut…", offline: "Sie sind offline. Nachrichten werden gesendet, sobald Sie wieder verbunden sind.",
      hi: "Hallo!", greet: "Fragen Sie uns — wir antworten meist in wenigen Minuten.",
      awayIntro: "Wir sind gerade nicht da, aber hinterlassen Sie eine Nachricht und wir melden uns.",
      awayHead: "Wir sind gerade nicht da", awayText: "Hinterlassen Sie uns eine Nachricht, wir antworten per E-Mail.",
      preHead: "Bevor es losgeht", preText: "Erzählen Sie uns kurz, wer Sie sind.",
      name: "Name", email: "E-Mail", message: "Nachricht", namePh: "Ihr Name", msgPh: "Wie können wir helfen?",
      send: "Nachricht senden", write: "Nachricht schreiben…", support: "Support", sending: "Wird gesendet…",
      failed: "Nicht zugestellt: ", seen: "Gelesen", typing: " schreibt…", byEmail: "Wir antworten so bald wie möglich per E-Mail.",
      resolved: "Dieses Gespräch ist erledigt. Schreiben Sie, um es wieder zu öffnen.", optional: " (optional)",
      closed: "Dieser Chat ist geschlossen: Die Website nimmt hier keine Nachrichten mehr an." },
    es: { title: "Chatea con nosotros", online: "Estamos en línea", away: "No estamos", on1: "En línea", off1: "Ausente",
      connecting: "Conectando…", reconnecting: "Reconectando…", offline: "Sin conexión. Los mensajes se enviarán al reconectar.",
      hi: "¡Hola!", greet: "Pregúntanos lo que quieras — solemos responder en pocos minutos.",
      awayIntro: "Ahora no estamos, pero deja un mensaje y te responderemos.",
      awayHead: "Ahora no estamos", awayText: "Déjanos un mensaje y te responderemos por correo.",
      preHead: "Antes de empezar", preText: "Cuéntanos un poco sobre ti.",
      name: "Nombre", email: "Correo", message: "Mensaje", namePh: "Tu nombre", msgPh: "¿Cómo podemos ayudarte?",
      send: "Enviar mensaje", write: "Escribe un mensaje…", support: "Soporte", sending: "Enviando…",
      failed: "No entregado: ", seen: "Visto", typing: " está escribiendo…", byEmail: "Te responderemos por correo lo antes posible.",
      resolved: "Esta conversación se resolvió. Escribe para reabrirla.", optional: " (opcional)",
      closed: "Este chat está cerrado: el sitio ya no recibe mensajes aquí." }
  };
  var words = WORDS.en;
  function t(k) { return words[k] || WORDS.en[k]; }
  // What the site's inbox says (the welcome's settings); defaults until then.
  var cfg = { greeting: "", away_message: "", prechat: { name: "off", email: "off", question: "off", question_label: "" } };

  // --------------------------------------------------------------- storage
  // Falls back to memory when storage is unavailable (private mode, quota,
  // sandboxed iframes).
  function store(kind) {
    var mem = {}, s = null;
    try { s = W[kind]; s.setItem("hubchat:t", "1"); s.removeItem("hubchat:t"); } catch (e) { s = null; }
    return {
      get: function (k) {
        if (s) { try { var v = s.getItem(k); mem[k] = v; return v; } catch (e) { s = null; } }
        return Object.prototype.hasOwnProperty.call(mem, k) ? mem[k] : null;
      },
      set: function (k, v) { mem[k] = v; if (s) { try { s.setItem(k, v); } catch (e) { s = null; } } },
      del: function (k) { mem[k] = null; if (s) { try { s.removeItem(k); } catch (e) { s = null; } } }
    };
  }
  var LS = store("localStorage"), SS = store("sessionStorage");
  var K = "hubchat:" + site + ":";
  var K_TOKEN = K + "token", K_OUTBOX = K + "outbox", K_READ = K + "read", K_OPEN = K + "open";
  function parse(s) { try { return JSON.parse(s); } catch (e) { return null; } }

  // ----------------------------------------------------------------- state
  // Everything the widget knows, in one object: the conversation and its
  // messages, the socket and its timers, what was last told to the hub.
  var state = {
    token: LS.get(K_TOKEN) || null,
    conversation: null,     // {id, status, assignee: {name}|null}
    agentsOnline: null,     // null until the first welcome
    messages: [],           // confirmed messages, sorted by (conversation_id, seq)
    seenSeqs: {},           // "conversation:seq" -> 1
    confirmedClientIds: {}, // client_id -> 1 for confirmed messages
    failedSends: [],        // [{id, text, t, err}] dropped by the hub
    agentReadSeq: 0,        // agents have read up to this seq
    agentTypingName: null, agentTypingTimer: null,
    awayFormClientId: null, // the message sent by the away form
    archived: false,        // the site's inbox was archived: history only
    panelOpen: SS.get(K_OPEN) === "1",
    socket: null, welcomed: false, everWelcomed: false, firstWelcome: true,
    reconnectAttempt: 0, reconnectTimer: null, pingTimer: null, quiet: false,
    resumeSeqSent: 0, fullResumeNext: false, readSeqSent: {},
    identity: null, identitySent: false, attributes: null,
    visitorTyping: false, visitorTypingAt: 0, visitorTypingTimer: null,
    retryTimers: {},
    reportedUrl: null, navigationTimer: null,
    campaign: null,         // the campaign shown, unanswered
    listeners: {},
    listDirty: true, renderQueued: false, stickToBottom: true,
  };
  var ui = null;

  // ---------------------------------------------------------------- outbox
  // Persisted before sending; an entry leaves only on its ack (or on a
  // permanent error). Re-read on every change so that tabs sharing the
  // storage do not overwrite each other.
  function obx() {
    var a = parse(LS.get(K_OUTBOX));
    return Array.isArray(a) ? a.filter(function (x) { return x && typeof x.id === "string" && typeof x.text === "string"; }) : [];
  }
  function obxSave(a) { if (a.length) LS.set(K_OUTBOX, JSON.stringify(a)); else LS.del(K_OUTBOX); }
  function obxGet(id) { return obx().filter(function (x) { return x.id === id; })[0] || null; }
  function obxDrop(id) {
    var a = obx(), b = a.filter(function (x) { return x.id !== id; });
    if (b.length !== a.length) obxSave(b);
  }

  function newId() {
    var c = W.crypto;
    try { if (c && c.randomUUID) return "c-" + c.randomUUID(); } catch (e) { /* insecure context */ }
    var h = "";
    try {
      var b = new Uint8Array(16); c.getRandomValues(b);
      for (var j = 0; j < 16; j++) h += (b[j] + 256).toString(16).slice(1);
    } catch (e) {
      while (h.length < 32) h += Math.random().toString(16).slice(2);
    }
    return "c-" + h.slice(0, 32) + Date.now().toString(36);
  }

  // -------------------------------------------------------------- events
  function emit(name, arg) {
    (state.listeners[name] || []).slice().forEach(function (cb) {
      try { cb(arg); } catch (e) { log("error", [e]); }
    });
  }
  function copy(m) { return parse(JSON.stringify(m)); }

  // ------------------------------------------------------------- messages
  function cmp(a, b) { return a < b ? -1 : a > b ? 1 : 0; }
  function isAgent(m) { return m.author && (m.author.type === "agent" || m.author.type === "campaign"); }
  function isSystem(m) { return m.author && m.author.type === "system"; }
  function convId() { return state.conversation ? state.conversation.id : null; }

  function addMsg(m, notify) {
    if (!m || typeof m !== "object" || typeof m.seq !== "number") return false;
    var k = m.conversation_id + ":" + m.seq;
    if (state.seenSeqs[k]) return false;
    state.seenSeqs[k] = 1;
    if (m.client_id) state.confirmedClientIds[m.client_id] = 1;
    if (m.author && m.author.type === "campaign") state.campaign = null; // stored now: shown from the thread
    state.messages.push(m);
    state.messages.sort(function (a, b) { return cmp(a.conversation_id, b.conversation_id) || cmp(a.seq, b.seq); });
    if (isAgent(m) && state.agentTypingName) setTyping(false);
    state.listDirty = true;
    if (notify) emit("message", copy(m));
    return true;
  }
  function lastSeq() {
    var c = convId(), s = 0;
    state.messages.forEach(function (m) { if ((c == null || m.conversation_id === c) && m.seq > s) s = m.seq; });
    return s;
  }
  function maxAgentSeq() {
    var c = convId(), s = 0;
    state.messages.forEach(function (m) { if (isAgent(m) && m.conversation_id === c && m.seq > s) s = m.seq; });
    return s;
  }
  function readSeq() {
    var r = parse(LS.get(K_READ));
    return r && r.c === convId() && typeof r.s === "number" ? r.s : 0;
  }
  function unread() {
    var c = convId(), r = readSeq(), n = 0;
    state.messages.forEach(function (m) { if (isAgent(m) && m.conversation_id === c && m.seq > r) n++; });
    return n;
  }
  function markRead() {
    if (!state.panelOpen || D.visibilityState === "hidden" || convId() == null) return;
    var s = maxAgentSeq();
    if (s > readSeq()) LS.set(K_READ, JSON.stringify({ c: convId(), s: s }));
    if (state.welcomed && s > 0 && (state.readSeqSent.c !== convId() || s > state.readSeqSent.s)) {
      state.readSeqSent = { c: convId(), s: s };
      send({ type: "read", seq: s });
    }
  }
  function hasThread() { return state.messages.length > 0 || obx().length > 0 || state.failedSends.length > 0; }

  // ------------------------------------------------------------ websocket
  function sendRaw(f) {
    if (state.socket && state.socket.readyState === 1) { state.socket.send(JSON.stringify(f)); return true; }
    return false;
  }
  function send(f) { return state.welcomed && sendRaw(f); }

  function sendItem(it) {
    var f = { type: "message", client_id: it.id, text: it.text };
    if (it.contact) f.contact = it.contact;
    if (it.camp) f.campaign_id = it.camp;
    send(f);
  }
  function flush() {
    obx().forEach(sendItem);
    if (state.identity && !state.identitySent) { state.identitySent = true; send(state.identity); }
    sendAttrs();
  }
  function sendAttrs() {
    if (state.attributes && send({ type: "attributes", attributes: state.attributes })) state.attributes = null;
  }

  function connect() {
    clearTimeout(state.reconnectTimer); state.reconnectTimer = null;
    if (state.socket) return;
    var s;
    try { s = new WebSocket(wsUrl); } catch (e) { schedule(); return; }
    state.socket = s;
    s.onopen = guard(function () {
      if (state.socket !== s) return;
      state.resumeSeqSent = state.fullResumeNext ? 0 : lastSeq();
      state.fullResumeNext = false;
      state.reportedUrl = TRACK ? pageUrl(location.href) : null;
      sendRaw({ type: "hello", visitor_token: state.token, last_seq: state.resumeSeqSent, track: TRACK,
        page: TRACK ? { url: state.reportedUrl, title: D.title, referrer: pageUrl(D.referrer) } : {} });
      clearInterval(state.pingTimer);
      state.pingTimer = setInterval(guard(function () {
        if (state.socket !== s) return;
        // No frame at all since the previous ping: the link is dead.
        if (state.quiet) { drop(); return; }
        state.quiet = true;
        sendRaw({ type: "ping" });
      }), 25000);
    });
    s.onmessage = guard(function (ev) {
      if (state.socket !== s) return;
      state.quiet = false;
      if (typeof ev.data !== "string") return;
      var f = parse(ev.data);
      // Events published together come as one batch frame, in order.
      var list = f && f.type === "batch" && Array.isArray(f.events) ? f.events : [f];
      for (var i = 0; i < list.length; i++) {
        var e = list[i];
        if (e && typeof e === "object" && Object.prototype.hasOwnProperty.call(H, e.type)) H[e.type](e);
      }
      render();
    });
    s.onclose = guard(function (ev) {
      if (state.socket !== s) return;
      if (ev.code === 4401) forget();
      lost();
    });
  }
  // Abandon the current socket without waiting for its closing handshake.
  function drop() {
    var s = state.socket;
    lost();
    try { s.close(); } catch (e) { /* already closed */ }
  }
  function lost() {
    state.socket = null; state.welcomed = false; state.quiet = false;
    clearInterval(state.pingTimer);
    setTyping(false);
    state.visitorTyping = false;
    schedule();
    render();
  }
  function schedule() {
    if (state.reconnectTimer) return;
    var d = Math.min(30000, 500 * Math.pow(2, state.reconnectAttempt));
    d = d / 2 + Math.random() * d / 2; // jitter
    state.reconnectAttempt++;
    state.reconnectTimer = setTimeout(guard(connect), d);
  }
  function reconnectNow() {
    if (state.socket) return;
    clearTimeout(state.reconnectTimer); state.reconnectTimer = null;
    connect();
  }
  // The stored token is not (or no longer) valid: start as a new visitor.
  function forget() {
    state.token = null; LS.del(K_TOKEN);
    state.conversation = null; state.messages = []; state.seenSeqs = {}; state.confirmedClientIds = {}; state.agentReadSeq = 0; state.readSeqSent = {};
    state.identitySent = false; state.reconnectAttempt = 0; state.listDirty = true;
  }

  // ------------------------------------------------------- frame handlers
  var H = {
    welcome: function (f) {
      // Our token had expired: the hub made us a new visitor, so the old one's
      // conversation goes (the new token is stored just below).
      if (f.token_expired === true) forget();
      if (typeof f.visitor_token === "string" && f.visitor_token) {
        state.token = f.visitor_token; LS.set(K_TOKEN, state.token);
      }
      var c = f.conversation && typeof f.conversation === "object" ? f.conversation : null;
      // The conversation changed while we were away and we asked only for
      // the tail of the old one: ask again for the whole history.
      if (state.resumeSeqSent > 0 && c && c.id !== convId()) { state.fullResumeNext = true; state.conversation = c; state.reconnectAttempt = 0; drop(); return; }
      state.conversation = c;
      state.agentsOnline = f.agents_online !== false;
      state.archived = f.archived === true;
      if (f.settings && typeof f.settings === "object") applySettings(f.settings);
      (Array.isArray(f.messages) ? f.messages : []).forEach(function (m) { addMsg(m, !state.firstWelcome); });
      state.firstWelcome = false;
      state.welcomed = true; state.everWelcomed = true; state.reconnectAttempt = 0;
      clearTimeout(state.reconnectTimer); state.reconnectTimer = null;
      flush();
      markRead();
      state.listDirty = true;
    },
    ack: function (f) {
      var it = obxGet(f.client_id);
      obxDrop(f.client_id);
      clearTimeout(state.retryTimers[f.client_id]); delete state.retryTimers[f.client_id];
      if (f.conversation_id != null && convId() !== f.conversation_id) {
        state.conversation = { id: f.conversation_id, status: "open", assignee: null };
      }
      if (it && typeof f.seq === "number") {
        addMsg({ conversation_id: f.conversation_id, seq: f.seq, direction: "in", kind: "text",
          author: { type: "visitor", name: null }, text: it.text, client_id: it.id,
          created_at: f.created_at }, true);
      }
      state.listDirty = true;
    },
    message: function (f) {
      var m = f.message;
      // A message from a newer conversation than the one we know: follow it
      // (the hub normally also sends a `conversation` frame).
      if (m && typeof m === "object" && m.conversation_id != null &&
          (state.conversation == null || cmp(m.conversation_id, state.conversation.id) > 0)) {
        state.conversation = { id: m.conversation_id, status: "open", assignee: null };
      }
      if (addMsg(m, true)) markRead();
    },
    typing: function (f) {
      setTyping(!!f.on, (f.agent && f.agent.name) || t("support"));
    },
    read: function (f) {
      if (typeof f.seq === "number" && f.seq > state.agentReadSeq) { state.agentReadSeq = f.seq; state.listDirty = true; }
    },
    conversation: function (f) {
      if (f.conversation && typeof f.conversation === "object") { state.conversation = f.conversation; state.listDirty = true; }
    },
    presence: function (f) { state.agentsOnline = f.agents_online !== false; },
    // A proactive campaign: shown as the sender's message until the visitor answers.
    campaign: function (f) {
      var c = f.campaign;
      if (!c || typeof c.text !== "string" || typeof c.id !== "number") return;
      state.campaign = { id: c.id, text: c.text, name: String((c.author && c.author.name) || ""), at: c.created_at };
      state.listDirty = true;
      setOpen(true, false);
    },
    // An agent started a chat from the live visitors view.
    open: function () { setOpen(true, false); },
    identified: function () { /* the hub linked us to a contact; nothing to show */ },
    pong: function () { /* any frame proves the link is alive */ },
    error: function (f) {
      var code = f.code, id = f.client_id;
      if (code === "bad_token") { forget(); drop(); return; }
      if (code === "archived") state.archived = true;
      if (code === "unverified_identity") { warn(f.message || "identity claim refused (unverified_identity)"); return; }
      if (!id) return;
      if (code === "rate_limited" || code === "internal" || code === "not_ready") {
        if (state.retryTimers[id]) return;
        state.retryTimers[id] = setTimeout(guard(function () {
          delete state.retryTimers[id];
          var it = obxGet(id);
          if (it) sendItem(it);
        }), 2000);
        return;
      }
      var it = obxGet(id);
      obxDrop(id);
      if (it && !state.confirmedClientIds[id]) {
        state.failedSends.push({ id: id, text: it.text, t: it.t, err: f.message || code || "error" });
        state.listDirty = true;
      }
    }
  };

  // ------------------------------------------------------------ navigation
  function navigated() {
    clearTimeout(state.navigationTimer);
    // Let the app set its new title first; also folds redirects into one view.
    state.navigationTimer = setTimeout(guard(function () {
      var u = pageUrl(location.href);
      if (!u || u === state.reportedUrl || !state.welcomed) return;
      var ref = state.reportedUrl;
      state.reportedUrl = u;
      send({ type: "page", url: u, title: D.title, referrer: ref });
    }), 150);
  }
  function track() {
    var h = W.history;
    ["pushState", "replaceState"].forEach(function (name) {
      var orig = h && h[name];
      if (typeof orig !== "function") return;
      h[name] = function () {
        var r = orig.apply(this, arguments);
        navigated();
        return r;
      };
    });
    W.addEventListener("popstate", guard(navigated));
    W.addEventListener("hashchange", guard(navigated));
    D.addEventListener("visibilitychange", guard(function () {
      send({ type: "visibility", visible: D.visibilityState !== "hidden" });
    }));
    W.addEventListener("pagehide", guard(function () { send({ type: "leave" }); }));
  }

  function setTyping(on, name) {
    clearTimeout(state.agentTypingTimer);
    state.agentTypingName = on ? name : null;
    if (on) state.agentTypingTimer = setTimeout(guard(function () { state.agentTypingName = null; render(); }), 6000);
    render();
  }

  // ------------------------------------------------------- visitor actions
  function sendText(text, contact) {
    text = String(text || "").trim();
    if (!text) return false;
    var it = { id: newId(), text: text.slice(0, 5000), t: Date.now() };
    if (contact) it.contact = contact;
    if (state.campaign && !state.campaign.sent) { it.camp = state.campaign.id; state.campaign.sent = 1; }
    var a = obx(); a.push(it); obxSave(a);
    stopTyping();
    sendItem(it);
    state.stickToBottom = true; state.listDirty = true;
    render();
    return it.id;
  }
  function onType() {
    if (!state.welcomed) return;
    var now = Date.now();
    if (!state.visitorTyping || now - state.visitorTypingAt >= 3000) {
      state.visitorTyping = true; state.visitorTypingAt = now;
      send({ type: "typing", on: true });
    }
    clearTimeout(state.visitorTypingTimer);
    state.visitorTypingTimer = setTimeout(guard(stopTyping), 4000);
  }
  function stopTyping() {
    clearTimeout(state.visitorTypingTimer);
    if (state.visitorTyping) { state.visitorTyping = false; send({ type: "typing", on: false }); }
  }
  function setOpen(on, focus) {
    on = !!on;
    var changed = on !== state.panelOpen;
    state.panelOpen = on;
    SS.set(K_OPEN, on ? "1" : "0");
    state.listDirty = true;
    state.stickToBottom = true;
    render();
    if (on) markRead();
    if (ui && focus) {
      setTimeout(guard(function () {
        if (!state.panelOpen) { ui.bub.focus(); return; }
        var f = ui.away.hidden ? ui.ta : ui.away.querySelector("label:not([hidden]) input, textarea");
        f.focus();
      }), 30);
    }
    if (changed) emit(on ? "open" : "close");
  }

  // --------------------------------------------------------------------- UI
  var CSS = [
    ":host{all:initial}",
    "*,*::before,*::after{box-sizing:border-box}",
    "[hidden]{display:none!important}",
    ".w{--a:var(--hubchat-accent,#2563eb);font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;color:#0f172a;-webkit-font-smoothing:antialiased;text-align:left;direction:ltr}",
    "button,input,textarea{font:inherit;color:inherit;margin:0}",
    "button{cursor:pointer}",
    "svg{display:block;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}",
    ":focus-visible{outline:2px solid var(--a);outline-offset:2px}",
    // bubble
    ".bub{position:fixed;right:20px;bottom:20px;width:60px;height:60px;border:0;border-radius:50%;padding:0;background:var(--a);color:#fff;box-shadow:0 8px 24px rgba(15,23,42,.25);display:flex;align-items:center;justify-content:center;transition:transform .18s ease,box-shadow .18s ease}",
    ".bub:hover{transform:translateY(-2px)}",
    ".bub:focus-visible{outline:3px solid #fff;box-shadow:0 0 0 6px var(--a)}",
    ".bub svg{width:28px;height:28px}",
    ".bub .i2,.open .bub .i1{display:none}.open .bub .i2{display:block}",
    ".badge{position:absolute;top:-3px;right:-3px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;background:#ef4444;color:#fff;border:2px solid #fff;font-size:12px;font-weight:700;line-height:18px;text-align:center}",
    // panel
    ".panel{position:fixed;right:20px;bottom:92px;width:370px;height:540px;max-height:calc(100vh - 112px);background:#fff;border-radius:18px;box-shadow:0 20px 60px rgba(15,23,42,.22),0 0 0 1px rgba(15,23,42,.06);display:flex;flex-direction:column;overflow:hidden;animation:in .2s ease-out}",
    "@keyframes in{from{opacity:0;transform:translateY(14px) scale(.98)}}",
    ".hd{display:flex;align-items:center;gap:12px;padding:16px 14px 16px 18px;background:var(--a);background-image:linear-gradient(135deg,rgba(255,255,255,.16),rgba(0,0,0,.1));color:#fff;flex:none}",
    ".av{position:relative;flex:none;width:40px;height:40px;border-radius:50%;background:rgba(255,255,255,.2);display:flex;align-items:center;justify-content:center;font-weight:700;font-size:17px}",
    ".av svg{width:20px;height:20px}",
    ".dot{position:absolute;right:-1px;bottom:-1px;width:12px;height:12px;border-radius:50%;background:#94a3b8;border:2px solid #fff}",
    ".on .dot{background:#22c55e}",
    ".ht{flex:1;min-width:0}",
    ".tt,.st{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}",
    ".tt{font-size:16px;font-weight:650;line-height:1.25}.st{font-size:12.5px;opacity:.88}",
    ".x{flex:none;width:36px;height:36px;border:0;border-radius:10px;background:transparent;color:#fff;display:flex;align-items:center;justify-content:center}",
    ".x:hover{background:rgba(255,255,255,.16)}.x:focus-visible{outline-color:#fff}",
    ".x svg{width:20px;height:20px}",
    ".cb{flex:none;padding:6px 12px;background:#fffbeb;color:#92400e;font-size:12px;text-align:center;border-bottom:1px solid #fde68a}",
    // thread
    ".log{flex:1;overflow-y:auto;padding:16px 14px 8px;background:#f8fafc;overscroll-behavior:contain}",
    ".intro{margin:4px 8px 16px;text-align:center;color:#475569;font-size:13px}",
    ".intro b,.away p b{display:block;color:#0f172a;font-size:15px;margin-bottom:2px}",
    ".row{display:flex;flex-direction:column;align-items:flex-start;margin-top:2px}",
    ".row.first{margin-top:12px}",
    ".me{align-items:flex-end}",
    ".nm{font-size:12px;color:#64748b;margin:0 0 3px 10px;font-weight:600}",
    ".b{max-width:80%;padding:9px 13px;border-radius:18px;white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word;background:#fff;box-shadow:0 1px 2px rgba(15,23,42,.08);border:1px solid #e2e8f0}",
    ".agent .b{border-bottom-left-radius:6px}",
    ".me .b{background:var(--a);color:#fff;border-color:transparent;border-bottom-right-radius:6px}",
    ".pend .b{opacity:.55}",
    ".fail .b{background:#fef2f2;color:#991b1b;border-color:#fecaca}",
    ".meta{display:flex;align-items:center;gap:4px;font-size:11px;color:#94a3b8;margin:3px 8px 0}",
    ".meta svg{width:12px;height:12px}",
    ".fail .meta{color:#dc2626}",
    ".sys{margin:12px auto 4px;max-width:85%;text-align:center;font-size:12px;color:#64748b;white-space:pre-wrap;overflow-wrap:anywhere}",
    ".ty{flex:none;display:flex;align-items:center;gap:8px;padding:2px 18px 8px;font-size:12px;color:#64748b;background:#f8fafc}",
    ".dots{display:inline-flex;gap:3px}.dots i{width:5px;height:5px;border-radius:50%;background:#94a3b8;animation:bl 1.2s infinite}",
    ".dots i:nth-child(2){animation-delay:.2s}.dots i:nth-child(3){animation-delay:.4s}",
    "@keyframes bl{0%,60%,100%{opacity:.3}30%{opacity:1}}",
    // composer
    ".cmp{flex:none;display:flex;align-items:flex-end;gap:8px;padding:10px 10px 10px 14px;border-top:1px solid #e2e8f0;background:#fff}",
    ".cmp textarea{flex:1;resize:none;border:0;outline:0;background:transparent;padding:8px 0;max-height:120px;min-height:36px;line-height:1.4;color:#0f172a}",
    ".cmp textarea::placeholder,.away ::placeholder{color:#94a3b8}",
    ".snd{flex:none;width:38px;height:38px;border:0;border-radius:50%;background:var(--a);color:#fff;display:flex;align-items:center;justify-content:center;transition:opacity .15s}",
    ".snd:disabled{opacity:.35;cursor:default}",
    ".snd svg{width:18px;height:18px}",
    ".cmp:focus-within{box-shadow:inset 0 2px 0 -1px var(--a)}",
    // away form
    ".away{flex:1;overflow-y:auto;padding:20px 18px;display:flex;flex-direction:column;gap:12px;background:#f8fafc}",
    ".away p{margin:0 0 4px;color:#475569}",
    ".away label{display:flex;flex-direction:column;gap:5px;font-size:12.5px;font-weight:600;color:#334155}",
    ".away input,.away textarea{width:100%;padding:9px 11px;border:1px solid #cbd5e1;border-radius:10px;background:#fff;font-weight:400;font-size:14px;color:#0f172a}",
    ".away textarea{resize:vertical;min-height:96px}",
    ".away input:focus,.away textarea:focus{outline:0;border-color:var(--a);box-shadow:0 0 0 3px rgba(37,99,235,.15)}",
    ".btn{margin-top:4px;padding:11px 14px;border:0;border-radius:10px;background:var(--a);color:#fff;font-weight:600}",
    ".btn:hover,.snd:hover{filter:brightness(1.08)}",
    ".left .bub,.left .panel{right:auto;left:20px}",
    "@media (max-width:480px){.panel,.left .panel{right:0;left:0;bottom:0;width:100%;height:100%;max-height:none;border-radius:0}.open .bub{display:none}.cmp textarea,.away input,.away textarea{font-size:16px}.cmp{padding-bottom:calc(10px + env(safe-area-inset-bottom))}}",
    "@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important}}"
  ].join("\n");

  var I_CHAT = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M21 12a8 8 0 0 1-11.6 7.1L4 20.5l1.4-4.9A8 8 0 1 1 21 12z"/></svg>';
  var I_DOWN = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6 9l6 6 6-6"/></svg>';
  var I_X = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6 6l12 12M18 6L6 18"/></svg>';
  var I_SEND = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 19V5M5 12l7-7 7 7"/></svg>';
  var I_CLOCK = '<svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="9"/><path d="M12 7v5l3 2"/></svg>';

  // Static markup only: every dynamic string is set with textContent below.
  var HTML =
    '<div class="w">' +
    '<section class="panel" id="hc-panel" role="dialog" aria-label="Chat" hidden>' +
      '<header class="hd"><div class="av" aria-hidden="true"><span class="ini"></span>' + I_CHAT + '<span class="dot"></span></div>' +
      '<div class="ht"><div class="tt"></div><div class="st"></div></div>' +
      '<button class="x" type="button" aria-label="Close chat">' + I_X + '</button></header>' +
      '<div class="cb" role="status" hidden></div>' +
      '<div class="log" role="log" aria-live="polite" aria-label="Conversation" tabindex="0"></div>' +
      '<div class="ty" aria-live="polite" hidden><span class="dots" aria-hidden="true"><i></i><i></i><i></i></span><span class="tyt"></span></div>' +
      '<form class="cmp"><textarea rows="1" maxlength="5000" placeholder="Write a message…" aria-label="Message"></textarea>' +
      '<button class="snd" type="submit" aria-label="Send message" disabled>' + I_SEND + '</button></form>' +
      '<form class="away" hidden><p><b class="fh"></b><span class="fp"></span></p>' +
      '<label class="f-name"><span class="l"></span><input name="name" autocomplete="name" maxlength="200"></label>' +
      '<label class="f-email"><span class="l"></span><input name="email" type="email" autocomplete="email" maxlength="254" placeholder="you@example.com"></label>' +
      '<label class="f-question"><span class="l"></span><input name="question" maxlength="500"></label>' +
      '<label><span class="l l-msg"></span><textarea name="message" required maxlength="5000" rows="4"></textarea></label>' +
      '<button class="btn" type="submit"></button></form>' +
    '</section>' +
    '<button class="bub" type="button" aria-label="Open chat" aria-expanded="false" aria-controls="hc-panel">' +
      '<span class="i1">' + I_CHAT + '</span><span class="i2">' + I_DOWN + '</span><span class="badge" hidden></span></button>' +
    '</div>';

  function el(tag, cls, text) {
    var e = D.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  function mount() {
    var host = D.createElement("div");
    host.id = "hubchat-root";
    host.setAttribute("style", "all:initial !important;position:fixed !important;z-index:2147483000 !important;" +
      "right:0 !important;bottom:0 !important;width:0 !important;height:0 !important;display:block !important");
    if (COLOR) host.style.setProperty("--hubchat-accent", COLOR);
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    root.innerHTML = "<style>" + CSS + "</style>" + HTML;
    var q = function (s) { return root.querySelector(s); };
    ui = { w: q(".w"), panel: q(".panel"), bub: q(".bub"), badge: q(".badge"), x: q(".x"), tt: q(".tt"),
      st: q(".st"), ini: q(".ini"), avs: q(".av svg"), cb: q(".cb"), log: q(".log"), ty: q(".ty"), tyt: q(".tyt"),
      cmp: q(".cmp"), ta: q(".cmp textarea"), snd: q(".snd"), away: q(".away"), fh: q(".fh"), fp: q(".fp"),
      fName: q(".f-name"), fEmail: q(".f-email"), fQuestion: q(".f-question"), lMsg: q(".l-msg"), btn: q(".btn") };
    applyWords();

    ui.bub.addEventListener("click", guard(function () { setOpen(!state.panelOpen, true); }));
    ui.x.addEventListener("click", guard(function () { setOpen(false, true); }));
    ui.panel.addEventListener("keydown", guard(function (e) {
      if (e.key === "Escape") { e.stopPropagation(); setOpen(false, true); }
    }));
    ui.log.addEventListener("scroll", guard(function () {
      var l = ui.log; state.stickToBottom = l.scrollHeight - l.scrollTop - l.clientHeight < 40;
    }));
    ui.ta.addEventListener("input", guard(function () {
      autosize();
      ui.snd.disabled = !ui.ta.value.trim();
      if (ui.ta.value) onType(); else stopTyping();
    }));
    ui.ta.addEventListener("keydown", guard(function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault(); submit();
      }
    }));
    ui.cmp.addEventListener("submit", guard(function (e) { e.preventDefault(); submit(); }));
    ui.away.addEventListener("submit", guard(function (e) {
      e.preventDefault();
      var f = ui.away.elements, mode = formMode();
      var email = f.email.value.trim(), name = f.name.value.trim(), answer = f.question.value.trim();
      if (!f.message.value.trim() || !ui.away.checkValidity()) { ui.away.reportValidity(); return; }
      var contact = {};
      if (email) contact.email = email;
      if (name) contact.name = name;
      if (answer && cfg.prechat.question !== "off" && cfg.prechat.question_label) {
        var a = {}; a[cfg.prechat.question_label] = answer; api.setAttributes(a);
      }
      var id = sendText(f.message.value, email || name ? contact : null);
      if (id) {
        if (mode === "away") state.awayFormClientId = id;
        ui.away.reset(); render(); setTimeout(guard(function () { ui.ta.focus(); }), 30);
      }
    }));
    D.body.appendChild(host);
    render();
  }

  // The site's settings from the welcome: words, colour, position, pre-chat form.
  function applySettings(o) {
    if (typeof o.language === "string" && WORDS[o.language]) words = WORDS[o.language];
    cfg.greeting = typeof o.greeting === "string" ? o.greeting : "";
    cfg.away_message = typeof o.away_message === "string" ? o.away_message : "";
    var p = o.prechat && typeof o.prechat === "object" ? o.prechat : {};
    ["name", "email", "question"].forEach(function (k) {
      cfg.prechat[k] = p[k] === "optional" || p[k] === "required" ? p[k] : "off";
    });
    cfg.prechat.question_label = typeof p.question_label === "string" ? p.question_label : "";
    if (!ui) return;
    if (!COLOR && typeof o.color === "string" && /^#[0-9a-fA-F]{6}$/.test(o.color)) {
      ui.w.style.setProperty("--a", "var(--hubchat-accent," + o.color + ")");
    }
    ui.w.classList.toggle("left", o.position === "bottom-left");
    applyWords();
    state.listDirty = true;
  }
  function applyWords() {
    ui.ta.placeholder = t("write");
    ui.away.elements.name.placeholder = t("namePh");
    ui.away.elements.message.placeholder = t("msgPh");
    ui.lMsg.textContent = t("message");
    ui.btn.textContent = t("send");
  }
  // The form shown instead of the thread: "away" (no agent online: an email address
  // to answer to), "pre" (the site's pre-chat form), or null (the thread).
  function formMode() {
    if (state.archived || hasThread()) return null;
    if (state.agentsOnline === false) return "away";
    var p = cfg.prechat;
    if (state.agentsOnline === true && (p.name !== "off" || p.email !== "off" || (p.question !== "off" && p.question_label))) return "pre";
    return null;
  }
  function field(label, input, mode, text) {
    label.hidden = mode === "off";
    input.required = mode === "required";
    label.querySelector(".l").textContent = text + (mode === "optional" ? t("optional") : "");
  }
  function configureForm(mode) {
    var p = cfg.prechat, f = ui.away.elements;
    ui.fh.textContent = mode === "away" ? t("awayHead") : t("preHead");
    ui.fp.textContent = mode === "away" ? (cfg.away_message || t("awayText")) : t("preText");
    field(ui.fName, f.name, mode === "away" && p.name === "off" ? "optional" : p.name, t("name"));
    field(ui.fEmail, f.email, mode === "away" ? "required" : p.email, t("email"));
    field(ui.fQuestion, f.question, p.question_label ? p.question : "off", p.question_label);
  }

  function submit() {
    if (sendText(ui.ta.value)) { ui.ta.value = ""; ui.snd.disabled = true; autosize(); }
  }
  function autosize() {
    ui.ta.style.height = "auto";
    ui.ta.style.height = Math.min(ui.ta.scrollHeight, 120) + "px";
  }

  function render() {
    if (state.renderQueued) return;
    state.renderQueued = true;
    Promise.resolve().then(guard(function () { state.renderQueued = false; draw(); }));
  }

  function draw() {
    if (!ui) return;
    var a = state.conversation && state.conversation.assignee && state.conversation.assignee.name ? String(state.conversation.assignee.name) : "";
    var n = unread();
    ui.w.classList.toggle("open", state.panelOpen);
    ui.panel.hidden = !state.panelOpen;
    ui.bub.setAttribute("aria-expanded", String(state.panelOpen));
    ui.bub.setAttribute("aria-label", state.panelOpen ? "Close chat" : n ? "Open chat, " + n + " unread" : "Open chat");
    ui.badge.hidden = state.panelOpen || !n;
    ui.badge.textContent = n > 99 ? "99+" : String(n);
    if (!state.panelOpen) return;

    ui.tt.textContent = TITLE || t("title");
    ui.st.textContent = (a ? a + " · " : "") +
      (state.agentsOnline === null ? t("connecting") : state.agentsOnline ? (a ? t("on1") : t("online")) : (a ? t("off1") : t("away")));
    ui.panel.classList.toggle("on", state.agentsOnline === true);
    ui.ini.textContent = a ? a.charAt(0).toUpperCase() : "";
    ui.avs.style.display = a ? "none" : "";

    var offline = W.navigator && navigator.onLine === false;
    ui.cb.hidden = state.welcomed || !(state.reconnectAttempt > 1 || state.everWelcomed || offline);
    ui.cb.textContent = offline ? t("offline") : state.everWelcomed ? t("reconnecting") : t("connecting");

    var mode = formMode(), form = mode !== null;
    if (form) configureForm(mode);
    ui.away.hidden = !form;
    ui.log.hidden = form;
    ui.cmp.hidden = form || state.archived;
    ui.ty.hidden = form || !state.agentTypingName;
    ui.tyt.textContent = state.agentTypingName ? state.agentTypingName + t("typing") : "";
    if (!form && state.listDirty) drawList();
    if (!form && state.stickToBottom) ui.log.scrollTop = ui.log.scrollHeight;
  }

  function fmtTime(s) {
    var d = s ? new Date(s) : null;
    return d && !isNaN(d) ? d.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" }) : "";
  }

  function drawList() {
    state.listDirty = false;
    var items = state.messages.slice();
    if (state.campaign) items.push({ direction: "out", author: { type: "campaign", name: state.campaign.name }, text: state.campaign.text, created_at: state.campaign.at });
    obx().forEach(function (it) { if (!state.confirmedClientIds[it.id]) items.push({ pend: 1, id: it.id, text: it.text, t: it.t }); });
    state.failedSends.forEach(function (it) { items.push({ fail: 1, id: it.id, text: it.text, t: it.t, err: it.err }); });
    var frag = D.createDocumentFragment();
    var intro = el("div", "intro");
    intro.appendChild(el("b", null, t("hi")));
    intro.appendChild(D.createTextNode(state.agentsOnline === false ?
      cfg.away_message || t("awayIntro") : cfg.greeting || t("greet")));
    frag.appendChild(intro);

    function who(m) {
      if (m.pend || m.fail) return "me";
      if (isSystem(m)) return "sys";
      return m.direction === "in" || (m.author && m.author.type === "visitor") ? "me" : "agent:" + ((m.author && m.author.name) || "");
    }
    var lastMine = null;
    items.forEach(function (m) { if (!m.pend && !m.fail && who(m) === "me") lastMine = m; });

    items.forEach(function (m, k) {
      var w = who(m), prev = items[k - 1], next = items[k + 1];
      var text = typeof m.text === "string" ? m.text : "";
      if (w === "sys") { if (text) frag.appendChild(el("div", "sys", text)); return; }
      var first = !prev || who(prev) !== w, last = !next || who(next) !== w;
      var row = el("div", "row " + (w === "me" ? "me" : "agent") + (first ? " first" : "") +
        (m.pend ? " pend" : "") + (m.fail ? " fail" : ""));
      if (first && w !== "me") row.appendChild(el("div", "nm", (m.author && m.author.name) || t("support")));
      var b = el("div", "b", text);
      if (m.created_at) b.title = new Date(m.created_at).toLocaleString();
      row.appendChild(b);
      var meta = null;
      if (m.pend) {
        meta = el("div", "meta");
        meta.innerHTML = I_CLOCK;
        meta.appendChild(D.createTextNode(t("sending")));
      } else if (m.fail) {
        meta = el("div", "meta", t("failed") + m.err);
      } else if (last) {
        var tm = fmtTime(m.created_at);
        if (m === lastMine && state.agentReadSeq >= m.seq) tm += (tm ? " · " : "") + t("seen");
        if (tm) meta = el("div", "meta", tm);
      }
      if (meta) row.appendChild(meta);
      frag.appendChild(row);
      if (m.id && m.id === state.awayFormClientId || m.client_id && m.client_id === state.awayFormClientId) {
        frag.appendChild(el("div", "sys", t("byEmail")));
      }
    });
    if (state.archived) {
      frag.appendChild(el("div", "sys", t("closed")));
    } else if (state.conversation && state.conversation.status === "resolved" && items.length) {
      frag.appendChild(el("div", "sys", t("resolved")));
    }
    ui.log.textContent = "";
    ui.log.appendChild(frag);
  }

  // -------------------------------------------------------------- public API
  var api = {
    __hubchat: true,
    open: guard(function () { setOpen(true, false); }),
    close: guard(function () { setOpen(false, false); }),
    toggle: guard(function () { setOpen(!state.panelOpen, false); }),
    identify: guard(function (o) {
      o = o || {};
      state.identity = { type: "identify", id: o.id, email: o.email, name: o.name, hash: o.hash };
      state.identitySent = false;
      if (state.welcomed) { state.identitySent = true; send(state.identity); }
    }),
    setAttributes: guard(function (o) {
      if (!o || typeof o !== "object") return;
      state.attributes = state.attributes || {};
      Object.keys(o).forEach(function (k) { state.attributes[k] = o[k]; });
      sendAttrs();
    }),
    on: guard(function (name, cb) {
      if (typeof cb !== "function") return function () {};
      (state.listeners[name] = state.listeners[name] || []).push(cb);
      if (name === "ready" && api.ready) setTimeout(function () { try { cb(); } catch (e) { log("error", [e]); } }, 0);
      return function () {
        state.listeners[name] = (state.listeners[name] || []).filter(function (f) { return f !== cb; });
      };
    }),
    push: guard(function (call) {
      if (Array.isArray(call) && typeof api[call[0]] === "function" && call[0] !== "push") {
        api[call[0]].apply(api, call.slice(1));
      }
    }),
    ready: false
  };

  var queued = Array.isArray(W.HubChat) ? W.HubChat : [];
  W.HubChat = api;

  var init = guard(function () {
    mount();
    queued.forEach(api.push);
    connect();
    W.addEventListener("online", guard(function () { state.reconnectAttempt = 0; reconnectNow(); render(); }));
    W.addEventListener("offline", guard(render));
    D.addEventListener("visibilitychange", guard(function () {
      if (D.visibilityState === "visible") { markRead(); reconnectNow(); render(); }
    }));
    if (TRACK) track();
    W.addEventListener("storage", guard(function (e) {
      if (e.key === K_OUTBOX) { state.listDirty = true; render(); }
    }));
    api.ready = true;
    emit("ready");
    try { W.dispatchEvent(new CustomEvent("hubchat:ready")); } catch (e) { /* very old browser */ }
  });

  if (D.body) init();
  else D.addEventListener("DOMContentLoaded", init);
})();
