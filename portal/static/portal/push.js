/* Web Push for the portal's notifications page: "Turn on notifications on this device".
   Everything it needs comes from data-* attributes of #push-on (no inline script; CSP).
   Registers sw.js (scope /static/portal/, enough for push), subscribes with the VAPID key
   and hands the subscription to the portal (same origin, CSRF token in X-CSRF-Token), which
   registers it for the account through the devices API. The page works without this file. */
(function () {
  "use strict";

  var button = document.getElementById("push-on");
  var status = document.getElementById("push-status");
  if (!button || !status) { return; }
  if (!("serviceWorker" in navigator) || !("PushManager" in window) ||
      !("Notification" in window) || !window.isSecureContext) {
    return; /* the page keeps its "not supported" hint */
  }
  var fallback = document.querySelector("[data-push-fallback]");
  if (fallback) { fallback.hidden = true; }
  button.hidden = false;

  function say(name) { status.textContent = button.getAttribute("data-msg-" + name) || ""; }

  function keyBytes(base64url) {
    var padded = (base64url + "===".slice((base64url.length + 3) % 4))
      .replace(/-/g, "+").replace(/_/g, "/");
    var raw = window.atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) { bytes[i] = raw.charCodeAt(i); }
    return bytes;
  }

  /* The registration's worker once it is active (pushManager.subscribe needs one). The page
     is outside the worker's scope, so navigator.serviceWorker.ready would never settle. */
  function activated(registration) {
    if (registration.active) { return Promise.resolve(registration); }
    var worker = registration.installing || registration.waiting;
    return new Promise(function (resolve, reject) {
      if (!worker) { reject(new Error("no worker")); return; }
      worker.addEventListener("statechange", function () {
        if (worker.state === "activated") { resolve(registration); }
        if (worker.state === "redundant") { reject(new Error("worker redundant")); }
      });
    });
  }

  function subscription(registration) {
    return registration.pushManager.getSubscription().then(function (existing) {
      return existing || registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: keyBytes(button.getAttribute("data-vapid-key"))
      });
    });
  }

  function register(subscribed) {
    return fetch(button.getAttribute("data-endpoint"), {
      method: "POST",
      credentials: "same-origin",
      redirect: "manual",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRF-Token": button.getAttribute("data-csrf-token")
      },
      body: JSON.stringify(subscribed)
    }).then(function (response) {
      if (response.status !== 204) { throw new Error("not registered"); }
    });
  }

  button.addEventListener("click", function () {
    button.disabled = true;
    say("working");
    Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") {
        say("denied");
        return null;
      }
      return navigator.serviceWorker
        .register(button.getAttribute("data-worker"), { scope: button.getAttribute("data-scope") })
        .then(activated)
        .then(subscription)
        .then(register)
        .then(function () { say("on"); });
    }).catch(function () {
      say("failed");
    }).then(function () {
      button.disabled = false;
    });
  });
}());
