// Relay CRM console: small behaviours on top of htmx. Pages work as plain forms without it.
(function () {
  "use strict";
  // The menu is open on wide screens (its summary is hidden there), a toggle on phones.
  var menu = document.querySelector("details.menu");
  if (menu && window.matchMedia("(min-width: 900px)").matches) { menu.open = true; }
  // A session that ended answers htmx requests with HX-Redirect to the sign-in page;
  // other errors show as a message instead of failing silently.
  document.body.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    var box = document.getElementById("htmx-error");
    if (!box) {
      box = document.createElement("p");
      box.id = "htmx-error";
      box.className = "error";
      box.setAttribute("role", "alert");
      document.getElementById("main").prepend(box);
    }
    box.textContent = (document.documentElement.lang === "ru" ? "Ошибка " : "Error ") + status;
  });
})();
