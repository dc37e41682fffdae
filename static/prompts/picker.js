// Prompt templates from the chat input: typing "/" at the start of an empty input opens a
// list of the workspace's templates; picking one asks for its {{variables}} and fills the input.
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
    textarea.insertAdjacentElement("beforebegin", form);
  }

  function choose(textarea, template) {
    if (template.variables.length) askVariables(textarea, template);
    else {
      textarea.value = template.body;
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
    }
  }

  function open(textarea, query) {
    const url = textarea.dataset.promptPicker + "?q=" + encodeURIComponent(query);
    fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
      close(textarea._picker);
      const list = document.createElement("ul");
      list.className = "prompt-picker";
      list.setAttribute("role", "listbox");
      data.templates.forEach(function (template) {
        const item = document.createElement("li");
        item.setAttribute("role", "option");
        item.tabIndex = 0;
        item.textContent = template.title;
        item.addEventListener("mousedown", function (event) {
          event.preventDefault();
          close(list);
          choose(textarea, template);
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
    });
  }

  document.addEventListener("input", function (event) {
    const textarea = event.target;
    if (!textarea.matches || !textarea.matches("textarea[data-prompt-picker]")) return;
    const match = /^\/(\S*)$/.exec(textarea.value);
    if (match) open(textarea, match[1]);
    else close(textarea._picker);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && event.target._picker) close(event.target._picker);
  });
})();
