/*
 * Sargs background (a service worker in Chromium, an event page in Firefox, where the
 * manifest's "scripts" loads config.js first).
 *
 * Answers {type: "sargs:check", payload} from the content script: POSTs the payload to
 * {backend}api/v1/check and replies {ok: true, result} or {ok: false, error}. The draft
 * is sent to the configured Sargs service only, never stored.
 */
'use strict';

if (typeof globalThis.SargsSettings === 'undefined' && typeof importScripts === 'function') {
  importScripts('config.js');
}

const runtime = (globalThis.chrome || globalThis.browser).runtime;
const CHECK_TIMEOUT_MS = 10000;

async function check(payload) {
  const settings = await globalThis.SargsSettings.load();
  if (!settings.backend) return { ok: false, error: 'no-backend' };
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), CHECK_TIMEOUT_MS);
  try {
    const resp = await fetch(`${settings.backend}api/v1/check`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(payload),
      credentials: 'omit',
      signal: controller.signal,
    });
    if (!resp.ok) return { ok: false, error: `http-${resp.status}` };
    return { ok: true, result: await resp.json() };
  } catch (e) {
    return { ok: false, error: 'network' };
  } finally {
    clearTimeout(timer);
  }
}

runtime.onMessage.addListener((message, sender, sendResponse) => {
  if (!message || message.type !== 'sargs:check' || !message.payload) return false;
  check(message.payload).then(sendResponse);
  return true; // the answer comes asynchronously
});
