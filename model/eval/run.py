"""Run the default model alone on the labelled sets and report.

    npm run eval                      # = node scripts/eval.mjs: both sets
    node scripts/python.mjs -m eval.run [--quick] [--jobs N] [--json | --markdown]
                                        [--set all|old|people] [--conditions 'dim,down 40']
                                        [--options '{...}']

The *old set* (dataset.py: a few fixture photos, one real person) gives a
per-state confusion matrix over batches, presence precision/recall over
frames and the roll error. The *real-people set* (people.py, with the
re-posed heads of repose.py) gives, per condition, the people passing and
the list of those failing, the targets, the yaw/pitch error per view and a
line per person. ``--quick``: every 5th subject of each kind and fewer
conditions, real people only. ``--jobs``: processes over people (default
2; the old set runs as one more task beside them).

Each clip is one session: units of 5 frames in seq order, the context
carried from unit to unit exactly as the server does. The cost is the wall
time of ``analyse`` per frame (JPEG decode, quality, detection, pose, eyes,
score), one thread per process; with several jobs on a shared machine it
includes their contention.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from typing import Any

import cv2

from eval import people
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
        for present, f in zip(clip.present, frames):
            if present is None or not f.get("usable"):
                continue
            if present and f["face"]:
                tp += 1
            elif present:
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
        recall = "-" if rec is None else f"{rec:.3f}"
        print(s.ljust(w) + "".join(str(row[t]).rjust(w) for t in STATES) + recall.rjust(w))
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


# -- the real-people set (people.py, repose.py) --------------------------------

_WORKER: dict = {}


def render_factory():
    """repose.renderer when FaceMesh's network is installed, else None (the
    re-posed views are then left out and the report says so)."""
    try:
        from eval import repose
        from jipjung_model.facemesh import DEFAULT_FACEMESH
    except ImportError:
        return None
    return repose.renderer if os.path.exists(DEFAULT_FACEMESH) else None


def _init_worker(options: dict) -> None:
    cv2.setNumThreads(1)
    model = ConcentrationModel()
    model.load(options)
    _WORKER.update(model=model, render=render_factory())


def _person(task: tuple[people.Subject, bool, tuple[str, ...] | None]) -> dict:
    subject, quick, only = task
    return people.run_subject(_WORKER["model"], subject, quick, _WORKER["render"], only)


def _stats(values: list[float]) -> dict | None:
    """Mean and largest absolute error, and the bias (signed mean)."""
    a = [abs(v) for v in values]
    if not a:
        return None
    return {"mean": round(sum(a) / len(a), 1), "max": round(max(a), 1), "bias": round(sum(values) / len(a), 1),
            "n": len(a)}


def _pair(st: dict | None, bias: bool = False) -> str:
    if st is None:
        return "-"
    return f"{st['mean']}/{st['max']}" + (f" ({st['bias']:+})" if bias else "")


VIEW_AXIS = {name: ("yaw" if yaw else "pitch") for name, (yaw, _) in people.VIEWS.items()}
AWAY = [n for n, (y, p) in people.VIEWS.items() if abs(y) >= people.AWAY_YAW or p >= people.AWAY_PITCH]
NEAR = [n for n in people.VIEWS if n not in AWAY]
ROLL_LIMIT = 5.0  # degrees: the roll error target for every person
FRONTAL_LIMIT = 15.0  # degrees: a portrait looking at the camera reads within this of straight ahead


def summarise_people(results: list[dict], wall: float, jobs: int) -> dict:
    rank = {s.name: i for i, s in enumerate(people.subjects())}
    results = sorted(results, key=lambda r: rank.get(r["subject"], 10**6))
    conditions: dict[str, dict] = {}
    persons = []
    errors: dict[str, dict[str, Any]] = {}
    for r in results:
        per: dict[str, list[float]] = {"yaw": [], "pitch": [], "roll": []}
        for e in r["pose"]:
            c = e["condition"]
            view = errors.setdefault(c, {"yaw": [], "pitch": [], "none": 0})
            if e["yaw"] is None:
                view["none"] += 1
            if c in VIEW_AXIS:
                for k in ("yaw", "pitch"):
                    if e[k] is not None:
                        view[k].append(e[k])
                if e[VIEW_AXIS[c]] is not None:
                    per[VIEW_AXIS[c]].append(e[VIEW_AXIS[c]])
            elif c.startswith("roll") and e["roll"] is not None:
                per["roll"].append(e["roll"])
        fails = []
        for c in r["clips"]:
            e = conditions.setdefault(c["condition"], {
                "pass": 0, "total": 0, "failing": [], "crashed": [], "reportOnly": c["reportOnly"], "states": {}})
            e["total"] += 1
            e["pass"] += int(c["ok"])
            if not c["ok"]:
                e["failing"].append(r["subject"])
                fails.append(c["condition"])
            if c.get("error"):
                e["crashed"].append(r["subject"])
            for k, v in c["counts"].items():
                e["states"][k] = e["states"].get(k, 0) + v
        judged = [c for c in r["clips"] if not c["reportOnly"]]
        persons.append({
            "subject": r["subject"], "kind": r["kind"], "pass": sum(c["ok"] for c in judged), "total": len(judged),
            "failing": fails, "neutral": r["neutral"], "notes": r["notes"],
            "yawError": _stats(per["yaw"]), "pitchError": _stats(per["pitch"]), "rollError": _stats(per["roll"]),
            "clips": {c["condition"]: {"ok": c["ok"], "got": c["got"], "window": c["window"], "flags": c["flags"],
                                       **({"error": c["error"]} if c.get("error") else {})} for c in r["clips"]},
        })
    order = [c for c in people.CONDITIONS if c in conditions]

    def group(names: list[str], kinds=None) -> dict:
        n = ok = 0
        for p in persons:
            if kinds and p["kind"] not in kinds:
                continue
            for c in names:
                if c in p["clips"]:
                    n += 1
                    ok += int(p["clips"][c]["ok"])
        return {"pass": ok, "total": n, "rate": round(ok / n, 3) if n else None}

    rolled = [p for p in persons if p["rollError"]]
    off_axis = [p["subject"] for p in persons if p["neutral"]["yaw"] is None or p["neutral"]["pitch"] is None
                or abs(p["neutral"]["yaw"]) > FRONTAL_LIMIT or abs(p["neutral"]["pitch"]) > FRONTAL_LIMIT]
    frames = sum(r["frames"] for r in results)
    model_s = sum(r["seconds"] for r in results)
    busy_s = sum(r["wallSeconds"] for r in results)
    return {
        "subjects": len(persons),
        "kinds": {k: sum(p["kind"] == k for p in persons) for k in ("frontal", "smiling", "selfie")},
        "conditions": {c: conditions[c] for c in order},
        "targets": {
            "windowFocused": group(["centred", "small", "dim"], ("frontal", "smiling")),
            "windowFocusedSelfies": group(["centred", "small", "dim"], ("selfie",)),
            "lookingAway": {**group(AWAY), "target": 0.9},
            "nearViewsFocused": group(NEAR),
            "glance": group([people.GLANCE]),
            "eyesClosed": group(["eyes closed"]),
            "blinks": group(["blinks"]),
            "rollWithin5": {"pass": sum(p["rollError"]["max"] <= ROLL_LIMIT for p in rolled), "total": len(rolled),
                            "failing": [p["subject"] for p in rolled if p["rollError"]["max"] > ROLL_LIMIT]},
            "frontalWithin15": {"pass": len(persons) - len(off_axis), "total": len(persons), "failing": off_axis},
        },
        "poseByView": {c: {"frames": len(v["yaw"]) + v["none"], "noReading": v["none"],
                           "yawError": _stats(v["yaw"]), "pitchError": _stats(v["pitch"])}
                       for c, v in sorted(errors.items(), key=lambda kv: people.CONDITIONS.index(kv[0]))
                       if c in VIEW_AXIS},
        "clips": {"pass": sum(p["pass"] for p in persons), "total": sum(p["total"] for p in persons)},
        "peopleAllPass": sum(p["pass"] == p["total"] for p in persons),
        "frames": frames,
        "msPerFrame": round(model_s / frames * 1000, 2) if frames else None,
        "buildMsPerFrame": round((busy_s - model_s) / frames * 1000, 2) if frames else None,
        "wallSeconds": round(wall, 1),
        "jobs": jobs,
        "notes": sorted({n for p in persons for n in p["notes"]}),
        "people": persons,
    }


def evaluate_people(options: dict, quick: bool, jobs: int, old: bool = False,
                    only: tuple[str, ...] | None = None) -> tuple[dict | None, dict]:
    """The real-people set over ``jobs`` processes (and the old set as one
    more task when ``old``); ``only``: these conditions (and centred)."""
    tasks = [(s, quick, only) for s in people.subjects(quick)]
    # The heaviest subjects (frontal: every condition and the re-posed views) first.
    tasks.sort(key=lambda t: {"frontal": 0, "selfie": 1, "smiling": 2}[t[0].kind])
    t0 = time.perf_counter()
    if jobs <= 1:
        _init_worker(options)
        old_result = evaluate(options) if old else None
        results = [_person(t) for t in tasks]
    else:
        with multiprocessing.get_context("fork").Pool(jobs, _init_worker, (options,)) as pool:
            pending = pool.apply_async(evaluate, (options,)) if old else None
            results = list(pool.imap_unordered(_person, tasks))
            old_result = pending.get() if pending else None
    return old_result, summarise_people(results, time.perf_counter() - t0, jobs)


def _names(names: list[str], limit: int) -> str:
    if not names:
        return ""
    return " ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _target_lines(r: dict) -> list[tuple[str, str]]:
    t = r["targets"]

    def f(g: dict) -> str:
        if not g["total"]:
            return "not run"
        out = f"{g['pass']}/{g['total']}" + (f" ({100 * g['rate']:.1f} %)" if g.get("rate") is not None else "")
        return out + (f": {_names(g['failing'], 12)}" if g.get("failing") else "")
    return [
        ("frontal and smiling read focused, window >= 70 (centred, small, dim)", f(t["windowFocused"])),
        ("selfies likewise", f(t["windowFocusedSelfies"])),
        ("turned >= 45 deg or lowered >= 40 deg for 3 s read distracted (target 90 %)", f(t["lookingAway"])),
        ("+-20 deg views stay focused", f(t["nearViewsFocused"])),
        ("1-s glance at 60 deg stays focused", f(t["glance"])),
        ("eyes closed 3 s read drowsy", f(t["eyesClosed"])),
        ("blinks (1 frame in 7) stay focused", f(t["blinks"])),
        (f"roll within {ROLL_LIMIT:g} deg of the applied +-20 deg, every frame (people)", f(t["rollWithin5"])),
        (f"frontal photo reads within {FRONTAL_LIMIT:g} deg of straight ahead, yaw and pitch (median; people)",
         f(t["frontalWithin15"])),
    ]


def _why(clip: dict) -> str:
    """A failed clip in a few characters: its batch states' initials, the
    window score when judged, the quality flags, or that it crashed."""
    if clip.get("error"):
        return "crashed"
    out = "".join(g[0] for g in clip["got"])
    if clip.get("window") is not None:
        out += f" w{clip['window']:.0f}"
    if clip.get("flags"):
        out += " " + ",".join(f"{k}x{v}" for k, v in sorted(clip["flags"].items()))
    return out


def _failures(p: dict) -> str:
    return ", ".join(f"{c} [{_why(p['clips'][c])}]" for c in p["failing"])


def print_people(r: dict, markdown: bool = False, limit: int = 12) -> None:
    k = r["kinds"]
    head = (f"Real people: {r['subjects']} subjects ({k['frontal']} frontal, {k['smiling']} smiling, "
            f"{k['selfie']} selfies), {r['clips']['total']} judged clips, {r['frames']} frames")
    if markdown:
        print(head + "\n")
        print("| condition | people passing | failing |\n|---|---|---|")
        for c, e in r["conditions"].items():
            if e["reportOnly"]:
                states = ", ".join(f"{s} {n}" for s, n in sorted(e["states"].items()))
                print(f"| {c} (not judged) | crashed: {len(e['crashed'])} | batches: {states} |")
            else:
                print(f"| {c} | {e['pass']}/{e['total']} | {', '.join(e['failing'])} |")
        print("\n| target | result |\n|---|---|")
        for name, value in _target_lines(r):
            print(f"| {name} | {value} |")
        print("\n| view | frames | no reading | yaw error mean/max (bias) | pitch error mean/max (bias) |")
        print("|---|---|---|---|---|")
        for c, v in r["poseByView"].items():
            print(f"| {c} | {v['frames']} | {v['noReading']} | {_pair(v['yawError'], True)} "
                  f"| {_pair(v['pitchError'], True)} |")
        failing = [p for p in r["people"] if p["failing"]]
        if failing:
            print("\nSubjects failing a clip ([batch states' initials, w = window score, quality flags]):\n")
            print("| subject | passed | frontal yaw/pitch | yaw error | pitch error | roll error | failing |")
            print("|---|---|---|---|---|---|---|")
            for p in failing:
                n = p["neutral"]
                print(f"| {p['subject']} | {p['pass']}/{p['total']} | {n['yaw']}/{n['pitch']} | {_pair(p['yawError'])} "
                      f"| {_pair(p['pitchError'])} | {_pair(p['rollError'])} | {_failures(p)} |")
    else:
        print(head + "\n")
        print(f"{'condition':<14}{'pass':>9}  failing")
        for c, e in r["conditions"].items():
            if e["reportOnly"]:
                states = ", ".join(f"{s} {n}" for s, n in sorted(e["states"].items()))
                crashed = _names(e["crashed"], limit) or "none"
                print(f"{c:<14}{'-':>9}  not judged; batches: {states}; crashed: {crashed}")
            else:
                print(f"{c:<14}{e['pass']:>4}/{e['total']:<4}  {_names(e['failing'], limit)}")
        print("\nTargets")
        for name, value in _target_lines(r):
            print(f"  {name}: {value}")
        print("\nPose error on the re-posed views, degrees (reading - frontal reading - applied: "
              "|mean|/max (signed mean))")
        print(f"{'view':<10}{'frames':>7}{'no reading':>12}{'yaw':>20}{'pitch':>20}")
        for c, v in r["poseByView"].items():
            print(f"{c:<10}{v['frames']:>7}{v['noReading']:>12}{_pair(v['yawError'], True):>20}"
                  f"{_pair(v['pitchError'], True):>20}")
        print("\nPer person: clips passed; |error| mean/max: yaw on yaw views, pitch on pitch views, roll on roll +-20")
        for p in r["people"]:
            n = p["neutral"]
            print(f"{p['subject']:<22}{p['kind']:<8}{p['pass']:>3}/{p['total']:<3} yaw {_pair(p['yawError']):<10} "
                  f"pitch {_pair(p['pitchError']):<10} roll {_pair(p['rollError']):<9} "
                  f"frontal y {n['yaw']} p {n['pitch']} r {n['roll']}"
                  + (f"  FAIL {_failures(p)}" if p["failing"] else ""))
    for note in r["notes"]:
        print(f"\nNote: {note}")
    print(f"\nOverall: {r['clips']['pass']}/{r['clips']['total']} clips pass; "
          f"{r['peopleAllPass']}/{r['subjects']} subjects pass every clip")
    print(f"Cost: {r['msPerFrame']} ms per frame in the model over {r['frames']} frames "
          f"({1000 / r['msPerFrame']:.0f} frames/s on one core); building frames and views "
          f"{r['buildMsPerFrame']} ms per frame; {r['wallSeconds']} s wall with {r['jobs']} jobs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eval.run")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--markdown", action="store_true", help="print the real-people tables as markdown")
    parser.add_argument("--options", default="{}", help="model options (JSON, as MODEL_OPTIONS)")
    parser.add_argument("--quick", action="store_true",
                        help="every 5th subject of each kind, fewer conditions, real people only (under a minute)")
    parser.add_argument("--set", choices=("all", "old", "people"), default=None,
                        help="which sets to run (default: all; with --quick: people)")
    parser.add_argument("--jobs", type=int, default=2, help="processes over people (default 2)")
    parser.add_argument("--conditions", default=None,
                        help="comma-separated real-people conditions to run, e.g. 'dim,down 40' (centred always runs)")
    args = parser.parse_args(argv)
    options = json.loads(args.options)
    only = None
    if args.conditions:
        only = tuple(c.strip() for c in args.conditions.split(",") if c.strip())
        unknown = [c for c in only if c not in people.CONDITIONS]
        if unknown:
            parser.error(f"unknown conditions {unknown}; known: {', '.join(people.CONDITIONS)}")
    which = args.set or ("people" if args.quick else "all")
    old, ppl = None, None
    if which == "old":
        old = evaluate(options)
    else:
        old, ppl = evaluate_people(options, args.quick, max(1, args.jobs), old=which == "all", only=only)
    if args.json:
        json.dump({"old": old, "people": ppl}, sys.stdout, indent=1)
        print()
        return 0
    if old is not None:
        if args.markdown:  # docs/model.md quotes this report as a block
            print("```")
        print_report(old)
        print("```\n" if args.markdown else "")
    if ppl is not None:
        print_people(ppl, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
