#!/bin/bash
# Round 19, device call 5 (one GPU, session 14): call 4 (H200) found the old target level with the default on seeds
# 7-9, where round 17's H100 runs of it on seeds 1-6 paired 1.3 points lower. Same-machine pairs: the old target on
# seeds 4-6 and the default on seeds 1-3, so that seeds 1-9 of the default and 4-9 of the old target share this
# card and this code. Carry .dev_q17b (docs/quality_round18/device_common.sh says what it holds).
set -u
source docs/quality_round18/device_common.sh
source docs/quality_round19/variants.sh
runs hsd06b60 "${SEEDS:-1 2 3}" "$HSD06B60"
runs probs "${OLD_SEEDS:-4 5 6}" "$PROBS"
LIMIT=${LIMIT:-480} wait_and_pack
