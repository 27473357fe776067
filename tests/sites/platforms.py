"""Local fake social-media sites whose compose boxes copy the real platforms' markup.

``make_site_app(inject_script_url)`` returns an aiohttp app that serves every fake platform
**by path, under any Host header** (so a gateway can map x.com, facebook.com, ... to this one
server and tests open ``http://x.com/x`` through it):

=============  =========================================  ===============================
path           copies                                     posts to (catalog endpoint)
=============  =========================================  ===============================
``/x``         X compose box: Draft.js                    /i/api/graphql/abc/CreateTweet
``/facebook``  Facebook composer: Lexical                 /api/graphql/ (form variables)
``/linkedin``  LinkedIn share box: Quill                  /voyager/api/contentcreation/
                                                          normShares
``/mastodon``  Mastodon compose form: textarea            /api/v1/statuses
``/reddit``    Reddit composer in an open shadow root     /api/submit (form text)
``/youtube``   YouTube comment box                        /youtubei/v1/comment/
                                                          create_comment
``/spa``       single-page app: "Compose" mounts a        /xrpc/com.atproto.repo.
               ProseMirror-like editor after a delay      createRecord
               and pushState()s to ``/spa/compose``
``/iframe``    editor in a same-origin iframe             /api/comment (form text)
               (``/iframe/editor``)
``/csp``       Lexical composer under a strict CSP:       /api/graphql/
               script-src 'nonce-…' 'strict-dynamic'
=============  =========================================  ===============================

Every page has a ``#post`` button that sends the editor's text (``innerText`` or ``value``)
in the platform's own body format and writes the answer into ``#result`` (the answer's
``message`` when the request was refused, else "Posted"). Posting endpoints answer
``{"ok": true, "id": N}`` and record what they received in ``app[RECEIVED]`` (also readable
as JSON at ``GET /__sites/received``; ``DELETE`` clears it).

With ``inject_script_url`` set, each page includes ``<script src=URL data-platform=ID>``
itself (the service path). Query parameters ``backend``, ``lang``, ``account`` and
``platform`` on a page become ``data-*`` attributes of that tag, and ``twice=1`` includes it
twice. With ``None`` the pages carry no script: the gateway injects it.
"""

from __future__ import annotations

import dataclasses
import html
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Received:
    """One request that reached a fake posting endpoint."""

    method: str
    path: str
    host: str
    content_type: str
    body: bytes = field(repr=False)

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "host": self.host,
            "content_type": self.content_type,
            "body": self.text(),
        }


RECEIVED = web.AppKey("sargs_sites_received", list[Received])
SCRIPT_URL = web.AppKey("sargs_sites_script_url", str)

# ---------------------------------------------------------------------------------------
# Compose markup, one per platform. Each copies the real page's editor element.
# ---------------------------------------------------------------------------------------

# x.com/compose/post: Draft.js (class names and data-testid as on x.com). No whitespace
# inside the editor: Draft.js renders none, and under white-space: pre-wrap it would be text.
X_EDITOR = (
    '<div class="DraftEditor-root"><div class="DraftEditor-editorContainer">'
    '<div aria-label="Post text" aria-multiline="true" '
    'class="notranslate public-DraftEditor-content" contenteditable="true" role="textbox" '
    'spellcheck="true" tabindex="0" data-testid="tweetTextarea_0" style="outline: none; '
    'user-select: text; white-space: pre-wrap; overflow-wrap: break-word;">'
    '<div data-contents="true">'
    '<div class="" data-block="true" data-editor="c1" data-offset-key="k-0-0">'
    '<div data-offset-key="k-0-0" '
    'class="public-DraftStyleDefault-block public-DraftStyleDefault-ltr">'
    '<span data-offset-key="k-0-0"><br data-text="true"></span>'
    "</div></div></div></div></div></div>"
)

# facebook.com "Create post": Lexical.
FB_EDITOR = (
    '<div class="composer">'
    '<div aria-label="What\'s on your mind?" contenteditable="true" role="textbox" '
    'spellcheck="true" tabindex="0" data-lexical-editor="true" '
    'style="user-select: text; white-space: pre-wrap; word-break: break-word;">'
    '<p class="xdj266r" dir="auto"><br></p></div></div>'
)

# The same Lexical editor without inline style attributes, for the page whose CSP has no
# 'unsafe-inline' styles (the page styles it from its nonce'd <style> instead).
FB_EDITOR_NO_INLINE_STYLE = FB_EDITOR.replace(
    ' style="user-select: text; white-space: pre-wrap; word-break: break-word;"', ""
)

