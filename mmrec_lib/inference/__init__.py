"""Fast start-up inference for the encoders: ONNX Runtime, models exported once into the cache.

Introduced in chapter 10. Importing this package does not import TensorFlow; the served
text path (:class:`ServedTextEncoder`) needs ONNX Runtime and ``tokenizers`` only, the
served audio path (:class:`ServedMusicnnEncoder`, imported on first use so that the text
path does not pay for the audio package) ONNX Runtime and the log-mel front end.
"""

from mmrec_lib.inference.text import (
    EXPORT_VERSION,
    QUANTIZATIONS,
    ServedTextEncoder,
    export_text_encoder,
    wordpiece_tokenizer,
)

__all__ = ["EXPORT_VERSION", "MUSICNN_EXPORT_VERSION", "QUANTIZATIONS", "ServedMusicnnEncoder",
           "ServedTextEncoder", "export_musicnn", "export_text_encoder", "wordpiece_tokenizer"]

_AUDIO = ("MUSICNN_EXPORT_VERSION", "ServedMusicnnEncoder", "export_musicnn")


def __getattr__(name: str):
    if name in _AUDIO:
        from mmrec_lib.inference import audio

        return getattr(audio, name)
    raise AttributeError(f"module 'mmrec_lib.inference' has no attribute {name!r}")
