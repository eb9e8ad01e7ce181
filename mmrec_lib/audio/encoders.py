"""Audio encoders trained from scratch in Keras: a small 2-D CNN and a small Transformer."""

from __future__ import annotations

import functools

from mmrec_lib._validation import check_int, check_number
from mmrec_lib.errors import ParameterError

__all__ = [
    "build_cnn_encoder",
    "build_transformer_encoder",
    "build_regression_head",
]


def build_cnn_encoder(*, n_frames: int, n_mels: int = 96, embedding_dim: int = 64,
                      filters: tuple[int, ...] = (16, 32, 64), input_pool: int = 2,
                      dropout: float = 0.1, name: str = "audio_cnn"):
    """A small 2-D CNN over a log-mel spectrogram, as an audio branch.

    Introduced in chapter 03; used as the audio branch of the chapter 08 model.
    The spectrogram is treated as a one-channel image (frames x mel bands):
    batch norm of the input, average pooling by ``input_pool`` on both axes
    (4 x fewer pixels for the default 2: the cost of a CPU-sized model), then
    per entry of ``filters`` a 3 x 3 convolution, batch norm, ReLU and 2 x 2
    max pooling; global average pooling, dropout and a dense projection to
    ``embedding_dim``. Batch norms use momentum 0.9 so that their inference
    statistics keep up with a short training run.

    Parameters
    ----------
    n_frames, n_mels : int
        Input shape (per clip).
    embedding_dim : int
    filters : tuple of int
        Channels per convolution block (each halves both axes).
    input_pool : int
        Average-pooling factor applied to the input (1: none).
    dropout : float
    name : str

    Returns
    -------
    keras.Model
        Input (batch, n_frames, n_mels) -> output (batch, embedding_dim).
    """
    n_frames = check_int("n_frames", n_frames)
    n_mels = check_int("n_mels", n_mels)
    embedding_dim = check_int("embedding_dim", embedding_dim)
    if isinstance(filters, str) or not isinstance(filters, tuple | list) or not filters:
        raise ParameterError(f"filters={filters!r} must be a non-empty tuple of positive ints")
    filters = tuple(check_int(f"filters[{index}]", value) for index, value in enumerate(filters))
    input_pool = check_int("input_pool", input_pool)
    if min(n_frames, n_mels) < input_pool * 2 ** len(filters):
        raise ParameterError(
            f"n_frames={n_frames} and n_mels={n_mels} must be >= "
            f"{input_pool * 2 ** len(filters)} for input_pool={input_pool} and "
            f"{len(filters)} pooling blocks")
    dropout = check_number("dropout", dropout, low=0.0, high=1.0, high_inclusive=False)
    from mmrec_lib._env import import_tensorflow

    tf = import_tensorflow()
    layers = tf.keras.layers
    inputs = layers.Input(shape=(n_frames, n_mels), name="log_mel")
    x = layers.Reshape((n_frames, n_mels, 1))(inputs)
    x = layers.BatchNormalization(momentum=0.9)(x)
    if input_pool > 1:
        x = layers.AveragePooling2D(input_pool)(x)
    for channels in filters:
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(embedding_dim, activation="relu", name="embedding")(x)
    return tf.keras.Model(inputs, outputs, name=name)


@functools.lru_cache(maxsize=1)
def _positional_embedding_class():
    from mmrec_lib._env import import_tensorflow

    tf = import_tensorflow()

    class PositionalEmbedding(tf.keras.layers.Layer):
        """Add a learnt embedding of the position (frame index) to each frame vector."""

        def __init__(self, max_length: int, **kwargs):
            super().__init__(**kwargs)
            self.max_length = max_length

        def build(self, input_shape):
            self.positions = self.add_weight(
                name="positions", shape=(self.max_length, int(input_shape[-1])),
                initializer=tf.keras.initializers.RandomNormal(stddev=0.02), trainable=True)
            super().build(input_shape)

        def call(self, inputs):
            length = tf.shape(inputs)[1]
            return inputs + self.positions[tf.newaxis, :length]

        def get_config(self):
            return {**super().get_config(), "max_length": self.max_length}

    return PositionalEmbedding


