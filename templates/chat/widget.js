/* carehub web chat widget: a floating "Chat with us" button and a non-modal chat panel that speak the protocol in
   docs/chat-protocol.md. Plain DOM, no dependencies; message text only ever goes through textContent. */
(() => {
  "use strict";
  const me = document.currentScript;
  if (!me || window.carehubChat) return;
  // The hub is wherever this file came from (it may sit under a path, e.g. https://city.ca/care/chat/widget.js).
  const src = new URL(me.src, location.href);
  const HUB = src.origin + (src.pathname.match(/^(.*)\/chat\/widget\.js$/) || ["", ""])[1];
  const P = "carehub-chat:";
  const MAX_BACKOFF = 15000;

  const store = {
    get(k) {
      try { return localStorage.getItem(P + k); } catch (e) { return null; }
    },
    set(k, v) {
      try {
        if (v == null) localStorage.removeItem(P + k); else localStorage.setItem(P + k, String(v));
      } catch (e) { /* storage off (private mode): the chat still works, it just cannot resume after a reload */ }
    },
  };
  const readJson = (k) => {
    try { return JSON.parse(store.get(k)) || []; } catch (e) { return []; }
  };

  let lang = (me.dataset.lang || document.documentElement.lang || "en").slice(0, 2).toLowerCase();
  let S = {};
  let maxChars = 2000;
  let fmt;

  // Conversation state. `contig` is the highest seq with every earlier one shown: what a resume asks to replay after.
  let token = store.get("token");
  let ended = store.get("closed") === "1";
  let pending = readJson("pending"); // message frames sent but not acked yet, resent (same cid) after every welcome
  let readSeq = Number(store.get("seq")) || 0; // highest seq the resident has seen, for the unread count
  const seen = new Map();
  const byCid = new Map();
  let contig = 0, top = 0, agentRead = 0, sentRead = 0, unread = 0;
  let available = true, reason = null, hours = "", handoff = null, wantHandoff = null;
  let wantClose = null;

  // Connection and display state.
  let ws = null, ready = false, attempt = 0, open = false;
  let retryT, pingT, pongT, gapT, typingT, agentTypingT;
  let typingOn = false, agentTyping = false, conn = "", err = "";

  const t = (key, vars) => {
    const s = S[key] == null ? key : S[key];
    return s.replace(/\{(\w+)\}/g, (m, k) => (vars && vars[k] != null ? vars[k] : m)).replace(/\.\.$/, ".");
  };

  const h = (tag, props, ...kids) => {
    const el = document.createElement(tag);
    for (const k in props) {
      const v = props[k];
      if (v == null || v === false) continue;
      if (k === "text") el.textContent = v; else el.setAttribute(k, v === true ? "" : v);
    }
    el.append(...kids.filter((k) => k != null));
    return el;
  };

  // Live regions announce every text change, even to the same words: only touch text that really changed.
  const setText = (el, text) => { if (el.textContent !== text) el.textContent = text; };

  const cid = () => {
    const b = crypto.getRandomValues(new Uint8Array(16));
    return btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };

  // ---- the interface -------------------------------------------------------------------------------------------
  let root, launch, badge, panel, scroller, notice, noticeText, hoForm, hoAddr, hoLabel, hoErr, hoSubmit, hoDone,
    intro, log, endedBox, endedText, newB, statusEl, form, first, contactField, nameI, contactI, msgI, msgErr,
    foot, endB, endBox, txI, txErr, sugBox;
  let sugT, sugAsked = 0;

  const field = (id, label, input, hint) => h("div", { class: "ch-field" },
    h("label", { for: id, text: label }), hint, input);

  const icon = () => {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "ch-icon");
    const p = document.createElementNS(ns, "path");
    p.setAttribute("d", "M4 4h16a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1H9l-5 4v-4H4a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1z");
    svg.append(p);
    return svg;
  };

  const radio = (value, checked) => h("div", { class: "ch-radio" },
    h("input", { type: "radio", name: "ch-ho-channel", id: "ch-ho-" + value, value, checked }),
    h("label", { for: "ch-ho-" + value, text: t("handoff." + value) }));

  function build() {
    launch = h("button", { type: "button", class: "ch-launch", "aria-expanded": "false", "aria-controls": "ch-panel" },
      icon(), h("span", { text: t("launcher") }), badge = h("span", { class: "ch-badge", hidden: true }));

    hoForm = h("form", { class: "ch-ho", novalidate: true },
      h("fieldset", {}, h("legend", { text: t("handoff.legend") }), radio("email", true), radio("sms", false)),
      h("div", { class: "ch-field" },
        hoLabel = h("label", { for: "ch-ho-addr" }),
        hoAddr = h("input", { id: "ch-ho-addr", "aria-describedby": "ch-ho-err" }),
        hoErr = h("p", { id: "ch-ho-err", class: "ch-err" })),
      hoSubmit = h("button", { type: "submit", class: "ch-btn ch-primary" }));

    form = h("form", { class: "ch-form", novalidate: true },
      first = h("div", { class: "ch-first" },
        field("ch-name", t("name.label"), nameI = h("input", { id: "ch-name", type: "text", autocomplete: "name" })),
        contactField = field("ch-contact", t("contact.label"),
          contactI = h("input", { id: "ch-contact", type: "text", autocomplete: "on", spellcheck: "false" }))),
      field("ch-msg", t("message.label"),
        msgI = h("textarea", { id: "ch-msg", rows: "2", "aria-describedby": "ch-msg-hint ch-msg-err" }),
        h("p", { id: "ch-msg-hint", class: "ch-hint", text: t("message.hint") })),
      msgErr = h("p", { id: "ch-msg-err", class: "ch-err" }),
      // Help centre answers to the first message as it is typed; sending still reaches a person.
      sugBox = h("div", { class: "ch-sug", "aria-live": "polite" }),
      h("div", { class: "ch-row" }, h("button", { type: "submit", class: "ch-btn ch-primary", text: t("send") })));

    foot = h("div", { class: "ch-foot" },
      h("p", { class: "ch-privacy", text: t("privacy") }),
      endB = h("button", { type: "button", class: "ch-btn ch-ghost", text: t("end.button") }),
      endBox = h("div", { class: "ch-endbox", hidden: true },
        h("p", { class: "ch-strong", text: t("end.question") }),
        field("ch-tx", t("end.transcript"),
          txI = h("input", { id: "ch-tx", type: "email", autocomplete: "email", "aria-describedby": "ch-tx-err" })),
        txErr = h("p", { id: "ch-tx-err", class: "ch-err" }),
        h("div", { class: "ch-row" },
          h("button", { type: "button", class: "ch-btn ch-primary", "data-act": "end", text: t("end.confirm") }),
          h("button", { type: "button", class: "ch-btn ch-ghost", "data-act": "keep", text: t("end.cancel") }))));

    panel = h("div", { class: "ch-panel", id: "ch-panel", role: "dialog", "aria-modal": "false",
      "aria-labelledby": "ch-title", hidden: true },
      h("div", { class: "ch-head" },
        h("h2", { id: "ch-title", text: t("title") }),
        h("button", { type: "button", class: "ch-btn ch-ghost", "data-act": "close", text: t("close") })),
      scroller = h("div", { class: "ch-scroll" },
        notice = h("div", { class: "ch-notice", hidden: true },
          noticeText = h("p", { id: "ch-notice", role: "status" }),
          hoForm,
          hoDone = h("p", { class: "ch-strong", tabindex: "-1", hidden: true })),
        intro = h("p", { class: "ch-intro", text: t("intro") }),
        log = h("div", { class: "ch-log", role: "log", "aria-live": "polite", "aria-relevant": "additions",
          "aria-label": t("log.label") }),
        endedBox = h("div", { class: "ch-ended", hidden: true },
          endedText = h("p", { class: "ch-strong" }),
          newB = h("button", { type: "button", class: "ch-btn ch-primary", text: t("new") }))),
      statusEl = h("div", { class: "ch-status", role: "status" }),
      form, foot);

    root = h("aside", { class: "ch-root", lang, "aria-label": t("region.label") }, launch, panel);

    launch.addEventListener("click", () => show(!open));
    panel.addEventListener("click", (e) => {
      const act = e.target.closest("[data-act]");
      if (!act) return;
      const a = act.getAttribute("data-act");
      if (a === "close") show(false);
      else if (a === "end") endNow();
      else if (a === "keep") askEnd(false);
    });
    panel.addEventListener("keydown", (e) => {
      if (e.key !== "Escape") return;
      e.preventDefault();
      if (!endBox.hidden) askEnd(false); else show(false);
    });
    form.addEventListener("submit", (e) => { e.preventDefault(); submitMessage(); });
    msgI.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submitMessage(); }
    });
    msgI.addEventListener("input", onTyping);
    msgI.addEventListener("input", suggestSoon);
    hoForm.addEventListener("submit", (e) => { e.preventDefault(); submitHandoff(); });
    hoForm.addEventListener("change", () => { hoLabels(); clearErr(hoErr, hoAddr); });
    endB.addEventListener("click", () => askEnd(true));
    newB.addEventListener("click", restart);

    hoLabels();
    for (const f of pending) appendOwn(f);
    document.body.append(root);
    render();
  }

  function hoLabels() {
    const ch = channel();
    hoLabel.textContent = t("handoff.address_" + ch);
    hoAddr.type = ch === "email" ? "email" : "tel";
    hoAddr.autocomplete = ch === "email" ? "email" : "tel";
    hoSubmit.textContent = t("handoff.submit_" + ch);
  }
  const channel = () => (hoForm.querySelector("input:checked").value === "sms" ? "sms" : "email");

  function fieldErr(p, input, text, focus) {
    p.textContent = text;
    input.setAttribute("aria-invalid", "true");
    if (focus) input.focus();
  }
  function clearErr(p, input) {
    p.textContent = "";
    input.removeAttribute("aria-invalid");
  }

  function render() {
    const askHandoff = !available && !handoff && !ended;
    notice.hidden = !askHandoff && !handoff;
    const unavailable = !available && !handoff;
    setText(noticeText, unavailable ? [t("unavailable." + (reason || "no_agents")),
      t("unavailable.hours", { hours }), t("unavailable.leave")].join(" ") : "");
    // Entering the dialog then reads the notice too.
    if (unavailable) panel.setAttribute("aria-describedby", "ch-notice");
    else panel.removeAttribute("aria-describedby");
    hoForm.hidden = !askHandoff;
    hoDone.hidden = !handoff;
    first.hidden = !!token || pending.length > 0;
    contactField.hidden = askHandoff;
    intro.hidden = log.childElementCount > 0 || !available;
    form.hidden = ended;
    if (ended && !endedText.textContent) endedText.textContent = t("ended");
    endedBox.hidden = !ended;
    endB.hidden = !token || ended || !endBox.hidden;
    if (ended) endBox.hidden = true;
    status();
    badge.hidden = !unread;
    if (unread && badge.lastChild?.nodeValue !== String(unread)) {
      badge.replaceChildren(h("span", { class: "ch-sr", text: t("launcher.unread") + " " }), String(unread));
    }
  }

  function status() {
    setText(statusEl, conn ? t("status." + conn) : err || (agentTyping ? t("status.typing") : ""));
  }
  const setConn = (c) => { conn = c; status(); };

  function show(on) {
    open = on;
    panel.hidden = !on;
    root.classList.toggle("ch-open", on);
    launch.setAttribute("aria-expanded", String(on));
    if (on) {
      if (!ws && wanted()) { attempt = 0; connect(); }
      (ended ? newB : msgI).focus();
      if (log.childElementCount) scrollDown(); // else the top of the panel (and any notice there) stays in view
      markRead();
    } else {
      if (ws && !token && !pending.length) { drop(); setConn(""); } // nothing to keep a socket open for
      launch.focus();
    }
  }

  // ---- messages ------------------------------------------------------------------------------------------------
  function bubble(from, name, body, at) {
    const who = from === "resident" ? t("who.you") : from === "agent" ? name || t("who.agent") : t("who.system");
    const el = h("div", { class: "ch-msg ch-" + (from === "resident" || from === "agent" ? from : "system") },
      h("p", { class: "ch-who", text: who }),
      h("p", { class: "ch-text", text: body }),
      h("p", { class: "ch-meta" }));
    el.chFrom = from;
    el.chAt = at;
    meta(el);
    return el;
  }

  function meta(el) {
    const parts = [];
    if (el.chAt) {
      const d = new Date(el.chAt);
      if (!isNaN(d)) parts.push(fmt.format(d));
    }
    if (el.chFailed) parts.push(t("msg.failed"));
    else if (el.chFrom === "resident") {
      const s = Number(el.dataset.seq);
      parts.push(!s ? t("msg.sending") : s <= agentRead ? t("msg.seen") : t("msg.sent"));
    }
    setText(el.lastChild, parts.join(" · "));
  }

  // On small screens the whole panel scrolls, elsewhere only the conversation: follow whichever one does.
  const box = () => (scroller.scrollHeight > scroller.clientHeight + 1 ? scroller : panel);
  const nearBottom = () => { const b = box(); return b.scrollHeight - b.scrollTop - b.clientHeight < 96; };
  const scrollDown = () => { const b = box(); b.scrollTop = b.scrollHeight; };

  function appendOwn(f) {
    const el = bubble("resident", null, f.body, null);
    byCid.set(f.cid, el);
    log.append(el);
    return el;
  }

  // Messages show strictly in seq order; own messages not acked yet stay last.
  function place(el, seq, at) {
    el.dataset.seq = seq;
    if (at) el.chAt = at;
    seen.set(seq, el);
    let next = null;
    for (const c of log.children) {
      if (c !== el && (!c.dataset.seq || Number(c.dataset.seq) > seq)) { next = c; break; }
    }
    if (el.nextElementSibling !== next || !el.parentNode) log.insertBefore(el, next);
    meta(el);
    while (seen.has(contig + 1)) contig++;
    top = Math.max(top, seq);
    if (top > contig && !gapT) {
      // A live message skipped a seq (pub/sub can drop): re-sync from the database if the gap does not fill.
      gapT = setTimeout(() => { gapT = null; if (top > contig && ws) { drop(); attempt = 0; connect(); } }, 2000);
    }
  }

  function unpend(id) {
    const n = pending.length;
    pending = pending.filter((f) => f.cid !== id);
    if (pending.length !== n) savePending();
  }
  const savePending = () => store.set("pending", pending.length ? JSON.stringify(pending) : null);

  function onMessage(f) {
    if (typeof f.seq !== "number" || seen.has(f.seq)) return;
    const stick = nearBottom();
    let el = f.cid && byCid.get(f.cid);
    if (el && !el.dataset.seq) {
      place(el, f.seq, f.at);
      unpend(f.cid);
    } else {
      el = bubble(f.from, f.name, String(f.body), f.at);
      if (f.cid) byCid.set(f.cid, el);
      place(el, f.seq);
    }
    if (f.from === "agent") { agentTyping = false; clearTimeout(agentTypingT); }
    if (f.from !== "resident" && f.seq > readSeq && (!open || document.hidden)) unread++;
    if (stick) scrollDown();
    markRead();
    render();
  }

  function onAck(f) {
    const el = byCid.get(f.cid);
    if (el && !el.dataset.seq) place(el, f.seq, f.at);
    unpend(f.cid);
    render();
  }

  function markRead() {
    if (!open || document.hidden) return;
    unread = 0;
    if (contig > readSeq) { readSeq = contig; store.set("seq", readSeq); }
    if (ready && token && contig > sentRead && send({ type: "read", seq: contig })) sentRead = contig;
    if (root) render();
  }

  function submitMessage() {
    const body = msgI.value.trim();
    clearErr(msgErr, msgI);
    err = "";
    if (!body) return fieldErr(msgErr, msgI, t("error.empty"), true);
    if ([...body].length > maxChars) return fieldErr(msgErr, msgI, t("error.too_long", { max: maxChars }), true);
    const f = { type: "message", cid: cid(), body };
    if (!token && !pending.length) {
      // Only the first message of a conversation carries who the resident is.
      const name = nameI.value.trim();
      const contact = contactI.value.trim();
      if (name) f.name = name;
      if (contact) f[contact.includes("@") ? "email" : "phone"] = contact;
      if (contact.includes("@") && !txI.value) txI.value = contact;
    }
    pending.push(f);
    savePending();
    appendOwn(f);
    scrollDown();
    msgI.value = "";
    typingOff();
    showSuggestions([]);
    render();
    if (ready) send(f); else connect();
  }

  // While the first message is typed (3 words or more, 300 ms after the last key): up to three help articles.
  function suggestSoon() {
    clearTimeout(sugT);
    if (token || pending.length) return;
    const q = msgI.value.trim();
    if (q.split(/\s+/).length < 3) { showSuggestions([]); return; }
    sugT = setTimeout(() => {
      const asked = ++sugAsked;
      fetch(HUB + "/help/suggest?" + new URLSearchParams({ q: q.slice(0, 200), lang }), { credentials: "omit" })
        .then((r) => (r.ok ? r.json() : { suggestions: [] }))
        .then((d) => { if (asked === sugAsked && !token && !pending.length) showSuggestions(d.suggestions || []); })
        .catch(() => { /* suggestions are a nicety: the chat works without them */ });
    }, 300);
  }
  function showSuggestions(list) {
    const keys = list.map((s) => s.url).join(" ");
    if (sugBox.dataset.keys === keys) return;  // the live region announces only a real change
    sugBox.dataset.keys = keys;
    if (!list.length) { sugBox.replaceChildren(); return; }
    sugBox.replaceChildren(
      h("p", { class: "ch-strong", text: t("suggest.title") }),
      h("ul", {}, ...list.slice(0, 3).map((s) => h("li", {},
        h("a", { href: s.url, target: "_blank", rel: "noopener", text: s.title }),
        h("span", { class: "ch-hint", text: " " + t("suggest.new_tab") })))),
      h("p", { class: "ch-hint", text: t("suggest.still") }));
  }

  function onTyping() {
    clearErr(msgErr, msgI);
    if (err) { err = ""; status(); }
    if (!ready || !token) return;
    if (!typingOn && msgI.value) { typingOn = true; send({ type: "typing", on: true }); }
    clearTimeout(typingT);
    typingT = setTimeout(typingOff, 3000);
  }
  function typingOff() {
    clearTimeout(typingT);
    if (typingOn) { typingOn = false; send({ type: "typing", on: false }); }
  }

  // ---- handoff, end, restart -----------------------------------------------------------------------------------
  function submitHandoff() {
    clearErr(hoErr, hoAddr);
    const ch = channel();
    const address = hoAddr.value.trim();
    if (!address || (ch === "email" && !/^[^@\s]+@[^@\s]+$/.test(address))) {
      return fieldErr(hoErr, hoAddr, t("error.need_" + ch), true);
    }
    if (!token && !pending.length) {
      // A handoff needs a conversation, which the first message opens: send it, hand off once `session` arrives.
      if (!msgI.value.trim()) return fieldErr(msgErr, msgI, t("handoff.need_message"), true);
      wantHandoff = { type: "handoff", channel: ch, address };
      submitMessage();
    } else {
      wantHandoff = { type: "handoff", channel: ch, address };
    }
    if (ch === "email" && !txI.value) txI.value = address;
    sendHandoff();
  }
  function sendHandoff() {
    if (wantHandoff && ready && token) send(wantHandoff);
  }
  function onHandoff(f) {
    const hadFocus = hoForm.contains(document.activeElement);
    handoff = f.channel === "sms" ? "sms" : "email";
    wantHandoff = null;
    hoDone.textContent = t("handoff.done_" + handoff); // the hub's own message in the log gives the details
    render();
    if (hadFocus) hoDone.focus();
  }

  function askEnd(on) {
    clearErr(txErr, txI);
    endBox.hidden = !on;
    render();
    (on ? txI : endB).focus();
  }
  function endNow() {
    const address = txI.value.trim();
    if (address && !/^[^@\s]+@[^@\s]+$/.test(address)) return fieldErr(txErr, txI, t("error.need_email"), true);
    typingOff();
    wantClose = { type: "close", transcript: address || null };
    if (ready) send(wantClose); else connect();
  }
  function onClosed(transcript) {
    const hadFocus = panel.contains(document.activeElement) && !scroller.contains(document.activeElement);
    ended = true;
    store.set("closed", "1");
    wantHandoff = wantClose = null;
    agentTyping = false;
    err = "";
    endedText.textContent = t("ended") + (transcript ? " " + t("ended.transcript") : "");
    render();
    if (hadFocus || (open && document.activeElement === document.body)) newB.focus();
  }

  function forget() {
    token = null;
    ended = false;
    handoff = wantClose = null;
    store.set("token", null);
    store.set("closed", null);
    store.set("seq", null);
    seen.clear();
    byCid.clear();
    contig = top = agentRead = sentRead = readSeq = unread = 0;
    log.replaceChildren();
    for (const f of pending) appendOwn(f);
  }
  function restart() {
    drop();
    pending = [];
    savePending();
    forget();
    err = "";
    render();
    msgI.focus();
    attempt = 0;
    connect();
  }

  // ---- the socket ----------------------------------------------------------------------------------------------
  const wanted = () => open || pending.length > 0 || (!!token && !ended);

  function send(frame) {
    if (!ws || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  function connect() {
    if (ws) return;
    clearTimeout(retryT);
    let s;
    try { s = new WebSocket(HUB.replace(/^http/, "ws") + "/chat/ws"); } catch (e) { return lost(1006); }
    ws = s;
    ready = false;
    setConn(attempt ? "reconnecting" : "connecting");
    s.onopen = () => s.send(JSON.stringify({ type: "hello", token, last_seq: contig, lang }));
    s.onmessage = (e) => {
      let f;
      try { f = JSON.parse(e.data); } catch (x) { return; }
      if (ws === s && f && typeof f === "object") onFrame(f);
    };
    s.onclose = (e) => { if (ws === s) lost(e.code); };
  }

  // Forget the current socket at once; its late events are ignored.
  function drop() {
    const s = ws;
    ws = null;
    ready = false;
    typingOn = false;
    agentTyping = false;
    clearInterval(pingT);
    clearTimeout(pongT);
    clearTimeout(gapT);
    gapT = null;
    if (s) {
      s.onopen = s.onmessage = s.onclose = null;
      try { s.close(1000); } catch (e) { /* already closing */ }
    }
  }

  function lost(code) {
    drop();
    if (code === 4401) forget(); // the token is no longer valid: start afresh (unsent messages are kept)
    if (code === 4400 || code === 4403) return setConn("failed"); // trying again would not help
    if (!wanted()) return setConn("");
    const base = Math.min(MAX_BACKOFF, 500 * 2 ** attempt++);
    retryT = setTimeout(connect, code === 4401 ? 0 : base / 2 + Math.random() * base / 2);
    setConn(navigator.onLine === false ? "offline" : "reconnecting");
    if (root) render();
  }

  function ping() {
    if (!send({ type: "ping" })) return;
    clearTimeout(pongT);
    pongT = setTimeout(() => lost(1006), 10000); // no answer: the connection is dead even if nobody said so
  }

  function availability(f) {
    if (typeof f.available === "boolean") available = f.available;
    reason = f.reason || null;
    if (f.hours) hours = f.hours;
  }

  function setConversation(c) {
    if (!c) return;
    agentRead = Math.max(agentRead, Number(c.agent_read_seq) || 0);
    if (c.handoff && !handoff) {
      handoff = c.handoff === "sms" ? "sms" : "email";
      hoDone.textContent = t("handoff.done_" + handoff);
    }
    if (c.status === "closed" && !ended) onClosed(false);
    else if (c.status === "open" && ended) { ended = false; store.set("closed", null); }
  }

  function onFrame(f) {
    clearTimeout(pongT);
    switch (f.type) {
      case "welcome":
        ready = true;
        attempt = 0;
        conn = "";
        availability(f);
        setConversation(f.conversation);
        clearInterval(pingT);
        pingT = setInterval(ping, 25000);
        for (const p of pending) send(p);
        sendHandoff();
        if (wantClose && token) send(wantClose);
        markRead();
        break;
      case "session":
        if (typeof f.token === "string") { token = f.token; store.set("token", token); store.set("closed", null); }
        setConversation(f.conversation);
        sendHandoff();
        break;
      case "ack": onAck(f); break;
      case "message": onMessage(f); break;
      case "typing":
        agentTyping = !!f.on;
        clearTimeout(agentTypingT);
        if (agentTyping) agentTypingT = setTimeout(() => { agentTyping = false; status(); }, 30000);
        break;
      case "read": agentRead = Math.max(agentRead, Number(f.seq) || 0); break;
      case "availability": availability(f); break;
      case "handoff": onHandoff(f); break;
      case "closed": onClosed(!!f.transcript); break;
      case "error": onError(f); break;
      default: return;
    }
    render();
    if (f.type === "welcome" || f.type === "read" || f.type === "session") {
      for (const el of log.children) if (el.chFrom === "resident") meta(el);
    }
  }

  function onError(f) {
    const detail = f.detail || t("error." + f.code);
    err = detail;
    const el = f.cid && byCid.get(f.cid);
    if (el && !el.dataset.seq) {
      // That message was refused (not stored): say so on it and give its text back to edit or send again.
      const frame = pending.find((p) => p.cid === f.cid);
      unpend(f.cid);
      byCid.delete(f.cid);
      el.chFailed = true;
      meta(el);
      if (frame && !msgI.value) msgI.value = frame.body;
      fieldErr(msgErr, msgI, detail);
      if (wantHandoff && !token) wantHandoff = null;
    } else if (f.code === "bad_address") {
      if (wantHandoff) { wantHandoff = null; fieldErr(hoErr, hoAddr, detail); } else if (!endBox.hidden) {
        fieldErr(txErr, txI, detail);
      }
    } else if (f.code === "closed") {
      onClosed(false);
    } else if (f.code === "too_long" || f.code === "rate_limited") {
      fieldErr(msgErr, msgI, detail);
    }
  }

  // ---- start ---------------------------------------------------------------------------------------------------
  function start(cfg) {
    lang = cfg.lang || lang;
    S = cfg.strings || {};
    if (cfg.max_chars) maxChars = cfg.max_chars;
    availability(cfg);
    try { fmt = new Intl.DateTimeFormat(lang + "-CA", { hour: "numeric", minute: "2-digit" }); } catch (e) {
      fmt = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
    }
    build();
    window.carehubChat = { open: () => show(true) };
    addEventListener("online", () => { if (!ws && wanted()) { attempt = 0; connect(); } });
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) return;
      if (!ws && wanted()) { attempt = 0; connect(); } else { ping(); markRead(); }
    });
    if (wanted()) connect();
  }

  function loadConfig(tries) {
    return fetch(HUB + "/chat/config?lang=" + encodeURIComponent(lang), { credentials: "omit" })
      .then((r) => { if (!r.ok) throw new Error(r.status); return r.json(); })
      .catch((e) => {
        if (tries > 3) throw e;
        return new Promise((res) => setTimeout(res, 2000 * 2 ** tries)).then(() => loadConfig(tries + 1));
      });
  }

  function loadCss() {
    const href = HUB + "/chat/widget.css";
    if (document.querySelector('link[href="' + href + '"]')) return Promise.resolve();
    return new Promise((res) => {
      const l = h("link", { rel: "stylesheet", href });
      l.addEventListener("load", res);
      l.addEventListener("error", res);
      document.head.append(l);
    });
  }

  window.carehubChat = { open() {} };
  const domReady = document.readyState === "loading"
    ? new Promise((res) => document.addEventListener("DOMContentLoaded", res)) : null;
  Promise.all([loadConfig(0), loadCss(), domReady]).then(([cfg]) => start(cfg), () => {
    delete window.carehubChat; // the hub is unreachable: show nothing rather than a button that cannot work
  });
})();
