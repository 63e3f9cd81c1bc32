// Copy buttons: <button data-copy-from="ID"> copies the text of the element with that id and
// says so next to it. Where the clipboard cannot be written (a page served over plain HTTP to
// another host), the text is selected for the reader to copy.
(function () {
  "use strict";

  function writeClipboard(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var copied = false;
      try {
        copied = document.execCommand("copy");
      } catch (error) {
        copied = false;
      }
      document.body.removeChild(area);
      if (copied) {
        resolve();
      } else {
        reject(new Error("the browser refused to copy"));
      }
    });
  }

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function report(button, message) {
    var status = document.getElementById("copy-status");
    if (status) {
      status.textContent = message;
    }
    button.setAttribute("data-copied", message);
    button.textContent = message.indexOf("Copied") === 0 ? "Copied" : "Copy";
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-from]");
    if (!button) {
      return;
    }
    var source = document.getElementById(button.getAttribute("data-copy-from"));
    if (!source) {
      return;
    }
    writeClipboard(source.textContent.trim()).then(
      function () {
        report(button, "Copied to the clipboard.");
      },
      function () {
        selectText(source);
        report(button, "Selected: press Ctrl+C (or ⌘C) to copy.");
      }
    );
  });
})();
