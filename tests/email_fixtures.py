"""The hand-written .eml corpus, shared by parser tests, intake tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

CORPUS_DIR = Path(__file__).parent / "email_corpus"


def corpus_files() -> list[Path]:
    """Every corpus message, sorted by name (the "corpus mix")."""
    return sorted(CORPUS_DIR.glob("*.eml"))


def corpus_message(name: str) -> bytes:
    """The raw bytes of one corpus file, by name with or without `.eml`."""
    stem = name.removesuffix(".eml")
    return (CORPUS_DIR / f"{stem}.eml").read_bytes()
