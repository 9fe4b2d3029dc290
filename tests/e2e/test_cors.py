"""Bucket CORS: Put/Get/DeleteBucketCors with boto3 (AWS's validation and errors), preflights
and actual requests over raw HTTP (matching, wildcards, headers on success and error answers),
and a real browser (headless Chromium through Selenium) that PUTs and GETs through presigned
URLs from a page of another origin, which works only while the bucket allows that origin."""

from __future__ import annotations

import functools
import hashlib
import http.client
import http.server
import json
import shutil
import threading
import urllib.parse
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import error_of, unique_bucket_name

VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
NOT_ALLOWED = "CORSResponse: This CORS request is not allowed."
APP = "http://app.example.com"

SITE_RULES = [
    {
        "ID": "site",
        "AllowedOrigins": [APP, "https://*.example.org"],
        "AllowedMethods": ["GET", "PUT"],
        "AllowedHeaders": ["content-type", "x-amz-*"],
        "ExposeHeaders": ["ETag", "x-amz-request-id"],
        "MaxAgeSeconds": 600,
    },
    {"ID": "public", "AllowedOrigins": ["*"], "AllowedMethods": ["GET", "HEAD"]},
]


def put_cors(s3, bucket: str, rules: list[dict]) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})


def expect_error(call, code: str, status: int, message: str | None = None) -> None:
    with pytest.raises(ClientError) as e:
        call()
    assert error_of(e.value) == (code, status), e.value.response
    if message is not None:
        assert e.value.response["Error"]["Message"] == message


class Reply:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def send(server, method: str, target: str, headers: dict[str, str] | None = None,
         body: bytes | None = None) -> Reply:
    """One raw HTTP request (`target` is a path with query, or a full URL to this server)."""
    if target.startswith("http"):
        parts = urllib.parse.urlsplit(target)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def preflight(server, path: str, origin: str | None, method: str | None,
              request_headers: str | None = None) -> Reply:
    headers = {}
    if origin is not None:
        headers["Origin"] = origin
    if method is not None:
        headers["Access-Control-Request-Method"] = method
    if request_headers is not None:
        headers["Access-Control-Request-Headers"] = request_headers
    return send(server, "OPTIONS", path, headers)


def assert_refused(reply: Reply, status: int, code: str, message: str) -> None:
    assert reply.status == status, reply.text
    assert f"<Code>{code}</Code>" in reply.text, reply.text
    assert message in reply.text, reply.text
    assert reply.header("Access-Control-Allow-Origin") is None


def assert_no_cors(reply: Reply) -> None:
    for name in ("Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
                 "Access-Control-Expose-Headers", "Vary"):
        assert reply.header(name) is None, (name, reply.headers)


# ---------------------------------------------------------------- configuration operations

