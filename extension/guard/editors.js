/*
 * Sargs compose guard, part 2 of 8: which elements are editors, and why one is not.
 *
 * One table of per-platform editor selectors (with the page each copies), the platform
 * guessed from the host name, and why(el): the reasons an element is not checked
 * (cf. Harper's getTextareaReasons), [] when it is.
 */
(function (S) {
  'use strict';

  const HOST_TAG = 'sargs-guard'; // our own element: never an editor, never scanned

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

  S.editors = {
    HOST_TAG, EDITORS, EDITOR_SELECTOR, PLATFORM_HOSTS, guessPlatform, kindOf, resolveEditor, why,
  };
}(globalThis.__sargsGuardParts = globalThis.__sargsGuardParts || {}));
