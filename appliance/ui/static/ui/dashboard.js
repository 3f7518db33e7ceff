// Dashboard live panels: websocket feed of the "live" group (appliance.playback.consumers). Every time the
// socket opens (first time and after each reconnect) the panels are reloaded from /dashboard/live-state/,
// so events missed while disconnected do not leave stale rows. Other scripts (charts.js) listen to the
// "live:event" and "live:resync" document events.
(function () {
  "use strict";
  var table = document.querySelector("#live-sessions tbody");
  var splitTable = document.querySelector("#live-splits tbody");
  var nodeTable = document.querySelector("#nodes tbody");
  var status = document.getElementById("live-status");
  var activeCount = document.getElementById("active-sessions");
  var stateUrl = document.getElementById("dashboard-script").dataset.liveState;
  var RETRY_MS = [1000, 2000, 5000, 10000];
  var attempt = 0;
  var active = Number(activeCount.textContent) || 0;
  var queued = null;  // events that arrive while a resync is loading, applied on top of its result

  function bps(value) {
    var units = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s"], rate = Number(value) || 0, i = 0;
    while (rate >= 1000 && i < units.length - 1) { rate /= 1000; i += 1; }
    return (i === 0 ? rate.toFixed(0) : rate.toFixed(1)) + " " + units[i];
  }

  function bytes(value) {
    var units = ["bytes", "KB", "MB", "GB", "TB"], size = Number(value) || 0, i = 0;
    while (size >= 1024 && i < units.length - 1) { size /= 1024; i += 1; }
    return (i === 0 ? size.toFixed(0) : size.toFixed(1)) + " " + units[i];
  }

  function when(iso) {  // local "YYYY-MM-DD HH:MM:SS"
    if (!iso) { return ""; }
    var d = new Date(iso), pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function cell(text) { var td = document.createElement("td"); td.textContent = text == null ? "" : text; return td; }
  function num(text) { var td = cell(text); td.className = "num"; return td; }

  function badge(state) {
    var span = document.createElement("span");
    span.className = "badge badge-" + state; span.textContent = state;
    var td = document.createElement("td"); td.appendChild(span); return td;
  }

  function rowFor(key, body) {
    var rows = (body || table).querySelectorAll("tr[data-key]");
    for (var i = 0; i < rows.length; i++) { if (rows[i].dataset.key === key) { return rows[i]; } }
    return null;
  }

  function setActive(n) { active = Math.max(0, n); activeCount.textContent = String(active); }

  function sessionRow(p) {
    var tr = document.createElement("tr");
    tr.dataset.key = p.node + "/" + p.session_id;
    [p.node, p.session_id, p.url, p.player_addr, p.served_from, when(p.started_at)].forEach(function (v) { tr.appendChild(cell(v)); });
    return tr;
  }

  function splitCells(p) {
    return [cell(p.player_url || p.url), cell(p.node), num(p.players), badge(p.state),
            cell(p.origin_transport), num(p.reconnects), cell(when(p.started_at))];
  }

  function splitRow(p) {
    var tr = document.createElement("tr");
    tr.dataset.key = p.node + "/" + p.split_id;
    tr.replaceChildren.apply(tr, splitCells(p));
    return tr;
  }

  function nodeRow(n) {
    var tr = document.createElement("tr");
    tr.dataset.node = n.node;
    var sessions = num(n.sessions); sessions.classList.add("sessions");
    var bw = num(bps(n.bandwidth_bps)); bw.classList.add("bandwidth"); bw.dataset.bps = n.bandwidth_bps;
    var status = badge(n.status); status.className = "status-cell";
    if (n.cache_disk_full) {
      var full = document.createElement("span");
      full.className = "badge badge-disk-full"; full.textContent = "disk full";
      status.appendChild(document.createTextNode(" ")); status.appendChild(full);
    }
    var cache = cell(bytes(n.cache_bytes) + (n.cache_quota_bytes ? " / " + bytes(n.cache_quota_bytes) : " (no quota)"));
    if (n.cache_quota_bytes) {
      var meter = document.createElement("meter");
      meter.min = 0; meter.max = 1; meter.value = n.cache_use || 0;
      cache.appendChild(document.createTextNode(" ")); cache.appendChild(meter);
    }
    var seen = cell(n.last_seen ? when(n.last_seen) : "never"); seen.className = "last-seen";
    tr.replaceChildren(cell(n.node), status, sessions, bw, cache, num(bytes(n.spool_bytes)), seen);
    return tr;
  }

  function showDiskFull(nodes) {
    var full = nodes.filter(function (n) { return n.cache_disk_full; }).map(function (n) { return n.node; });
    var alert = document.getElementById("disk-full-alert");
    alert.querySelector(".nodes").textContent = full.join(", ");
    alert.hidden = full.length === 0;
  }

  function totalBandwidth() {
    var total = 0;
    nodeTable.querySelectorAll(".bandwidth").forEach(function (el) { total += Number(el.dataset.bps) || 0; });
    document.getElementById("bandwidth").textContent = bps(total);
  }

  function percent(ratio) { return Math.round((Number(ratio) || 0) * 100) + "%"; }

  function resync() {
    queued = [];
    return fetch(stateUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { if (!response.ok) { throw new Error(response.status); } return response.json(); })
      .then(function (state) {
        table.replaceChildren.apply(table, state.sessions.map(sessionRow));
        splitTable.replaceChildren.apply(splitTable, state.splits.map(splitRow));
        nodeTable.replaceChildren.apply(nodeTable, state.nodes.map(nodeRow));
        showDiskFull(state.nodes);
        setActive(state.summary.active_sessions);
        document.getElementById("bandwidth").textContent = bps(state.summary.bandwidth_bps);
        document.getElementById("hit-ratio").textContent = percent(state.summary.hit_ratio.ratio);
        document.getElementById("hit-ratio-requests").textContent = percent(state.summary.hit_ratio.ratio_requests);
        status.dataset.synced = String(Date.now());
        document.dispatchEvent(new CustomEvent("live:resync", {detail: state}));
      })
      .catch(function () { status.textContent = "live (reload the page if numbers look stale)"; })
      .then(function () { var events = queued || []; queued = null; events.forEach(apply); });
  }

  function apply(data) {
    var handler = handlers[data.event];
    if (handler) { handler(data.payload); }
    document.dispatchEvent(new CustomEvent("live:event", {detail: data}));
  }

  var handlers = {
    "session.started": function (p) {
      if (p.ended_at || rowFor(p.node + "/" + p.session_id)) { return; }
      table.insertBefore(sessionRow(p), table.firstChild);
      setActive(active + 1);
    },
    "session.ended": function (p) {
      var tr = rowFor(p.node + "/" + p.session_id);
      // counted live if its row is shown, or maybe when the table shows fewer rows than are live (capped)
      if (tr || (p.started_at && table.rows.length < active)) { setActive(active - 1); }
      if (tr) { tr.remove(); }
    },
    "sessions.active": function (p) { setActive(p.count); },
    "split.changed": function (p) {
      var tr = rowFor(p.node + "/" + p.split_id, splitTable);
      if (p.state === "ended") { if (tr) { tr.remove(); } return; }
      if (tr) { tr.replaceChildren.apply(tr, splitCells(p)); } else { splitTable.insertBefore(splitRow(p), splitTable.firstChild); }
    },
    "node.bandwidth": function (p) {
      var row = nodeTable.querySelector('tr[data-node="' + CSS.escape(p.node) + '"]');
      if (row) {
        row.querySelector(".sessions").textContent = p.sessions;
        var bw = row.querySelector(".bandwidth"); bw.dataset.bps = p.bandwidth_bps; bw.textContent = bps(p.bandwidth_bps);
        row.querySelector(".status-cell").replaceChildren(badge("online").firstChild);
        row.querySelector(".last-seen").textContent = when(new Date().toISOString());
      }
      totalBandwidth();
    },
    "cache.hit_ratio": function (p) {
      document.getElementById("hit-ratio").textContent = percent(p.ratio);
      document.getElementById("hit-ratio-requests").textContent = percent(p.ratio_requests);
    }
  };

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws/live/");
    socket.onopen = function () {
      attempt = 0; status.textContent = "live"; status.dataset.state = "open";
      resync();  // events sent before this socket existed were missed
    };
    socket.onmessage = function (message) {
      var data = JSON.parse(message.data);
      if (queued) { queued.push(data); } else { apply(data); }
    };
    socket.onclose = function (event) {
      status.dataset.state = "closed";
      if (event.code === 4401) { status.textContent = "log in again for live updates"; return; }
      if (event.code === 4403) { status.textContent = "your role does not include live updates"; return; }
      status.textContent = "reconnecting…";
      setTimeout(connect, RETRY_MS[Math.min(attempt++, RETRY_MS.length - 1)]);
    };
  }
  connect();
})();
