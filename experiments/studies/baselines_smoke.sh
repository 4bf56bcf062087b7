#!/usr/bin/env bash
# The five algorithms on the smoke config (CIFAR-10 subset, AWGN), at 10 dB and
# at 0 dB on both links, same seed; one comparison table per SNR. About 12 min
# on two CPU cores. Usage: experiments/studies/baselines_smoke.sh OUT_DIR [SEED]
set -euo pipefail
out=${1:?usage: $0 OUT_DIR [SEED]}
seed=${2:-0}
cd "$(dirname "$0")/../.."
semfed=${SEMFED:-semfed}
algs="fedcl fedavg fedproto fedcl-nocentroid fedcl-meancentroid"
for snr in 10 0; do
  for a in $algs; do
    $semfed train --config experiments/configs/smoke.toml --set algorithm.name=$a \
      --set link.uplink_snr_db=$snr.0 --set link.downlink_snr_db=$snr.0 \
      --set training.seed=$seed --set output.progress=false \
      --out "$out/snr$snr/$a" --overwrite > /dev/null
  done
  $semfed compare $(for a in $algs; do echo "$out/snr$snr/$a"; done) \
    --csv "$out/compare-snr$snr.csv" | tee "$out/compare-snr$snr.txt"
done
