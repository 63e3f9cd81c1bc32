// The rule editor's Preview without a reload: the form is posted as its Preview button posts it,
// and the answer's form (with any field errors) and preview replace the page's. Without this
// script the button posts the form and the page comes back with the same two parts.
(function () {
  "use strict";

  function bind() {
    var form = document.getElementById("rule-form");
    var button = document.getElementById("preview-rule");
    if (!form || !button || !window.fetch || !window.DOMParser) return;
    button.addEventListener("click", function (event) {
      event.preventDefault();
      var data = new URLSearchParams(new FormData(form));
      data.append("preview", "1");
      var section = document.getElementById("rule-preview");
      button.disabled = true;
      section.setAttribute("aria-busy", "true");
      fetch(form.getAttribute("action"), {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "Accept": "text/html" }
      }).then(function (response) {
        return response.text();
      }).then(function (text) {
        var answer = new DOMParser().parseFromString(text, "text/html");
        var freshForm = answer.getElementById("rule-form");
        var freshPreview = answer.getElementById("rule-preview");
        if (!freshForm || !freshPreview) throw new Error("no preview in the answer");
        form.replaceWith(document.importNode(freshForm, true));
        section.replaceWith(document.importNode(freshPreview, true));
        bind();
        var problem = document.querySelector("#rule-form [aria-invalid=true]");
        (problem || document.getElementById("rule-preview-title")).focus({ preventScroll: !!problem });
        if (!problem) document.getElementById("rule-preview").scrollIntoView({ block: "start" });
      }).catch(function () {
        // Let the button post the form the plain way.
        button.disabled = false;
        section.removeAttribute("aria-busy");
        form.setAttribute("action", button.getAttribute("formaction") || form.getAttribute("action"));
        var plain = document.createElement("input");
        plain.type = "hidden";
        plain.name = "preview";
        plain.value = "1";
        form.appendChild(plain);
        form.submit();
      });
    });
  }

  bind();
})();
