/* The portal's service worker: shows Web Push notifications and opens the inbox on a click.
   Payloads carry generic texts only (no health details); the texts for a push without one
   come in this script's URL (?title=&body=, in the person's language). */
"use strict";

var params = new URL(self.location.href).searchParams;
var FALLBACK_TITLE = params.get("title") || "";
var FALLBACK_BODY = params.get("body") || "";

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

self.addEventListener("push", function (event) {
  var data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (ignored) {
    data = {};
  }
  var options = { body: data.body || FALLBACK_BODY, data: { url: "/notifications" } };
  if (data.tag) { options.tag = String(data.tag); }
  event.waitUntil(self.registration.showNotification(data.title || FALLBACK_TITLE, options));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var target = new URL("/notifications", self.location.origin).href;
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true })
    .then(function (windows) {
      for (var i = 0; i < windows.length; i += 1) {
        if (windows[i].url === target && "focus" in windows[i]) { return windows[i].focus(); }
      }
      return self.clients.openWindow(target);
    }));
});
