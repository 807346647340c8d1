"""``sparsenb site``: a static HTML site of the reproduction record, readable offline.

``sparsenb site --out site/`` writes

- ``index.html``: the reproduction table (the README gallery, with the same claim
  states: :func:`sparsenb.nb.gallery.gallery_markdown`), the notebooks with their
  measured run times (:func:`sparsenb.nb.gallery.notebooks_markdown`) and, when
  ``results/benchmarks/*.json`` exist, the performance table (ms per step);
- ``<notebook>.html`` for each notebook: its committed ``cpu`` record (claims
  with their states, metrics, configuration, run time), then the notebook itself.

**What a notebook page renders.** Executed notebooks are not committed
(``results/**/*.ipynb`` is git-ignored), so a page is built from committed files
only, and the site is the same on every machine: the notebook *source*
(``notebooks/<nb>.ipynb``), the record ``results/<nb>/cpu/results.json`` and the
figures ``figures/<nb>/cpu/*.png``. Each figure is shown under the code cell that
saves it (``run.figure(fig, "name")``); figures no cell names are listed at the end.
Text outputs of the run (printed tables, progress bars) are not part of the record
and are not shown; its numbers are in the record's tables at the top of the page.

**Offline.** Nothing is loaded from the network: the style sheet is inlined,
figures are copied next to the pages, and formulas (``$...$``, ``$$...$$``) are
converted to MathML when the site is built (``latex2mathml``), which browsers
typeset natively, so no MathJax/KaTeX script or CDN is needed.
"""
from __future__ import annotations

import functools
import html
import json
import re
import shutil
from pathlib import Path

from .catalog import NOTEBOOKS
from .claims import state_of
from .gallery import gallery_markdown, notebooks_markdown, run_time_text
from .record import project_root

__all__ = ["build_site", "Chromium", "serve", "screenshot_index", "tex_to_mathml", "markdown_with_math", "performance_rows", "index_html", "notebook_html"]

STYLE = Path(__file__).with_name("site_style.css")
"""The style sheet inlined into every page (package data)."""

_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE = re.compile(r"(?<![\\$\w])\$(?=\S)([^$\n]+?)(?<=\S)\$(?![\w$])")
_FIGURE = re.compile(r"""run\.figure\(\s*\w+\s*,\s*["']([^"']+)["']""")


def tex_to_mathml(tex: str, display: bool = False) -> str:
    """MathML for the LaTeX formula ``tex`` (without the namespace URL, which HTML does not need).

    ``\\*`` is read as ``*``: notebooks escape it from Markdown's emphasis (``$p^\\*$``).
    Raises ValueError naming the formula if latex2mathml cannot convert it.
    """
    from latex2mathml.converter import convert

    try:
        out = convert(tex.strip().replace("\\*", "*"), display="block" if display else "inline")
    except Exception as e:  # latex2mathml raises several exception types on unknown commands
        raise ValueError(f"cannot convert the formula ${tex}$ to MathML ({e}); rewrite it with standard LaTeX "
                         f"commands") from e
    return out.replace(' xmlns="http://www.w3.org/1998/Math/MathML"', "")


def _protect_math(text: str) -> tuple[str, dict[str, str]]:
    """``text`` with each formula outside code replaced by a token, and the token -> MathML map."""
    found: dict[str, str] = {}

    def token(mathml: str) -> str:
        key = f"SNBMATH{len(found):05d}X"
        found[key] = mathml
        return key

    parts = _CODE.split(text)
    for i in range(0, len(parts), 2):  # even parts are outside code spans
        p = _DISPLAY.sub(lambda m: token(tex_to_mathml(m.group(1), display=True)), parts[i])
        parts[i] = _INLINE.sub(lambda m: token(tex_to_mathml(m.group(1))), p)
    return "".join(parts), found


def _restore_math(html_text: str, found: dict[str, str]) -> str:
    for key, mathml in found.items():
        html_text = html_text.replace(key, mathml)
    return html_text


def markdown_with_math(text: str) -> str:
    """HTML of the Markdown ``text`` (tables included), its formulas as MathML."""
    import mistune

    protected, found = _protect_math(text)
    md = mistune.create_markdown(escape=True, plugins=["table"])
    return _restore_math(md(protected), found)


@functools.lru_cache(maxsize=1)
def _exporter():
    """An nbconvert HTML exporter (body only, no scripts) whose Markdown cells get MathML formulas."""
    from nbconvert import HTMLExporter

    class MathMLExporter(HTMLExporter):
        def markdown2html(self, context, source):
            protected, found = _protect_math(source)
            return _restore_math(super().markdown2html(context, protected), found)

    # markdown2html is a context filter: rebind it on the subclass
    MathMLExporter.markdown2html.__dict__.update(HTMLExporter.markdown2html.__dict__)
    return MathMLExporter(template_name="basic", exclude_input_prompt=False, exclude_output_prompt=True)


