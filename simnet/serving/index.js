"use strict";
// Sorting: click a column's header; a second click reverses.  Numbers sort as numbers.
function sortable(table) {
  table.querySelectorAll("th").forEach((th, column) => {
    th.addEventListener("click", () => {
      const body = table.tBodies[0];
      const down = th.dataset.order !== "up";
      table.querySelectorAll("th").forEach(h => delete h.dataset.order);
      th.dataset.order = down ? "up" : "down";
      const key = row => {
        const text = row.cells[column] ? row.cells[column].textContent : "";
        const number = parseFloat(text);
        return isNaN(number) ? text : number;
      };
      const rows = Array.from(body.rows).sort((a, b) => {
        const x = key(a), y = key(b);
        const order = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === "number" ? -1 : 1);
        return down ? order : -order;
      });
      rows.forEach(r => body.appendChild(r));
    });
  });
}
document.querySelectorAll("table.sortable").forEach(sortable);

function shown(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "number" && !Number.isInteger(value) ? value.toPrecision(4) : String(value);
}

// Statuses, steps and losses follow the runs: rows are updated in place (names as text, never as HTML).
async function refresh() {
  try {
    const runs = await (await fetch("/api/runs")).json();
    const body = document.querySelector("#runs tbody");
    const rows = new Map(Array.from(body.rows).filter(r => r.dataset.name !== undefined).map(r => [r.dataset.name, r]));
    for (const run of runs) {
      let row = rows.get(run.name);
      if (!row) {
        if (rows.size === 0) body.innerHTML = "";
        row = body.insertRow();
        row.dataset.name = run.name;
        const link = document.createElement("a");
        link.href = "/runs/" + run.name.split("/").map(encodeURIComponent).join("/") + "/";
        link.textContent = run.name;
        row.insertCell().appendChild(link);
        for (let i = 0; i < 4; i++) row.insertCell();
        rows.set(run.name, row);
      }
      row.cells[1].textContent = run.status;
      row.cells[1].className = "status " + run.status;
      row.cells[2].textContent = shown(run.last_step);
      row.cells[3].textContent = shown(run.loss);
      row.cells[4].textContent = shown(run.accuracy);
      [2, 3, 4].forEach(i => row.cells[i].className = "num");
    }
  } catch (e) { /* the server stopped: the page keeps what it showed */ }
}
setInterval(refresh, 2000);