def test_put_get_delete(s3, bucket):
    expect_error(lambda: s3.get_bucket_cors(Bucket=bucket), "NoSuchCORSConfiguration", 404,
                 "The CORS configuration does not exist")
    put_cors(s3, bucket, SITE_RULES)
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == SITE_RULES

    # A new configuration replaces the old one whole.
    replacement = [{"AllowedOrigins": ["*"], "AllowedMethods": ["DELETE", "POST"], "MaxAgeSeconds": 0}]
    put_cors(s3, bucket, replacement)
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == replacement

    resp = s3.delete_bucket_cors(Bucket=bucket)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    expect_error(lambda: s3.get_bucket_cors(Bucket=bucket), "NoSuchCORSConfiguration", 404)
    # Deleting what is not there is fine, as on AWS.
    assert s3.delete_bucket_cors(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204

    missing = unique_bucket_name("missing")
    expect_error(lambda: s3.get_bucket_cors(Bucket=missing), "NoSuchBucket", 404)
    expect_error(lambda: put_cors(s3, missing, replacement), "NoSuchBucket", 404)


def test_validation_as_aws(s3, bucket):
    def rule(**kw) -> dict:
        return {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], **kw}

    def refused(rules: list[dict], code: str, message: str | None = None) -> None:
        expect_error(lambda: put_cors(s3, bucket, rules), code, 400, message)

    refused([rule(AllowedMethods=["GET", "PATCH"])], "InvalidRequest",
            "Found unsupported HTTP method in CORS config. Unsupported method is PATCH")
    refused([rule(AllowedMethods=["get"])], "InvalidRequest",
            "Found unsupported HTTP method in CORS config. Unsupported method is get")
    refused([rule(AllowedOrigins=["https://*.example.*"])], "InvalidRequest",
            'AllowedOrigin "https://*.example.*" can not have more than one wildcard.')
    refused([rule(AllowedHeaders=["x-*-meta-*"])], "InvalidRequest",
            'AllowedHeader "x-*-meta-*" can not have more than one wildcard.')
    refused([rule(ExposeHeaders=["x-amz-*"])], "InvalidRequest",
            'ExposeHeader "x-amz-*" contains wildcard. We currently do not support wildcard for ExposeHeader.')
    refused([], "MalformedXML")
    refused([rule()] * 101, "MalformedXML")
    refused([rule(ID="r" * 256)], "MalformedXML")
    refused([rule(MaxAgeSeconds=-1)], "MalformedXML")
    # A document over 64 KiB.
    refused([rule(AllowedOrigins=[f"https://site-{i:05}.example.com" for i in range(2500)])],
            "MalformedXML")
    # Nothing of a refused configuration was kept.
    expect_error(lambda: s3.get_bucket_cors(Bucket=bucket), "NoSuchCORSConfiguration", 404)

    # The limits themselves are accepted.
    put_cors(s3, bucket, [rule(ID="r" * 255)] + [rule()] * 99)
    assert len(s3.get_bucket_cors(Bucket=bucket)["CORSRules"]) == 100


# ---------------------------------------------------------------- preflights

def test_preflight_matching(server, s3, bucket):
    put_cors(s3, bucket, SITE_RULES)
    path = f"/{bucket}/some/key"

    r = preflight(server, path, APP, "PUT", "Content-Type, X-Amz-Date")
    assert r.status == 200, r.text
    assert r.body == b""
    assert r.header("Access-Control-Allow-Origin") == APP
    assert r.header("Access-Control-Allow-Methods") == "GET, PUT"
    assert r.header("Access-Control-Allow-Headers") == "content-type, x-amz-date"
    assert r.header("Access-Control-Expose-Headers") == "ETag, x-amz-request-id"
    assert r.header("Access-Control-Max-Age") == "600"
    assert r.header("Access-Control-Allow-Credentials") == "true"
    assert r.header("Vary") == VARY

    # The bucket itself, and a wildcard origin (echoed).
    r = preflight(server, f"/{bucket}", "https://a.b.example.org", "GET")
    assert r.status == 200, r.text
    assert r.header("Access-Control-Allow-Origin") == "https://a.b.example.org"
    assert r.header("Access-Control-Allow-Headers") is None

    # Only the `*` rule allows another origin: `*`, no credentials, its own methods.
    r = preflight(server, path, "http://elsewhere.test:8080", "HEAD")
    assert r.status == 200, r.text
    assert r.header("Access-Control-Allow-Origin") == "*"
    assert r.header("Access-Control-Allow-Methods") == "GET, HEAD"
    assert r.header("Access-Control-Allow-Credentials") is None
    assert r.header("Access-Control-Max-Age") is None

    # No rule matches: a method, a header, an origin in another case, a near-miss wildcard.
    for origin, method, request_headers in [
        ("http://elsewhere.test", "PUT", None),
        (APP, "DELETE", None),
        (APP, "PUT", "content-type, authorization"),
        ("http://elsewhere.test", "GET", "content-type"),
        ("HTTP://APP.EXAMPLE.COM", "PUT", None),
        ("https://example.org", "PUT", None),
        ("https://a.example.org.evil", "PUT", None),
    ]:
        r = preflight(server, path, origin, method, request_headers)
        assert_refused(r, 403, "AccessForbidden", NOT_ALLOWED)

    # Missing or invalid preflight headers.
    assert_refused(preflight(server, path, None, "PUT"), 400, "BadRequest",
                   "Insufficient information. Origin request header needed.")
    assert_refused(preflight(server, path, APP, None), 400, "BadRequest",
                   "Invalid Access-Control-Request-Method: null")
    assert_refused(preflight(server, path, APP, "PATCH"), 400, "BadRequest",
                   "Invalid Access-Control-Request-Method: PATCH")

    # A browser sends the preflight of a presigned request to the presigned URL itself; it is
    # answered from the rules, without checking the signature (made for another method).
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    r = preflight(server, url, APP, "PUT", "content-type")
    assert r.status == 200, r.text
    assert r.header("Access-Control-Allow-Origin") == APP


