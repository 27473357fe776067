/*
 * Sargs compose guard, part 6 of 8: the panel and the card that explain each finding.
 *
 * The badge opens a panel listing each finding: the words it is about (quoted), how
 * serious it is, the message and the guideline clause (linked to the service's
 * guidelines page in the user's language). The card shows one finding where it is:
 *   - pointer: underlines take no pointer events, so the mouse position is hit-tested
 *     against the rects drawn last frame; the card stays while the pointer is on it;
 *   - keyboard: moving the caret into underlined words (arrows, Home/End, a click), or
 *     focusing a finding in the panel, shows its card and outlines its underline.
 * Neither ever takes focus from the editor. Escape closes the card, then the panel.
 *
 * Ways forward: each finding shows a button per way its `ways` allow that has a handler
 * in `S.ways` (client.js) available here. A button (in the card or the panel) opens the
 * panel with the handler's form in its "ways" area. This part's own handlers:
 * acknowledge (confirm), justify (a reason from the policy's list, or free text) and
 * report (an optional note); each records the choice through `client.proceed` and says
 * what happened ("you may post exactly this text once …"). The editor then gets a
 * bubbling `sargs:proceed` event {way, rules, allowed}. A simulated finding (a rule on
 * trial) is shown as information, "would block", with no ways.
 */
