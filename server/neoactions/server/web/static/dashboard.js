// Live views of the neoactions dashboard: Server-Sent Events into the page.
// Every value goes in through textContent, never as markup, so event data stays inert.
"use strict";

(function () {
  function cell(text, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function statusCell(status) {
    var td = document.createElement("td");
    var span = document.createElement("span");
    span.className = "status s-" + status.replace(/[^a-z_]/g, "");
    span.textContent = status;
    td.appendChild(span);
    return td;
  }

  function linkCell(href, text, className) {
    var td = document.createElement("td");
    var a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    if (className) a.className = className;
    td.appendChild(a);
    return td;
  }

  function upsertRow(table, u) {
    if (!u.id) return;
    var body = table.tBodies[0];
    var row = null;
    for (var i = 0; i < body.rows.length; i++) {
      if (body.rows[i].getAttribute("data-id") === u.id) { row = body.rows[i]; break; }
    }
    var fresh = document.createElement("tr");
    fresh.setAttribute("data-id", u.id);
    fresh.appendChild(linkCell("/executions/" + encodeURIComponent(u.id), u.id.slice(-12), "mono"));
    fresh.appendChild(u.action ? linkCell("/actions/" + encodeURIComponent(u.action), u.action) : cell("(inline)"));
    fresh.appendChild(statusCell(u.status || u.kind));
    fresh.appendChild(cell(String(u.attempt || (row ? row.cells[3].textContent : 0))));
    fresh.appendChild(cell(row ? row.cells[4].textContent : u.time));
    fresh.appendChild(cell(u.error || "", "err"));
    if (row) {
      body.replaceChild(fresh, row);
    } else {
      body.insertBefore(fresh, body.firstChild);
      var empty = document.getElementById("empty");
      if (empty) empty.hidden = true;
    }
  }

  function appendLine(list, u) {
    var li = document.createElement("li");
    var text = u.time + " " + u.kind;
    if (u.attempt) text += " (attempt " + u.attempt + ")";
    if (u.message) text += ": " + u.message;
    if (u.error) text += ": " + u.error;
    li.textContent = text;
    list.appendChild(li);
    var status = document.getElementById("exec-status");
    if (status && u.status) {
      status.textContent = u.status;
      status.className = "status s-" + u.status.replace(/[^a-z_]/g, "");
    }
  }

  function start(el) {
    var url = el.getAttribute("data-stream");
    if (!url || !window.EventSource) return;
    var mode = el.getAttribute("data-mode");
    var table = mode === "list" ? document.getElementById(el.getAttribute("data-table")) : null;
    var badge = document.getElementById("live-state");
    var source = new EventSource(url);
    source.addEventListener("open", function () { if (badge) badge.hidden = false; });
    source.addEventListener("error", function () { if (badge) badge.hidden = true; });
    source.addEventListener("update", function (msg) {
      var u;
      try { u = JSON.parse(msg.data); } catch (e) { return; }
      if (table) upsertRow(table, u); else appendLine(el, u);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var streams = document.querySelectorAll("[data-stream]");
    for (var i = 0; i < streams.length; i++) start(streams[i]);
  });
})();
