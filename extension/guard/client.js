/*
 * Sargs compose guard, part 4 of 8: its configuration and the check client.
 *
 * Configuration, first match wins:
 *   - attributes on its own <script> tag:
 *       data-backend="URL"    base URL of the service, absolute or relative to the page
 *                             (the gateway uses "/__sargs/"); default: the script's own
 *                             URL less "static/compose-guard.js"
 *       data-platform="ID"    platform id from the policy catalog (x, facebook, ...);
 *                             default: guessed from location.hostname
 *       data-account="KIND"   "personal" (default) or "official"
 *       data-lang="LL"        en | lv | sv | sq; default: navigator.languages
 *       data-readonly         present (and not "false"): the user may read this platform
 *                             but not post; said before typing starts
 *       data-guidelines="URL" the guidelines page (the service's /guidelines); default:
 *                             {backend}guidelines, except behind the gateway's reserved
 *                             path, which serves no pages (then no link is shown)
 *   - globalThis.__SARGS_CONFIG__ = {backend, platform, account, lang, readonly, check,
 *     guidelines}, set before this script runs (the extension does this; there is no
 *     <script> tag). `check(payload) -> Promise<{findings, verdict}>` replaces the fetch;
 *     `guidelines` may be a function returning a Promise of the page's URL.
 *
 * `enforced` is true only when the script came from the gateway's reserved path on the
 * page's own origin (/__sargs/...): only then is a gateway known to refuse blocked posts,
 * and only then does the guard say "blocks posting".
 *
 * Ways forward (issue 16): each finding carries `ways`, the actions the policy allows past
 * it. `S.ways` is the registry of their handlers, `S.ways[way] = handler`, filled by the
 * parts as they load (panel.js: acknowledge, justify, report; review.js: review). A
 * handler is a function `run(ctx)` or an object `{label(T, lang), available(config),
 * run(ctx)}`; panel.js shows one button per allowed way that has an available handler and
 * calls it with ctx = {way, text, rules, findings, state, area, doc, h, T, config, lang,
 * submit(extra), say(message, kind), close()}. `proceed(config, body)` posts to
 * {backend}api/v1/proceed: behind the gateway its reserved path, which knows the user and
 * asks the service; `__SARGS_CONFIG__.proceed(body)` may replace it (the extension).
 */
