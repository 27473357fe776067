/*
 * Sargs compose guard, part 8 of 8: editors tracked, checked and reported.
 *
 * Inline compliance warnings in social-media compose boxes. The guard is eight classic
 * scripts in extension/guard/, in the order the extension's manifest lists them (its
 * content_scripts); the service and the gateway serve them joined in that order as one
 * script, /static/compose-guard.js (proxy/guardscript.py; docs/injection.md says why).
 * Each part adds itself to globalThis.__sargsGuardParts; this last part takes the parts
 * and deletes that name.
 *
 *   i18n.js     its own words in en, lv, sv, sq
 *   editors.js  which elements are editors (one table of per-platform selectors), why not
 *   text.js     the editor's text, UTF-16 offsets, DOM ranges and rects
 *   client.js   configuration (script tag, __SARGS_CONFIG__) and POST {backend}api/v1/check
 *   overlay.js  the <sargs-guard> shadow root: underlines, badge, status line, live region
 *   panel.js    the panel listing findings and the card explaining one where it is
 *   documents.js  documents, open shadow roots, same-origin frames; their events
 *   refusal.js  the gateway's refusal of a post, explained by the guard
 *   main.js     tracking editors, debounced checks, events, documents and frames
 *
 * What it does: finds editors (textarea, text input, contenteditable, role="textbox";
 * also inside open shadow roots and same-origin iframes, including ones that appear
 * later), and after ~250 ms without typing (and never while an input method or dead key
 * is composing a character) asks the service about the text. It draws only inside its
 * own shadow root and never touches the editor's DOM, text, caret, selection or undo
 * history, and never moves focus while typing.
 *
 * Public surface (the contract in DESIGN.md, "The content script"):
 *   - after each check of an editor: a bubbling, composed
 *       CustomEvent("sargs:findings", {detail: {findings, verdict}}) on the editor;
 *   - when the service cannot be reached: a bubbling, composed
 *       CustomEvent("sargs:unavailable", {detail: {reason}}) on the editor, and a visible
 *       "Not checked: Sargs cannot be reached" under it;
 *   - messages announced in a role="status" live region inside the shadow root of
 *     <sargs-guard> (one per document);
 *   - globalThis.__sargsComposeGuard: {version, config, why(el), stop()} — also the
 *     guard that makes a second injection a no-op.
 *
 * Keyboard: Tab reaches the badge (a <button>, aria-expanded); Enter/Space toggles the
 * panel; Escape closes it. From inside an editor with findings, Alt+Shift+S opens the
 * panel and moves focus to it. Moving the caret into underlined words shows their card.
 */
