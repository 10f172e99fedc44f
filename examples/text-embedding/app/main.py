"""Text embedding API (FastAPI on Uvicorn).

Run:  MODEL_PATH=model/lsa.npz python3 -m uvicorn main:app --host 0.0.0.0 --port 8080

Environment: MODEL_PATH (an .npz written by train.py), MAX_TEXT_CHARS,
MAX_FILE_BYTES, MAX_LINES, MAX_CANDIDATES, SWAGGER_UI_DIR (local Swagger UI
assets; set by the aim-base/python image).
"""

from __future__ import annotations

import os
from typing import List

from fastapi import FastAPI, File, HTTPException, UploadFile
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, validator

from lsa import LSAModel

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_PATH = os.environ.get("MODEL_PATH", os.path.join(HERE, "model", "lsa.npz"))
MAX_TEXT_CHARS = int(os.environ.get("MAX_TEXT_CHARS", "10000"))
MAX_FILE_BYTES = int(os.environ.get("MAX_FILE_BYTES", str(1024 * 1024)))
MAX_LINES = int(os.environ.get("MAX_LINES", "1000"))
MAX_CANDIDATES = int(os.environ.get("MAX_CANDIDATES", "1000"))
SWAGGER_UI_DIR = os.environ.get("SWAGGER_UI_DIR", "/usr/share/swagger-ui")

model = LSAModel.load(MODEL_PATH)

DESCRIPTION = f"""
Embeddings of engineering requirement texts, and similarity between them.

**Model: {model.name}** (vocabulary of {model.meta.get('vocabulary', len(model.vocabulary))} terms).
Latent semantic analysis: a TF-IDF vector of the text's words is projected on the
top singular vectors of the training corpus and normalised, so the dot product of
two embeddings is their cosine similarity, in [-1, 1].

This is *not* the Universal Sentence Encoder of the paper (no pretrained weights
can be downloaded here): it is a small model trained when the image is built, on
sentences of the form "The system shall ...". It only knows the words of that
corpus (`known_terms` tells how many words of a text it knew) and measures
shared and co-occurring vocabulary, not deep meaning.

Limits: texts up to {MAX_TEXT_CHARS} characters; files up to {MAX_FILE_BYTES} bytes
and {MAX_LINES} non-empty lines (UTF-8); up to {MAX_CANDIDATES} candidates.
"""

app = FastAPI(
    title="Text Embedding",
    version="1.0.0",
    description=DESCRIPTION,
    docs_url=None,
    redoc_url=None,
    openapi_url="/openapi.json",
)

HAVE_SWAGGER = os.path.isfile(os.path.join(SWAGGER_UI_DIR, "swagger-ui-bundle.js"))
if HAVE_SWAGGER:
    app.mount("/static/swagger-ui", StaticFiles(directory=SWAGGER_UI_DIR), name="swagger-ui")


def _check_text(v: str) -> str:
    if not v or not v.strip():
        raise ValueError("must not be empty")
    if len(v) > MAX_TEXT_CHARS:
        raise ValueError(f"longer than {MAX_TEXT_CHARS} characters")
    return v


class TextIn(BaseModel):
    text: str = Field(..., example="The braking system shall stop the vehicle within 40 metres.")
    _v = validator("text", allow_reuse=True)(_check_text)


class PairIn(BaseModel):
    a: str = Field(..., example="The infusion pump shall alarm when the line is blocked.")
    b: str = Field(..., example="An occlusion shall trigger an alarm on the infusion pump.")
    _v = validator("a", "b", allow_reuse=True)(_check_text)


class RankIn(BaseModel):
    query: str = Field(..., example="The doors shall not open while the train is moving.")
    candidates: List[str] = Field(
        ...,
        example=[
            "Train doors shall stay locked when the train is in motion.",
            "The application shall hash user passwords.",
            "The crane shall not lift more than 10 tonnes.",
        ],
    )
    k: int = Field(5, ge=1, le=100, description="how many of the most similar candidates to return")
    _vq = validator("query", allow_reuse=True)(_check_text)

    @validator("candidates")
    def _vc(cls, v):
        if not v:
            raise ValueError("must not be empty")
        if len(v) > MAX_CANDIDATES:
            raise ValueError(f"more than {MAX_CANDIDATES} candidates")
        for i, c in enumerate(v):
            try:
                _check_text(c)
            except ValueError as e:
                raise ValueError(f"candidate {i}: {e}")
        return v


