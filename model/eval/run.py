"""Run the default model alone on the labelled set (dataset.py) and print a
per-state confusion matrix over batches, presence precision/recall over
frames, the roll error and the per-frame cost.

    npm run eval                      # = node scripts/eval.mjs
    node scripts/python.mjs -m eval.run [--json] [--options '{...}']

Each clip is one session: units of 5 frames in seq order, the context
carried from unit to unit exactly as the server does, the last unit closing
the window. The cost is the wall time of ``analyse`` per frame (JPEG decode,
quality, detection, pose, eyes, score), one process, one thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import cv2

from eval.dataset import BATCH, FPS, clips
from jipjung_model.default_model import ConcentrationModel
from jipjung_model.interface import FORMAT_JPEG, STATES, Frame, Unit, validate_result


def run_clip(model: ConcentrationModel, clip) -> tuple[list, list, float]:
    data = [make() for make in clip.frames]
    context, batches, frames, seconds = None, [], [], 0.0
    for start in range(0, len(data), BATCH):
        chunk = data[start:start + BATCH]
        unit = Unit(
            [Frame(start + i, 1.7e12 + 1000.0 / FPS * (start + i), FORMAT_JPEG, d, 640, 480)
             for i, d in enumerate(chunk)],
            closes_window=start + BATCH >= len(data), fps=FPS,
        )
        t0 = time.perf_counter()
        result = model.analyse(unit, context)
        seconds += time.perf_counter() - t0
        validate_result(unit, result)
        context = json.loads(json.dumps(result.context))  # as it travels through the server
        batches.append(result.batch)
        frames.extend(result.frames)
    return batches, frames, seconds


def evaluate(options: dict) -> dict:
    cv2.setNumThreads(1)
    model = ConcentrationModel()
    model.load(options)
    confusion = {s: {t: 0 for t in STATES} for s in STATES}
    tp = fp = fn = tn = 0
    roll_errors: list[tuple[float, float]] = []
    base_roll = None
    multi = {"clips": 0, "flagged": 0}
    per_clip = []
    total_s, total_frames = 0.0, 0
    for clip in clips():
        batches, frames, seconds = run_clip(model, clip)
        total_s += seconds
        total_frames += len(frames)
        got = [b.state for b in batches]
        for want, have in zip(clip.states, got):
            if want is not None:
                confusion[want][have] += 1
        for want, f in zip(clip.present, frames):
            if want is None or not f.get("usable"):
                continue
            if want and f["face"]:
                tp += 1
            elif want:
                fn += 1
            elif f["face"]:
                fp += 1
            else:
                tn += 1
        if clip.name == "frontal":
            rolls = [f["roll"] for f in frames if f["roll"] is not None]
            base_roll = sum(rolls) / len(rolls)
        for applied, f in zip(clip.roll, frames):
            if applied is not None and abs(applied) <= 45 and f["roll"] is not None:
                roll_errors.append((applied, f["roll"]))
        if clip.multiple_faces:
            multi["clips"] += 1
            multi["flagged"] += int(all(b.signals.get("multipleFaces") for b in batches))
        ok = all(w is None or w == h for w, h in zip(clip.states, got))
        if clip.not_focused:
            ok = ok and all(h != "focused" for w, h in zip(clip.states, got) if w is None)
        per_clip.append({
            "clip": clip.name, "group": clip.group, "ok": ok, "want": clip.states, "got": got,
            "scores": [b.score for b in batches], "msPerFrame": round(seconds / len(frames) * 1000, 2),
        })
    recall = {s: (round(row[s] / sum(row.values()), 3) if sum(row.values()) else None)
              for s, row in confusion.items()}
    abs_err = [abs(r - a) for a, r in roll_errors]
    rel_err = [abs(r - base_roll - a) for a, r in roll_errors] if base_roll is not None else []
    return {
        "confusion": confusion,
        "recall": recall,
        "presence": {
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / (tp + fn), 4) if tp + fn else None,
            "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        },
        "roll": {
            "frames": len(roll_errors), "baseRoll": None if base_roll is None else round(base_roll, 2),
            "maxAbsError": round(max(abs_err), 2) if abs_err else None,
            "meanAbsError": round(sum(abs_err) / len(abs_err), 2) if abs_err else None,
            "maxErrorVsUnrotated": round(max(rel_err), 2) if rel_err else None,
        },
        "multipleFaces": multi,
        "msPerFrame": round(total_s / total_frames * 1000, 2),
        "frames": total_frames,
        "clips": per_clip,
    }


def print_report(r: dict) -> None:
    w = 11
    print("Confusion matrix over batches (rows: label, columns: model)\n")
    print("".ljust(w) + "".join(s.rjust(w) for s in STATES) + "recall".rjust(w))
    for s in STATES:
        row = r["confusion"][s]
        rec = r["recall"][s]
        print(s.ljust(w) + "".join(str(row[t]).rjust(w) for t in STATES) + ("-" if rec is None else f"{rec:.3f}").rjust(w))
    p = r["presence"]
    print(f"\nPresence over frames: precision {p['precision']}, recall {p['recall']} "
          f"(tp {p['tp']}, fp {p['fp']}, fn {p['fn']}, tn {p['tn']})")
    ro = r["roll"]
    print(f"Roll ({ro['frames']} frames rotated by -30..30 deg): max |roll - applied| {ro['maxAbsError']} deg, "
          f"mean {ro['meanAbsError']} deg; against the unrotated photo's own roll ({ro['baseRoll']} deg): "
          f"max {ro['maxErrorVsUnrotated']} deg")
    m = r["multipleFaces"]
    print(f"Several faces flagged in every batch: {m['flagged']} of {m['clips']} clips")
    print(f"Cost: {r['msPerFrame']} ms per frame over {r['frames']} frames "
          f"({1000 / r['msPerFrame']:.0f} frames/s on one core), decode to score\n")
    for c in r["clips"]:
        mark = "ok  " if c["ok"] else "MISS"
        got = " ".join(g[:4] for g in c["got"])
        print(f"{mark} {c['clip']:<32} {got:<60} {c['msPerFrame']} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eval.run")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--options", default="{}", help="model options (JSON, as MODEL_OPTIONS)")
    args = parser.parse_args(argv)
    result = evaluate(json.loads(args.options))
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