(() => {
  'use strict';

  const G = globalThis;
  const S = G.__sargsGuardParts;
  delete G.__sargsGuardParts;
  if (G.__sargsComposeGuard || !S || !S.documents) return; // injected twice

  const VERSION = '2';
  const DEBOUNCE_MS = 250;
  const SWEEP_MS = [400, 1500]; // after a possible post: did a field get cleared by script?
  const { HOST_TAG, kindOf, resolveEditor, why } = S.editors;

  const config = S.client.readConfig();
  const controller = new AbortController(); // every listener of this instance
  const signal = controller.signal;
  const rt = {
    config, T: S.i18n.TEXTS[config.lang], signal, frameRequested: false,
    states: new Map(), // editor element -> state
    docs: new Map(), // Document -> context
    observers: [], // MutationObserver / ResizeObserver, disconnected by stop()
    untrack, deepActive, track, schedule, afterPost, sweepSoon, api: null,
  };
  S.overlay(rt);
  S.panel(rt);
  S.documents(rt);
  if (S.refusal) S.refusal(rt); // the gateway's refusals, explained (refusal.js)
  const { states, docs, observers } = rt;

  function deepActive(doc) {
    let el = doc.activeElement;
    while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
    return el;
  }

  function currentText(state) {
    if (state.kind === 'field') return state.el.value;
    state.map = S.text.editorText(state.el);
    return state.map.text;
  }

  // -- editors -----------------------------------------------------------------------------

  function track(candidate, ctx) {
    const target = resolveEditor(candidate);
    if (!target || states.has(target)) return states.get(target) || null;
    if (why(target).length) return null;
    const state = {
      el: target, kind: kindOf(target), ctx: ctx || rt.contextFor(target.ownerDocument),
      timer: 0, seq: 0, inflight: null, checkedText: null, findings: [], verdict: 'ok',
      map: null, stale: false, ui: null, hits: [], hot: null, composing: false, unavailable: '',
    };
    if (!state.ctx) return null;
    rt.ensureSurface(state.ctx); // the live region must exist before it speaks
    states.set(target, state);
    if (state.kind === 'rich') {
      const mo = new MutationObserver(() => schedule(state));
      mo.observe(target, { childList: true, subtree: true, characterData: true });
      observers.push(mo);
      state.mo = mo;
    }
    if (typeof ResizeObserver === 'function') {
      const ro = new ResizeObserver(() => rt.requestRender());
      ro.observe(target);
      observers.push(ro);
      state.ro = ro;
    }
    if (currentText(state).trim()) schedule(state);
    rt.requestRender();
    return state;
  }

  function untrack(state) {
    clearTimeout(state.timer);
    if (state.inflight) state.inflight.abort();
    if (state.mo) state.mo.disconnect();
    if (state.ro) state.ro.disconnect();
    rt.closePanel(state);
    if (state.ui) { state.ui.marks.remove(); state.ui.badge.remove(); state.ui.panel.remove(); state.ui.status.remove(); }
    states.delete(state.el);
  }

  function schedule(state) {
    state.stale = true;
    clearTimeout(state.timer);
    // An input method (or a dead key) is composing: the text is unfinished; compositionend
    // schedules the check.
    if (!state.composing) state.timer = setTimeout(() => check(state), DEBOUNCE_MS);
    rt.requestRender();
  }

  async function check(state) {
    if (!state.el.isConnected || signal.aborted || state.composing) return;
    const text = currentText(state);
    if (text === state.checkedText) { state.stale = false; rt.requestRender(); return; }
    const seq = ++state.seq;
    if (state.inflight) state.inflight.abort();
    state.inflight = new AbortController();
    const answer = await S.client.ask(config, text, state.inflight.signal);
    if (!answer || seq !== state.seq || signal.aborted) return; // aborted or superseded
    state.inflight = null;
    if (answer.reason) { unavailable(state, answer.reason); return; }
    if (currentText(state) !== text) return; // typed on meanwhile; the pending check follows
    const cleared = !text.trim() && state.findings.length > 0;
    state.checkedText = text;
    state.findings = answer.findings;
    state.verdict = answer.result.verdict || (state.findings.length ? 'warn' : 'ok');
    state.stale = false;
    const wasUnavailable = state.unavailable;
    state.unavailable = '';
    if (wasUnavailable) state.ctx.unavailableSaid = false;
    if (cleared) afterPost(state); // emptied after it had findings: posted, or deleted
    report(state, answer.result);
  }

  function unavailable(state, reason) {
    const ctx = state.ctx;
    state.unavailable = reason;
    state.findings = [];
    state.stale = false;
    if (!ctx.unavailableSaid) { // once, until a check succeeds again
      ctx.unavailableSaid = true;
      rt.announce(ctx, rt.statusOf(state));
    }
    rt.ensureUi(state);
    rt.fillPanel(state);
    rt.requestRender();
    state.el.dispatchEvent(new CustomEvent('sargs:unavailable', {
      bubbles: true, composed: true, detail: { reason },
    }));
  }

  function report(state, result) {
    const findings = state.findings;
    if (findings.length || state.ui) {
      rt.ensureUi(state);
      if (!state.ui.panel.hidden) rt.fillPanel(state);
    }
    const said = findings.map((f) => `${f.rule}:${state.checkedText.slice(f.start, f.end)}`).join('|');
    if (findings.length && said !== state.said) { // announce changes, not every keystroke
      const messages = findings.map((f) => String(f.message || f.rule)).join(' ');
      rt.announce(state.ctx, `${rt.T.findings(findings.length)}: ${messages}`);
    }
    if (!findings.length && state.said && state.ctx.live) state.ctx.live.textContent = ''; // now clean: quiet
    state.said = said;
    rt.requestRender();
    state.el.dispatchEvent(new CustomEvent('sargs:findings', {
      bubbles: true, composed: true,
      detail: { findings: result.findings, verdict: result.verdict || state.verdict },
    }));
  }

  // -- posting: the platform clears (or removes) the editor; the panel goes with it -------

  function afterPost(state) {
    rt.closePanel(state);
    rt.closeCard(state.ctx, null);
  }

  let sweepTimers = [];
  function sweepSoon() {
    for (const t of sweepTimers) clearTimeout(t);
    sweepTimers = SWEEP_MS.map((ms) => setTimeout(() => {
      for (const st of states.values()) {
        if (!st.el.isConnected) continue;
        if (st.kind === 'field' && st.checkedText !== null && st.el.value !== st.checkedText && !st.stale) schedule(st);
      }
      rt.requestRender();
    }, ms));
  }

  function stop() {
    controller.abort();
    for (const o of observers) o.disconnect();
    for (const st of states.values()) clearTimeout(st.timer);
    for (const t of sweepTimers) clearTimeout(t);
    states.clear();
    for (const ctx of docs.values()) {
      if (ctx.host) ctx.host.remove();
      if (ctx.win !== G) { try { delete ctx.win.__sargsComposeGuard; } catch (e) { /* gone */ } }
    }
    docs.clear();
    delete G.__sargsComposeGuard;
  }

  const shown = { ...config, check: undefined, guidelinesLater: undefined };
  const api = Object.freeze({ version: VERSION, config: Object.freeze(shown), why, stop });
  rt.api = api;
  G.__sargsComposeGuard = api;

  const start = () => {
    // Another copy in another JavaScript world (the extension's content script beside the
    // gateway's injected one) shares the DOM but not globals: its <sargs-guard> says so.
    if (document.querySelector(HOST_TAG)) { stop(); return; }
    const ctx = rt.contextFor(document);
    if (ctx) rt.ensureSurface(ctx);
  };
  if (document.documentElement) start();
  else document.addEventListener('DOMContentLoaded', start, { once: true, signal });
})();
