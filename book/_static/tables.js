// Claims tables (every table with a "status" column) read well at any width, without changing their content:
// each cell learns its column's name (data-label, shown on a phone where a row becomes a card, tables.css) and
// the dotted ids in them get break points after their dots and underscores (<wbr>), so they wrap between words.
(function () {
  "use strict";

  function breakable(code) {
    if (code.querySelector("wbr") || !/[._]/.test(code.textContent)) return;
    var parts = code.textContent.split(/(?<=[._])/);
    code.textContent = "";
    parts.forEach(function (part, i) {
      if (i) code.appendChild(document.createElement("wbr"));
      code.appendChild(document.createTextNode(part));
    });
  }

  function setUp() {
    document.querySelectorAll(".bd-article table").forEach(function (table) {
      var head = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim();
      });
      if (!head.some(function (name) { return name.toLowerCase() === "status"; })) return;
      table.classList.add("claims-table");
      table.querySelectorAll("tbody tr").forEach(function (tr) {
        Array.prototype.forEach.call(tr.children, function (td, i) {
          if (head[i]) td.dataset.label = head[i];
        });
      });
      table.querySelectorAll("td code").forEach(breakable);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
