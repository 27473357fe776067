/*
 * Sargs compose guard, part 3 of 8: the editor's text and its offsets.
 *
 * Offsets are UTF-16 code units (JavaScript string indices) of the editor's text. For
 * textarea/input that is `.value`. For contenteditable it is built by editorText(): text
 * nodes as they are, "\n" between block elements (p, div, li, h1-6, ...), "\n" for <br>
 * except a <br> that ends its block (editors use it as a placeholder), whitespace-only
 * source-formatting text between blocks skipped. The same walk records which DOM text
 * node holds each index, so offsets map back to DOM Ranges exactly (richRects); fields
 * are measured with a hidden mirror element styled like the field (fieldRects).
 */
(function (S) {
  'use strict';

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

  /** Viewport rects of [finding.start, finding.end) in a rich editor, clipped to it. */
  function richRects(el, map, finding) {
    if (!map) return [];
    const a = domPoint(map.segs, finding.start, 'start');
    const b = domPoint(map.segs, finding.end, 'end');
    if (!a || !b) return [];
    const range = el.ownerDocument.createRange();
    try {
      range.setStart(a[0], a[1]);
      range.setEnd(b[0], b[1]);
    } catch (e) {
      return [];
    }
    const box = el.getBoundingClientRect(); // text scrolled out of the editor: not drawn
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

  function fieldRects(el, mirror, finding) {
    if (!mirror) return [];
    const doc = mirror.ownerDocument;
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
      doc.createTextNode(value.slice(0, finding.start)),
      Object.assign(doc.createElement('span'), { textContent: value.slice(finding.start, finding.end) }),
      doc.createTextNode(value.slice(finding.end) + '\n'),
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

  /**
   * Where the caret is, as an offset into the editor's text, or -1 (no caret in it, or
   * a selection that is not collapsed). `map` is editorText()'s result for rich editors.
   */
  function caretOffset(el, kind, map) {
    if (kind === 'field') {
      return el.selectionStart === el.selectionEnd ? el.selectionStart : -1;
    }
    if (!map) return -1;
    const root = el.getRootNode();
    const sel = (typeof root.getSelection === 'function' && root.getSelection())
      || el.ownerDocument.getSelection();
    if (!sel || !sel.isCollapsed || !sel.focusNode) return -1;
    for (const seg of map.segs) {
      if (seg.node === sel.focusNode) return seg.start + sel.focusOffset;
    }
    return -1;
  }

  S.text = { editorText, domPoint, richRects, fieldRects, caretOffset };
}(globalThis.__sargsGuardParts = globalThis.__sargsGuardParts || {}));
