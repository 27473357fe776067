// Sargs service pages: live updates by polling (the pages work without this script).
// "My requests" follows its requests' status; the approvers' queue marks requests another
// approver decided and keeps the badge count current. Bounded: it stops after an hour.
(function () {
  "use strict";
  var POLL_MS = 2000;
  var MAX_POLLS = 1800;
  var textsEl = document.getElementById("sargs-texts");
  var texts = textsEl ? JSON.parse(textsEl.textContent || "{}") : {};
  var live = document.getElementById("sargs-live");

  function fill(template, values) {
    return String(template || "").replace(/\{(\w+)\}/g, function (_, k) {
      return values[k] === undefined || values[k] === null ? "" : String(values[k]);
    });
  }

  // A time in the page's language and the reader's own zone, as the server writes them
  // (proxy/service/localize.py; the zone cookie below tells the server the same zone).
  function localTime(iso) {
    if (!iso) { return ""; }
    try {
      return new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
        dateStyle: "medium", timeStyle: "short"
      }).format(new Date(iso));
    } catch (e) { return iso; }
  }

  function poll(url, handle) {
    var n = 0;
    function tick() {
      if (n++ > MAX_POLLS) { return; }
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) { handle(data); } })
        .catch(function () { /* the service is away: try again */ })
        .then(function () { setTimeout(tick, POLL_MS); });
    }
    setTimeout(tick, POLL_MS);
  }

  var mine = document.getElementById("sargs-mine");
  if (mine) {
    var sent = mine.getAttribute("data-sent");
    var back = mine.getAttribute("data-return-url");
    var leaving = false;
    poll("/api/v1/exceptions/mine", function (data) {
      data.requests.forEach(function (r) {
        var row = mine.querySelector('tr[data-id="' + r.id + '"]');
        if (!row || row.getAttribute("data-status") === r.status) { return; }
        row.setAttribute("data-status", r.status);
        var cell = row.querySelector(".status");
        var msg = fill(texts[r.status], {until: localTime(r.expires_at), reason: r.reason});
        cell.textContent = msg;
        cell.className = "status status-" + r.status;
        if (live) { live.textContent = msg; }
        if (r.id === sent && r.status === "approved" && back && !leaving) {
          // Gateways apply a grant within seconds: show the link, then go back to the page.
          leaving = true;
          var p = document.getElementById("sargs-return");
          if (p) { p.hidden = false; }
          setTimeout(function () { window.location.assign(back); }, 2500);
        }
      });
    });
  }

  var queue = document.getElementById("sargs-queue");
  if (queue) {
    var badge = document.getElementById("sargs-badge");
    poll("/api/v1/exceptions?status=pending", function (data) {
      var ids = {};
      data.requests.forEach(function (r) { ids[r.id] = true; });
      if (badge) { badge.textContent = String(data.requests.length); }
      queue.querySelectorAll("section.request").forEach(function (s) {
        var id = s.getAttribute("data-id");
        if (ids[id] || s.classList.contains("decided")) { return; }
        s.classList.add("decided");
        s.querySelectorAll("button, input, select").forEach(function (el) { el.disabled = true; });
        fetch("/api/v1/exceptions/" + encodeURIComponent(id),
              {credentials: "same-origin", headers: {"Accept": "application/json"}})
          .then(function (r) { return r.ok ? r.json() : {}; })
          .then(function (r) {
            var done = s.querySelector(".done");
            done.textContent = fill(texts.decided, {status: r.status || "", by: r.decided_by || ""});
            done.hidden = false;
            if (live) { live.textContent = done.textContent; }
          });
      });
      var shown = queue.querySelectorAll("section.request").length;
      var fresh = data.requests.filter(function (r) {
        return !queue.querySelector('section[data-id="' + r.id + '"]');
      }).length;
      if (fresh && live) { live.textContent = fill(texts["new"], {count: fresh}); }
      return shown;
    });
  }
  // The reader's time zone, for times on the pages (proxy/service/localize.py).
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && document.cookie.indexOf("sargs_tz=" + zone) < 0) {
      document.cookie = "sargs_tz=" + zone + "; path=/; max-age=31536000; samesite=strict";
    }
  } catch (e) { /* no Intl: the institution's zone */ }

  // The request form: "other duration" only when chosen.
  var duration = document.getElementById("duration");
  var custom = duration && document.getElementById(duration.getAttribute("data-custom"));
  if (custom) {
    var toggle = function () { custom.hidden = duration.value !== "custom"; };
    duration.addEventListener("change", toggle);
    toggle();
  }
})();
