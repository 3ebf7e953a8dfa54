// Draw each KPI card's trend from its own data table (the table stays for screen readers and
// is the whole figure without JavaScript). Readable without colour: one series, a labelled
// axis, points marked, the last value labelled in the title.
(function () {
  "use strict";
  function draw(figure) {
    var table = figure.querySelector("table.kpi-data");
    var canvas = figure.querySelector("canvas.kpi-chart");
    if (!table || !canvas || typeof Chart === "undefined") return;
    var labels = [], values = [];
    table.querySelectorAll("tbody tr").forEach(function (row) {
      var cells = row.querySelectorAll("td");
      labels.push(cells[0].textContent.slice(5));
      values.push(parseFloat(cells[1].dataset.value));
    });
    if (values.length < 2) return;
    canvas.hidden = false;
    table.classList.add("visually-hidden");
    var unit = (table.querySelector("caption").textContent.match(/\(([^)]*)\)/) || [, ""])[1];
    new Chart(canvas, {
      type: "line",
      data: { labels: labels, datasets: [{ label: unit, data: values, borderColor: "#1f5fbf", borderWidth: 2,
        pointStyle: "circle", pointRadius: 2, tension: 0.2, fill: false }] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        plugins: { legend: { display: false }, title: { display: true, text: table.querySelector("caption").textContent } },
        scales: {
          x: { title: { display: true, text: "day" }, ticks: { maxTicksLimit: 6 } },
          y: { title: { display: true, text: unit }, beginAtZero: unit === "%" }
        }
      }
    });
  }
  function all() { document.querySelectorAll("figure.kpi-trend").forEach(draw); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", all); else all();
})();
