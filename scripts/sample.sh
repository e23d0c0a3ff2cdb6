#!/usr/bin/env bash
# The main job on the bundled 200-image sample: split it, train a small ResNet, evaluate it.
# Everything it writes goes to malaria/sample-run/ (git-ignored); the sample itself is only read.
set -euo pipefail
cd "$(dirname "$0")/.."
out=malaria/sample-run
npx malaria build-dataset --input malaria/sample --output "$out" --force
npx malaria train --data "$out" --model-dir "$out/model" --plot "$out/plot.png" --force \
  --epochs 8 --batch-size 16 --image-size 48 --stages 1,1,1 --filters 16,16,32,64 --lr 0.05
npx malaria evaluate --data "$out" --model-dir "$out/model"
