"""MiniClips narration: the spoken voice-over of a clip, assembled from pre-rendered speech snippets.

About half of the clips are talked over. A clip's script is built from a fixed vocabulary of
phrases (an opener, a bridge, the clip's *format* and a mood phrase); each phrase was rendered
once with espeak-ng by ``tools/make_speech_snippets.py`` and is shipped as a 16 kHz FLAC file
in ``speech/`` with a sha256 manifest. Building a clip concatenates the snippets with seeded
pauses and gain and mixes the voice over the music, which is ducked under it.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

from mmrec_lib.datasets.miniclips._constants import AUDIO_SR
from mmrec_lib.errors import ChecksumError, DataError

__all__ = [
    "FORMAT_NAMES",
    "SNIPPETS",
    "SNIPPET_DIR",
    "MANIFEST_NAME",
    "_make_script",
    "_narration_audio",
    "_mix_narration",
    "_load_snippets",
]

SNIPPET_DIR = Path(__file__).resolve().parent / "speech"
MANIFEST_NAME = "SHA256SUMS"

#: The format a narrator announces: a hidden attribute that moves preference (the "speech"
#: term of the oracle) and that only the voice-over carries, never the title or description.
FORMAT_NAMES = ["tutorial", "behind_the_scenes", "story", "review", "challenge", "reaction"]

# The vocabulary: snippet name -> text. Openers and bridges carry nothing; the format phrase
# carries the hidden format, the mood phrase the sign of the valence.
_OPENERS = {"open_hey": "hey everyone", "open_okay": "okay so", "open_welcome": "welcome back",
            "open_hi": "hi friends", "open_listen": "listen to this"}
_BRIDGES = {"bridge_this": "this one is", "bridge_today": "today it's"}
_FORMATS = {"format_tutorial": "a quick tutorial",
            "format_behind_the_scenes": "a behind the scenes look",
            "format_story": "a personal story", "format_review": "an honest review",
            "format_challenge": "a crazy challenge", "format_reaction": "my first reaction"}
_MOODS = {"mood_happy": "and it made me smile", "mood_sad": "and it's a little sad",
          "mood_neutral": "and it's pretty relaxed"}
SNIPPETS: dict[str, str] = {**_OPENERS, **_BRIDGES, **_FORMATS, **_MOODS}

# Mixing: the voice's RMS while it speaks, relative to the music's RMS before ducking.
_VOICE_LEVEL = 0.7
_LEAD_IN_S = 0.4


def _read_manifest(folder: Path) -> dict[str, str]:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise DataError(f"the speech snippet manifest {path} is missing; reinstall mmrec_lib "
                        "or run tools/make_speech_snippets.py")
    digests = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split()
            digests[name] = digest
    return digests


def _verify_snippets(folder: Path) -> None:
    """Check every snippet file against the manifest; raise ChecksumError naming the file."""
    digests = _read_manifest(folder)
    for name in sorted(SNIPPETS):
        filename = f"{name}.flac"
        path = folder / filename
        if filename not in digests:
            raise DataError(f"speech snippet {filename} is not listed in {MANIFEST_NAME}")
        if not path.is_file():
            raise DataError(f"speech snippet {path} is missing; reinstall mmrec_lib")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != digests[filename]:
            raise ChecksumError(f"speech snippet {path} has sha256 {actual[:12]}..., expected "
                                f"{digests[filename][:12]}... from {MANIFEST_NAME}; the file is "
                                "damaged or was edited (rerun tools/make_speech_snippets.py)")


@functools.lru_cache(maxsize=1)
def _load_snippets() -> dict[str, np.ndarray]:
    """Every snippet as float32 at AUDIO_SR, after verifying the checksums (cached)."""
    import soundfile

    folder = SNIPPET_DIR  # read at call time, so that a test can point it elsewhere
    _verify_snippets(folder)
    audio = {}
    for name in sorted(SNIPPETS):
        samples, rate = soundfile.read(folder / f"{name}.flac", dtype="float32")
        if rate != AUDIO_SR:
            raise DataError(f"speech snippet {name}.flac is at {rate} Hz, expected {AUDIO_SR}")
        audio[name] = samples
    return audio


def _make_script(rng: np.random.Generator, format_index: int, valence: float) -> list[str]:
    """The snippet names of one clip's narration, in order."""
    mood = "mood_happy" if valence > 0.2 else "mood_sad" if valence < -0.2 else "mood_neutral"
    return [str(rng.choice(sorted(_OPENERS))), str(rng.choice(sorted(_BRIDGES))),
            f"format_{FORMAT_NAMES[format_index]}", mood]


