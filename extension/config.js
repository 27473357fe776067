/*
 * Sargs extension settings, shared by every part of the extension:
 *   - as a content script it runs just before compose-guard.js and sets
 *     globalThis.__SARGS_CONFIG__ (the guard's documented configuration surface);
 *   - options.html, popup.html and the background load it for SargsSettings.
 *
 * Settings, first found wins: chrome.storage.managed (set by IT through browser policy,
 * see managed_schema.json; the user cannot change these), then storage.sync, then
 * storage.local, then DEFAULTS.
 *
 * Storage is asynchronous and the guard reads its configuration once, synchronously,
 * when it starts. So the configuration carries a `check` function: it waits for the
 * settings, then asks the background to POST {backend}api/v1/check (the background's
 * fetch is not subject to the page's Content-Security-Policy). If the service cannot be
 * reached the promise rejects and the guard says it cannot check; typing is never held up.
 */
(() => {
  'use strict';

  const G = globalThis;
  const api = G.chrome || G.browser;
  const KEYS = ['backend', 'lang', 'account'];
  const LANGS = ['en', 'lv', 'sv', 'sq'];
  const DEFAULTS = { backend: 'http://127.0.0.1:8081/', lang: '', account: 'personal' };

  async function area(name) {
    // Promise-style storage (Chrome MV3, Firefox 121+). Managed storage rejects or is
    // missing where no policy or schema exists: that means "nothing enforced".
    try {
      const storage = api && api.storage && api.storage[name];
      return (storage && (await storage.get(KEYS))) || {};
    } catch (e) {
      return {};
    }
  }

  function normalizeBackend(url) {
    let value = String(url || '').trim();
    if (!value) return '';
    if (!/^https?:\/\//i.test(value)) return '';
    if (!value.endsWith('/')) value += '/';
    return value;
  }

  function clean(key, value) {
    if (value === undefined || value === null) return undefined;
    if (key === 'backend') return normalizeBackend(value) || undefined;
    if (key === 'lang') return (value === '' || LANGS.includes(value)) ? value : undefined;
    if (key === 'account') return ['personal', 'official'].includes(value) ? value : undefined;
    return undefined;
  }

  /** {backend, lang, account, enforced: [keys set by the administrator]} */
  async function load() {
    const [managed, sync, local] = await Promise.all([area('managed'), area('sync'), area('local')]);
    const out = { enforced: [] };
    for (const key of KEYS) {
      const fromPolicy = clean(key, managed[key]);
      if (fromPolicy !== undefined) out.enforced.push(key);
      const chosen = [fromPolicy, clean(key, sync[key]), clean(key, local[key])]
        .find((v) => v !== undefined);
      out[key] = chosen !== undefined ? chosen : DEFAULTS[key];
    }
    return out;
  }

  /** Save the user's choices (not the enforced ones); sync when available, else local. */
  async function save(values) {
    const settings = await load();
    const items = {};
    for (const key of KEYS) {
      if (key in values && !settings.enforced.includes(key)) {
        const value = clean(key, values[key]);
        if (value !== undefined) items[key] = value;
      }
    }
    const write = (name) => api.storage[name].set(items);
    try {
      await write('sync');
    } catch (e) {
      await write('local');
    }
    return load();
  }

  /** The language to use: the chosen one, else the browser's, else English. */
  function language(chosen) {
    const list = [].concat(chosen || [], (G.navigator && G.navigator.languages) || []);
    for (const tag of list) {
      const base = String(tag).toLowerCase().split(/[-_]/)[0];
      if (LANGS.includes(base)) return base;
    }
    return 'en';
  }

  /** The extension's own texts in `lang` (its _locales), as {key: message}. */
  async function texts(lang) {
    const url = api.runtime.getURL(`_locales/${language(lang)}/messages.json`);
    const data = await (await fetch(url)).json();
    const out = {};
    for (const [key, entry] of Object.entries(data)) out[key] = entry.message;
    return out;
  }

  G.SargsSettings = { KEYS, LANGS, DEFAULTS, load, save, language, texts, normalizeBackend };

  // As a content script (a web page, not one of the extension's own pages): configure
  // the compose guard that runs next.
  const own = G.location && /^(chrome|moz)-extension:$/.test(G.location.protocol);
  const isWorker = typeof G.document === 'undefined';
  if (own || isWorker || G.__SARGS_CONFIG__) return;
  const ready = load();
  G.__SARGS_CONFIG__ = {
    // The guard links each finding to the service's guidelines page (read lazily: the
    // settings arrive after the guard has started).
    guidelines: () => ready.then((s) => (s.backend ? `${s.backend}guidelines` : '')),
    async check(payload) {
      const settings = await ready;
      const body = Object.assign({}, payload, {
        account: settings.account || payload.account,
        lang: settings.lang || payload.lang,
      });
      const answer = await api.runtime.sendMessage({ type: 'sargs:check', payload: body });
      if (!answer || !answer.ok) throw new Error((answer && answer.error) || 'no answer');
      return answer.result;
    },
  };
})();
