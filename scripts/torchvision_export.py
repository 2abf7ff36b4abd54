#!/usr/bin/python3
"""Exports torchvision models (random weights, eval mode, batch 1) to ONNX.

The zoo topology test (tests/zoo/) compares these files layer by layer with
wbs's own zoo graphs, so the models here are exactly the zoo's twins:
torchvision defaults, Inception-v3 without transform_input (its auxiliary
classifier only runs in training mode, so the eval export omits it).

Usage: /usr/bin/python3 scripts/torchvision_export.py OUTDIR [MODEL ...]
Exit codes: 0 done, 2 usage error, 77 torch/torchvision/onnx not importable
(ctest reports that as skipped).
Writes OUTDIR/<model>.onnx for each model (default: all), skipping files that
already exist; each file is written to a temporary name and then renamed, so
an interrupted export never leaves a partial model behind. Needs Debian's
python3-torch, python3-torchvision and python3-onnx.
"""

import os
import sys
import tempfile

OPSET = 17
SKIPPED = 77
MODELS = {
    # name: (constructor keyword arguments, input spatial size)
    "resnet18": ({}, 224),
    "resnet50": ({}, 224),
    "vgg16": ({}, 224),
    "inception_v3": ({"aux_logits": True, "transform_input": False, "init_weights": False}, 299),
    "mobilenet_v2": ({}, 224),
}


def export(name, path):
    import torch
    import torchvision

    kwargs, size = MODELS[name]
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
    x = torch.zeros(1, 3, size, size)
    fd, tmp = tempfile.mkstemp(suffix=".onnx.tmp", dir=os.path.dirname(path))
    os.close(fd)
    try:
        with torch.no_grad():
            torch.onnx.export(model, x, tmp, opset_version=OPSET, input_names=["input"],
                              output_names=["logits"], do_constant_folding=True)
        import onnx
        onnx.checker.check_model(onnx.load(tmp))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) >= 2 else 2
    outdir = argv[1]
    names = argv[2:] or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        print("torchvision_export.py: error: unknown model(s) %s; known: %s"
              % (", ".join(unknown), ", ".join(MODELS)), file=sys.stderr)
        return 2
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as e:
        print("torchvision_export.py: skipped: %s (install python3-torch, "
              "python3-torchvision, python3-onnx; run with /usr/bin/python3)" % e, file=sys.stderr)
        return SKIPPED
    os.makedirs(outdir, exist_ok=True)
    for name in names:
        path = os.path.join(outdir, name + ".onnx")
        if os.path.exists(path):
            continue
        print("exporting torchvision %s -> %s" % (name, path), flush=True)
        export(name, path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
