// An answer's markdown as the pages draw it while it streams (the chat, the comparison):
// markdown-it without raw HTML, then DOMPurify, as inert as the server's rendering once it is
// done (chat/rendering.py). Loaded after the two vendored libraries, before the page's script.
(function () {
  "use strict";
  const md = window.markdownit({ html: false, linkify: false, breaks: true });
  window.auraxMarkdown = function (text) {
    return window.DOMPurify.sanitize(md.render(text), {
      ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#|\/)/i,
      FORBID_TAGS: ["style", "form", "input", "button", "iframe"],
      FORBID_ATTR: ["style"],
    });
  };
})();
