"""Endpoint contracts, over real HTTP against Uvicorn (no httpx needed)."""

import json
import os
import socket
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request
import uuid

APP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, APP)
os.environ.setdefault("MODEL_PATH", os.path.join(APP, "model", "lsa.npz"))
os.environ["MAX_LINES"] = "5"
os.environ["MAX_FILE_BYTES"] = "2000"

import uvicorn  # noqa: E402

import main  # noqa: E402


class _Server(uvicorn.Server):
    def install_signal_handlers(self):  # run in a thread
        pass


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class APITest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        port = _free_port()
        cls.base = f"http://127.0.0.1:{port}"
        cls.server = _Server(uvicorn.Config(main.app, host="127.0.0.1", port=port, log_level="warning"))
        cls.thread = threading.Thread(target=cls.server.run, daemon=True)
        cls.thread.start()
        for _ in range(100):
            if cls.server.started:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("uvicorn did not start")

    @classmethod
    def tearDownClass(cls):
        cls.server.should_exit = True
        cls.thread.join(5)

    def request(self, method, path, body=None, headers=None):
        data = body
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read()

    def json(self, method, path, body=None, headers=None, status=200):
        code, ctype, raw = self.request(method, path, body, headers)
        self.assertEqual(code, status, raw[:300])
        self.assertTrue(ctype.startswith("application/json"), ctype)
        return json.loads(raw)

    def upload(self, content: bytes, field="file", status=200):
        b = uuid.uuid4().hex
        body = (
            f'--{b}\r\nContent-Disposition: form-data; name="{field}"; filename="reqs.txt"\r\n'
            f"Content-Type: text/plain\r\n\r\n"
        ).encode() + content + f"\r\n--{b}--\r\n".encode()
        return self.json("POST", "/embed/file", body, {"Content-Type": f"multipart/form-data; boundary={b}"}, status)

    # -- pages --------------------------------------------------------------
    def test_root_is_html(self):
        for path in ("/", "/docs"):
            code, ctype, raw = self.request("GET", path)
            self.assertEqual(code, 200)
            self.assertTrue(ctype.startswith("text/html"), ctype)
            self.assertIn(b"openapi.json", raw)
            self.assertNotIn(b"cdn.jsdelivr.net", raw)  # assets are local

    def test_swagger_assets_local(self):
        if os.environ.get("SWAGGER_UI_DIR"):  # set by the aim-base/python image
            self.assertTrue(main.HAVE_SWAGGER, "SWAGGER_UI_DIR is set but has no swagger-ui-bundle.js")
            code, ctype, raw = self.request("GET", "/static/swagger-ui/swagger-ui-bundle.js")
            self.assertEqual(code, 200)
            self.assertGreater(len(raw), 100000)
        else:  # elsewhere: the self-contained page documents the endpoints
            code, ctype, raw = self.request("GET", "/")
            self.assertIn(b"/embed/file", raw)

    def test_openapi(self):
        doc = self.json("GET", "/openapi.json")
        for p in ("/embed", "/embed/file", "/similarity", "/most-similar"):
            self.assertIn(p, doc["paths"])
        self.assertIn("LSA: TF-IDF + truncated SVD", doc["info"]["description"])
        self.assertIn("not* the Universal Sentence Encoder", doc["info"]["description"])

    def test_model(self):
        m = self.json("GET", "/model")
        self.assertEqual(m["dimensions"], main.model.dims)
        self.assertTrue(m["name"].startswith("LSA"))

    # -- endpoints ------------------------------------------------------------
    def test_embed(self):
        r = self.json("POST", "/embed", {"text": "The brakes shall stop the vehicle."})
        self.assertEqual(len(r["embedding"]), r["dimensions"])
        self.assertGreater(r["known_terms"], 0)
        self.assertAlmostEqual(sum(x * x for x in r["embedding"]), 1.0, places=3)

    def test_embed_file(self):
        r = self.upload("The brakes shall stop the car.\n\n  \nThe pump shall deliver water.\r\n".encode())
        self.assertEqual(r["count"], 2)
        self.assertEqual([e["line"] for e in r["embeddings"]], [1, 4])
        self.assertEqual(r["embeddings"][1]["text"], "The pump shall deliver water.")

    def test_similarity_and_ranking(self):
        q = "The train doors shall stay closed while the train is moving."
        s1 = self.json("POST", "/similarity", {"a": q, "b": "Doors shall not open when the train is in motion."})
        s2 = self.json("POST", "/similarity", {"a": q, "b": "User passwords shall be stored as salted hashes."})
        self.assertGreater(s1["similarity"], s2["similarity"])
        r = self.json("POST", "/most-similar", {
            "query": q, "k": 2,
            "candidates": ["The crane shall lift 10 tonnes.", "Doors shall not open when the train is in motion.",
                           "User passwords shall be hashed."],
        })
        self.assertEqual(len(r["results"]), 2)
        self.assertEqual(r["results"][0]["index"], 1)
        self.assertGreaterEqual(r["results"][0]["similarity"], r["results"][1]["similarity"])

    # -- validation ------------------------------------------------------------
    def test_rejects(self):
        for path, body in [
            ("/embed", {"text": ""}),
            ("/embed", {"text": "   \n"}),
            ("/embed", {}),
            ("/embed", {"text": "x" * 10001}),
            ("/similarity", {"a": "brakes", "b": ""}),
            ("/most-similar", {"query": "brakes", "candidates": []}),
            ("/most-similar", {"query": "brakes", "candidates": ["ok", " "]}),
            ("/most-similar", {"query": "brakes", "candidates": ["ok"], "k": 0}),
            ("/most-similar", {"query": "brakes", "candidates": ["c"] * 1001}),
        ]:
            r = self.json("POST", path, body, status=422)
            self.assertIn("detail", r, body)
        code, _, _ = self.request("POST", "/embed", b"not json", {"Content-Type": "application/json"})
        self.assertEqual(code, 422)

    def test_file_rejects(self):
        self.assertIn("no non-empty lines", self.upload(b"\n \n", status=400)["detail"])
        self.assertIn("more than 5", self.upload(b"a\nb\nc\nd\ne\nf\n", status=400)["detail"])
        self.assertIn("not UTF-8", self.upload(b"caf\xe9\n", status=400)["detail"])
        self.assertIn("larger than 2000", self.upload(b"x" * 2001, status=413)["detail"])
        self.upload(b"brakes\n", field="other", status=422)


if __name__ == "__main__":
    unittest.main()
