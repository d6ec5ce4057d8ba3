/* The page editor: the scan in OpenSeadragon with the OCR lines over it, following the caret;
   transliteration as you type (Sanscript); the shortcuts and their help; 'OCR this page again'
   shown as a diff to accept or discard; and a question before leaving unsaved text.

   Glue only: the viewer is OpenSeadragon's, every transliteration scheme is Sanscript's, the
   alignment of text lines to OCR lines and the diffs are the server's (app/views/pages.py). */
(function () {
  "use strict";

  var setup = JSON.parse(document.getElementById("editor-setup").textContent);
  var form = document.getElementById("editor-form");
  var box = document.getElementById("page-text");
  var proof = document.getElementById("proof");
  var csrf = form.querySelector('input[name="csrf_token"]').value;
  var script = setup.script || "devanagari";
  var store = window.localStorage;

  function remembered(key, fallback) {
    try {
      var value = store.getItem("editor." + key);
      return value === null ? fallback : JSON.parse(value);
    } catch (e) {
      return fallback;
    }
  }
  function remember(key, value) {
    try { store.setItem("editor." + key, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }

  function post(url, fields) {
    var body = new URLSearchParams(fields || {});
    return fetch(url, {
      method: "POST",
      body: body,
      headers: { "X-CSRFToken": csrf, "Accept": "application/json" },
      credentials: "same-origin",
      redirect: "manual",
    });
  }

  /* Replace a range of the box as typing would, so that Ctrl+Z undoes it. */
  var replacing = false;
  function replaceRange(start, end, text) {
    box.focus();
    box.setSelectionRange(start, end);
    replacing = true;
    var done = false;
    try { done = document.execCommand("insertText", false, text); } catch (e) { done = false; }
    replacing = false;
    if (!done) {
      box.setRangeText(text, start, end, "end");
      box.dispatchEvent(new Event("input", { bubbles: true }));
    }
  }

  // -- the scan ------------------------------------------------------------------------------

  var viewerElement = document.getElementById("viewer");
  var zoomLevel = document.getElementById("zoom-level");
  var viewer = OpenSeadragon({
    element: viewerElement,
    // A preview level first, the full scan for deep zoom (app/services/page_previews.py).
    tileSources: {
      type: "legacy-image-pyramid",
      levels: [
        { url: setup.preview.url, width: setup.preview.width, height: setup.preview.height },
        { url: setup.image, width: setup.width, height: setup.height },
      ].filter(function (level, i, all) { return i === 0 || level.width > all[0].width; }),
    },
    showNavigationControl: false,
    showRotationControl: false,
    gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: true },
    gestureSettingsTouch: { pinchRotate: true },
    visibilityRatio: 0.2,
    minZoomImageRatio: 0.5,
    maxZoomPixelRatio: 4,
    zoomPerClick: 1.4,
    zoomPerScroll: 1.2,
    animationTime: 0.4,
    // Draw the preview while the full scan loads, when the screen needs it (a high-DPI one).
    immediateRender: false,
    // The 2D canvas: with no GPU (as here, and on many office PCs) OpenSeadragon 5's WebGL
    // drawer runs in software and took twice as long to show the page (tests/bench/editor_ready).
    drawer: "canvas",
    preserveImageSizeOnResize: false,
  });
  var view = remembered("view", { fit: "width" });

  function showZoom() {
    var image = viewer.world.getItemAt(0);
    if (!image) return;
    var percent = Math.round(image.viewportToImageZoom(viewer.viewport.getZoom(true)) * 100);
    zoomLevel.textContent = percent + "%";
  }
  function toTop() {
    var bounds = viewer.viewport.getBounds(true);
    viewer.viewport.panTo(new OpenSeadragon.Point(bounds.x + bounds.width / 2,
      Math.min(bounds.height / 2, bounds.y + bounds.height / 2)), true);
  }
  function fitWidth(immediately) {
    viewer.viewport.fitHorizontally(immediately);
    var bounds = viewer.viewport.getBounds(true);
    viewer.viewport.panTo(new OpenSeadragon.Point(0.5, bounds.height / 2), immediately);
  }
  function applyView(immediately) {
    if (view.fit === "width") fitWidth(immediately);
    else if (view.fit === "page") viewer.viewport.goHome(immediately);
    else if (view.zoom) {
      viewer.viewport.zoomTo(view.zoom, null, immediately);
      toTop();
    }
  }
  var actions = {
    "zoom-in": function () { viewer.viewport.zoomBy(1.25); viewer.viewport.applyConstraints(); userZoomed(); },
    "zoom-out": function () { viewer.viewport.zoomBy(0.8); viewer.viewport.applyConstraints(); userZoomed(); },
    "fit-width": function () { view = { fit: "width" }; remember("view", view); fitWidth(false); },
    "fit-page": function () { view = { fit: "page" }; remember("view", view); viewer.viewport.goHome(); },
    "rotate": function () {
      viewer.viewport.setRotation((viewer.viewport.getRotation() + 90) % 360);
      applyView(false);
    },
    "layout": function () { setLayout(layout === "side" ? "stacked" : "side"); },
  };
  function userZoomed() { view = { fit: null, zoom: null, custom: true }; }
  // Wheel, pinch and drag zooms are the user's: remember the zoom they end at.
  viewer.addHandler("canvas-scroll", userZoomed);
  viewer.addHandler("canvas-pinch", userZoomed);
  viewer.addHandler("animation-finish", function () {
    showZoom();
    if (view.custom) {
      view = { fit: null, zoom: viewer.viewport.getZoom(), custom: true };
      remember("view", { zoom: view.zoom });
    }
  });
  viewer.addHandler("zoom", showZoom);
  // The window or the layout changed the viewer's size: a fitted view fits again.
  viewer.addHandler("resize", function () {
    if (view.fit) window.requestAnimationFrame(function () { applyView(true); });
  });
  document.querySelectorAll("[data-action]").forEach(function (button) {
    button.addEventListener("click", function () { actions[button.dataset.action](); });
  });

  var layout = remembered("layout", "side");
  var layoutButton = document.getElementById("layout-button");
  function setLayout(value) {
    layout = value === "stacked" ? "stacked" : "side";
    proof.classList.toggle("layout-side", layout === "side");
    proof.classList.toggle("layout-stacked", layout === "stacked");
    layoutButton.textContent = layout === "side" ? "Image above" : "Image beside";
    remember("layout", layout);
    // The viewer's box changed size: fit again once the layout has settled.
    window.requestAnimationFrame(function () { applyView(true); });
  }
  setLayout(layout);

  viewer.addHandler("open", function () {
    applyView(true);
    showZoom();
    drawLines();
    highlightCaretLine();
  });
  viewer.addHandler("open-failed", function () {
    viewerElement.dataset.state = "failed";
    zoomLevel.textContent = "The scan could not be loaded.";
  });
  viewer.world.addHandler("add-item", function (event) {
    event.item.addHandler("fully-loaded-change", function (e) {
      if (e.fullyLoaded) {
        viewerElement.dataset.state = "ready";
        if (!performance.getEntriesByName("scan-ready").length) performance.mark("scan-ready");
        viewerElement.dispatchEvent(new CustomEvent("scan-ready"));
      }
    });
  });

  // -- OCR lines over the scan, following the caret -----------------------------------------

  var lineMap = setup.lineMap;  // per line of the box: index into setup.ocrLines, or null
  var overlays = [];
  var current = null;

  function drawLines() {
    setup.ocrLines.forEach(function (b, i) {
      var element = document.createElement("div");
      element.className = "ocr-line";
      element.dataset.line = String(i);
      var rect = viewer.viewport.imageToViewportRectangle(b[0], b[1], b[2], b[3]);
      viewer.addOverlay({ element: element, location: rect });
      overlays.push(element);
    });
  }

  function caretLine() {
    return box.value.slice(0, box.selectionStart).split("\n").length - 1;
  }

  function highlightCaretLine() {
    var index = lineMap[caretLine()];
    var target = index === undefined || index === null ? null : overlays[index] || null;
    if (target === current) return;
    if (current) current.classList.remove("current");
    current = target;
    viewerElement.dataset.currentLine = target ? target.dataset.line : "";
    if (!target) return;
    target.classList.add("current");
    // Keep the highlighted line in sight: pan only when it is out of view.
    var b = setup.ocrLines[index];
    var rect = viewer.viewport.imageToViewportRectangle(b[0], b[1], b[2], b[3]);
    var bounds = viewer.viewport.getBounds();
    if (rect.y < bounds.y || rect.y + rect.height > bounds.y + bounds.height) {
      viewer.viewport.panTo(new OpenSeadragon.Point(bounds.x + bounds.width / 2,
        rect.y + rect.height / 2));
    }
  }

  function moveCaretToLine(lineIndex) {
    var lines = box.value.split("\n");
    var offset = 0;
    for (var i = 0; i < lineIndex; i++) offset += lines[i].length + 1;
    box.focus();
    box.setSelectionRange(offset, offset);
    // Bring the line into the box's view.
    var lineHeight = parseFloat(window.getComputedStyle(box).lineHeight) || 24;
    var top = lineIndex * lineHeight;
    if (top < box.scrollTop || top > box.scrollTop + box.clientHeight - lineHeight) {
      box.scrollTop = Math.max(0, top - box.clientHeight / 3);
    }
    highlightCaretLine();
  }

  // A click on an OCR line (not a drag) puts the caret at the start of its text line.
  viewer.addHandler("canvas-click", function (event) {
    if (!event.quick) return;
    var point = viewer.viewport.viewerElementToImageCoordinates(event.position);
    for (var i = 0; i < setup.ocrLines.length; i++) {
      var b = setup.ocrLines[i];
      if (point.x >= b[0] && point.x <= b[0] + b[2] && point.y >= b[1] && point.y <= b[1] + b[3]) {
        var lineIndex = lineMap.indexOf(i);
        if (lineIndex >= 0) {
          event.preventDefaultAction = true;
          moveCaretToLine(lineIndex);
        }
        return;
      }
    }
  });

  ["keyup", "click", "focus"].forEach(function (name) {
    box.addEventListener(name, highlightCaretLine);
  });
  document.addEventListener("selectionchange", function () {
    if (document.activeElement === box) highlightCaretLine();
  });

  // After edits, the server aligns the text's lines to the OCR lines again (debounced).
  var alignTimer = null;
  var alignSent = 0;
  function realign() {
    if (!setup.ocrLines.length) return;
    window.clearTimeout(alignTimer);
    alignTimer = window.setTimeout(function () {
      var sent = ++alignSent;
      post(setup.linesUrl, { text: box.value }).then(function (response) {
        return response.ok ? response.json() : null;
      }).then(function (data) {
        if (!data || sent !== alignSent) return;  // a newer request is on its way
        lineMap = data.lines;
        current = null;
        overlays.forEach(function (o) { o.classList.remove("current"); });
        highlightCaretLine();
      }).catch(function () { /* offline for a moment: the next edit asks again */ });
    }, 400);
  }

  // -- transliteration as you type ------------------------------------------------------------

  var toggle = document.getElementById("translit-toggle");
  var schemeSelect = document.getElementById("translit-scheme");
  var translit = remembered("translit:" + script, setup.script !== null);
  schemeSelect.value = remembered("scheme", "hk");
  // The word being typed: where its output starts in the box, the keys typed for it, and the
  // length of what they became, so that 'kSh' or 'R^i' turn into one letter as keys come.
  var word = null;

  function setTranslit(on) {
    translit = on;
    word = null;
    toggle.setAttribute("aria-pressed", on ? "true" : "false");
    toggle.querySelector(".state").textContent = on ? "on" : "off";
    remember("translit:" + script, on);
  }
  setTranslit(translit);
  toggle.addEventListener("click", function () { setTranslit(!translit); box.focus(); });
  schemeSelect.addEventListener("change", function () {
    remember("scheme", schemeSelect.value);
    word = null;
  });

  function render(raw) {
    return Sanscript.t(raw, schemeSelect.value, script);
  }

  box.addEventListener("beforeinput", function (event) {
    if (replacing || !translit) return;
    var caret = box.selectionStart;
    var collapsed = caret === box.selectionEnd;
    if (event.inputType === "insertText" && event.data && event.data.length === 1) {
      if (/\s/.test(event.data)) { word = null; return; }
      if (!collapsed || !word || caret !== word.start + word.length) {
        word = { start: box.selectionStart, raw: "", length: box.selectionEnd - box.selectionStart };
      }
      event.preventDefault();
      word.raw += event.data;
      var out = render(word.raw);
      replaceRange(word.start, word.start + word.length, out);
      word.length = out.length;
      return;
    }
    if (event.inputType === "deleteContentBackward" && word && collapsed &&
        caret === word.start + word.length && word.raw.length > 1) {
      event.preventDefault();
      word.raw = word.raw.slice(0, -1);
      var shorter = render(word.raw);
      replaceRange(word.start, word.start + word.length, shorter);
      word.length = shorter.length;
      return;
    }
    word = null;
  });
  box.addEventListener("mousedown", function () { word = null; });
  box.addEventListener("keydown", function (event) {
    if (/^(Arrow|Home|End|Page)/.test(event.key)) word = null;
  });

  // The characters that are hard to type, in the project's script (Sanscript's own tables
  // give each in that script; the accents are Devanagari's Vedic marks).
  var palette = document.getElementById("palette");
  [
    ["ऽ", "avagraha"], ["ः", "visarga"], ["ं", "anusvara"], ["ँ", "candrabindu"],
    ["्", "virama"], ["।", "danda"], ["॥", "double danda"],
    ["॑", "udatta (Vedic accent)"], ["॒", "anudatta (Vedic accent)"], ["᳚", "double svarita (Vedic)"],
  ].forEach(function (entry) {
    var character = Sanscript.t(entry[0], "devanagari", script);
    var button = document.createElement("button");
    button.type = "button";
    button.className = "glyph";
    // A dotted circle carries a combining mark, so that the button shows it.
    button.textContent = /^\p{M}/u.test(character) ? "\u25CC" + character : character;
    button.title = "Insert " + entry[1];
    button.setAttribute("aria-label", "Insert " + entry[1]);
    button.dataset.insert = character;
    button.addEventListener("mousedown", function (event) { event.preventDefault(); });
    button.addEventListener("click", function () {
      word = null;
      replaceRange(box.selectionStart, box.selectionEnd, character);
    });
    palette.appendChild(button);
  });

  // A selection converted between schemes, as in Ambuda.
  var convertFrom = document.getElementById("convert-from");
  var convertTo = document.getElementById("convert-to");
  function schemeName(value) { return value === "script" ? script : value; }
  function convertSelection() {
    var start = box.selectionStart, end = box.selectionEnd;
    if (start === end) {
      zoomLevel.textContent = "Select some text to convert first.";
      return;
    }
    var out = Sanscript.t(box.value.slice(start, end), schemeName(convertFrom.value),
      schemeName(convertTo.value));
    word = null;
    replaceRange(start, end, out);
    box.setSelectionRange(start, start + out.length);
  }
  document.getElementById("convert-button").addEventListener("click", convertSelection);

  // -- OCR this page again --------------------------------------------------------------------

  var reocrButton = document.getElementById("reocr-button");
  var panel = document.getElementById("reocr");
  var message = document.getElementById("reocr-message");
  var diffBox = document.getElementById("reocr-diff");
  var reocrActions = document.getElementById("reocr-actions");
  var reocr = null;  // {url, text, timer, polls}
  var POLL_MS = 1000, MAX_POLLS = 600;

  function say(text, kind) {
    panel.hidden = false;
    message.textContent = text;
    panel.dataset.state = kind;
  }
  function endReocr() {
    if (reocr && reocr.timer) window.clearTimeout(reocr.timer);
    reocr = null;
    reocrButton.disabled = false;
  }
  function startReocr() {
    if (reocr) return;
    reocrButton.disabled = true;
    diffBox.hidden = true;
    reocrActions.hidden = true;
    say("Asking for a new OCR of this page…", "queued");
    post(setup.reocrUrl).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.status !== 202) {
          say(data.error || "The page could not be sent for OCR (HTTP " + response.status + ").", "failed");
          reocrButton.disabled = false;
          return;
        }
        reocr = { url: data.result_url, polls: 0 };
        say(data.warning || "The page is being read again; your text stays as it is.", data.warning ? "warning" : "queued");
        poll();
      });
    }).catch(function () {
      say("The server cannot be reached: the page was not sent for OCR.", "failed");
      reocrButton.disabled = false;
    });
  }
  function poll() {
    if (!reocr) return;
    reocr.polls += 1;
    post(reocr.url, { text: box.value }).then(function (response) {
      if (response.type === "opaqueredirect" || response.status === 401) {
        say("You are signed out: sign in again to see the new OCR.", "failed");
        endReocr();
        return null;
      }
      return response.json().then(function (data) { show(response.status, data); });
    }).catch(function () {
      if (reocr) reocr.timer = window.setTimeout(poll, POLL_MS * 3);
    });
  }
  function show(status, data) {
    if (!reocr) return;
    if (status === 503) {
      say(data.error, "failed");
      endReocr();
      return;
    }
    if (data.state === "queued") {
      if (reocr.polls >= MAX_POLLS) {
        say("No new OCR came in ten minutes; try again later.", "failed");
        endReocr();
        return;
      }
      say(data.warning || "The page is being read again; your text stays as it is.", data.warning ? "warning" : "queued");
      reocr.timer = window.setTimeout(poll, POLL_MS);
      return;
    }
    if (data.state === "done") {
      reocr.text = data.text;
      say(data.deleted || data.inserted
        ? "The new OCR differs from the text in the box: " + data.deleted + " words out, " +
          data.inserted + " words in (struck: only in your text; underlined: only in the new OCR)."
        : "The new OCR is the same as the text in the box.", "done");
      diffBox.innerHTML = data.diff;  // built and escaped by the server (app/text/diff.py)
      diffBox.hidden = false;
      reocrActions.hidden = false;
      reocrButton.disabled = false;
      return;
    }
    say(data.error || "The OCR failed.", "failed");
    endReocr();
  }
  function acceptReocr() {
    if (!reocr || reocr.text === undefined) return;
    var text = reocr.text;
    word = null;
    replaceRange(0, box.value.length, text);
    box.setSelectionRange(0, 0);
    post(reocr.url + "/discard");
    endReocr();
    diffBox.hidden = true;
    reocrActions.hidden = true;
    say("The new OCR text is in the box. It is not saved until you save.", "accepted");
  }
  function discardReocr() {
    if (reocr) post(reocr.url + "/discard");
    endReocr();
    panel.hidden = true;
    box.focus();
  }
  reocrButton.addEventListener("click", startReocr);
  document.getElementById("reocr-accept").addEventListener("click", acceptReocr);
  document.getElementById("reocr-discard").addEventListener("click", discardReocr);

  // -- leaving with unsaved changes ---------------------------------------------------------

  var saved = box.value;
  var unsaved = form.dataset.unsaved === "1";
  var submitting = false;
  form.addEventListener("submit", function () { submitting = true; });
  window.addEventListener("beforeunload", function (event) {
    if (submitting || (!unsaved && box.value === saved)) return;
    event.preventDefault();
    event.returnValue = "";
  });

  box.addEventListener("input", function () {
    realign();
    highlightCaretLine();
    if (panel.dataset.state === "accepted" && !replacing) panel.hidden = true;
    if (reocr && reocr.text !== undefined) {
      // The diff is against the box: ask for it again once typing pauses.
      window.clearTimeout(reocr.timer);
      reocr.timer = window.setTimeout(poll, 800);
    }
  });

  // -- shortcuts ------------------------------------------------------------------------------

  function click(id) {
    var element = document.getElementById(id);
    if (element) element.click();
  }
  function setStatus(n) {
    var radios = form.querySelectorAll('input[name="status"]');
    if (radios[n]) { radios[n].checked = true; radios[n].focus(); box.focus(); }
  }
  function submit(go) {
    submitting = true;
    var button = document.getElementById(go === "next" ? "save-next-button" : "save-button");
    form.requestSubmit(button);
  }
  var help = document.getElementById("help");
  function openHelp() { if (!help.open) help.showModal(); }
  var SHORTCUTS = [
    { keys: "Ctrl+S", does: "Save", test: function (e) { return e.ctrlKey && !e.altKey && e.code === "KeyS"; }, run: function () { submit("stay"); } },
    { keys: "Ctrl+Enter", does: "Save and go to the next page", test: function (e) { return e.ctrlKey && !e.altKey && e.key === "Enter"; }, run: function () { submit("next"); } },
    { keys: "Alt+PageDown", does: "Next page", test: alt("PageDown"), run: function () { click("next-page"); } },
    { keys: "Alt+PageUp", does: "Previous page", test: alt("PageUp"), run: function () { click("previous-page"); } },
    { keys: "Alt+=", does: "Zoom in", test: alt("Equal", "NumpadAdd"), run: actions["zoom-in"] },
    { keys: "Alt+-", does: "Zoom out", test: alt("Minus", "NumpadSubtract"), run: actions["zoom-out"] },
    { keys: "Alt+0", does: "Fit the scan to its width", test: alt("Digit0", "Numpad0"), run: actions["fit-width"] },
    { keys: "Alt+9", does: "Show the whole page", test: alt("Digit9", "Numpad9"), run: actions["fit-page"] },
    { keys: "Alt+R", does: "Rotate the scan a quarter turn", test: alt("KeyR"), run: actions.rotate },
    { keys: "Alt+L", does: "Image beside or above the text", test: alt("KeyL"), run: actions.layout },
    { keys: "Alt+T", does: "Transliteration on or off", test: alt("KeyT"), run: function () { setTranslit(!translit); } },
    { keys: "Alt+C", does: "Convert the selection between schemes", test: alt("KeyC"), run: convertSelection },
    { keys: "Alt+O", does: "OCR this page again", test: alt("KeyO"), run: startReocr },
    { keys: "Alt+1 … Alt+4", does: "Status: needs work, proofread once, twice, not relevant", test: alt("Digit1", "Digit2", "Digit3", "Digit4"), run: function (e) { setStatus(Number(e.code.slice(-1)) - 1); } },
    { keys: "Alt+/ or ?", does: "This list (? outside the text box)", test: function (e) { return (e.altKey && !e.ctrlKey && e.code === "Slash") || (e.key === "?" && !e.ctrlKey && !e.altKey && !typing(e.target)); }, run: openHelp },
  ];
  function alt() {
    var codes = Array.prototype.slice.call(arguments);
    return function (e) { return e.altKey && !e.ctrlKey && !e.metaKey && codes.indexOf(e.code) >= 0; };
  }
  function typing(target) {
    return target && (target.tagName === "TEXTAREA" || target.tagName === "SELECT" ||
      (target.tagName === "INPUT" && !/^(radio|checkbox|button|submit)$/.test(target.type)));
  }
  document.addEventListener("keydown", function (event) {
    if (event.isComposing || help.open) return;
    for (var i = 0; i < SHORTCUTS.length; i++) {
      if (SHORTCUTS[i].test(event)) {
        event.preventDefault();
        SHORTCUTS[i].run(event);
        return;
      }
    }
  }, true);
  var rows = help.querySelector("tbody");
  SHORTCUTS.forEach(function (shortcut) {
    var row = rows.insertRow();
    var keys = row.insertCell();
    keys.innerHTML = shortcut.keys.split(" or ").map(function (k) {
      return "<kbd>" + k.replace(/&/g, "&amp;").replace(/</g, "&lt;") + "</kbd>";
    }).join(" or ");
    row.insertCell().textContent = shortcut.does;
  });
  document.getElementById("help-button").addEventListener("click", openHelp);
  help.addEventListener("close", function () { box.focus(); });

  // Ready to type: the caret in the box.
  box.focus();
  box.setSelectionRange(0, 0);
  performance.mark("editor-focused");  // measured by tests/bench/editor_ready.py
  window.pageEditor = { viewer: viewer, lineMap: function () { return lineMap; } };
})();
