#!/usr/bin/env bash
# Evidence for FedCL's defaults (docs/algorithms.md, "FedCL: choices and evidence"):
#  1. the SCG loss form: eq. 9 as printed vs InfoNCE (dot product, cosine);
#  2. lambda (reg_reduction = "mean") in {0, 0.3, 1, 3}, two seeds.
# CIFAR-10 subset from the smoke config, AWGN on both links. Takes about 25 min
# on two CPU cores. Usage: experiments/studies/fedcl_defaults.sh OUT_DIR
set -euo pipefail
out=${1:?usage: $0 OUT_DIR}
cd "$(dirname "$0")/../.."
semfed=${SEMFED:-semfed}
common=(--config experiments/configs/smoke.toml --set output.progress=false
        --set output.tensorboard=false --set evaluation.every=1 --overwrite)

# 1. SCG loss form: K = 5, 15 rounds, 5 dB.
scg=(--set partition.num_clients=5 --set training.rounds=15
     --set link.uplink_snr_db=5.0 --set link.downlink_snr_db=5.0)
$semfed train "${common[@]}" "${scg[@]}" --set algorithm.scg_loss=printed \
  --set algorithm.scg_normalize=false --out "$out/scg/printed" > /dev/null
$semfed train "${common[@]}" "${scg[@]}" --set algorithm.scg_loss=infonce \
  --set algorithm.scg_normalize=false --out "$out/scg/infonce-dot" > /dev/null
$semfed train "${common[@]}" "${scg[@]}" --set algorithm.scg_loss=infonce \
  --set algorithm.scg_normalize=true --out "$out/scg/infonce-cosine" > /dev/null

# 2. lambda: K = 10, 15 rounds, 0 dB, seeds 0 and 1 (partition and training).
for seed in 0 1; do
  for lam in 0.0 0.3 1.0 3.0; do
    $semfed train "${common[@]}" --set partition.num_clients=10 --set training.rounds=15 \
      --set link.uplink_snr_db=0.0 --set link.downlink_snr_db=0.0 \
      --set algorithm.lam=$lam --set training.seed=$seed --set partition.seed=$seed \
      --out "$out/lambda/lam$lam-seed$seed" > /dev/null
  done
done

python3 - "$out" <<'PY'
import json, sys, pathlib
root = pathlib.Path(sys.argv[1])
for run in sorted(root.glob("*/*")):
    m = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    s = json.loads((run / "summary.json").read_text())
    last5 = sum(r["test_acc"] for r in m[-5:]) / 5
    print(f"{run.parent.name}/{run.name}: final {s['final_test_acc']:.3f} best {s['best_test_acc']:.3f} "
          f"last-5 mean {last5:.3f}; scg_loss " + " ".join(f"{r['scg_loss']:.1f}" for r in m[::3])
          + "; centroid_norm " + " ".join(f"{r['centroid_norm']:.1f}" for r in m[::3]))
PY