# linkedin.com "Start a post": Quill.
LI_EDITOR = """
<div class="ql-container ql-snow">
  <div class="ql-editor ql-blank" data-gramm="false" contenteditable="true" role="textbox"
       aria-multiline="true" aria-label="Text editor for creating content"
       data-placeholder="What do you want to talk about?"><p><br></p></div>
  <div class="ql-clipboard" contenteditable="true" tabindex="-1"></div>
</div>"""

# Mastodon web UI compose form.
MASTODON_EDITOR = """
<form class="compose-form">
  <div class="autosuggest-textarea">
    <label><span style="display: none">What's on your mind?</span>
    <textarea class="autosuggest-textarea__textarea" placeholder="What's on your mind?"
              dir="auto" aria-autocomplete="list" rows="5" cols="50"
              style="font: 16px/1.4 sans-serif"></textarea></label>
  </div>
  <input type="search" id="search" placeholder="Search">
  <input type="password" id="password" autocomplete="current-password">
  <textarea id="readonly-note" readonly>Read-only note</textarea>
  <textarea id="disabled-note" disabled></textarea>
  <textarea id="hidden-note" style="display: none"></textarea>
</form>"""

# youtube.com comment box (ytd-commentbox > yt-formatted-string > #contenteditable-root).
YT_EDITOR = """
<ytd-commentbox id="commentbox">
  <yt-formatted-string id="contenteditable-textarea" class="style-scope ytd-commentbox">
    <div id="contenteditable-root" contenteditable="true" dir="auto"
         class="style-scope yt-formatted-string" aria-label="Add a comment..."></div>
  </yt-formatted-string>
</ytd-commentbox>"""

# reddit.com: the composer lives in the open shadow root of a custom element.
REDDIT_EDITOR = """
<shreddit-composer id="composer"></shreddit-composer>"""

REDDIT_SCRIPT = """
customElements.define('shreddit-composer', class extends HTMLElement {
  constructor() {
    super();
    const root = this.attachShadow({mode: 'open'});
    root.innerHTML = '<div class="rte"><div contenteditable="true" role="textbox" ' +
      'aria-label="Post body" aria-multiline="true" name="body" ' +
      'style="min-height: 80px; white-space: pre-wrap"><p><br></p></div></div>';
  }
  get editor() { return this.shadowRoot.querySelector('[role=textbox]'); }
});
"""

SPA_SCRIPT = """
document.getElementById('compose').addEventListener('click', () => {
  history.pushState({}, '', '/spa/compose');
  setTimeout(() => {
    const div = document.createElement('div');
    div.id = 'composer';
    div.innerHTML = '<div class="ProseMirror" contenteditable="true" role="textbox" ' +
      'translate="no" style="white-space: pre-wrap; min-height: 80px"><p><br></p></div>';
    document.getElementById('app').appendChild(div);
  }, 400);
});
"""

IFRAME_EDITOR = """<iframe id="frame" src="/iframe/editor" title="Comment"
  style="width: 640px; height: 220px; border: 1px solid #999"></iframe>"""

IFRAME_INNER = """
<div id="editor" contenteditable="true" role="textbox" aria-label="Comment"
     style="min-height: 80px; border: 1px solid #ccc; white-space: pre-wrap"><p><br></p></div>"""

POST_SCRIPT = """
(() => {
  const cfg = %(cfg)s;
  const doc = () => cfg.frame ? document.getElementById('frame').contentDocument : document;
  const editor = () => {
    if (cfg.shadowHost) {
      return document.querySelector(cfg.shadowHost).shadowRoot.querySelector(cfg.editor);
    }
    return doc().querySelector(cfg.editor);
  };
  const text = () => { const e = editor(); return e.value !== undefined ? e.value : e.innerText; };
  const body = (t) => {
    const v = JSON.parse(JSON.stringify(cfg.body).split('"__TEXT__"').join(JSON.stringify(t)));
    if (cfg.form) {
      const f = new URLSearchParams();
      for (const [k, val] of Object.entries(v)) {
        f.set(k, typeof val === 'string' ? val : JSON.stringify(val));
      }
      return {body: f.toString(), type: 'application/x-www-form-urlencoded'};
    }
    return {body: JSON.stringify(v), type: 'application/json'};
  };
  document.getElementById('post').addEventListener('click', async () => {
    const out = document.getElementById('result');
    const b = body(text());
    try {
      const r = await fetch(cfg.endpoint,
        {method: 'POST', headers: {'Content-Type': b.type}, body: b.body});
      let data = {};
      try { data = await r.json(); } catch (e) { data = {}; }
      const refused = data.message || ('Refused: ' + r.status);
      out.textContent = r.ok ? 'Posted'
        : (cfg.generic ? 'Something went wrong. Try again.' : refused);
      out.dataset.status = String(r.status);
    } catch (e) {
      out.textContent = 'Network error';
      out.dataset.status = '0';
    }
  });
})();
"""


