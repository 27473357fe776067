/*
 * Sargs compose guard, part 7 of 8: documents, open shadow roots and same-origin frames.
 *
 * Each document gets one context: its events (focus, input, IME composition, keys, the
 * pointer, submits), a MutationObserver for editors that appear later (single-page
 * apps mount them late), its open shadow roots and same-origin iframes.
 */
(function (S) {
  'use strict';

  S.documents = function install(rt) {
    const { signal, states, docs } = rt;
    const { HOST_TAG, EDITOR_SELECTOR, resolveEditor } = S.editors;
    const G = globalThis;
    const observers = rt.observers;

    function scan(root, ctx) {
      if (!root || !root.querySelectorAll) return;
      for (const node of root.querySelectorAll(EDITOR_SELECTOR)) rt.track(node, ctx);
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
          for (const n of rec.addedNodes) if (n.nodeType === 1 && n.localName !== HOST_TAG) queueScan(n, ctx);
        }
      });
      mo.observe(root, { childList: true, subtree: true });
      observers.push(mo);
      if (root !== ctx.doc) scan(root, ctx);
    }

    // Added subtrees are looked at in idle time, in batches: checking whether a candidate
    // is visible needs layout, which must not run inside the page's own DOM updates.
    const queued = new Map(); // element -> context
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
          if (n.matches(EDITOR_SELECTOR)) rt.track(n, c);
          if (n.shadowRoot) watchRoot(n.shadowRoot, c);
          if (n.localName === 'iframe') watchFrame(n);
          scan(n, c);
        }
        rt.requestRender();
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

    function stateOf(e) {
      return states.get(resolveEditor(e.composedPath()[0]));
    }

    function listen(ctx) {
      const { doc, win } = ctx;
      const opts = { capture: true, signal };
      const on = (type, fn, target = doc) => target.addEventListener(type, fn, opts);
      on('focusin', (e) => {
        const path = e.composedPath();
        for (const node of path) if (node instanceof ctx.win.ShadowRoot) watchRoot(node, ctx);
        rt.track(path[0], ctx);
        rt.requestRender();
      });
      on('focusout', () => rt.requestRender());
      on('input', (e) => {
        const target = e.composedPath()[0];
        const st = states.get(resolveEditor(target)) || rt.track(target, ctx);
        if (st && st.kind === 'field') rt.schedule(st); // rich editors: their MutationObserver
      });
      on('compositionstart', (e) => {
        const st = stateOf(e);
        if (st) { st.composing = true; clearTimeout(st.timer); }
      });
      on('compositionend', (e) => {
        const st = stateOf(e);
        if (st) { st.composing = false; rt.schedule(st); }
      });
      on('keydown', (e) => {
        if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') rt.sweepSoon(); // "post" on many platforms
        const st = stateOf(e);
        if (!st || !st.ui) return;
        if (e.key === 'Escape') { rt.closeCard(ctx, null); if (!st.ui.panel.hidden) rt.closePanel(st); }
        if (e.altKey && e.shiftKey && (e.key === 'S' || e.key === 's' || e.code === 'KeyS') && st.findings.length) {
          e.preventDefault();
          rt.togglePanel(st, true);
          rt.render();
          st.ui.panel.focus();
        }
      });
      on('keyup', (e) => { const st = stateOf(e); if (st) rt.onCaret(st, e); });
      on('mouseup', (e) => { const st = stateOf(e); if (st) setTimeout(() => rt.onCaret(st, null), 0); });
      on('click', (e) => { if (!stateOf(e) && !e.composedPath().includes(ctx.host)) rt.sweepSoon(); });
      on('submit', (e) => {
        for (const st of states.values()) if (e.target.contains && e.target.contains(st.el)) rt.afterPost(st);
        rt.sweepSoon();
      });
      let pointer = null;
      on('mousemove', (e) => {
        if (!pointer) requestAnimationFrame(() => { const p = pointer; pointer = null; rt.onPointer(ctx, p[0], p[1]); });
        pointer = [e.clientX, e.clientY];
      });
      doc.addEventListener('scroll', rt.requestRender, { capture: true, passive: true, signal });
      win.addEventListener('resize', rt.requestRender, { passive: true, signal });
      const rescan = () => { scan(doc, ctx); rt.requestRender(); };
      if (win.navigation && typeof win.navigation.addEventListener === 'function') {
        win.navigation.addEventListener('navigatesuccess', rescan, { signal });
      }
      win.addEventListener('popstate', rescan, { signal });
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
          if (claim && claim.managedBy !== rt.api) return null; // its own instance runs there
          win.__sargsComposeGuard = { version: rt.api.version, managedBy: rt.api };
        } catch (e) {
          return null;
        }
      }
      const ctx = { doc, win, host: null, root: null, live: null, layer: null, mirror: null, card: null, cardFor: null, roots: new Set(), unavailableSaid: false };
      docs.set(doc, ctx);
      listen(ctx);
      watchRoot(doc, ctx);
      scan(doc, ctx);
      return ctx;
    }

    Object.assign(rt, { contextFor, scan });
  };
}(globalThis.__sargsGuardParts = globalThis.__sargsGuardParts || {}));
