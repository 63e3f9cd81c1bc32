/* Steerway console: small enhancements on pages that work without this file.
   Times in the viewer's zone, copy buttons, keyboard moves through lists, and the auto-refresh
   of lists and of pages about work in progress. Nothing here talks to anything but the page's
   own origin. */
(function () {
  "use strict";

  var root = document.documentElement;
  root.classList.add("js");

  // --- times -----------------------------------------------------------------------------

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function zoneName(date) {
    try {
      var parts = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(date);
      for (var i = 0; i < parts.length; i++) {
        if (parts[i].type === "timeZoneName") return parts[i].value;
      }
    } catch (e) { /* an old engine: no zone name */ }
    return "";
  }

  function localText(date) {
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
      " " + pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
  }

  function relativeText(date, now) {
    var seconds = Math.round((now - date) / 1000);
    var later = seconds < 0;
    seconds = Math.abs(seconds);
    if (seconds < 5) return "just now";
    var amount;
    if (seconds < 60) amount = seconds + " s";
    else if (seconds < 3600) amount = Math.floor(seconds / 60) + " min";
    else if (seconds < 86400) amount = Math.floor(seconds / 3600) + " h";
    else amount = Math.floor(seconds / 86400) + " d";
    return later ? "in " + amount : amount + " ago";
  }

  function localiseTimes(scope) {
    var now = Date.now();
    var nodes = scope.querySelectorAll("time[datetime]");
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      var date = new Date(node.getAttribute("datetime"));
      if (isNaN(date.getTime())) continue;
      if (!node.dataset.utc) node.dataset.utc = node.getAttribute("title") || node.textContent;
      var zone = zoneName(date);
      if (node.dataset.style === "short") {
        var today = new Date(now);
        var sameDay = date.getFullYear() === today.getFullYear() && date.getMonth() === today.getMonth() &&
          date.getDate() === today.getDate();
        node.textContent = sameDay
          ? pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds())
          : localText(date).slice(0, 16);
        node.title = localText(date) + (zone ? " " + zone : "") + "\n" + node.dataset.utc;
      } else if (node.dataset.style === "relative") {
        node.textContent = relativeText(date, now);
        node.title = localText(date) + (zone ? " " + zone : "") + "\n" + node.dataset.utc;
      } else {
        node.textContent = localText(date) + (zone ? " " + zone : "");
        node.title = node.dataset.utc;
      }
      node.classList.add("localised");
    }
  }

  // --- copy ------------------------------------------------------------------------------

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var done = false;
      try { done = document.execCommand("copy"); } catch (e) { done = false; }
      document.body.removeChild(area);
      if (done) resolve(); else reject(new Error("copy refused"));
    });
  }

  function revealCopyButtons(scope) {
    var buttons = scope.querySelectorAll("button[data-copy], button[data-copy-target]");
    for (var i = 0; i < buttons.length; i++) buttons[i].hidden = false;
  }

  function copyFrom(button) {
    var text = button.getAttribute("data-copy");
    if (text === null) {
      var target = document.getElementById(button.getAttribute("data-copy-target"));
      text = target ? target.textContent : "";
    }
    var label = button.querySelector("span") || button;
    var before = label.textContent;
    copyText(text).then(function () {
      button.classList.add("copied");
      label.textContent = "copied";
      button.setAttribute("data-copied", text);
    }, function () {
      label.textContent = "press Ctrl+C";
    }).then(function () {
      setTimeout(function () {
        button.classList.remove("copied");
        label.textContent = before;
      }, 1500);
    });
  }

  // --- rows and the keyboard -------------------------------------------------------------

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("table[data-rows] tbody tr[data-href]"));
  }

  function selectRow(row) {
    var all = rows();
    for (var i = 0; i < all.length; i++) {
      all[i].classList.remove("selected");
      all[i].removeAttribute("aria-selected");
    }
    if (!row) return;
    row.classList.add("selected");
    row.setAttribute("aria-selected", "true");
    row.scrollIntoView({ block: "nearest" });
  }

  function moveSelection(step) {
    var all = rows();
    if (!all.length) return false;
    var current = all.indexOf(document.querySelector("table[data-rows] tr.selected"));
    var next = current < 0 ? (step > 0 ? 0 : all.length - 1) : current + step;
    next = Math.max(0, Math.min(all.length - 1, next));
    selectRow(all[next]);
    return true;
  }

  function typing(target) {
    var name = target && target.tagName;
    return name === "INPUT" || name === "TEXTAREA" || name === "SELECT" || (target && target.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    var selected = document.querySelector("table[data-rows] tr.selected");
    switch (event.key) {
      case "/":
        var filter = document.querySelector("[data-filter]") ||
          document.querySelector("form.filters input:not([type=hidden])");
        if (filter) { event.preventDefault(); filter.focus(); if (filter.select) filter.select(); }
        break;
      case "j":
        if (moveSelection(1)) event.preventDefault();
        break;
      case "k":
        if (moveSelection(-1)) event.preventDefault();
        break;
      case "ArrowDown":
        if (selected && moveSelection(1)) event.preventDefault();
        break;
      case "ArrowUp":
        if (selected && moveSelection(-1)) event.preventDefault();
        break;
      case "Enter":
      case "o":
        if (selected && !event.target.closest("a, button, summary")) {
          event.preventDefault();
          window.location.assign(selected.getAttribute("data-href"));
        }
        break;
      case "Escape":
        selectRow(null);
        break;
      case "r":
        var refresh = document.querySelector("[data-refresh]");
        if (refresh) { event.preventDefault(); refresh.click(); }
        break;
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy], button[data-copy-target]");
    if (button) {
      event.preventDefault();
      copyFrom(button);
      return;
    }
    var toggle = event.target.closest("[data-auto-refresh]");
    if (toggle) {
      event.preventDefault();
      setAutoRefresh(!autoRefresh.timer, toggle);
      return;
    }
    var row = event.target.closest("table[data-rows] tbody tr[data-href]");
    if (row && !event.target.closest("a, button, input, label, select")) {
      if (window.getSelection && String(window.getSelection())) return; // selecting text
      window.location.assign(row.getAttribute("data-href"));
    }
  });

  // A choice made with the mouse applies at once; one made with the arrow keys (which change a
  // closed select on every press) waits for the Apply button, shown for it.
  var keyedSelect = null;
  document.addEventListener("keydown", function (event) {
    if (event.target.tagName === "SELECT") keyedSelect = event.target;
  }, true);
  document.addEventListener("pointerdown", function () { keyedSelect = null; }, true);
  document.addEventListener("change", function (event) {
    var form = event.target.form;
    if (!form || !form.hasAttribute("data-autosubmit")) return;
    if (keyedSelect === event.target) {
      form.classList.add("changed");
      return;
    }
    form.submit();
  });

  // A filter form leaves its empty fields out of the URL it opens (the server passes them over
  // anyway), so a shared link says only what was chosen.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-drop-empty") || form.method.toLowerCase() !== "get") return;
    var fields = form.querySelectorAll("input[name], select[name]");
    for (var i = 0; i < fields.length; i++) {
      var field = fields[i];
      if (field.type === "checkbox" || field.multiple) continue;
      if (field.value === "") field.disabled = true;
    }
    setTimeout(function () {
      for (var i = 0; i < fields.length; i++) fields[i].disabled = false;
    }, 0);
  });

  // --- auto-refresh of lists -------------------------------------------------------------

  var autoRefresh = { timer: null, seconds: 10, busy: false };

  function refreshRegion() {
    var region = document.querySelector("[data-refresh-region]");
    if (!region || autoRefresh.busy || document.hidden) return;
    if (region.contains(document.activeElement) && typing(document.activeElement)) return;
    autoRefresh.busy = true;
    var selected = document.querySelector("table[data-rows] tr.selected");
    var selectedHref = selected && selected.getAttribute("data-href");
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.querySelector("[data-refresh-region]");
        if (!fresh) return;
        region.innerHTML = fresh.innerHTML;
        enhance(region);
        if (selectedHref) {
          var again = region.querySelector('tr[data-href="' + CSS.escape(selectedHref) + '"]');
          if (again) selectRow(again);
        }
        region.setAttribute("data-refreshed", String(Date.now()));
        followProgress();
      })
      .catch(function () { /* the next tick tries again */ })
      .then(function () { autoRefresh.busy = false; });
  }

  function setAutoRefresh(on, toggle) {
    if (autoRefresh.timer) { clearInterval(autoRefresh.timer); autoRefresh.timer = null; }
    var url = new URL(window.location.href);
    if (on) {
      url.searchParams.set("refresh", String(autoRefresh.seconds));
      autoRefresh.timer = setInterval(refreshRegion, autoRefresh.seconds * 1000);
    } else {
      url.searchParams.delete("refresh");
    }
    window.history.replaceState(null, "", url.toString());
    if (toggle) {
      toggle.setAttribute("aria-pressed", on ? "true" : "false");
      toggle.setAttribute("href", on ? toggleOff(url) : url.toString());
      var label = toggle.querySelector(".label");
      if (label) label.textContent = on ? "Auto-refresh · " + autoRefresh.seconds + " s" : "Auto-refresh";
    }
  }

  // A page about work in progress (a running comparison) carries data-refresh-while="<seconds>"
  // in its content: the content is refreshed at that pace, whatever the toggle says, until a
  // refresh comes back without the mark (the work ended).
  var progressTimer = null;

  function followProgress() {
    var mark = document.querySelector("[data-refresh-region] [data-refresh-while]");
    if (!mark) {
      if (progressTimer) { clearInterval(progressTimer); progressTimer = null; }
      return;
    }
    if (progressTimer) return;
    var seconds = parseInt(mark.getAttribute("data-refresh-while"), 10);
    progressTimer = setInterval(refreshRegion, (seconds > 0 ? seconds : 5) * 1000);
  }

  function toggleOff(url) {
    var off = new URL(url.toString());
    off.searchParams.delete("refresh");
    return off.toString();
  }

  // --- navigation ------------------------------------------------------------------------

  // On a phone the navigation is a strip that scrolls sideways: bring the current page into it.
  function revealCurrentPage() {
    var strip = document.querySelector(".sidebar");
    var current = strip && strip.querySelector('a[aria-current="page"]');
    if (!current || strip.scrollWidth <= strip.clientWidth) return;
    var box = current.getBoundingClientRect();
    var frame = strip.getBoundingClientRect();
    if (box.left >= frame.left && box.right <= frame.right - 24) return;
    strip.scrollLeft += box.left - frame.left - (frame.width - box.width) / 2;
  }

  // --- start -----------------------------------------------------------------------------

  function enhance(scope) {
    localiseTimes(scope);
    revealCopyButtons(scope);
  }

  function start() {
    enhance(document);
    revealCurrentPage();
    window.addEventListener("resize", revealCurrentPage);
    var toggle = document.querySelector("[data-auto-refresh]");
    if (toggle) {
      var seconds = parseInt(toggle.getAttribute("data-auto-refresh"), 10);
      if (seconds > 0) {
        autoRefresh.seconds = seconds;
        setAutoRefresh(true, toggle);
      }
    }
    followProgress();
    setInterval(function () { localiseTimes(document); }, 30000);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