(function (S) {
  'use strict';

  const QUOTE_MAX = 80;
  const NAV_KEYS = /^(Arrow|Home$|End$|Page)/;

  S.panel = function install(rt) {
    const { T, config, signal } = rt;
    const h = (...a) => rt.h(...a);
    let guidelinesUrl = config.guidelines;
    if (!guidelinesUrl && config.guidelinesLater) {
      Promise.resolve().then(() => config.guidelinesLater()).then((url) => {
        if (typeof url === 'string' && /^https?:/.test(url)) guidelinesUrl = url;
      }, () => {});
    }

    const label = (sev) => (sev === 'block' && !config.enforced ? T.blockAdvice : T[sev]);
    const labelOf = (f) => (f.simulated ? T.simulated(f.severity) : label(rt.severity(f)));

    function guidelineText(g) { // the contract's guideline is a string; tolerate {title, text}
      if (!g) return '';
      if (typeof g === 'string') return g;
      return [g.title, g.text].filter((x) => typeof x === 'string' && x).join(' — ');
    }

    function link(doc, rule, text) {
      if (!guidelinesUrl) return null;
      const anchor = rule ? `#rule-${encodeURIComponent(rule)}` : '';
      const url = `${guidelinesUrl}?lang=${encodeURIComponent(config.lang)}${anchor}`;
      return h(doc, 'a', { href: url, target: '_blank', rel: 'noopener noreferrer', text });
    }

    function quoted(state, f) {
      if (f.start === f.end) return h(state.ctx.doc, 'span', { class: 'quote', text: T.wholeDraft });
      let words = (state.checkedText || '').slice(f.start, f.end).replace(/\s+/g, ' ').trim();
      if (words.length > QUOTE_MAX) words = `${words.slice(0, QUOTE_MAX - 1)}…`;
      return h(state.ctx.doc, 'q', { class: 'quote', text: words });
    }

    /** What one finding says, for the panel and the card. */
    function explain(state, f) {
      const doc = state.ctx.doc;
      const sev = rt.severity(f);
      const guideline = guidelineText(f.guideline);
      const parts = [
        quoted(state, f),
        h(doc, 'div', { class: 'msg' },
          h(doc, 'span', { class: `sev ${sev}`, text: labelOf(f) }),
          h(doc, 'span', { text: String(f.message || f.rule) })),
      ];
      if (guideline) {
        const more = link(doc, f.rule, T.readGuideline);
        parts.push(h(doc, 'div', { class: 'guideline', text: `${T.guideline}: ${guideline} ` }, more));
      }
      if (typeof f.suggestion === 'string' && f.suggestion) {
        parts.push(h(doc, 'div', { class: 'suggestion', text: `${T.suggestion}: ${f.suggestion}` }));
      }
      const ways = waysOf(f);
      if (ways.length) {
        parts.push(h(doc, 'div', { class: 'ways', role: 'group', 'aria-label': T.waysTitle },
          ...ways.map((way) => {
            const b = h(doc, 'button', { type: 'button', class: 'way', 'data-way': way, text: wayLabel(way) });
            b.addEventListener('click', (e) => { e.stopPropagation(); openWay(state, f, way); }, { signal });
            return b;
          })));
      }
      return parts;
    }

    // -- ways forward ----------------------------------------------------------------------

    const handlerOf = (way) => {
      const got = S.ways[way];
      if (typeof got === 'function') return { run: got };
      return got && typeof got.run === 'function' ? got : null;
    };

    function wayLabel(way) {
      const got = handlerOf(way);
      if (got && typeof got.label === 'function') return String(got.label(T, config.lang));
      return T[`way_${way}`] || way;
    }

    /** The ways shown for a finding: allowed by the policy, handled and available here. */
    function waysOf(f) {
      if (f.simulated || !Array.isArray(f.ways) || rt.severity(f) === 'info') return [];
      return f.ways.filter((way) => {
        const got = handlerOf(way);
        return got && (typeof got.available !== 'function' || got.available(config));
      });
    }

    /** Findings a way applies to at once: every enforced one that allows it. */
    function coveredBy(state, way) {
      return state.findings.filter((f) => !f.simulated && (f.severity === 'block' || f.severity === 'warn')
        && Array.isArray(f.ways) && f.ways.includes(way));
    }

    function openWay(state, f, way) {
      const got = handlerOf(way);
      if (!got) return;
      togglePanel(state, true);
      closeCard(state.ctx, null); // the form is in the panel: the card must not cover it
      const ui = state.ui;
      const doc = state.ctx.doc;
      const area = ui.ways;
      const findings = coveredBy(state, way);
      const rules = [...new Set(findings.map((x) => x.rule))];
      const text = state.checkedText || '';
      const note = h(doc, 'p', { class: 'way-note', role: 'status' });
      const body = h(doc, 'div', { class: 'way-body' });
      area.replaceChildren(h(doc, 'h3', { text: wayLabel(way) }), body, note);
      area.hidden = false;
      area.dataset.way = way;
      const say = (message, kind) => {
        note.textContent = message;
        note.className = `way-note ${kind || ''}`;
        rt.announce(state.ctx, message);
        rt.requestRender();
      };
      const ctx = {
        way, text, rules, findings, state, finding: f, area: body, doc, h, T, config, lang: config.lang,
        say,
        close() { area.hidden = true; area.replaceChildren(); rt.requestRender(); },
        async submit(extra) {
          if (state.stale || state.checkedText !== text) { say(T.staleText, 'error'); return null; }
          say(T.sending, '');
          const { status, answer } = await S.client.proceed(config, {
            text, rules, way, lang: config.lang, ...(extra || {}),
          });
          if (status === 200) {
            const allowed = !!answer.allowance;
            const minutes = answer.expires ? Math.max(1, Math.round((Date.parse(answer.expires) - Date.now()) / 60000)) : 0;
            if (allowed) state.allowedText = text;
            say(allowed ? T.allowedOnce(minutes) : (answer.reported ? T.stillBlocked : T.reported), 'ok');
            body.replaceChildren();
            state.el.dispatchEvent(new CustomEvent('sargs:proceed', {
              bubbles: true, composed: true, detail: { way, rules, allowed, reported: !!answer.reported },
            }));
            return answer;
          }
          const detail = Array.isArray(answer.details) && answer.details[0] ? answer.details[0].message : '';
          say(`${T.proceedFailed} ${answer.message || detail || ''}`.trim(), 'error');
          return null;
        },
      };
      got.run(ctx);
      const first = body.querySelector('select, textarea, input, button');
      if (first) first.focus();
    }

    function form(ctx, fields, extra) {
      const { doc, T: t } = ctx;
      const ok = h(doc, 'button', { type: 'button', class: 'primary', text: t.send });
      const cancel = h(doc, 'button', { type: 'button', text: t.cancel });
      ok.addEventListener('click', async () => {
        const given = extra();
        if (given === null) return;
        ok.disabled = true;
        const done = await ctx.submit(given);
        if (!done) ok.disabled = false;
      }, { signal });
      cancel.addEventListener('click', () => ctx.close(), { signal });
      ctx.area.replaceChildren(...fields, h(doc, 'div', { class: 'buttons' }, ok, cancel));
    }

    const available = (c) => S.client.canProceed(c);
    S.ways.acknowledge = S.ways.acknowledge || {
      available,
      run(ctx) {
        form(ctx, [ctx.h(ctx.doc, 'p', { text: ctx.T.confirmAcknowledge })], () => ({}));
      },
    };
    S.ways.justify = S.ways.justify || {
      available,
      run(ctx) {
        const { doc, T: t } = ctx;
        const select = h(doc, 'select', { class: 'reason' });
        const other = h(doc, 'option', { value: '', text: t.reasonOther });
        select.append(other);
        const note = h(doc, 'textarea', { class: 'note', maxlength: '500', rows: '2' });
        const idFor = `sargs-reason-${Math.random().toString(36).slice(2)}`;
        note.id = idFor;
        S.client.reasons(ctx.config).then((got) => {
          for (const r of got.reasons) select.insertBefore(h(doc, 'option', { value: r.id, text: String(r.label || r.id) }), other);
          if (got.reasons.length) select.value = got.reasons[0].id;
        });
        form(ctx, [
          h(doc, 'label', null, h(doc, 'span', { text: t.reasonLabel }), select),
          h(doc, 'label', { for: idFor }, h(doc, 'span', { text: t.noteLabel })), note,
        ], () => {
          const reason = select.value || note.value.trim();
          if (!reason) { ctx.say(t.noteLabel, 'error'); note.focus(); return null; }
          return { reason };
        });
      },
    };
    S.ways.report = S.ways.report || {
      available,
      run(ctx) {
        const { doc, T: t } = ctx;
        const note = h(doc, 'textarea', { class: 'note', maxlength: '500', rows: '2', 'aria-label': t.reportNote });
        form(ctx, [h(doc, 'p', { text: t.reportNote }), note], () => (note.value.trim() ? { reason: note.value.trim() } : {}));
      },
    };

    function makePanel(state, id) {
      const doc = state.ctx.doc;
      const close = h(doc, 'button', { type: 'button', class: 'close', text: T.close });
      const line = h(doc, 'p', { class: 'state', hidden: '' });
      const ways = h(doc, 'section', { class: 'way-area', hidden: '' });
      const list = h(doc, 'ul');
      const foot = h(doc, 'footer');
      const el = h(doc, 'section', { id, class: 'panel', tabindex: '-1', 'aria-label': T.panel, hidden: '' },
        h(doc, 'header', null, h(doc, 'h2', { text: T.panel }), close), line, ways, list, foot);
      close.addEventListener('click', () => { closePanel(state); state.ui.badge.focus(); }, { signal });
      return { el, list, state: line, foot, ways };
    }

    function fillPanel(state) {
      const ui = state.ui;
      if (!ui) return;
      const doc = state.ctx.doc;
      ui.list.replaceChildren(...state.findings.map((f) => {
        const [quote, ...rest] = explain(state, f);
        const item = h(doc, 'button', { type: 'button', class: 'item' }, quote, rest[0]);
        const show = () => { // not over an open form of a way forward (phones: it would cover it)
          if (state.ui && state.ui.ways && !state.ui.ways.hidden) return;
          state.hot = f; openCard(state, f, 'panel');
        };
        const hide = () => { if (state.hot === f) state.hot = null; closeCard(state.ctx, 'panel'); };
        item.addEventListener('focus', show, { signal });
        item.addEventListener('blur', hide, { signal });
        item.addEventListener('mouseenter', show, { signal });
        item.addEventListener('mouseleave', hide, { signal });
        return h(doc, 'li', { class: rt.severity(f) }, item, ...rest.slice(1)); // guideline, suggestion
      }));
      const said = rt.statusOf(state);
      ui.state.hidden = !said;
      ui.state.textContent = said;
      const all = link(doc, '', T.guidelines);
      ui.foot.replaceChildren(...[h(doc, 'span', { text: config.enforced ? T.enforced : T.notEnforced }),
        all ? h(doc, 'span', null, all) : null].filter(Boolean)); // replaceChildren(null) writes "null"
    }

    function togglePanel(state, open) {
      const ui = rt.ensureUi(state);
      const show = open === null ? ui.panel.hidden : open;
      if (show) fillPanel(state);
      ui.panel.hidden = !show;
      ui.badge.setAttribute('aria-expanded', String(show));
      if (!show) closeCard(state.ctx, 'panel');
      rt.requestRender();
    }

    function closePanel(state) {
      if (!state.ui) return;
      if (state.ui.ways && !state.ui.ways.hidden) { state.ui.ways.hidden = true; state.ui.ways.replaceChildren(); }
      if (!state.ui.panel.hidden) {
        state.ui.panel.hidden = true;
        state.ui.badge.setAttribute('aria-expanded', 'false');
      }
      if (state.ctx.cardFor && state.ctx.cardFor.state === state) closeCard(state.ctx, null);
    }

    function renderPanel(state, box, place) {
      const panel = state.ui.panel;
      if (panel.hidden) return;
      place(panel, box, state.ctx.win, panel.offsetWidth, Math.min(panel.offsetHeight, 480));
    }

    // -- the card ------------------------------------------------------------------------

    function openCard(state, f, source) {
      const ctx = rt.ensureSurface(state.ctx);
      clearTimeout(ctx.cardTimer);
      if (ctx.cardFor && ctx.cardFor.finding === f && ctx.card && !ctx.card.hidden) {
        ctx.cardFor.source = source;
        return;
      }
      if (!ctx.card || !ctx.card.isConnected) {
        ctx.card = h(ctx.doc, 'div', { class: 'card', role: 'tooltip', hidden: '' });
        ctx.layer.append(ctx.card);
      }
      ctx.card.className = `card ${rt.severity(f)}`;
      ctx.card.dataset.rule = f.rule;
      ctx.card.replaceChildren(...explain(state, f));
      ctx.card.hidden = false;
      ctx.cardFor = { state, finding: f, source };
      if (source === 'caret') rt.announce(ctx, ctx.card.textContent);
      rt.requestRender();
    }

    /** Close the card (only if `source` opened it, when given). */
    function closeCard(ctx, source) {
      if (!ctx.cardFor || (source && ctx.cardFor.source !== source)) return;
      clearTimeout(ctx.cardTimer);
      if (ctx.card) ctx.card.hidden = true;
      const st = ctx.cardFor.state;
      ctx.cardFor = null;
      if (st.hot) st.hot = null;
      rt.requestRender();
    }

    function renderCard(ctx) {
      const card = ctx.card;
      if (!card || card.hidden || !ctx.cardFor) return;
      const { state, finding } = ctx.cardFor;
      const hit = (state.hits || []).find((x) => x.finding === finding);
      if (!hit || !state.findings.includes(finding)) { closeCard(ctx, null); return; }
      const r = hit.rect;
      const vw = ctx.win.innerWidth;
      const vh = ctx.win.innerHeight;
      const w = card.offsetWidth;
      const ht = card.offsetHeight;
      card.style.left = `${Math.max(8, Math.min(r.left, vw - w - 8))}px`;
      const below = r.bottom + 6;
      card.style.top = `${below + ht <= vh - 4 || r.top - 6 - ht < 4 ? below : r.top - 6 - ht}px`;
    }

    function hitAt(ctx, x, y) {
      for (const state of rt.states.values()) {
        if (state.ctx !== ctx || !state.hits) continue;
        for (const { finding, rect } of state.hits) {
          if (x >= rect.left && x <= rect.right && y >= rect.top - 1 && y <= rect.bottom + 2) {
            return { state, finding };
          }
        }
      }
      return null;
    }

    function onPointer(ctx, x, y) {
      const over = hitAt(ctx, x, y);
      if (over) { openCard(over.state, over.finding, 'pointer'); return; }
      if (!ctx.cardFor || ctx.cardFor.source !== 'pointer' || !ctx.card) return;
      const c = ctx.card.getBoundingClientRect();
      if (x >= c.left - 4 && x <= c.right + 4 && y >= c.top - 8 && y <= c.bottom + 4) {
        clearTimeout(ctx.cardTimer);
        return;
      }
      clearTimeout(ctx.cardTimer);
      ctx.cardTimer = setTimeout(() => closeCard(ctx, 'pointer'), 300);
    }

    /** The caret moved (navigation key or click): show the card of the words it is in. */
    function onCaret(state, e) {
      if (e && e.type === 'keyup' && !NAV_KEYS.test(e.key)) return;
      if (state.stale) return;
      const at = S.text.caretOffset(state.el, state.kind, state.map);
      const f = at < 0 ? null : state.findings.find((x) => x.start < x.end && at >= x.start && at <= x.end);
      if (f) { state.hot = f; openCard(state, f, 'caret'); } else { closeCard(state.ctx, 'caret'); }
    }

    function onSurfaceKey(e) {
      if (e.key !== 'Escape') return;
      const path = e.composedPath();
      for (const st of rt.states.values()) {
        if (st.ui && !st.ui.panel.hidden && (path.includes(st.ui.panel) || path.includes(st.ui.badge))) {
          closePanel(st);
          st.ui.badge.focus();
          e.stopPropagation();
        }
      }
    }

    Object.assign(rt, {
      makePanel, fillPanel, togglePanel, closePanel, renderPanel, renderCard, openCard, closeCard,
      onPointer, onCaret, onSurfaceKey,
    });
  };
}(globalThis.__sargsGuardParts = globalThis.__sargsGuardParts || {}));