def build_transformer_encoder(*, n_frames: int, n_mels: int = 96, embedding_dim: int = 64,
                              model_dim: int = 64, num_heads: int = 4, num_layers: int = 2,
                              feedforward_dim: int = 128, frames_per_token: int = 4,
                              dropout: float = 0.1, name: str = "audio_transformer"):
    """A small Transformer encoder over frames of a log-mel spectrogram, as an audio branch.

    Introduced in chapter 03; used as the audio branch of the chapter 08 model.
    Groups of ``frames_per_token`` consecutive frames are averaged into one
    token (fewer tokens: attention costs grow with their square), projected to
    ``model_dim``, given a learnt position embedding, then passed through
    ``num_layers`` pre-norm blocks (multi-head self-attention and a ReLU
    feed-forward layer, each with a residual connection); the tokens are
    averaged and projected to ``embedding_dim``.

    Parameters
    ----------
    n_frames, n_mels : int
        Input shape (per clip); ``n_frames`` must be a multiple of ``frames_per_token``.
    embedding_dim, model_dim, num_heads, num_layers, feedforward_dim, frames_per_token : int
    dropout : float
    name : str

    Returns
    -------
    keras.Model
        Input (batch, n_frames, n_mels) -> output (batch, embedding_dim).
    """
    n_frames, n_mels = check_int("n_frames", n_frames), check_int("n_mels", n_mels)
    embedding_dim = check_int("embedding_dim", embedding_dim)
    model_dim, num_heads = check_int("model_dim", model_dim), check_int("num_heads", num_heads)
    num_layers = check_int("num_layers", num_layers)
    feedforward_dim = check_int("feedforward_dim", feedforward_dim)
    frames_per_token = check_int("frames_per_token", frames_per_token)
    if n_frames % frames_per_token:
        raise ParameterError(
            f"n_frames={n_frames} must be a multiple of frames_per_token={frames_per_token}")
    if model_dim % num_heads:
        raise ParameterError(f"model_dim={model_dim} must be a multiple of num_heads={num_heads}")
    dropout = check_number("dropout", dropout, low=0.0, high=1.0, high_inclusive=False)
    from mmrec_lib._env import import_tensorflow

    tf = import_tensorflow()
    layers = tf.keras.layers
    n_tokens = n_frames // frames_per_token
    inputs = layers.Input(shape=(n_frames, n_mels), name="log_mel")
    x = layers.AveragePooling1D(frames_per_token)(inputs)
    x = layers.LayerNormalization(epsilon=1e-6)(x)
    x = layers.Dense(model_dim)(x)
    x = _positional_embedding_class()(n_tokens, name="positions")(x)
    for _ in range(num_layers):
        attended = layers.LayerNormalization(epsilon=1e-6)(x)
        attended = layers.MultiHeadAttention(num_heads=num_heads,
                                             key_dim=model_dim // num_heads,
                                             dropout=dropout)(attended, attended)
        x = layers.Add()([x, layers.Dropout(dropout)(attended)])
        fed = layers.LayerNormalization(epsilon=1e-6)(x)
        fed = layers.Dense(feedforward_dim, activation="relu")(fed)
        fed = layers.Dense(model_dim)(fed)
        x = layers.Add()([x, layers.Dropout(dropout)(fed)])
    x = layers.LayerNormalization(epsilon=1e-6)(x)
    x = layers.GlobalAveragePooling1D()(x)
    outputs = layers.Dense(embedding_dim, activation="relu", name="embedding")(x)
    return tf.keras.Model(inputs, outputs, name=name)


def build_regression_head(encoder, *, n_outputs: int = 1, learning_rate: float = 1e-3):
    """Put a linear output layer on an encoder and compile it for regression (MSE).

    Introduced in chapter 03, to train an encoder on targets such as energy
    and timbre; the encoder's weights are shared, so after ``fit`` the encoder
    alone gives the learnt embedding.

    Returns
    -------
    keras.Model
        Input as the encoder's -> output (batch, n_outputs), compiled with Adam.
    """
    n_outputs = check_int("n_outputs", n_outputs)
    learning_rate = check_number("learning_rate", learning_rate, low=0.0, low_inclusive=False)
    from mmrec_lib._env import import_tensorflow

    tf = import_tensorflow()
    outputs = tf.keras.layers.Dense(n_outputs, name="prediction")(encoder.output)
    model = tf.keras.Model(encoder.input, outputs, name=f"{encoder.name}_regressor")
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate), loss="mse")
    return model
