/*
 * Sargs compose guard: inline compliance warnings in social-media compose boxes.
 *
 * One plain script (no build step, no dependencies), used two ways:
 *   1. served by the Sargs service at /static/compose-guard.js and loaded with
 *      <script src="https://sargs.example/static/compose-guard.js"></script>
 *      (the gateway injects exactly that tag into allowed platform pages);
 *   2. as the browser extension's content script.
 *
 * Configuration, first match wins:
 *   - attributes on its own <script> tag:
 *       data-backend="URL"    base URL of the service, absolute or relative to the page
 *                             (the gateway uses "/__sargs/"); default: the script's own
 *                             URL less "static/compose-guard.js"
 *       data-platform="ID"    platform id from the policy catalog (x, facebook, ...);
 *                             default: guessed from location.hostname (PLATFORM_HOSTS)
 *       data-account="KIND"   "personal" (default) or "official"
 *       data-lang="LL"        en | lv | sv | sq; default: navigator.languages
 *   - globalThis.__SARGS_CONFIG__ = {backend, platform, account, lang, check}, set
 *     before this script runs (the extension does this; there is no <script> tag).
 *     `check(payload) -> Promise<{findings, verdict}>` optionally replaces the fetch
 *     (an extension may route the request through its service worker).
 *
 * What it does: finds editors (textarea, text input, contenteditable, role="textbox";
 * also inside open shadow roots and same-origin iframes, including ones that appear
 * later), and after ~250 ms without typing sends
 *     POST {backend}api/v1/check  {text, account, platform, lang}
 * It draws findings ONLY inside the open shadow root of its own <sargs-guard> element:
 * underlines over the offending text, a badge button next to the editor and a panel
 * listing each finding with its message and guideline. It never touches the editor's
 * DOM, text, caret, selection or undo history and never moves focus while typing.
 *
 * Public surface (the contract in docs DESIGN.md, "The content script"):
 *   - after each check of an editor: a bubbling, composed
 *       CustomEvent("sargs:findings", {detail: {findings, verdict}}) on the editor;
 *   - when the service cannot be reached: a bubbling, composed
 *       CustomEvent("sargs:unavailable", {detail: {reason}}) on the editor;
 *   - messages announced in a role="status" live region inside the shadow root of
 *     <sargs-guard> (one per document);
 *   - globalThis.__sargsComposeGuard: {version, config, why(el), stop()} — also the
 *     guard that makes a second injection a no-op. why(el) returns the reasons an
 *     element is not checked ([] when it is); stop() removes every listener, observer
 *     and drawing.
 *
 * Offsets: findings' start/end are UTF-16 code units (JavaScript string indices) of
 * the editor's text. For textarea/input that is `.value`. For contenteditable it is
 * built by editorText() below: text nodes as they are, "\n" between block elements
 * (p, div, li, h1-6, ...), "\n" for <br> except a <br> that ends its block (editors
 * use it as a placeholder), whitespace-only source-formatting text between blocks
 * skipped. The same walk records which DOM text node holds each index, so offsets map
 * back to DOM Ranges exactly.
 *
 * Keyboard: Tab reaches the badge (a <button>, aria-expanded); Enter/Space toggles
 * the panel; Escape closes it. From inside an editor with findings, Alt+Shift+S opens
 * the panel and moves focus to it (the user asked for it).
 */
