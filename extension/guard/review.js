/*
 * Sargs compose guard, part: review before posting ("ask a superior").
 *
 * Registers the way forward `review` in the guard's registry of ways (S.ways.review,
 * {label, available, run(ctx)}: the panel's "Ask a superior" button calls run with the
 * checked text; see client.js) and, for pages' own buttons, answers a bubbling
 *   CustomEvent("sargs:ask-review", {detail: {text}})
 * dispatched on an editor (or the document): either opens a small dialog of its own (an
 * open shadow root on a <sargs-review> element; never the page's DOM or styles).
 *
 * Nothing is sent until the user presses "Send for review": that is the explicit choice
 * that lets Sargs store this one draft (sealed, deleted when decided; docs/reviews.md).
 * The draft goes to {backend}api/v1/reviews — behind the gateway the page's own host
 * (/__sargs/), which forwards it with the user it knows. Then the dialog polls
 * {backend}api/v1/reviews/{id} (every 3 s for 2 minutes, then every 15 s; paused while
 * the tab is hidden) and tells the author live: approved (post exactly this text now),
 * returned (with the reviewer's comment), expired. "Withdraw" deletes the draft at once.
 */
(function (S) {
  'use strict';

  if (globalThis.__sargsComposeGuard) return; // injected twice: the first one answers

  const TEXTS = {
    en: {
      title: 'Ask a superior', close: 'Close',
      intro: 'Your draft goes to the reviewers your institution names. Only they see it; it is stored encrypted and deleted once they decide.',
      note: 'Note for the reviewer (optional)', send: 'Send for review', cancel: 'Cancel',
      sending: 'Sending…', waiting: 'Sent for review. You will see the answer here.',
      withdraw: 'Withdraw', withdrawn: 'Withdrawn: the draft has been deleted.',
      approved: 'Approved: post exactly this text now. A changed text needs a new review.',
      returned: 'Returned with a comment:', expired: 'Nobody decided in time; the draft has been deleted.',
      failed: 'Not sent: ', unreachable: 'Sargs cannot be reached. Nothing was sent.',
      noBackend: 'Review is not available here (Sargs is not reached through the gateway).',
      empty: 'There is no text to review yet.',
    },
    lv: {
      title: 'Jautāt vadītājam', close: 'Aizvērt',
      intro: 'Jūsu melnraksts tiks nosūtīts iestādes noteiktajiem pārskatītājiem. To redz tikai viņi; tas glabājas šifrēts un tiek dzēsts, tiklīdz viņi izlemj.',
      note: 'Piezīme pārskatītājam (nav obligāta)', send: 'Nosūtīt pārskatīšanai', cancel: 'Atcelt',
      sending: 'Sūta…', waiting: 'Nosūtīts pārskatīšanai. Atbildi redzēsiet šeit.',
      withdraw: 'Atsaukt', withdrawn: 'Atsaukts: melnraksts ir dzēsts.',
      approved: 'Apstiprināts: publicējiet tieši šo tekstu tagad. Mainītam tekstam vajag jaunu pārskatīšanu.',
      returned: 'Atgriezts ar komentāru:', expired: 'Neviens laikus neizlēma; melnraksts ir dzēsts.',
      failed: 'Nav nosūtīts: ', unreachable: 'Sargs nav sasniedzams. Nekas netika nosūtīts.',
      noBackend: 'Pārskatīšana šeit nav pieejama (Sargs netiek sasniegts caur vārteju).',
      empty: 'Vēl nav teksta, ko pārskatīt.',
    },
    sv: {
      title: 'Fråga en chef', close: 'Stäng',
      intro: 'Ditt utkast går till de granskare som din myndighet har utsett. Bara de ser det; det lagras krypterat och raderas när de har beslutat.',
      note: 'Anteckning till granskaren (valfri)', send: 'Skicka för granskning', cancel: 'Avbryt',
      sending: 'Skickar…', waiting: 'Skickat för granskning. Svaret visas här.',
      withdraw: 'Återkalla', withdrawn: 'Återkallat: utkastet har raderats.',
      approved: 'Godkänt: publicera exakt den här texten nu. En ändrad text behöver en ny granskning.',
      returned: 'Tillbakaskickat med en kommentar:', expired: 'Ingen beslutade i tid; utkastet har raderats.',
      failed: 'Inte skickat: ', unreachable: 'Sargs kan inte nås. Inget skickades.',
      noBackend: 'Granskning är inte tillgänglig här (Sargs nås inte via gatewayen).',
      empty: 'Det finns ingen text att granska än.',
    },
    sq: {
      title: 'Pyet eprorin', close: 'Mbyll',
      intro: 'Drafti juaj shkon te rishikuesit që ka caktuar institucioni juaj. Vetëm ata e shohin; ruhet i enkriptuar dhe fshihet sapo të vendosin.',
      note: 'Shënim për rishikuesin (opsional)', send: 'Dërgo për rishikim', cancel: 'Anulo',
      sending: 'Po dërgohet…', waiting: 'U dërgua për rishikim. Përgjigjen do ta shihni këtu.',
      withdraw: 'Tërhiq', withdrawn: 'U tërhoq: drafti është fshirë.',
      approved: 'U miratua: publikoni pikërisht këtë tekst tani. Një tekst i ndryshuar ka nevojë për rishikim të ri.',
      returned: 'U kthye me një koment:', expired: 'Askush nuk vendosi me kohë; drafti është fshirë.',
      failed: 'Nuk u dërgua: ', unreachable: 'Sargs nuk mund të arrihet. Asgjë nuk u dërgua.',
      noBackend: 'Rishikimi nuk është i disponueshëm këtu (Sargs nuk arrihet përmes portës).',
      empty: 'Ende nuk ka tekst për rishikim.',
    },
  };

  const CSS = `
    :host { all: initial; position: fixed; right: 16px; bottom: 16px; z-index: 2147483647; }
    * { box-sizing: border-box; }
    .box { width: min(400px, calc(100vw - 32px)); background: #fff; color: #1b1b1b;
           border: 1px solid #bbb; border-radius: 10px; box-shadow: 0 8px 28px rgba(0,0,0,.25);
           font: 14px/1.45 system-ui, sans-serif; padding: 12px 14px; }
    header { display: flex; align-items: center; gap: 8px; margin-bottom: 6px; }
    h2 { flex: 1; margin: 0; font-size: 15px; }
    p { margin: 6px 0; }
    .quote { max-height: 7.5em; overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere;
             background: #f6f7f9; border-left: 4px solid #17324d; padding: 6px 8px; }
    label { display: block; margin: 8px 0 4px; font-weight: 600; font-size: 13px; }
    textarea { width: 100%; font: inherit; min-height: 3.2em; }
    .row { display: flex; gap: 8px; justify-content: flex-end; margin-top: 10px; flex-wrap: wrap; }
    button { font: 600 13px system-ui, sans-serif; border-radius: 6px; padding: 6px 14px;
             cursor: pointer; border: 1px solid #999; background: #f4f4f4; color: #1b1b1b; }
    button.primary { background: #17324d; border-color: #17324d; color: #fff; }
    button:focus-visible, textarea:focus-visible { outline: 3px solid #d08c00; outline-offset: 2px; }
    .state { padding: 6px 8px; border-radius: 6px; background: #e8edf2; color: #17324d; }
    .state.approved { background: #dcefe3; color: #1d6b3f; }
    .state.returned, .state.error { background: #f6e0dc; color: #8b1a1a; }
    .comment { font-style: italic; }
  `;

  const POLL_FAST_MS = 3000;
  const POLL_SLOW_MS = 15000;
  const FAST_FOR_MS = 120000;
  const FINAL = ['approved', 'returned', 'withdrawn', 'expired'];

  let config = null;
  try { config = S.client.readConfig(); } catch (e) { config = null; }

  let current = null; // the open dialog: {host, root, timer, id, stop}

  function texts() {
    const lang = (config && config.lang) || 'en';
    return TEXTS[lang] || TEXTS.en;
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') node.textContent = v; else node.setAttribute(k, v);
    }
    for (const c of children || []) node.append(c);
    return node;
  }

  function close() {
    if (!current) return;
    clearTimeout(current.timer);
    current.stopped = true;
    current.host.remove();
    current = null;
  }

  async function call(method, path, body) {
    const resp = await fetch(`${config.backend}${path}`, {
      method,
      headers: body ? { 'Content-Type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
      credentials: 'omit',
    });
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    return { ok: resp.ok, status: resp.status, data };
  }

  function setState(kind, message, extra) {
    const box = current && current.root.querySelector('.state');
    if (!box) return;
    box.className = `state ${kind}`;
    box.textContent = message;
    if (extra) box.append(' ', el('span', { class: 'comment', text: extra }));
    current.root.querySelector('.live').textContent = box.textContent;
  }

  function schedule(dialog) {
    const elapsed = Date.now() - dialog.started;
    const wait = elapsed < FAST_FOR_MS ? POLL_FAST_MS : POLL_SLOW_MS;
    dialog.timer = setTimeout(() => poll(dialog), wait);
  }

  async function poll(dialog) {
    if (dialog.stopped) return;
    if (document.hidden) { schedule(dialog); return; }
    let answer;
    try {
      answer = await call('GET', `api/v1/reviews/${encodeURIComponent(dialog.id)}`);
    } catch (e) {
      schedule(dialog);
      return;
    }
    if (dialog.stopped) return;
    const state = answer.data && answer.data.status;
    if (answer.ok && FINAL.includes(state)) {
      const T = texts();
      dialog.root.host.dataset.state = state;
      dialog.root.querySelector('.withdraw').hidden = true;
      if (state === 'returned') setState('returned', T.returned, answer.data.comment || '');
      else setState(state, T[state] || answer.data.message || state);
      dialog.root.host.dispatchEvent(new CustomEvent('sargs:review', {
        bubbles: true, composed: true, detail: { id: dialog.id, status: state } }));
      return;
    }
    schedule(dialog);
  }

  function open(ctx) {
    close();
    const T = texts();
    const text = String((ctx && ctx.text) || '');
    const host = el('sargs-review');
    const root = host.attachShadow({ mode: 'open' });
    const style = el('style', { text: CSS });
    const title = el('h2', { id: 'sargs-review-title', text: T.title });
    const closeButton = el('button', { type: 'button', class: 'close', text: T.close });
    const note = el('textarea', { maxlength: '1000', id: 'sargs-review-note' });
    const send = el('button', { type: 'button', class: 'primary send', text: T.send });
    const cancel = el('button', { type: 'button', class: 'cancel', text: T.cancel });
    const withdraw = el('button', { type: 'button', class: 'withdraw', text: T.withdraw });
    withdraw.hidden = true;
    const state = el('p', { class: 'state', hidden: '' });
    const box = el('div', { class: 'box', role: 'dialog', 'aria-labelledby': 'sargs-review-title',
                            lang: (config && config.lang) || 'en' }, [
      el('header', {}, [title, closeButton]),
      el('p', { text: T.intro }),
      el('div', { class: 'quote', text: text }),
      el('label', { for: 'sargs-review-note', text: T.note }), note,
      state,
      el('div', { class: 'row' }, [withdraw, cancel, send]),
      el('p', { class: 'live', role: 'status', 'aria-live': 'polite',
                style: 'position:absolute;left:-9999px' }),
    ]);
    root.append(style, box);
    (document.body || document.documentElement).append(host);
    current = { host, root, timer: 0, id: '', stopped: false, started: Date.now() };
    const dialog = current;
    closeButton.addEventListener('click', close);
    cancel.addEventListener('click', close);
    box.addEventListener('keydown', (e) => { if (e.key === 'Escape') close(); });

    const problem = !text.trim() ? T.empty : (!config || !config.backend ? T.noBackend : '');
    if (problem) {
      state.hidden = false;
      setState('error', problem);
      send.disabled = true;
      note.disabled = true;
      closeButton.focus();
      return dialog;
    }
    note.focus();

    send.addEventListener('click', async () => {
      send.disabled = true;
      note.disabled = true;
      state.hidden = false;
      setState('', T.sending);
      const body = { text, note: note.value, account: (ctx && ctx.account) || config.account };
      if (ctx && ctx.platform) body.platform = ctx.platform;
      else if (config.platform) body.platform = config.platform;
      let answer;
      try {
        answer = await call('POST', 'api/v1/reviews', body);
      } catch (e) {
        answer = null;
      }
      if (dialog.stopped) return;
      if (!answer || !answer.ok) {
        const why = answer && answer.data && answer.data.error;
        setState('error', answer ? T.failed + (why || `HTTP ${answer.status}`) : T.unreachable);
        send.disabled = false;
        note.disabled = false;
        return;
      }
      dialog.id = answer.data.id;
      host.dataset.review = dialog.id;
      send.hidden = true;
      cancel.textContent = T.close;
      withdraw.hidden = false;
      setState('pending', T.waiting);
      schedule(dialog);
    });

    withdraw.addEventListener('click', async () => {
      if (!dialog.id) return;
      withdraw.disabled = true;
      try {
        const answer = await call('POST', `api/v1/reviews/${encodeURIComponent(dialog.id)}/withdraw`);
        if (answer.ok) {
          clearTimeout(dialog.timer);
          dialog.stopped = true;
          withdraw.hidden = true;
          setState('', texts().withdrawn);
          return;
        }
      } catch (e) { /* keep polling: the state says what happened */ }
      withdraw.disabled = false;
    });
    return dialog;
  }

  // The panel's "Ask a superior" button (panel.js): offered where a gateway forwards the
  // call in the user's name (the extension alone cannot), opens this part's own dialog.
  S.ways = S.ways || {};
  S.ways.review = {
    label: (T, lang) => (TEXTS[lang] || TEXTS.en).title,
    available: (c) => !!(c && c.enforced && c.backend),
    run(ctx) {
      if (ctx && typeof ctx.close === 'function') ctx.close();
      open({ text: ctx && ctx.text, account: ctx && ctx.config && ctx.config.account });
    },
  };
  S.review = { open, close, TEXTS };

  document.addEventListener('sargs:ask-review', (event) => {
    const detail = (event && event.detail) || {};
    const target = event.target;
    let text = typeof detail.text === 'string' ? detail.text : '';
    if (!text && target && target !== document) {
      text = target.localName === 'textarea' || target.localName === 'input'
        ? target.value : (target.innerText || '');
    }
    open({ text, platform: detail.platform, account: detail.account });
  }, true);
}(globalThis.__sargsGuardParts = globalThis.__sargsGuardParts || {}));
