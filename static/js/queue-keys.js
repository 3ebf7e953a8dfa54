/* Keyboard navigation of an exception queue: j/k move, Enter opens, c claims, a accept,
   o override, e escalate (open the exception at that form), x selects, ? shows help.
   Without this file the queue is a plain table of links. */
(function () {
  "use strict";
  var current = -1;

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("table[data-queue-table] tbody tr[data-key]"));
  }

  function focusRow(index) {
    var all = rows();
    if (!all.length) return;
    index = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (row) { row.classList.remove("selected"); });
    all[index].classList.add("selected");
    all[index].focus();
    current = index;
  }

  function selectedRow() {
    var all = rows();
    return current >= 0 && current < all.length ? all[current] : null;
  }

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function post(url, data) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = url;
    var fields = Object.assign({ csrfmiddlewaretoken: csrfToken() }, data);
    Object.keys(fields).forEach(function (name) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = fields[name];
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target && (target.tagName === "INPUT" || target.tagName === "SELECT" || target.tagName === "TEXTAREA")) return;
    var help = document.getElementById("key-help");
    var row = selectedRow();
    switch (event.key) {
      case "j": focusRow(current + 1); break;
      case "k": focusRow(current < 0 ? 0 : current - 1); break;
      case "Enter": if (row) { window.location.href = row.dataset.href; } else { return; } break;
      case "c": if (row && row.dataset.status === "open") { post(row.dataset.claimUrl, { version: row.dataset.version }); } break;
      case "a":
        if (row && row.dataset.type === "substitution_proposed" && row.dataset.status !== "awaiting_approval") {
          post(row.dataset.claimUrl.replace(/claim\/$/, "accept/"), { version: row.dataset.version });
        } else if (row) { window.location.href = row.dataset.href + "#actions"; }
        break;
      case "o": if (row) { window.location.href = row.dataset.href + "#override"; } break;
      case "e": if (row) { window.location.href = row.dataset.href + "#escalate"; } break;
      case "x": if (row) { var box = row.querySelector("input[type=checkbox]"); if (box) box.checked = !box.checked; } break;
      case "?": if (help && help.showModal) { help.showModal(); } break;
      default: return;
    }
    event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    if (event.target.matches && event.target.matches("[data-select-all]")) {
      rows().forEach(function (row) {
        var box = row.querySelector("input[name=selected]");
        if (box) box.checked = event.target.checked;
      });
    }
  });

  // Opening an exception at "#override" etc. unfolds that action's form.
  function openFromHash() {
    if (!window.location.hash) return;
    var section = document.querySelector(window.location.hash);
    if (section && section.tagName === "DETAILS") section.open = true;
  }
  openFromHash();
  window.addEventListener("hashchange", openFromHash);

  // Boosted action forms: a refused action (400 names the fields, 409 shows what changed)
  // is a page to show, not an error to drop.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status === 400 || status === 409 || status === 403) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // Rows replaced by HTMX (filters, pagination): start again from the top.
  document.addEventListener("htmx:afterSwap", function () { current = -1; });
})();
