/* Steerway console: the crosshair and tooltip of time charts drawn by chart_time.py.
   The charts work without this file (every point has its own <title>). With it, pointing at a
   chart, or moving through one with the arrow keys once it has focus, shows a line at one time
   and a tooltip with every series' value there, read from the markers' data- attributes.
   Listeners sit on the document, so charts swapped in by the auto-refresh work as well. */
(function () {
  "use strict";

  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var CHART = "svg.time-chart";
  var models = new WeakMap();
  var tooltip = null;
  var active = null; // { chart, index }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // The same words as the server's moment_label, in UTC like the chart's axis.
  function timeText(seconds) {
    var d = new Date(seconds * 1000);
    var text = MONTHS[d.getUTCMonth()] + " " + d.getUTCDate() + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
    if (d.getUTCSeconds()) text += ":" + pad(d.getUTCSeconds());
    return text + " UTC";
  }

  function number(element, name) { return parseFloat(element.getAttribute(name)); }

  // What the chart's markers say, gathered once per chart element.
  function model(chart) {
    var found = models.get(chart);
    if (found) return found;
    var markers = chart.querySelectorAll("circle.chart-point[data-t]");
    var series = [];
    var order = Object.create(null);
    var at = Object.create(null);
    for (var i = 0; i < markers.length; i++) {
      var marker = markers[i];
      var name = marker.getAttribute("data-series");
      if (!(name in order)) {
        order[name] = series.length;
        series.push({ name: name, colour: marker.getAttribute("fill") });
      }
      var t = marker.getAttribute("data-t");
      (at[t] = at[t] || []).push(marker);
    }
    var times = Object.keys(at).map(Number).sort(function (a, b) { return a - b; });
    if (chart.getAttribute("data-kind") === "stacked") series.reverse(); // top band first
    found = {
      series: series,
      times: times,
      at: at,
      start: number(chart, "data-start"),
      end: number(chart, "data-end"),
      left: number(chart, "data-plot-left"),
      right: number(chart, "data-plot-right"),
      top: number(chart, "data-plot-top"),
      bottom: number(chart, "data-plot-bottom")
    };
    models.set(chart, found);
    chart.classList.add("chart-enhanced");
    return found;
  }

  function xOf(m, t) { return m.left + (m.right - m.left) * (t - m.start) / (m.end - m.start); }

  function nearest(times, t) {
    var low = 0, high = times.length - 1;
    while (low < high) {
      var middle = (low + high) >> 1;
      if (times[middle] < t) low = middle + 1; else high = middle;
    }
    if (low > 0 && t - times[low - 1] < times[low] - t) return low - 1;
    return low;
  }

  function ensureTooltip() {
    if (tooltip && document.body.contains(tooltip)) return tooltip;
    tooltip = document.createElement("div");
    tooltip.className = "chart-tooltip";
    tooltip.setAttribute("role", "status");
    tooltip.hidden = true;
    document.body.appendChild(tooltip);
    return tooltip;
  }

  function row(colour, name, value, missing) {
    var line = document.createElement("div");
    line.className = "chart-tooltip-row" + (missing ? " chart-tooltip-missing" : "");
    line.setAttribute("data-series", name);
    var swatch = document.createElement("span");
    swatch.className = "chart-tooltip-swatch";
    swatch.style.background = colour;
    var label = document.createElement("span");
    label.className = "chart-tooltip-name";
    label.textContent = name;
    var amount = document.createElement("span");
    amount.className = "chart-tooltip-value";
    amount.textContent = value;
    line.appendChild(swatch);
    line.appendChild(label);
    line.appendChild(amount);
    return line;
  }

  function clearMarkers() {
    if (!active) return;
    var lit = active.chart.querySelectorAll(".chart-point-active");
    for (var i = 0; i < lit.length; i++) lit[i].classList.remove("chart-point-active");
  }

  function hide() {
    if (!active) return;
    clearMarkers();
    var crosshair = active.chart.querySelector(".chart-crosshair");
    if (crosshair) crosshair.setAttribute("visibility", "hidden");
    if (tooltip) tooltip.hidden = true;
    active = null;
  }

  function show(chart, index, fromKeyboard) {
    var m = model(chart);
    if (!m.times.length) return;
    index = Math.max(0, Math.min(m.times.length - 1, index));
    if (active && active.chart !== chart) hide();
    clearMarkers();
    active = { chart: chart, index: index };
    var t = m.times[index];
    var x = xOf(m, t);
    var crosshair = chart.querySelector(".chart-crosshair");
    if (crosshair) {
      crosshair.setAttribute("x1", x);
      crosshair.setAttribute("x2", x);
      crosshair.setAttribute("visibility", "visible");
    }
    var values = Object.create(null);
    var markers = m.at[String(t)] || [];
    for (var i = 0; i < markers.length; i++) {
      markers[i].classList.add("chart-point-active");
      values[markers[i].getAttribute("data-series")] = markers[i].getAttribute("data-label");
    }

    var box = ensureTooltip();
    box.textContent = "";
    box.setAttribute("aria-live", fromKeyboard ? "polite" : "off");
    box.setAttribute("data-chart", chart.id || "");
    box.setAttribute("data-t", String(t));
    var heading = document.createElement("div");
    heading.className = "chart-tooltip-time";
    heading.textContent = timeText(t);
    box.appendChild(heading);
    for (var s = 0; s < m.series.length; s++) {
      var one = m.series[s];
      var known = one.name in values;
      box.appendChild(row(one.colour, one.name, known ? values[one.name] : "—", !known));
    }
    box.hidden = false;
    place(box, chart, m, x);
  }

  // Beside the crosshair, on whichever side has room, inside the window.
  function place(box, chart, m, x) {
    var matrix = chart.getScreenCTM();
    if (!matrix) return;
    var point = chart.createSVGPoint();
    point.x = x;
    point.y = m.top;
    var screen = point.matrixTransform(matrix);
    var width = box.offsetWidth;
    var left = screen.x + 14;
    if (left + width > document.documentElement.clientWidth - 8) left = screen.x - 14 - width;
    left = Math.max(8, left);
    box.style.left = Math.round(left + window.scrollX) + "px";
    box.style.top = Math.round(screen.y + window.scrollY) + "px";
  }

  function pointedTime(chart, m, event) {
    var matrix = chart.getScreenCTM();
    if (!matrix) return null;
    var point = chart.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    var local = point.matrixTransform(matrix.inverse());
    if (local.x < m.left - 6 || local.x > m.right + 6 || local.y < m.top - 6 || local.y > m.bottom + 6) {
      return null; // the axes' labels and the legend
    }
    return m.start + (local.x - m.left) / (m.right - m.left) * (m.end - m.start);
  }

  document.addEventListener("pointermove", function (event) {
    var chart = event.target.closest ? event.target.closest(CHART) : null;
    if (!chart) {
      if (active && active.chart !== document.activeElement) hide();
      return;
    }
    var m = model(chart);
    var t = m.times.length ? pointedTime(chart, m, event) : null;
    if (t === null) {
      if (active && active.chart === chart && chart !== document.activeElement) hide();
      return;
    }
    show(chart, nearest(m.times, t), false);
  });

  document.documentElement.addEventListener("mouseleave", function () {
    if (active && active.chart !== document.activeElement) hide();
  });

  document.addEventListener("focusin", function (event) {
    var chart = event.target;
    if (!chart.matches || !chart.matches(CHART)) return;
    var m = model(chart);
    if (!active || active.chart !== chart) show(chart, m.times.length - 1, true);
  });

  document.addEventListener("focusout", function (event) {
    if (active && active.chart === event.target) hide();
  });

  document.addEventListener("keydown", function (event) {
    var chart = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (!chart.matches || !chart.matches(CHART)) return;
    var m = model(chart);
    if (!m.times.length) return;
    var last = m.times.length - 1;
    var index = active && active.chart === chart ? active.index : last;
    var page = Math.max(1, Math.round(m.times.length / 10));
    switch (event.key) {
      case "ArrowLeft": index -= 1; break;
      case "ArrowRight": index += 1; break;
      case "PageUp": index -= page; break;
      case "PageDown": index += page; break;
      case "Home": index = 0; break;
      case "End": index = last; break;
      case "Escape": hide(); return;
      default: return;
    }
    event.preventDefault();
    show(chart, index, true);
  });

  // A chart replaced under the tooltip (the auto-refresh) takes its tooltip with it.
  new MutationObserver(function () {
    if (active && !active.chart.isConnected) hide();
  }).observe(document.documentElement, { childList: true, subtree: true });
})();
