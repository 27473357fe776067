/*
 * The popup: who I am (roles), what each platform allows me now (with temporary grants
 * and their expiry), the guidelines in my language, a link to request access. Reads
 * GET {backend}api/v1/me and GET {backend}api/v1/guidelines with the user's service
 * login (session cookie or Basic). Offline: says it cannot reach the service.
 */
'use strict';

(async () => {
  const S = globalThis.SargsSettings;
  const settings = await S.load();
  const lang = S.language(settings.lang);
  const t = await S.texts(lang);
  const $ = (id) => document.getElementById(id);
  document.documentElement.lang = lang;
  document.title = t.popupTitle;
  $('title').textContent = t.popupTitle;
  $('options').textContent = t.options;
  $('warns-only').textContent = t.warnsOnly;
  const status = $('status');
  status.textContent = t.loading;

  const get = async (path) => {
    const resp = await fetch(`${settings.backend}${path}${path.includes('?') ? '&' : '?'}lang=${lang}`, {
      credentials: 'include',
      headers: { Accept: 'application/json' },
    });
    return resp;
  };

  let meResp;
  try {
    if (!settings.backend) throw new Error('no backend');
    meResp = await get('api/v1/me');
  } catch (e) {
    status.textContent = t.offline;
    status.className = 'error';
    return;
  }
  if (meResp.status === 401) {
    status.textContent = t.signIn + ' ';
    const link = document.createElement('a');
    link.href = `${settings.backend}login`;
    link.target = '_blank';
    link.rel = 'noopener';
    link.textContent = t.signInLink;
    status.append(link);
  } else if (!meResp.ok) {
    status.textContent = t.offline;
    status.className = 'error';
  } else {
    const me = await meResp.json();
    status.textContent = '';
    $('signed-in-label').textContent = t.signedInAs;
    $('user').textContent = me.user;
    $('roles-label').textContent = t.roles;
    $('roles').textContent = me.roles.map((r) => r.name).join(', ');
    $('who').hidden = false;
    $('col-platform').textContent = t.platform;
    $('col-access').textContent = t.access;
    const words = { allow: t.accessAllow, read: t.accessRead, block: t.accessBlock };
    const when = new Intl.DateTimeFormat(lang, { dateStyle: 'short', timeStyle: 'short' });
    const body = $('platforms').querySelector('tbody');
    for (const p of me.platforms) {
      const row = document.createElement('tr');
      row.dataset.platform = p.id;
      const name = document.createElement('td');
      name.textContent = p.name;
      const access = document.createElement('td');
      access.className = p.action;
      access.textContent = words[p.action] || p.action;
      if (p.grant) {
        const grant = document.createElement('span');
        grant.className = 'grant';
        grant.textContent = t.grantUntil.replace('$TIME$', when.format(new Date(p.grant.expires_at)));
        access.append(grant);
      }
      row.append(name, access);
      body.append(row);
    }
    $('platforms').hidden = false;
    const request = $('request-access');
    request.href = me.request_access_url || `${settings.backend}access/request`;
    request.textContent = t.requestAccess;
    request.hidden = false;
  }

  try {
    const resp = await get('api/v1/guidelines');
    if (!resp.ok) return;
    const data = await resp.json();
    const list = $('guidelines');
    for (const g of data.guidelines) {
      const dt = document.createElement('dt');
      dt.textContent = g.title;
      const dd = document.createElement('dd');
      dd.textContent = g.text;
      list.append(dt, dd);
    }
    $('guidelines-title').textContent = t.guidelines;
    $('guidelines-section').hidden = data.guidelines.length === 0;
  } catch (e) {
    // the status line already says whether the service can be reached
  }
})();
