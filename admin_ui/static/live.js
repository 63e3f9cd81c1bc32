/* The live feed page: GET /admin/api/live over EventSource, newest rows first.
   The filters live in the page's URL; applying them rewrites the URL and reconnects. */
(function () {
  "use strict";

  var root = document.querySelector("[data-live]");
  if (!root || !window.EventSource) return;

  var streamUrl = root.getAttribute("data-stream");
  var allowed = (root.getAttribute("data-parameters") || "").split(" ");
  var maxRows = parseInt(root.getAttribute("data-max-rows"), 10) || 200;
  var form = document.getElementById("live-filters");
  var rows = root.querySelector("[data-live-rows]");
  var empty = root.querySelector("[data-live-empty]");
  var state = root.querySelector("[data-live-state]");
  var message = root.querySelector("[data-live-message]");
  var pauseButton = root.querySelector("[data-live-pause]");
  var pauseLabel = root.querySelector("[data-live-pause-label]");

  var source = null;
  var paused = false;
  var waiting = [];     // traces received while paused, newest last
  var incoming = [];    // traces to draw on the next frame
  var frame = 0;
  var seen = {};        // trace ids shown or waiting, so a reconnect never doubles a row
  var seenOrder = [];
  var greeted = false;

  var timeFormat = new Intl.DateTimeFormat(undefined, {
    hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3, hour12: false
  });
  var numberFormat = new Intl.NumberFormat();

  // -- the stream -------------------------------------------------------------------------

  function streamParams() {
    var given = new URLSearchParams(window.location.search);
    var kept = new URLSearchParams();
    given.forEach(function (value, name) {
      if (value !== "" && allowed.indexOf(name) >= 0) kept.append(name, value);
    });
    return kept;
  }

  function connect() {
    if (source) source.close();
    greeted = false;
    var query = streamParams().toString();
    var url = streamUrl + (query ? "?" + query : "");
    show("connecting", "Connecting…");
    source = new EventSource(url);
    source.addEventListener("hello", function (event) {
      greeted = true;
      var hello = JSON.parse(event.data);
      show("live", hello.complete ? "Live" : "Live · one worker's requests only (no Redis)");
    });
    source.addEventListener("trace", function (event) { receive(JSON.parse(event.data)); });
    source.addEventListener("stats", function (event) { showStats(JSON.parse(event.data)); });
    source.addEventListener("dropped", function () {
      show("warning", "Fell behind; reconnecting…");  // EventSource reconnects by itself
    });
    source.addEventListener("end", function (event) {
      var reason = JSON.parse(event.data).reason;
      if (reason === "shutdown") {
        show("warning", "The gateway is restarting; reconnecting…");
      } else {
        source.close();
        show("ended", "Stream ended (" + reason + ")");
      }
    });
    source.onerror = function () {
      // Closed: the answer was not a stream (an error status). Otherwise it reconnects itself.
      if (source.readyState === EventSource.CLOSED) explain(url);
      else if (greeted) show("warning", "Reconnecting…");
    };
  }

  /* EventSource says nothing about why a connection was refused: ask again, for a stream that
     ends at once, and show the API's error message. */
  function explain(url) {
    var probe = url + (url.indexOf("?") >= 0 ? "&" : "?") + "seconds=0";
    fetch(probe, { headers: { Accept: "text/event-stream" } }).then(function (response) {
      if (response.ok) {
        show("warning", "Disconnected; reconnecting…");
        window.setTimeout(connect, 3000);
        return null;
      }
      return response.json().then(function (body) {
        show("error", (body && body.error && body.error.message) || "The feed refused the request.");
      });
    }).catch(function () {
      show("error", "The gateway cannot be reached.");
    });
  }

  function show(kind, text) {
    state.setAttribute("data-live-state", kind);
    message.textContent = text;
  }

  // -- rows -------------------------------------------------------------------------------

  function receive(trace) {
    if (seen[trace.trace_id]) return;
    seen[trace.trace_id] = true;
    seenOrder.push(trace.trace_id);
    if (seenOrder.length > maxRows * 4) delete seen[seenOrder.shift()];
    if (paused) {
      waiting.push(trace);
      if (waiting.length > maxRows) waiting.shift();
      pauseLabel.textContent = "Resume · " + numberFormat.format(waiting.length) + " new";
      return;
    }
    incoming.push(trace);
    if (!frame) frame = window.requestAnimationFrame(draw);
  }

  function draw() {
    frame = 0;
    var batch = incoming.slice(-maxRows);
    incoming = [];
    var fragment = document.createDocumentFragment();
    for (var i = batch.length - 1; i >= 0; i--) fragment.appendChild(row(batch[i]));
    rows.insertBefore(fragment, rows.firstChild);
    while (rows.children.length > maxRows) rows.removeChild(rows.lastChild);
    empty.hidden = rows.children.length > 0;
  }

  function cell(text, className, title) {
    var td = document.createElement("td");
    if (className) td.className = className;
    if (title) td.title = title;
    if (text instanceof Node) td.appendChild(text);
    else td.textContent = text;
    return td;
  }

  function row(trace) {
    var href = "/admin/traces/" + encodeURIComponent(trace.trace_id);
    var tr = document.createElement("tr");
    tr.setAttribute("data-href", href);
    tr.setAttribute("data-trace-id", trace.trace_id);
    tr.className = "live-new";

    var started = new Date(trace.time);
    var time = document.createElement("time");
    time.dateTime = trace.time;
    time.title = trace.time.replace("T", " ").replace("Z", " UTC");
    time.textContent = timeFormat.format(started);
    tr.appendChild(cell(time, "nowrap"));

    var link = document.createElement("a");
    link.className = "mono";
    link.href = href;
    link.title = trace.trace_id;
    link.textContent = trace.trace_id.slice(-8);
    tr.appendChild(cell(link));

    var status = document.createElement("span");
    var outcome = trace.status === "error" && trace.http_status >= 400 && trace.http_status < 500
      ? "denied" : trace.status;
    status.className = "badge badge-" + tone(outcome);
    status.textContent = outcome;
    var statusCell = cell(status);
    if (trace.http_status !== 200) {
      var code = document.createElement("span");
      code.className = "muted num";
      code.textContent = " " + trace.http_status;
      statusCell.appendChild(code);
    }
    if (trace.error_type) statusCell.title = trace.error_type;
    tr.appendChild(statusCell);

    var model = trace.requested_model || "—";
    var served = trace.served_model && trace.served_model !== trace.requested_model
      ? " → " + trace.served_model : "";
    tr.appendChild(cell(model + served, "mono truncate", model + served));
    tr.appendChild(cell(trace.provider || "—", "", trace.deployment || ""));
    tr.appendChild(cell(trace.key_name || (trace.api_key_id ? trace.api_key_id.slice(-8) : "—"),
      "truncate", trace.api_key_id || ""));
    tr.appendChild(cell(trace.end_user || "—", "mono truncate", trace.end_user || ""));
    tr.appendChild(cell(milliseconds(trace.duration_ms), "num"));
    tr.appendChild(cell(milliseconds(trace.ttft_ms), "num"));
    tr.appendChild(cell(trace.total_tokens == null ? "—" : numberFormat.format(trace.total_tokens),
      "num", tokensTitle(trace)));
    tr.appendChild(cell(trace.cost_usd == null ? "—" : "$" + trace.cost_usd, "num"));
    tr.appendChild(cell(notes(trace), "live-notes"));
    return tr;
  }

  function tone(outcome) {
    if (outcome === "ok") return "ok";
    if (outcome === "error") return "error";
    if (outcome === "denied") return "warning";
    return "neutral";
  }

  function milliseconds(value) {
    if (value == null) return "—";
    if (value >= 1000) return (value / 1000).toFixed(value >= 10000 ? 1 : 2) + " s";
    return (value >= 10 ? Math.round(value) : value.toFixed(1)) + " ms";
  }

  function tokensTitle(trace) {
    if (trace.prompt_tokens == null && trace.completion_tokens == null) return "";
    return (trace.prompt_tokens == null ? "?" : trace.prompt_tokens) + " in, " +
      (trace.completion_tokens == null ? "?" : trace.completion_tokens) + " out";
  }

  function notes(trace) {
    var list = [];
    if (trace.cache_hit) list.push("cache hit");
    if (trace.stream) list.push("stream");
    if (trace.attempts > 1) list.push(trace.attempts + " attempts");
    if (trace.rules_matched.length) list.push("rules: " + trace.rules_matched.join(", "));
    if (trace.guardrail_action) {
      list.push("guardrail " + trace.guardrail_action + ": " + trace.guardrails_triggered.join(", "));
    }
    return list.join(" · ");
  }

  // -- statistics -------------------------------------------------------------------------

  function setStat(name, text) {
    var target = root.querySelector('[data-stat="' + name + '"]');
    if (target) target.textContent = text;
  }

  function showStats(stats) {
    setStat("rps", stats.requests_per_second.toFixed(stats.requests_per_second >= 10 ? 0 : 2));
    setStat("error_rate", (stats.error_rate * 100).toFixed(1));
    setStat("p95", stats.p95_ms == null ? "—" : stats.p95_ms.toFixed(stats.p95_ms >= 10 ? 0 : 1));
    setStat("requests", numberFormat.format(stats.requests));
    var window_ = Math.round(stats.window_seconds);
    var note = " in the last " + (window_ >= 60 ? "minute" : window_ + " s");
    if (stats.not_shown) note += " (" + numberFormat.format(stats.not_shown) + " not listed)";
    setStat("window", note);
  }

  // -- pause and filters ------------------------------------------------------------------

  function setPaused(value) {
    paused = value;
    pauseButton.setAttribute("aria-pressed", paused ? "true" : "false");
    if (!paused) {
      incoming = incoming.concat(waiting);
      waiting = [];
      pauseLabel.textContent = "Pause";
      if (incoming.length && !frame) frame = window.requestAnimationFrame(draw);
    } else {
      pauseLabel.textContent = "Resume";
    }
  }

  pauseButton.addEventListener("click", function () { setPaused(!paused); });
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var typing = target && (target.tagName === "INPUT" || target.tagName === "SELECT" ||
      target.tagName === "TEXTAREA" || target.isContentEditable || target.tagName === "BUTTON");
    if (event.key === " " && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      setPaused(!paused);
    }
  });

  function applyFilters(values) {
    var params = new URLSearchParams(window.location.search);
    values.forEach(function (pair) {
      if (pair[1] === "") params.delete(pair[0]);
      else params.set(pair[0], pair[1]);
    });
    var query = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (query ? "?" + query : ""));
    rows.textContent = "";
    empty.hidden = false;
    waiting = [];
    incoming = [];
    seen = {};
    seenOrder = [];
    if (paused) setPaused(false);
    connect();
  }

  function formValues() {
    var values = [];
    Array.prototype.forEach.call(form.elements, function (element) {
      if (element.name) values.push([element.name, element.value.trim()]);
    });
    return values;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    applyFilters(formValues());
  });
  form.addEventListener("reset", function () {
    window.setTimeout(function () {  // after the browser has put the default values back
      Array.prototype.forEach.call(form.elements, function (element) {
        if (element.name) element.value = "";
      });
      applyFilters(formValues());
    }, 0);
  });

  connect();
})();
