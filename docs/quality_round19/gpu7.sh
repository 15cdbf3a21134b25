#!/bin/bash
# Round 19, device call 7 (one GPU, session 14; the last ~400 s): a probe for the next round, not a change of the
# default. 80 bins of the hybrid mass (fraction 0.6) on seeds 4-9, paired with the default's runs of those seeds
# on this card (raw4/). 40 -> 60 bins gave +0.8 +- 0.3 points (seeds 1-3, H100).
# Carry .dev_q17b (docs/quality_round18/device_common.sh says what it holds).
set -u
source docs/quality_round18/device_common.sh
source docs/quality_round19/variants.sh
runs hsd06b80 "${SEEDS:-4 5 6 7 8 9}" "$HSD06B80"
LIMIT=${LIMIT:-290} wait_and_pack
