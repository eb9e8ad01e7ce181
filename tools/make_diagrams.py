"""Draw the architecture diagrams of chapters 04, 07 and 08 into book/_static/diagrams/.

Usage: `python tools/make_diagrams.py` (writes the SVG files) or `--check` (exits 1 when a
stored diagram differs from what this script draws). The diagrams are plain matplotlib
boxes and arrows, so they need nothing beyond the series' environment; the SVGs are
deterministic (fixed hash salt, no date), so the stored files can be compared byte for byte.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "book" / "_static" / "diagrams"
COLOURS = {"text": "#dbe9f6", "audio": "#dff2e1", "visual": "#efe1f5", "layer": "#fdf1d8",
           "id": "#eeeeee", "output": "#fde0dc"}


def box(ax, x, y, text, *, width=2.6, height=0.8, kind="layer", fontsize=9):
    """A rounded box centred at (x, y); returns its centre and half sizes for arrows."""
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.05", facecolor=COLOURS[kind],
                                edgecolor="#444444", linewidth=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)
    return (x, y, width / 2, height / 2)


def arrow(ax, start, end, text=None):
    """An arrow from the bottom or top edge of box `start` to the facing edge of box `end`."""
    (x0, y0, _, h0), (x1, y1, _, h1) = start, end
    sign = 1 if y1 > y0 else -1
    ax.annotate("", xy=(x1, y1 - sign * h1), xytext=(x0, y0 + sign * h0),
                arrowprops=dict(arrowstyle="->", color="#444444", lw=1.2))
    if text:
        ax.text((x0 + x1) / 2 + 0.1, (y0 + y1) / 2, text, fontsize=8, color="#555555", va="center")


def canvas(width, height, title):
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(0, width * 2)
    ax.set_ylim(0, height * 2)
    ax.axis("off")
    ax.set_title(title, fontsize=11)
    return fig, ax


def two_tower():
    """Chapter 08: the item tower, the user tower and the score."""
    fig, ax = canvas(10, 7, "The two-tower model of chapter 08")
    item_x, user_x = 5.2, 14.6
    inputs = [box(ax, item_x - 3.4 + 3.4 * k, 1.0, label, width=3.1, kind=kind)
              for k, (label, kind) in enumerate([("$v_t$: text\n(MiniLM, ch. 02)", "text"),
                                                 ("$v_a$: audio\n(ch. 03)", "audio"),
                                                 ("$v_v$: video\n(ch. 04)", "visual")])]
    fuse = box(ax, item_x, 3.4, "fuse: concat, attention or gated\n(the layers of ch. 07)", width=6.0)
    for source in inputs:
        arrow(ax, source, fuse)
    item_id = box(ax, item_x, 5.6, "+ item id embedding $e_i$\n(hybrid only)", width=4.8, kind="id")
    arrow(ax, fuse, item_id)
    item_vec = box(ax, item_x, 7.8, "item vector $q_i$", width=3.4, kind="output")
    arrow(ax, item_id, item_vec)
    history = box(ax, user_x, 1.0, "history $H_u$: the item vectors $q_j$\nof the clips the user watched",
                  width=6.6)
    pool = box(ax, user_x, 3.4, "mean over $j \\in H_u$", width=4.0)
    arrow(ax, history, pool)
    user_id = box(ax, user_x, 5.6, "+ user id embedding $a_u$\n(hybrid only)", width=4.8, kind="id")
    arrow(ax, pool, user_id)
    user_vec = box(ax, user_x, 7.8, "user vector $p_u$", width=3.4, kind="output")
    arrow(ax, user_id, user_vec)
    score = box(ax, 9.9, 10.0, "score $s(u, i) = \\langle p_u, q_i \\rangle + b_i$   "
                "(or $\\cos(p_u, q_i) / \\tau + b_i$)", width=12.5, kind="output")
    arrow(ax, item_vec, score)
    arrow(ax, user_vec, score)
    loss = box(ax, 9.9, 12.1, "training: in-batch softmax with log-q correction, or BPR\n"
               "(the other clips of the batch are the negatives)", width=12.5, height=1.0)
    arrow(ax, score, loss)
    ax.text(item_x, 8.9, "item tower", ha="center", fontsize=10, weight="bold")
    ax.text(user_x, 8.9, "user tower", ha="center", fontsize=10, weight="bold")
    return fig


def fusion_layers():
    """Chapter 07: concatenation, attention and gated fusion side by side."""
    fig, ax = canvas(11, 5.4, "Three fusion layers of chapter 07 ($x_t, x_a, x_v$ in, one item vector out)")
    columns = [
        ("concatenation (early fusion)",
         ["normalise and project\neach modality: $W_m x_m$",
          "concatenate the projections\nand the presence mask",
          "dense layer to the\noutput size"]),
        ("attention fusion",
         ["normalise and project:\n$h_m = W_m x_m$",
          "score $e_m = v^\\top \\tanh(W h_m + b)$;\nsoftmax over present modalities",
          "weighted sum\n$\\sum_m \\alpha_m h_m$"]),
        ("gated fusion (GMU)",
         ["$h_m = \\tanh(W_m x_m)$",
          "gates $z_m = \\sigma(G_m [x_t, x_a, x_v, \\mathrm{mask}])$\n(one per dimension)",
          "gated sum\n$\\sum_m z_m \\odot h_m$"]),
    ]
    for k, (title, steps) in enumerate(columns):
        x = 3.7 + 7.3 * k
        ax.text(x, 10.2, title, ha="center", fontsize=10, weight="bold")
        inputs = [box(ax, x - 2.2 + 2.2 * j, 1.0, name, width=1.9, height=0.7, kind=kind)
                  for j, (name, kind) in enumerate([("text", "text"), ("audio", "audio"),
                                                     ("visual", "visual")])]
        previous = None
        for level, step in enumerate(steps):
            current = box(ax, x, 3.1 + 2.1 * level, step, width=6.3, height=1.1)
            if previous is None:
                for source in inputs:
                    arrow(ax, source, current)
            else:
                arrow(ax, previous, current)
            previous = current
        arrow(ax, previous, box(ax, x, 9.3, "fused item vector", width=3.4, height=0.6, kind="output"))
    ax.text(11.0, 0.1, "A missing modality (mask False) gets a zero slot, weight 0 or gate 0: "
            "it never reaches the output.", ha="center", fontsize=8.5, color="#555555")
    return fig


def detector():
    """Chapter 04: the GridDetector, YOLO v1 in miniature."""
    fig, ax = canvas(8.5, 6.4, "The GridDetector of chapter 04 (one box per grid cell)")
    frame = box(ax, 8.5, 1.0, "frame, 64 x 64 x 3 (values 0-1)", width=6.0, kind="visual")
    blocks = box(ax, 8.5, 3.0, "3 blocks: conv 3x3 (16, 32, 64 filters), batch norm, ReLU,\n"
                 "max-pool 2x2:  64 -> 32 -> 16 -> 8 pixels per side", width=12.5, height=1.1)
    arrow(ax, frame, blocks)
    head = box(ax, 8.5, 5.0, "head: conv 3x3 (128) + ReLU, then conv 1x1", width=8.5)
    arrow(ax, blocks, head)
    grid = box(ax, 8.5, 7.1, "8 x 8 grid; per cell: objectness, centre offset (x, y) in the cell,\n"
               "$\\sqrt{w}$ and $\\sqrt{h}$ (shares of the image), class scores (5 + C numbers)",
               width=14.5, height=1.1, kind="output")
    arrow(ax, head, grid)
    keep = box(ax, 8.5, 9.2, "keep cells with objectness x class probability > threshold;\n"
               "per-class non-maximum suppression", width=12.5, height=1.1)
    arrow(ax, grid, keep)
    boxes = box(ax, 8.5, 11.2, "boxes, classes and scores -> mAP@0.5 and clip tags", width=9.5,
                kind="output")
    arrow(ax, keep, boxes)
    return fig


DIAGRAMS = {"two_tower.svg": two_tower, "fusion_layers.svg": fusion_layers, "grid_detector.svg": detector}


def render(draw) -> bytes:
    matplotlib.rcParams["svg.hashsalt"] = "mmrec"
    figure = draw()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    return buffer.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a stored diagram is stale")
    args = parser.parse_args()
    drawn = {name: render(draw) for name, draw in DIAGRAMS.items()}
    if args.check:
        stale = [name for name, data in drawn.items()
                 if not (TARGET / name).is_file() or (TARGET / name).read_bytes() != data]
        if stale:
            print("stale diagrams: " + ", ".join(stale) + " (run `python tools/make_diagrams.py`)")
            return 1
        print(f"diagrams are in sync ({len(drawn)})")
        return 0
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, data in drawn.items():
        (TARGET / name).write_bytes(data)
    print(f"wrote {len(drawn)} diagrams to {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
