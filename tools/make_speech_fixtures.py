"""Generates tests/fixtures/speech/: short English sentences spoken by espeak-ng, 16 kHz mono FLAC.

Run ``python tools/make_speech_fixtures.py`` (needs the ``espeak-ng`` binary, e.g.
``apt-get install espeak-ng``). The files are committed, so the tests never need
espeak-ng; ``transcripts.json`` holds the reference text of each file. The
sentences were chosen so that Whisper tiny.en transcribes the synthetic voice
word for word (espeak-ng's robotic voice trips it on words like "bake" or "by").
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mmrec_lib.audio import resample  # noqa: E402

OUT_DIR = REPO / "tests" / "fixtures" / "speech"
SR = 16000
VOICE = "en-us"
WORDS_PER_MINUTE = 150
SENTENCES = {
    "subscribe": "Please subscribe for more music every week.",
    "mountains": "Welcome back to my channel, today we are going to the mountains.",
    "guitar": "Let me show you how to play the guitar.",
}


def render(sentence: str) -> np.ndarray:
    """One sentence as a 16 kHz mono float32 waveform."""
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", VOICE, "-s", str(WORDS_PER_MINUTE), "-w", str(wav),
                        sentence], check=True)
        samples, file_sr = soundfile.read(str(wav), dtype="float32")
    return resample(samples, orig_sr=int(file_sr), target_sr=SR)


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    for name, sentence in SENTENCES.items():
        soundfile.write(str(OUT_DIR / f"{name}.flac"), render(sentence), SR, subtype="PCM_16")
    manifest = {"generator": "tools/make_speech_fixtures.py", "espeak_ng": version,
                "voice": VOICE, "words_per_minute": WORDS_PER_MINUTE, "sr": SR,
                "transcripts": {f"{name}.flac": text for name, text in SENTENCES.items()}}
    (OUT_DIR / "transcripts.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {len(SENTENCES)} clips to {OUT_DIR}")


if __name__ == "__main__":
    main()
