/* The student portal's questionnaire (screening/portal/answer.html), one part at a time, as a file: the
   Content-Security-Policy runs no inline script (config/security.py). The form carries its words:
   data-part-label ("Part {n} of {total}"), data-sending, and data-missing when it came back with blank items. */
(function () {
  "use strict";
  var form = document.getElementById("answers");
  if (!form) { return; }
  var steps = Array.prototype.slice.call(form.querySelectorAll(".step"));
  var text = document.getElementById("progress-text"), bar = document.getElementById("progress-bar");
  var label = form.dataset.partLabel;
  var current = 0;
  if (form.hasAttribute("data-missing")) {
    steps.forEach(function (s, i) { if (s.querySelector(".item.missing") && current === 0 && i > 0 && !steps[0].querySelector(".item.missing")) current = i; });
  }
  function chosen(name) { return form.querySelector('input[name="' + name + '"]:checked'); }
  function refreshConditional() {
    form.querySelectorAll(".item[data-ask-if]").forEach(function (item) {
      var asked = item.getAttribute("data-ask-if").split(" ").some(function (name) {
        var c = chosen(name); return c && c.hasAttribute("data-positive");
      });
      item.hidden = !asked;
      item.querySelectorAll("input").forEach(function (input) { if (!asked) input.checked = false; });
    });
  }
  function complete(step) {
    var ok = true;
    step.querySelectorAll(".item").forEach(function (item) {
      var missing = !item.hidden && !chosen(item.getAttribute("data-name"));
      item.classList.toggle("missing", missing);
      if (missing) ok = false;
    });
    step.querySelector(".step-error").hidden = ok;
    if (!ok) { var first = step.querySelector(".item.missing"); if (first) first.scrollIntoView({behavior: "smooth", block: "center"}); }
    return ok;
  }
  function show(index) {
    steps.forEach(function (s, i) { s.hidden = i !== index; });
    current = index;
    text.textContent = label.replace("{n}", index + 1).replace("{total}", steps.length);
    bar.value = index + 1;
    window.scrollTo(0, 0);
  }
  form.addEventListener("change", function (e) {
    refreshConditional();
    var item = e.target.closest(".item"); if (item) item.classList.remove("missing");
  });
  form.querySelectorAll(".js-next").forEach(function (b) { b.addEventListener("click", function () { if (complete(steps[current])) show(current + 1); }); });
  form.querySelectorAll(".js-back").forEach(function (b) { b.addEventListener("click", function () { show(current - 1); }); });
  form.addEventListener("submit", function (e) {
    for (var i = 0; i < steps.length; i++) { if (!complete(steps[i])) { show(i); complete(steps[i]); e.preventDefault(); return; } }
    var button = form.querySelector(".js-submit");
    if (button.disabled) { e.preventDefault(); return; }
    button.disabled = true; button.textContent = form.dataset.sending;
  });
  refreshConditional();
  show(current);
})();
