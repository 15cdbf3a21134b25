# Sourced by the round 18 device scripts (one GPU): install the carried wheels, unpack the sample once per warm
# machine, and define train (one sweep run in the background) and wait_and_pack (poll, pack logs into $OUT).
# Carry: .dev_q17b (whl/: keras, namex, optree; gpudata.tar.xz: round 17 call 1's sample in xz byte planes; the
# recipe is in docs/quality_round17/gpu2.sh's header).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_q17b/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
rm -rf /tmp/logs /tmp/runs
if [ ! -d /tmp/jets.parquet ]; then
  { mkdir -p /tmp/planes && tar xJf .dev_q17b/gpudata.tar.xz -C /tmp/planes && \
    python3 docs/quality_round15/planes.py decode /tmp/planes/gpudata /tmp/gpudata && \
    python3 -m studies.quality_gpu unpack --packed /tmp/gpudata --out /tmp/jets.parquet > /tmp/unpack.log 2>&1; } \
    || { tail -5 /tmp/unpack.log; exit 1; }
fi
echo "data ready $(el) s"
mkdir -p /tmp/logs
# train NAME SEED "key=value;key=value": the production loop through studies.quality_gpu sweep
train() { name=$1; seed=$2; shift 2; python3 -m studies.quality_gpu sweep --data /tmp/jets.parquet \
    --data.reader_threads 1 --seeds $seed --run.output_dir /tmp/runs/${name}_$seed --json /tmp/logs/${name}_s$seed.json \
    --variant "$name:$*" > /tmp/logs/${name}_s$seed.log 2>&1; }
pack() { (cd /tmp/logs && tar czf $OUT/part.tgz . && mv $OUT/part.tgz $OUT/logs.tgz); }
# wait for the background runs until ${LIMIT:-570} s, packing the logs every 30 s, then print the summary rows
wait_and_pack() {
  while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-570} ]; do
    sleep 3; [ $(( $(el) % 30 )) -lt 3 ] && pack
  done
  for p in $(jobs -rp); do kill $p 2>/dev/null; done
  wait
  echo "end $(el) s"
  grep -h "^ROW" /tmp/logs/*.log
  for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs"; done
  pack
}
