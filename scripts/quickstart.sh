#!/usr/bin/env bash
# The main job, end to end on the bundled data: install, train the default Korean STS recipe briefly,
# score it once on the KorSTS test split, export it, and predict a file. About 10 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. .venv/bin/activate
export TOKENIZERS_PARALLELISM=false
OUT=runs/quickstart
rm -rf "$OUT"
# brief: one epoch over the first 60 batches (1,920 pairs); the full recipe is `n2m fit --config recipes/korsts.yaml`
n2m fit --config recipes/korsts.yaml --trainer.default_root_dir "$OUT" \
  --trainer.max_epochs 1 --trainer.limit_train_batches 60
python - "$OUT" <<'PY'
import json, sys
report = json.load(open(f"{sys.argv[1]}/results.json"))
print(f"KorSTS test: Pearson {report['test']['test/pearson']:.4f}, Spearman {report['test']['test/spearman']:.4f}")
print(f"best checkpoint: {report['best_checkpoint']}")
PY
BEST=$(python -c "import json;print(json.load(open('$OUT/results.json'))['best_checkpoint'])")
n2m export "$BEST" "$OUT/model"
n2m predict --config recipes/korsts.yaml --trainer.default_root_dir "$OUT" --ckpt_path "$BEST" \
  --data.predict data/korsts/sts-test.tsv --output "$OUT/predictions.csv"
python - "$OUT" <<'PY'
import sys
from n2m import Predictor
predictor = Predictor.from_pretrained(f"{sys.argv[1]}/model")
pairs = [("한 남자가 기타를 치고 있다.", "남자가 기타를 연주하고 있다."), ("한 남자가 기타를 치고 있다.", "고양이가 잠을 잔다.")]
for (a, b), result in zip(pairs, predictor.predict(pairs)):
    print(f"{result.score:.2f}  {a} / {b}")
PY
echo "model: $OUT/model   predictions: $OUT/predictions.csv"
