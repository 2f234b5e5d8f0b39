/* Staff pages' behaviour, as a file: the Content-Security-Policy runs no inline script (config/security.py).
   Each part acts only where its markup is on the page:
   - select[data-submit-on-change]: submits its form (the language switcher);
   - [data-print]: prints the page (the access slips);
   - #proctor: refreshes the proctor table from its status URL;
   - #import-progress, #export-progress: follows a roster import or an export job until it finishes, then
     reloads (the page then shows the report or the download). */
(function () {
  "use strict";

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("select[data-submit-on-change]") && target.form) { target.form.submit(); }
  });
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-print]")) { window.print(); }
  });

  function proctor(root) {
    var labels = JSON.parse(document.getElementById("proctor-labels").textContent);
    var seconds = parseInt(root.dataset.refreshSeconds, 10) || 15;
    function cell(tr, text, strong) {
      var td = document.createElement("td");
      if (strong) { var b = document.createElement("strong"); b.textContent = text; td.appendChild(b); } else { td.textContent = text; }
      tr.appendChild(td);
    }
    function show(data) {
      ["done", "invited", "to_keep"].forEach(function (key) {
        root.querySelector('[data-count="' + key + '"]').textContent = data[key];
      });
      root.querySelector(".proctor-keep-count").classList.toggle("is-zero", !data.to_keep);
      root.querySelector("[data-keep-banner]").hidden = !data.to_keep;
      root.querySelector("[data-refreshed]").textContent = data.refreshed_at;
      var body = root.querySelector("[data-rows]");
      if (!data.students.length) { return; }
      var rows = document.createDocumentFragment();
      data.students.forEach(function (s) {
        var tr = document.createElement("tr");
        tr.className = "status-" + s.status;
        cell(tr, s.student_no); cell(tr, s.name); cell(tr, labels[s.status] || "", s.status === "keep");
        rows.appendChild(tr);
      });
      body.replaceChildren(rows);
    }
    function poll() {
      fetch(root.dataset.statusUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) {
          if (!response.ok || response.redirected) { window.location.reload(); return null; }
          return response.json();
        })
        .then(function (data) { if (data) { show(data); } })
        .catch(function () { root.classList.add("is-stale"); })
        .finally(function () { window.setTimeout(poll, seconds * 1000); });
    }
    window.setTimeout(poll, seconds * 1000);
  }

  function importProgress(root) {
    var status = document.getElementById("job-status"), bar = document.getElementById("bar");
    var text = document.getElementById("progress-text"), d = root.dataset;
    (function poll() {
      fetch(d.progressUrl, {credentials: "same-origin"})
        .then(function (r) { return r.json(); }).then(function (p) {
          status.textContent = p.status_label;
          var pct = p.total ? Math.round(100 * p.done / p.total) : 0;
          bar.style.width = (p.total ? pct : 5) + "%";
          var errors = d.labelErrors ? " · " + d.labelErrors + " " + p.errors : "";
          text.textContent = p.total
            ? d.labelDone + " " + p.done + " / " + p.total + errors
            : d.labelRead + " " + p.done + errors;
          if (p.finished) { window.location.reload(); } else { setTimeout(poll, 1000); }
        }).catch(function () { setTimeout(poll, 3000); });
    })();
  }

  function start() {
    var root = document.getElementById("proctor");
    if (root && root.dataset.statusUrl) { proctor(root); }
    root = document.getElementById("import-progress") || document.getElementById("export-progress");
    if (root) { importProgress(root); }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
