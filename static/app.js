// Sportello: the little the portal does in the browser beyond htmx. No inline scripts or
// handlers anywhere (the Content-Security-Policy forbids them): everything is wired here.
(function () {
  "use strict";

  // A <dialog data-modal> swapped into the page opens as a modal: the rest of the page is
  // inert until Annulla, Conferma or Esc. Closing it empties its slot and gives the focus back
  // to what opened it. The browser does that by itself only for the same <dialog>: an answer
  // inside the dialog (an error, "Password cambiata") swaps in a new <dialog>, opened while the
  // focus was on the body (the old dialog's button went with it), which would give the focus
  // back to the body. So the opener is the element whose htmx request brought the first dialog.
  var requester = null;  // the element of htmx's latest request
  var opener = null;     // what opened the dialog on screen
  document.addEventListener("htmx:beforeRequest", function (event) { requester = event.detail.elt; });

  function openDialogs(root) {
    root.querySelectorAll("dialog[data-modal]").forEach(function (dialog) {
      if (dialog.open) return;
      if (requester && !requester.closest("dialog")) opener = requester;
      dialog.addEventListener("close", function () {
        if (!dialog.isConnected) return;  // replaced by a new dialog, not closed
        dialog.remove();
        if (opener && opener.isConnected) opener.focus();
        opener = null;
      });
      dialog.showModal();
    });
  }

  // A swapped fragment's [data-announce] text (a chart's new period) goes to the page's live
  // region, which stays in place: one swapped in already holding its text is not read out.
  document.addEventListener("htmx:afterSettle", function (event) {
    var said = event.detail.elt.querySelector("[data-announce]");
    var announcer = document.getElementById("announcer");
    if (said && announcer) announcer.textContent = said.textContent;
  });

  document.addEventListener("htmx:load", function (event) {
    openDialogs(event.detail.elt.parentElement || document);
  });

  // Tab and Shift+Tab go round the open dialog's controls, as the WAI-ARIA dialog pattern
  // asks: the browser would otherwise let the focus leave the page's content for its own
  // toolbar after the last control, and a keyboard user would lose the dialog.
  var TABBABLE = "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), " +
                 "select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Tab") return;
    var dialog = document.querySelector("dialog[data-modal][open]");
    if (!dialog) return;
    var controls = Array.prototype.filter.call(dialog.querySelectorAll(TABBABLE), function (element) {
      return element.getClientRects().length > 0;
    });
    if (!controls.length) return;
    var first = controls[0], last = controls[controls.length - 1];
    var inside = dialog.contains(document.activeElement);
    if (event.shiftKey && (document.activeElement === first || !inside)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
      event.preventDefault();
      first.focus();
    }
  });

  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      var dialog = closer.closest("dialog");
      if (dialog) dialog.close();
    }
  });

  // A file over the server's limit is refused next to its field as soon as it is chosen, and
  // its form is not sent: a request over the portal's size limit would get the error page, and
  // the customer would lose what they typed. The limits and the words are the field's data-
  // attributes, written from the constants the server checks (forms.checked_upload).
  function fileProblem(input) {
    var files = Array.prototype.slice.call(input.files || []);
    var eachLimit = Number(input.dataset.maxBytes), totalLimit = Number(input.dataset.maxTotalBytes);
    var tooLarge = files.filter(function (file) { return file.size > eachLimit; })[0];
    if (tooLarge) return (input.multiple ? tooLarge.name + ": " : "") + input.dataset.tooLarge;
    var total = files.reduce(function (sum, file) { return sum + file.size; }, 0);
    if (totalLimit && total > totalLimit) return input.dataset.totalTooLarge;
    return "";
  }

  function checkFiles(input) {
    var problem = fileProblem(input);
    var error = document.getElementById("err-" + input.id);  // the field's error line (forms.field)
    if (error) {
      error.textContent = problem;
      error.hidden = !problem;
    }
    if (problem) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    return !problem;
  }

  var CHECKED_FILES = "input[type=file][data-max-bytes]";
  document.addEventListener("change", function (event) {
    if (event.target.matches(CHECKED_FILES)) checkFiles(event.target);
  });
  // In the capture phase, before htmx's own listener on the form would send it.
  document.addEventListener("submit", function (event) {
    var refused = Array.prototype.filter.call(event.target.querySelectorAll(CHECKED_FILES), function (input) {
      return !checkFiles(input);
    });
    if (refused.length) {
      event.preventDefault();
      event.stopPropagation();
      refused[0].focus();
    }
  }, true);

  // A request that fails (server error, network down) says so instead of doing nothing.
  function showError(text) {
    var box = document.getElementById("connection-error");
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
    window.setTimeout(function () { box.hidden = true; }, 8000);
  }
  var italian = document.documentElement.lang !== "en";
  document.addEventListener("htmx:responseError", function () {
    showError(italian ? "La richiesta non è andata a buon fine: riprova o ricarica la pagina."
                      : "The request did not succeed: try again or reload the page.");
  });
  document.addEventListener("htmx:sendError", function () {
    showError(italian ? "Connessione assente: controlla la rete e riprova."
                      : "No connection: check the network and try again.");
  });
})();
