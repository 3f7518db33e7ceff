// Chart above a report table: plays and hours watched per row (the first 20 rows, as in the table).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-chart-data").textContent);
  var byDay = data.group === "by-day";
  var labels = byDay ? data.labels.slice().reverse() : data.labels;
  function ordered(values) { return byDay ? values.slice().reverse() : values; }
  window.applianceReportChart = new Chart(document.getElementById("report-chart-canvas"), {
    type: byDay ? "bar" : "horizontalBar",
    data: {labels: labels.map(function (l) { return l.length > 50 ? "…" + l.slice(-49) : l; }),
           datasets: [{label: "plays", data: ordered(data.plays), backgroundColor: "#1f5fbf", xAxisID: byDay ? undefined : "plays", yAxisID: byDay ? "plays" : undefined},
                      {label: "watched (hours)", data: ordered(data.hours), backgroundColor: "#067647", xAxisID: byDay ? undefined : "hours", yAxisID: byDay ? "hours" : undefined}]},
    options: {animation: false, maintainAspectRatio: false, legend: {position: "bottom"},
              scales: byDay
                ? {yAxes: [{id: "plays", position: "left", ticks: {beginAtZero: true, precision: 0}, scaleLabel: {display: true, labelString: "plays"}},
                           {id: "hours", position: "right", ticks: {beginAtZero: true}, scaleLabel: {display: true, labelString: "hours"}, gridLines: {drawOnChartArea: false}}]}
                : {xAxes: [{id: "plays", position: "bottom", ticks: {beginAtZero: true, precision: 0}, scaleLabel: {display: true, labelString: "plays"}},
                           {id: "hours", position: "top", ticks: {beginAtZero: true}, scaleLabel: {display: true, labelString: "hours"}, gridLines: {drawOnChartArea: false}}]}}
  });
})();
