// The notifications bell (exceptions/notifications.html#bell): fetched once the page is up,
// then every 15 s and whenever something fires "allot:notifications" on the body, with HTMX
// swapping the bell alone (no page reload). Polled from here, not by an hx-trigger, so a
// page's own hx-trigger still means only what that page polls (e.g. a run it follows).
(function () {
  "use strict";
  var PERIOD_MS = 15000;
  function refresh() {
    var bell = document.getElementById("bell");
    if (!bell || !window.htmx || document.hidden) { return; }
    window.htmx.ajax("GET", bell.getAttribute("data-bell-url"), { target: "#bell", swap: "outerHTML" });
  }
  document.addEventListener("DOMContentLoaded", function () {
    refresh();
    window.setInterval(refresh, PERIOD_MS);
    document.body.addEventListener("allot:notifications", refresh);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) { refresh(); } });
  });
})();
