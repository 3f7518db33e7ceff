// Chart above the Session quality table: packet loss per session as the proxy saw it (RTCP receiver
// reports) and as the player logged it (LogPlay), the rows of this page.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("qos-chart-data").textContent);
  window.applianceQosChart = new Chart(document.getElementById("qos-chart-canvas"), {
    type: "bar",
    data: {labels: data.labels,
           datasets: [{label: "proxy: loss (%)", data: data.proxy_loss, backgroundColor: "#1f5fbf"},
                      {label: "player: loss (%)", data: data.player_loss, backgroundColor: "#b54708"}]},
    options: {animation: false, maintainAspectRatio: false, legend: {position: "bottom"},
              scales: {yAxes: [{ticks: {beginAtZero: true}, scaleLabel: {display: true, labelString: "packets lost (%)"}}],
                       xAxes: [{scaleLabel: {display: true, labelString: "session"}}]}}
  });
})();
