#!/bin/bash
# Round 19, device call 4 (one GPU, session 14): the confirmation run the round left open. The default (hsd06b60:
# 60 log bins of the hybrid mass at fraction 0.6) on seeds 4-6, which round 17's default runs pair
# (quality_round17/raw2/probs_s4-6); and, for a wider pair, seeds 7-9 of the default and of the old target
# (probs: 40 bins, fraction 0.5, set explicitly as they are no longer the default). Nine runs at once: about 400 s.
# Carry .dev_q17b (docs/quality_round18/device_common.sh says what it holds).
set -u
source docs/quality_round18/device_common.sh
source docs/quality_round19/variants.sh
runs hsd06b60 "${SEEDS:-4 5 6 7 8 9}" "$HSD06B60"
runs probs "${OLD_SEEDS:-7 8 9}" "$PROBS"
LIMIT=${LIMIT:-560} wait_and_pack
