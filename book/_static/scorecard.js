// Scorecard filter: buttons that show only the claims of one status (all / reproduced / differs / inconclusive /
// not run / dry run) and of one kind (printed number / theorem check / direction of an effect).
// Progressive enhancement: the page is complete without this script (every row visible); it only runs
// where the page has the empty <div id="claims-filter"> that tradeoffs.book writes into the scorecard.
// The choice is kept in the address (?status=differs&kind=direction), so a filtered view can be linked to.
(function () {
  "use strict";
  var STATUSES = [["all", "all"], ["reproduced", "reproduced"], ["differs", "differs"],
                  ["inconclusive", "inconclusive"], ["not-run", "not run"], ["dry-run", "dry run"]];
  var KINDS = [["all", "all kinds"], ["printed", "printed"], ["theorem", "theorem"], ["direction", "direction"]];

  function statusOf(text) {
    return text.trim().toLowerCase().replace(/\s+/g, "-");
  }

  // Every table with a "claim" and a "status" column, and the indices of its status and kind columns.
  function claimTables(root) {
    var found = [];
    root.querySelectorAll("table").forEach(function (table) {
      var head = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim().toLowerCase();
      });
      var column = head.indexOf("status");
      if (head.indexOf("claim") !== -1 && column !== -1) {
        found.push({ table: table, column: column, kindColumn: head.indexOf("kind") });
      }
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
        var kindCell = t.kindColumn === -1 ? null : tr.children[t.kindColumn];
        tr.dataset.kind = statusOf(kindCell ? kindCell.textContent : "");
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
      button.addEventListener("click", function () { current.status = s[0]; apply(true); });
      bar.appendChild(button);
      buttons[s[0]] = button;
    });
    var kindBar = document.createElement("div");
    kindBar.className = "claims-filter-bar";
    kindBar.setAttribute("role", "group");
    kindBar.setAttribute("aria-label", "Show claims by kind");
    var kindLabel = document.createElement("span");
    kindLabel.className = "claims-filter-label";
    kindLabel.textContent = "Kind:";
    kindBar.appendChild(kindLabel);
    var kindButtons = {};
    KINDS.forEach(function (k) {
      var count = k[0] === "all" ? rows.length : rows.filter(function (tr) { return tr.dataset.kind === k[0]; }).length;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "claims-filter-button claim-kind-" + k[0];
      button.dataset.kind = k[0];
      button.textContent = k[1] + " (" + count + ")";
      button.addEventListener("click", function () { current.kind = k[0]; apply(true); });
      kindBar.appendChild(button);
      kindButtons[k[0]] = button;
    });
    var empty = document.createElement("p");
    empty.className = "claims-filter-empty";
    empty.hidden = true;
    slot.appendChild(bar);
    slot.appendChild(kindBar);
    slot.appendChild(empty);
    var query = new URLSearchParams(window.location.search);
    var current = { status: query.get("status") || "all", kind: query.get("kind") || "all" };

    function apply(remember) {
      if (!buttons[current.status]) current.status = "all";
      if (!kindButtons[current.kind]) current.kind = "all";
      var status = current.status, kind = current.kind;
      rows.forEach(function (tr) {
        tr.hidden = (status !== "all" && tr.dataset.status !== status) || (kind !== "all" && tr.dataset.kind !== kind);
      });
      tables.forEach(function (t) {
        // A chapter with no claim of this status: hide its section (heading, counts and table).
        var visible = t.table.querySelectorAll("tbody tr:not([hidden])").length;
        var section = t.table.closest("section") || t.table;
        section.hidden = visible === 0;
      });
      var shown = rows.filter(function (tr) { return !tr.hidden; }).length;
      empty.hidden = shown !== 0;
      empty.textContent = shown ? "" : "No claim has the status \u201c" + status.replace("-", " ") + "\u201d" +
        (kind === "all" ? "" : " and the kind \u201c" + kind + "\u201d") + ".";
      Object.keys(buttons).forEach(function (key) {
        buttons[key].setAttribute("aria-pressed", String(key === status));
      });
      Object.keys(kindButtons).forEach(function (key) {
        kindButtons[key].setAttribute("aria-pressed", String(key === kind));
      });
      document.body.dataset.claimsFilter = status;
      document.body.dataset.claimsKind = kind;
      if (remember && window.history && window.history.replaceState) {
        var url = new URL(window.location.href);
        if (status === "all") url.searchParams.delete("status"); else url.searchParams.set("status", status);
        if (kind === "all") url.searchParams.delete("kind"); else url.searchParams.set("kind", kind);
        window.history.replaceState(null, "", url.toString());
      }
    }

    apply(false);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
