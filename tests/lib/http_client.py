"""One HTTP request to a charrnn-serve on 127.0.0.1, for the test scripts
(tests/server/run_e2e.py, tests/hardening)."""
import http.client
import json


def request(port, method, path, body=None, headers=None, timeout=60, source=None):
    """Sends body (a dict or list as JSON, a str as UTF-8, or bytes) from the
    loopback address source (default: the system's choice, 127.0.0.1); returns
    (status, headers with lower-case names, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    h = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        h.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode()
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
    finally:
        conn.close()