@dataclass(frozen=True)
class Page:
    platform: str
    title: str
    markup: str
    editor: str  # selector of the element whose text is posted
    endpoint: str
    body: dict[str, Any]
    form: bool = False
    script: str = ""
    shadow_host: str = ""
    frame: bool = False
    csp: bool = False
    generic: bool = False  # a failed post shows "Something went wrong", as X's page does


PAGES: dict[str, Page] = {
    "x": Page(
        "x",
        "X",
        X_EDITOR,
        "[data-testid=tweetTextarea_0]",
        "/i/api/graphql/abc/CreateTweet",
        {"variables": {"tweet_text": "__TEXT__"}, "queryId": "abc"},
    ),
    "facebook": Page(
        "facebook",
        "Facebook",
        FB_EDITOR,
        "[data-lexical-editor]",
        "/api/graphql/",
        {"variables": {"input": {"message": {"text": "__TEXT__"}}}, "doc_id": "1"},
        form=True,
    ),
    "linkedin": Page(
        "linkedin",
        "LinkedIn",
        LI_EDITOR,
        ".ql-editor",
        "/voyager/api/contentcreation/normShares",
        {"commentaryV2": {"text": "__TEXT__"}, "visibility": "ANYONE"},
    ),
    "mastodon": Page(
        "mastodon",
        "Mastodon",
        MASTODON_EDITOR,
        "textarea.autosuggest-textarea__textarea",
        "/api/v1/statuses",
        {"status": "__TEXT__", "visibility": "public"},
    ),
    "reddit": Page(
        "reddit",
        "Reddit",
        REDDIT_EDITOR,
        "[role=textbox]",
        "/api/submit",
        {"text": "__TEXT__", "kind": "self"},
        form=True,
        script=REDDIT_SCRIPT,
        shadow_host="shreddit-composer",
    ),
    "youtube": Page(
        "youtube",
        "YouTube",
        YT_EDITOR,
        "#contenteditable-root",
        "/youtubei/v1/comment/create_comment",
        {"commentText": "__TEXT__"},
    ),
    "spa": Page(
        "bluesky",
        "SPA",
        '<div id="app"><button id="compose" type="button">Compose</button></div>',
        ".ProseMirror",
        "/xrpc/com.atproto.repo.createRecord",
        {"record": {"text": "__TEXT__"}},
        script=SPA_SCRIPT,
    ),
    "iframe": Page(
        "reddit",
        "Iframe",
        IFRAME_EDITOR,
        "#editor",
        "/api/comment",
        {"text": "__TEXT__"},
        form=True,
        frame=True,
    ),
    "csp": Page(
        "facebook",
        "Strict CSP",
        FB_EDITOR_NO_INLINE_STYLE,
        "[data-lexical-editor]",
        "/api/graphql/",
        {"variables": {"input": {"message": {"text": "__TEXT__"}}}, "doc_id": "1"},
        form=True,
        csp=True,
    ),
}
"""Page name (its path) -> what it copies."""

# Pages whose editor is emptied after a successful post, as the real ones are: X empties
# its Draft.js box; Mastodon's React form sets the textarea's value from script (which
# fires no input event). The compose guard must notice and close its panel.
CLEAR_AFTER_POST = """
new MutationObserver(() => {
  if (document.getElementById('result').textContent !== 'Posted') return;
  const e = document.querySelector(%(editor)s);
  if (e.localName === 'textarea') e.value = '';
  else e.innerHTML = %(empty)s;
}).observe(document.getElementById('result'), {childList: true, characterData: true,
                                              subtree: true});
"""
X_EMPTY = '<div data-contents="true">' + X_EDITOR.split('<div data-contents="true">', 1)[1].rsplit(
    "</div></div></div></div>", 1
)[0] + "</div>"  # what Draft.js renders for an empty draft: one block holding a <br>
PAGES["x-post"] = dataclasses.replace(
    PAGES["x"],
    title="X (emptied after posting)",
    script=CLEAR_AFTER_POST
    % {"editor": json.dumps(PAGES["x"].editor), "empty": json.dumps(X_EMPTY)},
)
PAGES["mastodon-post"] = dataclasses.replace(
    PAGES["mastodon"],
    title="Mastodon (emptied after posting)",
    script=CLEAR_AFTER_POST % {"editor": json.dumps(PAGES["mastodon"].editor), "empty": '""'},
)
PAGES["x-generic"] = dataclasses.replace(
    PAGES["x"], title="X (a generic error when posting fails)", generic=True
)

