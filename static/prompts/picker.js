// Prompt templates from the chat input: typing "/" at the start of an empty input opens a
// list of the workspace's templates; picking one asks for its {{variables}} and fills the input.
// The list is worked by mouse or keyboard: Up/Down move, Enter or Tab picks, Escape closes; while
// it is open, Enter picks rather than sending what was typed.
(function () {
  "use strict";
  // Translated through Django's JavaScript catalog (loaded by base.html) when present.
  const gettext = window.gettext || function (text) { return text; };
  const VARIABLE = /\{\{\s*([A-Za-z_][A-Za-z0-9_ ]{0,40}?)\s*\}\}/g;

  function render(body, values) {
    return body.replace(VARIABLE, function (whole, name) {
      const key = name.trim();
      return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : whole;
    });
  }

  function close(picker) { if (picker) picker.remove(); }

  function askVariables(textarea, template) {
    const form = document.createElement("form");
    form.className = "prompt-variables";
    template.variables.forEach(function (name, index) {
      const label = document.createElement("label");
      label.textContent = name;
      const input = document.createElement("input");
      input.name = name;
      input.required = true;
      label.appendChild(input);
      form.appendChild(label);
      if (index === 0) setTimeout(function () { input.focus(); }, 0);
    });
    const submit = document.createElement("button");
    submit.type = "submit";
    submit.className = "primary";
    submit.textContent = gettext("Insert");
    form.appendChild(submit);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const values = {};
      new FormData(form).forEach(function (value, key) { values[key] = value; });
      textarea.value = render(template.body, values);
      form.remove();
      textarea.focus();
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
    });
    form.addEventListener("keydown", function (event) {
      if (event.key !== "Escape") return;
      form.remove();
      textarea.focus();
    });
    textarea.insertAdjacentElement("beforebegin", form);
  }

  function choose(textarea, template) {
    if (template.variables.length) askVariables(textarea, template);
    else {
      textarea.value = template.body;
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
    }
  }

  function highlight(list, index) {
    const items = list.querySelectorAll("[role=option]");
    if (!items.length) return;
    list._active = (index + items.length) % items.length;
    items.forEach(function (item, i) {
      item.setAttribute("aria-selected", i === list._active ? "true" : "false");
    });
    items[list._active].scrollIntoView({ block: "nearest" });
  }

  const SLASH = /^\/(\S*)$/;

  // Enter pressed before the list for what was typed arrived: it picks once it is there (the
  // first template found), or sends what was typed if no template matches (or no list came).
  function enterWhenListed(textarea, list) {
    if (!textarea._enterWaiting) return;
    textarea._enterWaiting = false;
    if (!(list && list._choose()) && textarea.form) textarea.form.requestSubmit();
  }

  function open(textarea, query) {
    const url = new URL(textarea.dataset.promptPicker, location.href); // names the page's workspace
    url.searchParams.set("q", query);
    const asked = (textarea._pickerAsked || 0) + 1; // never reset: answers may come back out of order
    textarea._pickerAsked = asked;
    textarea._pickerWaiting = true;
    fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
      if (asked !== textarea._pickerAsked) return; // a later keystroke asked again
      textarea._pickerWaiting = false;
      if (!SLASH.test(textarea.value)) return; // typed on meanwhile
      close(textarea._picker);
      const list = document.createElement("ul");
      list.className = "prompt-picker";
      list.setAttribute("role", "listbox");
      list._choose = function () {
        const template = data.templates[list._active];
        if (!template) return false;
        close(list);
        choose(textarea, template);
        return true;
      };
      data.templates.forEach(function (template, index) {
        const item = document.createElement("li");
        item.setAttribute("role", "option");
        item.textContent = template.title;
        item.addEventListener("mousedown", function (event) {
          event.preventDefault();
          list._active = index;
          list._choose();
        });
        list.appendChild(item);
      });
      if (!data.templates.length) {
        const empty = document.createElement("li");
        empty.className = "muted";
        empty.textContent = gettext("No templates");
        list.appendChild(empty);
      }
      textarea.insertAdjacentElement("beforebegin", list);
      textarea._picker = list;
      highlight(list, 0);
      enterWhenListed(textarea, list);
    }).catch(function () {
      if (asked !== textarea._pickerAsked) return;
      textarea._pickerWaiting = false;
      enterWhenListed(textarea, null);
    });
  }

  document.addEventListener("input", function (event) {
    const textarea = event.target;
    if (!textarea.matches || !textarea.matches("textarea[data-prompt-picker]")) return;
    const match = SLASH.exec(textarea.value);
    if (match) open(textarea, match[1]);
    else {
      textarea._pickerWaiting = false;
      textarea._enterWaiting = false;
      close(textarea._picker);
    }
  });
  // Capturing: it runs before the input's own keys (the chat sends on Enter).
  document.addEventListener("keydown", function (event) {
    const textarea = event.target;
    const enter = event.key === "Enter" && !event.shiftKey && !event.isComposing;
    if (enter && textarea._pickerWaiting && SLASH.test(textarea.value)) {
      textarea._enterWaiting = true; // the list is on its way
      event.preventDefault();
      event.stopPropagation();
      return;
    }
    const list = textarea._picker;
    if (!list || !list.isConnected) return;
    let handled = true;
    if (event.key === "Escape") close(list);
    else if (event.key === "ArrowDown") highlight(list, list._active + 1);
    else if (event.key === "ArrowUp") highlight(list, list._active - 1);
    else if (enter || event.key === "Tab") {
      handled = list._choose();
    } else handled = false;
    if (handled) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);
})();
