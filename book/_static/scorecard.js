// Scorecard filter: buttons that show only the claims of one status (all / reproduced / differs / not run).
// Progressive enhancement: the page is complete without this script (every row visible); it only runs
// where the page has the empty <div id="claims-filter"> that tradeoffs.book writes into the scorecard.
// The choice is kept in the address (?status=differs), so a filtered view can be linked to.
(function () {
  "use strict";
  var STATUSES = [["all", "all"], ["reproduced", "reproduced"], ["differs", "differs"], ["not-run", "not run"]];

  function statusOf(text) {
    return text.trim().toLowerCase().replace(/\s+/g, "-");
  }

  // Every table with a "claim" and a "status" column, and the index of its status column.
  function claimTables(root) {
    var found = [];
    root.querySelectorAll("table").forEach(function (table) {
      var head = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim().toLowerCase();
      });
      var column = head.indexOf("status");
      if (head.indexOf("claim") !== -1 && column !== -1) found.push({ table: table, column: column });
    });
    return found;
  }

  function setUp() {
    var slot = document.getElementById("claims-filter");
    if (!slot) return;
    var root = slot.closest("article") || document.body;
    var tables = claimTables(root);
    var rows = [];
    tables.forEach(function (t) {
      t.table.querySelectorAll("tbody tr").forEach(function (tr) {
        var cell = tr.children[t.column];
        var status = statusOf(cell ? cell.textContent : "");
        tr.dataset.status = status;
        if (cell) cell.classList.add("claim-status", "claim-" + status);
        rows.push(tr);
      });
    });

    var bar = document.createElement("div");
    bar.className = "claims-filter-bar";
    bar.setAttribute("role", "group");
    bar.setAttribute("aria-label", "Show claims by status");
    var label = document.createElement("span");
    label.className = "claims-filter-label";
    label.textContent = "Show claims:";
    bar.appendChild(label);
    var buttons = {};
    STATUSES.forEach(function (s) {
      var count = s[0] === "all" ? rows.length : rows.filter(function (tr) { return tr.dataset.status === s[0]; }).length;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "claims-filter-button claim-" + s[0];
      button.dataset.status = s[0];
      button.textContent = s[1] + " (" + count + ")";
      button.addEventListener("click", function () { apply(s[0], true); });
      bar.appendChild(button);
      buttons[s[0]] = button;
    });
    var empty = document.createElement("p");
    empty.className = "claims-filter-empty";
    empty.hidden = true;
    slot.appendChild(bar);
    slot.appendChild(empty);

    function apply(status, remember) {
      if (!buttons[status]) status = "all";
      rows.forEach(function (tr) { tr.hidden = status !== "all" && tr.dataset.status !== status; });
      tables.forEach(function (t) {
        // A chapter with no claim of this status: hide its section (heading, counts and table).
        var visible = t.table.querySelectorAll("tbody tr:not([hidden])").length;
        var section = t.table.closest("section") || t.table;
        section.hidden = visible === 0;
      });
      var shown = rows.filter(function (tr) { return !tr.hidden; }).length;
      empty.hidden = shown !== 0;
      empty.textContent = shown ? "" : "No claim has the status \u201c" + status.replace("-", " ") + "\u201d.";
      Object.keys(buttons).forEach(function (key) {
        buttons[key].setAttribute("aria-pressed", String(key === status));
      });
      document.body.dataset.claimsFilter = status;
      if (remember && window.history && window.history.replaceState) {
        var url = new URL(window.location.href);
        if (status === "all") url.searchParams.delete("status"); else url.searchParams.set("status", status);
        window.history.replaceState(null, "", url.toString());
      }
    }

    apply(new URLSearchParams(window.location.search).get("status") || "all", false);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
