// Dashboard live panel: read-only websocket feed of the "live" group (appliance.playback.consumers).
(function () {
  "use strict";
  var table = document.querySelector("#live-sessions tbody");
  var splitTable = document.querySelector("#live-splits tbody");
  var status = document.getElementById("live-status");
  var activeCount = document.getElementById("active-sessions");
  var RETRY_MS = [1000, 2000, 5000, 10000];
  var attempt = 0;
  // The table shows at most APPLIANCE_DASHBOARD rows; the card counts every live session: the server's
  // count at page load, moved by each event, reset by the periodic "sessions.active" count.
  var active = Number(activeCount.textContent) || 0;

  function bps(value) {
    var units = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s"], rate = Number(value) || 0, i = 0;
    while (rate >= 1000 && i < units.length - 1) { rate /= 1000; i += 1; }
    return (i === 0 ? rate.toFixed(0) : rate.toFixed(1)) + " " + units[i];
  }

  function cell(text) { var td = document.createElement("td"); td.textContent = text == null ? "" : text; return td; }

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

  var handlers = {
    "session.started": function (p) {
      var key = p.node + "/" + p.session_id;
      if (rowFor(key)) { return; }
      var tr = document.createElement("tr");
      tr.dataset.key = key;
      [p.node, p.session_id, p.url, p.player_addr, p.served_from, p.started_at].forEach(function (v) { tr.appendChild(cell(v)); });
      table.insertBefore(tr, table.firstChild);
      setActive(active + 1);
    },
    "session.ended": function (p) {
      var tr = rowFor(p.node + "/" + p.session_id);
      // counted if its row is shown, or when it was live but beyond the rows the table shows
      if (tr || (p.started_at && table.rows.length < active)) { setActive(active - 1); }
      if (tr) { tr.remove(); }
    },
    "sessions.active": function (p) { setActive(p.count); },
    "split.changed": function (p) {
      // One row per live split (URL, node, players, state, origin transport, reconnects, since).
      var key = p.node + "/" + p.split_id;
      var tr = rowFor(key, splitTable);
      if (p.state === "ended") { if (tr) { tr.remove(); } return; }
      var cells = [cell(p.player_url || p.url), cell(p.node), cell(p.players), badge(p.state),
                   cell(p.origin_transport), cell(p.reconnects), cell(p.started_at)];
      cells[2].className = "num"; cells[5].className = "num";
      if (!tr) {
        tr = document.createElement("tr");
        tr.dataset.key = key;
        splitTable.insertBefore(tr, splitTable.firstChild);
      }
      tr.replaceChildren.apply(tr, cells);
    },
    "node.bandwidth": function (p) {
      var row = document.querySelector('#nodes tr[data-node="' + CSS.escape(p.node) + '"]');
      if (row) {
        row.querySelector(".sessions").textContent = p.sessions;
        var bw = row.querySelector(".bandwidth"); bw.dataset.bps = p.bandwidth_bps; bw.textContent = bps(p.bandwidth_bps);
      }
      var total = 0;
      document.querySelectorAll("#nodes .bandwidth").forEach(function (el) { total += Number(el.dataset.bps) || 0; });
      document.getElementById("bandwidth").textContent = bps(total);
    },
    "cache.hit_ratio": function (p) {
      document.getElementById("hit-ratio").textContent = Math.round(p.ratio * 100) + "%";
    }
  };

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws/live/");
    socket.onopen = function () { attempt = 0; status.textContent = "live"; status.dataset.state = "open"; };
    socket.onmessage = function (message) {
      var data = JSON.parse(message.data);
      var handler = handlers[data.event];
      if (handler) { handler(data.payload); }
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
