// Relay CRM console: draws the Telegram deep link as a QR code with the vendored
// qrcode-generator. Without either script the page still shows the link itself.
(function () {
  "use strict";
  function draw(root) {
    if (typeof window.qrcode !== "function") { return; }
    var scope = root || document;
    var boxes = Array.prototype.slice.call(scope.querySelectorAll ? scope.querySelectorAll("[data-qr]") : []);
    // htmx announces each new element itself: the box may be the element announced.
    if (scope.matches && scope.matches("[data-qr]")) { boxes.push(scope); }
    for (var i = 0; i < boxes.length; i += 1) {
      var box = boxes[i];
      if (box.getAttribute("data-drawn")) { continue; }
      var code = window.qrcode(0, "M");
      code.addData(box.getAttribute("data-qr"));
      code.make();
      // The SVG is made of the code's modules only: no text of the page goes into it.
      box.innerHTML = code.createSvgTag({ cellSize: 4, margin: 4, scalable: true });
      box.setAttribute("data-drawn", "1");
      box.hidden = false;
    }
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  // A link fetched by htmx (the button without a page reload) is drawn once it is in place.
  document.addEventListener("htmx:load", function (event) { draw(event.target); });
})();