(function (S) {
  'use strict';

  const MAX_TEXT = 60000; // the service refuses larger bodies (413); do not send them

  function ownScript() {
    const cur = document.currentScript;
    if (cur && cur.src) return cur;
    const all = document.querySelectorAll('script[src*="compose-guard.js"]');
    return all.length ? all[all.length - 1] : null;
  }

  function absolute(url) {
    try {
      return url ? new URL(url, location.href).href : '';
    } catch (e) {
      return '';
    }
  }

  function readConfig() {
    const G = globalThis;
    const given = (G.__SARGS_CONFIG__ && typeof G.__SARGS_CONFIG__ === 'object') ? G.__SARGS_CONFIG__ : {};
    const tag = ownScript();
    const attr = (name) => (tag && tag.getAttribute(name)) || '';
    let backend = attr('data-backend') || given.backend || '';
    if (!backend && tag) backend = tag.src.replace(/static\/compose-guard\.js(?:[?#].*)?$/, '');
    if (backend && !backend.endsWith('/')) backend += '/';
    backend = absolute(backend); // "/__sargs/" from the gateway: the page's own host
    let enforced = false;
    if (tag) {
      const src = new URL(tag.src, location.href);
      enforced = src.origin === location.origin && src.pathname.startsWith('/__sargs/');
    }
    const readonlyAttr = tag && tag.hasAttribute('data-readonly') ? attr('data-readonly') : null;
    const readonly = readonlyAttr !== null ? readonlyAttr !== 'false' : given.readonly === true;
    let guidelines = absolute(attr('data-guidelines'));
    if (!guidelines && typeof given.guidelines === 'string') guidelines = absolute(given.guidelines);
    if (!guidelines && backend && !enforced) guidelines = `${backend}guidelines`;
    return {
      backend,
      platform: attr('data-platform') || given.platform || S.editors.guessPlatform(location.hostname),
      account: attr('data-account') || given.account || 'personal',
      lang: S.i18n.pickLang(attr('data-lang') || given.lang),
      readonly,
      enforced,
      guidelines,
      guidelinesLater: typeof given.guidelines === 'function' ? given.guidelines : null,
      check: typeof given.check === 'function' ? given.check : null,
      proceed: typeof given.proceed === 'function' ? given.proceed : null,
    };
  }

  /**
   * Ask the service about `text`. Resolves {result} or {reason} (why it could not be
   * checked: no-backend, too-long, http-NNN, network, bad-response); null when aborted.
   */
  async function ask(config, text, abort) {
    if (!text.trim()) return { result: { findings: [], verdict: 'ok' }, findings: [] };
    if (text.length > MAX_TEXT) return { reason: 'too-long' };
    const payload = { text, account: config.account, lang: config.lang };
    if (config.platform) payload.platform = config.platform; // unknown: let the service decide
    let result;
    try {
      if (config.check) {
        result = await config.check(payload);
      } else {
        if (!config.backend) return { reason: 'no-backend' };
        const resp = await fetch(`${config.backend}api/v1/check`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify(payload),
          credentials: 'omit',
          signal: abort,
        });
        if (!resp.ok) return { reason: `http-${resp.status}` };
        result = await resp.json();
      }
    } catch (e) {
      if (e && e.name === 'AbortError') return null;
      return { reason: 'network' };
    }
    if (!result || !Array.isArray(result.findings)) return { reason: 'bad-response' };
    // start === end: about the whole draft (working hours, attachments): listed, not underlined
    const findings = result.findings.filter((f) => f && Number.isInteger(f.start)
      && Number.isInteger(f.end) && f.start >= 0 && f.end <= text.length && f.start <= f.end);
    return { result, findings };
  }

  /** Whether a way forward can be recorded from here: behind the gateway (which knows the
   *  user), or with the extension's own `proceed`. */
  function canProceed(config) {
    return !!(config.proceed || (config.enforced && config.backend));
  }

  /** POST the choice; resolves {status, answer} (status 0: it could not be sent). */
  async function proceed(config, body) {
    try {
      if (config.proceed) {
        const answer = await config.proceed(body);
        return { status: answer && answer.error ? 422 : 200, answer: answer || {} };
      }
      if (!canProceed(config)) return { status: 0, answer: {} };
      const resp = await fetch(`${config.backend}api/v1/proceed`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        credentials: 'same-origin',
      });
      let answer = {};
      try { answer = await resp.json(); } catch (e) { /* not JSON: status says enough */ }
      return { status: resp.status, answer: answer && typeof answer === 'object' ? answer : {} };
    } catch (e) {
      return { status: 0, answer: {} };
    }
  }

  let reasonsCache = null;
  /** The policy's reasons for "justify" ({reasons: [{id, label}], minutes}), once. */
  function reasons(config) {
    if (!reasonsCache) {
      reasonsCache = (async () => {
        if (!config.enforced || !config.backend) return { reasons: [], minutes: 10 };
        try {
          const resp = await fetch(`${config.backend}api/v1/reasons`, { credentials: 'same-origin' });
          const got = resp.ok ? await resp.json() : {};
          return {
            reasons: Array.isArray(got.reasons) ? got.reasons.filter((r) => r && typeof r.id === 'string') : [],
            minutes: Number.isInteger(got.minutes) ? got.minutes : 10,
          };
        } catch (e) {
          return { reasons: [], minutes: 10 };
        }
      })();
    }
    return reasonsCache;
  }

  S.ways = S.ways || {}; // way -> handler; see the header
  S.client = { readConfig, ask, proceed, reasons, canProceed };
}(globalThis.__sargsGuardParts = globalThis.__sargsGuardParts || {}));
