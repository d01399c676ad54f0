"""Time the default model per frame on the 640x480 fixture frames.

    node scripts/python.mjs -m eval.speed [--runs 7] [--frames 200] [--options '{...}'] [--json]

Four scenes: ``face`` (test/fixtures/frames/face*.jpg: one student
sitting still, the same photo under fresh sensor noise), ``moving`` (the
astronaut photo swaying 2.6 px and 0.8 degrees from one frame to the next:
the model follows such a move in the image without the mesh on about 7
frames in 10), ``turning`` (the astronaut's head turning to and fro by 4 degrees of
yaw a frame, re-posed by eval/repose.py, so the network locates the face on
every frame) and ``empty`` (empty*.jpg: nobody in view). Each scene is a session of
``--frames`` frames cycling through its fixture files, analysed in units of
5 with the context carried (JSON round trip, as the server carries it),
the way the worker runs it: JPEG bytes in, decode, quality, detection,
pose, eyes, score out. One thread (``cv2.setNumThreads(1)``). The first
unit of every run is a warm-up and not timed. Reported: the median over
``--runs`` runs of ms per frame, and the fastest run (the least disturbed
by other jobs on a shared machine).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import time
from typing import Any

import cv2

from eval.dataset import QUALITY
from jipjung_model.default_model import ConcentrationModel
from jipjung_model.interface import FORMAT_JPEG, Frame, Unit

FRAMES = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "frames"))
SCENES = {"face": "face*.jpg", "moving": None, "turning": None, "empty": "empty*.jpg"}
BATCH, FPS = 5, 5


def moving_frames() -> list[bytes]:
    """A head swaying to and fro: 20 frames, each 0.4 % of the frame width
    and 0.8 degrees from the previous one."""
    from tests.frames import canvas

    steps = [*range(-5, 5), *range(5, -5, -1)]
    return [canvas("astronaut", quality=QUALITY, dx=0.004 * k, angle=0.8 * k, seed=i) for i, k in enumerate(steps)]


def turning_frames() -> list[bytes]:
    """A head turning to and fro between 16 degrees to either side, 4
    degrees of yaw from one frame to the next: 16 frames. Each view costs
    ~0.05 s to render."""
    from eval import repose
    from tests.frames import canvas, photo

    render = repose.renderer(photo("astronaut"))
    steps = [*range(-4, 4), *range(4, -4, -1)]
    return [canvas(render(4.0 * k, 0.0), quality=QUALITY, seed=i) for i, k in enumerate(steps)]


RENDERED = {"moving": moving_frames, "turning": turning_frames}


def scene_frames(scene: str) -> list[bytes]:
    """A scene's frames: rendered (RENDERED) or the fixture files SCENES names."""
    if scene in RENDERED:
        return RENDERED[scene]()
    pattern = SCENES[scene]
    assert pattern is not None
    out = []
    for path in sorted(glob.glob(os.path.join(FRAMES, pattern))):
        with open(path, "rb") as f:
            out.append(f.read())
    if not out:
        raise FileNotFoundError(os.path.join(FRAMES, pattern))
    return out


def run_session(model: ConcentrationModel, files: list[bytes], n_frames: int) -> float:
    """Seconds per frame over one session (the first unit not timed)."""
    context, seconds, timed = None, 0.0, 0
    for start in range(0, n_frames + BATCH, BATCH):
        unit = Unit(
            [Frame(start + i, 1.7e12 + 1000.0 / FPS * (start + i), FORMAT_JPEG,
                   files[(start + i) % len(files)], 640, 480) for i in range(BATCH)],
            closes_window=(start // BATCH) % 10 == 9, fps=FPS,
        )
        t0 = time.perf_counter()
        result = model.analyse(unit, context)
        dt = time.perf_counter() - t0
        if start:
            seconds += dt
            timed += BATCH
        context = json.loads(json.dumps(result.context))
    return seconds / timed


def measure(options: dict, runs: int, n_frames: int) -> dict:
    cv2.setNumThreads(1)
    model = ConcentrationModel()
    model.load(options)
    out: dict[str, Any] = {}
    for scene in SCENES:
        files = scene_frames(scene)
        times = [run_session(model, files, n_frames) * 1000 for _ in range(runs)]
        out[scene] = {"medianMs": round(statistics.median(times), 2), "minMs": round(min(times), 2),
                      "runsMs": [round(t, 2) for t in times]}
    out["load"] = os.getloadavg()[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--options", default="{}", help="model options as JSON")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    r = measure(json.loads(args.options), args.runs, args.frames)
    r["loadBefore"] = load_before
    if args.json:
        print(json.dumps(r))
        return
    for scene in SCENES:
        s = r[scene]
        print(f"{scene:6s} {s['medianMs']:6.2f} ms/frame median ({1000 / s['medianMs']:.0f} frames/s), "
              f"fastest run {s['minMs']:.2f} ms, over {args.runs} runs of {args.frames} frames")
    print(f"load average (1 min) before {load_before:.2f}, after {r['load']:.2f}")


if __name__ == "__main__":
    main()
