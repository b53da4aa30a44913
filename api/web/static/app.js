// Light progressive enhancement: every page works without it.
"use strict";
document.addEventListener("submit", function (event) {
  var question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});
document.addEventListener("click", function (event) {
  if (event.target.matches("[data-print]")) window.print();
});
