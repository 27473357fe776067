/*
 * Options: the Sargs service address, the language and the account kind. Settings
 * enforced by the administrator (chrome.storage.managed) are shown, disabled, and marked.
 */
'use strict';

(async () => {
  const S = globalThis.SargsSettings;
  const api = globalThis.chrome || globalThis.browser;
  const $ = (id) => document.getElementById(id);
  let settings = await S.load();

  async function render() {
    const lang = S.language(settings.lang);
    const t = await S.texts(lang);
    document.documentElement.lang = lang;
    document.title = t.optionsTitle;
    $('title').textContent = t.optionsTitle;
    $('backend-label').textContent = t.backendLabel;
    $('lang-label').textContent = t.languageLabel;
    $('lang-auto').textContent = t.languageAuto;
    $('account-label').textContent = t.accountLabel;
    $('account-personal').textContent = t.accountPersonal;
    $('account-official').textContent = t.accountOfficial;
    $('save').textContent = t.save;
    for (const key of S.KEYS) {
      const field = $(key);
      field.value = settings[key];
      const enforced = settings.enforced.includes(key);
      field.disabled = enforced;
      const note = document.querySelector(`.enforced[data-for="${key}"]`);
      note.hidden = !enforced;
      note.textContent = `(${t.enforced})`;
    }
    $('save').disabled = settings.enforced.length === S.KEYS.length;
    return t;
  }

  let t = await render();
  $('form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const status = $('status');
    const backend = S.normalizeBackend($('backend').value);
    if (!settings.enforced.includes('backend') && !backend) {
      status.textContent = t.badUrl;
      status.className = 'error';
      return;
    }
    // Ask for access to the service's host so that the popup may use the user's login
    // there (127.0.0.1 and localhost are granted by the manifest). Refusing is fine:
    // the service also answers extension origins with CORS.
    try {
      const origin = `${new URL(backend).origin}/*`;
      if (api.permissions && !(await api.permissions.contains({ origins: [origin] }))) {
        await api.permissions.request({ origins: [origin] });
      }
    } catch (e) {
      // not a user gesture any more, or the browser refused: keep going
    }
    settings = await S.save({ backend, lang: $('lang').value, account: $('account').value });
    t = await render();
    status.textContent = t.saved;
    status.className = '';
  });
})();