def _script_text(names: list[str]) -> str:
    """The words of a script: ``"hey everyone, this one is a quick tutorial, and ..."``."""
    opener, *rest = (SNIPPETS[name] for name in names)
    return f"{opener[0].upper()}{opener[1:]}, {' '.join(rest[:2])}, {' '.join(rest[2:])}."


def _narration_plan(rng: np.random.Generator, names: list[str]) -> tuple[list[float], float]:
    """Seeded pauses after each snippet (s) and the voice gain (dB) of one narration."""
    pauses = [float(rng.uniform(0.1, 0.25)) if k in (0, 2) else float(rng.uniform(0.03, 0.08))
              for k in range(len(names))]
    return pauses, float(rng.uniform(-2.0, 2.0))


def _narration_audio(names: list[str], pauses: list[float], gain_db: float,
                     music_rms: float) -> np.ndarray:
    """The voice track of a narration: snippets and pauses, float32 at AUDIO_SR.

    The voice is levelled to the music's RMS (plus ``gain_db``), as a mixer would: a loud,
    energetic clip gets a loud voice-over, so loudness still tells the clip's energy.
    """
    snippets = _load_snippets()
    parts = []
    for name, pause in zip(names, pauses, strict=True):
        parts.append(snippets[name])
        parts.append(np.zeros(int(round(pause * AUDIO_SR)), dtype=np.float32))
    voice = np.concatenate(parts[:-1]).astype(np.float64)
    speaking = np.abs(voice) > 0.02 * np.abs(voice).max()
    rms = np.sqrt(np.mean(voice[speaking] ** 2))
    target = _VOICE_LEVEL * music_rms * 10 ** (gain_db / 20)
    return (voice * target / max(rms, 1e-9)).astype(np.float32)


def _narration_seconds(names: list[str], pauses: list[float]) -> float:
    """Length of the narration plus its lead-in, in seconds."""
    snippets = _load_snippets()
    samples = sum(len(snippets[name]) for name in names)
    return _LEAD_IN_S + samples / AUDIO_SR + sum(pauses[:-1])


def _mix_narration(music: np.ndarray, voice: np.ndarray, duck_db: float) -> np.ndarray:
    """Music ducked by ``duck_db`` (negative) while the voice speaks, with the voice on top."""
    n = len(music)
    start = int(round(_LEAD_IN_S * AUDIO_SR))
    if start + len(voice) > n:
        raise DataError(f"narration of {len(voice) / AUDIO_SR:.2f} s does not fit a clip of "
                        f"{n / AUDIO_SR:.2f} s")
    track = np.zeros(n)
    track[start:start + len(voice)] = voice
    # The ducking envelope ramps over 150 ms around the narration, as a radio mixer would.
    speaking = np.zeros(n)
    speaking[start:start + len(voice)] = 1.0
    ramp = int(0.15 * AUDIO_SR)
    # A centred moving average (running sums: linear in the clip length).
    padded = np.concatenate([np.zeros(ramp // 2 + 1), speaking, np.zeros(ramp)])
    sums = np.cumsum(padded)
    smoothed = (sums[ramp:ramp + n] - sums[:n]) / ramp
    speaking = np.clip(smoothed * 2, 0, 1)
    gain = 1.0 - speaking * (1.0 - 10 ** (duck_db / 20))
    mixed = music * gain + track
    peak = np.abs(mixed).max()
    if peak > 0.98:
        mixed *= 0.98 / peak
    return mixed.astype(np.float32)
