// immutable dashboard: live updates (server-sent events, or polling the JSON twin when a
// proxy buffers them) and the confirm step of every action. No dependencies.
(function () {
  "use strict";
  var TOKEN_KEY = "immutable-dashboard-token";
  var OPERATOR_KEY = "immutable-dashboard-operator";
  var body = document.body;

  // A token handed over in the address (#token=...) never reaches the server: keep it for
  // this tab only and take it out of the address bar and the history.
  var m = /^#token=([A-Za-z0-9_\-~.]+)$/.exec(window.location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, m[1]);
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }

  // Live updates.
  var live = document.getElementById("live");
  var poll = parseInt(body.getAttribute("data-poll-ms"), 10) || 2000;
  var eventsUrl = body.getAttribute("data-events");
  var apiUrl = body.getAttribute("data-api");
  var lastMessage = Date.now();
  var lastHtml = null;

  function apply(doc) {
    if (!live || !doc || typeof doc.html !== "string" || doc.html === lastHtml) return;
    if (lastHtml === null) {
      // The first document usually says what the page already shows: keep the elements
      // (and what a person is about to click) unless it differs.
      var probe = document.createElement("div");
      probe.innerHTML = doc.html;
      if (probe.innerHTML === live.innerHTML) {
        lastHtml = doc.html;
        return;
      }
    }
    lastHtml = doc.html;
    live.innerHTML = doc.html;
    body.setAttribute("data-updated", String(Date.now()));
  }

  if (live && eventsUrl && window.EventSource) {
    var source = new EventSource(eventsUrl);
    source.addEventListener("update", function (e) {
      lastMessage = Date.now();
      body.setAttribute("data-live", "sse");
      try { apply(JSON.parse(e.data)); } catch (err) { /* a partial message: the next one */ }
    });
    source.addEventListener("heartbeat", function () {
      lastMessage = Date.now();
      body.setAttribute("data-live", "sse");
    });
    source.addEventListener("problem", function () { lastMessage = Date.now(); });
  }
  if (live && apiUrl) {
    // No message for two poll intervals: the stream is buffered or gone; poll the twin.
    setInterval(function () {
      if (Date.now() - lastMessage <= 2 * poll) return;
      body.setAttribute("data-live", "polling");
      fetch(apiUrl, { headers: { Accept: "application/json" }, cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(apply)
        .catch(function () {});
    }, poll);
  }

  // Actions: every button with class "action" opens the confirm dialog, which says what
  // will happen and asks for the token and a name; only then is the request sent.
  var dialog = document.getElementById("confirm-dialog");
  if (!dialog) return;
  var result = document.getElementById("result");
  var what = document.getElementById("confirm-what");
  var token = document.getElementById("token");
  var operator = document.getElementById("operator");
  var reason = document.getElementById("reason");
  var reasonField = document.getElementById("reason-field");
  var pending = null;

  function say(text, outcome) {
    result.textContent = text;
    result.setAttribute("data-outcome", outcome);
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("button.action") : null;
    if (!button) return;
    pending = button;
    what.textContent = button.getAttribute("data-what") || "";
    var needs = button.getAttribute("data-reason") || "none";
    reasonField.hidden = needs === "none";
    reason.required = needs === "required";
    reason.value = "";
    token.value = sessionStorage.getItem(TOKEN_KEY) || "";
    operator.value = sessionStorage.getItem(OPERATOR_KEY) || "";
    dialog.showModal();
  });

  document.getElementById("cancel").addEventListener("click", function () {
    pending = null;
    dialog.close();
  });

  document.getElementById("confirm-form").addEventListener("submit", function (e) {
    e.preventDefault();
    if (!pending) return dialog.close();
    var button = pending;
    pending = null;
    var payload = { operator: operator.value };
    if (!reasonField.hidden && reason.value) payload.reason = reason.value;
    var deployment = button.getAttribute("data-deployment");
    if (deployment) payload.deployment = deployment;
    var scope = button.getAttribute("data-scope");
    if (button.id === "halt") scope = document.getElementById("halt-service").value.trim() || null;
    if (button.id === "halt" || scope !== null) {
      if (scope === null || scope === "") payload.all = true; else payload.service = scope;
    }
    sessionStorage.setItem(TOKEN_KEY, token.value);
    sessionStorage.setItem(OPERATOR_KEY, operator.value);
    dialog.close();
    say("sending…", "pending");
    fetch(button.getAttribute("data-url"), {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + token.value },
      body: JSON.stringify(payload),
      cache: "no-store"
    }).then(function (r) {
      return r.text().then(function (text) {
        var message = text;
        try { var doc = JSON.parse(text); message = doc.message || doc.error || text; } catch (err) {}
        say(message, r.ok ? "ok" : "refused");
        if (r.ok && !live) setTimeout(function () { window.location.reload(); }, 500);
      });
    }).catch(function () { say("the dashboard did not answer", "refused"); });
  });
})();
