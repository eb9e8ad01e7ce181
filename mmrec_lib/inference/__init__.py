"""Fast start-up inference for the encoders: ONNX Runtime, models exported once into the cache.

Introduced in chapter 10. Importing this package does not import TensorFlow; the served
text path (:class:`ServedTextEncoder`) needs ONNX Runtime and ``tokenizers`` only.
"""

from mmrec_lib.inference.text import (
    EXPORT_VERSION,
    QUANTIZATIONS,
    ServedTextEncoder,
    export_text_encoder,
    wordpiece_tokenizer,
)

__all__ = ["EXPORT_VERSION", "QUANTIZATIONS", "ServedTextEncoder", "export_text_encoder",
           "wordpiece_tokenizer"]
