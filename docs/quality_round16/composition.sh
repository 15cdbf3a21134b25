#!/bin/bash
# Round 16: composition.py on the two final models gpu1.sh brought back (the default config and the hybrid target
# with k-means on the latent, seed 1, 50 epochs), assigned on the CPU with the production job -> composition.log.
cd "$(dirname "$0")/../.." || exit 1
for m in ${MODELS:-a10_1 hyb_log_1}; do
  rm -rf /tmp/assign_$m
  .venv/bin/python -m jobs.assign --model ${MODEL_DIR:-/tmp/r16_out/models}/$m.keras --alpha 50 --data /tmp/jets.parquet \
    --out /tmp/assign_$m --splits test > /tmp/assign_$m.log 2>&1 || { tail -3 /tmp/assign_$m.log; exit 1; }
  echo "== $m (final model)"
  .venv/bin/python docs/quality_round16/composition.py --assignments /tmp/assign_$m --data /tmp/jets.parquet \
    --classes w,z,t 2>/dev/null
done