def _page(title: str, body: str) -> str:
    from pygments.formatters import HtmlFormatter

    css = STYLE.read_text() + HtmlFormatter(style="default").get_style_defs(".highlight")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<link rel="icon" href="data:,">\n'
            f"<title>{html.escape(title)}</title>\n<style>\n{css}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def _load_record(root: Path, stem: str) -> dict | None:
    path = root / "results" / stem / "cpu" / "results.json"
    return json.loads(path.read_text()) if path.exists() else None


def performance_rows(root: Path | None = None) -> list[tuple[str, str, str, float]]:
    """``(benchmark, case, variant, ms per step)`` from every ``results/benchmarks/*.json``; [] if none.

    A benchmark file's ``results`` maps a case (a model, a layer width) to a dict whose
    ``ms_per_step`` maps a variant (dense, masked, ...) to milliseconds.
    """
    root = root or project_root()
    rows = []
    for path in sorted((root / "results" / "benchmarks").glob("*.json")):
        data = json.loads(path.read_text())
        for case, res in (data.get("results") or {}).items():
            for variant, ms in (res.get("ms_per_step") or {}).items() if isinstance(res, dict) else ():
                rows.append((path.stem, str(case), str(variant), float(ms)))
    return rows


def _performance_html(root: Path) -> str:
    rows = performance_rows(root)
    if not rows:
        return ("<p>No benchmark results (<code>results/benchmarks/*.json</code>) were committed; "
                "see <code>benchmarks/</code> to measure them.</p>")
    machines = []
    for path in sorted((root / "results" / "benchmarks").glob("*.json")):
        d = json.loads(path.read_text())
        machines.append(f"<li><code>{html.escape(path.name)}</code>: {html.escape(str(d.get('date', '?')))}, "
                        f"torch {html.escape(str(d.get('torch', '?')))}, {d.get('threads', '?')} thread(s), "
                        f"{html.escape(str(d.get('cpu_model', '?')))}</li>")
    body = "".join(f"<tr><td><code>{html.escape(b)}</code></td><td>{html.escape(c)}</td><td>{html.escape(v)}</td>"
                   f"<td class=\"num\">{ms:.3f}</td></tr>\n" for b, c, v, ms in rows)
    return (f"<p>Measured on a shared machine (timings vary with its load); each file records its setting:</p>"
            f"<ul>{''.join(machines)}</ul>\n<table id=\"performance\"><thead><tr><th>benchmark</th><th>case</th>"
            f"<th>variant</th><th>ms per step</th></tr></thead>\n<tbody>\n{body}</tbody></table>")


def index_html(root: Path | None = None) -> str:
    """The index page: reproduction table, notebooks with run times, performance table."""
    root = root or project_root()
    gallery = markdown_with_math(gallery_markdown(root)).replace("<table>", '<table id="reproduction">', 1)
    notebooks = markdown_with_math(notebooks_markdown(root)).replace("<table>", '<table id="notebooks">', 1)
    for stem in NOTEBOOKS:  # the notebook column links to its page
        notebooks = notebooks.replace(f"<td><code>{stem}</code></td>",
                                      f'<td><a href="{stem}.html"><code>{stem}</code></a></td>')
    body = (f"<header><h1>sparsenb: reproduction record</h1>\n<p>Generated by <code>sparsenb site</code> from the "
            f"committed <code>results/*/cpu/results.json</code> and <code>figures/</code>. A claim is <em>held</em>, "
            f"<strong>did not hold</strong>, <em>inconclusive</em> or <em>not evaluated</em> (with its reason).</p>"
            f"</header>\n<main>\n<h2>Our result vs the paper's</h2>\n{gallery}\n"
            f"<h2>Notebooks</h2>\n{notebooks}\n<h2>Performance</h2>\n{_performance_html(root)}\n</main>")
    return _page("sparsenb: reproduction record", body)


