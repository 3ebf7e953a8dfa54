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
  // Fill rates before / after (simulation diff): grouped bars from the table beside them; "before"
  // is an outlined bar and "after" a solid one, so the two read apart without colour.
  function drawFill(figure) {
    var table = figure.nextElementSibling;
    var canvas = figure.querySelector("canvas");
    if (!table || !canvas || typeof Chart === "undefined" || canvas.dataset.drawn) return;
    var names = [], before = [], after = [];
    table.querySelectorAll("tbody tr").forEach(function (row) {
      names.push(row.dataset.name);
      var cells = row.querySelectorAll("td.num");  // before, after, change (the change is not drawn)
      before.push(parseFloat(cells[0].textContent.replace(",", ".")));
      after.push(parseFloat(cells[1].textContent.replace(",", ".")));
    });
    if (!names.length) return;
    canvas.dataset.drawn = "1";
    canvas.hidden = false;
    figure.style.height = Math.max(120, 28 * names.length + 60) + "px";
    new Chart(canvas, {
      type: "bar",
      data: { labels: names, datasets: [
        { label: "before (outlined)", data: before, backgroundColor: "rgba(0,0,0,0)", borderColor: "#5d6678", borderWidth: 2 },
        { label: "after (solid)", data: after, backgroundColor: "#1f5fbf", borderColor: "#1f5fbf", borderWidth: 2 }
      ] },
      options: {
        indexAxis: "y", animation: false, responsive: true, maintainAspectRatio: false,
        plugins: { title: { display: true, text: "Fill rate before and after (%)" } },
        scales: { x: { min: 0, max: 100, title: { display: true, text: "fill rate %" } } }
      }
    });
  }
  function all() {
    document.querySelectorAll("figure.kpi-trend").forEach(function (f) { if (!f.dataset.drawn) { f.dataset.drawn = "1"; draw(f); } });
    document.querySelectorAll("figure.fill-chart").forEach(drawFill);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", all); else all();
  document.addEventListener("htmx:afterSettle", all);
})();
