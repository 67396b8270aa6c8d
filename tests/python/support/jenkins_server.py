"""A Jenkins controller stand-in: the REST subset `mlcd jenkins` uses, over a real socket.

Usage::

    with JenkinsStandIn.start(users={"admin": "tok-123"}) as jk:
        jk.url                       # "http://127.0.0.1:PORT/"
        jk.add_item("team/churn/main", kind="pipeline")
        jk.add_build("team/churn/main", 3, result="FAILURE", stages=[...], tests=[...], artifacts={...})
        jk.requests                  # [(method, path), ...]
        jk.items["team/churn"].xml   # config.xml as stored

Each behaviour is tagged *confirmed* (the source it was read from) or *inferred*;
an inferred one that matters has a switch (a dialect) and mlcd is tested under each.

* Crumb: ``GET crumbIssuer/api/json`` -> ``{"crumb", "crumbRequestField"}``; a POST without
  the header is refused 403 "No valid crumb was included in the request". *confirmed*:
  core ``hudson/security/csrf/DefaultCrumbIssuer.java``, ``CrumbFilter.java``; python-jenkins
  ``maybe_add_crumb``. ``csrf=False`` answers 404 there (protection off: python-jenkins
  then sends no crumb; *confirmed* in ``maybe_add_crumb``).
* Auth: HTTP Basic user + API token; a wrong token is 401, anonymous is 403 when anonymous
  may not read (*confirmed*: core ``jenkins/security/BasicHeaderApiTokenAuthenticator.java``,
  ``hudson/security/AccessDeniedHandlerImpl.java``).
* ``POST [job/F/]createItem?name=X``: an XML body creates the item from it; form field
  ``mode=<Folder class>`` creates an empty folder; an existing name is 400 "A job already
  exists with the name"; a root class no installed plugin provides is 500 with XStream's
  ``CannotResolveClassException`` (*confirmed*: core ``hudson/model/ItemGroupMixIn.java``
  ``createTopLevelItem``/``createProjectFromXML``, ``Jenkins.checkGoodName``).
* ``GET/POST job/X/config.xml``: dialect ``store="verbatim"`` returns what was posted
  (*confirmed* for right after a POST: core ``AbstractItem.updateByXml`` writes the posted
  XML, ``writeConfigDotXml`` copies the file); ``store="reserialized"`` returns it as
  Jenkins writes it after any later save, with ``plugin="name@version"`` attributes and
  default fields added (*inferred* from XStream2's behaviour; which extra fields appear
  depends on the plugins). A POST of another root class is 500 (*confirmed*:
  ``updateByXml`` "Expecting ... but got ...").
* ``GET pluginManager/api/json`` -> ``{"plugins": [{"shortName", "version", "active",
  "enabled"}]}`` (*confirmed*: core ``PluginWrapper`` exported fields).
* ``POST pipeline-model-converter/validateJenkinsfile`` (form ``jenkinsfile``) -> ``{"status":
  "ok", "data": {"result": "success"}}`` or ``{"result": "failure", "errors": [{"error": m}]}``;
  a file without ``pipeline {`` fails with "did not contain the 'pipeline' step"
  (*confirmed*: pipeline-model-definition ``ModelConverterAction.doValidateJenkinsfile`` and
  ``Converter``). The stand-in's own syntax check is only that plus balanced braces
  (*inferred*; the real parser checks far more).
* ``GET job/X/api/json`` -> ``name``, ``fullName``, ``url``, ``jobs`` (folders) or ``builds``
  (newest first) (*confirmed*: core ``Job``/``Folder`` ``@Exported`` getters).
* ``GET job/X/N/api/json`` -> ``number, result, building, timestamp, duration, description,
  url, artifacts[{fileName, relativePath}]`` (*confirmed*: core ``Run`` exported getters).
* ``GET job/X/N/wfapi/describe`` -> ``{id, name, status, startTimeMillis, durationMillis,
  stages: [{id, name, status, startTimeMillis, durationMillis}]}`` (*confirmed*:
  pipeline-stage-view ``RunExt``/``StageNodeExt``; status values from ``StatusExt``).
* ``GET job/X/N/testReport/api/json`` -> ``failCount, passCount, skipCount, suites[{name,
  cases[{className, name, status, errorDetails, duration}]}]``, 404 without tests
  (*confirmed*: junit ``TestResult``, ``SuiteResult``, ``CaseResult`` exported getters).
* ``GET job/X/N/artifact/<path>`` serves an archived file (*confirmed*: core ``Run.getArtifact``).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from lxml import etree

FOLDER = "com.cloudbees.hudson.plugins.folder.Folder"
MULTIBRANCH = "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject"
PIPELINE = "flow-definition"
CLASS_OF_KIND = {
    "folder": FOLDER,
    "multibranch": MULTIBRANCH,
    "pipeline": "org.jenkinsci.plugins.workflow.job.WorkflowJob",
}
KIND_OF_ROOT = {FOLDER: "folder", MULTIBRANCH: "multibranch", PIPELINE: "pipeline"}
PLUGIN_OF_KIND = {
    "folder": "cloudbees-folder",
    "multibranch": "workflow-multibranch",
    "pipeline": "workflow-job",
}
DEFAULT_PLUGINS = {
    "cloudbees-folder": "6.999",
    "workflow-multibranch": "795.v1",
    "workflow-job": "1436.v1",
    "git": "5.7.0",
    "pipeline-groovy-lib": "752.v1",
    "pipeline-stage-view": "2.38",
    "junit": "1312.v1",
    "pipeline-model-definition": "2.2255.v1",
}
EMPTY_FOLDER_XML = (
    f"<?xml version='1.1' encoding='UTF-8'?>\n<{FOLDER} plugin=\"cloudbees-folder@6.999\">\n"
    "  <actions/>\n  <description></description>\n  <properties/>\n  <folderViews/>\n"
    f"  <healthMetrics/>\n</{FOLDER}>\n"
)


@dataclass
class Item:
    kind: str
    xml: str
    builds: dict[int, dict[str, Any]] = field(default_factory=dict)


def reserialize(xml: str, plugins: dict[str, str]) -> str:
    """The XML as Jenkins would write it after a later save: versions on ``plugin``, default fields added."""
    root = etree.fromstring(
        xml.split("?>", 1)[1].encode() if xml.lstrip().startswith("<?xml") else xml.encode()
    )
    kind = KIND_OF_ROOT.get(root.tag)
    if kind:
        name = PLUGIN_OF_KIND[kind]
        root.set("plugin", f"{name}@{plugins.get(name, '1.0')}")
        etree.SubElement(root, "actions")
        etree.SubElement(root, "healthMetrics")
        icon = etree.SubElement(root, "icon", {"class": "jenkins.branch.MetadataActionFolderIcon"})
        icon.append(etree.Element("owner", {"class": root.tag, "reference": "../.."}))
    for el in root.iter():
        if el.get("class") == "jenkins.plugins.git.GitSCMSource":
            el.set("plugin", f"git@{plugins.get('git', '1.0')}")
    return "<?xml version='1.1' encoding='UTF-8'?>\n" + etree.tostring(
        root, pretty_print=True, encoding="unicode"
    )


class JenkinsStandIn:
    """One stand-in controller on 127.0.0.1 (see the module doc for what it implements)."""

    def __init__(
        self,
        users: dict[str, str] | None = None,
        *,
        csrf: bool = True,
        store: str = "verbatim",
        plugins: dict[str, str] | None = None,
        anonymous_read: bool = False,
        create_error: str | None = None,
        plugins_readable: bool = True,
    ) -> None:
        self.users = dict(users or {})
        self.csrf = csrf
        self.store = store
        self.plugins = dict(DEFAULT_PLUGINS if plugins is None else plugins)
        self.anonymous_read = anonymous_read
        self.plugins_readable = plugins_readable  # False: a user without Overall/SystemRead (403)
        self.create_error = create_error  # a test switch: createItem answers 500 with this body
        self.crumb = secrets.token_hex(16)
        self.items: dict[str, Item] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    @classmethod
    def start(cls, users: dict[str, str] | None = None, **kw: Any) -> JenkinsStandIn:
        jk = cls(users, **kw)
        handler = type("Handler", (_Handler,), {"jk": jk})
        jk._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        jk.url = f"http://127.0.0.1:{jk._server.server_address[1]}/"
        jk._thread = threading.Thread(target=jk._server.serve_forever, daemon=True)
        jk._thread.start()
        return jk

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> JenkinsStandIn:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- seeding -------------------------------------------------------------------------------------
    def add_item(self, name: str, kind: str = "pipeline", xml: str | None = None) -> None:
        self.items[name] = Item(kind, xml or f"<{CLASS_OF_KIND[kind]}/>")

    def add_build(
        self,
        name: str,
        number: int,
        *,
        result: str | None = "SUCCESS",
        timestamp: int = 1_700_000_000_000,
        duration: int = 60_000,
        description: str | None = None,
        stages: list[tuple[str, str]] | None = None,
        tests: list[dict[str, Any]] | None = None,
        artifacts: dict[str, bytes] | None = None,
    ) -> None:
        """A finished build (``result=None``: still building) with stages ``(name, status)``."""
        self.items[name].builds[number] = {
            "result": result,
            "timestamp": timestamp,
            "duration": duration,
            "description": description,
            "stages": stages or [],
            "tests": tests,
            "artifacts": artifacts or {},
        }

    def stored_xml(self, name: str) -> str:
        item = self.items[name]
        return reserialize(item.xml, self.plugins) if self.store == "reserialized" else item.xml

    def posts(self) -> list[str]:
        return [path for method, path in self.requests if method == "POST"]


_JOB = re.compile(r"^((?:job/[^/]+/)*)(.*)$")


class _Handler(BaseHTTPRequestHandler):
    jk: JenkinsStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing -------------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes | str | dict[str, Any], ctype: str = "application/json") -> None:
        if isinstance(body, dict):
            data = json.dumps(body).encode()
        else:
            data = body.encode() if isinstance(body, str) else body
            if ctype == "application/json":
                ctype = "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", f"{ctype};charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _auth_problem(self) -> int | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None if self.jk.anonymous_read or not self.jk.users else 403
        user, _, token = base64.b64decode(header[6:]).decode().partition(":")
        return None if self.jk.users.get(user) == token else 401

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        self.jk.requests.append((method, parts.path))
        problem = self._auth_problem()
        body = self._body() if method == "POST" else b""
        if problem:
            self._send(
                problem, "<html>Invalid password/token for user</html>" if problem == 401 else "denied"
            )
            return
        if method == "POST" and self.jk.csrf and self.headers.get("Jenkins-Crumb") != self.jk.crumb:
            self._send(403, "No valid crumb was included in the request")
            return
        found = _JOB.match(parts.path.lstrip("/"))
        assert found is not None
        names = [unquote(n) for n in found.group(1).split("/")[1::2]]
        with self.jk.lock:
            _dispatch(self, method, "/".join(names), found.group(2).rstrip("/"), parse_qs(parts.query), body)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")


def _dispatch(
    h: _Handler, method: str, name: str, rest: str, query: dict[str, list[str]], body: bytes
) -> None:
    jk = h.jk
    if not name:
        _root(h, method, rest, query, body)
        return
    item = jk.items.get(name)
    if item is None:
        h._send(404, "Not Found")
        return
    if rest == "api/json":
        _job_json(h, name, item, query)
    elif rest == "config.xml":
        _config(h, name, item, method, body)
    elif rest == "createItem" and method == "POST":
        _create(h, name + "/", query, body, h.headers.get("Content-Type", ""))
    else:
        _build(h, name, item, rest)


def _root(h: _Handler, method: str, rest: str, query: dict[str, list[str]], body: bytes) -> None:
    jk = h.jk
    if rest == "crumbIssuer/api/json" and jk.csrf:
        h._send(
            200,
            {
                "_class": "hudson.security.csrf.DefaultCrumbIssuer",
                "crumb": jk.crumb,
                "crumbRequestField": "Jenkins-Crumb",
            },
        )
    elif rest == "api/json":
        h._send(200, {"_class": "hudson.model.Hudson", "jobs": _children(jk, "")})
    elif rest == "pluginManager/api/json" and not jk.plugins_readable:
        h._send(403, "access denied: Overall/SystemRead is missing")
    elif rest == "pluginManager/api/json":
        h._send(
            200,
            {
                "plugins": [
                    {"shortName": n, "longName": n.title(), "version": v, "active": True, "enabled": True}
                    for n, v in jk.plugins.items()
                ]
            },
        )
    elif rest == "createItem" and method == "POST":
        _create(h, "", query, body, h.headers.get("Content-Type", ""))
    elif rest == "pipeline-model-converter/validateJenkinsfile" and method == "POST":
        text = parse_qs(body.decode()).get("jenkinsfile", [""])[0]
        h._send(200, {"status": "ok", "data": _validate(text)})
    else:
        h._send(404, "Not Found")


def _validate(text: str) -> dict[str, Any]:
    errors: list[dict[str, str]] = []
    if not re.search(r"^\s*pipeline\s*\{", text, re.M):
        errors.append({"error": f"Jenkinsfile content '{text[:40]}' did not contain the 'pipeline' step"})
    elif text.count("{") != text.count("}"):
        errors.append({"error": "unexpected token: braces do not balance"})
    return {"result": "failure", "errors": errors} if errors else {"result": "success"}


def _children(jk: JenkinsStandIn, prefix: str) -> list[dict[str, str]]:
    out = []
    for full, item in sorted(jk.items.items()):
        if full.startswith(prefix) and "/" not in full[len(prefix) :]:
            short = full[len(prefix) :]
            out.append({"_class": CLASS_OF_KIND[item.kind], "name": short, "url": _url(jk, full)})
    return out


def _url(jk: JenkinsStandIn, full: str) -> str:
    return jk.url + "".join(f"job/{p}/" for p in full.split("/"))


def _job_json(h: _Handler, name: str, item: Item, query: dict[str, list[str]]) -> None:
    jk = h.jk
    short = name.rsplit("/", 1)[-1]
    data: dict[str, Any] = {
        "_class": CLASS_OF_KIND[item.kind],
        "name": short,
        "fullName": name,
        "url": _url(jk, name),
    }
    if item.kind in ("folder", "multibranch"):
        data["jobs"] = _children(jk, name + "/")
    else:
        numbers = sorted(item.builds, reverse=True)
        data["builds"] = [{"number": n, "url": f"{_url(jk, name)}{n}/"} for n in numbers]
        data["firstBuild"] = data["builds"][-1] if numbers else None
        data["lastBuild"] = data["builds"][0] if numbers else None
    h._send(200, data)


def _config(h: _Handler, name: str, item: Item, method: str, body: bytes) -> None:
    jk = h.jk
    if method == "GET":
        h._send(200, jk.stored_xml(name), "application/xml")
        return
    problem = _xml_problem(jk, body)
    if problem:
        h._send(500, problem)
        return
    kind = _kind(body)
    if kind != item.kind:
        h._send(
            500, f"java.io.IOException: Expecting {CLASS_OF_KIND[item.kind]} but got {CLASS_OF_KIND[kind]}"
        )
        return
    item.xml = body.decode()
    h._send(200, "")


def _root_tag(body: bytes) -> str:
    return str(etree.fromstring(body.split(b"?>", 1)[1] if body.lstrip().startswith(b"<?xml") else body).tag)


def _kind(body: bytes) -> str:
    return KIND_OF_ROOT.get(_root_tag(body), "unknown")


def _xml_problem(jk: JenkinsStandIn, body: bytes) -> str | None:
    try:
        tag = _root_tag(body)
    except etree.XMLSyntaxError as exc:
        return f"org.xml.sax.SAXParseException: {exc}"
    kind = KIND_OF_ROOT.get(tag)
    if kind is None or PLUGIN_OF_KIND[kind] not in jk.plugins:
        return f"com.thoughtworks.xstream.mapper.CannotResolveClassException: {tag}"
    return None


def _create(h: _Handler, parent: str, query: dict[str, list[str]], body: bytes, ctype: str) -> None:
    jk = h.jk
    if jk.create_error is not None:
        h._send(500, jk.create_error)
        return
    short = query.get("name", [""])[0]
    full = parent + short
    if full in jk.items:
        h._send(400, f"A job already exists with the name '{short}'")
        return
    if ctype.startswith("application/x-www-form-urlencoded"):
        mode = parse_qs(body.decode()).get("mode", [""])[0]
        if mode != FOLDER or "cloudbees-folder" not in jk.plugins:
            h._send(400, f"No item type {mode} is known")
            return
        jk.items[full] = Item("folder", EMPTY_FOLDER_XML)
        h._send(200, "")
        return
    problem = _xml_problem(jk, body)
    if problem:
        h._send(500, problem)
        return
    jk.items[full] = Item(_kind(body), body.decode())
    h._send(200, "")


def _build(h: _Handler, name: str, item: Item, rest: str) -> None:
    jk = h.jk
    number_text, _, what = rest.partition("/")
    build = item.builds.get(int(number_text)) if number_text.isdigit() else None
    if build is None:
        h._send(404, "Not Found")
        return
    number = int(number_text)
    url = f"{_url(jk, name)}{number}/"
    if what == "api/json":
        h._send(
            200,
            {
                "_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
                "number": number,
                "result": build["result"],
                "building": build["result"] is None,
                "timestamp": build["timestamp"],
                "duration": build["duration"],
                "description": build["description"],
                "url": url,
                "fullDisplayName": f"{name} #{number}",
                "artifacts": [
                    {"fileName": p.rsplit("/", 1)[-1], "relativePath": p} for p in build["artifacts"]
                ],
            },
        )
    elif what == "wfapi/describe":
        start = build["timestamp"]
        stages = [
            {
                "id": str(i + 6),
                "name": n,
                "status": s,
                "startTimeMillis": start + i * 1000,
                "durationMillis": 1000,
            }
            for i, (n, s) in enumerate(build["stages"])
        ]
        status = {
            "SUCCESS": "SUCCESS",
            "FAILURE": "FAILED",
            "UNSTABLE": "UNSTABLE",
            "ABORTED": "ABORTED",
            None: "IN_PROGRESS",
        }[build["result"]]
        h._send(
            200,
            {
                "id": str(number),
                "name": f"#{number}",
                "status": status,
                "startTimeMillis": start,
                "durationMillis": build["duration"],
                "stages": stages,
            },
        )
    elif what == "testReport/api/json" and build["tests"] is not None:
        _test_report(h, build["tests"])
    elif what.startswith("artifact/") and what[len("artifact/") :] in build["artifacts"]:
        h._send(200, build["artifacts"][what[len("artifact/") :]], "application/octet-stream")
    else:
        h._send(404, "Not Found")


def _test_report(h: _Handler, tests: list[dict[str, Any]]) -> None:
    suites: dict[str, list[dict[str, Any]]] = {}
    for case in tests:
        suites.setdefault(case["className"], []).append(
            {
                "className": case["className"],
                "name": case["name"],
                "status": case["status"],
                "errorDetails": case.get("errorDetails"),
                "duration": case.get("duration", 0.1),
            }
        )
    fails = sum(c["status"] in ("FAILED", "REGRESSION") for c in tests)
    skips = sum(c["status"] == "SKIPPED" for c in tests)
    h._send(
        200,
        {
            "_class": "hudson.tasks.junit.TestResult",
            "failCount": fails,
            "skipCount": skips,
            "passCount": len(tests) - fails - skips,
            "suites": [{"name": n, "cases": c} for n, c in suites.items()],
        },
    )