def _record_html(stem: str, res: dict | None) -> str:
    if res is None:
        return "<p>This notebook has no committed <code>cpu</code> record yet.</p>"
    claims = "".join(f"<tr><td>{markdown_with_math(c['text'])}</td><td class=\"state\">{html.escape(state_of(c))}</td>"
                     f"<td>{html.escape(str(c.get('reason') or c.get('detail') or ''))}</td></tr>\n"
                     for c in res.get("claims", []))
    metrics = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td class=\"num\">"
                      f"{html.escape(f'{v:.6g}' if isinstance(v, float) else str(v))}</td></tr>\n"
                      for k, v in res.get("metrics", {}).items())
    config = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td><code>{html.escape(repr(v))}</code></td></tr>\n"
                     for k, v in res.get("config", {}).items())
    env = ", ".join(f"{k} {v}" for k, v in res.get("env", {}).items())
    return (f"<p>Run time {run_time_text(stem)}; config hash <code>{html.escape(str(res.get('config_hash')))}</code>; "
            f"{html.escape(env)}.</p>\n<table class=\"claims\"><thead><tr><th>claim</th><th>state</th><th>detail</th>"
            f"</tr></thead>\n<tbody>\n{claims}</tbody></table>\n<details><summary>metrics ({len(res.get('metrics', {}))})"
            f"</summary><table class=\"metrics\"><tbody>\n{metrics}</tbody></table></details>\n"
            f"<details><summary>configuration of the run</summary><table><tbody>\n{config}</tbody></table></details>")


def _figure_output(stem: str, name: str) -> dict:
    src = f"figures/{stem}/{name}.png"
    return {"output_type": "display_data", "metadata": {}, "data": {"text/html": (
        f'<figure><img src="{src}" alt="figure {html.escape(name)}"><figcaption><code>figures/{stem}/cpu/'
        f'{html.escape(name)}.png</code></figcaption></figure>')}}


def notebook_html(stem: str, root: Path | None = None) -> str:
    """The page of ``stem``: its record, then the notebook source with its figures under the cells saving them."""
    import nbformat

    root = root or project_root()
    nb = nbformat.read(root / "notebooks" / f"{stem}.ipynb", as_version=4)
    figures = {p.stem for p in (root / "figures" / stem / "cpu").glob("*.png")}
    shown = set()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            for name in _FIGURE.findall(cell.source):
                if name in figures:
                    cell.outputs.append(nbformat.from_dict(_figure_output(stem, name)))
                    shown.add(name)
    rest = sorted(figures - shown)
    if rest:
        nb.cells.append(nbformat.v4.new_markdown_cell("## Other figures of the record"))
        cell = nbformat.v4.new_code_cell("# figures saved under names built at run time")
        cell.outputs = [nbformat.from_dict(_figure_output(stem, n)) for n in rest]
        nb.cells.append(cell)
    body, _ = _exporter().from_notebook_node(nb)
    title = NOTEBOOKS[stem].title if stem in NOTEBOOKS else stem
    return _page(f"{stem}: {title}", (
        f'<nav><a href="index.html">&larr; all results</a></nav>\n<header><h1><code>{stem}</code>: '
        f"{html.escape(title)}</h1></header>\n<main>\n<h2>Committed record (<code>cpu</code> profile)</h2>\n"
        f"{_record_html(stem, _load_record(root, stem))}\n<h2>The notebook</h2>\n<p>Source "
        f"<code>notebooks/{stem}.ipynb</code> with the record's figures; text outputs of the run are not "
        f"committed.</p>\n<div class=\"notebook\">{body}</div>\n</main>"))


