// Chart above a report table (the first 20 rows, as in the table): plays per row; per day also hours watched.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-chart-data").textContent);
  var labels = data.labels.map(function (l) { return l.length > 50 ? "…" + l.slice(-49) : l; });
  var config;
  if (data.group === "by-day") {  // oldest day on the left
    config = {type: "bar",
              data: {labels: labels.slice().reverse(),
                     datasets: [{label: "plays", data: data.plays.slice().reverse(), backgroundColor: "#1f5fbf",
                                 yAxisID: "plays", order: 2},
                                {label: "watched (hours)", type: "line", fill: false, data: data.hours.slice().reverse(),
                                 borderColor: "#067647", backgroundColor: "#067647", yAxisID: "hours", order: 1,
                                 pointRadius: 5, lineTension: 0}]},
              options: {scales: {yAxes: [
                {id: "plays", position: "left", ticks: {beginAtZero: true, precision: 0}, scaleLabel: {display: true, labelString: "plays"}},
                {id: "hours", position: "right", ticks: {beginAtZero: true}, scaleLabel: {display: true, labelString: "hours watched"},
                 gridLines: {drawOnChartArea: false}}]}}};
  } else {
    config = {type: "horizontalBar",
              data: {labels: labels, datasets: [{label: "plays", data: data.plays, backgroundColor: "#1f5fbf"}]},
              options: {scales: {xAxes: [{ticks: {beginAtZero: true, precision: 0}, scaleLabel: {display: true, labelString: "plays"}}]}}};
  }
  config.options.animation = false;
  config.options.maintainAspectRatio = false;
  config.options.legend = {display: data.group === "by-day", position: "bottom"};
  window.applianceReportChart = new Chart(document.getElementById("report-chart-canvas"), config);
})();
