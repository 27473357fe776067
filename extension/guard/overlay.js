/*
 * Sargs compose guard, part 5 of 8: its own drawing surface and the underlines.
 *
 * Everything is drawn inside the open shadow root of one <sargs-guard> element per
 * document (fixed, z-index max, pointer-events: none): underlines over the offending
 * text, a badge button by the editor, a status line under it ("not checked", "read-only
 * here") and the ARIA live region. It never touches the editor's DOM or the page's
 * styles. Drawing is batched in requestAnimationFrame (rt.requestRender).
 */
(function (S) {
  'use strict';

  const SEVERITIES = ['block', 'warn', 'info'];
  const ORDER = { block: 3, warn: 2, info: 1 };
  // a simulated finding (a rule on trial) is information: it refuses nothing
  const severity = (f) => (f.simulated ? 'info' : SEVERITIES.includes(f.severity) ? f.severity : 'warn');

  const CSS = `
    :host { all: initial; position: fixed; left: 0; top: 0; width: 0; height: 0;
            z-index: 2147483647; pointer-events: none; }
    * { box-sizing: border-box; }
    .mark { position: fixed; pointer-events: none;
            border-bottom: 2px solid #c62828; background: rgba(198, 40, 40, 0.12); }
    .mark.warn { border-bottom-color: #b26a00; background: rgba(230, 140, 0, 0.14); }
    .mark.info { border-bottom-color: #1565c0; background: rgba(21, 101, 192, 0.10); }
    .mark.hot { outline: 2px solid currentColor; outline-offset: 1px; color: #c62828; }
    .mark.warn.hot { color: #b26a00; } .mark.info.hot { color: #1565c0; }
    .badge { position: fixed; pointer-events: auto; min-width: 24px; height: 24px;
             padding: 0 7px; border: 1px solid #7f1d1d; border-radius: 12px;
             background: #c62828; color: #fff; font: 600 12px/22px system-ui, sans-serif;
             cursor: pointer; box-shadow: 0 1px 3px rgba(0,0,0,.3); }
    .badge.warn { background: #a45f00; border-color: #6d4100; }
    .badge.info { background: #1565c0; border-color: #0d3c73; }
    .badge:focus-visible, button:focus-visible, a:focus-visible {
      outline: 3px solid #111; outline-offset: 2px; }
    .status { position: fixed; pointer-events: none; padding: 3px 10px; border-radius: 8px;
              font: 600 12px/18px system-ui, sans-serif;
              background: #fff4e5; color: #6d4100; border: 1px solid #e0a040;
              box-shadow: 0 1px 3px rgba(0,0,0,.15); }
    .status.readonly { background: #e8f0fe; color: #0d3c73; border-color: #7aa7e0; }
    .panel, .card { position: fixed; pointer-events: auto; background: #fff; color: #1b1b1b;
             border: 1px solid #bbb; border-radius: 8px; box-shadow: 0 6px 24px rgba(0,0,0,.2);
             font: 14px/1.45 system-ui, sans-serif; text-align: left; }
    .panel { width: min(380px, calc(100vw - 16px)); max-height: min(60vh, 480px);
             overflow: auto; padding: 10px 12px 8px; }
    .panel:focus-visible { outline: 3px solid #111; }
    .panel header { display: flex; align-items: center; gap: 8px; margin: 0 0 8px; }
    .panel h2 { flex: 1; font-size: 14px; margin: 0; }
    .panel .close { font: 13px system-ui, sans-serif; border: 1px solid #999; background: #f4f4f4;
                    border-radius: 4px; padding: 2px 10px; cursor: pointer; color: #1b1b1b; }
    .panel .state { margin: 0 0 8px; padding: 4px 8px; border-radius: 6px; font-size: 13px;
                    background: #fff4e5; color: #6d4100; }
    .panel ul { margin: 0; padding: 0; list-style: none; }
    .panel li { margin: 0 0 10px; padding-left: 10px; border-left: 4px solid #c62828; }
    .panel li.warn { border-left-color: #b26a00; } .panel li.info { border-left-color: #1565c0; }
    .panel .item { all: unset; display: block; cursor: default; border-radius: 4px; padding: 1px 2px; }
    .panel .item:focus-visible { outline: 3px solid #111; }
    .panel .item:hover { background: #f6f6f6; }
    q, .quote { font-weight: 600; quotes: '\\201C' '\\201D'; overflow-wrap: anywhere; }
    :lang(lv) q { quotes: '\\201E' '\\201C'; } :lang(sv) q { quotes: '\\201D' '\\201D'; }
    :lang(sq) q { quotes: '\\00AB' '\\00BB'; }
    .sev { display: inline-block; font-size: 12px; font-weight: 600; padding: 0 8px;
           border-radius: 10px; background: #fde8e8; color: #8b1a1a; margin: 0 4px 0 0; }
    .sev.warn { background: #fff1dc; color: #6d4100; } .sev.info { background: #e3eefc; color: #0d3c73; }
    .guideline { color: #444; font-size: 13px; margin-top: 2px; }
    a { color: #0b57d0; }
    .panel footer { border-top: 1px solid #e2e2e2; margin-top: 4px; padding-top: 6px;
                    font-size: 12px; color: #444; display: grid; gap: 4px; }
    .card { width: min(340px, calc(100vw - 16px)); padding: 10px 12px;
            border-top: 4px solid #c62828; }
    .card.warn { border-top-color: #b26a00; } .card.info { border-top-color: #1565c0; }
    .card .quote { display: block; margin: 0 0 4px; }
    .card .msg { margin: 2px 0 6px; }
    .card .suggestion { margin-top: 8px; padding: 6px 8px; border-radius: 6px;
                        background: #eaf5ec; color: #1d4d2b; font-size: 13px; }
    .ways { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 8px; }
    .way, .way-area button { font: 600 13px/1.2 system-ui, sans-serif; padding: 5px 10px;
           border-radius: 6px; border: 1px solid #6b6b6b; background: #f4f4f4; color: #1b1b1b;
           cursor: pointer; }
    .way:hover, .way-area button:hover { background: #e8e8e8; }
    .way-area button.primary { background: #0b57d0; border-color: #0842a0; color: #fff; }
    .way-area button:disabled { opacity: .6; cursor: default; }
    .way-area { margin: 0 0 10px; padding: 8px 10px; border-radius: 6px; background: #f3f6fb;
                border: 1px solid #c9d6ea; }
    .way-area h3 { margin: 0 0 6px; font-size: 14px; }
    .way-area label { display: grid; gap: 2px; margin: 0 0 6px; font-size: 13px; }
    .way-area select, .way-area textarea { font: 14px system-ui, sans-serif; width: 100%;
           padding: 4px 6px; border: 1px solid #888; border-radius: 4px; color: #1b1b1b;
           background: #fff; }
    .way-area textarea { margin: 0 0 6px; resize: vertical; }
    .way-area p { margin: 0 0 6px; font-size: 13px; }
    .way-area .buttons { display: flex; gap: 8px; flex-wrap: wrap; }
    .way-note { margin: 6px 0 0; font-size: 13px; }
    .way-note.ok { color: #1d4d2b; } .way-note.error { color: #8b1a1a; }
    [hidden] { display: none !important; }
    .sr { position: absolute; width: 1px; height: 1px; overflow: hidden;
          clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap; }
    .mirror { position: fixed; visibility: hidden; overflow: hidden; pointer-events: none;
              border-color: transparent; }
  `;

  S.overlay = function install(rt) {
    const { T, signal } = rt;

    function h(doc, tag, props, ...children) {
      const node = doc.createElement(tag);
      for (const [k, v] of Object.entries(props || {})) {
        if (k === 'class') node.className = v;
        else if (k === 'text') node.textContent = v;
        else node.setAttribute(k, v);
      }
      for (const c of children) if (c) node.append(c);
      return node;
    }

    function ensureSurface(ctx) {
      if (ctx.host && ctx.host.isConnected) return ctx;
      const doc = ctx.doc;
      const host = doc.createElement(S.editors.HOST_TAG);
      const root = host.attachShadow({ mode: 'open' });
      try {
        const sheet = new ctx.win.CSSStyleSheet();
        sheet.replaceSync(CSS); // CSSOM: allowed under a strict style-src CSP
        root.adoptedStyleSheets = [sheet];
      } catch (e) {
        root.append(h(doc, 'style', { text: CSS }));
      }
      ctx.live = h(doc, 'div', { role: 'status', 'aria-live': 'polite', class: 'sr', lang: rt.config.lang });
      ctx.layer = h(doc, 'div', { class: 'layer', lang: rt.config.lang });
      ctx.mirror = h(doc, 'div', { class: 'mirror', 'aria-hidden': 'true' });
      ctx.card = null;
      root.append(ctx.live, ctx.layer, ctx.mirror);
      root.addEventListener('keydown', (e) => rt.onSurfaceKey(e), { signal });
      (doc.documentElement || doc).append(host);
      ctx.host = host;
      ctx.root = root;
      for (const st of rt.states.values()) if (st.ctx === ctx) st.ui = null;
      return ctx;
    }

    function announce(ctx, message) {
      ensureSurface(ctx);
      if (ctx.live.textContent === message) ctx.live.textContent = '';
      ctx.live.textContent = message;
    }

    /** The line under an editor saying what the guard cannot do for it, or ''. */
    function statusOf(state) {
      if (state.unavailable) return state.unavailable === 'too-long' ? T.tooLong : T.unavailable;
      if (rt.config.readonly) return T.readonly;
      return '';
    }

    function place(el, box, win, width, height) {
      const vw = win.innerWidth;
      const vh = win.innerHeight;
      const left = Math.max(8, Math.min(box.right - width, vw - width - 8));
      const below = box.bottom + 6;
      const top = below + height <= vh - 4 || box.top - 6 - height < 4 ? below : box.top - 6 - height;
      el.style.left = `${left}px`;
      el.style.top = `${Math.max(4, top)}px`;
    }

    function renderState(state) {
      const ui = state.ui;
      const { marks, badge, status } = ui;
      const doc = state.ctx.doc;
      const box = state.el.getBoundingClientRect();
      const visible = box.width > 0 && box.height > 0;
      const shown = state.findings.length > 0 && visible;
      const frag = doc.createDocumentFragment();
      state.hits = [];
      if (shown && !state.stale) {
        for (const f of state.findings) {
          if (f.start === f.end) continue;
          const rects = state.kind === 'field'
            ? S.text.fieldRects(state.el, state.ctx.mirror, f) : S.text.richRects(state.el, state.map, f);
          for (const r of rects) {
            const m = doc.createElement('div');
            m.className = `mark ${severity(f)}${state.hot === f ? ' hot' : ''}`;
            m.dataset.rule = f.rule;
            m.dataset.start = String(f.start);
            m.dataset.end = String(f.end);
            Object.assign(m.style, {
              left: `${r.left}px`, top: `${r.top}px`, width: `${r.width}px`, height: `${r.height}px`,
            });
            frag.append(m);
            state.hits.push({ finding: f, rect: r });
          }
        }
      }
      marks.replaceChildren(frag);
      badge.hidden = !shown;
      if (shown) {
        const top = state.findings.reduce((a, f) => (ORDER[severity(f)] > ORDER[a] ? severity(f) : a), 'info');
        badge.className = `badge ${top}`;
        badge.textContent = String(state.findings.length);
        badge.setAttribute('aria-label', T.badge(state.findings.length));
        const win = state.ctx.win; // the editor's corner, or the screen's edge if it overflows
        badge.style.left = `${Math.max(0, Math.min(box.right, win.innerWidth - 4) - 32)}px`;
        badge.style.top = `${Math.max(0, Math.min(box.bottom, win.innerHeight - 4) - 28)}px`;
      }
      const said = statusOf(state);
      const focused = state.ctx.doc.activeElement && (state.el === rt.deepActive(state.ctx.doc)
        || state.el.contains(rt.deepActive(state.ctx.doc)));
      status.hidden = !(said && visible && (focused || state.unavailable));
      if (!status.hidden) {
        status.textContent = said;
        status.className = `status${state.unavailable ? '' : ' readonly'}`;
        status.style.maxWidth = `${Math.max(220, Math.min(box.width, state.ctx.win.innerWidth - 8))}px`;
        const w = status.offsetWidth;
        status.style.left = `${Math.max(4, Math.min(box.right, state.ctx.win.innerWidth - 4) - w)}px`;
        status.style.top = `${box.bottom + 4}px`;
      }
      if (!shown && !state.unavailable) rt.closePanel(state);
      rt.renderPanel(state, box, place);
    }

    function render() {
      rt.frameRequested = false;
      if (signal.aborted) return;
      for (const state of Array.from(rt.states.values())) {
        if (!state.el.isConnected) { rt.untrack(state); continue; }
        if (!state.ui) {
          if (!statusOf(state)) continue;
          ensureUi(state);
        }
        renderState(state);
      }
      for (const ctx of rt.docs.values()) rt.renderCard(ctx, place);
    }

    function requestRender() {
      if (rt.frameRequested || signal.aborted) return;
      rt.frameRequested = true;
      requestAnimationFrame(render);
    }

    let uiSeq = 0;
    function ensureUi(state) {
      const ctx = ensureSurface(state.ctx);
      if (state.ui && state.ui.badge.isConnected) return state.ui;
      const doc = ctx.doc;
      const id = `sargs-panel-${++uiSeq}`;
      const marks = h(doc, 'div', { class: 'marks', 'aria-hidden': 'true' });
      const badge = h(doc, 'button', {
        type: 'button', class: 'badge', 'aria-expanded': 'false', 'aria-controls': id, hidden: '',
      });
      const status = h(doc, 'div', { class: 'status', hidden: '' });
      const panel = rt.makePanel(state, id);
      badge.addEventListener('click', () => rt.togglePanel(state, null), { signal });
      ctx.layer.append(marks, status, badge, panel.el);
      state.ui = {
        marks, badge, status, panel: panel.el, list: panel.list, state: panel.state, foot: panel.foot, ways: panel.ways,
      };
      return state.ui;
    }

    Object.assign(rt, { h, ensureSurface, announce, ensureUi, render, requestRender, severity, statusOf });
  };
}(globalThis.__sargsGuardParts = globalThis.__sargsGuardParts || {}));
