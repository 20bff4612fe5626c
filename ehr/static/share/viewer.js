// SMART Health Links viewer: the link comes from the URL fragment (browsers never send it),
// the manifest is asked for with the recipient's name (and passcode, flag P), the file is
// decrypted here with WebCrypto (JWE dir + A256GCM), and the summary's narratives are copied
// into the page element by element: nothing from the file ever goes through innerHTML.
(function () {
  "use strict";

  var texts = JSON.parse(document.getElementById("texts").textContent);
  var statusLine = document.getElementById("status");
  var form = document.getElementById("ask");
  var summary = document.getElementById("summary");

  function say(key, params, isError) {
    var text = texts[key] || key;
    Object.keys(params || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(String(params[name]));
    });
    statusLine.textContent = text;
    statusLine.className = isError ? "error" : "";
    statusLine.hidden = false;
  }

  function b64urlBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var raw = atob(b64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes;
  }

  function utf8(bytes) { return new TextDecoder("utf-8").decode(bytes); }

  function readLink() {
    var fragment = decodeURIComponent(window.location.hash.replace(/^#/, ""));
    var at = fragment.indexOf("shlink:/");
    if (at < 0) { return null; }
    try {
      var payload = JSON.parse(utf8(b64urlBytes(fragment.slice(at + 8))));
      if (typeof payload.url !== "string" || typeof payload.key !== "string" ||
          b64urlBytes(payload.key).length !== 32) { return null; }
      return payload;
    } catch (e) {
      return null;
    }
  }

  async function inflateRaw(bytes) {
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  async function decryptJwe(compact, keyText) {
    var parts = compact.trim().split(".");
    if (parts.length !== 5) { throw new Error("not a compact JWE"); }
    var header = JSON.parse(utf8(b64urlBytes(parts[0])));
    if (header.alg !== "dir" || header.enc !== "A256GCM") { throw new Error("unsupported JWE"); }
    var key = await crypto.subtle.importKey("raw", b64urlBytes(keyText), {name: "AES-GCM"},
                                            false, ["decrypt"]);
    var cipher = b64urlBytes(parts[3]);
    var tag = b64urlBytes(parts[4]);
    var sealed = new Uint8Array(cipher.length + tag.length);
    sealed.set(cipher, 0);
    sealed.set(tag, cipher.length);
    var plain = new Uint8Array(await crypto.subtle.decrypt(
      {name: "AES-GCM", iv: b64urlBytes(parts[2]),
       additionalData: new TextEncoder().encode(parts[0]), tagLength: 128},
      key, sealed));
    if (header.zip === "DEF") { plain = await inflateRaw(plain); }
    return {header: header, text: utf8(plain)};
  }

  // The narrative elements a summary uses; anything else is reduced to its text.
  var ALLOWED = {DIV: 1, P: 1, SPAN: 1, B: 1, I: 1, STRONG: 1, EM: 1, BR: 1, UL: 1, OL: 1,
                 LI: 1, TABLE: 1, THEAD: 1, TBODY: 1, TR: 1, TH: 1, TD: 1, CAPTION: 1,
                 H3: 1, H4: 1, H5: 1, H6: 1, SMALL: 1, SUB: 1, SUP: 1};
  var DROPPED = {SCRIPT: 1, STYLE: 1, IFRAME: 1, OBJECT: 1, EMBED: 1, TEMPLATE: 1, SVG: 1,
                 MATH: 1, LINK: 1, META: 1, IMG: 1, FORM: 1, INPUT: 1, BUTTON: 1};

  function copySafe(source, target) {
    source.childNodes.forEach(function (node) {
      if (node.nodeType === Node.TEXT_NODE) {
        target.appendChild(document.createTextNode(node.nodeValue));
        return;
      }
      if (node.nodeType !== Node.ELEMENT_NODE) { return; }
      var name = node.nodeName.toUpperCase();
      if (DROPPED[name]) { return; }
      if (!ALLOWED[name]) { copySafe(node, target); return; }
      var element = document.createElement(name.toLowerCase());
      ["colspan", "rowspan"].forEach(function (attribute) {
        var value = node.getAttribute(attribute);
        if (value && /^[0-9]{1,2}$/.test(value)) { element.setAttribute(attribute, value); }
      });
      copySafe(node, element);
      target.appendChild(element);
    });
  }

  function narrative(xhtml) {
    // An inert document: parsing it runs no script and loads nothing.
    var parsed = new DOMParser().parseFromString(String(xhtml || ""), "text/html");
    var holder = document.createElement("div");
    copySafe(parsed.body, holder);
    return holder;
  }

  function resourceOf(bundle, reference) {
    var found = null;
    (bundle.entry || []).forEach(function (entry) {
      var resource = entry.resource || {};
      if (entry.fullUrl === reference ||
          resource.resourceType + "/" + resource.id === reference) { found = resource; }
    });
    return found;
  }

  function humanName(patient) {
    var name = (patient && patient.name && patient.name[0]) || {};
    if (name.text) { return name.text; }
    return [(name.given || []).join(" "), name.family || ""].join(" ").trim();
  }

  function add(parent, tag, text, className) {
    var element = document.createElement(tag);
    if (text !== undefined && text !== null) { element.textContent = text; }
    if (className) { element.className = className; }
    parent.appendChild(element);
    return element;
  }

  function render(bundle) {
    var composition = null;
    (bundle.entry || []).forEach(function (entry) {
      if (!composition && entry.resource && entry.resource.resourceType === "Composition") {
        composition = entry.resource;
      }
    });
    if (!composition) { throw new Error("no Composition"); }
    summary.textContent = "";
    add(summary, "h2", composition.title || texts.title);
    var patient = composition.subject ? resourceOf(bundle, composition.subject.reference) : null;
    if (patient) {
      add(summary, "p", [humanName(patient), patient.birthDate || ""].join(" · "), "patient");
    }
    if (composition.date) { add(summary, "p", composition.date.slice(0, 10), "label"); }
    (composition.section || []).forEach(function (section) {
      var part = add(summary, "section");
      part.setAttribute("data-section", (section.code && section.code.coding &&
                                         section.code.coding[0].code) || "");
      add(part, "h2", section.title || "");
      if (section.text && section.text.div) { part.appendChild(narrative(section.text.div)); }
      else if (section.emptyReason) {
        add(part, "p", section.emptyReason.text ||
            (section.emptyReason.coding && section.emptyReason.coding[0].display) || "");
      }
    });
    summary.hidden = false;
    statusLine.hidden = true;
    form.hidden = true;
  }

  async function fetchFile(link, recipient, passcode) {
    if ((link.flag || "").indexOf("U") >= 0) {
      var direct = await fetch(link.url + (link.url.indexOf("?") < 0 ? "?" : "&") +
                               "recipient=" + encodeURIComponent(recipient),
                               {credentials: "omit", cache: "no-store"});
      if (!direct.ok) { return {status: direct.status}; }
      return {jwe: await direct.text()};
    }
    var body = {recipient: recipient};
    if (passcode) { body.passcode = passcode; }
    var answer = await fetch(link.url, {
      method: "POST", credentials: "omit", cache: "no-store",
      headers: {"Content-Type": "application/json", "Accept-Language": document.documentElement.lang},
      body: JSON.stringify(body)});
    if (answer.status === 401) {
      var problem = await answer.json();
      return {status: 401, remaining: problem.remainingAttempts};
    }
    if (!answer.ok) { return {status: answer.status}; }
    var manifest = await answer.json();
    var file = (manifest.files || []).filter(function (f) {
      return f.contentType === "application/fhir+json";
    })[0];
    if (!file) { return {status: 500}; }
    if (file.embedded) { return {jwe: file.embedded}; }
    var located = await fetch(file.location, {credentials: "omit", cache: "no-store"});
    if (!located.ok) { return {status: located.status}; }
    return {jwe: await located.text()};
  }

  var link = readLink();
  if (!link) { say("bad-link", null, true); return; }
  if (link.label) {
    var label = document.getElementById("label");
    label.textContent = link.label;
    label.hidden = false;
  }
  if (link.exp && link.exp * 1000 < Date.now()) { say("gone", null, true); return; }
  if ((link.flag || "").indexOf("P") >= 0) {
    document.getElementById("passcode-row").hidden = false;
    document.getElementById("passcode").required = true;
  }
  form.hidden = false;
  statusLine.hidden = true;

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    var recipient = document.getElementById("recipient").value.trim();
    var passcode = document.getElementById("passcode").value;
    if (!recipient) { return; }
    say("loading");
    try {
      var got = await fetchFile(link, recipient, passcode);
      if (got.status === 401) { say("wrong-passcode", {n: got.remaining}, true); return; }
      if (got.status === 404) { say("gone", null, true); form.hidden = true; return; }
      if (!got.jwe) { say("error", null, true); return; }
      var file = await decryptJwe(got.jwe, link.key);
      render(JSON.parse(file.text));
    } catch (e) {
      say("error", null, true);
    }
  });
}());
