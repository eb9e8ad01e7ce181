"""``python -m mmrec_lib.serving [--model-dir DIR] [--port 8000]``: the demo server on 127.0.0.1.

Loads the model saved in ``--model-dir`` (training a small MiniClips one there first if the
folder is empty) and serves it with uvicorn on localhost only.
"""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmrec_lib.serving", description=__doc__)
    parser.add_argument("--model-dir", default=None,
                        help="a saved MultimodalRecommender, trained there if absent (default: "
                             "$MMREC_DATA_DIR/serving/miniclips-<size>-model)")
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1")
    parser.add_argument("--size", default="tiny", choices=["tiny", "small", "default"],
                        help="the MiniClips set served (and trained on)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--upload-dir", default=None)
    parser.add_argument("--max-upload-mb", type=float, default=20.0)
    parser.add_argument("--queue-size", type=int, default=4)
    parser.add_argument("--encode-in", default="process", choices=["process", "thread"],
                        help="encode uploads in a separate process (default) or a thread")
    parser.add_argument("--encoder-nice", type=int, default=5,
                        help="lower CPU priority of the encoding process (0-19)")
    parser.add_argument("--index", default="exact",
                        choices=["exact", "faiss-exact", "faiss-hnsw"],
                        help="the item index: NumPy exact (default) or a FAISS index")
    parser.add_argument("--access-log", action="store_true",
                        help="log every request (off: a log line costs more than a query)")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port {args.port} must be in [1, 65535]")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                                                   "%(message)s")
    import uvicorn

    from mmrec_lib.datasets.miniclips import load_miniclips
    from mmrec_lib.serving import HOST, create_app, encoder_for, train_or_load
    from mmrec_lib.utils import data_dir

    if args.model_dir is None:
        args.model_dir = data_dir() / "serving" / f"miniclips-{args.size}-model"
    dataset = load_miniclips(size=args.size)
    model = train_or_load(args.model_dir, dataset, epochs=args.epochs)
    encoder = encoder_for(model, dataset, model_dir=args.model_dir)
    app = create_app(model, dataset, encoder=encoder, upload_dir=args.upload_dir, max_upload_mb=args.max_upload_mb,
                     queue_size=args.queue_size, encode_in=args.encode_in,
                     encoder_nice=args.encoder_nice, index=args.index)
    if args.encode_in == "thread":
        app.state.service.encoder.warm_up(dataset.clip_path(dataset.items["item_id"].iloc[0]))
    uvicorn.run(app, host=HOST, port=args.port, log_level="info", access_log=args.access_log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
