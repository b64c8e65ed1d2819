#!/usr/bin/env bash
# KorSTS on one GPU, run on a lent device machine (see README, Results): sts_vs_hf.py --accelerator gpu (HF Trainer,
# n2m, and the bi + cross ensemble, full data, 3 epochs, bf16 autocast) and sts_same_model.py --accelerator gpu (the
# same model in sentence-transformers' trainer and n2m; added after the run of 2026-11-30, not yet run on a GPU:
# whether the lent machine's pyarrow suits the carried `datasets` is untested), then recipe variants judged on
# KorSTS dev (sts_dev_trials.py) until a deadline. Result files land in $OUT.
#
# That machine has Python and PyTorch but no network: the few packages it lacks travel as wheels in .whl/, and
# e5-small travels as the copy cut to KorSTS's pieces (train, dev and test: every KorSTS text tokenizes as with
# the full model), xz-compressed in .gpu/ (the full model is over the transfer limit). Prepare both with
# benchmarks/sts_gpu_prepare.sh.
#
# On 2026-11-30 (README, Results) it ran as two calls of the device tool on one machine, with `carry` [".whl",
# ".gpu"]: `TRIALS_UNTIL_S=380 bash benchmarks/sts_gpu.sh`, whose trials stopped at a bug since fixed, then
# `TRIALS_ONLY=1 TRIALS_UNTIL_S=330 bash benchmarks/sts_gpu.sh`, which ran the first six trials below.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
OUT=${OUT:-runs/gpu-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 N2M_HOME=/tmp/n2m TOKENIZERS_PARALLELISM=false
backbone=.gpu/e5-small-korsts
python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1] + '.xz'), open(sys.argv[1], 'wb'))" \
    "$backbone/model.safetensors"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"

if [[ -z ${TRIALS_ONLY:-} ]]; then
    python3 benchmarks/sts_vs_hf.py --accelerator gpu --backbone "$backbone" --ensemble 2 --ensemble-kind mix \
        --out runs/bench-sts-gpu 2>&1 | tee "$OUT/bench.log"
    cp benchmarks/results/sts_vs_hf.gpu.json benchmarks/results/sts_vs_hf.gpu.md "$OUT/"
    # the loop like for like: the same trimmed bi-encoder in sentence-transformers' trainer and in n2m
    python3 benchmarks/sts_same_model.py --accelerator gpu --backbone "$backbone" --out runs/bench-sts-same-gpu \
        2>&1 | tee "$OUT/same_model.log"
    cp benchmarks/results/sts_same_model.gpu.json benchmarks/results/sts_same_model.gpu.md "$OUT/"
fi

budget=${TRIALS_UNTIL_S:-420}  # seconds from the start after which no trial starts
# the recipe itself is the benchmark's n2m run (its dev score is in sts_vs_hf.gpu.json)
python3 benchmarks/sts_dev_trials.py --accelerator gpu --backbone "$backbone" --deadline $((budget - (SECONDS - start))) \
    lr5e-5 lr1e-4-lld0.8 len128 hd0 cosent seed1 freeze-emb b64-lr6e-5 cosine 2>&1 | tee "$OUT/trials.log" || true
cp benchmarks/results/sts_dev_trials.gpu.json "$OUT/" || true
