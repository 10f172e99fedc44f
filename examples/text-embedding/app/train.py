"""Fit the LSA model on the requirement corpus (run in the Docker build).

    python3 train.py --corpus corpus/requirements.txt --dims 100 --out model/lsa.npz
"""

import argparse
import os
import sys
import time

from lsa import LSAModel


def read_corpus(path):
    with open(path, encoding="utf-8") as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default="corpus/requirements.txt")
    p.add_argument("--dims", type=int, default=100)
    p.add_argument("--out", default="model/lsa.npz")
    a = p.parse_args(argv)
    t = time.time()
    sentences = read_corpus(a.corpus)
    if len(sentences) < 10:
        sys.exit(f"{a.corpus}: only {len(sentences)} sentences")
    m = LSAModel.fit(sentences, dims=a.dims, source=os.path.basename(a.corpus))
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    m.save(a.out)
    print(f"{m.name}; vocabulary {m.meta['vocabulary']} terms; "
          f"explained variance {m.meta['explained_variance']:.2f}; {time.time() - t:.2f}s -> {a.out}")


if __name__ == "__main__":
    main()
