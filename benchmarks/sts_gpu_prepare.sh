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
    --platform manylinux2014_x86_64 -d .whl jsonargparse==4.53.0 docstring-parser typeshed-client \
    sentence-transformers==6.3.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19  # sts_same_model's ST side
folder=$(PYTHONPATH=benchmarks "$py" -c "
from sts_vs_hf import KORSTS, read_korsts
from n2m.backbones import trimmed_backbone
rows = [r for split in ('train', 'dev', 'test') for r in read_korsts(KORSTS / f'sts-{split}.tsv', None)]
print(trimmed_backbone('e5-small', ['query: ' + r[k] for r in rows for k in ('sentence1', 'sentence2')]))
" | tail -1)
mkdir -p .gpu/e5-small-korsts
cp "$folder"/config.json "$folder"/tokenizer.json "$folder"/tokenizer_config.json .gpu/e5-small-korsts/
xz -9 -T2 -c "$folder/model.safetensors" >.gpu/e5-small-korsts/model.safetensors.xz
grep -o '"vocab_size": [0-9]*' .gpu/e5-small-korsts/config.json  # the pieces kept (README: 6,196)
du -sh .whl .gpu