def test_preflight_without_configuration_or_bucket(server, s3, bucket):
    assert_refused(preflight(server, f"/{bucket}/k", APP, "GET"), 403, "AccessForbidden",
                   "CORSResponse: CORS is not enabled for this bucket.")
    assert_refused(preflight(server, f"/{unique_bucket_name('missing')}/k", APP, "GET"), 403,
                   "AccessForbidden", "CORSResponse: Bucket not found")
    assert_refused(preflight(server, "/", APP, "GET"), 403, "AccessForbidden",
                   "CORSResponse: Bucket not found")


def test_configuration_changes_apply_at_once(server, s3, bucket):
    put_cors(s3, bucket, SITE_RULES)
    assert preflight(server, f"/{bucket}/k", APP, "PUT").status == 200
    put_cors(s3, bucket, [{"AllowedOrigins": [APP], "AllowedMethods": ["DELETE"]}])
    assert preflight(server, f"/{bucket}/k", APP, "PUT").status == 403
    assert preflight(server, f"/{bucket}/k", APP, "DELETE").status == 200
    s3.delete_bucket_cors(Bucket=bucket)
    assert_refused(preflight(server, f"/{bucket}/k", APP, "DELETE"), 403, "AccessForbidden",
                   "CORS is not enabled")


# ---------------------------------------------------------------- actual requests

def test_actual_requests_carry_the_matching_rules_headers(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello")
    put_cors(s3, bucket, SITE_RULES)
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "hello.txt"},
                                        ExpiresIn=300)

    r = send(server, "GET", get_url, {"Origin": APP})
    assert r.status == 200, r.text
    assert r.body == b"hello"
    assert r.header("Access-Control-Allow-Origin") == APP
    assert r.header("Access-Control-Allow-Credentials") == "true"
    assert r.header("Access-Control-Allow-Methods") == "GET, PUT"
    assert r.header("Access-Control-Expose-Headers") == "ETag, x-amz-request-id"
    assert r.header("Vary") == VARY
    assert "Origin" in r.header("Vary")

    # Errors carry them too, so a page can read S3's answer: a missing key, an anonymous
    # request to a private bucket, a presigned URL whose signature does not match.
    missing_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "nope"},
                                            ExpiresIn=300)
    signature = urllib.parse.parse_qs(urllib.parse.urlsplit(get_url).query)["X-Amz-Signature"][0]
    tampered = get_url.replace(signature, ("1" if signature[0] == "0" else "0") + signature[1:])
    for target, status, code in [
        (missing_url, 404, "NoSuchKey"),
        (f"/{bucket}/hello.txt", 403, "AccessDenied"),
        (tampered, 403, "SignatureDoesNotMatch"),
    ]:
        r = send(server, "GET", target, {"Origin": APP})
        assert r.status == status, r.text
        assert f"<Code>{code}</Code>" in r.text
        assert r.header("Access-Control-Allow-Origin") == APP, (target, r.headers)
        assert r.header("Access-Control-Allow-Credentials") == "true"
        assert r.header("Access-Control-Expose-Headers") == "ETag, x-amz-request-id"
        assert r.header("Vary") == VARY

    # Any origin may GET through the `*` rule: `*`, without credentials.
    r = send(server, "GET", get_url, {"Origin": "http://elsewhere.test"})
    assert r.status == 200
    assert r.header("Access-Control-Allow-Origin") == "*"
    assert r.header("Access-Control-Allow-Credentials") is None

    # No Origin, or no rule for the origin and method: served, without CORS headers.
    assert_no_cors(send(server, "GET", get_url))
    r = send(server, "GET", get_url, {"Origin": "HTTP://APP.EXAMPLE.COM"})
    assert r.status == 200
    assert r.header("Access-Control-Allow-Origin") == "*"  # only the `*` rule matches
    delete_url = s3.generate_presigned_url("delete_object", Params={"Bucket": bucket, "Key": "x"},
                                           ExpiresIn=300)
    r = send(server, "DELETE", delete_url, {"Origin": APP})
    assert r.status == 204, r.text
    assert_no_cors(r)

    # Without a configuration: never.
    s3.delete_bucket_cors(Bucket=bucket)
    r = send(server, "GET", get_url, {"Origin": APP})
    assert r.status == 200
    assert_no_cors(r)


