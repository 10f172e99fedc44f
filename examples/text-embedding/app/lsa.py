"""Latent semantic analysis (LSA) text embeddings with numpy only.

A model is TF-IDF weighting followed by a truncated SVD, fitted on a corpus
of sentences:

    x    = tf-idf vector of a text (sublinear tf, smoothed idf), L2-normalised
    e    = components @ x          (components: the top right singular vectors)
    emb  = e / ||e||               (so a dot product is a cosine similarity)

It is small and honest: it knows only the words of its training corpus, and
similarity reflects shared and co-occurring vocabulary, not deep meaning.

Model file (.npz): vocabulary (str array), idf (float32), components
(float32, dims x vocabulary), singular_values, and a JSON ``meta`` string.
Any file with these arrays can be served (MODEL_PATH).
"""

from __future__ import annotations

import json
import re

import numpy as np

TOKEN_RE = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")

# Words too common to carry meaning (English function words and the
# boilerplate of requirement sentences).
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers him his how i if in into
    is it its itself just me more most my no nor not now of off on once only or other
    our out over own same she should so some such than that the their them then there
    these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your shall system""".split()
)


def _stem(w: str) -> str:
    """A deliberately light stemmer: plural and common verb endings."""
    if len(w) > 5 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 5 and w.endswith("ing"):
        return w[:-3]
    if len(w) > 4 and w.endswith("ed") and not w.endswith("eed"):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def tokenize(text: str) -> list[str]:
    return [_stem(t) for t in TOKEN_RE.findall(text.lower()) if t not in STOPWORDS and len(t) > 1]


class LSAModel:
    def __init__(self, vocabulary, idf, components, singular_values, meta):
        self.vocabulary = list(vocabulary)
        self.index = {w: i for i, w in enumerate(self.vocabulary)}
        self.idf = np.asarray(idf, dtype=np.float32)
        self.components = np.asarray(components, dtype=np.float32)
        self.singular_values = np.asarray(singular_values, dtype=np.float32)
        self.meta = dict(meta)
        if self.components.shape[1] != len(self.vocabulary) or self.idf.shape != (len(self.vocabulary),):
            raise ValueError("inconsistent model: components, idf and vocabulary sizes differ")

    @property
    def dims(self) -> int:
        return int(self.components.shape[0])

    @property
    def name(self) -> str:
        return self.meta.get(
            "name",
            f"LSA: TF-IDF + truncated SVD, {self.dims} dimensions, "
            f"trained on {self.meta.get('sentences', '?')} sentences",
        )

    # -- fitting -----------------------------------------------------------
    @classmethod
    def fit(cls, sentences: list[str], dims: int = 100, min_df: int = 1, source: str = "") -> "LSAModel":
        docs = [tokenize(s) for s in sentences]
        df: dict[str, int] = {}
        for d in docs:
            for w in set(d):
                df[w] = df.get(w, 0) + 1
        vocabulary = sorted(w for w, c in df.items() if c >= min_df)
        index = {w: i for i, w in enumerate(vocabulary)}
        n = len(docs)
        idf = np.log((1 + n) / (1 + np.array([df[w] for w in vocabulary], dtype=np.float64))) + 1
        x = np.zeros((n, len(vocabulary)), dtype=np.float64)
        for r, d in enumerate(docs):
            for w in d:
                if w in index:
                    x[r, index[w]] += 1
        x = np.where(x > 0, 1 + np.log(np.maximum(x, 1)), 0) * idf
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms > 0, norms, 1)
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        k = min(dims, len(s))
        meta = {
            "name": f"LSA: TF-IDF + truncated SVD, {k} dimensions, trained on {n} sentences",
            "method": "tf-idf (sublinear tf, smoothed idf, L2) -> truncated SVD -> L2",
            "sentences": n,
            "vocabulary": len(vocabulary),
            "dimensions": k,
            "explained_variance": float((s[:k] ** 2).sum() / (s**2).sum()),
            "corpus": source,
        }
        return cls(vocabulary, idf, vt[:k], s[:k], meta)

    # -- persistence -------------------------------------------------------
    def save(self, path: str) -> None:
        np.savez_compressed(
            path,
            vocabulary=np.array(self.vocabulary, dtype=str),
            idf=self.idf,
            components=self.components,
            singular_values=self.singular_values,
            meta=np.array(json.dumps(self.meta)),
        )

    @classmethod
    def load(cls, path: str) -> "LSAModel":
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
            return cls(z["vocabulary"].tolist(), z["idf"], z["components"], z["singular_values"], meta)

    # -- inference ---------------------------------------------------------
    def embed(self, texts: list[str]) -> tuple[np.ndarray, list[int]]:
        """Unit-length embeddings (zero for texts without known words) and the
        number of known (in-vocabulary) tokens of each text."""
        x = np.zeros((len(texts), len(self.vocabulary)), dtype=np.float32)
        known = []
        for r, t in enumerate(texts):
            k = 0
            for w in tokenize(t):
                i = self.index.get(w)
                if i is not None:
                    x[r, i] += 1
                    k += 1
            known.append(k)
        x = np.where(x > 0, 1 + np.log(np.maximum(x, 1)), 0) * self.idf
        e = x @ self.components.T
        norms = np.linalg.norm(e, axis=1, keepdims=True)
        return e / np.where(norms > 0, norms, 1), known

    def similarity(self, a: str, b: str) -> float:
        e, _ = self.embed([a, b])
        return float(e[0] @ e[1])
