#!/usr/bin/env bash
# Here, before benchmarks/sts_gpu.sh runs on a lent GPU machine: the wheels that machine lacks (for its Python
# 3.12) into .whl/, and e5-small cut to every KorSTS text's pieces, xz-compressed, into .gpu/ (both ignored by git
# through .git/info/exclude; pass both as the run's `carry`).
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
grep -qx '/.whl/' .git/info/exclude || echo '/.whl/' >>.git/info/exclude
grep -qx '/.gpu/' .git/info/exclude || echo '/.gpu/' >>.git/info/exclude
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 -d .whl jsonargparse==4.53.0 docstring-parser typeshed-client
folder=$("$py" -c "
import csv
from n2m.backbones import trimmed_backbone
texts = []
for split in ('train', 'dev', 'test'):
    with open(f'data/korsts/sts-{split}.tsv', encoding='utf-8') as f:
        texts += ['query: ' + r[k] for r in csv.DictReader(f, delimiter='\t', quoting=csv.QUOTE_NONE)
                  for k in ('sentence1', 'sentence2')]
print(trimmed_backbone('e5-small', texts))
")
mkdir -p .gpu/e5-small-korsts
cp "$folder"/config.json "$folder"/tokenizer.json "$folder"/tokenizer_config.json .gpu/e5-small-korsts/
xz -9 -T2 -c "$folder/model.safetensors" >.gpu/e5-small-korsts/model.safetensors.xz
du -sh .whl .gpu
