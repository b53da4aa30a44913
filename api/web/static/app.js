// Light progressive enhancement: every page works without it.
"use strict";
document.addEventListener("submit", function (event) {
  var question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});
document.addEventListener("click", function (event) {
  if (event.target.matches("[data-print]")) window.print();
});
// A table wider than its box scrolls sideways (.scroll); say so above it while it overflows.
function cueScrolls() {
  document.querySelectorAll(".scroll").forEach(function (box) {
    var cue = box.previousElementSibling, wide = box.scrollWidth > box.clientWidth + 1;
    var has = cue && cue.classList.contains("scroll-cue");
    if (wide && !has) {
      cue = document.createElement("p");
      cue.className = "scroll-cue";
      cue.textContent = document.body.getAttribute("data-scroll-cue");
      box.parentNode.insertBefore(cue, box);
    } else if (!wide && has) cue.remove();
  });
}
document.addEventListener("DOMContentLoaded", cueScrolls);
window.addEventListener("resize", cueScrolls);
// A simulation job's page (/policy/jobs/ID): poll its status each second; reload when it has finished,
// which shows its result or its error. Without scripts the page refreshes itself (<noscript> meta refresh).
// A finished job whose report is still being made: poll until it is there, then reload (its download).
function pollJob() {
  var box = document.getElementById("job-progress");
  var pending = document.getElementById("report-pending");
  if (!box && !pending) return;
  var url = (box || pending).getAttribute("data-status-url");
  function tick() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (job) {
        if (!job) { window.setTimeout(tick, 3000); return; }
        if (!box) {
          if (job.report_ready) window.location.reload();
          else window.setTimeout(tick, 1000);
          return;
        }
        document.getElementById("job-stage").textContent = job.status_text;
        document.getElementById("job-percent").textContent = job.percent;
        var bar = document.getElementById("job-bar");
        bar.value = job.percent;
        bar.textContent = job.percent + " %";
        if (job.finished_run) window.location.reload();
        else window.setTimeout(tick, 1000);
      })
      .catch(function () { window.setTimeout(tick, 3000); });
  }
  window.setTimeout(tick, 500);
}
document.addEventListener("DOMContentLoaded", pollJob);
