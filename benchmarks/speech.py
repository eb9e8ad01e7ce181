"""Benchmark mmrec_lib.audio.SpeechRecognizer: word error rate and real-time factor of Whisper and pocketsphinx.

Usage: python benchmarks/speech.py [--size small] [--clips 40] [--levels -6 0 6] [--quick]

Clips with speech: MiniClips' narrated clips (``has_speech`` in ``items``, reference
text ``truth.narration``), mixed by the generator (music ducked 10-14 dB under the
voice). Speech-free clips: the clips without narration (music only) plus one silent
clip. Whisper transcribes *every* clip of the set through
:meth:`SpeechRecognizer.transcribe_dataset`, so its transcripts land in the feature
cache that ``features.item_features(..., modalities=[..., "speech"])`` and the
ablation read; its ``seconds`` are those of the first (uncached) run: pass
``--recompute`` to time it again. pocketsphinx (about 1.5x real time on speech)
transcribes the first ``--clips`` narrated and ``--clips`` speech-free clips.
WER is the corpus rate over the speech clips; RTF is compute seconds per second of
audio over all the clips a recogniser saw (detection included, model loading not:
``load_s``); ``speech_free_empty_rate`` is the share of speech-free clips for which
the recogniser returns "".

Harder levels (``levels``): the first ``--clips`` narrations are rebuilt from the
generator's own voice tracks (same snippets, pauses and gain) and laid over the music
of a speech-free clip, *not ducked*, with the music's RMS at each of ``--levels`` dB
relative to the voice (the generator's setting is about -12 dB to -14 dB after
ducking; 0 dB: music as loud as the voice). Whisper only.

``--quick`` uses the tiny set and at most 6 clips. Prints one JSON object as the
last line of stdout.
"""

from __future__ import annotations

import os
import platform

import _common as common
import numpy as np


def mix_at(voice: np.ndarray, music: np.ndarray, music_db: float) -> np.ndarray:
    """``voice`` over ``music`` (looped to fit), the music ``music_db`` dB from the voice in RMS."""
    lead = len(voice) // 8
    bed = np.resize(music, voice.size + 2 * lead).astype(np.float64)
    speaking = np.abs(voice) > 0.02 * np.abs(voice).max()
    gain = np.sqrt(np.mean(voice[speaking].astype(np.float64) ** 2) / np.mean(bed ** 2))
    bed *= gain * 10 ** (music_db / 20)
    bed[lead:lead + voice.size] += voice
    return (bed * min(1.0, 0.98 / np.abs(bed).max())).astype(np.float32)


def voice_track(dataset, index: int) -> np.ndarray:
    """The generator's voice track of narrated clip ``index`` (snippets, pauses, gain), unmixed."""
    from mmrec_lib.datasets.miniclips import _speech

    truth = dataset.truth
    names = str(truth.narration_snippets[index]).split("|")
    return _speech._narration_audio(names, list(truth.narration_pauses[index][:len(names)]),
                                    float(truth.voice_gain_db[index]), music_rms=0.1)


def main() -> None:
    parser = common.make_parser(__doc__, quick="tiny set, at most 6 clips",
                                clips=(40, "pocketsphinx / harder-level clips of each kind"))
    parser.add_argument("--size", default="small", choices=["tiny", "small", "default"])
    parser.add_argument("--levels", nargs="*", type=float, default=[-6.0, 0.0, 6.0])
    parser.add_argument("--recompute", action="store_true",
                        help="transcribe with Whisper again instead of reading the cache")
    args = parser.parse_args()

    from mmrec_lib import audio, metrics
    from mmrec_lib.datasets import miniclips

    size = "tiny" if args.quick else args.size
    limit = min(args.clips, 6) if args.quick else args.clips
    dataset = miniclips.load_miniclips(size=size)
    items = dataset.items
    ids = items["item_id"].astype(str).to_numpy()
    spoken = items["has_speech"].to_numpy(bool)
    scripts = np.asarray(dataset.truth.narration, dtype=str)
    result = {"dataset": f"miniclips-{size}", "speech_clips": int(spoken.sum()),
              "speech_free_clips": int((~spoken).sum()) + 1}

    def summary(texts, seconds, durations, speech_mask, silence_text, load_s):
        empty = np.append(np.asarray(texts)[~speech_mask] == "", silence_text == "")
        return {"wer": round(metrics.corpus_word_error_rate(
                    list(scripts_used[speech_mask]), list(np.asarray(texts)[speech_mask])), 4),
                "rtf": round(float(np.sum(seconds) / np.sum(durations)), 4),
                "rtf_speech_clips": round(float(np.sum(np.asarray(seconds)[speech_mask])
                                                / np.sum(np.asarray(durations)[speech_mask])), 4),
                "speech_clips": int(speech_mask.sum()),
                "speech_free_clips": int(empty.size),
                "speech_free_empty_rate": round(float(empty.mean()), 4),
                "load_s": round(load_s, 2)}

    silence = np.zeros(5 * audio.SPEECH_SR, np.float32)
    for backend in ("whisper", "pocketsphinx"):
        recognizer = audio.SpeechRecognizer(backend=backend)
        with common.Stopwatch() as load_clock:
            recognizer.load()
        if backend == "whisper":
            chosen = np.arange(len(ids))
        else:
            chosen = np.sort(np.concatenate([np.flatnonzero(spoken)[:limit],
                                             np.flatnonzero(~spoken)[:limit]]))
        table = recognizer.transcribe_dataset(dataset, ids[chosen], recompute=args.recompute
                                              and backend == "whisper")
        scripts_used = scripts[chosen]
        quiet = recognizer.transcribe(silence, audio.SPEECH_SR).text
        result[backend] = summary(table["text"].to_numpy(str), table["seconds"].to_numpy(),
                                  table["duration"].to_numpy(), spoken[chosen], quiet,
                                  load_clock.seconds)
        result[backend]["examples"] = [(i, table.loc[i, "text"]) for i in ids[chosen][
            spoken[chosen]][:3]]
        print(f"{backend}: WER {result[backend]['wer']:.3f} on {result[backend]['speech_clips']} "
              f"narrated clips, RTF {result[backend]['rtf']:.3f}, speech-free -> '' "
              f"{result[backend]['speech_free_empty_rate']:.1%}", flush=True)

    if args.levels:
        whisper = audio.SpeechRecognizer(backend="whisper")
        narrated = np.flatnonzero(spoken)[:limit]
        beds = np.flatnonzero(~spoken)[:limit]
        voices = [voice_track(dataset, k) for k in narrated]
        music = [audio.load_audio(dataset.clip_path(ids[k]), sr=audio.SPEECH_SR) for k in beds]
        levels = {}
        for level in args.levels:
            texts = [whisper.transcribe(mix_at(voice, bed, level), audio.SPEECH_SR).text
                     for voice, bed in zip(voices, music)]
            levels[f"{level:+.0f}dB"] = round(metrics.corpus_word_error_rate(
                list(scripts[narrated]), texts), 4)
            print(f"whisper, music at {level:+.0f} dB (not ducked): WER "
                  f"{levels[f'{level:+.0f}dB']:.3f}", flush=True)
        result["whisper_wer_by_music_level"] = levels
    result["speech_free_empty_rate"] = min(result["whisper"]["speech_free_empty_rate"],
                                           result["pocketsphinx"]["speech_free_empty_rate"])
    result.update(peak_rss_mb=round(common.peak_rss_mb(), 1), cpu_count=os.cpu_count(),
                  load_avg=round(os.getloadavg()[0], 2), python=platform.python_version())
    common.emit(result)


if __name__ == "__main__":
    main()
