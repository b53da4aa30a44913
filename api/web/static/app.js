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
