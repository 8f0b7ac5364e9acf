// judgekit human study: keyboard shortcuts and time on the page for the rating form. The form works without it.
(function () {
  "use strict";
  var form = document.getElementById("rate");
  if (!form) { return; }
  var crits = Array.prototype.slice.call(form.querySelectorAll(".crit"));
  var cur = 0;

  function setCurrent(i) {
    cur = Math.max(0, Math.min(i, crits.length - 1));
    crits.forEach(function (c, j) { c.classList.toggle("current", j === cur); });
  }
  function firstUnset() {
    for (var i = 0; i < crits.length; i++) {
      if (!crits[i].querySelector("input:checked")) { return i; }
    }
    return 0;
  }
  if (crits.length) { setCurrent(firstUnset()); }
  crits.forEach(function (c, j) {
    c.addEventListener("mousedown", function () { setCurrent(j); });
    c.addEventListener("change", function () {
      if (j + 1 < crits.length) { setCurrent(j + 1); }
    });
  });

  // the unratable flag: dim the scores, ask for the reason
  var unratable = document.getElementById("unratable");
  var reason = document.getElementById("reason");
  function syncUnratable() {
    form.classList.toggle("is-unratable", unratable.checked);
    reason.required = unratable.checked;
  }
  if (unratable && reason) {
    unratable.addEventListener("change", function () {
      syncUnratable();
      if (unratable.checked) { reason.focus(); }
    });
    syncUnratable();
  }

  // time on the page (only while it is visible), added to any time carried over from a rejected submission
  var elapsed = document.getElementById("elapsed");
  var base = parseFloat(elapsed && elapsed.value) || 0;
  var spent = 0;
  var since = document.hidden ? null : performance.now();
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      if (since !== null) { spent += performance.now() - since; since = null; }
    } else { since = performance.now(); }
  });
  form.addEventListener("submit", function () {
    var ms = spent + (since !== null ? performance.now() - since : 0);
    if (elapsed) { elapsed.value = (base + ms / 1000).toFixed(1); }
  });

  function submit() {
    if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) { return; }
    var t = e.target;
    var tag = t && t.tagName;
    var typing = tag === "TEXTAREA" || (tag === "INPUT" && t.type === "text");
    if (e.key === "Escape" && location.hash.indexOf("#zoom") === 0) {
      location.hash = "_";
      return;
    }
    if (e.key === "Enter") {
      if (tag === "TEXTAREA" || tag === "A" || tag === "BUTTON") { return; }
      e.preventDefault();
      submit();
      return;
    }
    if (typing || !crits.length) { return; }
    if (/^[0-9]$/.test(e.key)) {
      var input = crits[cur].querySelector('input[value="' + e.key + '"]');
      if (input) {
        e.preventDefault();
        input.checked = true;
        input.dispatchEvent(new Event("change", { bubbles: true }));
        crits[cur].scrollIntoView({ block: "nearest" });
      }
    }
  });
})();
