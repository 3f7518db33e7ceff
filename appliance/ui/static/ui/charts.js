// Dashboard charts (Chart.js, served from the django-chartjs package's static files). History comes from
// /dashboard/charts/?range=... (the same FilterSet and selector as /api/v1/history/); while "last hour" is
// shown, node.bandwidth events add live points, and a resync or a minute later the history is reloaded.
(function () {
  "use strict";
  var section = document.getElementById("charts");
  var statusEl = document.getElementById("charts-status");
  var LIVE_POINTS = 720;
  var REFRESH_MS = 60000;
  var COLORS = {out: "#1f5fbf", in: "#b54708", sessions: "#067647", players: "#7a5af8", bytes: "#1f5fbf",
                requests: "#98a2b3", errors: "#b42318"};
  var range = "1h";
  var STEP_MS = {"1h": 600000, "24h": 3 * 3600000, "7d": 86400000};  // x-axis tick spacing per range
  var nodes = {};  // node name -> latest {sessions, bandwidth_bps} from node.bandwidth events
  var charts = {};
  window.applianceCharts = charts;  // inspected by the browser tests

  function clock(ms) {
    var d = new Date(ms), pad = function (n) { return (n < 10 ? "0" : "") + n; };
    var time = pad(d.getHours()) + ":" + pad(d.getMinutes());
    return range === "1h" ? time : (d.getMonth() + 1) + "/" + d.getDate() + " " + time;
  }

  function series(label, color, extra) {
    return Object.assign({label: label, data: [], borderColor: color, backgroundColor: color, fill: false,
                          pointRadius: 2, borderWidth: 2, lineTension: 0}, extra || {});
  }

  function lineChart(id, datasets, yLabel, yMax) {
    var ticks = {beginAtZero: true};
    if (yMax) { ticks.max = yMax; }
    return new Chart(document.getElementById(id), {
      type: "scatter",
      data: {datasets: datasets.map(function (d) { return Object.assign(d, {showLine: true}); })},
      options: {animation: false, maintainAspectRatio: false, legend: {position: "bottom"},
                scales: {xAxes: [{type: "linear", ticks: {callback: clock, maxTicksLimit: 13}}],
                         yAxes: [{ticks: ticks, scaleLabel: {display: true, labelString: yLabel}}]},
                tooltips: {callbacks: {title: function (items) { return clock(items[0].xLabel); }}}}
    });
  }

  function barChart(id, datasets, xLabel) {
    return new Chart(document.getElementById(id), {
      type: "horizontalBar",
      data: {labels: [], datasets: datasets},
      options: {animation: false, maintainAspectRatio: false, legend: {display: datasets.length > 1, position: "bottom"},
                scales: {xAxes: [{ticks: {beginAtZero: true, precision: 0},
                                  scaleLabel: {display: true, labelString: xLabel}}]}}
    });
  }

  function shortUrl(url) {
    var path = String(url || "").replace(/^[a-z]+:\/\/[^/]*/i, "");
    return path.length > 40 ? "…" + path.slice(-39) : path || url;
  }

  function build() {
    charts.bandwidth = lineChart("chart-bandwidth", [
      series("to players", COLORS.out), series("from origins", COLORS.in),
      series("to players (live)", COLORS.out, {borderDash: [4, 3], pointRadius: 2})], "Mbit/s");
    charts.sessions = lineChart("chart-sessions", [
      series("sessions open", COLORS.sessions), series("players", COLORS.players),
      series("sessions (live)", COLORS.sessions, {borderDash: [4, 3], pointRadius: 2}),
      series("sessions started", COLORS.requests)], "sessions");
    charts.hitRatio = lineChart("chart-hit-ratio", [
      series("by bytes", COLORS.bytes), series("by sessions", COLORS.requests)], "%", 100);
    charts.topNow = barChart("chart-top-now", [{label: "open sessions", data: [], backgroundColor: COLORS.sessions}],
                             "open sessions");
    charts.topRange = barChart("chart-top-range", [{label: "MB sent", data: [], backgroundColor: COLORS.out}], "MB");
    charts.origins = barChart("chart-origins", [
      {label: "sessions", data: [], backgroundColor: COLORS.sessions},
      {label: "origin errors", data: [], backgroundColor: COLORS.errors}], "count");
  }

  function xy(points, key, scale) {
    return points.filter(function (p) { return p[key] !== null; })
      .map(function (p) { return {x: Date.parse(p.start), y: p[key] * scale}; });
  }

  function keepLive(dataset, after) {
    dataset.data = dataset.data.filter(function (pt) { return pt.x >= after; });
  }

  function render(body) {
    var points = body.points;
    var last = points.length ? Date.parse(points[points.length - 1].start) : 0;
    var bw = charts.bandwidth.data.datasets, ss = charts.sessions.data.datasets, hr = charts.hitRatio.data.datasets;
    bw[0].data = xy(points, "bandwidth_out_bps", 1e-6);
    bw[1].data = xy(points, "bandwidth_in_bps", 1e-6);
    ss[0].data = xy(points, "sessions", 1);
    ss[1].data = xy(points, "players", 1);
    ss[3].data = xy(points, "requests", 1);
    hr[0].data = xy(points, "hit_ratio_bytes", 100);
    hr[1].data = xy(points, "hit_ratio_requests", 100);
    if (range === "1h") { keepLive(bw[2], last); keepLive(ss[2], last); } else { bw[2].data = []; ss[2].data = []; }
    var step = STEP_MS[range] || 600000;
    var since = Math.floor(Date.parse(body.since) / step) * step, until = Math.ceil(Date.parse(body.until) / step) * step;
    [charts.bandwidth, charts.sessions, charts.hitRatio].forEach(function (chart) {
      var ticks = chart.options.scales.xAxes[0].ticks;
      ticks.min = since; ticks.max = until; ticks.stepSize = step;
    });
    charts.topNow.data.labels = body.top_now.map(function (r) { return shortUrl(r.url); });
    charts.topNow.data.datasets[0].data = body.top_now.map(function (r) { return r.sessions; });
    charts.topRange.data.labels = body.top_range.map(function (r) { return shortUrl(r.url); });
    charts.topRange.data.datasets[0].data = body.top_range.map(function (r) { return +(r.bytes_out / 1e6).toFixed(2); });
    charts.origins.data.labels = body.origins.map(function (r) { return r.origin; });
    charts.origins.data.datasets[0].data = body.origins.map(function (r) { return r.sessions; });
    charts.origins.data.datasets[1].data = body.origins.map(function (r) { return r.errors; });
    originTable(body.origins);
    Object.keys(charts).forEach(function (name) { charts[name].update(); });
    section.dataset.loaded = String(Date.now());
    statusEl.textContent = "";
  }

  function td(text, className) {
    var cell = document.createElement("td");
    cell.textContent = text; if (className) { cell.className = className; }
    return cell;
  }

  function originTable(origins) {
    var body = document.querySelector("#origin-health tbody");
    if (!origins.length) { body.replaceChildren(td("No origins configured.")); body.firstChild.colSpan = 9; return; }
    body.replaceChildren.apply(body, origins.map(function (o) {
      var probe = o.last_probe, state = !probe ? "unknown" : probe.ok ? "reachable" : "unreachable";
      var badge = document.createElement("span");
      badge.className = "badge badge-" + ({reachable: "online", unreachable: "offline"}[state] || "unknown");
      badge.textContent = state;
      var status = td(""); status.appendChild(badge);
      var tr = document.createElement("tr");
      tr.dataset.origin = o.origin;
      tr.replaceChildren(td(o.origin), status, td(o.sessions, "num"), td(o.errors, "num"),
        td(o.error_ratio === null ? "–" : (o.error_ratio * 100).toFixed(1) + " %", "num"), td(o.reconnects, "num"),
        td(o.latency_ms === null ? "–" : o.latency_ms.toFixed(1) + " ms", "num"), td(o.probes_failed, "num"),
        td(!probe ? "never" : clockFull(probe.at) + (probe.ok ? " (RTSP " + probe.status + ")" : " (" + (probe.error || "RTSP " + probe.status) + ")")));
      return tr;
    }));
  }

  function clockFull(iso) {
    var d = new Date(iso), pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" +
      pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  var loads = 0;  // a slow answer to an older load must not overwrite a newer one
  function load() {
    var mine = ++loads;
    return fetch(section.dataset.url + "?range=" + encodeURIComponent(range),
                 {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { if (!response.ok) { throw new Error(response.status); } return response.json(); })
      .then(function (body) { if (mine === loads) { render(body); } })
      .catch(function () { statusEl.textContent = "history unavailable"; });
  }

  function livePoint(chart, value) {
    var data = chart.data.datasets[2].data;
    data.push({x: Date.now(), y: value});
    if (data.length > LIVE_POINTS) { data.shift(); }
    chart.update();
  }

  document.addEventListener("live:event", function (event) {
    var data = event.detail;
    if (data.event !== "node.bandwidth" || range !== "1h" || !charts.bandwidth) { return; }
    nodes[data.payload.node] = data.payload;
    var bps = 0, sessions = 0;
    Object.keys(nodes).forEach(function (name) { bps += nodes[name].bandwidth_bps; sessions += nodes[name].sessions; });
    livePoint(charts.bandwidth, bps / 1e6);
    livePoint(charts.sessions, sessions);
  });
  document.addEventListener("live:resync", function () { if (charts.bandwidth) { load(); } });
  // sessions starting or ending change the top content and origin panels: reload soon, at most every 5 s
  var pending = null;
  document.addEventListener("live:event", function (event) {
    var kind = event.detail.event;
    if ((kind === "session.started" || kind === "session.ended") && !pending && charts.bandwidth) {
      pending = setTimeout(function () { pending = null; load(); }, 5000);
    }
  });

  section.querySelectorAll("button[data-range]").forEach(function (button) {
    button.addEventListener("click", function () {
      range = button.dataset.range;
      section.querySelectorAll("button[data-range]").forEach(function (b) { b.classList.toggle("active", b === button); });
      load();
    });
  });

  if (typeof Chart === "undefined") { statusEl.textContent = "charting library not loaded"; return; }
  build();
  load();
  setInterval(load, REFRESH_MS);
})();