class Embedding(BaseModel):
    model: str
    dimensions: int
    known_terms: int
    embedding: List[float]


class LineEmbedding(BaseModel):
    line: int = Field(..., description="1-based line number in the file")
    text: str
    known_terms: int
    embedding: List[float]


class FileEmbeddings(BaseModel):
    model: str
    dimensions: int
    count: int
    embeddings: List[LineEmbedding]


class Similarity(BaseModel):
    model: str
    similarity: float


class Ranked(BaseModel):
    index: int
    text: str
    similarity: float


class RankOut(BaseModel):
    model: str
    results: List[Ranked]


def _round(v) -> List[float]:
    return [round(float(x), 6) for x in v]


@app.get("/", response_class=HTMLResponse, include_in_schema=False)
@app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
def docs():
    if HAVE_SWAGGER:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Text Embedding API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )
    # Without local Swagger UI assets (e.g. on a host without the base
    # image): a plain page that documents the endpoints; no CDN.
    rows = "".join(
        f"<li><code>{m} {p}</code> {d}</li>"
        for m, p, d in [
            ("POST", "/embed", 'JSON {"text": ...} &rarr; embedding'),
            ("POST", "/embed/file", "multipart field <code>file</code>: one embedding per non-empty line"),
            ("POST", "/similarity", 'JSON {"a": ..., "b": ...} &rarr; cosine similarity'),
            ("POST", "/most-similar", 'JSON {"query": ..., "candidates": [...], "k": 5}'),
            ("GET", "/model", "model information"),
        ]
    )
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Text Embedding API</title>"
        f"<h1>Text Embedding API</h1><p>Model: {model.name}.</p><ul>{rows}</ul>"
        '<p>OpenAPI: <a href="/openapi.json">/openapi.json</a></p></html>'
    )


@app.get("/healthz", include_in_schema=False)
def healthz():
    return {"status": "ok"}


@app.get("/model", summary="The model and its training")
def model_info():
    return {"name": model.name, "dimensions": model.dims, **model.meta}


@app.post("/embed", response_model=Embedding, summary="Embed one text")
def embed(body: TextIn):
    e, known = model.embed([body.text])
    return Embedding(model=model.name, dimensions=model.dims, known_terms=known[0], embedding=_round(e[0]))


@app.post(
    "/embed/file",
    response_model=FileEmbeddings,
    summary="Embed each non-empty line of an uploaded UTF-8 text file",
    responses={400: {"description": "Empty, not UTF-8, too many lines or a line too long"}, 413: {"description": "File too large"}},
)
async def embed_file(file: UploadFile = File(..., description="UTF-8 text, one requirement per line")):
    data = await file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise HTTPException(413, f"file larger than {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise HTTPException(400, f"file is not UTF-8 text (byte {e.start})")
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not lines:
        raise HTTPException(400, "file has no non-empty lines")
    if len(lines) > MAX_LINES:
        raise HTTPException(400, f"file has {len(lines)} non-empty lines, more than {MAX_LINES}")
    for n, ln in lines:
        if len(ln) > MAX_TEXT_CHARS:
            raise HTTPException(400, f"line {n} is longer than {MAX_TEXT_CHARS} characters")
    e, known = model.embed([ln for _, ln in lines])
    return FileEmbeddings(
        model=model.name,
        dimensions=model.dims,
        count=len(lines),
        embeddings=[
            LineEmbedding(line=n, text=ln, known_terms=k, embedding=_round(v))
            for (n, ln), k, v in zip(lines, known, e)
        ],
    )


@app.post("/similarity", response_model=Similarity, summary="Cosine similarity of two texts")
def similarity(body: PairIn):
    return Similarity(model=model.name, similarity=round(model.similarity(body.a, body.b), 6))


@app.post("/most-similar", response_model=RankOut, summary="The k candidates most similar to a query")
def most_similar(body: RankIn):
    e, _ = model.embed([body.query] + body.candidates)
    sims = e[1:] @ e[0]
    order = sorted(range(len(body.candidates)), key=lambda i: -float(sims[i]))[: body.k]
    return RankOut(
        model=model.name,
        results=[Ranked(index=i, text=body.candidates[i], similarity=round(float(sims[i]), 6)) for i in order],
    )
