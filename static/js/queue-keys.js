/* Keyboard-first queue. On the queue page the selected case opens in the side panel
   (#case-panel): j/k move (the panel follows), n skips to the next case, a click on a row
   opens it, c claims, a accepts a substitution, o/s/f/d/e open the override / split / defer /
   dismiss / escalate form in the panel, x selects for a bulk action, / searches, Esc leaves a
   field, Enter opens the case's own page, ? shows the keys. Actions post through HTMX and the
   answer is the panel of the case to work next: the page never reloads.
   On a case's own page (no panel) the old behaviour stays: c and a post the form, o / e open
   the case page at that form. Without this file the queue is a plain table of links. */
(function () {
  "use strict";
  var current = -1;
  var pendingOpen = null;   // debounce timer of the panel following j/k
  var afterPanel = null;    // a form to open once the panel shows the selected case

  function panel() { return document.getElementById("case-panel"); }
  function hasHtmx() { return typeof window.htmx !== "undefined"; }
  function usePanel() { return panel() !== null && hasHtmx(); }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("table[data-queue-table] tbody tr[data-key]"));
  }

  function mark(index) {
    var all = rows();
    all.forEach(function (row) { row.classList.remove("selected"); });
    if (index >= 0 && index < all.length) { all[index].classList.add("selected"); }
    current = index;
  }

  function focusRow(index) {
    var all = rows();
    if (!all.length) return null;
    index = Math.max(0, Math.min(all.length - 1, index));
    mark(index);
    all[index].focus();
    return all[index];
  }

  function selectedRow() {
    var all = rows();
    return current >= 0 && current < all.length ? all[current] : null;
  }

  function listQuery() {
    var list = document.getElementById("rows");
    return list ? (list.getAttribute("data-query") || "") : "";
  }

  function panelCase() {
    var body = panel() && panel().querySelector("[data-case]");
    return body ? body.getAttribute("data-case") : "";
  }

  function openPanel(row, delay) {
    if (!usePanel() || !row) return;
    window.clearTimeout(pendingOpen);
    var go = function () {
      var query = listQuery();
      window.htmx.ajax("GET", row.dataset.panelUrl + (query ? "?" + query : ""), { source: panel(), target: panel(), swap: "innerHTML" });
    };
    if (delay) { pendingOpen = window.setTimeout(go, delay); } else { go(); }
  }

  function act(row, action) {
    window.clearTimeout(pendingOpen);
    window.htmx.ajax("POST", row.dataset.panelUrl + action + "/", {
      source: panel(), target: panel(), swap: "innerHTML",
      values: { version: row.dataset.version, list: listQuery() }
    });
  }

  // Open a form of the panel (details#panel-<name>) and put the cursor in its first field;
  // if the panel shows another case, open the selected one first.
  function openForm(row, name) {
    if (!row) return;
    if (panelCase() !== row.dataset.key) { afterPanel = name; openPanel(row, 0); return; }
    var section = document.getElementById("panel-" + name);
    if (!section) return;
    if (section.tagName === "DETAILS") section.open = true;
    var field = section.querySelector("input:not([type=hidden]), select, textarea");
    section.scrollIntoView({ block: "nearest" });
    if (field) field.focus();
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

  function isSubstitution(row) {
    return row.dataset.type === "substitution_proposed" || (" " + (row.dataset.reasons || "") + " ").indexOf(" substitution_proposed ") >= 0;
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target && (target.tagName === "INPUT" || target.tagName === "SELECT" || target.tagName === "TEXTAREA")) {
      if (event.key === "Escape" && usePanel()) {  // back to the list
        target.blur();
        var back = selectedRow();
        if (back) back.focus();
        event.preventDefault();
      }
      return;
    }
    var help = document.getElementById("key-help");
    if (help && help.open) return;
    var row = selectedRow();
    var panelled = usePanel();
    switch (event.key) {
      case "j": openPanel(focusRow(current + 1), 150); break;
      case "k": openPanel(focusRow(current < 0 ? 0 : current - 1), 150); break;
      case "n": openPanel(focusRow(current + 1), 0); break;
      case "Enter": if (row) { window.location.href = row.dataset.href; } else { return; } break;
      case "c":
        if (row && row.dataset.status === "open") {
          if (panelled) { act(row, "claim"); } else { post(row.dataset.claimUrl, { version: row.dataset.version }); }
        }
        break;
      case "a":
        if (row && isSubstitution(row) && row.dataset.status !== "awaiting_approval") {
          if (panelled) { act(row, "accept"); } else { post(row.dataset.claimUrl.replace(/claim\/$/, "accept/"), { version: row.dataset.version }); }
        } else if (row) {
          if (panelled) { openForm(row, "actions"); } else { window.location.href = row.dataset.href + "#actions"; }
        }
        break;
      case "o": if (row) { if (panelled) { openForm(row, "override"); } else { window.location.href = row.dataset.href + "#override"; } } break;
      case "e": if (row) { if (panelled) { openForm(row, "escalate"); } else { window.location.href = row.dataset.href + "#escalate"; } } break;
      case "s": if (row && panelled) { openForm(row, "split"); } else { return; } break;
      case "f": if (row && panelled) { openForm(row, "defer"); } else { return; } break;
      case "d": if (row && panelled) { openForm(row, "dismiss"); } else { return; } break;
      case "x": if (row) { var box = row.querySelector("input[type=checkbox]"); if (box) box.checked = !box.checked; } break;
      case "/": var search = document.querySelector("#filters input[name=q]"); if (search) { search.focus(); } else { return; } break;
      case "?": if (help && help.showModal) { help.showModal(); } break;
      default: return;
    }
    event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var el = event.target;
    if (el.matches && el.matches("[data-select-all]")) {
      rows().forEach(function (row) {
        var box = row.querySelector("input[name=selected]");
        if (box) box.checked = el.checked;
      });
      return;
    }
    // A click on a row (not on its link or checkbox) opens the case in the panel.
    if (!usePanel() || !el.closest) return;
    var row = el.closest("table[data-queue-table] tbody tr[data-key]");
    if (!row || el.closest("a, input, button, select, label")) return;
    mark(rows().indexOf(row));
    openPanel(row, 0);
  });

  // Opening a case page at "#override" etc. unfolds that action's form.
  function openFromHash() {
    if (!window.location.hash) return;
    var section = document.querySelector(window.location.hash);
    if (section && section.tagName === "DETAILS") section.open = true;
  }
  openFromHash();
  window.addEventListener("hashchange", openFromHash);

  // Refused actions (400 names the fields, 409 shows what changed, 403 says why) are a page
  // or a panel to show, not an error to drop.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status === 400 || status === 409 || status === 403) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var box = panel();
    if (box && event.detail.target === box) {
      // The panel shows a case: select its row (the next case after an action) and keep it in view.
      var key = panelCase();
      var all = rows();
      all.forEach(function (row) { row.classList.toggle("open-in-panel", row.dataset.key === key); });
      var index = -1;
      all.forEach(function (row, i) { if (row.dataset.key === key) index = i; });
      if (index >= 0) {
        mark(index);
        all[index].scrollIntoView({ block: "nearest" });
        var active = document.activeElement;
        if (!active || active === document.body || active.tagName === "TR" || !box.contains(active)) all[index].focus();
      }
      if (afterPanel) { var name = afterPanel; afterPanel = null; openForm(selectedRow(), name); }
      return;
    }
    // Rows replaced by HTMX (filters, sorting, tabs, pages): start again from the top.
    if (event.detail.target && event.detail.target.id === "rows") current = -1;
  });
})();
