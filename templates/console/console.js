/* The console's progressive enhancement: live updates from the agents' event stream, keyboard shortcuts, canned
   responses inserted in place, and who else is on a ticket. Every page works without it. */
(function () {
  "use strict";
  var body = document.body;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var page = body.dataset.page || "";
  var ticketRef = body.dataset.ticket || "";
  var live = document.getElementById("live");

  function say(text) {
    if (!live) return;
    live.textContent = "";
    window.setTimeout(function () { live.textContent = text; }, 50);
  }

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      if (timer) window.clearTimeout(timer);
      timer = window.setTimeout(function () { timer = null; fn(); }, ms);
    };
  }

  function swap(selector, url) {
    var target = document.querySelector(selector);
    if (!target || !window.htmx) return;
    var focused = document.activeElement && document.activeElement.closest ? document.activeElement.closest("tr[data-ref]") : null;
    var keep = focused ? focused.dataset.ref : selectedRef();
    window.htmx.ajax("GET", url, { target: selector, swap: "innerHTML" }).then(function () {
      if (keep) select(document.querySelector('tr[data-ref="' + keep + '"]'), !!focused);
    });
  }

  /* ---- live updates ---------------------------------------------------------------------------------------- */
  var CHANNEL = { sms: "text message", email: "email", chat: "chat message" };
  if (window.EventSource && page !== "login" && page !== "alerts") {  /* alerts pages poll their own report */
    var stream = new EventSource("/api/v1/events");
    var refreshQueue = debounce(function () {
      var queue = document.getElementById("queue");
      if (queue) swap("#queue", queue.dataset.rowsUrl);
    }, 300);
    var refreshConversation = debounce(function () {
      var conversation = document.getElementById("conversation");
      if (conversation) swap("#conversation", conversation.dataset.url);
    }, 200);
    var onTicketEvent = function (kind) {
      return function (e) {
        var data = {};
        try { data = JSON.parse(e.data); } catch (err) { return; }
        if (page === "queue") {
          refreshQueue();
          if (kind === "message.created" && data.direction === "in") {
            say("New " + (CHANNEL[data.channel] || "message") + " on " + data.reference + ".");
          }
        } else if (page === "ticket" && data.reference === ticketRef) {
          if (kind === "ticket.viewers") { showViewers(data.viewers || []); return; }
          refreshConversation();
          if (kind === "message.created" && data.direction === "in") say("The resident wrote again.");
        }
      };
    };
    ["ticket.created", "message.created", "ticket.assigned", "ticket.updated", "note.created", "sla.warning",
     "sla.breached", "message.status", "ticket.viewers"].forEach(function (kind) {
      stream.addEventListener(kind, onTicketEvent(kind));
    });
  }

  /* ---- who else is on this ticket --------------------------------------------------------------------------- */
  var viewers = document.getElementById("viewers");
  function showViewers(list) {
    if (!viewers) return;
    var others = list.filter(function (v) { return String(v.agent_id) !== String(body.dataset.agent || ""); });
    if (!others.length) { viewers.textContent = ""; return; }
    viewers.textContent = others.map(function (v) {
      return v.name + (v.typing ? " is typing a reply" : " is viewing this ticket");
    }).join("; ") + ".";
  }
  if (page === "ticket" && ticketRef && window.fetch) {
    var typing = false;
    var beat = function () {
      fetch("/api/v1/tickets/" + encodeURIComponent(ticketRef) + "/viewing", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ typing: typing })
      }).then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) showViewers(data.viewers || data); })
        .catch(function () { /* the next beat tries again */ });
    };
    beat();
    window.setInterval(beat, 10000);
    var reply = document.getElementById("reply");
    if (reply) {
      var stopTyping = debounce(function () { typing = false; beat(); }, 4000);
      reply.addEventListener("input", function () {
        if (!typing) { typing = true; beat(); }
        stopTyping();
      });
    }
  }

  /* ---- canned responses: insert in place -------------------------------------------------------------------- */
  var cannedForm = document.querySelector("form.canned");
  if (cannedForm && window.fetch) {
    cannedForm.addEventListener("submit", function (e) {
      e.preventDefault();
      var id = cannedForm.querySelector("select").value;
      fetch("/api/v1/tickets/" + encodeURIComponent(ticketRef) + "/canned/" + encodeURIComponent(id),
            { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
        .then(function (filled) {
          var box = document.getElementById("reply");
          box.value = box.value ? box.value + "\n\n" + filled.body : filled.body;
          box.focus();
          say("Canned response inserted in the reply.");
        })
        .catch(function () { cannedForm.submit(); });
    });
  }

  /* ---- keyboard shortcuts ------------------------------------------------------------------------------------ */
  var STORE = "carehub.shortcuts";
  var toggle = document.getElementById("shortcuts-enabled");
  function enabled() { try { return window.localStorage.getItem(STORE) !== "off"; } catch (e) { return true; } }
  if (toggle) {
    toggle.checked = enabled();
    toggle.addEventListener("change", function () {
      try { window.localStorage.setItem(STORE, toggle.checked ? "on" : "off"); } catch (e) { /* private mode */ }
      say(toggle.checked ? "Keyboard shortcuts on." : "Keyboard shortcuts off.");
    });
  }

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("tr[data-ref]")); }
  function selectedRef() { var s = document.querySelector("tr[data-ref].selected"); return s ? s.dataset.ref : null; }
  function select(row, focus) {
    if (!row) return;
    rows().forEach(function (r) { r.classList.remove("selected"); });
    row.classList.add("selected");
    if (focus !== false) row.querySelector("a").focus();
  }
  function move(step) {
    var all = rows();
    if (!all.length) return;
    var at = all.findIndex(function (r) { return r.classList.contains("selected"); });
    select(all[Math.max(0, Math.min(all.length - 1, at < 0 ? 0 : at + step))]);
  }
  function typingInField(target) {
    return target.closest && target.closest("input, textarea, select, [contenteditable=true]");
  }
  var pendingG = false;
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || !enabled() || typingInField(e.target)) return;
    var key = e.key;
    if (pendingG) {
      pendingG = false;
      if (key === "q") { window.location.href = "/console"; e.preventDefault(); }
      return;
    }
    var dialog = document.getElementById("shortcuts");
    var act = {
      "?": function () { if (dialog && dialog.showModal) dialog.showModal(); },
      "/": function () { var q = document.getElementById("q"); if (q) q.focus(); else window.location.href = "/console"; },
      "j": function () { move(1); },
      "k": function () { move(-1); },
      "n": function () { window.location.href = "/console/next"; },
      "r": function () { var r = document.getElementById("reply"); if (r) r.focus(); },
      "a": function () { var b = document.getElementById("claim"); if (b) b.click(); },
      "c": function () {
        var s = document.getElementById("set-status");
        if (s) { s.value = "resolved"; s.form.requestSubmit(); }
      },
      "g": function () { pendingG = true; }
    }[key];
    if (act) { e.preventDefault(); act(); }
  });
})();
