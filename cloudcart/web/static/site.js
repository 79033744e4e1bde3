// Cloudcart web: progressive enhancement only; every page works without it.
// - search suggestions as you type (GET /api/search/suggest, the public API);
// - a confirmation before destructive forms (data-confirm);
// - the CSRF token from the page's meta tag on any fetch that changes state.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }
  window.cloudcart = { csrfToken: csrfToken };

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      var args = arguments;
      clearTimeout(timer);
      timer = setTimeout(function () { fn.apply(null, args); }, ms);
    };
  }

  function setUpSuggest(input) {
    var list = document.getElementById(input.getAttribute("aria-controls"));
    if (!list) return;
    var active = -1;
    var latest = 0;

    function close() {
      list.hidden = true;
      list.textContent = "";
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function choose(text) {
      input.value = text;
      close();
      input.form.submit();
    }

    function highlight(index) {
      var items = list.querySelectorAll("li");
      items.forEach(function (li, i) { li.setAttribute("aria-selected", i === index ? "true" : "false"); });
      active = index;
      if (index >= 0 && items[index]) input.setAttribute("aria-activedescendant", items[index].id);
    }

    var fetchSuggestions = debounce(function (query) {
      var ticket = ++latest;
      fetch(input.dataset.suggest + "?limit=8&q=" + encodeURIComponent(query), {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      })
        .then(function (r) { return r.ok ? r.json() : { suggestions: [] }; })
        .then(function (body) {
          if (ticket !== latest) return;
          list.textContent = "";
          (body.suggestions || []).forEach(function (text, i) {
            var li = document.createElement("li");
            li.id = input.id + "-option-" + i;
            li.setAttribute("role", "option");
            li.textContent = text;
            li.addEventListener("mousedown", function (event) { event.preventDefault(); choose(text); });
            list.appendChild(li);
          });
          var any = list.children.length > 0;
          list.hidden = !any;
          input.setAttribute("aria-expanded", any ? "true" : "false");
          active = -1;
        })
        .catch(close);
    }, 150);

    input.addEventListener("input", function () {
      var query = input.value.trim();
      if (query.length < 1) { close(); return; }
      fetchSuggestions(query);
    });
    input.addEventListener("keydown", function (event) {
      var count = list.children.length;
      if (list.hidden || !count) return;
      if (event.key === "ArrowDown") { event.preventDefault(); highlight((active + 1) % count); }
      else if (event.key === "ArrowUp") { event.preventDefault(); highlight((active - 1 + count) % count); }
      else if (event.key === "Enter" && active >= 0) { event.preventDefault(); choose(list.children[active].textContent); }
      else if (event.key === "Escape") { close(); }
    });
    input.addEventListener("blur", function () { setTimeout(close, 100); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[data-suggest]").forEach(setUpSuggest);
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  });
})();
