"""Benchmark mmrec_lib.audio.SpeechRecognizer: word error rate and real-time factor of Whisper and pocketsphinx.

Usage: python benchmarks/speech.py [--size tiny] [--clips 40] [--quick]

Clips with speech: MiniClips' narrated clips (``has_speech`` in ``items``, reference
text ``truth.narration``) when the generator makes them; otherwise the espeak-ng
sentences of tests/fixtures/speech, each alone and with a MiniClips music clip 15 dB
below it. Speech-free clips: MiniClips clips without narration (music only) plus
one silent clip. WER is the corpus rate over the speech clips; RTF is compute
seconds per second of audio over all clips (detection included, model loading
not: reported as ``load_s``); ``speech_free_empty_rate`` is the share of
speech-free clips for which a recogniser returns "" (top level: both do).
``--quick`` uses at most 6 clips of each kind. Prints one JSON object as the last
line of stdout.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import _common as common
import numpy as np

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "speech"
MUSIC_DB = -15.0


def mix_under(voice: np.ndarray, music: np.ndarray, *, sr: int, lead_seconds: float = 1.0):
    """``voice`` over ``music`` (looped to fit) ``MUSIC_DB`` lower in RMS, music before and after."""
    lead = int(lead_seconds * sr)
    bed = np.resize(music, voice.size + 2 * lead).astype(np.float64)
    gain = np.sqrt(np.mean(voice.astype(np.float64) ** 2) / np.mean(bed ** 2))
    bed *= gain * 10 ** (MUSIC_DB / 20)
    bed[lead:lead + voice.size] += voice
    return bed.astype(np.float32)


def clip_sets(dataset, limit: int, sr: int):
    """(speech clips as (name, waveform, reference), speech-free clips as (name, waveform))."""
    import soundfile

    from mmrec_lib import audio

    items = dataset.items
    if "has_speech" in items.columns:
        narrated = np.flatnonzero(items["has_speech"].to_numpy(bool))[:limit]
        silent = np.flatnonzero(~items["has_speech"].to_numpy(bool))[:limit]
        speech = [(items["item_id"].iloc[k], audio.load_audio(
            dataset.clip_path(items["item_id"].iloc[k]), sr=sr), str(dataset.truth.narration[k]))
            for k in narrated]
        source = "miniclips-narration"
    else:
        silent = np.arange(min(limit, len(items)))
        transcripts = json.loads((FIXTURES / "transcripts.json").read_text())["transcripts"]
        speech = []
        for k, (name, text) in enumerate(sorted(transcripts.items())):
            voice, file_sr = soundfile.read(str(FIXTURES / name), dtype="float32")
            voice = audio.resample(voice, orig_sr=int(file_sr), target_sr=sr)
            music = audio.load_audio(dataset.clip_path(items["item_id"].iloc[k]), sr=sr)
            speech += [(name, voice, text), (f"{name}+music", mix_under(voice, music, sr=sr), text)]
        speech = speech[:limit]
        source = "fixtures+miniclips-music"
    speech_free = [(items["item_id"].iloc[k],
                    audio.load_audio(dataset.clip_path(items["item_id"].iloc[k]), sr=sr))
                   for k in silent]
    speech_free.append(("silence", np.zeros(5 * sr, np.float32)))
    return speech, speech_free, source


def main() -> None:
    parser = common.make_parser(__doc__, quick="at most 6 clips of each kind",
                                clips=(40, "clips of each kind (speech, speech-free)"))
    parser.add_argument("--size", default="tiny", choices=["tiny", "small", "default"])
    args = parser.parse_args()

    from mmrec_lib import audio, metrics
    from mmrec_lib.datasets import miniclips

    limit = min(args.clips, 6) if args.quick else args.clips
    dataset = miniclips.load_miniclips(size=args.size)
    speech, speech_free, source = clip_sets(dataset, limit, audio.SPEECH_SR)
    result = {"dataset": f"miniclips-{args.size}", "source": source,
              "speech_clips": len(speech), "speech_free_clips": len(speech_free)}
    empty = {}
    for backend in ("whisper", "pocketsphinx"):
        recognizer = audio.SpeechRecognizer(backend=backend)
        with common.Stopwatch() as load_clock:
            recognizer.load()
        spoken = recognizer.transcribe_batch([wave for _, wave, _ in speech], audio.SPEECH_SR)
        quiet = recognizer.transcribe_batch([wave for _, wave in speech_free], audio.SPEECH_SR)
        empty[backend] = np.array([t.text == "" for t in quiet])
        everything = spoken + quiet
        result[backend] = {
            "wer": round(metrics.corpus_word_error_rate([ref for _, _, ref in speech],
                                                        [t.text for t in spoken]), 4),
            "rtf": round(sum(t.seconds for t in everything)
                         / sum(t.duration for t in everything), 4),
            "rtf_speech_clips": round(sum(t.seconds for t in spoken)
                                      / sum(t.duration for t in spoken), 4),
            "speech_free_empty_rate": round(float(empty[backend].mean()), 4),
            "load_s": round(load_clock.seconds, 2),
            "examples": [(name, t.text) for (name, _, _), t in zip(speech[:3], spoken[:3])],
        }
    result["speech_free_empty_rate"] = round(float((empty["whisper"]
                                                    & empty["pocketsphinx"]).mean()), 4)
    result.update(peak_rss_mb=round(common.peak_rss_mb(), 1), cpu_count=os.cpu_count(),
                  python=platform.python_version())
    for backend in ("whisper", "pocketsphinx"):
        print(f"{backend}: WER {result[backend]['wer']:.3f}, RTF {result[backend]['rtf']:.3f}")
    common.emit(result)


if __name__ == "__main__":
    main()
