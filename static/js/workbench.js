/* Shortage workbench: as the planner lowers and raises lines, show the quantity freed by
   cuts, given to lines and still unassigned, and refuse to commit more than is there. */
(function () {
  "use strict";
  var form = document.getElementById("workbench");
  if (!form) return;
  var available = parseFloat(form.dataset.available) || 0;
  var inputs = Array.prototype.slice.call(form.querySelectorAll("input[type=number][data-here]"));

  function fmt(n) { return (Math.round(n * 1000) / 1000).toString(); }

  function update() {
    var freed = 0, given = 0, total = 0;
    inputs.forEach(function (input) {
      var here = parseFloat(input.dataset.here) || 0;
      var now = input.value === "" ? here : parseFloat(input.value);
      if (isNaN(now)) now = here;
      if (now < here) freed += here - now; else given += now - here;
      total += now;
      input.closest("tr").classList.toggle("highlight", now !== here);
    });
    var unassigned = available - total;
    document.getElementById("freed").textContent = fmt(freed);
    document.getElementById("given").textContent = fmt(given);
    var left = document.getElementById("unassigned");
    left.textContent = fmt(unassigned);
    left.classList.toggle("error", unassigned < 0);
    var bar = document.getElementById("assigned-bar");
    bar.style.width = Math.min(100, available > 0 ? (total / available) * 100 : 0) + "%";
    bar.classList.toggle("over", unassigned < 0);
    document.getElementById("commit").disabled = unassigned < 0 || (freed === 0 && given === 0);
    document.getElementById("balance-note").textContent = unassigned < 0
      ? "You are giving " + fmt(-unassigned) + " more than there is: lower another line first."
      : "Lower a line to free quantity; raise another to give it. You cannot give more than is freed plus unassigned.";
  }

  inputs.forEach(function (input) { input.addEventListener("input", update); });
  update();
})();