# ---------------------------------------------------------------- a real browser

PAGE = """<!doctype html>
<html><head><title>running</title></head><body>
<script>
const PUT_URL = %(put_url)s;
const GET_URL = %(get_url)s;
const BODY = %(body)s;
(async () => {
  try {
    const put = await fetch(PUT_URL, {method: "PUT", body: BODY,
                                      headers: {"Content-Type": "text/plain"}});
    const etag = put.headers.get("ETag");
    const got = await fetch(GET_URL);
    const text = await got.text();
    document.title = "done:" + JSON.stringify({put: put.status, etag: etag, get: got.status, text: text});
  } catch (e) {
    document.title = "failed:" + e;
  }
})();
</script>
</body></html>
"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.fixture
def page_server(tmp_path):
    """A static web server on 127.0.0.1 (another port than strata's: another origin)."""
    root = tmp_path / "site"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def browser():
    """Headless Chromium driven by Selenium (installed by tests/run.sh)."""
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    assert chromium and chromedriver, "chromium and chromium-driver are needed (tests/run.sh installs them)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    except WebDriverException as e:
        pytest.skip(f"headless Chromium cannot start in this sandbox: {e.msg}")
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def run_page(browser, site: tuple[Path, str], name: str, put_url: str, get_url: str, body: str) -> str:
    """Loads a page from the page server that PUTs `body` to `put_url` and GETs `get_url` with
    fetch(), and returns what it reported in its title."""
    from selenium.webdriver.support.ui import WebDriverWait

    root, origin = site
    (root / name).write_text(PAGE % {"put_url": json.dumps(put_url), "get_url": json.dumps(get_url),
                                     "body": json.dumps(body)})
    browser.get(f"{origin}/{name}")
    WebDriverWait(browser, 30).until(lambda d: d.title.startswith(("done:", "failed:")))
    return browser.title


def test_browser_uploads_and_reads_through_presigned_urls(s3, bucket, page_server, browser):
    _, origin = page_server
    put_cors(s3, bucket, [{
        "AllowedOrigins": [origin],
        "AllowedMethods": ["GET", "PUT"],
        "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": 0,
    }])

    def urls(key: str) -> tuple[str, str]:
        params = {"Bucket": bucket, "Key": key}
        return (s3.generate_presigned_url("put_object", Params=params, ExpiresIn=300),
                s3.generate_presigned_url("get_object", Params=params, ExpiresIn=300))

    body = "written by a browser page of another origin"
    title = run_page(browser, page_server, "allowed.html", *urls("from-browser.txt"), body)
    assert title.startswith("done:"), title
    report = json.loads(title.removeprefix("done:"))
    assert report["put"] == 200
    assert report["etag"] == f'"{hashlib.md5(body.encode()).hexdigest()}"'  # exposed by the rule
    assert report["get"] == 200
    assert report["text"] == body
    assert s3.get_object(Bucket=bucket, Key="from-browser.txt")["Body"].read() == body.encode()

    # Without a configuration the browser's preflight is refused and nothing is sent.
    s3.delete_bucket_cors(Bucket=bucket)
    title = run_page(browser, page_server, "refused.html", *urls("refused.txt"), body)
    assert title == "failed:TypeError: Failed to fetch", title
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="refused.txt"), "404", 404)
