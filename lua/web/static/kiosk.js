// Kiosk pages start over at /kiosk after data-reset seconds without a touch, a key or a scroll;
// any of those starts the count again, so nobody loses a form while filling it in.
(function () {
  'use strict';
  var secs = parseInt(document.body.getAttribute('data-reset'), 10);
  if (!(secs > 0)) return;
  var timer;
  function arm() {
    clearTimeout(timer);
    timer = setTimeout(function () { window.location.assign('/kiosk'); }, secs * 1000);
  }
  ['pointerdown', 'keydown', 'input', 'scroll', 'touchstart'].forEach(function (e) {
    window.addEventListener(e, arm, { passive: true, capture: true });
  });
  arm();
})();