def _favicon() -> bytes:
    """A 1x1 transparent icon (an ICO holding one PNG), so no page logs a 404 for ``/favicon.ico``."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00\x00")) + chunk(b"IEND", b""))
    return struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 1, 1, 0, 0, 1, 32, len(png), 22) + png


def build_site(out: Path | str, root: Path | None = None) -> list[Path]:
    """Write the site into ``out`` (created; its old pages and figures replaced); returns the pages written."""
    root = root or project_root()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder (it is created if missing)")
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "figures", ignore_errors=True)
    (out / "favicon.ico").write_bytes(_favicon())  # browsers may ask for it despite the page's data: icon
    pages = [out / "index.html"]
    pages[0].write_text(index_html(root))
    for stem in sorted(NOTEBOOKS):
        if not (root / "notebooks" / f"{stem}.ipynb").exists():
            continue
        src = root / "figures" / stem / "cpu"
        if src.is_dir():
            (out / "figures" / stem).mkdir(parents=True, exist_ok=True)
            for png in src.glob("*.png"):
                shutil.copy2(png, out / "figures" / stem / png.name)
        page = out / f"{stem}.html"
        page.write_text(notebook_html(stem, root))
        pages.append(page)
    return pages


# --- headless Chromium (the site test and ``sparsenb site --screenshot``) ------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--remote-debugging-port=0", "--hide-scrollbars"]

_INSPECT = r"""(() => {
  const rows = id => Array.from(document.querySelectorAll('#' + id + ' tbody tr'))
      .map(tr => Array.from(tr.cells).map(td => td.innerText.trim()));
  const maths = Array.from(document.querySelectorAll('math'));
  return JSON.stringify({
    title: document.title,
    images: Array.from(document.images).map(i => ({src: i.getAttribute('src'), complete: i.complete,
                                                   naturalWidth: i.naturalWidth})),
    math: maths.length,
    math_native: maths.filter(m => (typeof MathMLElement !== 'undefined') && m instanceof MathMLElement
                                   && m.getBoundingClientRect().width > 0).length,
    reproduction: rows('reproduction'), notebooks: rows('notebooks'), performance: rows('performance'),
  });
})()"""


class Chromium:
    """Headless Chromium driven over the DevTools protocol (one websocket, one page).

    ``open(url)`` loads a page and returns what the site test checks: console errors and
    uncaught exceptions, every requested URL, the images with their ``naturalWidth``, the
    number of (natively laid out) MathML formulas, and the rows of the site's tables.
    Used as a context manager; the browser and its fresh profile folder go away on exit.
    """

    def __init__(self, binary: str = CHROMIUM, width: int = 1400, height: int = 1000):
        import subprocess
        import tempfile

        if not Path(binary).exists():
            raise FileNotFoundError(f"{binary} not found: install Chromium (`apt-get install -y chromium`)")
        self.profile = tempfile.mkdtemp(prefix="sparsenb-chromium-")
        self.proc = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
                                      f"--window-size={width},{height}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.width, self.height, self._id, self.events = width, height, 0, []
        self._connect()

    def _connect(self, timeout: float = 30.0) -> None:
        import time

        import websocket

        end, url = time.monotonic() + timeout, None
        while url is None:
            line = self.proc.stderr.readline()
            if not line and (self.proc.poll() is not None or time.monotonic() > end):
                self.close()
                raise RuntimeError(f"{CHROMIUM} did not start (exit code {self.proc.returncode}); "
                                   f"install it with `apt-get install -y chromium`")
            if "DevTools listening on " in line:
                url = line.split("DevTools listening on ", 1)[1].strip()
        self.ws = websocket.create_connection(url, timeout=timeout, suppress_origin=True)
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=True)
        self.send("Emulation.setDeviceMetricsOverride", session=True, width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)

    def send(self, method: str, session: bool = False, **params) -> dict:
        """Call ``method``; returns its result (events arriving meanwhile are kept in ``events``)."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"Chromium: {method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _wait_for(self, method: str, since: int) -> None:
        while not any(e.get("method") == method for e in self.events[since:]):
            self.events.append(json.loads(self.ws.recv()))

    def open(self, url: str) -> dict:
        """Load ``url`` and report on it (see the class docstring)."""
        start = len(self.events)
        self.send("Page.navigate", session=True, url=url)
        self._wait_for("Page.loadEventFired", start)
        found = json.loads(self.send("Runtime.evaluate", session=True, expression=_INSPECT,
                                     returnByValue=True)["result"]["value"])
        events = self.events[start:]
        errors = [e["params"]["exceptionDetails"].get("text", "exception") for e in events
                  if e.get("method") == "Runtime.exceptionThrown"]
        errors += [" ".join(str(a.get("value", a.get("description", ""))) for a in e["params"]["args"])
                   for e in events if e.get("method") == "Runtime.consoleAPICalled"
                   and e["params"]["type"] in ("error", "assert")]
        errors += [f"{e['params']['entry']['text']} ({e['params']['entry'].get('url', '')})" for e in events
                   if e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"]
        errors += [f"request failed: {e['params'].get('errorText')}" for e in events
                   if e.get("method") == "Network.loadingFailed"]
        found["console_errors"] = errors
        found["requests"] = [e["params"]["request"]["url"] for e in events
                             if e.get("method") == "Network.requestWillBeSent"]
        return found

    def screenshot(self, path: Path | str) -> None:
        """Save the visible part (``width`` x ``height``) of the open page as a PNG."""
        import base64

        data = self.send("Page.captureScreenshot", session=True, format="png")["data"]
        Path(path).write_bytes(base64.b64decode(data))

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class serve:
    """``with serve(folder) as base_url:`` serves ``folder`` on 127.0.0.1 (a free port) in a thread."""

    def __init__(self, folder: Path | str):
        import http.server

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))

    def __enter__(self) -> str:
        import threading

        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def screenshot_index(site: Path | str, png: Path | str) -> None:
    """Open ``site``/index.html in headless Chromium and save its first screen as ``png``."""
    with serve(site) as base, Chromium(width=1400, height=1000) as browser:
        report = browser.open(base + "index.html")
        if report["console_errors"]:
            raise RuntimeError(f"the index page has errors: {report['console_errors']}")
        browser.screenshot(png)