(() => {
  'use strict';

  const G = globalThis;
  if (G.__sargsComposeGuard) return; // injected twice (gateway + extension, or a re-run)

  const VERSION = '1';
  const DEBOUNCE_MS = 250;
  const HOST_TAG = 'sargs-guard';
  const MAX_TEXT = 60000; // the service refuses larger bodies (413); do not send them

  // ---------------------------------------------------------------------------------
  // Per-platform editors: ONE table. Each row: platform, selector, the page it copies.
  // Rows are used to find editors when the page changes; any other textarea,
  // contenteditable or role="textbox" is still picked up on focus.
  // ---------------------------------------------------------------------------------
  const EDITORS = [
    // x.com/compose/post and the home timeline reply box: Draft.js editor
    // <div class="public-DraftEditor-content" contenteditable role="textbox"
    //      data-testid="tweetTextarea_0">
    ['x', 'div.public-DraftEditor-content[contenteditable="true"]'],
    // facebook.com "Create post" dialog and comment boxes: Lexical editor
    // <div contenteditable="true" role="textbox" data-lexical-editor="true"><p><span data-lexical-text>
    ['facebook', 'div[contenteditable="true"][data-lexical-editor="true"]'],
    // linkedin.com "Start a post" share box: Quill editor <div class="ql-editor" contenteditable>
    ['linkedin', '.ql-editor[contenteditable="true"]'],
    // Mastodon web UI compose form: <textarea class="autosuggest-textarea__textarea">
    ['mastodon', 'textarea.autosuggest-textarea__textarea'],
    // youtube.com comment box: <yt-formatted-string id="contenteditable-textarea">
    //   <div id="contenteditable-root" contenteditable="true">
    ['youtube', '#contenteditable-root[contenteditable]'],
    // reddit.com composer (shreddit-composer, inside an open shadow root):
    // <div contenteditable="true" role="textbox" ...>; found by the generic rows below
    // once the shadow root is walked.
    ['reddit', 'div[contenteditable="true"][role="textbox"]'],
    // Threads, Bluesky and others built on ProseMirror/TipTap: <div class="ProseMirror" contenteditable>
    ['*', '.ProseMirror[contenteditable="true"]'],
    // Anything else that takes free text.
    ['*', 'textarea'],
    ['*', '[contenteditable="true"], [contenteditable=""], [contenteditable="plaintext-only"]'],
    ['*', '[role="textbox"]'],
  ];
  const EDITOR_SELECTOR = EDITORS.map((row) => row[1]).join(', ');

  // Registered domain -> platform id (ids of policies/base/platforms.yaml).
  const PLATFORM_HOSTS = {
    'x.com': 'x', 'twitter.com': 'x',
    'facebook.com': 'facebook', 'messenger.com': 'facebook',
    'instagram.com': 'instagram',
    'youtube.com': 'youtube',
    'linkedin.com': 'linkedin',
    'tiktok.com': 'tiktok',
    'threads.net': 'threads', 'threads.com': 'threads',
    'bsky.app': 'bluesky',
    'reddit.com': 'reddit',
    'web.telegram.org': 'telegram', 'telegram.org': 'telegram',
    'whatsapp.com': 'whatsapp',
    'vk.com': 'vk',
    'draugiem.lv': 'draugiem',
    'pinterest.com': 'pinterest',
    'snapchat.com': 'snapchat',
    'mastodon.social': 'mastodon', 'mastodon.online': 'mastodon', 'mstdn.social': 'mastodon',
    'social.vivaldi.net': 'mastodon', 'mastodon.world': 'mastodon',
  };

  // Its own UI strings (rule messages come from the service in the chosen language).
  const TEXTS = {
    en: {
      findings: (n) => (n === 1 ? '1 finding' : `${n} findings`),
      badge: (n) => `Sargs: ${TEXTS.en.findings(n)}. Show details`,
      unavailable: 'Sargs: cannot check right now.',
      panel: 'Sargs — draft check',
      guideline: 'Guideline',
      block: 'Blocks posting', warn: 'Warning', info: 'Note',
      close: 'Close',
    },
    lv: {
      findings: (n) => (n % 10 === 1 && n % 100 !== 11 ? `${n} konstatējums` : `${n} konstatējumi`),
      badge: (n) => `Sargs: ${TEXTS.lv.findings(n)}. Rādīt sīkāk`,
      unavailable: 'Sargs: šobrīd nevar pārbaudīt.',
      panel: 'Sargs — melnraksta pārbaude',
      guideline: 'Vadlīnija',
      block: 'Bloķē publicēšanu', warn: 'Brīdinājums', info: 'Piezīme',
      close: 'Aizvērt',
    },
    sv: {
      findings: (n) => (n === 1 ? '1 anmärkning' : `${n} anmärkningar`),
      badge: (n) => `Sargs: ${TEXTS.sv.findings(n)}. Visa detaljer`,
      unavailable: 'Sargs: kan inte kontrollera just nu.',
      panel: 'Sargs — kontroll av utkast',
      guideline: 'Riktlinje',
      block: 'Stoppar publicering', warn: 'Varning', info: 'Notering',
      close: 'Stäng',
    },
    sq: {
      findings: (n) => (n === 1 ? '1 gjetje' : `${n} gjetje`),
      badge: (n) => `Sargs: ${TEXTS.sq.findings(n)}. Shfaq detajet`,
      unavailable: 'Sargs: nuk mund të kontrollohet tani.',
      panel: 'Sargs — kontrolli i draftit',
      guideline: 'Udhëzim',
      block: 'Bllokon publikimin', warn: 'Paralajmërim', info: 'Shënim',
      close: 'Mbyll',
    },
  };

  // ---------------------------------------------------------------------------------
  // Configuration
  // ---------------------------------------------------------------------------------
  function ownScript() {
    const cur = document.currentScript;
    if (cur && cur.src) return cur;
    const all = document.querySelectorAll('script[src*="compose-guard.js"]');
    return all.length ? all[all.length - 1] : null;
  }

  function pickLang(wanted) {
    const list = [].concat(wanted || [], navigator.languages || [], navigator.language || []);
    for (const tag of list) {
      const base = String(tag).toLowerCase().split(/[-_]/)[0];
      if (base in TEXTS) return base;
    }
    return 'en';
  }

  function guessPlatform(hostname) {
    let host = hostname.toLowerCase();
    while (host) {
      if (PLATFORM_HOSTS[host]) return PLATFORM_HOSTS[host];
      const dot = host.indexOf('.');
      if (dot < 0) break;
      host = host.slice(dot + 1);
    }
    return '';
  }

  function readConfig() {
    const given = (G.__SARGS_CONFIG__ && typeof G.__SARGS_CONFIG__ === 'object') ? G.__SARGS_CONFIG__ : {};
    const tag = ownScript();
    const attr = (name) => (tag && tag.getAttribute(name)) || '';
    let backend = attr('data-backend') || given.backend || '';
    if (!backend && tag) backend = tag.src.replace(/static\/compose-guard\.js(?:[?#].*)?$/, '');
    if (backend && !backend.endsWith('/')) backend += '/';
    try {
      if (backend) backend = new URL(backend, location.href).href; // "/__sargs/" from the gateway
    } catch (e) {
      backend = '';
    }
    return {
      backend,
      platform: attr('data-platform') || given.platform || guessPlatform(location.hostname),
      account: attr('data-account') || given.account || 'personal',
      lang: pickLang(attr('data-lang') || given.lang),
      check: typeof given.check === 'function' ? given.check : null,
    };
  }

  const config = readConfig();
  const T = TEXTS[config.lang];
  const controller = new AbortController(); // every listener of this instance
  const signal = controller.signal;
  const observers = []; // MutationObserver / ResizeObserver, disconnected by stop()
  const states = new Map(); // editor element -> EditorState
  const docs = new Map(); // Document -> DocContext
  let frameRequested = false;

  // ---------------------------------------------------------------------------------
  // Why is an element (not) checked? (cf. Harper's getTextareaReasons)
  // ---------------------------------------------------------------------------------
  const TEXT_INPUT_TYPES = new Set(['', 'text']);
  const NO_CHECK_AUTOCOMPLETE = /\b(username|email|tel|current-password|new-password|one-time-code|cc-|street-address|postal-code)\b/;

  function kindOf(el) {
    if (!el || el.nodeType !== 1) return '';
    const tag = el.localName;
    if (tag === 'textarea') return 'field';
    if (tag === 'input') return 'field';
    if (el.isContentEditable) return 'rich';
    return '';
  }

  /** The element that holds the text: the outermost editing host, or the field itself. */
  function resolveEditor(el) {
    if (!el || el.nodeType !== 1) return null;
    if (el.localName === 'textarea' || el.localName === 'input') return el;
    if (!el.isContentEditable) {
      if (el.getAttribute('role') === 'textbox') {
        const inner = el.querySelector('[contenteditable]:not([contenteditable="false"]), textarea');
        return inner ? resolveEditor(inner) : el;
      }
      return el;
    }
    let host = el;
    while (host.parentElement && host.parentElement.isContentEditable) host = host.parentElement;
    return host;
  }

  function why(el) {
    const reasons = [];
    if (!el || el.nodeType !== 1) return ['not-an-element'];
    if (el.localName === HOST_TAG || (el.getRootNode() && el.getRootNode().host && el.getRootNode().host.localName === HOST_TAG)) {
      return ['sargs-own-element'];
    }
    const tag = el.localName;
    if (tag === 'input') {
      const type = (el.getAttribute('type') || '').toLowerCase();
      if (type === 'password') reasons.push('password');
      else if (type === 'search') reasons.push('search');
      else if (!TEXT_INPUT_TYPES.has(type)) reasons.push('not-a-text-input');
      if (NO_CHECK_AUTOCOMPLETE.test((el.getAttribute('autocomplete') || '').toLowerCase())) reasons.push('form-field');
    } else if (tag !== 'textarea' && !el.isContentEditable) {
      reasons.push(el.getAttribute('role') === 'textbox' ? 'not-editable' : 'not-a-text-field');
    }
    if (tag === 'input' || tag === 'textarea') {
      if (el.disabled || el.matches(':disabled')) reasons.push('disabled');
      if (el.readOnly) reasons.push('read-only');
    }
    if (el.getAttribute('aria-disabled') === 'true') reasons.push('disabled');
    if (el.getAttribute('aria-readonly') === 'true') reasons.push('read-only');
    const visible = typeof el.checkVisibility === 'function'
      ? el.checkVisibility({ visibilityProperty: true })
      : el.getClientRects().length > 0;
    if (!visible) reasons.push('hidden');
    return reasons;
  }

  // ---------------------------------------------------------------------------------
  // The editor's text and the map from offsets back to DOM text nodes
  // ---------------------------------------------------------------------------------
  const BLOCKS = new Set([
    'address', 'article', 'aside', 'blockquote', 'dd', 'details', 'div', 'dl', 'dt',
    'fieldset', 'figcaption', 'figure', 'footer', 'form', 'h1', 'h2', 'h3', 'h4', 'h5',
    'h6', 'header', 'hr', 'li', 'main', 'nav', 'ol', 'p', 'pre', 'section', 'summary',
    'table', 'tr', 'ul',
  ]);
  const SKIP = new Set(['script', 'style', 'template', 'noscript']);

  /**
   * editorText(el) -> {text, segs}; segs[i] = {node, start} says that text[start ..
   * start + node.data.length) is node.data. Characters not covered ("\n" for blocks
   * and <br>) have no node.
   */
  function editorText(root) {
    let text = '';
    const segs = [];
    let pendingBreak = false;
    let lineHasContent = false;
    const flush = () => {
      if (pendingBreak) { text += '\n'; pendingBreak = false; }
    };
    const blockEdge = () => {
      if (lineHasContent || text.length) pendingBreak = lineHasContent || pendingBreak;
      lineHasContent = false;
    };
    const walk = (node) => {
      for (let child = node.firstChild; child; child = child.nextSibling) {
        if (child.nodeType === 3) {
          const data = child.data;
          if (!data) continue;
          if (!lineHasContent && /^[ \t\r\n]*$/.test(data) && data.includes('\n') && collapses(node)) continue;
          if (data === '\uFEFF' || data === '\u200B') continue; // editors' caret placeholders
          flush();
          segs.push({ node: child, start: text.length });
          text += data;
          lineHasContent = true;
        } else if (child.nodeType === 1) {
          const tag = child.localName;
          if (SKIP.has(tag)) continue;
          if (tag === 'br') {
            const last = !nextMeaningful(child);
            if (last && lineHasContent) continue; // trailing <br>: placeholder
            flush();
            if (last) { lineHasContent = true; continue; } // an empty line: <p><br></p>
            text += '\n';
            lineHasContent = false;
            continue;
          }
          const block = BLOCKS.has(tag);
          if (block) blockEdge();
          walk(child);
          if (block) blockEdge();
        }
      }
    };
    walk(root);
    return { text, segs };
  }

  /** Source-formatting whitespace (collapsed by CSS) is not part of the text. */
  function collapses(parent) {
    const view = parent.ownerDocument.defaultView;
    const ws = view ? view.getComputedStyle(parent).whiteSpace : 'normal';
    return ws === 'normal' || ws === 'nowrap';
  }

  function nextMeaningful(node) {
    for (let n = node.nextSibling; n; n = n.nextSibling) {
      if (n.nodeType === 1) return n;
      if (n.nodeType === 3 && n.data.trim()) return n;
    }
    return null;
  }

  /** Map a text offset to a DOM position (node, offset) using segs; bias: 'start' | 'end'. */
  function domPoint(segs, offset, bias) {
    let lo = 0;
    let hi = segs.length - 1;
    let found = -1;
    while (lo <= hi) { // last seg with start <= offset
      const mid = (lo + hi) >> 1;
      if (segs[mid].start <= offset) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    if (found >= 0) {
      const seg = segs[found];
      const len = seg.node.data.length;
      if (offset - seg.start < len || (bias === 'end' && offset - seg.start === len)) {
        return [seg.node, offset - seg.start];
      }
      if (bias === 'end') return [seg.node, len]; // offset on a synthetic "\n"
    }
    const next = segs[found + 1];
    if (next) return [next.node, 0];
    return null;
  }

  function richRects(state, finding) {
    const map = state.map;
    if (!map) return [];
    const a = domPoint(map.segs, finding.start, 'start');
    const b = domPoint(map.segs, finding.end, 'end');
    if (!a || !b) return [];
    const range = state.el.ownerDocument.createRange();
    try {
      range.setStart(a[0], a[1]);
      range.setEnd(b[0], b[1]);
    } catch (e) {
      return [];
    }
    const box = state.el.getBoundingClientRect(); // text scrolled out of the editor: not drawn
    const rects = [];
    for (const r of range.getClientRects()) {
      const left = Math.max(r.left, box.left);
      const right = Math.min(r.right, box.right);
      const top = Math.max(r.top, box.top);
      const bottom = Math.min(r.bottom, box.bottom);
      if (right > left && bottom > top) rects.push(new DOMRect(left, top, right - left, bottom - top));
    }
    return rects;
  }

  // Textarea/input: a mirror element in our shadow root, styled like the field.
  const MIRROR_PROPS = [
    'boxSizing', 'width', 'height', 'borderTopWidth', 'borderRightWidth', 'borderBottomWidth',
    'borderLeftWidth', 'borderStyle', 'paddingTop', 'paddingRight', 'paddingBottom',
    'paddingLeft', 'fontStyle', 'fontVariant', 'fontWeight', 'fontStretch', 'fontSize',
    'fontSizeAdjust', 'lineHeight', 'fontFamily', 'fontFeatureSettings', 'textAlign',
    'textTransform', 'textIndent', 'letterSpacing', 'wordSpacing', 'tabSize', 'direction',
    'writingMode',
  ];

  function fieldRects(state, finding) {
    const el = state.el;
    const ctx = docs.get(el.ownerDocument);
    if (!ctx) return [];
    const mirror = ctx.mirror;
    const cs = el.ownerDocument.defaultView.getComputedStyle(el);
    const box = el.getBoundingClientRect();
    for (const p of MIRROR_PROPS) mirror.style[p] = cs[p];
    const textarea = el.localName === 'textarea';
    mirror.style.whiteSpace = textarea ? 'pre-wrap' : 'pre';
    mirror.style.overflowWrap = textarea ? 'break-word' : 'normal';
    mirror.style.left = `${box.left}px`;
    mirror.style.top = `${box.top}px`;
    mirror.style.boxSizing = 'border-box';
    // content width without the field's scrollbar
    const sideBorders = parseFloat(cs.borderLeftWidth) + parseFloat(cs.borderRightWidth);
    mirror.style.width = `${el.clientWidth + sideBorders}px`;
    mirror.style.height = `${box.height}px`;
    const value = el.value;
    mirror.replaceChildren(
      document.createTextNode(value.slice(0, finding.start)),
      Object.assign(document.createElement('span'), { textContent: value.slice(finding.start, finding.end) }),
      document.createTextNode(value.slice(finding.end) + '\n'),
    );
    mirror.scrollTop = el.scrollTop;
    mirror.scrollLeft = el.scrollLeft;
    const inner = el.getBoundingClientRect();
    const clip = {
      left: inner.left + el.clientLeft, top: inner.top + el.clientTop,
      right: inner.left + el.clientLeft + el.clientWidth, bottom: inner.top + el.clientTop + el.clientHeight,
    };
    const rects = [];
    for (const r of mirror.children[0].getClientRects()) {
      const left = Math.max(r.left, clip.left);
      const right = Math.min(r.right, clip.right);
      const top = Math.max(r.top, clip.top);
      const bottom = Math.min(r.bottom, clip.bottom);
      if (right > left && bottom > top) rects.push(new DOMRect(left, top, right - left, bottom - top));
    }
    mirror.replaceChildren();
    return rects;
  }

  function currentText(state) {
    if (state.kind === 'field') return state.el.value;
    state.map = editorText(state.el);
    return state.map.text;
  }

  // ---------------------------------------------------------------------------------
  // Our own drawing surface: <sargs-guard> with an open shadow root, one per document
  // ---------------------------------------------------------------------------------
  const CSS = `
    :host { all: initial; position: fixed; left: 0; top: 0; width: 0; height: 0;
            z-index: 2147483647; pointer-events: none; }
    .mark { position: fixed; pointer-events: none; box-sizing: border-box;
            border-bottom: 2px solid #c62828; background: rgba(198, 40, 40, 0.12); }
    .mark.warn { border-bottom-color: #b26a00; background: rgba(230, 140, 0, 0.14); }
    .mark.info { border-bottom-color: #1565c0; background: rgba(21, 101, 192, 0.10); }
    .badge { position: fixed; pointer-events: auto; min-width: 22px; height: 22px;
             padding: 0 6px; border: 1px solid #7f1d1d; border-radius: 11px;
             background: #c62828; color: #fff; font: 600 12px/20px system-ui, sans-serif;
             cursor: pointer; box-shadow: 0 1px 3px rgba(0,0,0,.3); }
    .badge.warn { background: #b26a00; border-color: #6d4100; }
    .badge.info { background: #1565c0; border-color: #0d3c73; }
    .badge:focus-visible { outline: 3px solid #111; outline-offset: 2px; }
    .panel { position: fixed; pointer-events: auto; max-width: 360px; max-height: 50vh;
             overflow: auto; background: #fff; color: #111; border: 1px solid #888;
             border-radius: 6px; box-shadow: 0 4px 14px rgba(0,0,0,.25);
             font: 13px/1.4 system-ui, sans-serif; padding: 8px 10px; }
    .panel:focus-visible { outline: 3px solid #111; }
    .panel h2 { font-size: 13px; margin: 0 0 6px; }
    .panel ul { margin: 0; padding: 0; list-style: none; }
    .panel li { margin: 0 0 8px; padding-left: 8px; border-left: 3px solid #c62828; }
    .panel li.warn { border-left-color: #b26a00; }
    .panel li.info { border-left-color: #1565c0; }
    .panel .sev { font-weight: 600; }
    .panel .guideline { color: #444; font-size: 12px; }
    .panel .close { float: right; font: inherit; border: 1px solid #888; background: #f4f4f4;
                    border-radius: 4px; cursor: pointer; }
    [hidden] { display: none !important; }
    .sr { position: absolute; width: 1px; height: 1px; overflow: hidden;
          clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap; }
    .mirror { position: fixed; visibility: hidden; overflow: hidden; pointer-events: none;
              border-color: transparent; }
  `;

  function h(doc, tag, props, ...children) {
    const node = doc.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (k === 'class') node.className = v;
        else if (k === 'text') node.textContent = v;
        else node.setAttribute(k, v);
      }
    }
    for (const c of children) if (c) node.append(c);
    return node;
  }

  function ensureSurface(ctx) {
    if (ctx.host && ctx.host.isConnected) return ctx;
    const doc = ctx.doc;
    const host = doc.createElement(HOST_TAG);
    const root = host.attachShadow({ mode: 'open' });
    try {
      const sheet = new ctx.win.CSSStyleSheet();
      sheet.replaceSync(CSS); // CSSOM: allowed under a strict style-src CSP
      root.adoptedStyleSheets = [sheet];
    } catch (e) {
      root.append(h(doc, 'style', { text: CSS }));
    }
    ctx.live = h(doc, 'div', { role: 'status', 'aria-live': 'polite', class: 'sr' });
    ctx.layer = h(doc, 'div', { class: 'layer' });
    ctx.mirror = h(doc, 'div', { class: 'mirror', 'aria-hidden': 'true' });
    root.append(ctx.live, ctx.layer, ctx.mirror);
    root.addEventListener('keydown', (e) => onSurfaceKey(e), { signal });
    (doc.documentElement || doc).append(host);
    ctx.host = host;
    ctx.root = root;
    for (const st of states.values()) if (st.ctx === ctx) st.ui = null;
    return ctx;
  }

  function announce(ctx, message) {
    ensureSurface(ctx);
    if (ctx.live.textContent === message) ctx.live.textContent = '';
    ctx.live.textContent = message;
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
    const title = h(doc, 'h2', { text: T.panel });
    const close = h(doc, 'button', { type: 'button', class: 'close', text: T.close });
    const list = h(doc, 'ul');
    const panel = h(doc, 'section', { id, class: 'panel', tabindex: '-1', 'aria-label': T.panel, hidden: '' },
      close, title, list);
    badge.addEventListener('click', () => togglePanel(state, null), { signal });
    close.addEventListener('click', () => { togglePanel(state, false); badge.focus(); }, { signal });
    ctx.layer.append(marks, badge, panel);
    state.ui = { marks, badge, panel, list };
    return state.ui;
  }

  function togglePanel(state, open) {
    const ui = ensureUi(state);
    const show = open === null ? ui.panel.hidden : open;
    ui.panel.hidden = !show;
    ui.badge.setAttribute('aria-expanded', String(show));
    requestRender();
  }

  function onSurfaceKey(e) {
    if (e.key !== 'Escape') return;
    for (const st of states.values()) {
      if (st.ui && !st.ui.panel.hidden) {
        const path = e.composedPath();
        if (path.includes(st.ui.panel) || path.includes(st.ui.badge)) {
          togglePanel(st, false);
          st.ui.badge.focus();
          e.stopPropagation();
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------
  // Editors: tracking, checking, reporting
  // ---------------------------------------------------------------------------------
  function track(candidate, ctx) {
    const target = resolveEditor(candidate);
    if (!target || states.has(target)) return states.get(target) || null;
    if (why(target).length) return null;
    const state = {
      el: target, kind: kindOf(target), ctx: ctx || contextFor(target.ownerDocument),
      timer: 0, seq: 0, inflight: null, checkedText: null, findings: [], verdict: 'ok',
      map: null, stale: false, ui: null,
    };
    if (!state.ctx) return null;
    ensureSurface(state.ctx); // the live region must exist before it speaks
    states.set(target, state);
    if (state.kind === 'rich') {
      const mo = new MutationObserver(() => schedule(state));
      mo.observe(target, { childList: true, subtree: true, characterData: true });
      observers.push(mo);
      state.mo = mo;
    }
    if (typeof ResizeObserver === 'function') {
      const ro = new ResizeObserver(() => requestRender());
      ro.observe(target);
      observers.push(ro);
      state.ro = ro;
    }
    if (currentText(state).trim()) schedule(state);
    return state;
  }

  function untrack(state) {
    clearTimeout(state.timer);
    if (state.inflight) state.inflight.abort();
    if (state.mo) state.mo.disconnect();
    if (state.ro) state.ro.disconnect();
    if (state.ui) { state.ui.marks.remove(); state.ui.badge.remove(); state.ui.panel.remove(); }
    states.delete(state.el);
  }

  function schedule(state) {
    state.stale = true;
    clearTimeout(state.timer);
    state.timer = setTimeout(() => check(state), DEBOUNCE_MS);
    requestRender();
  }

  async function check(state) {
    if (!state.el.isConnected || signal.aborted) return;
    const text = currentText(state);
    if (text === state.checkedText) { state.stale = false; requestRender(); return; }
    const seq = ++state.seq;
    if (state.inflight) state.inflight.abort();
    let result;
    if (!text.trim()) {
      result = { findings: [], verdict: 'ok' };
    } else if (text.length > MAX_TEXT) {
      return unavailable(state, 'too-long');
    } else {
      const payload = { text, account: config.account, lang: config.lang };
      if (config.platform) payload.platform = config.platform; // unknown: let the service decide
      try {
        if (config.check) {
          result = await config.check(payload);
        } else {
          if (!config.backend) return unavailable(state, 'no-backend');
          state.inflight = new AbortController();
          const resp = await fetch(`${config.backend}api/v1/check`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify(payload),
            credentials: 'omit',
            signal: state.inflight.signal,
          });
          if (!resp.ok) return unavailable(state, `http-${resp.status}`);
          result = await resp.json();
        }
      } catch (e) {
        if (e && e.name === 'AbortError') return;
        return unavailable(state, 'network');
      }
      if (!result || !Array.isArray(result.findings)) return unavailable(state, 'bad-response');
    }
    if (seq !== state.seq || signal.aborted) return;
    state.inflight = null;
    if (currentText(state) !== text) return; // typed on meanwhile; the pending check follows
    state.checkedText = text;
    // start === end: about the whole draft (working hours, attachments): listed, not underlined
    state.findings = result.findings.filter((f) => Number.isInteger(f.start) && Number.isInteger(f.end)
      && f.start >= 0 && f.end <= text.length && f.start <= f.end);
    state.verdict = result.verdict || (state.findings.length ? 'warn' : 'ok');
    state.stale = false;
    if (state.ctx.unavailableSaid) state.ctx.unavailableSaid = false;
    report(state, result);
  }

  function unavailable(state, reason) {
    state.inflight = null;
    const ctx = state.ctx;
    if (!ctx.unavailableSaid) { // once, quietly, until a check succeeds again
      ctx.unavailableSaid = true;
      announce(ctx, T.unavailable);
    }
    state.el.dispatchEvent(new CustomEvent('sargs:unavailable', {
      bubbles: true, composed: true, detail: { reason },
    }));
  }

  const SEVERITIES = ['block', 'warn', 'info'];

  /** The contract's guideline is a string; tolerate {title, text} too. */
  function guidelineText(g) {
    if (!g) return '';
    if (typeof g === 'string') return g;
    return [g.title, g.text].filter((x) => typeof x === 'string' && x).join(' — ');
  }

  function report(state, result) {
    const findings = state.findings;
    const ui = findings.length || state.ui ? ensureUi(state) : null;
    if (ui) {
      ui.list.replaceChildren(...findings.map((f) => {
        const sev = SEVERITIES.includes(f.severity) ? f.severity : 'warn';
        const guideline = guidelineText(f.guideline);
        return h(state.ctx.doc, 'li', { class: sev },
          h(state.ctx.doc, 'span', { class: 'sev', text: `${T[sev]}: ` }),
          h(state.ctx.doc, 'span', { class: 'msg', text: String(f.message || f.rule) }),
          guideline ? h(state.ctx.doc, 'div', { class: 'guideline', text: `${T.guideline}: ${guideline}` }) : null);
      }));
      if (!findings.length) togglePanel(state, false);
    }
    const said = findings.map((f) => `${f.rule}:${state.checkedText.slice(f.start, f.end)}`).join('|');
    if (findings.length && said !== state.said) { // announce changes, not every keystroke
      const messages = findings.map((f) => String(f.message || f.rule)).join(' ');
      announce(state.ctx, `${T.findings(findings.length)}: ${messages}`);
    }
    if (!findings.length && state.said && state.ctx.live) state.ctx.live.textContent = ''; // now clean: quiet
    state.said = said;
    requestRender();
    state.el.dispatchEvent(new CustomEvent('sargs:findings', {
      bubbles: true, composed: true,
      detail: { findings: result.findings, verdict: result.verdict || state.verdict },
    }));
  }

  // ---------------------------------------------------------------------------------
  // Rendering, batched in requestAnimationFrame
  // ---------------------------------------------------------------------------------
  function requestRender() {
    if (frameRequested || signal.aborted) return;
    frameRequested = true;
    requestAnimationFrame(render);
  }

  const SEVERITY_ORDER = { block: 3, warn: 2, info: 1 };

  function render() {
    frameRequested = false;
    if (signal.aborted) return;
    for (const state of Array.from(states.values())) {
      if (!state.el.isConnected) { untrack(state); continue; }
      if (!state.ui) continue;
      const { marks, badge, panel } = state.ui;
      const box = state.el.getBoundingClientRect();
      const shown = state.findings.length > 0 && box.width > 0 && box.height > 0;
      const frag = state.ctx.doc.createDocumentFragment();
      if (shown && !state.stale) {
        for (const f of state.findings) {
          if (f.start === f.end) continue;
          const rects = state.kind === 'field' ? fieldRects(state, f) : richRects(state, f);
          for (const r of rects) {
            const m = state.ctx.doc.createElement('div');
            m.className = `mark ${SEVERITIES.includes(f.severity) ? f.severity : 'warn'}`;
            m.dataset.rule = f.rule;
            m.dataset.start = String(f.start);
            m.dataset.end = String(f.end);
            Object.assign(m.style, {
              left: `${r.left}px`, top: `${r.top}px`, width: `${r.width}px`, height: `${r.height}px`,
            });
            frag.append(m);
          }
        }
      }
      marks.replaceChildren(frag);
      badge.hidden = !shown;
      if (!shown) {
        if (!panel.hidden) { panel.hidden = true; badge.setAttribute('aria-expanded', 'false'); }
        continue;
      }
      const top = state.findings.reduce((a, f) => (SEVERITY_ORDER[f.severity] > SEVERITY_ORDER[a] ? f.severity : a), 'info');
      badge.className = `badge ${top}`;
      badge.textContent = String(state.findings.length);
      badge.setAttribute('aria-label', T.badge(state.findings.length));
      badge.style.left = `${Math.max(0, box.right - 30)}px`;
      badge.style.top = `${Math.max(0, box.bottom - 26)}px`;
      if (!panel.hidden) {
        const vh = state.ctx.win.innerHeight;
        panel.style.left = `${Math.max(4, Math.min(box.right - 360, state.ctx.win.innerWidth - 364))}px`;
        if (box.bottom + 8 + 200 < vh) { panel.style.top = `${box.bottom + 4}px`; panel.style.bottom = ''; } else {
          panel.style.top = '';
          panel.style.bottom = `${Math.max(4, vh - box.top + 4)}px`;
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------
  // Documents: this one, open shadow roots, same-origin iframes
  // ---------------------------------------------------------------------------------
  function scan(root, ctx) {
    if (!root || !root.querySelectorAll) return;
    for (const node of root.querySelectorAll(EDITOR_SELECTOR)) track(node, ctx);
    for (const node of root.querySelectorAll('*')) {
      if (node.shadowRoot && node.localName !== HOST_TAG) watchRoot(node.shadowRoot, ctx);
      if (node.localName === 'iframe') watchFrame(node);
    }
  }

  function watchRoot(root, ctx) {
    if (ctx.roots.has(root)) return;
    ctx.roots.add(root);
    const mo = new MutationObserver((records) => {
      for (const rec of records) {
        for (const n of rec.addedNodes) {
          if (n.nodeType === 1 && n.localName !== HOST_TAG) queueScan(n, ctx);
        }
      }
    });
    mo.observe(root, { childList: true, subtree: true });
    observers.push(mo);
    if (root !== ctx.doc) scan(root, ctx);
  }

  // Added subtrees are looked at in idle time, in batches: checking whether a candidate
  // is visible needs layout, which must not run inside the page's own DOM updates.
  const queued = new Map(); // element -> DocContext
  let scanTimer = 0;
  function queueScan(node, ctx) {
    queued.set(node, ctx);
    if (scanTimer) return;
    const run = () => {
      scanTimer = 0;
      const batch = Array.from(queued);
      queued.clear();
      for (const [n, c] of batch) {
        if (!n.isConnected || signal.aborted) continue;
        if (n.matches(EDITOR_SELECTOR)) track(n, c);
        if (n.shadowRoot) watchRoot(n.shadowRoot, c);
        if (n.localName === 'iframe') watchFrame(n);
        scan(n, c);
      }
      requestRender();
    };
    scanTimer = typeof requestIdleCallback === 'function'
      ? requestIdleCallback(run, { timeout: 150 }) : setTimeout(run, 30);
  }

  const watchedFrames = new WeakSet();
  function watchFrame(frame) {
    if (watchedFrames.has(frame)) return;
    watchedFrames.add(frame);
    const attach = () => {
      let doc = null;
      try { doc = frame.contentDocument; } catch (e) { doc = null; } // cross-origin
      // Skip the initial about:blank of a frame that is still loading its src.
      const blank = doc && doc.URL === 'about:blank' && frame.getAttribute('src');
      if (doc && doc.documentElement && !blank) contextFor(doc);
    };
    frame.addEventListener('load', attach, { signal });
    attach();
  }

  function contextFor(doc) {
    if (docs.has(doc)) return docs.get(doc);
    const win = doc.defaultView;
    if (!win) return null;
    if (win !== G) {
      // A same-origin frame: whoever claims it first manages it (its own injection
      // sees the claim as "already running").
      try {
        const claim = win.__sargsComposeGuard;
        if (claim && claim.managedBy !== api) return null; // its own instance runs there
        win.__sargsComposeGuard = { version: VERSION, managedBy: api };
      } catch (e) {
        return null;
      }
    }
    const ctx = { doc, win, host: null, root: null, live: null, layer: null, mirror: null, roots: new Set(), unavailableSaid: false };
    docs.set(doc, ctx);
    const opts = { capture: true, signal };
    doc.addEventListener('focusin', (e) => {
      const path = e.composedPath();
      for (const node of path) if (node instanceof ctx.win.ShadowRoot) watchRoot(node, ctx);
      track(path[0], ctx);
    }, opts);
    doc.addEventListener('input', (e) => {
      const target = e.composedPath()[0];
      const st = states.get(resolveEditor(target)) || track(target, ctx);
      if (st && st.kind === 'field') schedule(st); // rich editors: their MutationObserver
    }, opts);
    doc.addEventListener('keydown', (e) => {
      const st = states.get(resolveEditor(e.composedPath()[0]));
      if (!st || !st.ui) return;
      if (e.key === 'Escape' && !st.ui.panel.hidden) togglePanel(st, false);
      if (e.altKey && e.shiftKey && (e.key === 'S' || e.key === 's' || e.code === 'KeyS') && st.findings.length) {
        e.preventDefault();
        togglePanel(st, true);
        render();
        st.ui.panel.focus();
      }
    }, opts);
    doc.addEventListener('scroll', requestRender, { capture: true, passive: true, signal });
    win.addEventListener('resize', requestRender, { passive: true, signal });
    if (win.navigation && typeof win.navigation.addEventListener === 'function') {
      win.navigation.addEventListener('navigatesuccess', () => { scan(doc, ctx); requestRender(); }, { signal });
    }
    win.addEventListener('popstate', () => { scan(doc, ctx); requestRender(); }, { signal });
    watchRoot(doc, ctx);
    scan(doc, ctx);
    return ctx;
  }

  function stop() {
    controller.abort();
    for (const o of observers) o.disconnect();
    for (const st of states.values()) clearTimeout(st.timer);
    states.clear();
    for (const ctx of docs.values()) {
      if (ctx.host) ctx.host.remove();
      if (ctx.win !== G) { try { delete ctx.win.__sargsComposeGuard; } catch (e) { /* gone */ } }
    }
    docs.clear();
    delete G.__sargsComposeGuard;
  }

  const api = Object.freeze({ version: VERSION, config: Object.freeze({ ...config, check: undefined }), why, stop });
  G.__sargsComposeGuard = api;

  const start = () => {
    // Another copy in another JavaScript world (the extension's content script beside the
    // gateway's injected one) shares the DOM but not globals: its <sargs-guard> says so.
    if (document.querySelector(HOST_TAG)) { stop(); return; }
    const ctx = contextFor(document);
    if (ctx) ensureSurface(ctx);
  };
  if (document.documentElement) start();
  else document.addEventListener('DOMContentLoaded', start, { once: true, signal });
})();