TAG_PARAMS = ("backend", "lang", "account", "platform", "readonly")


def _script_tag(request: web.Request, page: Page, nonce: str) -> str:
    url = request.app[SCRIPT_URL]
    if not url:
        return ""
    attrs = {"src": url, "nonce": nonce, "data-platform": page.platform}
    for name in TAG_PARAMS:
        if name in request.query:
            attrs[f"data-{name}"] = request.query[name]
    tag = "<script " + " ".join(f'{k}="{html.escape(v)}"' for k, v in attrs.items()) + "></script>"
    return tag * (2 if request.query.get("twice") == "1" else 1)


def _document(title: str, head: str, body: str, nonce: str, scripts: str = "") -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} (Sargs test site)</title>
<style nonce="{nonce}">body {{ font: 16px/1.5 sans-serif; margin: 24px; }}
[contenteditable] {{ border: 1px solid #999; min-height: 60px; padding: 8px; width: 560px; }}
textarea {{ width: 560px; }}
[data-lexical-editor] {{ user-select: text; white-space: pre-wrap; word-break: break-word; }}
</style>
{head}</head><body>
<main>
<h1>{html.escape(title)}</h1>
{body}
<p><button id="post" type="button">Post</button> <output id="result"></output></p>
</main>
{scripts}
</body></html>"""


async def page_handler(request: web.Request) -> web.Response:
    return _render(request, request.match_info["name"])


def _render(request: web.Request, name: str) -> web.Response:
    page = PAGES.get(name)
    if page is None:
        raise web.HTTPNotFound()
    nonce = secrets.token_urlsafe(16)
    cfg = {
        "editor": page.editor,
        "endpoint": page.endpoint,
        "body": page.body,
        "form": page.form,
        "frame": page.frame,
        "shadowHost": page.shadow_host,
        "generic": page.generic,
    }
    scripts = ""
    if page.script:
        scripts += f'<script nonce="{nonce}">{page.script}</script>\n'
    scripts += f'<script nonce="{nonce}">{POST_SCRIPT % {"cfg": json.dumps(cfg)}}</script>'
    doc = _document(page.title, _script_tag(request, page, nonce), page.markup, nonce, scripts)
    headers = {"Cache-Control": "no-store"}
    if page.csp:
        headers["Content-Security-Policy"] = (
            f"script-src 'nonce-{nonce}' 'strict-dynamic'; object-src 'none'; base-uri 'none'; "
            f"style-src 'self' 'nonce-{nonce}'"
        )
    return web.Response(text=doc, content_type="text/html", headers=headers)


async def iframe_inner(request: web.Request) -> web.Response:
    nonce = secrets.token_urlsafe(16)
    doc = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Editor</title>
<style nonce="{nonce}">body {{ font: 16px/1.5 sans-serif; margin: 8px; }}</style></head>
<body>{IFRAME_INNER}</body></html>"""
    return web.Response(text=doc, content_type="text/html")


async def index(request: web.Request) -> web.Response:
    links = "".join(f'<li><a href="/{n}">{html.escape(p.title)}</a></li>' for n, p in PAGES.items())
    nonce = secrets.token_urlsafe(16)
    return web.Response(
        text=_document("Sargs test sites", "", f"<ul>{links}</ul>", nonce), content_type="text/html"
    )


async def record(request: web.Request) -> web.Response:
    body = await request.read()
    received = request.app[RECEIVED]
    received.append(
        Received(request.method, request.path, request.host, request.content_type, body)
    )
    return web.json_response({"ok": True, "id": len(received)})


async def received_list(request: web.Request) -> web.Response:
    return web.json_response([r.as_json() for r in request.app[RECEIVED]])


async def received_clear(request: web.Request) -> web.Response:
    request.app[RECEIVED].clear()
    return web.json_response({"ok": True})


POSTING_PATHS = sorted({p.endpoint for p in PAGES.values()} | {"/api/v1/statuses"})


def make_site_app(inject_script_url: str | None) -> web.Application:
    """The fake platforms; ``inject_script_url`` is the compose guard's URL, or None."""
    app = web.Application()
    app[RECEIVED] = []
    app[SCRIPT_URL] = inject_script_url or ""
    app.router.add_get("/", index)
    app.router.add_get("/__sites/received", received_list)
    app.router.add_delete("/__sites/received", received_clear)
    app.router.add_get("/iframe/editor", iframe_inner)
    for path in POSTING_PATHS:
        app.router.add_post(path, record)
    app.router.add_get("/{name}", page_handler)
    app.router.add_get("/spa/compose", _spa_compose)
    return app


async def _spa_compose(request: web.Request) -> web.Response:
    return _render(request, "spa")  # a reload after pushState lands on the same app


# ---------------------------------------------------------------------------------------
# Reads that use POST, as the real pages send them (method, host, path, content type, body).
# Each is a `reading:` entry of policies/base/platforms.yaml; tests/security sends every one
# through a real gateway as a read-only user (answered) and, where the path also receives
# posts, the same path with a post's text (refused).
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """One request as a platform's own page sends it."""

    platform: str
    host: str
    path: str
    content_type: str
    body: bytes

    @property
    def url(self) -> str:
        return f"https://{self.host}{self.path}"


_FB_FORM = "application/x-www-form-urlencoded"
READS: tuple[Shape, ...] = (
    # facebook.com feed scroll: GraphQL query named in fb_api_req_friendly_name.
    Shape("facebook", "www.facebook.com", "/api/graphql/", _FB_FORM,
          b"av=1000&__user=1000&fb_dtsg=NA&fb_api_caller_class=RelayModern"
          b"&fb_api_req_friendly_name=CometNewsFeedPaginationQuery"
          b"&variables=%7B%22count%22%3A3%2C%22cursor%22%3A%22abc%22%7D&doc_id=1234567"),
    Shape("facebook", "www.facebook.com", "/ajax/bz", _FB_FORM,
          b"__a=1&__user=1000&q=%5B%7B%22app_id%22%3A%222220391788200892%22%7D%5D&ts=1"),
    Shape("instagram", "www.instagram.com", "/api/graphql", _FB_FORM,
          b"av=17841&fb_api_caller_class=RelayModern"
          b"&fb_api_req_friendly_name=PolarisFeedTimelineRootV2Query"
          b"&variables=%7B%22data%22%3A%7B%7D%7D&doc_id=99"),
    Shape("x", "x.com", "/i/api/graphql/c-CzHF1LboFilMpsx4ZCrQ/HomeTimeline",
          "application/json",
          b'{"variables":{"count":20,"includePromotedContent":true},'
          b'"features":{"rweb_video_screen_enabled":false},"queryId":"c-CzHF1LboFilMpsx4ZCrQ"}'),
    Shape("x", "x.com", "/i/api/1.1/jot/client_event.json", _FB_FORM,
          b"category=perftown&log=%5B%7B%22description%22%3A%22rweb%3Aurt%22%7D%5D"),
    Shape("youtube", "www.youtube.com", "/youtubei/v1/browse?prettyPrint=false",
          "application/json",
          b'{"context":{"client":{"clientName":"WEB","clientVersion":"2.20261120.01.00",'
          b'"hl":"lv"}},"browseId":"FEwhat_to_watch"}'),
    Shape("youtube", "www.youtube.com", "/youtubei/v1/next?prettyPrint=false",
          "application/json",
          b'{"context":{"client":{"clientName":"WEB","clientVersion":"2.20261120.01.00"}},'
          b'"videoId":"dQw4w9WgXcQ"}'),
    Shape("youtube", "www.youtube.com", "/youtubei/v1/search?prettyPrint=false",
          "application/json",
          b'{"context":{"client":{"clientName":"WEB","clientVersion":"2.20261120.01.00"}},'
          b'"query":"Saeima"}'),
    Shape("linkedin", "www.linkedin.com", "/li/track", "application/json",
          b'[{"eventInfo":{"eventName":"PageViewEvent","appId":"com.linkedin.flagship3.d_web"}}]'),
    Shape("threads", "www.threads.net", "/api/graphql", _FB_FORM,
          b"fb_api_req_friendly_name=BarcelonaFeedQuery&variables=%7B%7D&doc_id=7"),
    Shape("reddit", "www.reddit.com", "/svc/shreddit/events", "application/json",
          b'{"info":[{"action":"view","noun":"screen","source":"global"}]}'),
)
"""Each is answered for a read-only role; none carries a post's text."""
