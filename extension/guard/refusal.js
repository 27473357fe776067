/*
 * Sargs compose guard, part 8 of 9: the gateway's refusal, explained by the guard.
 *
 * When the gateway refuses a post, the platform's page shows whatever it makes of a 403
 * ("Something went wrong"). Behind the gateway (config.enforced) the guard asks the
 * gateway instead: after a possible post (a click on a button, Ctrl+Enter, a submit) it
 * polls GET {backend}api/v1/last-refusal a few times (proxy/gateway/lastrefusal.py) and,
 * when the gateway refused a post of this user on this platform after that moment, shows
 * its own explanation: what was found, the guideline, and the ways forward the findings
 * allow. Without the gateway nothing is refused, so nothing is polled.
 *
 * The box lives in the guard's shadow root (role="alertdialog", Escape or Close ends it);
 * its words are here in en, lv, sv and sq.
 */
(function (S) {
  'use strict';

  const POLL_MS = [500, 1200, 2500, 5000];

  const WORDS = {
    en: {
      title: 'Sargs did not send this post',
      why: 'Your post was stopped before it reached the platform. Nothing was published.',
      found: 'What Sargs found',
      ways: 'What you can do',
      edit: 'Edit the text and post again.',
      acknowledge: 'Confirm you have read the warning and post anyway.',
      justify: 'Post with a reason (it is recorded).',
      report: 'Report that this finding is wrong.',
      review: 'Ask your superior to review the post.',
      waysWhere: 'Open the Sargs panel by the editor (Alt+Shift+S) for these choices.',
      openPanel: 'Show these choices',
      guideline: 'Guideline',
      close: 'Close',
      other: 'The post could not be checked, so it was not sent. Try again in a moment.',
    },
    lv: {
      title: 'Sargs nenosūtīja šo ierakstu',
      why: 'Jūsu ieraksts tika apturēts, pirms tas sasniedza platformu. Nekas netika publicēts.',
      found: 'Ko Sargs atrada',
      ways: 'Ko jūs varat darīt',
      edit: 'Izlabojiet tekstu un publicējiet vēlreiz.',
      acknowledge: 'Apstipriniet, ka izlasījāt brīdinājumu, un publicējiet tomēr.',
      justify: 'Publicējiet, norādot iemeslu (tas tiek reģistrēts).',
      report: 'Ziņojiet, ka šis atradums ir kļūdains.',
      review: 'Lūdziet vadītājam pārskatīt ierakstu.',
      waysWhere: 'Šīs izvēles ir Sargs panelī pie redaktora (Alt+Shift+S).',
      openPanel: 'Rādīt šīs izvēles',
      guideline: 'Vadlīnija',
      close: 'Aizvērt',
      other: 'Ierakstu nevarēja pārbaudīt, tāpēc tas netika nosūtīts. Mēģiniet vēlreiz pēc brīža.',
    },
    sv: {
      title: 'Sargs skickade inte det här inlägget',
      why: 'Inlägget stoppades innan det nådde plattformen. Inget publicerades.',
      found: 'Vad Sargs hittade',
      ways: 'Vad du kan göra',
      edit: 'Ändra texten och publicera igen.',
      acknowledge: 'Bekräfta att du har läst varningen och publicera ändå.',
      justify: 'Publicera med en motivering (den registreras).',
      report: 'Anmäl att fyndet är fel.',
      review: 'Be din chef att granska inlägget.',
      waysWhere: 'Öppna Sargs-panelen vid redigeraren (Alt+Shift+S) för de här valen.',
      openPanel: 'Visa valen',
      guideline: 'Riktlinje',
      close: 'Stäng',
      other: 'Inlägget kunde inte kontrolleras och skickades därför inte. Försök igen om en stund.',
    },
    sq: {
      title: 'Sargs nuk e dërgoi këtë postim',
      why: 'Postimi juaj u ndal para se të arrinte në platformë. Asgjë nuk u publikua.',
      found: 'Çfarë gjeti Sargs',
      ways: 'Çfarë mund të bëni',
      edit: 'Ndryshoni tekstin dhe postoni përsëri.',
      acknowledge: 'Konfirmoni që e lexuat paralajmërimin dhe postoni gjithsesi.',
      justify: 'Postoni me një arsye (ajo regjistrohet).',
      report: 'Raportoni që ky gjetje është e gabuar.',
      review: 'Kërkoni nga eprori juaj ta shqyrtojë postimin.',
      waysWhere: 'Hapni panelin e Sargs pranë redaktorit (Alt+Shift+S) për këto zgjedhje.',
      openPanel: 'Shfaq këto zgjedhje',
      guideline: 'Udhëzimi',
      close: 'Mbyll',
      other: 'Postimi nuk mund të kontrollohej, prandaj nuk u dërgua. Provoni përsëri pas pak.',
    },
  };
  const WAYS = ['acknowledge', 'justify', 'report', 'review'];

  const CSS = `
    .refusal { position: fixed; pointer-events: auto; left: 50%; top: 16px;
               transform: translateX(-50%); width: min(460px, calc(100vw - 16px));
               max-height: calc(100vh - 32px); overflow: auto; box-sizing: border-box;
               background: #fff; color: #1b1b1b; border: 1px solid #bbb;
               border-top: 5px solid #c62828; border-radius: 8px; padding: 12px 14px;
               box-shadow: 0 8px 28px rgba(0,0,0,.28); font: 14px/1.45 system-ui, sans-serif;
               text-align: left; }
    .refusal header { display: flex; gap: 8px; align-items: start; }
    .refusal h2 { flex: 1; font-size: 16px; margin: 0 0 6px; }
    .refusal h3 { font-size: 13px; margin: 10px 0 4px; text-transform: none; color: #333; }
    .refusal p { margin: 0 0 6px; }
    .refusal ul { margin: 0; padding: 0 0 0 18px; }
    .refusal li { margin: 0 0 6px; }
    .refusal .g { color: #444; font-size: 13px; }
    .refusal button { font: 13px system-ui, sans-serif; border: 1px solid #999; background: #f4f4f4;
                      border-radius: 4px; padding: 2px 10px; cursor: pointer; color: #1b1b1b; }
    .refusal button:focus-visible { outline: 3px solid #111; outline-offset: 2px; }
  `;

  S.refusal = function install(rt) {
    const { config, signal } = rt;
    if (!config.enforced || !config.backend) return; // nothing refuses posts here
    const W = WORDS[config.lang] || WORDS.en;
    const seen = new Set();
    let timers = [];
    let since = 0;

    function el(doc, tag, props, ...children) {
      const node = doc.createElement(tag);
      for (const [k, v] of Object.entries(props || {})) {
        if (k === 'text') node.textContent = v;
        else if (k === 'class') node.className = v;
        else node.setAttribute(k, v);
      }
      for (const c of children) if (c) node.append(c);
      return node;
    }

    async function poll() {
      let data;
      try {
        const resp = await fetch(`${config.backend}api/v1/last-refusal`, {
          credentials: 'same-origin', cache: 'no-store', signal,
        });
        if (!resp.ok) return false;
        data = await resp.json();
      } catch (e) {
        return false;
      }
      const r = data && data.refusal;
      if (!r || typeof r.id !== 'string' || seen.has(r.id)) return false;
      const age = Number(r.age) * 1000;
      if (!(age >= 0) || age > Date.now() - since + 1000) return false; // from before the click
      seen.add(r.id);
      for (const t of timers) clearTimeout(t);
      show(r);
      return true;
    }

    function soon() {
      for (const t of timers) clearTimeout(t);
      since = Date.now();
      timers = POLL_MS.map((ms) => setTimeout(poll, ms));
    }

    function close(ctx) {
      if (ctx.refusal) { ctx.refusal.remove(); ctx.refusal = null; }
    }

    function show(r) {
      const ctx = rt.contextFor(document);
      if (!ctx) return;
      rt.ensureSurface(ctx);
      close(ctx);
      const doc = ctx.doc;
      if (!ctx.refusalStyle) {
        ctx.refusalStyle = el(doc, 'style', { text: CSS });
        ctx.root.append(ctx.refusalStyle);
      }
      const findings = Array.isArray(r.findings) ? r.findings.filter((f) => f && typeof f === 'object') : [];
      const closeBtn = el(doc, 'button', { type: 'button', class: 'close', text: W.close });
      const box = el(doc, 'section', {
        class: 'refusal', role: 'alertdialog', 'aria-labelledby': 'sargs-refusal-title',
        lang: config.lang, tabindex: '-1',
      }, el(doc, 'header', null, el(doc, 'h2', { id: 'sargs-refusal-title', text: W.title }), closeBtn));
      const said = typeof r.message === 'string' ? r.message : '';
      box.append(el(doc, 'p', { text: findings.length ? W.why : (said || W.other) }));
      if (findings.length) {
        box.append(el(doc, 'h3', { text: W.found }));
        const list = el(doc, 'ul');
        for (const f of findings) {
          const item = el(doc, 'li', { 'data-rule': String(f.rule || '') },
            el(doc, 'span', { class: 'msg', text: String(f.message || f.rule || '') }));
          if (f.guideline) item.append(el(doc, 'div', { class: 'g', text: `${W.guideline}: ${f.guideline}` }));
          list.append(item);
        }
        box.append(list);
        const ways = [];
        for (const f of findings) {
          if (f.severity === 'block' || f.severity === 'warn') {
            for (const w of Array.isArray(f.ways) ? f.ways : []) if (WAYS.includes(w) && !ways.includes(w)) ways.push(w);
          }
        }
        box.append(el(doc, 'h3', { text: W.ways }));
        const todo = el(doc, 'ul', { class: 'ways' }, el(doc, 'li', { 'data-way': 'edit', text: W.edit }));
        for (const w of ways) todo.append(el(doc, 'li', { 'data-way': w, text: W[w] }));
        box.append(todo);
        // The choices are buttons in the editor's panel (panel.js, S.ways): open it there when
        // the editor still holds the findings, else say where the panel is.
        const editor = ways.length ? Array.from(rt.states.values())
          .find((st) => st.ctx === ctx && st.el.isConnected && st.findings.length) : null;
        if (editor) {
          const open = el(doc, 'button', { type: 'button', class: 'open-panel', text: W.openPanel });
          open.addEventListener('click', () => {
            close(ctx);
            rt.togglePanel(editor, true);
            rt.render();
            if (editor.ui) editor.ui.panel.focus();
          }, { signal });
          box.append(el(doc, 'p', null, open));
        } else if (ways.length) box.append(el(doc, 'p', { class: 'g', text: W.waysWhere }));
      }
      closeBtn.addEventListener('click', () => close(ctx), { signal });
      box.addEventListener('keydown', (e) => { if (e.key === 'Escape') close(ctx); }, { signal });
      ctx.root.append(box);
      ctx.refusal = box;
      rt.announce(ctx, `${W.title}. ${findings.map((f) => String(f.message || f.rule)).join(' ')}`);
      box.focus();
    }

    const opts = { capture: true, passive: true, signal };
    document.addEventListener('click', (e) => {
      const path = e.composedPath();
      const ctx = rt.contextFor(document);
      if (ctx && ctx.host && path.includes(ctx.host)) return; // our own buttons
      if (path.some((n) => n && n.nodeType === 1 && (n.localName === 'button' || n.getAttribute('role') === 'button'
        || (n.localName === 'input' && (n.type === 'submit' || n.type === 'button'))))) soon();
    }, opts);
    document.addEventListener('keydown', (e) => { if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') soon(); }, opts);
    document.addEventListener('submit', soon, opts);
    rt.refusalSoon = soon;
  };
}(globalThis.__sargsGuardParts = globalThis.__sargsGuardParts || {}));
